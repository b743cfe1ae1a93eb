"""edgematting quickstart: train, evaluate, cut out, convert and benchmark on synthetic data."""
from __future__ import annotations

import argparse

from ._console import DefaultsHelpFormatter

from ..models.registry import DEFAULT_ARCHITECTURE, architecture_help, architecture_names


def register(sub):
    p = sub.add_parser(
        "quickstart",
        help="run the whole job end to end on built-in synthetic data (no downloads)",
        description="Train a small portrait model on synthetic portraits for a few minutes, "
        "evaluate it on held-out synthetic images, cut out sample images, convert it to "
        "TFLite, ONNX and Core ML with verification, and benchmark the artifacts. Everything "
        "is written under --out; a second run resumes training where it stopped.",
        formatter_class=DefaultsHelpFormatter,
    )
    p.add_argument("--out", default="runs/quickstart", help="output directory")
    p.add_argument("--model", default=DEFAULT_ARCHITECTURE, choices=architecture_names(),
                   help=f"architecture ({architecture_help()})")
    p.add_argument("--input-size", default="256", help="HEIGHT or HEIGHTxWIDTH (multiples of 16)")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier")
    p.add_argument("--minutes", type=float, default=10.0, help="training time budget")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--no-convert", action="store_true", help="stop after the cut-outs")
    p.add_argument("--no-bench", action="store_true", help="convert but do not benchmark")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from rich.console import Console

    from ..models import parse_size
    from ..quickstart import QuickstartConfig, run_quickstart

    console = Console()
    cfg = QuickstartConfig(
        out=args.out,
        model=args.model,
        input_size=parse_size(args.input_size),
        width=args.width,
        minutes=args.minutes,
        batch_size=args.batch_size,
        convert=not args.no_convert,
        bench=not args.no_bench,
    )
    s = run_quickstart(cfg, console)
    console.rule("[bold green]quickstart done")
    ev = s.get("evaluate", {})
    iou = ev.get("iou") if isinstance(ev, dict) else None
    console.print(f"model: {s['model_dir']}  held-out IoU: {iou}  time: {s['seconds']} s")
    from ._console import next_hint

    print(next_hint("edgematting", "predict", s["model_dir"], "YOUR_PHOTOS", "--out", "cutouts", "--output", "rgba"))
    return 0
