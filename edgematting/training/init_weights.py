"""--init-weights: start a run from another model's weights, layer by layer (fine-tuning,
another input size, a progressive run's second stage).

TensorFlow and h5py are imported inside functions: `edgematting --help` must not load them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..models import custom_objects


@dataclass
class InitWeightsReport:
    """What `load_init_weights` copied: the layers loaded, and the ones skipped with why."""

    source: str
    loaded: list[str]
    skipped: list[tuple[str, str]]  # (layer, why)

    def format(self) -> str:
        lines = [f"init weights from {self.source}: {len(self.loaded)} layers loaded, {len(self.skipped)} skipped"]
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


def load_init_weights(model, source: str | os.PathLike) -> InitWeightsReport:
    """Copy weights into `model` layer by layer, matched by layer name and shape.

    `source`: a model directory (model.keras inside), a .keras model or a .h5 file (full
    model or weights). Layers missing from the source or with other shapes keep their
    fresh initialization and are listed in the report. Raises InputError if nothing
    matched (a different architecture, most likely).
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
    loaded, skipped = [], []
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
            skipped.append((layer.name, f"shape mismatch: model {want} vs source {have}"))
            continue
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
    return InitWeightsReport(str(source), loaded, skipped)
