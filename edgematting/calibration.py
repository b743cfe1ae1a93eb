"""Calibration and verification images: one source of sample inputs for every quantizer.

`calibration_images(spec, source, n)` returns ``(n, H, W, 3)`` uint8 pixels at the model's
input size. TFLite full-integer and int16x8, onnxruntime static QDQ, QAT and Core ML all
calibrate on the same pixels, so their quantization ranges are comparable. Each consumer
turns the pixels into its own input format (normalized float, raw uint8, 4 channels).

source: "synthetic" (`SyntheticPortraits(size, seed=1234)`) or a folder of images (or a
labelled dataset folder, whose image/ subfolder is used)
(resized with `imageops.resize_bilinear`, rounded with `imageops.round_to_uint8`). Each
consumer maps the pixels to its graph's input with `contract.encode_pixels`.
Verification uses a different synthetic seed (`VERIFY_SEED`) so an artifact is never
checked on the very images it was calibrated on.

A prior-frame model (`edgematting.prior`) also takes the previous frame's alpha:
`calibration_priors` / `verification_priors` give ``(n, H, W, 1)`` simulated priors
(`prior.sample_priors`, as training makes them, about a quarter empty) of the synthetic
portraits' exact mattes of the same seed: for synthetic images, the very images' own truth,
perturbed; for a folder, person-shaped synthetic mattes. Never random noise, which would
calibrate and check the 4th channel on values no app feeds.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError

CALIB_SEED = 1234
VERIFY_SEED = 4321


def _synthetic(size: tuple[int, int], n: int, seed: int) -> np.ndarray:
    from .data.synthetic import SyntheticPortraits
    from .imageops import resize_bilinear, round_to_uint8

    gen = SyntheticPortraits(size=tuple(size), seed=seed)
    out = []
    for i in range(n):
        img = np.asarray(gen.sample(i)["image"])[..., :3]
        if img.shape[:2] != tuple(size):
            img = round_to_uint8(resize_bilinear(img, size[0], size[1]))
        out.append(img.astype(np.uint8))
    return np.stack(out)


def image_dir(folder: str | os.PathLike) -> Path:
    """A folder of images, or a labelled dataset folder (its image/ or images/ subfolder)."""
    from .data.io import list_images

    d = Path(folder)
    if d.is_dir() and not list_images(d):
        for sub in ("image", "images"):
            if (d / sub).is_dir():
                return d / sub
    return d


def folder_images(spec_or_size, folder: str | os.PathLike, n: int | None = None, from_end: bool = False) -> np.ndarray:
    """Up to n images from `folder` at model size, as uint8 (the first n, or the last n with
    `from_end`). InputError when it has none."""
    from .data.io import list_images, read_image
    from .imageops import resize_bilinear, round_to_uint8

    size = tuple(getattr(spec_or_size, "input_size", spec_or_size))
    d = image_dir(folder)
    if not d.is_dir():
        raise InputError(f"Image folder not found: {d}. Pass a folder of images, or 'synthetic'.")
    files = list_images(d)
    if not files:
        raise InputError(
            f"No images in {d} (looked for .png/.jpg/... files in it and in its image/ subfolder). "
            "Add images, or pass 'synthetic'."
        )
    if n is not None:
        files = files[-n:] if from_end else files[:n]
    out = []
    for f in files:
        img = np.asarray(read_image(f))[..., :3]
        if img.shape[:2] != size:
            img = round_to_uint8(resize_bilinear(img, size[0], size[1]))
        out.append(img.astype(np.uint8))
    return np.stack(out)


def training_images(spec) -> str | None:
    """The folder of photos the model was trained on (model.json's training section:
    --data, else --unlabelled), if it still holds images; None otherwise."""
    from .data.io import list_images

    t = getattr(spec, "training", None) or {}
    for key in ("data", "unlabelled"):
        d = t.get(key)
        if d and d != "synthetic" and list_images(image_dir(d)):
            return str(d)
    return None


def default_source(spec, source: str | None) -> str:
    """The images to calibrate or verify on: `source` when given, else the model's own
    training photos (a model trained on real photos is unsure on synthetic figures, so
    checking it there measures the wrong thing), else "synthetic"."""
    if source is not None:
        return str(source)
    return training_images(spec) or "synthetic"


def check_source(source: str | None) -> None:
    """Fail early (before any conversion) on a folder that does not exist or holds no image."""
    if source is None or str(source) == "synthetic":
        return
    from .data.io import list_images

    d = image_dir(source)
    if not d.is_dir():
        raise InputError(f"Calibration folder not found: {d}. Pass a folder of images, or 'synthetic'.")
    if not list_images(d):
        raise InputError(
            f"Calibration folder {d} has no images (looked for .png/.jpg/... in it and in its image/ subfolder). "
            "Add representative photos, or use --calib synthetic."
        )


def calibration_images(spec, source: str | None = None, n: int = 64, seed: int = CALIB_SEED) -> np.ndarray:
    """(n, H, W, 3) uint8 pixels at `spec.input_size` from "synthetic" or a folder (None: the
    model's training photos, else synthetic: `default_source`).

    A folder with fewer than n images gives all of them (not repeated: repeats add no
    information to min/max or histogram calibration).
    """
    n = int(n)
    if n < 1:
        raise InputError("The number of calibration samples must be at least 1.")
    source = default_source(spec, source)
    if source == "synthetic":
        return _synthetic(tuple(spec.input_size), n, seed)
    return folder_images(spec, source, n)


def verification_images(spec, data: str | None = None, n: int = 8) -> np.ndarray:
    """Pixels the verifier compares on: images from `data` (None: the model's training photos,
    `default_source`), else synthetic (VERIFY_SEED, never the calibration seed). A folder
    gives its *last* n images, so a model calibrated on the first ones is checked on others
    when the folder is larger than both."""
    data = default_source(spec, data)
    if data != "synthetic":
        return folder_images(spec, data, n, from_end=True)
    return _synthetic(tuple(spec.input_size), int(n), VERIFY_SEED)


def _priors(spec, n: int, seed: int) -> np.ndarray | None:
    from .data.synthetic import SyntheticPortraits
    from .imageops import resize_bilinear
    from .prior import is_prior_spec, sample_priors

    if not is_prior_spec(spec) or n < 1:
        return None
    size = tuple(spec.input_size)
    gen = SyntheticPortraits(size=size, seed=seed)
    alphas = []
    for i in range(int(n)):
        a = np.asarray(gen.sample(i)["alpha"], np.float32)
        if a.shape[:2] != size:
            a = resize_bilinear(a, size[0], size[1])
        alphas.append(a.reshape(size))
    return sample_priors(np.stack(alphas), seed)


def calibration_priors(spec, n: int, seed: int = CALIB_SEED) -> np.ndarray | None:
    """The 4th channel a prior-frame model is calibrated with, (n, H, W, 1) in [0, 1]; None
    for any other model (see the module docstring)."""
    return _priors(spec, n, seed)


def verification_priors(spec, n: int) -> np.ndarray | None:
    """The 4th channel a prior-frame model is verified with (`VERIFY_SEED`); None otherwise."""
    return _priors(spec, n, VERIFY_SEED)
