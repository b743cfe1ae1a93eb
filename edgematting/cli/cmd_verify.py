"""`edgematting verify ARTIFACT`: compare a converted file with its Keras model."""
from __future__ import annotations

import argparse
from pathlib import Path

from .. import atomic

HELP = "Check that a .tflite/.onnx/.mlpackage reproduces its Keras model (exit 6 if not)."


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("verify", help=HELP, description=HELP)
    p.add_argument("artifact", help="converted file (.tflite, .onnx, .mlpackage)")
    p.add_argument("--model", default=None,
                   help="model directory it was converted from (default: the artifact's "
                        "parent's parent, i.e. MODEL/export/FILE)")
    p.add_argument("--data", default=None, help="folder of images to compare on (default: synthetic)")
    p.add_argument("-n", "--samples", dest="n", type=int, default=8, metavar="N")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", dest="json_out", default=None, help="also write the report to this JSON file")
    p.add_argument("--no-update-sidecar", dest="update_sidecar", action="store_false",
                   help="do not store the result in the artifact's sidecar JSON")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import math

    from rich.console import Console
    from rich.table import Table

    from ..errors import ParityError
    from ..verify import verify_artifact

    console = Console()
    art = Path(args.artifact)
    if args.json_out:
        atomic.check_output_file(args.json_out, "--json")  # before the work, not after
    with Console(stderr=True).status(f"Verifying {art.name} ..."):
        report = verify_artifact(art, args.model, data=args.data, n=args.n,
                                 runner_kwargs={"num_threads": args.threads} if args.threads != 1 else None,
                                 raise_on_failure=False)
    table = Table(title=f"{art.name}: {report.target} {report.precision} vs Keras ({report.n} images, {report.data})")
    for col in ("check", "value", "bound", "result"):
        table.add_column(col)
    for c in report.checks:
        table.add_row(c["check"], f"{c['value']:.4g}", f"{c['op']} {c['bound']:g}",
                      "[green]ok[/]" if c["passed"] else "[red]FAIL[/]")
    psnr = "inf" if not math.isfinite(report.psnr) else f"{report.psnr:.1f} dB"
    table.add_row("psnr", psnr, "-", "info")
    from ._console import next_hint, show_table

    show_table(table, console)
    console.print(f"engine: {report.engine}; reference: {report.reference}", highlight=False, soft_wrap=True)
    if args.json_out:
        atomic.write_json(args.json_out, report.to_dict())
    if args.update_sidecar:
        from ..verify import record_verification

        try:
            record_verification(art, report)
        except OSError as e:
            console.print(f"[yellow]could not update the sidecar of {art.name}: {e}[/]")
    if not report.passed:
        raise ParityError(f"{art.name} does not reproduce the Keras model:", failures=report.failures,
                          report=report)
    console.print("[green]passed[/]. " + next_hint("edgematting", "bench", args.model or art.resolve().parent.parent),
                  highlight=False, soft_wrap=True)
    return 0
