"""Runners: one per format, one interface (see base.Runner).

`load_runner(path)` picks the runner from the path: ``.tflite`` -> TFLiteRunner,
``.onnx`` -> OnnxRunner, ``.mlpackage``/``.mlmodel`` -> CoreMLRunner, a model directory
(or ``model.keras``) -> KerasRunner. Heavy runtimes are imported only when a runner of
that kind is built.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .base import Runner

__all__ = ["Runner", "load_runner", "runner_kind"]


def runner_kind(path: str | os.PathLike) -> str:
    """"tflite" | "onnx" | "coreml" | "keras" (`edgematting.contract.target_of`)."""
    from ..contract import target_of

    return target_of(path)


def load_runner(path: str | os.PathLike, **kw) -> Runner:
    """Return the Runner for `path` (kw go to the runner, e.g. num_threads)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Not found: {p}")
    kind = runner_kind(p)
    if kind == "tflite":
        from .tflite import TFLiteRunner

        return TFLiteRunner(p, **kw)
    if kind == "onnx":
        from .onnx import OnnxRunner

        return OnnxRunner(p, **kw)
    if kind == "coreml":
        from .coreml import CoreMLRunner

        return CoreMLRunner(p, **kw)
    from .keras import KerasRunner

    kw.pop("num_threads", None)
    kw.pop("threads", None)
    return KerasRunner(p.parent if p.suffix.lower() == ".keras" else p, **kw)
