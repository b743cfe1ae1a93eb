"""The converter contract: one registry of targets and precisions, one config, one artifact.

The registry is the capability table: the CLI's choices, argument validation and the
README's support table are all generated from `REGISTRY`. Every target module
(`edgematting.converters.tflite`, `.coreml`, `.onnx`) exposes the same functions::

    check_config(config: ExportConfig) -> None        # combination checks, before any work
    convert(model, spec: ModelSpec, config: ExportConfig, out_path: Path) -> dict
    read_embedded_metadata(path) -> dict

`convert` writes the artifact to `out_path` (atomically) and returns the metadata to record
(the schema is `edgematting.contract.artifact_metadata`; apps read it from the sidecar and
the same metadata is embedded in each file).

`ExportConfig` holds the options common to every target and one typed options dataclass
per target (`TFLiteOptions`, `CoreMLOptions`, `OnnxOptions`). Each option field carries its
command-line flag, choices and help in its metadata, so `add_option_arguments` builds the
`convert` command's flags and `config_kwargs_from_args` reads them back: one definition.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import InputError, UnsupportedError


class Target(str, Enum):
    TFLITE = "tflite"
    COREML = "coreml"
    ONNX = "onnx"


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"  # int8 weights, float activations (dynamic-range)
    INT8 = "int8"  # full-integer post-training quantization (calibrated)
    INT8_QAT = "int8-qat"  # quantization-aware fine-tuning, then full int8
    INT16X8 = "int16x8"  # int16 activations x int8 weights (TFLite)


class InputType(str, Enum):
    FLOAT = "float"  # normalized float32 NHWC, as the Keras model takes
    UINT8 = "uint8"  # raw camera bytes; normalization folded into the graph


@dataclass(frozen=True)
class TargetSpec:
    name: str
    suffix: str
    precisions: dict[str, str]  # precision -> what it means for this target
    input_types: tuple[str, ...]
    channels: tuple[int, ...]
    module: str  # imported lazily: heavy dependencies load only when used
    runtime: str  # what runs it
    other_suffixes: tuple[str, ...] = ()  # also recognised as this target (never written)

    def supports(self, precision: str) -> bool:
        return precision in self.precisions


REGISTRY: dict[str, TargetSpec] = {
    "tflite": TargetSpec(
        name="tflite",
        suffix=".tflite",
        precisions={
            "fp32": "float32 weights and activations",
            "fp16": "float16 weights, float32 compute",
            "dynamic": "int8 weights, activations quantized on the fly",
            "int8": "full-integer, calibrated (int8/uint8 I/O or float I/O around an int8 body)",
            "int8-qat": "quantization-aware fine-tuning (tfmot), then full-integer int8",
            "int16x8": "int16 activations x int8 weights, calibrated",
        },
        input_types=("float", "uint8"),
        channels=(3, 4),
        module="edgematting.converters.tflite",
        runtime="LiteRT (ai-edge-litert)",
    ),
    "coreml": TargetSpec(
        name="coreml",
        suffix=".mlpackage",
        precisions={
            "fp32": "ML program, float32 compute",
            "fp16": "ML program, float16 compute",
            "int8": "8-bit linear weight quantization (coremltools.optimize), fp16 compute",
        },
        input_types=("float", "uint8"),  # uint8 = ImageType input (pixel buffer)
        channels=(3,),
        module="edgematting.converters.coreml",
        runtime="Core ML (macOS) / numpy MIL reference interpreter (elsewhere)",
        other_suffixes=(".mlmodel",),
    ),
    "onnx": TargetSpec(
        name="onnx",
        suffix=".onnx",
        precisions={
            "fp32": "tf2onnx, float32",
            "fp16": "float16 weights and compute (I/O stays float32)",
            "dynamic": "int8 weights (per channel), float compute",
            "int8": "onnxruntime static QDQ int8, calibrated",
        },
        input_types=("float", "uint8"),
        channels=(3, 4),
        module="edgematting.converters.onnx",
        runtime="onnxruntime (CPU)",
    ),
}


def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def get_target(name: str) -> TargetSpec:
    if name not in REGISTRY:
        raise InputError(
            f"Unknown target '{name}'. Valid targets: {', '.join(REGISTRY)}, all."
            + _suggest(name, REGISTRY)
        )
    return REGISTRY[name]


def valid_combinations() -> list[tuple[str, str]]:
    return [(t, p) for t, s in REGISTRY.items() for p in s.precisions]


def check_supported(target: str, precision: str, input_type: str = "float", channels: int = 3) -> None:
    """Raise UnsupportedError (listing what is valid) for a combination a target lacks."""
    spec = get_target(target)
    all_precisions = [p.value for p in Precision]
    if precision not in all_precisions:
        raise InputError(
            f"Unknown precision '{precision}'. Valid: {', '.join(all_precisions)}."
            + _suggest(precision, all_precisions)
        )
    if not spec.supports(precision):
        raise UnsupportedError(
            f"Target '{target}' does not support precision '{precision}'. "
            f"It supports: {', '.join(spec.precisions)}. Targets supporting '{precision}': "
            + (", ".join(t for t, s in REGISTRY.items() if s.supports(precision)) or "none")
        )
    if input_type not in spec.input_types:
        raise UnsupportedError(
            f"Target '{target}' does not support input '{input_type}'; valid: {', '.join(spec.input_types)}."
        )
    if channels not in spec.channels:
        raise UnsupportedError(
            f"Target '{target}' does not support {channels}-channel input; valid: "
            f"{', '.join(map(str, spec.channels))}."
        )


def support_table_markdown() -> str:
    """The README's support table, generated from REGISTRY."""
    precisions = [p.value for p in Precision]
    lines = ["| target | file | runtime | " + " | ".join(precisions) + " | input | channels |"]
    lines.append("|" + "---|" * (len(precisions) + 5))
    for t, s in REGISTRY.items():
        marks = ["yes" if s.supports(p) else "-" for p in precisions]
        lines.append(
            f"| {t} | `{s.suffix}` | {s.runtime} | " + " | ".join(marks)
            + f" | {', '.join(s.input_types)} | {', '.join(map(str, s.channels))} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# options: one dataclass per target; field metadata is the command-line flag
# --------------------------------------------------------------------------------------
def option(default=None, *, flag: str | None = None, help: str = "", choices=None, kind=None,
           action: str | None = None, factory=None):
    """A dataclass field that is also a `convert` flag (flag=None: library-only option)."""
    md = {"flag": flag, "help": help, "choices": choices, "kind": kind, "action": action}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def _choice(value, choices, flag: str):
    if value is not None and value not in choices:
        raise InputError(f"{flag} takes {', '.join(map(str, choices))}, not {value!r}."
                         + _suggest(str(value), [str(c) for c in choices]))


@dataclass
class QATOptions:
    """Quantization-aware fine-tuning (`edgematting.quantization.qat`), int8-qat only."""

    steps: int = option(200, help="fine-tuning steps")
    batch: int = option(8, help="batch size")
    lr: float = option(1e-4, help="Adam learning rate")
    freeze_bn: bool = option(True, help="keep BatchNormalization in inference mode")
    range_samples: int = option(32, help="images that initialize the activation ranges")

    def __post_init__(self):
        for name in ("steps", "batch", "range_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"QAT {name} must be a positive integer, got {v!r}.")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise InputError(f"QAT lr must be a positive number, got {self.lr!r}.")


TFLITE_IO = ("int8", "uint8", "float")


@dataclass
class TFLiteOptions:
    io: str | None = option(None, flag="--tflite-io", choices=TFLITE_IO,
                            help="I/O type around a full-integer body (default: uint8 with --input uint8, else float)")
    #: tensors left in float in a full-integer model (`bench --keep-float N` picks them)
    keep_float: tuple[str, ...] = option(factory=tuple)
    qat: QATOptions = option(factory=QATOptions)

    def __post_init__(self):
        _choice(self.io, TFLITE_IO, "--tflite-io")
        self.keep_float = tuple(str(n) for n in self.keep_float)
        if isinstance(self.qat, dict):
            self.qat = QATOptions(**self.qat)


COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")


@dataclass
class CoreMLOptions:
    deployment_target: str = option("iOS15", flag="--coreml-target", choices=COREML_TARGETS,
                                    help="minimum deployment target (ML programs start at iOS15)")
    palettize: int | None = option(None, flag="--palettize", choices=(2, 4, 6, 8), kind=int,
                                   help="palettize weights to 2/4/6/8 bits (with fp16/fp32)")
    palettize_mode: str = option("kmeans", flag="--palettize-mode", choices=("kmeans", "uniform"),
                                 help="how palette entries are chosen")
    weight_threshold: int | None = option(None, help="smallest weight tensor (elements) that is compressed")
    alpha_image: bool = option(False, flag="--alpha-image", action="store_true",
                               help="grayscale image output (alpha x 255)")
    author: str = option("", flag="--author", help="author stored in the model")
    license: str = option("", flag="--license", help="license stored in the model")

    def __post_init__(self):
        from .coreml import parse_target  # light: coremltools is imported only to convert

        self.deployment_target = parse_target(self.deployment_target)
        _choice(self.palettize, (2, 4, 6, 8), "--palettize")
        _choice(self.palettize_mode, ("kmeans", "uniform"), "--palettize-mode")


ONNX_OPSETS = (13, 18)


@dataclass
class OnnxOptions:
    opset: int = option(17, flag="--opset", kind=int, help=f"ONNX opset ({ONNX_OPSETS[0]}..{ONNX_OPSETS[1]})")
    nchw: bool = option(False, flag="--nchw", action="store_true", help="NCHW input layout")
    dynamic_batch: bool = option(True, flag="--no-dynamic-batch", action="store_false", help="fixed batch size 1")

    def __post_init__(self):
        lo, hi = ONNX_OPSETS
        if isinstance(self.opset, bool) or not isinstance(self.opset, int) or not lo <= self.opset <= hi:
            raise InputError(f"--opset {self.opset} is outside the range this converter supports ({lo}..{hi}).")


#: ExportConfig field -> (options class, argument group title)
TARGET_OPTIONS = {"tflite": (TFLiteOptions, "TFLite"), "coreml": (CoreMLOptions, "Core ML"),
                  "onnx": (OnnxOptions, "ONNX")}


@dataclass
class ExportConfig:
    """Everything one conversion needs. Strings are converted to enums and checked.

    Per-target options live in `tflite`, `coreml` and `onnx` (dataclasses or dicts)."""

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
    tflite: TFLiteOptions = field(default_factory=TFLiteOptions)
    coreml: CoreMLOptions = field(default_factory=CoreMLOptions)
    onnx: OnnxOptions = field(default_factory=OnnxOptions)

    def __post_init__(self):
        self.target = Target(get_target(str(self.target)).name).value
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
        for name, (cls, _) in TARGET_OPTIONS.items():
            v = getattr(self, name)
            if isinstance(v, dict):
                setattr(self, name, cls(**v))
            elif not isinstance(v, cls):
                raise TypeError(f"ExportConfig.{name} must be a {cls.__name__} or a dict")
        if isinstance(self.guided_filter, dict):
            from ..imageops import GuidedFilter

            try:
                self.guided_filter = GuidedFilter(**self.guided_filter)
            except (TypeError, ValueError) as e:
                raise InputError(f"guided_filter: {e}") from None
        check_supported(self.target, self.precision, self.input_type, self.channels)
        from . import target_module

        target_module(self.target).check_config(self)

    @property
    def options(self):
        """The options dataclass of this config's target."""
        return getattr(self, self.target)

    @property
    def layout(self) -> str:
        return "NCHW" if (self.target == "onnx" and self.onnx.nchw) else "NHWC"

    def replace(self, **changes) -> "ExportConfig":
        return dataclasses.replace(self, **changes)

    def options_dict(self) -> dict[str, Any]:
        """What the sidecar records under conversion.options."""
        d = {k: getattr(self, k) for k in ("input_type", "channels", "calib", "calib_samples")}
        if self.guided_filter is not None:
            d["guided_filter"] = dataclasses.asdict(self.guided_filter)
        d[self.target] = dataclasses.asdict(self.options)
        return d


def _dest(target: str, f) -> str:
    return f"{target}__{f.name}"


def config_kwargs_from_args(args) -> dict[str, Any]:
    """ExportConfig keyword arguments (all but target) from `convert`'s parsed arguments:
    the common options plus one dict per target from `add_option_arguments`' flags."""
    from ..predict import parse_upsample

    kw: dict[str, Any] = dict(
        precision=args.precision, input_type=args.input_type, channels=args.channels, calib=args.calib,
        calib_samples=args.calib_samples, verify=args.verify, verify_samples=args.verify_samples,
        verify_data=args.verify_data,
        guided_filter=parse_upsample(args.upsample, args.guided_radius, args.guided_eps))
    for name, (opt_cls, _) in TARGET_OPTIONS.items():
        kw[name] = {f.name: getattr(args, _dest(name, f)) for f in dataclasses.fields(opt_cls)
                    if f.metadata.get("flag")}
    return kw


def add_option_arguments(parser) -> None:
    """Add every per-target option flag to `parser`, one argument group per target."""
    for name, (opt_cls, title) in TARGET_OPTIONS.items():
        group = parser.add_argument_group(title)
        for f in dataclasses.fields(opt_cls):
            md = f.metadata
            if not md.get("flag"):
                continue
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
    if config.target == "coreml" and config.coreml.palettize:
        parts.append(f"pal{config.coreml.palettize}")
    if config.target == "onnx" and config.onnx.nchw:
        parts.append("nchw")
    if config.target == "tflite" and config.tflite.io is not None:
        parts.append(f"io{config.tflite.io}")
    if config.target == "tflite" and config.tflite.keep_float:
        parts.append(f"keepfloat{len(config.tflite.keep_float)}")
    return "_".join(parts) + REGISTRY[config.target].suffix


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
