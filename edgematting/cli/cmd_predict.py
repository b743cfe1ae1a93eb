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


def register(sub):
    from ..predict import OUTPUTS
    from ..refine import add_refine_arguments

    p = sub.add_parser(
        "predict",
        help="cut people out of photos: RGBA cut-outs, alpha mattes or composites",
        description="Run the model on each photo (files, or every .jpg/.jpeg/.png directly "
        "inside a given directory) and write into --out: STEM_cutout.png (RGBA, --output "
        "rgba), STEM_alpha.png (8-bit matte, --output alpha) or STEM_composite.png (the "
        "person over --background, --output composite). Every file is written atomically.",
    )
    p.add_argument("model", metavar="MODEL", help="model directory (model.keras + model.json), or a converted "
                   ".tflite/.onnx/.mlpackage with its sidecar: computes what the phone computes (Core ML through "
                   "the reference interpreter off macOS)")
    p.add_argument("images", metavar="IMAGES", nargs="+", help="image files and/or directories")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory")
    p.add_argument("--output", default="rgba", choices=list(OUTPUTS), help="what to write per photo (default: rgba)")
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
    add_upsample_arguments(p)
    add_refine_arguments(p)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import sys

    from ..imageops import parse_upsample
    from ..predict import predict_images
    from ..refine import refine_config_from_args

    guided = parse_upsample(args.upsample, args.guided_radius, args.guided_eps)
    skipped: list = []
    written = predict_images(
        args.model,
        args.images,
        args.out,
        output=args.output,
        background=args.background,
        grid=args.grid,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
        guided=guided,
        skip_bad=args.skip_bad,
        skipped=skipped,
        num_threads=args.threads,
        refine=refine_config_from_args(args),
    )
    print(f"wrote {len(written)} file(s) to {args.out}"
          + (f"; skipped {len(skipped)} unreadable photo(s)" if skipped else ""))
    if args.grid:
        print(f"grid: {args.grid}")
    return 0
