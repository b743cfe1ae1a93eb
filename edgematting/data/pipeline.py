"""tf.data input pipelines for training and validation.

Each element is ``(x, y)``: x float32 (B, H, W, 3) = (pixel - mean) / std, and y float32
(B, H, W, 7) = [alpha, fg_rgb / 255, bg_rgb / 255]. For folder data the true fg/bg
colours are unknown and both are the photo itself.

Synthetic training data is generated on the fly (numpy, in parallel map calls) from keys
drawn by ``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)``: every epoch
sees new portraits, and the whole sequence is reproducible from `seed`. Folder data is
decoded once, resized to the model input (the same bilinear resize as inference,
`imageops.resize_bilinear`) and cached in memory when it fits in `CACHE_BUDGET_BYTES`.
Validation is never augmented, always in the same order, and cached.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._tf import tf
from ..errors import DataError, InputError
from ..imageops import resize_bilinear, round_to_uint8
from .augment import AugmentConfig, augment, recomposite
from .folder import Sample, load_sample, scan_folder
from .synthetic import SyntheticPortraits

#: Decoded folder datasets (uint8 image + uint8 alpha at model size) up to this size are
#: cached in memory; larger ones are decoded again every epoch.
CACHE_BUDGET_BYTES = 2 * 1024**3
_VAL_SEED_OFFSET = 1_000_003
_MASK = 0xFFFFFFFFFFFF


@dataclass
class DataConfig:
    source: str = "synthetic"  # "synthetic" or a dataset folder
    input_size: tuple[int, int] = (256, 256)  # (height, width)
    batch_size: int = 16
    val_source: str | None = None  # a separate validation folder (or "synthetic")
    val_ratio: float = 0.1  # share of a folder held out for validation when no val_source
    n_synthetic_train: int = 2000  # size of a synthetic 'epoch' (new samples every epoch)
    n_synthetic_val: int = 64
    seed: int = 0
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    backgrounds_dir: str | None = None
    composite_prob: float = 0.0  # chance of compositing the subject over a random background
    skip_bad: bool = False
    cache: bool = True

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        self.source = str(self.source)
        if self.val_source is not None:
            self.val_source = str(self.val_source)
        self.input_size = tuple(int(v) for v in self.input_size)
        if len(self.input_size) != 2 or min(self.input_size) < 16:
            raise InputError(f"input_size must be (height, width), each >= 16; got {self.input_size}")
        if self.batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.val_ratio < 1.0:
            raise InputError(f"val_ratio must be in [0, 1), got {self.val_ratio}")
        if not 0.0 <= self.composite_prob <= 1.0:
            raise InputError(f"composite_prob must be in [0, 1], got {self.composite_prob}")
        if self.n_synthetic_train < 1 or self.n_synthetic_val < 0:
            raise InputError("n_synthetic_train must be >= 1 and n_synthetic_val >= 0")

    @property
    def is_synthetic(self) -> bool:
        return self.source == "synthetic"


def _rng(seed: int, key: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & _MASK, int(key) & _MASK, stream])


def _resize_sample(s: dict, size) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 HxWx3, alpha uint8 HxW) at model size, resized as at inference."""
    h, w = size
    img, a = s["image"], s["alpha"]
    if img.shape[:2] != (h, w):
        img = round_to_uint8(resize_bilinear(img, h, w))
        a = resize_bilinear(a, h, w)
    return img, round_to_uint8(np.asarray(a, np.float32) * 255.0)


class _Backgrounds:
    """Random backgrounds for composition augmentation: the user's photos, else procedural."""

    def __init__(self, cfg: DataConfig):
        self.gen = SyntheticPortraits(cfg.input_size, seed=cfg.seed + 17, backgrounds_dir=cfg.backgrounds_dir)

    def __call__(self, rng: np.random.Generator) -> np.ndarray:
        if self.gen.backgrounds:
            return np.asarray(self.gen._photo_background(rng))
        return self.gen.background(int(rng.integers(0, 2**40)))


def _finish(cfg: DataConfig, s: dict, rng, backgrounds) -> tuple:
    if backgrounds is not None and rng.random() < cfg.composite_prob:
        s = recomposite(s, backgrounds(rng))
    if cfg.augment.enabled:
        s = augment(s, rng, cfg.augment)
    return (np.ascontiguousarray(s["image"], np.uint8), np.ascontiguousarray(s["alpha"], np.float32),
            np.ascontiguousarray(s["fg"], np.uint8), np.ascontiguousarray(s["bg"], np.uint8))


def _to_xy(mean, std):
    T = tf()
    m = T.constant(np.asarray(mean, np.float32).reshape(1, 1, 1, 3))
    sd = T.constant(np.asarray(std, np.float32).reshape(1, 1, 1, 3))

    def fn(image, alpha, fg, bg):
        x = (T.cast(image, T.float32) - m) / sd
        y = T.concat([alpha[..., None], T.cast(fg, T.float32) / 255.0, T.cast(bg, T.float32) / 255.0], -1)
        return x, y

    return fn


def _py_map(ds, fn, out_dtypes, shapes, parallel=True):
    T = tf()

    def wrapped(*args):
        outs = T.numpy_function(fn, list(args), out_dtypes, stateful=False)
        for o, shp in zip(outs, shapes):
            o.set_shape(shp)
        return tuple(outs)

    return ds.map(wrapped, num_parallel_calls=T.data.AUTOTUNE if parallel else None, deterministic=True)


def _synthetic_train(cfg: DataConfig, backgrounds):
    T = tf()
    h, w = cfg.input_size
    gen = SyntheticPortraits(cfg.input_size, seed=cfg.seed, backgrounds_dir=cfg.backgrounds_dir)

    def make(key):
        key = int(key)
        return _finish(cfg, gen.sample(key & _MASK), _rng(cfg.seed, key, 1), backgrounds)

    keys = T.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).take(cfg.n_synthetic_train)
    return _py_map(keys, make, [T.uint8, T.float32, T.uint8, T.uint8],
                   [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)]), cfg.n_synthetic_train


def _synthetic_val(cfg: DataConfig):
    T = tf()
    h, w = cfg.input_size
    gen = SyntheticPortraits(cfg.input_size, seed=cfg.seed + _VAL_SEED_OFFSET, backgrounds_dir=cfg.backgrounds_dir)

    def make(i):
        s = gen.sample(int(i))
        return s["image"], s["alpha"], s["fg"], s["bg"]

    ds = _py_map(T.data.Dataset.range(cfg.n_synthetic_val), make,
                 [T.uint8, T.float32, T.uint8, T.uint8], [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)])
    return ds.cache(), cfg.n_synthetic_val


def _decoded(cfg: DataConfig, samples: list[Sample]):
    """Dataset of (image uint8, alpha uint8) at model size, cached when it fits."""
    T = tf()
    h, w = cfg.input_size

    def load(i):
        return _resize_sample(load_sample(samples[int(i)]), cfg.input_size)

    ds = _py_map(T.data.Dataset.range(len(samples)), load, [T.uint8, T.uint8], [(h, w, 3), (h, w)])
    if cfg.cache and len(samples) * h * w * 4 <= CACHE_BUDGET_BYTES:
        ds = ds.cache()
    return ds


def _folder_split(cfg: DataConfig) -> tuple[list[Sample], list[Sample] | None]:
    samples = scan_folder(cfg.source, skip_bad=cfg.skip_bad)
    if cfg.val_source is not None:
        return samples, None
    n = len(samples)
    if cfg.val_ratio == 0:
        return samples, []
    if n < 2:
        warnings.warn(
            f"{cfg.source} has a single usable pair: validating on the training sample. Add "
            "images or pass a separate validation folder (val_source).", stacklevel=3)
        return samples, list(samples)
    n_val = min(n - 1, max(1, int(round(n * cfg.val_ratio))))
    perm = np.random.default_rng(cfg.seed).permutation(n)
    val_idx = set(perm[:n_val].tolist())
    return ([s for i, s in enumerate(samples) if i not in val_idx],
            [s for i, s in enumerate(samples) if i in val_idx])


def _folder_train(cfg: DataConfig, samples: list[Sample], backgrounds):
    T = tf()
    h, w = cfg.input_size
    ds = _decoded(cfg, samples)
    ds = ds.shuffle(min(len(samples), 4096), seed=cfg.seed, reshuffle_each_iteration=True)
    keys = T.data.Dataset.random(seed=cfg.seed + 1, rerandomize_each_iteration=True)
    ds = T.data.Dataset.zip((ds, keys)).map(lambda d, k: (d[0], d[1], k))

    def make(image, alpha8, key):
        s = {"image": image, "alpha": alpha8.astype(np.float32) * np.float32(1 / 255.0)}
        s["fg"] = s["bg"] = image
        return _finish(cfg, s, _rng(cfg.seed, int(key), 2), backgrounds)

    return _py_map(ds, make, [T.uint8, T.float32, T.uint8, T.uint8],
                   [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)])


def _folder_val(cfg: DataConfig, samples: list[Sample]):
    T = tf()
    h, w = cfg.input_size
    ds = _decoded(cfg, samples)

    def make(image, alpha8):
        return image, alpha8.astype(np.float32) * np.float32(1 / 255.0), image, image

    return _py_map(ds, make, [T.uint8, T.float32, T.uint8, T.uint8],
                   [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)])


def make_datasets(cfg: DataConfig, mean=(127.5,) * 3, std=(127.5,) * 3):
    """Build ``(train, val, info)``; info has n_train, n_val, steps_per_epoch, val_steps.

    train yields ``cfg.n_synthetic_train`` (synthetic) or all training pairs (folder) per
    iteration, shuffled and augmented anew each epoch, in full batches when there are at
    least `batch_size` samples. val is unaugmented, deterministic and cached.
    """
    T = tf()
    if not cfg.is_synthetic and not Path(cfg.source).is_dir():
        raise DataError(
            f"Dataset folder not found: {cfg.source}. Pass 'synthetic' or a folder with "
            "image/ and alpha/ subfolders (`edgematting quickstart` writes one).")
    backgrounds = _Backgrounds(cfg) if cfg.composite_prob > 0 else None

    if cfg.is_synthetic:
        train, n_train = _synthetic_train(cfg, backgrounds)
        val_samples = None
    else:
        train_samples, val_samples = _folder_split(cfg)
        n_train = len(train_samples)
        train = _folder_train(cfg, train_samples, backgrounds)

    if cfg.val_source is not None and cfg.val_source != "synthetic":
        val_samples = scan_folder(cfg.val_source, skip_bad=cfg.skip_bad)
    if val_samples is None:
        val, n_val = _synthetic_val(cfg)
    else:
        val, n_val = _folder_val(cfg, val_samples), len(val_samples)

    bs = cfg.batch_size
    drop = n_train >= bs
    to_xy = _to_xy(mean, std)
    train = train.batch(bs, drop_remainder=drop).map(to_xy, num_parallel_calls=T.data.AUTOTUNE)
    train = train.prefetch(T.data.AUTOTUNE)
    val = val.batch(bs).map(to_xy).prefetch(T.data.AUTOTUNE)
    info = {
        "n_train": int(n_train),
        "n_val": int(n_val),
        "steps_per_epoch": int(n_train // bs if drop else 1),
        "val_steps": int(math.ceil(n_val / bs)) if n_val else 0,
        "source": cfg.source,
        "input_size": list(cfg.input_size),
        "batch_size": bs,
    }
    return train, val, info


def pipeline_throughput(cfg: DataConfig, batches: int = 20) -> float:
    """Images per second delivered by the training input pipeline alone (after one warm-up batch)."""
    train, _, _ = make_datasets(cfg)
    it = iter(train.repeat())
    next(it)
    n = 0
    t0 = time.perf_counter()
    for _ in range(batches):
        x, _y = next(it)
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0)
