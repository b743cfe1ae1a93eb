"""onnxruntime (CPU execution provider) runner for .onnx artifacts.

`run` takes normalized float NHWC and builds the artifact's own input from its
metadata (``metadata_props["edgematting"]``): uint8 pixels, 4 channels, NCHW layout and
the input tensor's dtype (float32, float16, uint8). Output is returned as (N, H, W, 1)
float32.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import Runner

_ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(double)": np.float64,
}


class OnnxRunner(Runner):
    def __init__(self, path, threads: int = 1, num_threads: int | None = None, metadata: dict | None = None):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX file not found: {self.path}")
        n = int(num_threads if num_threads is not None else threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=["CPUExecutionProvider"])
        if metadata is None:
            raw = self.session.get_modelmeta().custom_metadata_map.get("edgematting")
            if raw is None:
                raise InputError(f"{self.path} has no 'edgematting' metadata; was it written by edgematting?")
            metadata = json.loads(raw)
        self.metadata = metadata
        self.input = self.session.get_inputs()[0]
        self.output = self.session.get_outputs()[0]
        self.engine = f"onnxruntime {ort.__version__} CPU ({n} thread(s))"

    @property
    def nchw(self) -> bool:
        return self.metadata["input"].get("layout", "NHWC") == "NCHW"

    def native(self, x: np.ndarray) -> np.ndarray:
        from ..converters.wrappers import native_input

        v = native_input(x, self.metadata)
        if self.nchw:
            v = np.transpose(v, (0, 3, 1, 2))
        dt = _ORT_TYPES.get(self.input.type, np.float32)
        return np.ascontiguousarray(v.astype(dt))

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output.name], {self.input.name: x})[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        native = self.native(np.asarray(x, np.float32))
        shape = self.input.shape
        if shape and isinstance(shape[0], int) and shape[0] == 1 and len(native) > 1:
            y = np.concatenate([self.run_raw(native[i : i + 1]) for i in range(len(native))], 0)
        else:
            y = self.run_raw(native)
        y = np.asarray(y, np.float32)
        if y.ndim == 4 and y.shape[1] == 1 and y.shape[-1] != 1:  # NCHW output
            y = np.transpose(y, (0, 2, 3, 1))
        return y
