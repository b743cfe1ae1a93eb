"""Foreign models: a .tflite or .onnx file that edgematting did not write (no sidecar).

Its input size, dtype and layout (NHWC or NCHW) are read from the model; what a sidecar
would say comes from `ForeignOptions` (the input normalization, channel order, what the
output means, the input size when it is not fixed), and a missing one is an InputError
naming its ``--teacher-*`` flag. `ForeignRunner` turns such a file into an ordinary
`Runner` whose contract (`metadata`) says float32 probability out, so the photo pipeline
(`edgematting.runners.photo`) runs it like any artifact: MediaPipe's selfie segmenter (the
bench peer and a distillation teacher) and any other teacher go through it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import imageops
from ..errors import InputError
from .base import Runner

#: Presets of ``--teacher-input``: (mean, std) in pixel units, x = (pixel - mean) / std.
INPUT_PRESETS = {
    "0,1": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "-1,1": (imageops.DEFAULT_MEAN, imageops.DEFAULT_STD),
    "0,255": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}


@dataclass(frozen=True)
class ForeignOptions:
    """What a sidecar would say about a foreign model (`edgematting train --teacher-*` flags)."""

    input: str | None = None  # a key of INPUT_PRESETS, or "mean=R,G,B;std=R,G,B"
    channels: str = "RGB"  # RGB | BGR
    output: str | None = None  # probability | logits | 2class:K | channel:K
    size: str | None = None  # HxW when the model's input size is not fixed

    def __post_init__(self):
        if self.input is not None:
            parse_input(self.input)
        if str(self.channels).upper() not in ("RGB", "BGR"):
            raise InputError(f"--teacher-channels takes RGB or BGR, not {self.channels!r}.")
        if self.output is not None:
            parse_output(self.output)


def parse_input(text: str):
    """--teacher-input -> (mean, std)."""
    key = str(text).strip().lower()
    if key in INPUT_PRESETS:
        return INPUT_PRESETS[key]
    m = re.fullmatch(r"mean=([-\d.e]+),([-\d.e]+),([-\d.e]+);std=([-\d.e]+),([-\d.e]+),([-\d.e]+)", key.replace(" ", ""))
    if not m:
        raise InputError(
            f"--teacher-input {text!r} is not understood: use {', '.join(INPUT_PRESETS)} (the model's input "
            "range, or ImageNet mean/std) or 'mean=R,G,B;std=R,G,B' in pixel units.")
    vals = [float(v) for v in m.groups()]
    if any(v == 0 for v in vals[3:]):
        raise InputError("--teacher-input: std must not be 0.")
    return tuple(vals[:3]), tuple(vals[3:])


def parse_output(text: str) -> tuple[str, int | None]:
    """--teacher-output -> (kind, class or channel index)."""
    key = str(text).strip().lower()
    if key in ("probability", "logits"):
        return key, None
    m = re.fullmatch(r"(2class|channel):(\d+)", key)
    if not m:
        raise InputError(
            f"--teacher-output {text!r} is not understood: use probability (a [0,1] person map), logits "
            "(sigmoid is applied), 2class:K (softmax over a 2-channel map, K = the person class) or "
            "channel:K (channel K of a probability map).")
    return m.group(1), int(m.group(2))


def _layout(shape, p: Path, options: ForeignOptions) -> tuple[str, int, int, int]:
    dims = list(shape)
    if len(dims) != 4:
        raise InputError(f"{p.name} takes a {len(dims)}-d input {dims}; expected an image batch (4-d).")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in dims]
    if fixed[1] in (3, 4) and fixed[3] not in (3, 4):
        layout, c, hw = "NCHW", fixed[1], (fixed[2], fixed[3])
    else:
        layout, c, hw = "NHWC", fixed[3], (fixed[1], fixed[2])
    if c is None:
        raise InputError(f"{p.name}: cannot tell its channel axis from input shape {dims}.")
    if None in hw:
        if not options.size:
            raise InputError(f"{p.name} has no fixed input size ({dims}): pass --teacher-size HxW.")
        from ..models import parse_size

        hw = parse_size(options.size)
    return layout, int(hw[0]), int(hw[1]), int(c)


def _output_map(y: np.ndarray, kind: str, index: int | None, hw, p: Path) -> np.ndarray:
    """A raw output tensor -> (1, h', w', 1) probability."""
    if y.ndim == 3:
        y = y[..., None]
    if y.ndim != 4:
        raise InputError(f"{p.name} returns a {y.ndim}-d output; expected a map (N, H, W, C) or (N, C, H, W).")
    nchw = y.shape[1] <= 4 and y.shape[-1] > 4
    if nchw:
        y = np.transpose(y, (0, 2, 3, 1))
    if kind in ("probability", "logits"):
        if y.shape[-1] != 1:
            raise InputError(f"{p.name} outputs {y.shape[-1]} channels; use --teacher-output 2class:K or "
                             "channel:K to pick the person channel.")
        return 1.0 / (1.0 + np.exp(-y)) if kind == "logits" else y
    if index is None or index >= y.shape[-1]:
        raise InputError(f"--teacher-output {kind}:{index}: the model outputs {y.shape[-1]} channels.")
    if kind == "2class":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
    return y[..., index:index + 1]


def _tflite_session(p: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=str(p), num_threads=threads)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise InputError(f"LiteRT cannot load {p}: {str(e).strip()[:300]}") from e
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def q(d):
        s, z = d["quantization"]
        return (float(s), int(z)) if s else None

    dtype = np.dtype(inp["dtype"]).name
    if dtype not in ("float32", "uint8", "int8"):
        raise InputError(f"{p.name} takes {dtype} input; supported: float32, uint8, int8.")

    def run_raw(x):
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        it.invoke()
        return it.get_tensor(out["index"])

    in_q = q(inp)
    return run_raw, [int(v) for v in inp["shape"]], dtype, (
        {"scale": in_q[0], "zero_point": in_q[1]} if in_q else None), q(out)


def _onnx_session(p: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types
        raise InputError(f"onnxruntime cannot load {p}: {str(e).strip()[:300]}") from e
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    types = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
    if inp.type not in types:
        raise InputError(f"{p.name} takes {inp.type} input; supported: float32, uint8, int8.")
    shape = [d if isinstance(d, int) else None for d in inp.shape]
    if shape and shape[0] is None:
        shape[0] = 1

    def run_raw(x):
        return sess.run([out.name], {inp.name: x})[0]

    return run_raw, shape, types[inp.type], None, None


def _missing(flag: str, p: Path, what: str) -> InputError:
    return InputError(f"Teacher {p.name} is not an edgematting artifact (no sidecar), so {what} must be given: "
                      f"pass {flag}.")


class ForeignRunner(Runner):
    """A foreign .tflite/.onnx file with the contract `options` give it."""

    batch_one = True

    def __init__(self, path, options: ForeignOptions, num_threads: int = 1):
        p = self.path = Path(path)
        if options.input is None:
            raise _missing("--teacher-input (0,1 | -1,1 | 0,255 | imagenet | mean=R,G,B;std=R,G,B)", p,
                           "its input normalization")
        if options.output is None:
            raise _missing("--teacher-output (probability | logits | 2class:K | channel:K)", p, "what its output means")
        mean, std = parse_input(options.input)
        self._out_kind, self._out_index = parse_output(options.output)
        if p.suffix.lower() == ".tflite":
            self._run, shape, in_dtype, in_q, self._out_q = _tflite_session(p, num_threads)
            self.engine = "ai-edge-litert"
        else:
            self._run, shape, in_dtype, in_q, self._out_q = _onnx_session(p, num_threads)
            self.engine = "onnxruntime"
        layout, h, w, c = _layout(shape, p, options)
        if c not in (3, 4):
            raise InputError(f"{p.name} takes {c}-channel input; a portrait model must take RGB (3 channels, or 4).")
        self._hw = (h, w)
        order = str(options.channels).upper() + ("A" if c == 4 else "")
        self.metadata = {
            "format_version": 1, "model_name": p.stem,
            "input": {"height": h, "width": w, "channels": c, "channel_order": order, "layout": layout,
                      "dtype": in_dtype, "mean": list(mean), "std": list(std),
                      "normalization_in_model": False, "quantization": in_q},
            "output": {"height": h, "width": w, "channels": 1, "dtype": "float32", "meaning": "person_probability"}}

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """Native input -> (1, h', w', 1) float32 person probability (the model's own output
        dequantized and mapped by --teacher-output)."""
        y = np.asarray(self._run(x))
        if self._out_q is not None:
            y = (y.astype(np.float32) - np.float32(self._out_q[1])) * np.float32(self._out_q[0])
        return _output_map(y.astype(np.float32), self._out_kind, self._out_index, self._hw, self.path)
