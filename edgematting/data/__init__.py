"""Datasets: procedural portraits, folder datasets, augmentation and tf.data pipelines.

Importing this package does not import TensorFlow (pipeline functions do, when called).
"""
from .augment import AugmentConfig, augment, recomposite
from .folder import Sample, load_sample, scan_folder
from .io import IMAGE_EXTS, list_images, read_alpha, read_image, write_png
from .pipeline import DataConfig, make_datasets, pipeline_throughput
from .synthetic import SyntheticPortraits, write_synthetic_folder

__all__ = [
    "AugmentConfig", "augment", "recomposite",
    "Sample", "load_sample", "scan_folder",
    "IMAGE_EXTS", "list_images", "read_alpha", "read_image", "write_png",
    "DataConfig", "make_datasets", "pipeline_throughput",
    "SyntheticPortraits", "write_synthetic_folder",
]
