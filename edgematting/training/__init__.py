"""Training: losses, metrics, the training loop with resume, and training curves.

Nothing here imports TensorFlow at import time; `train` and the losses import it when
called.
"""
from __future__ import annotations

from .train import (
    InitWeightsReport,
    Strategy,
    TrainConfig,
    TrainResult,
    load_init_weights,
    load_run_config,
    train,
)

__all__ = [
    "InitWeightsReport",
    "Strategy",
    "TrainConfig",
    "TrainResult",
    "load_init_weights",
    "load_run_config",
    "train",
]
