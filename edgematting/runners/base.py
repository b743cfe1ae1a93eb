"""The runner interface shared by Keras, TFLite, ONNX and Core ML.

A runner loads one model file. `run_raw` feeds the artifact's own input tensor (its dtype,
layout, channels) and returns its raw output. `run` takes the Keras model's input
(*normalized float* NHWC) and returns float alpha (N, H, W, 1), so every format is
compared on the same footing; for artifacts it is `run_raw` wrapped in the artifact
contract (`edgematting.contract.encode_normalized` / `decode_output`), driven by the
metadata embedded in the file.
"""
from __future__ import annotations

from abc import ABC

import numpy as np


class Runner(ABC):
    #: short name shown in reports, e.g. "tflite (ai-edge-litert)"
    engine: str = ""
    #: the artifact's metadata (the schema of `edgematting.contract.artifact_metadata`)
    metadata: dict = {}
    #: the model takes one sample at a time (static batch 1)
    batch_one: bool = True

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """Feed the artifact's native input (its dtype/layout/channels) -> its raw output.

        Every artifact runner implements this; a runner that overrides `run` instead (a
        stand-in model in a test, the Keras reference) need not."""
        raise NotImplementedError(f"{type(self).__name__} does not run native input")

    @property
    def contract(self) -> dict:
        """The validated contract of `metadata` (computed once)."""
        c = getattr(self, "_contract", None)
        if c is None:
            from ..contract import validate_metadata

            c = self._contract = validate_metadata(self.metadata)
        return c

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: (N, H, W, 3) float32, normalized as in model.json -> (N, H, W, 1) float32 alpha."""
        from ..contract import decode_output, encode_normalized

        x = np.asarray(x, np.float32)
        if x.ndim == 3:
            x = x[None]
        native = encode_normalized(x, self.contract)
        if self.batch_one:
            raw = [np.array(self.run_raw(native[i : i + 1])) for i in range(len(native))]
            y = np.concatenate([decode_output(r, self.contract) for r in raw], axis=0)
        else:
            y = decode_output(self.run_raw(native), self.contract)
        return y.astype(np.float32)
