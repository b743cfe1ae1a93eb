"""Converters: Keras model directory -> TFLite / Core ML / ONNX artifacts, verified.

    >>> from edgematting.converters import ExportConfig, convert, convert_model
    >>> art = convert_model("runs/fast", ExportConfig(target="tflite", precision="int8"))
    >>> art.path, art.verification.passed
    >>> run = convert("runs/fast", configs_for("all", precision="fp32")[0])  # several at once
    >>> run.artifacts, run.failures

This is the one conversion path: the CLI (`convert`), `bench` (missing artifacts, the
keep-float model), `quickstart` and the QAT report all call `convert` or `convert_model`.

`convert_model` dispatches to ``target_module(target).convert`` (the module named by its `FormatSpec`) (the uint8/4-channel
input wrapper, `wrappers.wrap_model`, is applied by each target module so it can choose
the pixel dtype its quantizer wants), times it, verifies the result against the Keras
model (unless ``config.verify`` is False) and only then publishes the artifact and its
sidecar (`edgematting.contract.sidecar_path`). `convert` loads the model once and
converts every config, collecting failures instead of stopping at the first.

Nothing half-written is ever left in the output folder: the target writes into a hidden
staging folder inside it (same filesystem, so publishing is an ``os.replace``); the
staging folder is removed on any failure, a failed verification or Ctrl-C.

The sidecar holds the embedded metadata (`contract.artifact_metadata`) plus the
sidecar-only sections listed in `contract.SIDECAR_ONLY_KEYS` ("conversion", "verification").
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .. import interrupts
from ..contract import SIDECAR_ONLY_KEYS, sidecar_path
from ..errors import ConversionError, EdgemattingError, InputError, UnsupportedError
from ..formats import (FORMATS, CoreMLOptions, FormatSpec, OnnxOptions, Precision, QATOptions, TFLiteOptions,
                       check_supported, get_format, support_table_markdown, valid_combinations)
from ..runners import read_embedded_metadata
from .base import REGISTRY, Artifact, ExportConfig, add_option_arguments, artifact_filename, target_module

__all__ = [
    "FORMATS", "REGISTRY", "Artifact", "ExportConfig", "TFLiteOptions", "CoreMLOptions", "OnnxOptions", "QATOptions",
    "Precision", "FormatSpec", "artifact_filename", "add_option_arguments", "check_supported", "get_format",
    "support_table_markdown", "valid_combinations", "convert", "convert_model", "configs_for",
    "ConversionRun", "target_module", "read_embedded_metadata", "SIDECAR_ONLY_KEYS", "check_destination",
]


STAGING_PREFIX = ".staging-"


def check_destination(path: Path, model_name: str, force: bool = False) -> None:
    """InputError unless `path` is free or holds an artifact this toolkit wrote for the same
    model (its sidecar says so): publishing replaces what is there, and must never remove a
    user's file or folder, or another model's artifact. `force` allows it."""
    if force or not (path.exists() or path.is_symlink()):
        return
    from ..contract import FORMAT, read_sidecar

    try:
        side = read_sidecar(path, required=False)
    except InputError:
        side = None
    ours = (isinstance(side, dict) and side.get("format") == FORMAT and side.get("file") == path.name
            and side.get("model_name") == model_name)
    if not ours:
        what = "a folder" if path.is_dir() else "a file"
        whose = ("another model's artifact" if isinstance(side, dict) and side.get("format") == FORMAT
                 else f"{what} that edgematting did not write (no sidecar of ours beside it)")
        raise InputError(f"{path} already exists and is {whose}; converting would replace it. Move it away, pick "
                         "another --out, or pass --force to replace it.")


def _remove_stale_staging(out: Path) -> None:
    """Remove staging folders left by a convert that was killed (kill -9, power loss):
    those whose process is gone, or, for names without a process id, older than a day."""
    for d in out.glob(STAGING_PREFIX + "*"):
        if not d.is_dir():
            continue
        pid_text = d.name[len(STAGING_PREFIX):].split("-", 1)[0]
        if pid_text.isdigit():
            try:
                os.kill(int(pid_text), 0)
                continue  # a live process owns it (this one, or a parallel convert)
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
        elif time.time() - d.stat().st_mtime < 86400:
            continue
        shutil.rmtree(d, ignore_errors=True)


class _Status:
    """rich status line when progress is on; silent otherwise."""

    def __init__(self, progress: bool, console=None):
        self.console = None
        if progress:
            from rich.console import Console

            self.console = console or Console(stderr=True)

    def run(self, message: str, fn: Callable[[], Any]):
        interrupts.check()
        if self.console is None:
            result = fn()
        else:
            with self.console.status(message, spinner="dots"):
                result = fn()
        interrupts.check()  # a Ctrl-C that a library swallowed stops here, before anything is published
        return result

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
    force: bool = False,
) -> Artifact:
    """Convert the model in `model_dir` per `config`; return the published Artifact.

    Raises InputError (missing model, bad calibration folder), UnsupportedError,
    ConversionError, ParityError (verification failed: nothing is published),
    DependencyError. Ctrl-C leaves nothing behind either.
    """
    from .. import atomic
    from ..calibration import check_source
    from ..modelio import load_model_dir

    if not isinstance(config, ExportConfig):
        raise TypeError("config must be an ExportConfig")
    model_dir = Path(model_dir)
    if model is None and not model_dir.exists():
        raise InputError(f"Model not found: {model_dir}. Train one with `edgematting train` first.")
    if config.calibrated:
        check_source(config.calib)
    out = Path(out_dir) if out_dir is not None else model_dir / "export"
    atomic.check_output_dir(out)
    status = _Status(progress, console)
    module = target_module(config.target)
    if model is None:
        model, spec = status.run(f"Loading {model_dir}", lambda: load_model_dir(model_dir))
    from ..prior import model_channels

    model_channels(spec, config.channels)  # PriorChannelError: a prior-frame model wrapped as RGBA
    from ..calibration import default_source

    # unset: the photos the model was trained on (model.json), else synthetic
    config = config.replace(calib=default_source(spec, config.calib),
                            verify_data=default_source(spec, config.verify_data))
    from ..finite import check_keras_model

    # NaN/Inf in the model itself: exit 9 naming the layer, never a published artifact
    # (with --no-verify too) or a "max_abs nan" that blames the converter
    status.run("Checking the model's outputs are finite ...", lambda: check_keras_model(model, spec, config.verify_data))
    filename = artifact_filename(spec.name, config)
    check_destination(out / filename, spec.name, force)
    created = []
    for d in reversed([out, *out.parents]):
        if not d.exists():
            created.append(d)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_staging(out)
    stage = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out))
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
            "options": config.options_dict(),
            "calibration_images": config.calib if config.calibrated else None,
        }
        sidecar["conversion"]["sha256"] = atomic.digest(staged)  # bench trusts the verification only for this file
        report = None
        if config.verify:
            from ..verify import verify_artifact

            report = status.run(
                f"Verifying {label} against Keras on {config.verify_samples} images ({config.verify_data}) ...",
                lambda: verify_artifact(staged, model=model, spec=spec, n=config.verify_samples,
                                        data=config.verify_data),
            )
            report.artifact = str(out / filename)  # where it is published, not the staging folder
            sidecar["verification"] = report.to_dict()
        staged_side = sidecar_path(staged)
        atomic.write_json(staged_side, sidecar)
        final = out / filename
        atomic.publish(staged, final)
        atomic.publish(staged_side, sidecar_path(final))
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


def configs_for(targets, precision: str = "fp32", **common) -> tuple[list[ExportConfig], dict[str, str]]:
    """ExportConfigs for `targets` ("all", one name or a list) at `precision`.

    With "all", targets that do not support the combination are skipped and returned as
    {target: why}; a target named explicitly that does not support it raises
    UnsupportedError. Raises UnsupportedError when nothing is left, InputError for an
    unknown name or option (with a suggestion).
    """
    if targets in (None, "all", ["all"]):
        names, explicit = list(FORMATS), False
    else:
        names = [targets] if isinstance(targets, str) else list(targets)
        names, explicit = [get_format(t).name for t in names], True
    configs, skipped = [], {}
    for t in names:
        try:
            configs.append(ExportConfig(target=t, precision=precision, **common))
        except UnsupportedError as e:
            if explicit:
                raise
            skipped[t] = str(e)
    if not configs:
        raise UnsupportedError(
            f"No target supports precision '{precision}' with --input {common.get('input_type', 'float')} "
            f"--channels {common.get('channels', 3)}."
            + "".join(f"\n  {t}: {why}" for t, why in skipped.items()))
    _check_options_are_used(configs[0], {c.target for c in configs})
    return configs, skipped


def _check_options_are_used(config: ExportConfig, targets: set[str]) -> None:
    """UnsupportedError for an option flag set away from its default for a target that is
    not converted (e.g. --palettize with --target tflite): never ignore an option silently."""
    from ..formats import option_fields

    for name, fmt in FORMATS.items():
        if name in targets:
            continue
        opts, default = config.options_of(name), fmt.options()
        for f in option_fields(fmt.options):
            if getattr(opts, f.name) != getattr(default, f.name):
                flag = f.metadata["flag"]
                raise UnsupportedError(
                    f"{flag} is for {fmt.title} ({name}), which is not converted here "
                    f"(targets: {', '.join(sorted(targets))}). Add --target {name} (or all), or drop {flag}.")


@dataclass
class ConversionRun:
    """What `convert` did: published artifacts, failures (config, error), skipped existing files."""

    artifacts: list[Artifact] = field(default_factory=list)
    failures: list[tuple[ExportConfig, Exception]] = field(default_factory=list)
    existing: list[Path] = field(default_factory=list)

    def raise_for_failures(self) -> None:
        """Raise the first failure, naming every failed and written target."""
        if not self.failures:
            return
        first = self.failures[0][1]
        if len(self.failures) > 1 or self.artifacts:
            failed = ", ".join(f"{c.target} {c.precision}" for c, _ in self.failures)
            done = ", ".join(a.path.name for a in self.artifacts) or "none"
            first.args = (f"{first} [failed: {failed}; written: {done}]",)
        raise first


def convert(
    model_dir: str | os.PathLike,
    configs: ExportConfig | list[ExportConfig],
    out_dir: str | os.PathLike | None = None,
    progress: bool = True,
    *,
    console=None,
    model=None,
    spec=None,
    skip_existing: bool = False,
    force: bool = False,
) -> ConversionRun:
    """Convert the model in `model_dir` once per config (the model is loaded once).

    A failing config does not stop the others: its error is collected in
    ``run.failures`` (call ``run.raise_for_failures()`` to raise it); Ctrl-C stops at once.
    `skip_existing`: leave artifacts that are already in the output folder alone.
    `force`: replace whatever sits at an artifact's path (see `check_destination`).
    """
    from ..calibration import check_source
    from ..modelio import load_model_dir

    configs = [configs] if isinstance(configs, ExportConfig) else list(configs)
    model_dir = Path(model_dir)
    if model is None and not model_dir.exists():
        raise InputError(f"Model not found: {model_dir}. Train one with `edgematting train` first.")
    for c in configs:  # fail before any work on a bad calibration folder
        if c.calibrated:
            check_source(c.calib)
    from .. import atomic

    out = Path(out_dir) if out_dir is not None else model_dir / "export"
    atomic.check_output_dir(out)
    if spec is None and model is None and not skip_existing:  # before loading the model: model.json names it
        from ..modelio import load_spec

        name = load_spec(model_dir).name
        for c in configs:
            check_destination(out / artifact_filename(name, c), name, force)
    run = ConversionRun()
    if model is None:
        model, spec = _Status(progress, console).run(f"Loading {model_dir}", lambda: load_model_dir(model_dir))
    for c in configs:
        if skip_existing and (out / artifact_filename(spec.name, c)).exists():
            run.existing.append(out / artifact_filename(spec.name, c))
            continue
        try:
            run.artifacts.append(convert_model(model_dir, c, out, progress, model=model, spec=spec, console=console,
                                               force=force))
        except KeyboardInterrupt:
            raise
        except EdgemattingError as e:
            run.failures.append((c, e))
            if progress and len(configs) > 1:
                _Status(progress, console).print(f"[red]{c.target} {c.precision} failed[/]: {e}")
    return run
