"""Evaluation: per-image metrics (`metrics`) and dataset evaluation (`evaluate`).

Importing this package is cheap (numpy/scipy only); TensorFlow loads when a model does.
"""
from .metrics import (  # noqa: F401
    METRIC_KEYS,
    boundary_f,
    conn,
    evaluate_alpha,
    grad,
    iou,
    mad,
    mse,
    sad,
    unknown_band,
)


def evaluate_model(*args, **kwargs):
    """See `edgematting.evaluation.evaluate.evaluate_model`."""
    from .evaluate import evaluate_model as _f

    return _f(*args, **kwargs)


def evaluate_predictor(*args, **kwargs):
    """See `edgematting.evaluation.evaluate.evaluate_predictor`."""
    from .evaluate import evaluate_predictor as _f

    return _f(*args, **kwargs)
