"""edgematting predict: cut people out of photos."""
from __future__ import annotations


def add_upsample_arguments(p, default: str = "guided") -> None:
    """--upsample / --guided-radius / --guided-eps (predict and evaluate: guided by default;
    convert: what the metadata asks apps to do, bilinear by default)."""
    p.add_argument("--upsample", default=default, metavar="{bilinear,guided}",
                   help="how the model's alpha is brought to the photo's size: guided (edge-aware guided filter "
                   "with the photo as guide; measured better on boundary F and every unknown-band error) or "
                   f"bilinear (cheaper) (default {default})")
    p.add_argument("--guided-radius", type=int, default=None, metavar="R",
                   help="guided filter window radius in model pixels (default 2)")
    p.add_argument("--guided-eps", type=float, default=None, metavar="E", help="guided filter eps (default 1e-4)")


def add_keep_largest_arguments(p) -> None:
    """--keep-largest / --min-region-fraction (predict and evaluate)."""
    from ..components import DEFAULT_MIN_AREA_FRACTION

    p.add_argument("--keep-largest", action="store_true",
                   help="drop stray regions: zero every region of the model's alpha (a connected part of alpha >= "
                   "0.5 with its soft fringe) smaller than --min-region-fraction of the largest (default: keep all)")
    p.add_argument("--min-region-fraction", type=float, default=None, metavar="F",
                   help="with --keep-largest: the smallest region kept, as a fraction of the largest region's area "
                   f"(default {DEFAULT_MIN_AREA_FRACTION}; two people of similar size are both kept)")


def keep_largest_from_args(args) -> float | None:
    """The `keep_largest` fraction of parsed arguments (None: off); InputError for a bad value
    or --min-region-fraction without --keep-largest."""
    from ..components import DEFAULT_MIN_AREA_FRACTION, check_min_area_fraction
    from ..errors import InputError

    if args.min_region_fraction is not None and not args.keep_largest:
        raise InputError("--min-region-fraction applies to --keep-largest; add --keep-largest or drop it.")
    if not args.keep_largest:
        return None
    frac = DEFAULT_MIN_AREA_FRACTION if args.min_region_fraction is None else args.min_region_fraction
    try:
        return check_min_area_fraction(frac)
    except ValueError as e:
        raise InputError(f"--min-region-fraction: {e}; e.g. 0.05.") from None


def register(sub):
    from ..predict import OUTPUTS
    from ..refine import add_refine_arguments

    p = sub.add_parser(
        "predict",
        help="cut people out of photos: RGBA cut-outs, alpha mattes or composites",
        description="Run the model on each photo (files, or every .jpg/.jpeg/.png directly "
        "inside a given directory) and write into --out: STEM_cutout.png (RGBA, --output "
        "rgba), STEM_alpha.png (8-bit matte, --output alpha) or STEM_composite.png (the "
        "person over --background, --output composite). Every file is written atomically. "
        "A video (one .mp4/.mov/.m4v/.mkv/.webm/.avi) goes to a video file (--out cut.mp4: "
        "composite or alpha, the source's frame rate, rotation and audio kept) or to a folder of "
        "PNG frames (--out frames/).",
    )
    p.add_argument("model", metavar="MODEL", help="model directory (model.keras + model.json), or a converted "
                   ".tflite/.onnx/.mlpackage with its sidecar: computes what the phone computes (Core ML through "
                   "the reference interpreter off macOS)")
    p.add_argument("images", metavar="IMAGES", nargs="+",
                   help="image files and/or directories, or one video (.mp4 .mov .m4v .mkv .webm .avi)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory; for a video: a video file (.mp4 .mov .m4v .mkv: H.264, the source's "
                   "frame rate, rotation and audio kept) or a folder (DIR/) for one PNG per frame")
    p.add_argument("--output", default=None, choices=list(OUTPUTS),
                   help="what to write per photo or frame (default: rgba; composite for a video file, which has "
                   "no alpha channel)")
    p.add_argument(
        "--background",
        default=None,
        metavar="BG",
        help="composite only: '#rrggbb', 'r,g,b', 'blur' (the photo blurred) or an image path "
        "(default black)",
    )
    p.add_argument("--grid", default=None, metavar="PNG", help="also write a grid of input / alpha / cut-out")
    p.add_argument("--batch-size", type=int, default=8, help="images per model call (default: 8)")
    p.add_argument("--skip-bad", action="store_true",
                   help="skip unreadable photos with a warning instead of stopping (default: stop before "
                   "writing anything)")
    p.add_argument("--threads", type=int, default=1, help="runtime threads for an artifact (default 1)")
    p.add_argument("--smooth", type=float, nargs="?", const=0.5, default=None, metavar="W",
                   help="video: motion-gated temporal smoothing of the alpha where the frame is still, W the "
                   "current frame's share (default when given: 0.5)")
    add_upsample_arguments(p)
    add_keep_largest_arguments(p)
    add_refine_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from ..imageops import parse_upsample
    from ..errors import InputError
    from ..predict import predict_images
    from ..refine import refine_config_from_args
    from ..video import video_input

    guided = parse_upsample(args.upsample, args.guided_radius, args.guided_eps)
    if video_input(args.images) is not None:
        return _run_video(args, guided)
    if args.smooth is not None:
        raise InputError("--smooth applies to a video input (it smooths the alpha from frame to frame).")
    skipped: list = []
    written = predict_images(
        args.model,
        args.images,
        args.out,
        output=args.output or "rgba",
        background=args.background,
        grid=args.grid,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
        guided=guided,
        skip_bad=args.skip_bad,
        skipped=skipped,
        num_threads=args.threads,
        refine=refine_config_from_args(args),
        keep_largest=keep_largest_from_args(args),
    )
    print(f"wrote {len(written)} file(s) to {args.out}"
          + (f"; skipped {len(skipped)} unreadable photo(s)" if skipped else ""))
    if args.grid:
        print(f"grid: {args.grid}")
    return 0


def _run_video(args, guided) -> int:
    import sys

    from ..errors import InputError
    from ..refine import refine_config_from_args
    from ..video import predict_video, video_input

    unused = [flag for flag, given in (("--grid", args.grid), ("--skip-bad", args.skip_bad),
                                       ("--keep-largest", getattr(args, "keep_largest", None))) if given]
    if unused:
        raise InputError(f"{', '.join(unused)} appl{'ies' if len(unused) == 1 else 'y'} to photos, not to a video.")
    result = predict_video(
        args.model,
        video_input(args.images),
        args.out,
        output=args.output,
        background=args.background,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
        guided=guided,
        num_threads=args.threads,
        refine=refine_config_from_args(args),
        smooth=args.smooth,
    )
    print(result.summary())
    return 0
