"""--init-weights: start a run from another model's weights, layer by layer (fine-tuning,
another input size, a progressive run's second stage, a prior-frame model from a 3-channel one).

TensorFlow and h5py are imported inside functions: `edgematting --help` must not load them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..models import custom_objects


@dataclass
class InitWeightsReport:
    """What `load_init_weights` copied: the layers loaded, and the ones skipped with why."""

    source: str
    loaded: list[str]
    skipped: list[tuple[str, str]]  # (layer, why)
    #: layers of a prior-frame model loaded from a 3-channel model's: (layer, what was done);
    #: also in `loaded`
    widened: list[tuple[str, str]] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"init weights from {self.source}: {len(self.loaded)} layers loaded, {len(self.skipped)} skipped"]
        lines += [f"  widened {name}: {what}" for name, what in self.widened]
        lines += [f"  skipped {name}: {why}" for name, why in self.skipped]
        return "\n".join(lines)


def _weights_from_h5(path: Path) -> dict[str, list]:
    import h5py

    def dec(v):
        return v.decode("utf8") if isinstance(v, bytes) else str(v)

    out: dict[str, list] = {}
    with h5py.File(path, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in g.attrs:
            raise InputError(
                f"{path} is not a Keras 2 weights file (no layer_names). Pass a model "
                "directory, a .keras model or weights saved with model.save_weights('x.h5')."
            )
        for lname in (dec(n) for n in g.attrs["layer_names"]):
            lg = g[lname]
            names = [dec(n) for n in lg.attrs.get("weight_names", [])]
            if names:
                out[lname] = [lg[n][()] for n in names]
    return out


def _weights_from_keras(path: Path) -> dict[str, list]:
    from .._tf import keras

    try:
        src = keras().models.load_model(path, custom_objects=custom_objects(), compile=False)
    except (OSError, ValueError) as e:
        raise InputError(f"Could not load --init-weights model {path}: {e}") from e
    return {layer.name: layer.get_weights() for layer in src.layers if layer.weights}


def _prior_channel_index(model, layer) -> int | None:
    """Where the prior (the 4th channel of a prior-frame model's input, `edgematting.prior`)
    sits among `layer`'s input channels: 3 when the layer reads the model's input directly,
    offset + 3 when it reads a channel concatenation that holds the input (MattingNet's
    refinement); None otherwise, or when `model` is no 4-channel model."""
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1 or inputs[0].shape[-1] != 4:
        return None
    image = inputs[0]
    try:
        x = layer.input
    except (AttributeError, ValueError):  # a layer called more than once, or never
        return None
    if x is image:
        return 3
    concat = getattr(getattr(x, "_keras_history", None), "layer", None)
    if type(concat).__name__ != "Concatenate" or concat.axis not in (-1, 3):
        return None
    offset = 0
    for t in concat.input:
        if t is image:
            return offset + 3
        if t.shape[-1] is None:
            return None
        offset += int(t.shape[-1])
    return None


def _widen_for_prior(model, layer, arrays: list, want: list[tuple]) -> list | None:
    """A prior-frame model's layer from a 3-channel model's: a Conv2D whose kernel has one
    input channel more than the source's, the one of the prior. Returns the source's arrays
    with a zero kernel slice inserted for the prior (so that the layer's output does not
    depend on the prior: the warm-started model *is* the 3-channel model), or None when this
    is not that case (any other shape mismatch is refused as before)."""
    if type(layer).__name__ != "Conv2D" or not arrays or len(want) != len(arrays):
        return None
    kernel, rest = arrays[0], arrays[1:]
    if kernel.ndim != 4 or want[0][:2] != kernel.shape[:2] or want[0][3] != kernel.shape[3] \
            or want[0][2] != kernel.shape[2] + 1 or [tuple(a.shape) for a in rest] != want[1:]:
        return None
    at = _prior_channel_index(model, layer)
    if at is None or at > kernel.shape[2]:
        return None
    import numpy as np

    wide = np.insert(kernel, at, np.zeros(kernel.shape[:2] + kernel.shape[3:], kernel.dtype), axis=2)
    return [wide, *rest]


def load_init_weights(model, source: str | os.PathLike) -> InitWeightsReport:
    """Copy weights into `model` layer by layer, matched by layer name and shape.

    `source`: a model directory (model.keras inside), a .keras model or a .h5 file (full
    model or weights). Layers missing from the source or with other shapes keep their
    fresh initialization and are listed in the report. Raises InputError if nothing
    matched (a different architecture, most likely).

    One shape mismatch is bridged: a prior-frame `model` (RGB + the previous alpha,
    `edgematting.prior`) from a 3-channel model. A convolution reading the input (or a
    concatenation holding it) gets the source's kernel for the RGB channels and zeros for
    the prior's (`InitWeightsReport.widened`), so that before any training step the prior
    model gives the 3-channel model's output whatever its prior.
    """
    p = Path(source)
    if p.is_dir():
        p = p / "model.keras"
        if not p.exists():
            raise InputError(f"--init-weights {source} is a folder without model.keras; pass a model directory.")
    suffix = p.suffix.lower()
    if suffix == ".keras":
        src = _weights_from_keras(p)
    elif suffix in (".h5", ".hdf5"):
        src = _weights_from_h5(p)
    else:
        raise InputError(f"--init-weights {source}: unsupported file type; pass a model directory, .keras or .h5.")
    loaded, skipped, widened = [], [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        arrays = src.get(layer.name)
        if arrays is None:
            skipped.append((layer.name, "not in the source"))
            continue
        want = [tuple(w.shape) for w in layer.weights]
        have = [tuple(a.shape) for a in arrays]
        if want != have:
            wide = _widen_for_prior(model, layer, arrays, want)
            if wide is None:
                skipped.append((layer.name, f"shape mismatch: model {want} vs source {have}"))
                continue
            at = _prior_channel_index(model, layer)
            widened.append((layer.name, f"{have[0][2]} -> {want[0][2]} input channels: the source's kernel "
                            f"copied, zeros for the prior channel (input channel {at})"))
            arrays = wide
        layer.set_weights(arrays)
        loaded.append(layer.name)
    if not loaded:
        shape = [(n, why) for n, why in skipped if why.startswith("shape")]
        detail = (
            f" {len(shape)} layers have the right names but other shapes (e.g. {shape[0][0]}: "
            f"{shape[0][1]}): train with the source's --width, or fine-tune from a model of this width."
            if shape
            else " Is it the same architecture?"
        )
        raise InputError(
            f"--init-weights {source}: no layer matched this model by name and shape "
            f"({len(skipped)} layers checked).{detail}"
        )
    return InitWeightsReport(str(source), loaded, skipped, widened)
