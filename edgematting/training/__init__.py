"""Training: configuration, the training loop with resume, losses, metrics and training curves.

Modules, by responsibility:

* `config`: `TrainConfig`, the settings of a run, and the choices it validates
* `compute`: distribution strategy, mixed precision and XLA (`ComputePolicy`)
* `rundir`: the run directory -- layout, resume state (state.json), history logs
* `init_weights`: --init-weights, starting from another model's weights
* `distill`: a teacher model labelling photos for the run
* `loop`: `train`, the training loop (callbacks, datasets, progressive runs)
* `export`: the best model written as a model directory at the end of a run
* `recipes`: `train --minutes N`, the best measured recipe for a time budget
* `losses`, `plots`, `throughput`: losses and metrics, training curves, speed probes

Nothing here imports TensorFlow at import time; `train` and the losses import it when
called.
"""
from __future__ import annotations

from .config import Strategy, TrainConfig
from .init_weights import InitWeightsReport, load_init_weights
from .loop import TrainResult, train, validation_dataset
from .rundir import STATE_FILE, load_run_config, resumable

__all__ = [
    "InitWeightsReport",
    "STATE_FILE",
    "Strategy",
    "TrainConfig",
    "TrainResult",
    "load_init_weights",
    "load_run_config",
    "resumable",
    "train",
    "validation_dataset",
]
