"""The converter contract: one config, one artifact; the targets themselves are `edgematting.formats`.

`edgematting.formats.FORMATS` is the capability table: the CLI's choices, argument
validation and the README's support table are generated from it. Every target module
(`edgematting.converters.tflite`, `.coreml`, `.onnx`) exposes the same functions::

    check_config(config: ExportConfig) -> None        # combination checks, before any work
    convert(model, spec: ModelSpec, config: ExportConfig, out_path: Path) -> dict

`convert` writes the artifact to `out_path` (atomically) and returns the metadata to record
(the schema is `edgematting.contract.artifact_metadata`; apps read it from the sidecar and
the same metadata is embedded in each file, read back by the target's runner module).

`ExportConfig` holds the options common to every target and one typed options dataclass
per target (`FormatSpec.options`: `TFLiteOptions`, `CoreMLOptions`, `OnnxOptions`). Each
option field carries its command-line flag, choices and help in its metadata, so
`add_option_arguments` builds the `convert` command's flags and `config_kwargs_from_args`
reads them back: one definition.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DependencyError, InputError
from ..formats import (FORMATS, CoreMLOptions, FormatSpec, InputType, OnnxOptions, Precision, QATOptions,
                       TFLiteOptions, check_supported, get_format, is_calibrated, option_fields)

#: Kept for callers that speak of the registry: the format table itself.
REGISTRY = FORMATS


def target_module(target: str):
    """Import the converter module of `target` (DependencyError if its stack is missing)."""
    spec = get_format(target)
    try:
        return importlib.import_module(spec.converter)
    except ImportError as e:
        raise DependencyError(
            f"The {target} converter could not be imported ({e}). Install the pinned stack: pip install -e ."
        ) from e


@dataclass
class ExportConfig:
    """Everything one conversion needs. Strings are converted to enums and checked.

    Per-target options (the target's `FormatSpec.options` dataclass, or a dict of its
    fields) live in the field named after the target (`tflite`, `coreml`, `onnx`), or, for
    a target without such a field, in ``target_options[name]``. `options` is this config's."""

    target: str = "tflite"
    precision: str = "fp32"
    input_type: str = "float"
    channels: int = 3
    calib: str | None = None  # "synthetic", a folder of images, or None: the model's training photos
    calib_samples: int = 64
    # verification after conversion
    verify: bool = True
    verify_samples: int = 8
    verify_data: str | None = None  # None: the model's training photos, else synthetic
    # apps upsample the alpha with this guided filter (written to the metadata's postprocess)
    guided_filter: Any = None  # imageops.GuidedFilter | {"radius", "eps"} | None
    # who made the model and under which licence: written into every file's own metadata
    # fields (TFLite Model Metadata, Core ML author/license, ONNX metadata_props)
    author: str = ""
    license: str = ""
    tflite: TFLiteOptions = field(default_factory=TFLiteOptions)
    coreml: CoreMLOptions = field(default_factory=CoreMLOptions)
    onnx: OnnxOptions = field(default_factory=OnnxOptions)
    target_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.target = get_format(str(self.target)).name
        try:
            self.precision = Precision(str(self.precision)).value
        except ValueError:
            check_supported(self.target, str(self.precision))  # raises with a suggestion
        try:
            self.input_type = InputType(str(self.input_type)).value
        except ValueError:
            raise InputError(f"Unknown input type '{self.input_type}'. Valid: float, uint8.") from None
        if self.channels not in (3, 4, "3", "4"):
            raise InputError(f"--channels takes 3 or 4, not {self.channels!r}.")
        self.channels = int(self.channels)
        if self.calib_samples < 1:
            raise InputError("--calib-samples must be at least 1.")
        if self.verify_samples < 1:
            raise InputError("--verify-samples must be at least 1.")
        for name, fmt in FORMATS.items():
            v = getattr(self, name) if name in _OPTION_FIELDS else self.target_options.get(name, {})
            if isinstance(v, dict):
                v = fmt.options(**v)
            elif not isinstance(v, fmt.options):
                raise TypeError(f"ExportConfig.{name} must be a {fmt.options.__name__} or a dict")
            if name in _OPTION_FIELDS:
                setattr(self, name, v)
            else:
                self.target_options[name] = v
        if isinstance(self.guided_filter, dict):
            from ..imageops import GuidedFilter

            try:
                self.guided_filter = GuidedFilter(**self.guided_filter)
            except (TypeError, ValueError) as e:
                raise InputError(f"guided_filter: {e}") from None
        check_supported(self.target, self.precision, self.input_type, self.channels)
        target_module(self.target).check_config(self)

    @property
    def format(self) -> FormatSpec:
        return FORMATS[self.target]

    @property
    def options(self):
        """The options dataclass of this config's target."""
        return getattr(self, self.target) if self.target in _OPTION_FIELDS else self.target_options[self.target]

    def options_of(self, target: str):
        """The options dataclass of `target` (set even when it is not this config's)."""
        return getattr(self, target) if target in _OPTION_FIELDS else self.target_options[target]

    @property
    def calibrated(self) -> bool:
        """Does this conversion read calibration images?"""
        return is_calibrated(self.target, self.precision)

    @property
    def layout(self) -> str:
        return "NCHW" if getattr(self.options, "nchw", False) else "NHWC"

    def replace(self, **changes) -> "ExportConfig":
        return dataclasses.replace(self, **changes)

    def options_dict(self) -> dict[str, Any]:
        """What the sidecar records under conversion.options."""
        d = {k: getattr(self, k) for k in ("input_type", "channels", "calib", "calib_samples")}
        if self.guided_filter is not None:
            d["guided_filter"] = dataclasses.asdict(self.guided_filter)
        d[self.target] = dataclasses.asdict(self.options)
        return d


#: the targets whose options are named fields of ExportConfig
_OPTION_FIELDS = ("tflite", "coreml", "onnx")


def _dest(target: str, f) -> str:
    return f"{target}__{f.name}"


def config_kwargs_from_args(args) -> dict[str, Any]:
    """ExportConfig keyword arguments (all but target) from `convert`'s parsed arguments:
    the common options plus one dict per target from `add_option_arguments`' flags."""
    from ..imageops import parse_upsample

    kw: dict[str, Any] = dict(
        precision=args.precision, input_type=args.input_type, channels=args.channels, calib=args.calib,
        calib_samples=args.calib_samples, verify=args.verify, verify_samples=args.verify_samples,
        verify_data=args.verify_data, author=args.author or "", license=args.license or "",
        guided_filter=parse_upsample(args.upsample, args.guided_radius, args.guided_eps))
    for name, fmt in FORMATS.items():
        opts = {f.name: getattr(args, _dest(name, f)) for f in option_fields(fmt.options)}
        if name in _OPTION_FIELDS:
            kw[name] = opts
        else:
            kw.setdefault("target_options", {})[name] = opts
    return kw


def add_option_arguments(parser) -> None:
    """Add every per-target option flag to `parser`, one argument group per target."""
    for name, fmt in FORMATS.items():
        fields = option_fields(fmt.options)
        if not fields:
            continue
        group = parser.add_argument_group(fmt.title)
        for f in fields:
            md = f.metadata
            kw: dict[str, Any] = {"dest": _dest(name, f), "help": md.get("help") or None}
            if md.get("action"):
                kw["action"] = md["action"]
            else:
                kw["default"] = f.default
                if md.get("kind"):
                    kw["type"] = md["kind"]
                if md.get("choices"):
                    # checked by the dataclass (with a suggestion), not argparse
                    kw["metavar"] = "{" + ",".join(map(str, md["choices"])) + "}"
            group.add_argument(md["flag"], **kw)


def artifact_filename(model_name: str, config: ExportConfig) -> str:
    parts = [model_name, config.precision]
    if config.input_type != "float":
        parts.append(config.input_type)
    if config.channels != 3:
        parts.append(f"{config.channels}ch")
    # variants that must not overwrite the default file of the same precision
    variant = getattr(target_module(config.target), "filename_parts", None)
    if variant is not None:
        parts.extend(variant(config))
    return "_".join(parts) + FORMATS[config.target].suffix


@dataclass
class Artifact:
    path: Path
    target: str
    precision: str
    input_type: str
    channels: int
    metadata: dict[str, Any]
    convert_seconds: float = 0.0
    verification: Any = None  # edgematting.verify.VerificationReport, when verified

    @property
    def sidecar(self) -> Path:
        from ..contract import sidecar_path

        return sidecar_path(self.path)

    @property
    def size_bytes(self) -> int:
        p = Path(self.path)
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size if p.exists() else 0
