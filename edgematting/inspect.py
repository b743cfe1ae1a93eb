"""What an app's SDK will see in an artifact: `inspect_artifact(path) -> dict`.

The file's own tensors (names, shapes, dtypes, quantization), what each format declares for
clients (TFLite signatures and standard Model Metadata, ONNX producer/opsets/doc strings,
Core ML feature types, deployment target and Xcode preview type), the contract it carries
(normalization, output meaning), and what it was verified with: against Keras (the sidecar's
``verification``) and in which client SDKs (its ``clients`` section, written by convert).
Each format's runner module reads its own file (``describe``); nothing here runs a model.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from .contract import SIDECAR_ONLY_KEYS, read_sidecar, validate_metadata
from .errors import InputError
from .formats import FORMATS, target_of


def inspect_artifact(path: str | os.PathLike) -> dict:
    p = Path(path)
    if not p.exists():
        raise InputError(f"Not found: {p}. Pass a converted .tflite, .onnx or .mlpackage.")
    target = target_of(p)
    if target not in FORMATS:
        raise InputError(f"{p} is a model directory; inspect takes a converted artifact (edgematting convert "
                         "writes them into MODEL/export/).")
    runner_module = importlib.import_module(FORMATS[target].runner.partition(":")[0])
    side = read_sidecar(p, required=False)
    try:
        embedded = runner_module.read_embedded_metadata(p)
    except InputError:
        embedded = None
    meta = {k: v for k, v in (side or embedded or {}).items() if k not in SIDECAR_ONLY_KEYS}
    contract = validate_metadata(meta) if meta else None
    size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size
    ver = (side or {}).get("verification")
    return {
        "file": str(p), "target": target, "size_bytes": size, "runtime": FORMATS[target].runtime,
        "precision": meta.get("precision"), "model": meta.get("model_name"), "architecture": meta.get("architecture"),
        "client_view": runner_module.describe(p),
        "contract": None if contract is None else {
            "input": f"{contract['height']}x{contract['width']} {contract['channel_order']} {contract['layout']} "
                     f"{contract['dtype']}",
            "normalization": ("in the model (raw 0..255 pixels in)" if contract["normalization_in_model"]
                              else f"(pixel - {list(contract['mean'])}) / {list(contract['std'])}"),
            "output": f"{contract['meaning']} {contract['output_dtype']} range {list(contract['range'])}, "
                      f"threshold {contract['threshold']}",
            "postprocess": None if contract["guided_filter"] is None else
            {"guided_filter": {"radius": contract["guided_filter"].radius, "eps": contract["guided_filter"].eps}},
        },
        "contract_embedded": embedded is not None,
        "sidecar": side is not None,
        "verified_against_keras": None if not ver else {
            k: ver.get(k) for k in ("passed", "max_abs", "mean_abs", "iou", "engine", "n", "data")},
        "clients": (side or {}).get("clients"),
        "coreml": meta.get("coreml"),
    }
