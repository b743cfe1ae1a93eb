"""edgematting: portrait segmentation and matting models from training to a phone."""
import os as _os

# Keras 2 (tf-keras) must be chosen before anything imports TensorFlow.
_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
