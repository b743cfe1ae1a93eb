"""A saved model directory: the Keras model plus `model.json`.

`model.json` carries everything a converter, runner or app needs to use the model without
guessing: architecture and its config, input size, channel order, normalization and what
the output means. Layout of a model directory::

    runs/NAME/
        model.keras        # tf-keras model (Keras 2 API)
        model.json         # ModelSpec, below

Normalization is stated in pixel units so it maps onto every runtime directly:
``x = (pixel - mean) / std`` per channel, pixel in [0, 255]. (Core ML's ImageType takes
``scale = 1/std`` and ``bias = -mean/std``; TFLite uint8 input folds the same affine map.)
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError
from .imageops import DEFAULT_MEAN, DEFAULT_STD

MODEL_FILE = "model.keras"
SPEC_FILE = "model.json"
FORMAT_VERSION = 1

#: Output meaning of a model whose architecture is not registered (a compatible model
#: directory from elsewhere); a registered one's comes from its registry entry.
DEFAULT_OUTPUT_MEANING = "alpha_matte"


@dataclass
class ModelSpec:
    """The contents of `model.json`."""

    architecture: str  # a name from models.registry, e.g. "fast-scnn" | "mattingnet"
    config: dict[str, Any]  # kwargs that rebuild the architecture (models.build_model)
    input_size: tuple[int, int]  # (height, width)
    name: str = ""
    version: str = "1"
    channels: int = 3
    channel_order: str = "RGB"
    layout: str = "NHWC"
    mean: tuple[float, float, float] = DEFAULT_MEAN
    std: tuple[float, float, float] = DEFAULT_STD
    input_name: str = "image"
    output_name: str = "alpha"
    output_meaning: str = ""
    output_range: tuple[float, float] = (0.0, 1.0)
    threshold: float = 0.5
    training: dict[str, Any] = field(default_factory=dict)
    # the monotone map alpha' = clip((alpha - lo) / (hi - lo), 0, 1) folded into model.keras as its
    # last layers (`edgematting.alpha_calibration`): lo, hi, what it was fitted on, figures before
    # and after; None when the model was never calibrated (and in model.json files written before it)
    alpha_calibration: dict[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        self.input_size = tuple(int(v) for v in self.input_size)
        self.mean = tuple(float(v) for v in self.mean)
        self.std = tuple(float(v) for v in self.std)
        self.output_range = tuple(float(v) for v in self.output_range)
        if not self.name:
            self.name = self.architecture
        if (self.config or {}).get("prior"):  # the previous frame's alpha as channel 4 (edgematting.prior)
            from .prior import PRIOR_ORDER

            self.channels, self.channel_order = 4, PRIOR_ORDER
        if not self.output_meaning:
            from .models.registry import find_architecture

            arch = find_architecture(self.architecture)
            self.output_meaning = arch.output_meaning if arch else DEFAULT_OUTPUT_MEANING

    # -- normalization -------------------------------------------------------------
    def normalize(self, pixels):
        """uint8/float pixels (..., 3) in [0, 255] -> float32 model input."""
        import numpy as np

        x = np.asarray(pixels, dtype=np.float32)
        return (x - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["format"] = "edgematting-model"
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelSpec":
        d = dict(d)
        d.pop("format", None)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = {"architecture", "config", "input_size"} - set(d)
        if missing:
            raise InputError(f"model.json is missing required keys: {sorted(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known})


def save_model_dir(model, spec: ModelSpec, out_dir: str | os.PathLike) -> Path:
    """Save a Keras model and its spec into `out_dir` (each file written atomically)."""
    from . import atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_with(out / MODEL_FILE, model.save, suffix=".keras")  # Keras picks the format by suffix
    atomic.write_json(out / SPEC_FILE, spec.to_dict())
    return out


def load_spec(model_dir: str | os.PathLike) -> ModelSpec:
    p = Path(model_dir)
    spec_path = p / SPEC_FILE if p.is_dir() else p.parent / SPEC_FILE
    if not spec_path.exists():
        raise InputError(
            f"No {SPEC_FILE} found at {spec_path}. Pass a model directory written by "
            "`edgematting train` (it holds model.keras and model.json)."
        )
    try:
        return ModelSpec.from_dict(json.loads(spec_path.read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise InputError(f"{spec_path} is not a valid model.json: {e}") from e


def load_model_dir(model_dir: str | os.PathLike):
    """Return (keras_model, ModelSpec) from a model directory."""
    p = Path(model_dir)
    if not p.exists():
        raise InputError(f"Model not found: {p}. Train one with `edgematting train` first.")
    spec = load_spec(p)
    model_path = p / MODEL_FILE if p.is_dir() else p
    if not model_path.exists():
        raise InputError(f"{model_path} is missing next to {SPEC_FILE}.")
    from . import models  # registers custom layers, if any
    from ._tf import keras

    try:
        model = keras().models.load_model(
            model_path, custom_objects=models.custom_objects(), compile=False
        )
    except (OSError, ValueError) as e:
        raise InputError(f"Could not load Keras model {model_path}: {e}") from e
    check_spec_matches(model, spec, model_path)
    return model, spec


def check_spec_matches(model, spec: ModelSpec, where="model.keras") -> None:
    """InputError when model.json's input size or channels disagree with the Keras model's
    own (static) input shape: everything downstream would feed the wrong size."""
    shape = getattr(model, "input_shape", None)
    if isinstance(shape, list):
        shape = shape[0] if shape else None
    if not shape or len(shape) != 4:
        return
    h, w, c = shape[1:4]
    if (h is not None and h != spec.input_size[0]) or (w is not None and w != spec.input_size[1]):
        raise InputError(
            f"{SPEC_FILE} says input_size {spec.input_size[0]}x{spec.input_size[1]} but {where} takes "
            f"{h}x{w}: the two files do not belong together. Restore the {SPEC_FILE} written with this model "
            f"(or set input_size to [{h}, {w}]).")
    if c is not None and c != spec.channels:
        raise InputError(f"{SPEC_FILE} says {spec.channels} input channels but {where} takes {c}.")
    from .models.registry import REGISTRY

    norm = lambda n: str(n).replace("_", "-").lower()  # noqa: E731 - builders name the model after it
    built = norm(getattr(model, "name", ""))
    if built in {norm(a) for a in REGISTRY} and built != norm(spec.architecture):
        raise InputError(
            f"{SPEC_FILE} says architecture '{spec.architecture}' but {where} is a {built} model: the two files "
            f"do not belong together. Restore the {SPEC_FILE} written with this model.")
