"""LiteRT (ai-edge-litert) runner for .tflite artifacts.

`run` takes normalized float NHWC (what Keras takes) and converts it to the artifact's
own input using its embedded metadata: uint8-pixel artifacts get the pixels back
(``round_to_uint8(x * std + mean)``, exact for inputs made from uint8 pixels), 4-channel
artifacts get an alpha channel (255 for pixels, 0 for float), quantized tensors are
quantized with their scale/zero point and the output is dequantized. Models have a
static batch of 1, so batches are run one sample at a time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import Runner


def _quantize(x: np.ndarray, dtype, scale: float, zp: int) -> np.ndarray:
    if np.issubdtype(dtype, np.floating):
        return x.astype(dtype)
    info = np.iinfo(dtype)
    if scale:
        q = np.floor(x / np.float32(scale) + np.float32(0.5)) + zp
    else:
        q = np.floor(x + np.float32(0.5))
    return np.clip(q, info.min, info.max).astype(dtype)


def _dequantize(y: np.ndarray, scale: float, zp: int) -> np.ndarray:
    if np.issubdtype(y.dtype, np.floating):
        return y.astype(np.float32)
    if not scale:
        return y.astype(np.float32)
    return ((y.astype(np.float32) - np.float32(zp)) * np.float32(scale)).astype(np.float32)


class TFLiteRunner(Runner):
    def __init__(self, path, num_threads: int = 1, metadata: dict | None = None):
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        from ..converters.tflite import read_embedded_metadata

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"TFLite file not found: {self.path}")
        self.metadata = metadata if metadata is not None else read_embedded_metadata(self.path)
        self.interpreter = Interpreter(model_path=str(self.path), num_threads=int(num_threads))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.engine = f"ai-edge-litert {version('ai-edge-litert')} (CPU, {int(num_threads)} thread(s))"

    @property
    def input_dtype(self):
        return np.dtype(self.input["dtype"])

    def native(self, x: np.ndarray) -> np.ndarray:
        """Normalized float NHWC -> this artifact's input tensor values (dtype included)."""
        from ..converters.wrappers import native_input

        v = native_input(x, self.metadata)
        scale, zp = self.input["quantization"]
        return _quantize(v, self.input_dtype, scale, zp)

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """One native input (1, H, W, C) of the artifact's dtype -> raw output tensor."""
        it = self.interpreter
        it.set_tensor(self.input["index"], np.ascontiguousarray(x))
        it.invoke()
        return it.get_tensor(self.output["index"])

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        native = self.native(x)
        scale, zp = self.output["quantization"]
        outs = []
        for i in range(len(native)):
            y = self.run_raw(native[i : i + 1])
            outs.append(_dequantize(np.array(y), scale, zp))
        return np.concatenate(outs, axis=0).reshape(len(native), *outs[0].shape[1:3], -1)
