"""edgematting calibrate: fit a decisive alpha map on held-out images and fold it into a trained model."""
from __future__ import annotations


def register(sub):
    p = sub.add_parser(
        "calibrate",
        help="make a trained model's alpha decisive away from the edge (a map fitted on held-out images)",
        description="Fit alpha' = clip((alpha - lo) / (hi - lo), 0, 1) on held-out images (DIR with image/ and "
        "alpha/, at the model's input size): the lo/hi of a grid (0..0.44 and 0.56..1, step 0.02) with the "
        "lowest whole-image SAD (or MSE) such that boundary F and IoU drop by at most 0.005, the SAD near the edge "
        "rises by at most 2% and the other whole-image error (MSE, or SAD) does not rise. The map is folded into "
        "model.keras as its last layers (so every converted file and app carries it) and recorded in model.json; "
        "a map that gains under 1% leaves the model as it is. "
        "`train` does this on its validation split by default (--no-calibrate-alpha to skip).",
    )
    p.add_argument("model", metavar="MODEL", help="model directory written by edgematting (model.keras + model.json)")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="held-out labelled folder (image/ + alpha/ or mask/), never the training photos; or "
                   "'synthetic' (procedural portraits). Default, for a run directory of `train`: its validation "
                   "split, as `train` itself calibrates")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the calibrated model directory here (default: MODEL itself)")
    p.add_argument("--force", action="store_true",
                   help="write even where the folder is not a model directory edgematting wrote (default: refuse)")
    p.add_argument("--objective", default="sad", choices=["sad", "mse"], help="what the map minimizes (default sad)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="use the first N images (default: all, at most 256; synthetic: 64)")
    p.add_argument("--skip-bad", action="store_true", help="skip unreadable or unpaired files instead of stopping")
    p.add_argument("--remove", action="store_true",
                   help="take an earlier calibration out of the model instead (no --data needed)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..alpha_calibration import FIGURES, calibrate_model_dir
    from ..errors import InputError
    from ._console import next_hint, show_table

    if args.remove and args.data is not None:
        raise InputError("--remove takes the calibration out and needs no --data; pass one of them.")
    console = Console()
    batches = source = None
    data = args.data
    if data is None and not args.remove:
        from pathlib import Path

        from ..alpha_calibration import check_destination, dataset_batches
        from ..training import validation_dataset
        from ..training.rundir import STATE_FILE

        if not (Path(args.model) / STATE_FILE).is_file():
            raise InputError(f"{args.model} is not a run directory of `train` (no {STATE_FILE}), so it has no "
                             "validation split: pass --data DIR (a labelled held-out folder) or --data synthetic.")
        check_destination(args.model, args.out, args.force)  # refuse before reading any data
        batches, source, data = dataset_batches(validation_dataset(args.model)), "validation", "its validation split"
    dest, result = calibrate_model_dir(args.model, data if batches is None else None, out=args.out,
                                       force=args.force, objective=args.objective, limit=args.limit,
                                       skip_bad=args.skip_bad, remove=args.remove, batches=batches, source=source)
    if result is None:
        console.print(f"removed the alpha calibration: {dest}/model.keras + model.json", highlight=False)
    else:
        m = result.amap
        table = Table(title=f"alpha calibration of {args.model} on {result.images} images of {data} "
                      f"({result.size[0]}x{result.size[1]})")
        table.add_column("figure")
        table.add_column("before", justify="right")
        table.add_column("after", justify="right")
        for k in FIGURES:
            table.add_row(k, f"{result.before[k]:.4f}", f"{result.after[k]:.4f}")
        show_table(table, console)
        what = "identity: the model is unchanged" if m.identity else f"lo {m.lo:.2f}, hi {m.hi:.2f}"
        console.print(f"map: {what} ({result.reason})", highlight=False, soft_wrap=True)
        console.print(f"model: {dest}/model.keras + model.json (alpha_calibration)", highlight=False)
    if (dest / "export").is_dir() and any((dest / "export").iterdir()):
        console.print(f"note: the files in {dest / 'export'} were converted before this; convert again to carry "
                      "the change.", highlight=False, soft_wrap=True)
    print(next_hint("edgematting", "evaluate", dest, "--data", "YOUR_TEST_DIR"))
    return 0
