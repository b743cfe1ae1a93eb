"""`edgematting inspect ARTIFACT`: what an app's SDK will see in a converted file."""
from __future__ import annotations

import argparse
import json

HELP = "Show what a client SDK sees in a .tflite/.onnx/.mlpackage: tensors, normalization, metadata, checks."


def register(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("inspect", help=HELP, description=HELP + " Nothing is run; the file is only read.")
    p.add_argument("artifact", help="converted file (.tflite, .onnx, .mlpackage)")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.set_defaults(func=run)
    return p


def _tensor_rows(view: dict):
    for side in ("inputs", "outputs"):
        for t in view.get(side, []):
            detail = t.get("dtype") or t.get("color") or ""
            q = t.get("quantization")
            if q:
                detail += f" (scale {q['scale']:.4g}, zero point {q['zero_point']})"
            yield side[:-1], t["name"], t.get("type", "tensor"), str(t.get("shape", "")), detail


def run(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..inspect import inspect_artifact
    from ._console import show_table

    info = inspect_artifact(args.artifact)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    console = Console()
    view = info["client_view"]
    console.print(f"[bold]{info['file']}[/]: {info['target']} {info['precision'] or ''}, "
                  f"{info['size_bytes'] / 1024:.1f} KB, run by {info['runtime']}", highlight=False, soft_wrap=True)
    t = Table(title="Tensors a client feeds and reads")
    for col in ("", "name", "kind", "shape", "type"):
        t.add_column(col)
    for row in _tensor_rows(view):
        t.add_row(*row)
    show_table(t, console)
    facts = Table(title="What the file declares")
    facts.add_column("")
    facts.add_column("")
    c = info["contract"]
    if c:
        for k in ("input", "normalization", "output"):
            facts.add_row(k, c[k])
        if c["postprocess"]:
            facts.add_row("postprocess", json.dumps(c["postprocess"]))
    facts.add_row("contract", ("embedded" if info["contract_embedded"] else "not embedded")
                  + (" + sidecar" if info["sidecar"] else ", no sidecar"))
    for key in ("signatures", "metadata_entries", "producer", "opsets", "specification_version", "preview",
                "author", "license"):
        if view.get(key) not in (None, "", [], {}):
            facts.add_row(key.replace("_", " "), json.dumps(view[key]) if not isinstance(view[key], str) else view[key])
    if "standard_metadata" in view:
        facts.add_row("TFLite Model Metadata", "yes" if view["standard_metadata"] else
                      "no (MediaPipe Tasks needs it for float input)")
    if info["coreml"]:
        facts.add_row("deployment target", f"{info['coreml'].get('deployment_target')} (asked: "
                      f"{info['coreml'].get('requested_target')})")
    v = info["verified_against_keras"]
    facts.add_row("verified vs Keras", "not verified" if not v else
                  f"{'passed' if v['passed'] else 'FAILED'}: max abs {v['max_abs']:.2g}, IoU {v['iou']:.4f} "
                  f"({v['n']} images, {v['engine']})")
    for client, result in (info["clients"] or {}).items():
        facts.add_row(f"client: {client}", result if isinstance(result, str) else json.dumps(result))
    show_table(facts, console)
    return 0
