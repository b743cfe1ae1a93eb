"""The format table: every fact about an export target, written once.

`FORMATS` maps a target name to its `FormatSpec`: file suffix, where the contract is
embedded in the file (`METADATA_KEY`), the input dtypes and channel counts it takes, its
typed options dataclass (which is also its `convert` flags), the module that converts to
it and the runner class that runs it, and one `PrecisionSpec` per precision (what it
means, whether it reads calibration images, whether its body is full-integer, and the
verification `Tolerance` with its reason). The CLI's choices, argument validation, the
converters, the runners, verify, bench and the README's support table all read it.

Adding a target is one entry here, one converter module (``convert``, ``check_config``)
and one runner module (a `edgematting.runners.base.Runner` with ``read_embedded_metadata``).

This module is pure data and imports nothing heavy: converter and runner modules are
named by string and imported only when used.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from .errors import InputError, UnsupportedError

#: The key under which every artifact embeds its contract (TFLite metadata name, ONNX
#: metadata_props key, Core ML user_defined_metadata key) and the producer name.
METADATA_KEY = "edgematting"


class Precision(str, Enum):
    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"  # int8 weights, float activations
    INT8 = "int8"  # calibrated integer quantization
    INT8_QAT = "int8-qat"  # quantization-aware fine-tuning, then full int8
    INT16X8 = "int16x8"  # int16 activations x int8 weights


class InputType(str, Enum):
    FLOAT = "float"  # normalized float32 NHWC, as the Keras model takes
    UINT8 = "uint8"  # raw camera bytes; normalization folded into the graph


@dataclass(frozen=True)
class Tolerance:
    """How far a converted artifact may be from the Keras model (`edgematting.verify`)."""

    max_abs: float | None = None  # largest |artifact - keras| over all pixels
    mean_abs: float | None = None  # mean |artifact - keras|
    min_iou: float | None = None  # IoU of the two masks thresholded at the output's threshold
    min_psnr: float | None = None  # dB, peak = 1 (output range 0..1)
    reason: str = ""
    # IoU is checked on pixels whose Keras output is at least `iou_band` away from the
    # threshold: a pixel closer than that may flip under an error this precision is
    # allowed to make. (Untrained models sit at ~0.5 everywhere; without the band one
    # 1/256 output step would flip the whole mask.) The plain IoU is reported too.
    iou_band: float = 0.0

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def for_output_step(self, step: float | None) -> "Tolerance":
        """This tolerance for an artifact whose output is quantized in steps of `step` (an
        8-bit image output: 1/255 of the alpha range). A row that bounds the worst pixel
        (the float rows) compares in the output's own quantization step: rounding to the
        nearest step moves a pixel by up to half a step, so max/mean bounds grow by that
        and the IoU band by one step. Rows without a worst-pixel bound already allow for
        quantized outputs and are returned as they are."""
        if not step or self.max_abs is None:
            return self
        half = step / 2
        return dataclasses.replace(
            self, max_abs=self.max_abs + half, mean_abs=None if self.mean_abs is None else self.mean_abs + half,
            iou_band=max(self.iou_band, step),
            reason=f"{self.reason}; compared in the 8-bit output's own step ({step:.3g}): bounds + half a step")


@dataclass(frozen=True)
class PrecisionSpec:
    """One precision of one target."""

    description: str
    tolerance: Tolerance
    calibrated: bool = False  # reads calibration images (convert --calib)
    full_integer: bool = False  # integer body: I/O may be integer too (TFLite --tflite-io)


# --------------------------------------------------------------------------------------
# options: one dataclass per target; field metadata is the command-line flag
# --------------------------------------------------------------------------------------
def suggest(name: str, choices) -> str:
    """" Did you mean 'x'?" for the closest of `choices`, or ""."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


def option(default=None, *, flag: str | None = None, help: str = "", choices=None, kind=None,
           action: str | None = None, factory=None):
    """A dataclass field that is also a `convert` flag (flag=None: library-only option)."""
    md = {"flag": flag, "help": help, "choices": choices, "kind": kind, "action": action}
    if factory is not None:
        return field(default_factory=factory, metadata=md)
    return field(default=default, metadata=md)


def check_choice(value, choices, flag: str) -> None:
    """InputError (with a suggestion) unless `value` is None or one of `choices`."""
    if value is not None and value not in choices:
        raise InputError(f"{flag} takes {', '.join(map(str, choices))}, not {value!r}."
                         + suggest(str(value), [str(c) for c in choices]))


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


#: I/O dtypes a full-integer TFLite body can be wrapped in.
TFLITE_IO = ("int8", "uint8", "float")


@dataclass
class TFLiteOptions:
    io: str | None = option(None, flag="--tflite-io", choices=TFLITE_IO,
                            help="I/O type around a full-integer body (default: uint8 with --input uint8, else float)")
    #: tensors left in float in a full-integer model (`bench --keep-float N` picks them)
    keep_float: tuple[str, ...] = option(factory=tuple)
    qat: QATOptions = option(factory=QATOptions)

    def __post_init__(self):
        check_choice(self.io, TFLITE_IO, "--tflite-io")
        self.keep_float = tuple(str(n) for n in self.keep_float)
        if isinstance(self.qat, dict):
            self.qat = QATOptions(**self.qat)


#: Core ML deployment targets the CLI accepts; ML programs start at iOS15.
COREML_TARGETS = ("iOS15", "iOS16", "iOS17", "iOS18")


def parse_coreml_target(name: str) -> str:
    """Normalize "ios16"/"iOS16" -> "iOS16"; anything else is refused."""
    norm = {t.lower(): t for t in COREML_TARGETS}
    key = str(name).strip().lower()
    if key not in norm:
        if key in ("ios13", "ios14", "macos10.15", "macos11"):
            raise UnsupportedError(
                f"Core ML target '{name}' predates ML programs; edgematting writes ML programs "
                f"(.mlpackage). Use one of: {', '.join(COREML_TARGETS)}."
            )
        raise InputError(f"Unknown Core ML target '{name}'. Valid: {', '.join(COREML_TARGETS)}.")
    return norm[key]


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

    def __post_init__(self):
        self.deployment_target = parse_coreml_target(self.deployment_target)
        check_choice(self.palettize, (2, 4, 6, 8), "--palettize")
        check_choice(self.palettize_mode, ("kmeans", "uniform"), "--palettize-mode")


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


# --------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FormatSpec:
    name: str
    title: str  # how people write it ("Core ML"): the options' argument group
    suffix: str
    precisions: dict[str, PrecisionSpec]
    input_types: tuple[str, ...]
    channels: tuple[int, ...]
    options: type  # the typed options dataclass; its flagged fields are `convert` flags
    converter: str  # module with convert() and check_config(); imported when used
    runner: str  # "module:Class" of its Runner; imported when used
    runtime: str  # what runs it
    other_suffixes: tuple[str, ...] = ()  # also recognised as this target (never written)
    metadata_key: str = METADATA_KEY

    def supports(self, precision: str) -> bool:
        return precision in self.precisions

    def precision(self, name: str) -> PrecisionSpec:
        if name not in self.precisions:
            raise UnsupportedError(f"Target '{self.name}' has no precision '{name}'; valid: {', '.join(self.precisions)}.")
        return self.precisions[name]


# Verification tolerances (`PrecisionSpec.tolerance`), each with its reason. Mask IoU is
# computed on thresholded outputs; pixels whose Keras output sits right at the threshold
# may flip under any rounding, so IoU is only demanded where errors are larger than float
# noise. Only float32 rows bound the worst pixel. Below fp32 the worst-pixel error is
# reported but not bounded: on a soft alpha matte one edge pixel can move by 0.2-0.7
# (measured on a trained MattingNet: dynamic 0.24, int8 0.66) while mean error and mask
# IoU show the matte is faithful. fp32 rows check IoU outside a band as wide as their
# max_abs bound: float accumulation order differs between CPUs (oneDNN picks kernels by
# instruction set), so a pixel within 1e-5 of the threshold may flip on one machine and
# not on another, while max_abs stays ~1e-5.
FORMATS: dict[str, FormatSpec] = {
    "tflite": FormatSpec(
        name="tflite", title="TFLite", suffix=".tflite",
        precisions={
            "fp32": PrecisionSpec("float32 weights and activations", Tolerance(
                max_abs=1e-4, min_iou=0.999, iou_band=1e-4,
                reason="same float32 graph; only op fusion/reordering differs (measured ~1e-7)")),
            "fp16": PrecisionSpec("float16 weights, float32 compute", Tolerance(
                mean_abs=2e-3, min_iou=0.995, iou_band=0.005,
                reason="only weights are rounded to fp16 (compute stays fp32): ~1e-3 relative weight error")),
            "dynamic": PrecisionSpec("int8 weights, activations quantized on the fly", Tolerance(
                mean_abs=1e-2, min_iou=0.98, iou_band=0.02,
                reason="int8 weights; activations quantized per batch on the fly: between fp16 and full int8")),
            "int8": PrecisionSpec(
                "full-integer, calibrated (int8/uint8 I/O or float I/O around an int8 body)", Tolerance(
                    mean_abs=0.02, min_iou=0.98, iou_band=0.02,
                    reason="8-bit activations calibrated on few images: small mean error, no bound "
                           "on the worst pixel; the output itself is 1/256-quantized"),
                calibrated=True, full_integer=True),
            "int8-qat": PrecisionSpec(
                "quantization-aware fine-tuning (tfmot), then full-integer int8", Tolerance(
                    mean_abs=0.03, min_iou=0.97, iou_band=0.03,
                    reason="QAT fine-tunes the weights, so it is compared to the pre-QAT Keras model "
                           "and differs by the fine-tuning as well as by quantization"),
                calibrated=True, full_integer=True),
            "int16x8": PrecisionSpec(
                "int16 activations x int8 weights, calibrated", Tolerance(
                    mean_abs=5e-3, min_iou=0.99, iou_band=0.01,
                    reason="int16 activations (65536 levels) x int8 weights: weight rounding dominates; "
                           "between int8 and fp16"),
                calibrated=True, full_integer=True),
        },
        input_types=("float", "uint8"), channels=(3, 4), options=TFLiteOptions,
        converter="edgematting.converters.tflite", runner="edgematting.runners.tflite:TFLiteRunner",
        runtime="LiteRT (ai-edge-litert)",
    ),
    "coreml": FormatSpec(
        name="coreml", title="Core ML", suffix=".mlpackage",
        precisions={
            "fp32": PrecisionSpec("ML program, float32 compute", Tolerance(
                max_abs=1e-3, min_iou=0.995, iou_band=1e-3,
                reason="float32 ML program; Core ML may reorder reductions and use its own "
                       "bilinear kernels, so allow more than the bit-faithful targets")),
            "fp16": PrecisionSpec("ML program, float16 compute", Tolerance(
                mean_abs=2e-3, min_iou=0.995, iou_band=0.005,
                reason="fp16 compute throughout the ML program")),
            "int8": PrecisionSpec(
                "8-bit linear weight quantization (coremltools.optimize), fp16 compute", Tolerance(
                    mean_abs=0.02, min_iou=0.98, iou_band=0.02,
                    reason="8-bit linear weight quantization with fp16 compute")),
        },
        input_types=("float", "uint8"),  # uint8 = ImageType input (pixel buffer)
        channels=(3,), options=CoreMLOptions,
        converter="edgematting.converters.coreml", runner="edgematting.runners.coreml:CoreMLRunner",
        runtime="Core ML (macOS) / numpy MIL reference interpreter (elsewhere)",
        other_suffixes=(".mlmodel",),
    ),
    "onnx": FormatSpec(
        name="onnx", title="ONNX", suffix=".onnx",
        precisions={
            "fp32": PrecisionSpec("tf2onnx, float32", Tolerance(
                max_abs=1e-4, min_iou=0.999, iou_band=1e-4, reason="same float32 graph via tf2onnx; measured ~1e-7")),
            "fp16": PrecisionSpec("float16 weights and compute (I/O stays float32)", Tolerance(
                mean_abs=2e-3, min_iou=0.995, iou_band=0.005,
                reason="fp16 weights and activations (11-bit mantissa), I/O kept fp32")),
            "dynamic": PrecisionSpec("int8 weights (per channel), float compute", Tolerance(
                mean_abs=1e-2, min_iou=0.98, iou_band=0.02,
                reason="per-channel int8 weights dequantized in the graph, float32 compute "
                       "(measured mean 2.5e-3 on the trained tiny models)")),
            "int8": PrecisionSpec(
                "onnxruntime static QDQ int8, calibrated", Tolerance(
                    mean_abs=0.02, min_iou=0.98, iou_band=0.02,
                    reason="static QDQ int8, per-channel 7-bit weights, MinMax calibration"),
                calibrated=True),
        },
        input_types=("float", "uint8"), channels=(3, 4), options=OnnxOptions,
        converter="edgematting.converters.onnx", runner="edgematting.runners.onnx:OnnxRunner",
        runtime="onnxruntime (CPU)",
    ),
}

#: Verification tolerance of each (target, precision), from `FORMATS`.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    (t, p): ps.tolerance for t, s in FORMATS.items() for p, ps in s.precisions.items()
}


def get_format(name: str) -> FormatSpec:
    """The FormatSpec of target `name`; InputError listing the valid ones (with a suggestion)."""
    if name not in FORMATS:
        raise InputError(f"Unknown target '{name}'. Valid targets: {', '.join(FORMATS)}, all." + suggest(name, FORMATS))
    return FORMATS[name]


def tolerance_for(target: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(target, precision)]
    except KeyError:
        raise InputError(f"No verification tolerance for {target}/{precision}; add one to its PrecisionSpec "
                         "in edgematting.formats.FORMATS (with the reason).") from None


def is_calibrated(target: str, precision: str) -> bool:
    """Does converting `target` at `precision` read calibration images?"""
    return get_format(target).supports(precision) and FORMATS[target].precisions[precision].calibrated


def valid_combinations() -> list[tuple[str, str]]:
    return [(t, p) for t, s in FORMATS.items() for p in s.precisions]


def check_supported(target: str, precision: str, input_type: str = "float", channels: int = 3) -> None:
    """Raise UnsupportedError (listing what is valid) for a combination a target lacks."""
    spec = get_format(target)
    all_precisions = [p.value for p in Precision]
    if precision not in all_precisions:
        raise InputError(f"Unknown precision '{precision}'. Valid: {', '.join(all_precisions)}."
                         + suggest(precision, all_precisions))
    if not spec.supports(precision):
        raise UnsupportedError(
            f"Target '{target}' does not support precision '{precision}'. "
            f"It supports: {', '.join(spec.precisions)}. Targets supporting '{precision}': "
            + (", ".join(t for t, s in FORMATS.items() if s.supports(precision)) or "none"))
    if input_type not in spec.input_types:
        raise UnsupportedError(
            f"Target '{target}' does not support input '{input_type}'; valid: {', '.join(spec.input_types)}.")
    if channels not in spec.channels:
        raise UnsupportedError(
            f"Target '{target}' does not support {channels}-channel input; valid: {', '.join(map(str, spec.channels))}.")


def target_of(path: str | os.PathLike) -> str:
    """"tflite" | "onnx" | "coreml" from the file suffix, or "keras" for a model directory
    / ``model.keras``. InputError otherwise."""
    p = Path(path)
    suffix = p.suffix.lower()
    for name, t in FORMATS.items():
        if suffix in (t.suffix, *t.other_suffixes):
            return name
    if p.is_dir() or suffix == ".keras":
        return "keras"
    raise InputError(
        f"Don't know how to run '{p}': expected a " + ", ".join(t.suffix for t in FORMATS.values())
        + " file, or a model directory (model.keras + model.json).")


def artifact_suffixes() -> set[str]:
    """The suffixes of the files converters write."""
    return {t.suffix for t in FORMATS.values()}


def support_table_markdown() -> str:
    """The README's support table, generated from FORMATS."""
    precisions = [p.value for p in Precision]
    lines = ["| target | file | runtime | " + " | ".join(precisions) + " | input | channels |"]
    lines.append("|" + "---|" * (len(precisions) + 5))
    for t, s in FORMATS.items():
        marks = ["yes" if s.supports(p) else "-" for p in precisions]
        lines.append(f"| {t} | `{s.suffix}` | {s.runtime} | " + " | ".join(marks)
                     + f" | {', '.join(s.input_types)} | {', '.join(map(str, s.channels))} |")
    return "\n".join(lines)


def option_fields(options_cls) -> list[dataclasses.Field]:
    """The fields of an options dataclass that are command-line flags."""
    return [f for f in dataclasses.fields(options_cls) if f.metadata.get("flag")]
