"""Reference runner: the Keras model of a model directory."""
from __future__ import annotations

import numpy as np

from .base import Runner


class KerasRunner(Runner):
    def __init__(self, model_dir=None, model=None, spec=None, batch_size: int = 8):
        from .._tf import tf
        from ..modelio import load_model_dir

        if model is None:
            model, spec = load_model_dir(model_dir)
        self.model = model
        self.spec = spec
        self.batch_size = int(batch_size)
        self.engine = f"tf-keras {tf().__version__} (CPU)"
        h, w = spec.input_size if spec is not None else model.input_shape[1:3]
        self.metadata = {
            "format": "keras",
            "model_name": getattr(spec, "name", model.name),
            "input": {"height": h, "width": w, "channels": 3, "dtype": "float32",
                      "normalization_in_model": False, "layout": "NHWC"},
            "output": {"threshold": getattr(spec, "threshold", 0.5)},
        }

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        return self.run(x)

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        outs = [
            np.asarray(self.model(x[i : i + self.batch_size], training=False), np.float32)
            for i in range(0, len(x), self.batch_size)
        ]
        return np.concatenate(outs, axis=0)
