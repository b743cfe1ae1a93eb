"""Parameter and FLOP counts, computed analytically from layer shapes (no profiler, no
TensorFlow graph tracing), and a readable table.

Convention (the one papers use, so numbers compare with Fast-SCNN / MobileNet tables):

* ``macs`` = multiply-accumulates of the weight layers at the model's input size, batch 1:
    - Conv2D:            H_out * W_out * C_out * (k_h * k_w * C_in / groups)
    - DepthwiseConv2D:   H_out * W_out * C_in * depth_multiplier * k_h * k_w
    - SeparableConv2D:   its depthwise part + its 1x1 pointwise part
    - Dense:             units * inputs per position
  Biases are not counted.
* ``flops`` = 2 * macs.
* BatchNormalization counts 0: every converter folds it into the preceding convolution.
* Element-wise and data-movement layers (ReLU, sigmoid, Add, Concatenate, pooling, bilinear
  resize) are not counted in ``flops``; they are reported separately as ``elementwise``
  (number of output elements, i.e. roughly one op each) so the "minor" claim can be checked.
* ``params`` is ``model.count_params()`` (includes BN moving statistics, which are
  non-trainable); ``trainable_params`` only the trainable weights.
"""
from __future__ import annotations

import math

_ELEMENTWISE = (
    "ReLU",
    "Activation",
    "Add",
    "Concatenate",
    "AveragePooling2D",
    "MaxPooling2D",
    "UpSampling2D",
    "Resizing",
    "Multiply",
)


def _shape(s):
    """First shape of a layer's input/output shape (tuple or list of tuples)."""
    if isinstance(s, list):
        s = s[0]
    return tuple(s)


def _numel(shape) -> int:
    return int(math.prod(int(d) for d in shape[1:] if d is not None))


def _iter_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.__class__.__name__ in ("Functional", "Model", "Sequential"):
            yield from _iter_layers(layer)
        else:
            yield layer


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer at batch 1 (0 for layers that are not counted)."""
    kind = layer.__class__.__name__
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense"):
        in_shape = _shape(layer.input_shape)
        out_shape = _shape(layer.output_shape)
    if kind == "Conv2D":
        kh, kw = layer.kernel_size
        c_in = int(in_shape[-1])
        groups = int(getattr(layer, "groups", 1) or 1)
        h, w, c_out = (int(v) for v in out_shape[1:4])
        return h * w * c_out * kh * kw * (c_in // groups)
    if kind == "DepthwiseConv2D":
        kh, kw = layer.kernel_size
        h, w, c_out = (int(v) for v in out_shape[1:4])  # c_out = c_in * depth_multiplier
        return h * w * c_out * kh * kw
    if kind == "SeparableConv2D":
        kh, kw = layer.kernel_size
        c_in = int(in_shape[-1])
        h, w, c_out = (int(v) for v in out_shape[1:4])
        dm = int(layer.depth_multiplier)
        return h * w * c_in * dm * kh * kw + h * w * c_in * dm * c_out
    if kind == "Dense":
        positions = _numel(out_shape) // int(out_shape[-1])
        return positions * int(in_shape[-1]) * int(out_shape[-1])
    return 0


def layer_stats(model) -> list[dict]:
    """One row per (leaf) layer: name, type, output shape, params, macs, elementwise."""
    rows = []
    for layer in _iter_layers(model):
        kind = layer.__class__.__name__
        out_shape = _shape(layer.output_shape)
        rows.append(
            {
                "name": layer.name,
                "type": kind,
                "output_shape": tuple(out_shape[1:]),
                "params": int(layer.count_params()),
                "macs": layer_macs(layer),
                "elementwise": _numel(out_shape) if kind in _ELEMENTWISE else 0,
            }
        )
    return rows


def count_macs(model) -> int:
    return sum(r["macs"] for r in layer_stats(model))


def count_flops(model) -> int:
    """FLOPs = 2 x MACs of the weight layers (see module docstring)."""
    return 2 * count_macs(model)


def _input_size(model) -> tuple[int, int]:
    shape = _shape(model.input_shape)
    return int(shape[1]), int(shape[2])


def model_summary(model) -> dict:
    """{"params", "trainable_params", "flops", "macs", "elementwise", "input_size", "layers"}.

    ``layers`` counts the leaf layers including the InputLayer.
    """
    rows = layer_stats(model)
    trainable = sum(int(math.prod(w.shape)) for w in model.trainable_weights)
    macs = sum(r["macs"] for r in rows)
    return {
        "params": int(model.count_params()),
        "trainable_params": int(trainable),
        "flops": 2 * macs,
        "macs": macs,
        "elementwise": sum(r["elementwise"] for r in rows),
        "input_size": _input_size(model),
        "layers": len(rows),
    }


def _block(name: str) -> str:
    return name.split("_", 1)[0]


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def _fmt_mflops(macs: int) -> str:
    return f"{2 * macs / 1e6:,.2f}"


def block_stats(model) -> list[dict]:
    """Rows grouped by block (the part of each layer name before the first "_")."""
    groups: dict[str, dict] = {}
    for r in layer_stats(model):
        g = groups.setdefault(
            _block(r["name"]),
            {"block": _block(r["name"]), "layers": 0, "params": 0, "macs": 0, "output_shape": None},
        )
        g["layers"] += 1
        g["params"] += r["params"]
        g["macs"] += r["macs"]
        g["output_shape"] = r["output_shape"]
    return list(groups.values())


def format_summary(model, per_layer: bool = False) -> str:
    """A plain-text table: one row per block (or per layer), then totals."""
    s = model_summary(model)
    if per_layer:
        rows = [
            (r["name"], r["type"], "x".join(str(v) for v in r["output_shape"]), _fmt_int(r["params"]), _fmt_mflops(r["macs"]))
            for r in layer_stats(model)
        ]
        header = ("layer", "type", "output", "params", "MFLOPs")
    else:
        rows = [
            (b["block"], str(b["layers"]), "x".join(str(v) for v in b["output_shape"]), _fmt_int(b["params"]), _fmt_mflops(b["macs"]))
            for b in block_stats(model)
        ]
        header = ("block", "layers", "output", "params", "MFLOPs")
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            c.ljust(widths[i]) if i < 2 else c.rjust(widths[i]) for i, c in enumerate(cells)
        ).rstrip()

    h, w = s["input_size"]
    out = [f"{model.name}  input {h}x{w}x3 (HEIGHTxWIDTHxC)", line(header), line(["-" * x for x in widths])]
    out += [line(r) for r in rows]
    out.append(line(["-" * x for x in widths]))
    out.append(
        f"params {_fmt_int(s['params'])} (trainable {_fmt_int(s['trainable_params'])})  "
        f"FLOPs {s['flops'] / 1e9:.3f} G ({s['macs'] / 1e6:,.1f} M MACs)  layers {s['layers']}"
    )
    return "\n".join(out)
