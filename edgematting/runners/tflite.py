"""LiteRT (ai-edge-litert) runner for .tflite artifacts.

The artifact contract (input mapping, quantization, output dequantization) comes from the
metadata embedded in the flatbuffer, and is checked against the interpreter's own tensor
details when the runner is built: a file whose input/output dtype or quantization differs
from its metadata is refused (MetadataError) instead of giving a wrong matte. Models have
a static batch of 1, so batches are run one sample at a time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .base import Runner


def check_tensor(detail: dict, c: dict, side: str) -> None:
    """MetadataError unless the interpreter's tensor `detail` has the dtype and
    quantization that the contract `c` gives for `side` ("input" | "output")."""
    from ..contract import MetadataError

    dtype = np.dtype(detail["dtype"]).name
    want = c["dtype"] if side == "input" else c["output_dtype"]
    if dtype != want:
        raise MetadataError(f"{side}.dtype", f"says {want} but the model's {side} tensor is {dtype}")
    scale, zp = detail["quantization"]
    q = c["input_quant"] if side == "input" else c["output_quant"]
    if q is None:
        if scale and dtype != "float32" and not (side == "input" and c["normalization_in_model"]
                                                 and abs(scale - 1.0) < 1e-6 and zp == 0):
            raise MetadataError(f"{side}.quantization", f"is missing but the model's {side} tensor has "
                                f"scale {scale:g}, zero point {zp}")
        return
    if not scale or abs(float(q[0]) - scale) > 1e-6 * max(1.0, scale) or int(q[1]) != int(zp):
        raise MetadataError(f"{side}.quantization", f"says scale {float(q[0]):g}, zero point {q[1]} but the "
                            f"model's {side} tensor has scale {scale:g}, zero point {zp}")


class TFLiteRunner(Runner):
    def __init__(self, path, num_threads: int = 1, metadata: dict | None = None):
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        from ..converters.tflite import read_embedded_metadata

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"TFLite file not found: {self.path}")
        self.metadata = metadata if metadata is not None else read_embedded_metadata(self.path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=int(num_threads))
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise InputError(f"LiteRT cannot load {self.path}: {str(e).strip()[:300]}") from e
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        check_tensor(self.input, self.contract, "input")
        check_tensor(self.output, self.contract, "output")
        self.engine = f"ai-edge-litert {version('ai-edge-litert')} (CPU, {int(num_threads)} thread(s))"

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """One native input (1, H, W, C) of the artifact's dtype -> raw output tensor."""
        it = self.interpreter
        it.set_tensor(self.input["index"], np.ascontiguousarray(x))
        it.invoke()
        return it.get_tensor(self.output["index"])
