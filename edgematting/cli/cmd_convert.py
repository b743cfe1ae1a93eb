"""`edgematting convert MODEL --target ... --precision ...`: convert, verify, tabulate."""
from __future__ import annotations

import argparse

HELP = "Convert a model directory to TFLite, Core ML and/or ONNX, and verify each artifact."


def _registry():
    from ..formats import FORMATS, Precision

    return FORMATS, [p.value for p in Precision]


def register(sub) -> argparse.ArgumentParser:
    from ..converters.base import add_option_arguments

    registry, precisions = _registry()
    targets = list(registry) + ["all"]
    p = sub.add_parser(
        "convert", help=HELP, description=HELP,
        epilog="Supported combinations:\n" + "\n".join(
            f"  {t}: {', '.join(s.precisions)} (input {'/'.join(s.input_types)}, "
            f"channels {'/'.join(map(str, s.channels))})" for t, s in registry.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="model directory (model.keras + model.json)")
    # Choices come from the format table; they are checked by the library (which suggests the
    # closest name and exits 2/4) rather than by argparse, whose error has no suggestion.
    p.add_argument("--target", default="tflite", metavar="{" + ",".join(targets) + "}",
                   help="target format, or 'all' (every target that supports the precision)")
    p.add_argument("--precision", default="fp32", metavar="{" + ",".join(precisions) + "}")
    p.add_argument("--calib", default=None, metavar="DIR|synthetic",
                   help="calibration images (default: the photos the model was trained on, else synthetic)")
    p.add_argument("--calib-samples", type=int, default=64, metavar="N")
    p.add_argument("--input", dest="input_type", default="float", metavar="{float,uint8}",
                   help="float: normalized float input; uint8: raw pixels, normalization in the model")
    p.add_argument("--channels", type=int, default=3, metavar="{3,4}",
                   help="4 = RGBA/BGRA input (alpha ignored), e.g. Android bitmaps")
    p.add_argument("--out", default=None, help="output folder (default: MODEL/export)")
    p.add_argument("--force", action="store_true",
                   help="replace what sits at an artifact's path even if edgematting did not write it "
                        "(default: refuse, so a folder or file of yours is never removed)")
    p.add_argument("--author", default="", help="author written into each file's metadata (default: edgematting)")
    p.add_argument("--license", default="", help="licence written into each file's metadata, e.g. Apache-2.0")
    from .cmd_predict import add_upsample_arguments

    # recorded in the metadata's postprocess: what apps do with the alpha. Bilinear by
    # default: the live camera path has ~10 ms per frame, and guided costs more than that
    add_upsample_arguments(p, default="bilinear")
    add_option_arguments(p)  # per-target flags, from the option dataclasses
    g = p.add_argument_group("verification")
    g.add_argument("--no-verify", dest="verify", action="store_false",
                   help="skip the parity check against the Keras model")
    g.add_argument("--verify-samples", type=int, default=8, metavar="N")
    g.add_argument("--verify-data", default=None, metavar="DIR",
                   help="images to verify on (default: the model's training photos, else synthetic)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..converters import configs_for, convert
    from ..converters.base import config_kwargs_from_args

    console = Console(stderr=True)
    # Validate everything before loading anything: unknown names exit 2, unsupported 4.
    configs, skipped = configs_for(args.target, **config_kwargs_from_args(args))
    for t, why in skipped.items():
        console.print(f"[yellow]skipping {t}[/]: {why}")
    if not any(c.calibrated for c in configs) and args.calib not in (None, "synthetic"):
        console.print(f"[yellow]note[/]: --calib is not used by precision {args.precision}.")
    run_ = convert(args.model, configs, args.out, progress=True, console=console, force=args.force)
    artifacts = run_.artifacts
    table = Table(title="Artifacts")
    for col in ("file", "size KB", "convert s", "verification", "max abs", "mean abs", "IoU", "engine"):
        table.add_column(col, justify="right" if col in ("size KB", "convert s", "max abs", "mean abs", "IoU") else "left")
    for a in artifacts:
        r = a.verification
        table.add_row(
            str(a.path), f"{a.size_bytes / 1024:.1f}", f"{a.convert_seconds:.1f}",
            ("[green]passed[/]" if r.passed else "[red]FAILED[/]") if r else "skipped",
            f"{r.max_abs:.2e}" if r else "-", f"{r.mean_abs:.2e}" if r else "-",
            f"{r.iou:.4f}" if r else "-", r.engine if r else "-",
        )
    from ._console import next_hint, show_table

    show_table(table, Console())
    for a in artifacts:
        cm = a.metadata.get("coreml") or {}
        if cm.get("deployment_target") and cm.get("deployment_target") != cm.get("requested_target"):
            console.print(f"[yellow]note[/]: {a.path.name} needs {cm['deployment_target']} or later (compressed "
                          f"weights), not the requested {cm['requested_target']}; the sidecar records it.")
    run_.raise_for_failures()
    print(next_hint("edgematting", "bench", args.model))
    return 0
