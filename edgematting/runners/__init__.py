"""Runners: one runtime for any model, one runner class per format.

    >>> from edgematting import runners
    >>> m = runners.open("runs/fs/export/fast-scnn_int8.tflite")   # or a model directory, .onnx, .mlpackage
    >>> alpha = m.predict_photo(rgb)                               # HxW float32, the contract's pipeline
    >>> peer = runners.open("selfie.tflite", foreign=ForeignOptions(input="0,1", output="probability"))

`open` is the entry point predict, evaluate, bench (ours and the peer), the distillation
teacher and verify use: it reads the artifact's own metadata (through its sidecar, which
must describe the file) and returns a `photo.PhotoRunner` (photo in, alpha out).

`load_runner(path)` gives the format's low-level `Runner` (native tensor in, raw output
out), chosen from the format table (`edgematting.formats.FORMATS[...].runner`); a model
directory (or ``model.keras``) gives the KerasRunner. Heavy runtimes are imported only
when a runner of that kind is built.
"""
from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..contract import SIDECAR_ONLY_KEYS, read_sidecar, sidecar_path
from ..errors import DependencyError, InputError
from ..formats import FORMATS, target_of
from .base import Runner
from .photo import PhotoRunner, from_callable, from_keras, from_runner

__all__ = ["Runner", "PhotoRunner", "open", "load_runner", "runner_kind", "runner_class", "read_embedded_metadata",
           "check_sidecar"]


def runner_kind(path: str | os.PathLike) -> str:
    """"tflite" | "onnx" | "coreml" | "keras" (`edgematting.formats.target_of`)."""
    return target_of(path)


def runner_class(target: str) -> type:
    """The Runner class of `target`, from its FormatSpec (DependencyError if its runtime is missing)."""
    module, _, cls = FORMATS[target].runner.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as e:
        raise DependencyError(f"The {target} runtime could not be imported ({e}). Install the pinned stack: "
                              "pip install -e .") from e


def load_runner(path: str | os.PathLike, **kw) -> Runner:
    """Return the Runner for `path` (kw go to the runner, e.g. num_threads)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Not found: {p}")
    kind = runner_kind(p)
    if kind != "keras":
        return runner_class(kind)(p, **kw)
    from .keras import KerasRunner

    kw.pop("num_threads", None)
    kw.pop("threads", None)
    return KerasRunner(p.parent if p.suffix.lower() == ".keras" else p, **kw)


def read_embedded_metadata(path: str | os.PathLike) -> dict:
    """The metadata embedded in an artifact, read the format's own way."""
    kind = target_of(path)
    if kind not in FORMATS:
        raise InputError(f"{path} is not a converted artifact ({', '.join(f.suffix for f in FORMATS.values())}).")
    module = FORMATS[kind].runner.partition(":")[0]
    return importlib.import_module(module).read_embedded_metadata(path)


def check_sidecar(artifact: str | os.PathLike, embedded: dict) -> None:
    """InputError when the artifact's sidecar describes another file than the metadata
    embedded in it (e.g. an int8 file copied over the fp32 name). No sidecar: nothing to check."""
    side = read_sidecar(artifact, required=False)
    if side is None or not embedded:
        return
    side = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS}
    if side == embedded:
        return
    diffs = []
    for key in ("target", "precision", "model_name", "file"):
        if side.get(key) != embedded.get(key):
            diffs.append(f"{key} {side.get(key)!r} in the sidecar, {embedded.get(key)!r} in the file")
    for part in ("input", "output"):
        a, b = side.get(part) or {}, embedded.get(part) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diffs.append(f"{part}.{key} {a.get(key)!r} in the sidecar, {b.get(key)!r} in the file")
    if not diffs:
        diffs = ["other keys differ"]
    raise InputError(
        f"{sidecar_path(artifact)} does not describe {Path(artifact).name}: " + "; ".join(diffs[:4])
        + ". The file was replaced or renamed after conversion; convert it again with `edgematting convert`.")


def open_artifact(path: str | os.PathLike, num_threads: int = 1, **runner_kw) -> PhotoRunner:
    """A converted artifact, run by its format's runner (Core ML through the MIL reference
    interpreter off macOS) with the contract of its sidecar, which must describe the file."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"Model not found: {p}.")
    side = read_sidecar(p)  # InputError when missing: the sidecar is the contract
    meta = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS}
    runner = load_runner(p, num_threads=num_threads, **runner_kw)
    check_sidecar(p, getattr(runner, "metadata", None) or {})
    return from_runner(runner, target_of(p), p, meta)


def open(source, *, num_threads: int = 1, foreign=None, spec=None, pipeline: str | None = None,  # noqa: A001
         **runner_kw) -> PhotoRunner:
    """The one runtime: `source` -> `PhotoRunner` (photo in, alpha out).

    `source`: a model directory (or ``model.keras``), a converted artifact with its sidecar,
    a foreign .tflite/.onnx with `foreign` (a `runners.foreign.ForeignOptions` saying what a
    sidecar would), an open `PhotoRunner` (returned as it is), or a Runner / callable taking
    the Keras model's normalized input together with its `spec` (`modelio.ModelSpec`).
    `runner_kw` go to the format's runner (e.g. ``engine="interpreter"`` for Core ML).
    `pipeline`: the photo-size stages, "opencv" or "exact" (`imageops_cv.get_ops`; None: the
    default), run with `num_threads` OpenCV threads.
    """
    if isinstance(source, PhotoRunner):
        return source
    if pipeline is not None:
        from ..imageops_cv import check_pipeline

        pipeline = check_pipeline(pipeline)  # a wrong name fails before a model loads
    pm = _open(source, num_threads=num_threads, foreign=foreign, spec=spec, **runner_kw)
    pm.pipeline, pm.num_threads = pipeline, max(1, int(num_threads))
    return pm


def _open(source, *, num_threads: int, foreign, spec, **runner_kw) -> PhotoRunner:
    if not isinstance(source, (str, os.PathLike)):
        return from_callable(source, spec if spec is not None else getattr(source, "spec", None))
    p = Path(source)
    if foreign is not None:
        from .foreign import ForeignRunner

        if not p.exists():
            raise InputError(f"Model not found: {p}.")
        return from_runner(ForeignRunner(p, foreign, num_threads), "foreign", p)
    if target_of(p) != "keras":
        return open_artifact(p, num_threads, **runner_kw)
    from ..modelio import load_model_dir

    model_dir = p.parent if p.suffix.lower() == ".keras" else p
    model, mspec = load_model_dir(model_dir)
    return from_keras(model, mspec, model_dir)
