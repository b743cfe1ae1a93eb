"""The converter contract: one registry of targets and precisions, one config, one artifact.

The registry is the capability table: the CLI's choices, argument validation and the
README's support table are all generated from `REGISTRY`. Every target module
(`edgematting.converters.tflite`, `.coreml`, `.onnx`) exposes the same function::

    convert(model, spec: ModelSpec, config: ExportConfig, out_path: Path) -> dict

which writes the artifact to `out_path` (atomically) and returns the metadata to record.
The sidecar schema (`artifact_metadata`) is what apps (android_demo) read; the same
metadata is embedded in each file.
"""
from __future__ import annotations

import datetime as _dt
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
    ),
    "onnx": TargetSpec(
        name="onnx",
        suffix=".onnx",
        precisions={
            "fp32": "tf2onnx, float32",
            "fp16": "float16 weights and compute (I/O stays float32)",
            "dynamic": "onnxruntime dynamic int8 quantization",
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


@dataclass
class ExportConfig:
    """Everything one conversion needs. Strings are converted to enums and checked."""

    target: str = "tflite"
    precision: str = "fp32"
    input_type: str = "float"
    channels: int = 3
    calib: str = "synthetic"  # "synthetic" or a folder of images
    calib_samples: int = 64
    # TFLite, full-integer only: the I/O type around the int8 body. None = derived from
    # input_type ("uint8" input -> uint8 pixels with folded normalization; else float).
    tflite_io: str | None = None
    # Core ML
    coreml_target: str = "iOS15"
    coreml_palettize: int | None = None  # 2/4/6/8-bit palettization of weights
    coreml_alpha_image: bool = False  # grayscale image output
    author: str = ""
    license: str = ""
    # ONNX
    opset: int = 17
    nchw: bool = False
    dynamic_batch: bool = True
    # verification after conversion
    verify: bool = True
    verify_samples: int = 8
    extra: dict[str, Any] = field(default_factory=dict)

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
        self.channels = int(self.channels)
        if self.calib_samples < 1:
            raise InputError("--calib-samples must be at least 1.")
        check_supported(self.target, self.precision, self.input_type, self.channels)
        if self.coreml_palettize is not None and self.coreml_palettize not in (2, 4, 6, 8):
            raise InputError("--palettize takes 2, 4, 6 or 8 bits.")


def artifact_filename(model_name: str, config: ExportConfig) -> str:
    parts = [model_name, config.precision]
    if config.input_type != "float":
        parts.append(config.input_type)
    if config.channels != 3:
        parts.append(f"{config.channels}ch")
    if config.coreml_palettize and config.target == "coreml":
        parts.append(f"pal{config.coreml_palettize}")
    # variants that must not overwrite the default file of the same precision
    if config.target == "onnx" and config.nchw:
        parts.append("nchw")
    if config.target == "tflite" and config.tflite_io is not None:
        parts.append(f"io{config.tflite_io}")
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
        return self.path.with_name(self.path.name + ".json")

    @property
    def size_bytes(self) -> int:
        p = Path(self.path)
        if p.is_dir():
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        return p.stat().st_size if p.exists() else 0


def artifact_metadata(spec, config: ExportConfig, filename: str, **io) -> dict[str, Any]:
    """The sidecar/embedded metadata schema (format_version 1). Apps read this.

    io may override: input_dtype, input_quant (scale, zero_point), output_dtype,
    output_quant, normalization_in_model.
    """
    from .. import __version__

    h, w = spec.input_size
    uint8 = config.input_type == "uint8"
    return {
        "format": "edgematting-artifact",
        "format_version": 1,
        "model_name": spec.name,
        "model_version": spec.version,
        "architecture": spec.architecture,
        "target": config.target,
        "precision": config.precision,
        "file": filename,
        "input": {
            "name": spec.input_name,
            "height": h,
            "width": w,
            "channels": config.channels,
            "channel_order": "RGBA" if config.channels == 4 else spec.channel_order,
            "layout": "NCHW" if (config.target == "onnx" and config.nchw) else "NHWC",
            "dtype": io.get("input_dtype", "uint8" if uint8 else "float32"),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "normalization_in_model": io.get("normalization_in_model", uint8),
            "quantization": io.get("input_quant"),
        },
        "output": {
            "name": spec.output_name,
            "height": h,
            "width": w,
            "channels": 1,
            "meaning": spec.output_meaning,
            "range": list(spec.output_range),
            "threshold": spec.threshold,
            "dtype": io.get("output_dtype", "float32"),
            "quantization": io.get("output_quant"),
        },
        "edgematting_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
