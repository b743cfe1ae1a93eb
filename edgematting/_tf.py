"""The one place TensorFlow is imported.

tf-keras (Keras 2) must be selected *before* TensorFlow is imported, so every module gets
TensorFlow and Keras from here, inside the function that needs them: `import edgematting`
stays fast and never pulls TensorFlow in.
"""
from __future__ import annotations

import os


def tf():
    """Return the `tensorflow` module with the legacy (Keras 2) API selected."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if os.environ.get("EDGEMATTING_VERBOSE") == "1" else "2")
    import tensorflow as _tf

    if os.environ.get("EDGEMATTING_VERBOSE") != "1":
        import logging

        _tf.get_logger().setLevel(logging.ERROR)  # Python-side "WARNING:tensorflow:..." lines
    return _tf


def keras():
    """Return `tf_keras` (Keras 2 API)."""
    tf()
    import tf_keras as _keras

    return _keras


def box_max(x, k: int):
    """Max over each k x k window (k odd) of a (B, H, W, C) float tensor, stride 1, out-of-image
    pixels ignored: what ``tf.nn.max_pool2d(x, k, 1, "SAME")`` computes, bit for bit, as k - 1
    elementwise maxima of shifted slices per axis (the box is separable). TensorFlow's CPU
    max_pool2d at stride 1 is the slow part of a training step otherwise: the 3, 5 and 9 px
    edge bands of the loss cost 127 ms of a 205 ms Fast-SCNN step (128x128, batch 8, 2 cores);
    shifted maxima take 3.5 ms for the 9 px band (docs/experiments.md, "Training speed")."""
    t = tf()
    k = int(k)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"box_max needs an odd window, got {k}")
    r = k // 2
    if r == 0:
        return x
    low = x.dtype.min
    for axis in (1, 2):
        pad = [[0, 0]] * 4
        pad[axis] = [r, r]
        p = t.pad(x, pad, constant_values=low)
        n = t.shape(x)[axis]
        out = None
        for i in range(k):
            s = p[:, i:i + n] if axis == 1 else p[:, :, i:i + n]
            out = s if out is None else t.maximum(out, s)
        x = out
    return x


def box_min(x, k: int):
    """Min over each k x k window: ``-box_max(-x, k)`` (erosion; out-of-image pixels ignored)."""
    return -box_max(-x, k)
