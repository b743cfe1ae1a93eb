"""NaN/Inf in a model's output: a typed error that says so, and where it starts.

A single NaN weight (a diverged run, a corrupt file) makes every output NaN; left alone,
`predict` writes fully transparent cut-outs, `convert --no-verify` publishes the model and
verification reports "max_abs nan", which points at the converter. Every place that runs a
model checks its output with `check_output`; `check_keras_model` is what `convert` runs
before converting (with or without verification).

`NonFiniteError` (exit 9) names the first layer (Keras) or op (TFLite) whose output is
non-finite, and the first layer with non-finite weights, when it can find them.
"""
from __future__ import annotations

import numpy as np

from .errors import NonFiniteError


def nonfinite_weights(model) -> list[str]:
    """``layer/weight`` names of the Keras model's weights that hold NaN or Inf, in layer order."""
    bad = []
    for layer in getattr(model, "layers", []):
        for w in getattr(layer, "weights", []):
            try:
                v = np.asarray(w.numpy())
            except Exception:  # noqa: BLE001 - a weight that cannot be read is not ours to judge
                continue
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                bad.append(f"{layer.name}/{w.name.split('/')[-1].split(':')[0]}")
    return bad


def first_nonfinite_layer(model, x: np.ndarray) -> str | None:
    """Name (and class) of the first layer, in the model's order, whose output on `x` holds
    NaN or Inf; None when none does or the model cannot be probed layer by layer."""
    from ._tf import keras

    k = keras()
    layers = [ly for ly in getattr(model, "layers", []) if not isinstance(ly, k.layers.InputLayer)]
    outs, names = [], []
    for ly in layers:
        try:
            o = ly.output
        except (AttributeError, ValueError, RuntimeError):
            continue
        if isinstance(o, (list, tuple)):
            continue
        outs.append(o)
        names.append(f"'{ly.name}' ({type(ly).__name__})")
    if not outs:
        return None
    try:
        probe = k.Model(model.inputs, outs)
        ys = probe(np.asarray(x, np.float32), training=False)
    except Exception:  # noqa: BLE001 - subclassed or nested models: fall back to the weights
        return None
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    for name, y in zip(names, ys):
        if not np.all(np.isfinite(np.asarray(y))):
            return name
    return None


def first_nonfinite_tflite_op(path, x: np.ndarray) -> str | None:
    """The first op of a .tflite file, in execution order, whose float output holds NaN/Inf
    on the native input `x` (LiteRT with every tensor kept); None when none is found."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        import warnings

        with warnings.catch_warnings():  # LiteRT warns that keeping every tensor is for debugging: it is
            warnings.simplefilter("ignore")
            it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(x))
        it.invoke()
        details = {d["index"]: d for d in it.get_tensor_details()}
        for op in it._get_ops_details():  # noqa: SLF001 - the only way to walk ops in order
            for t in op.get("outputs", []):
                if t < 0 or t not in details:
                    continue
                v = it.get_tensor(t)
                if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                    return f"op {op.get('index')} {op.get('op_name')} -> '{details[t]['name']}'"
    except Exception:  # noqa: BLE001 - best effort: the error is raised anyway
        return None
    return None


CORRUPT = ("The model's weights are corrupt (a diverged training run, a damaged file): retrain it, or restore an "
           "earlier checkpoint. This is not a converter or runtime problem.")
CONVERTER = ("The Keras model's outputs are finite, so the conversion or the runtime is at fault: convert it "
             "again, or try another precision or target.")


def _message(what: str, layer: str | None, weights: list[str], hint: str = CORRUPT) -> str:
    msg = f"{what} produces non-finite values (NaN or Inf)"
    if layer:
        msg += f"; the first layer whose output is non-finite is {layer}"
    if weights:
        more = f" and {len(weights) - 3} more" if len(weights) > 3 else ""
        msg += f"; non-finite weights in {', '.join(weights[:3])}{more}"
    return msg + ". " + hint


def check_output(y: np.ndarray, *, model=None, x: np.ndarray | None = None, what: str = "The model",
                 artifact=None, native: np.ndarray | None = None, hint: str = CORRUPT) -> None:
    """NonFiniteError unless every value of `y` is finite. With the Keras `model` and its
    input `x`, or a .tflite `artifact` and its `native` input, name where it starts."""
    if np.all(np.isfinite(np.asarray(y))):
        return
    layer, weights = None, []
    if model is not None:
        weights = nonfinite_weights(model)
        if x is not None:
            layer = first_nonfinite_layer(model, x[:1])
    elif artifact is not None and native is not None and str(artifact).lower().endswith(".tflite"):
        layer = first_nonfinite_tflite_op(artifact, native[:1])
    raise NonFiniteError(_message(what, layer, weights, hint), layer=layer)


def check_keras_model(model, spec, data: str | None = None) -> None:
    """Before converting: NonFiniteError when the Keras model has non-finite weights or
    outputs on one verification image (so `convert --no-verify` never publishes it).
    Checked once per model object."""
    if getattr(model, "_edgematting_finite", False):
        return
    weights = nonfinite_weights(model)
    from .calibration import verification_images

    try:
        px = verification_images(spec, data, 1)
    except Exception:  # noqa: BLE001 - no images: the weights alone decide
        px = None
    if px is None:
        if weights:
            raise NonFiniteError(_message(f"The Keras model {spec.name}", None, weights))
        return
    from .prior import with_prior

    x = with_prior(spec, spec.normalize(px).astype(np.float32))  # a prior-frame model: zeros (a first frame)
    y = np.asarray(model(x, training=False))
    if weights or not np.all(np.isfinite(y)):
        layer = first_nonfinite_layer(model, x) if not np.all(np.isfinite(y)) else None
        raise NonFiniteError(_message(f"The Keras model {spec.name}", layer, weights), layer=layer)
    try:
        model._edgematting_finite = True
    except AttributeError:
        pass
