"""`edgematting summary`: parameters, FLOPs and layer count of an architecture or a saved model.

    edgematting summary --model fast-scnn --input-size 256x144 --width 0.5
    edgematting summary runs/portrait            # a model directory from `edgematting train`
"""
from __future__ import annotations

import argparse
import json

from ..errors import InputError

HELP = "Show parameters, FLOPs and layers of an architecture or a trained model."


def register(subparsers) -> argparse.ArgumentParser:
    from .. import models

    p = subparsers.add_parser(
        "summary",
        help=HELP,
        description=HELP
        + " FLOPs are 2 x multiply-accumulates of the conv layers at the input size"
        " (BatchNorm folded, element-wise ops not counted).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  edgematting summary --model fast-scnn --input-size 256\n"
        "  edgematting summary --model mattingnet --input-size 256x144 --width 0.5\n"
        "  edgematting summary --model fast-scnn --model-option head=fused\n"
        "  edgematting summary runs/portrait --layers",
    )
    p.add_argument("model_dir", nargs="?", help="model directory (model.keras + model.json)")
    p.add_argument("--model", "-m", dest="architecture", metavar="ARCH",
                   help=f"architecture to build instead: {' or '.join(models.architecture_names())}")
    p.add_argument("--input-size", default="256", metavar="HEIGHTxWIDTH",
                   help="input size for --model: 256 (square) or HEIGHTxWIDTH, e.g. 256x144 "
                   "(multiples of 16, at least 32; default 256)")
    p.add_argument("--width", type=float, default=1.0,
                   help="channel width multiplier for --model (default 1.0; lite = 0.5)")
    p.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE",
                   help="architecture option for --model, repeatable (as in `edgematting train`), "
                   f"e.g. head=fused. Options (defaults): {models.options_help()}")
    p.add_argument("--layers", action="store_true", help="one row per layer instead of per block")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)
    return p


def _load(args):
    from .. import models

    if args.model_dir and args.architecture:
        raise InputError("Give either a model directory or --model ARCH, not both.")
    if args.model_dir:
        if args.model_option:
            raise InputError("--model-option applies to --model ARCH; a model directory has its own options.")
        from ..modelio import load_model_dir

        model, spec = load_model_dir(args.model_dir)
        return model, spec.architecture, spec.config.get("width")
    if not args.architecture:
        raise InputError(
            "Nothing to summarize. Pass a model directory, or --model "
            f"{'|'.join(models.architecture_names())} [--input-size 256x144] [--width 1.0]."
        )
    size = models.parse_size(args.input_size)
    arch = models.check_architecture(args.architecture)
    options = models.parse_model_options(args.model_option)
    return models.build_model(arch, input_size=size, width=args.width, **options), arch, args.width


def run(args) -> int:
    from .. import models
    from ..models.summary import format_summary

    model, arch, width = _load(args)
    s = models.model_summary(model)
    s = {"architecture": arch, "width": width, **s}
    if args.json:
        print(json.dumps({**s, "input_size": list(s["input_size"])}, indent=2))
        return 0
    _print_table(model, s, args.layers, format_summary)
    return 0


def _print_table(model, s, per_layer, format_summary):
    h, w = s["input_size"]
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # pragma: no cover - rich is a dependency, but stay usable without
        print(format_summary(model, per_layer=per_layer))
        return
    from ..models.summary import block_stats, layer_stats

    t = Table(title=f"{s['architecture']}  {h}x{w} (HxW)  width {s['width']}")
    if per_layer:
        for col in ("layer", "type", "output", "params", "MFLOPs"):
            t.add_column(col, justify="right" if col in ("params", "MFLOPs") else "left")
        for r in layer_stats(model):
            t.add_row(r["name"], r["type"], "x".join(map(str, r["output_shape"])),
                      f"{r['params']:,}", f"{2 * r['macs'] / 1e6:,.2f}")
    else:
        for col in ("block", "layers", "output", "params", "MFLOPs"):
            t.add_column(col, justify="right" if col in ("layers", "params", "MFLOPs") else "left")
        for b in block_stats(model):
            t.add_row(b["block"], str(b["layers"]), "x".join(map(str, b["output_shape"])),
                      f"{b['params']:,}", f"{2 * b['macs'] / 1e6:,.2f}")
    console = Console()
    console.print(t)
    console.print(
        f"params [bold]{s['params']:,}[/] (trainable {s['trainable_params']:,})   "
        f"FLOPs [bold]{s['flops'] / 1e9:.3f} G[/]   layers {s['layers']}"
    )
