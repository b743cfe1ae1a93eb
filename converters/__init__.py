"""Converters: Keras model directory -> TFLite / Core ML / ONNX artifact, verified.

    >>> from edgematting.converters import ExportConfig, convert_model
    >>> art = convert_model("runs/fast", ExportConfig(target="tflite", precision="int8"))
    >>> art.path, art.verification.passed

`convert_model` loads the model, dispatches to ``REGISTRY[target].module.convert`` (the
uint8/4-channel input wrapper, `wrappers.wrap_model`, is applied by each target module so
it can choose the pixel dtype its quantizer wants), times it, verifies the result
against the Keras model (unless ``config.verify`` is False) and only then publishes the
artifact and its sidecar ``<file>.json``.

Nothing half-written is ever left in the output folder: the target writes into a hidden
staging folder inside it (same filesystem, so publishing is an ``os.replace``); the
staging folder is removed on any failure, a failed verification or Ctrl-C.

The sidecar holds the embedded metadata (`artifact_metadata`) plus the sidecar-only
sections listed in `SIDECAR_ONLY_KEYS` ("conversion", "verification").
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ConversionError, DependencyError, InputError, UnsupportedError
from .base import (REGISTRY, Artifact, ExportConfig, Precision, TargetSpec, artifact_filename,
                   artifact_metadata, check_supported, get_target, support_table_markdown,
                   valid_combinations)

__all__ = [
    "REGISTRY", "Artifact", "ExportConfig", "Precision", "TargetSpec", "artifact_filename",
    "artifact_metadata", "check_supported", "get_target", "support_table_markdown",
    "valid_combinations", "convert_model", "convert_all", "plan_targets", "target_module",
    "read_embedded_metadata", "read_sidecar", "SIDECAR_ONLY_KEYS", "CALIBRATED",
]

#: Sections of the sidecar JSON that are not embedded in the artifact itself.
SIDECAR_ONLY_KEYS = ("conversion", "verification")
#: Precisions that read calibration images.
CALIBRATED = ("int8", "int8-qat", "int16x8")


def target_module(target: str):
    """Import the converter module of `target` (DependencyError if its stack is missing)."""
    spec = get_target(target)
    try:
        return importlib.import_module(spec.module)
    except ImportError as e:
        raise DependencyError(
            f"The {target} converter could not be imported ({e}). Install the pinned stack: "
            "pip install -e ."
        ) from e


def read_embedded_metadata(path: str | os.PathLike) -> dict:
    """The metadata embedded in an artifact, read the format's own way."""
    from ..runners import runner_kind

    kind = runner_kind(path)
    if kind not in REGISTRY:
        raise InputError(f"{path} is not a converted artifact (.tflite, .onnx, .mlpackage).")
    return target_module(kind).read_embedded_metadata(path)


def read_sidecar(path: str | os.PathLike) -> dict:
    p = Path(path)
    side = p.with_name(p.name + ".json")
    if not side.is_file():
        raise InputError(f"No sidecar {side} next to {p}.")
    return json.loads(side.read_text())


def plan_targets(precision: str, input_type: str = "float", channels: int = 3,
                 targets: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """(targets that support this combination, {skipped target: why})."""
    todo, skipped = [], {}
    for t in targets or list(REGISTRY):
        try:
            check_supported(t, precision, input_type, channels)
        except UnsupportedError as e:
            skipped[t] = str(e)
            continue
        todo.append(t)
    return todo, skipped


def _default_mode(path: Path) -> None:
    """Give published files the usual permissions (mkstemp creates them 0600)."""
    from ..modelio import publish_mode

    paths = [path] if path.is_file() else [p for p in path.rglob("*")] + [path]
    for p in paths:
        try:
            publish_mode(p, directory=p.is_dir())
        except OSError:
            pass


def _publish(src: Path, dst: Path) -> None:
    """Move a staged file or directory (.mlpackage) over `dst`."""
    _default_mode(src)
    if src.is_dir():
        old = None
        if dst.exists():
            old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
            os.replace(dst, old)
        os.replace(src, dst)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    else:
        if dst.is_dir():
            shutil.rmtree(dst)
        os.replace(src, dst)


class _Status:
    """rich status line when progress is on; silent otherwise."""

    def __init__(self, progress: bool, console=None):
        self.console = None
        if progress:
            from rich.console import Console

            self.console = console or Console(stderr=True)

    def run(self, message: str, fn: Callable[[], Any]):
        if self.console is None:
            return fn()
        with self.console.status(message, spinner="dots"):
            return fn()

    def print(self, message: str):
        if self.console is not None:
            self.console.print(message)


def convert_model(
    model_dir: str | os.PathLike,
    config: ExportConfig,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    model=None,
    spec=None,
    console=None,
) -> Artifact:
    """Convert the model in `model_dir` per `config`; return the published Artifact.

    Raises InputError (missing model, bad calibration folder), UnsupportedError,
    ConversionError, ParityError (verification failed: nothing is published),
    DependencyError. Ctrl-C leaves nothing behind either.
    """
    from ..calibration import check_source
    from ..modelio import atomic_write_json, load_model_dir

    if not isinstance(config, ExportConfig):
        raise TypeError("config must be an ExportConfig")
    model_dir = Path(model_dir)
    if model is None and not model_dir.exists():
        raise InputError(f"Model not found: {model_dir}. Train one with `edgematting train` first.")
    check_supported(config.target, config.precision, config.input_type, config.channels)
    if config.precision in CALIBRATED:
        check_source(config.calib)
    status = _Status(progress, console)
    module = target_module(config.target)
    if model is None:
        model, spec = status.run(f"Loading {model_dir}", lambda: load_model_dir(model_dir))
    out = Path(out_dir) if out_dir is not None else model_dir / "export"
    filename = artifact_filename(spec.name, config)
    created = []
    for d in reversed([out, *out.parents]):
        if not d.exists():
            created.append(d)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=out))
    label = f"{config.target} {config.precision}"
    try:
        staged = stage / filename
        t0 = time.perf_counter()
        meta = status.run(f"Converting to {label} ...", lambda: module.convert(model, spec, config, staged))
        seconds = time.perf_counter() - t0
        if not staged.exists():
            raise ConversionError(f"The {config.target} converter did not write {staged.name}.")
        sidecar: dict[str, Any] = dict(meta)
        sidecar["conversion"] = {
            "seconds": round(seconds, 3),
            "source_model": str(model_dir),
            "options": _options(config),
        }
        report = None
        if config.verify:
            from ..verify import verify_artifact

            report = status.run(
                f"Verifying {label} against Keras on {config.verify_samples} images ...",
                lambda: verify_artifact(staged, model=model, spec=spec, n=config.verify_samples),
            )
            sidecar["verification"] = report.to_dict()
        atomic_write_json(stage / (filename + ".json"), sidecar)
        final = out / filename
        _publish(staged, final)
        _default_mode(stage / (filename + ".json"))
        os.replace(stage / (filename + ".json"), out / (filename + ".json"))
        status.print(f"[green]wrote[/] {final}" + (f"  ({report.summary()})" if report else ""))
        return Artifact(path=final, target=config.target, precision=config.precision,
                        input_type=config.input_type, channels=config.channels, metadata=sidecar,
                        convert_seconds=seconds, verification=report)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for d in reversed(created):  # folders this call created, deepest first, if still empty
            try:
                d.rmdir()
            except OSError:
                break
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _options(config: ExportConfig) -> dict:
    keys = ("input_type", "channels", "calib", "calib_samples", "tflite_io", "opset", "nchw",
            "dynamic_batch", "coreml_target", "coreml_palettize", "coreml_alpha_image")
    d = {k: getattr(config, k) for k in keys}
    return {k: v for k, v in d.items() if v is not None}


def convert_all(
    model_dir: str | os.PathLike,
    precision: str,
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    targets: list[str] | None = None,
    **config_kwargs,
) -> list[Artifact]:
    """Convert to every target supporting `precision` (+ input type/channels); the model
    is loaded once. A failing target does not stop the others; the first error is raised
    at the end (after every other target has been published), naming all that failed."""
    from ..modelio import load_model_dir

    input_type = config_kwargs.get("input_type", "float")
    channels = int(config_kwargs.get("channels", 3))
    todo, skipped = plan_targets(precision, input_type, channels, targets)
    status = _Status(progress)
    for t, why in skipped.items():
        status.print(f"[yellow]skipping {t}[/]: {why}")
    if not todo:
        raise UnsupportedError(
            f"No target supports precision '{precision}' with {input_type} input and {channels} channels."
        )
    configs = [ExportConfig(target=t, precision=precision, **config_kwargs) for t in todo]
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise InputError(f"Model not found: {model_dir}. Train one with `edgematting train` first.")
    model, spec = load_model_dir(model_dir)
    artifacts, errors = [], []
    for cfg in configs:
        try:
            artifacts.append(convert_model(model_dir, cfg, out_dir, progress, model=model, spec=spec))
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - collected, re-raised below
            errors.append((cfg.target, e))
            status.print(f"[red]{cfg.target} failed[/]: {e}")
    if errors:
        first = errors[0][1]
        if len(errors) > 1 or artifacts:
            done = ", ".join(a.target for a in artifacts) or "none"
            first.args = (f"{first} [failed: {', '.join(t for t, _ in errors)}; written: {done}]",)
        raise first
    return artifacts
