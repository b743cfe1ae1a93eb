"""The runner interface shared by Keras, TFLite, ONNX and Core ML.

A runner loads one model file and computes its output for *normalized float* NHWC input
(what the Keras model takes), so every format is compared on the same footing. Runners
of artifacts whose input is uint8 pixels or 4 channels convert internally using the
artifact's metadata; `run_raw` feeds the artifact's own input format unchanged.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class Runner(ABC):
    #: short name shown in reports, e.g. "tflite (ai-edge-litert)"
    engine: str = ""

    @abstractmethod
    def run(self, x: np.ndarray) -> np.ndarray:
        """x: (N, H, W, 3) float32, normalized as in model.json -> (N, H, W, 1) float32 alpha."""

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """Feed the artifact's native input (its dtype/layout/channels) -> its raw output."""
        return self.run(x)
