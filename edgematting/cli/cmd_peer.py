"""edgematting peer: fetch peer models (MediaPipe selfie segmenter) for benchmarks."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser(
        "peer",
        help="fetch MediaPipe's selfie segmenter for `bench --peer mediapipe`",
        description="Download the mediapipe==0.10.21 wheel with pip (without installing it: "
        "it pins numpy<2 and protobuf<5) and extract selfie_segmentation.tflite and its "
        "landscape variant into the cache (~/.cache/edgematting/peers, or $EDGEMATTING_CACHE_DIR).",
    )
    p.add_argument("action", choices=["fetch", "path"], help="fetch the model, or print where it is cached")
    p.add_argument("--wheel", default=None, help="use this already downloaded mediapipe wheel")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..peer import cache_dir, cached_mediapipe, fetch_mediapipe

    if args.action == "path":
        p = cached_mediapipe()
        print(p if p else f"not fetched yet (cache: {cache_dir()}); run `edgematting peer fetch`")
        return 0 if p else 7
    out = fetch_mediapipe(wheel=args.wheel)
    for variant, path in out.items():
        print(f"{variant}: {path}")
    print("next: edgematting bench MODEL_DIR --peer mediapipe")
    return 0
