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
