"""tf.data input pipelines for training and validation.

Each element is ``(x, y)``: x float32 (B, H, W, 3) = (pixel - mean) / std, and y float32
(B, H, W, 7) = [alpha, fg_rgb / 255, bg_rgb / 255]. For folder data the true fg/bg
colours are unknown and both are the photo itself.

Synthetic training data comes from a *pool* of ``cfg.synthetic_pool`` procedural portraits
(image, alpha, fg, bg as uint8), generated once in worker processes (or loaded from an
.npz cache on disk) and held in memory; each training element is a pool sample drawn at
random, optionally recomposited over the background of another pool sample (composition
augmentation, ``cfg.composite_prob``) and augmented by TensorFlow graph ops
(`augment_tf.augment_composite`): no Python and no GIL in the per-step path. Keys come from
``tf.data.Dataset.random(seed, rerandomize_each_iteration=True)`` and all random ops are
stateless functions of the key, so every epoch differs and the sequence is reproducible
from `seed`. ``synthetic_pool=0`` keeps the old path: a fresh numpy sample per element,
augmented in numpy inside `tf.numpy_function` (slow: it holds the GIL). Folder data is
decoded once, resized to the model input (the same bilinear resize as inference,
`imageops.resize_bilinear`) and cached in memory when it fits in `CACHE_BUDGET_BYTES`
(4 bytes per pixel: 2 GiB is ~8,000 samples at 256x256); a larger folder streams from disk
every epoch with only the samples in flight in memory (`_decoded`). Validation is never
augmented, always in the same order, and cached.

For a prior-frame model (``DataConfig.prior``, `edgematting.prior`) x has a 4th channel:
a simulated previous-frame alpha made from the batch's true alpha by `prior.simulate_priors`
(stateless, keyed by ``Dataset.random(seed + _PRIOR_SEED_OFFSET)``: new every epoch for
training, the same every epoch for validation).
"""
from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._tf import tf
from ..errors import DataError, InputError
from ..imageops import DEFAULT_MEAN, DEFAULT_STD, resize_bilinear, round_to_uint8
from .augment import AugmentConfig, augment, recomposite
from .folder import Sample, load_sample, scan_folder
from .synthetic import SyntheticPortraits
from . import synthetic as _synthetic_module

#: Decoded folder datasets (uint8 image + uint8 alpha at model size) up to this size are
#: cached in memory; larger ones are decoded again every epoch.
CACHE_BUDGET_BYTES = 2 * 1024**3
#: The synthetic pool (10 bytes per pixel: image, alpha, fg, bg as uint8) is capped at this
#: size: a larger `synthetic_pool` is reduced, with a warning.
POOL_BUDGET_BYTES = 2 * 1024**3
#: Bump when the pool file layout changes (the generator's own changes are caught by a hash
#: of synthetic.py).
_POOL_FORMAT = 1
#: Worker processes for generating the pool (at most; fewer on fewer cores).
POOL_MAX_WORKERS = 8
_VAL_SEED_OFFSET = 1_000_003
_PRIOR_SEED_OFFSET = 2_700_027
_MASK = 0xFFFFFFFFFFFF


@dataclass
class DataConfig:
    source: str | None = "synthetic"  # "synthetic", a dataset folder, or None (teacher data only)
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
    # synthetic: portraits generated once and augmented in TF; 0 = a fresh numpy sample per step
    synthetic_pool: int = 1000
    # where pools are cached as .npz (None: $EDGEMATTING_CACHE_DIR, else ~/.cache/edgematting;
    # "" disables the disk cache)
    pool_cache_dir: str | None = None
    # distillation: (photo, teacher matte) pairs trained on next to `source`'s labelled
    # pairs, with loss weight `teacher_weight` (see edgematting.teacher)
    teacher_pairs: list = field(default_factory=list)
    teacher_weight: float = 1.0
    # photo path -> a teacher's soft matte of it: binary labels take it inside their edge band
    soft_edges: dict = field(default_factory=dict)
    # a prior-frame model: x gets a 4th channel, the true alpha perturbed (`edgematting.prior`);
    # prior_sim: `prior.PriorSimConfig` fields (None: its defaults)
    prior: bool = False
    prior_sim: dict | None = None

    def __post_init__(self):
        if isinstance(self.augment, dict):
            self.augment = AugmentConfig(**self.augment)
        if self.source is None and not self.teacher_pairs:
            raise InputError("DataConfig needs a source or teacher_pairs.")
        if self.source is not None:
            self.source = str(self.source)
        if self.teacher_pairs and self.source == "synthetic":
            raise InputError("Teacher-labelled photos mix with a labelled folder, not with synthetic data; "
                             "pass --data DIR or leave --data out.")
        if not self.teacher_weight > 0:
            raise InputError(f"--distill-weight must be positive, got {self.teacher_weight}.")
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
        self.synthetic_pool = int(self.synthetic_pool)
        if self.synthetic_pool < 0:
            raise InputError(f"synthetic_pool must be >= 0, got {self.synthetic_pool}")
        if self.pool_cache_dir is not None:
            self.pool_cache_dir = str(self.pool_cache_dir)

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
            return np.asarray(self.gen.photo_background(rng))
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

    def fn(image, alpha, fg, bg, weight=None):
        x = (T.cast(image, T.float32) - m) / sd
        y = T.concat([alpha[..., None], T.cast(fg, T.float32) / 255.0, T.cast(bg, T.float32) / 255.0], -1)
        return (x, y) if weight is None else (x, y, weight)

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


# -- synthetic pool ------------------------------------------------------------------------
_POOL_KEYS = ("image", "alpha", "fg", "bg")
_worker_gen: dict = {}
_last_pool: dict = {}  # one pool (as TF tensors) kept for the next make_datasets call


def _pool_chunk(args):
    """Worker: pool samples [start, stop) as uint8 arrays (module level: picklable for spawn)."""
    size, seed, backgrounds_dir, start, stop = args
    key = (size, seed, backgrounds_dir)
    gen = _worker_gen.get(key)
    if gen is None:
        _worker_gen.clear()
        gen = _worker_gen[key] = SyntheticPortraits(size, seed=seed, backgrounds_dir=backgrounds_dir)
    h, w = size
    n = stop - start
    out = {"image": np.empty((n, h, w, 3), np.uint8), "alpha": np.empty((n, h, w), np.uint8),
           "fg": np.empty((n, h, w, 3), np.uint8), "bg": np.empty((n, h, w, 3), np.uint8)}
    for k in range(n):
        s = gen.sample(start + k)
        out["image"][k], out["fg"][k], out["bg"][k] = s["image"], s["fg"], s["bg"]
        out["alpha"][k] = round_to_uint8(s["alpha"] * np.float32(255.0))
    return start, out


def pool_size(cfg: DataConfig) -> int:
    """`cfg.synthetic_pool`, capped by `POOL_BUDGET_BYTES` (10 bytes per pixel per sample)."""
    h, w = cfg.input_size
    cap = max(1, POOL_BUDGET_BYTES // (10 * h * w))
    return min(cfg.synthetic_pool, cap)


def _pool_cache_path(cfg: DataConfig, n: int) -> Path | None:
    d = cfg.pool_cache_dir
    if d is None:
        d = os.environ.get("EDGEMATTING_CACHE_DIR") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "edgematting")
        d = os.path.join(d, "synthetic_pools")
    if not d:
        return None
    key = hashlib.sha1()
    key.update(Path(_synthetic_module.__file__).read_bytes())  # the generator's version
    key.update(f"format={_POOL_FORMAT}".encode())
    if cfg.backgrounds_dir is not None:
        from .io import list_images
        for p in list_images(cfg.backgrounds_dir):
            st = p.stat()
            key.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    h, w = cfg.input_size
    return Path(d) / f"pool_{h}x{w}_seed{cfg.seed}_n{n}_{key.hexdigest()[:16]}.npz"


def _load_pool(path: Path, n: int, size) -> dict | None:
    try:
        with np.load(path) as z:
            pool = {k: z[k] for k in _POOL_KEYS}
    except Exception as e:  # a damaged cache file is regenerated, never trusted
        warnings.warn(f"Ignoring unreadable pool cache {path}: {e}", stacklevel=3)
        return None
    h, w = size
    want = {"image": (n, h, w, 3), "alpha": (n, h, w), "fg": (n, h, w, 3), "bg": (n, h, w, 3)}
    if any(pool[k].shape != want[k] or pool[k].dtype != np.uint8 for k in _POOL_KEYS):
        return None
    return pool


def _save_pool(path: Path, pool: dict) -> None:
    """Write the pool atomically (temp file + rename); a failure only costs the cache."""
    from .. import atomic

    need = sum(a.nbytes for a in pool.values()) + (1 << 20)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        import shutil
        if shutil.disk_usage(path.parent).free < 2 * need:
            warnings.warn(f"Not caching the synthetic pool in {path.parent}: too little free disk", stacklevel=3)
            return

        def save(tmp):
            with open(tmp, "wb") as f:
                np.savez(f, **pool)

        atomic.write_with(path, save)
    except OSError as e:
        warnings.warn(f"Could not cache the synthetic pool in {path}: {e}", stacklevel=3)


def _pool_worker_main() -> None:  # pragma: no cover - runs in a subprocess
    """Subprocess entry: argv = [json (size, seed, backgrounds_dir, start, stop), out.npz]."""
    import json
    import sys

    size, seed, bgdir, start, stop = json.loads(sys.argv[1])
    _, part = _pool_chunk((tuple(size), seed, bgdir, start, stop))
    with open(sys.argv[2], "wb") as f:
        np.savez(f, **part)


def _generate_subprocesses(jobs, put, workers: int) -> None:
    """Run `jobs` in fresh interpreters (`python -c`): safe after TF started its threads, and,
    unlike multiprocessing's spawn, never re-imports the caller's __main__."""
    import json
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = "from edgematting.data.pipeline import _pool_worker_main; _pool_worker_main()"
    with tempfile.TemporaryDirectory(prefix="edgematting_pool_") as tmp:
        per = -(-len(jobs) // workers)
        groups = [jobs[i:i + per] for i in range(0, len(jobs), per)]
        procs = []
        for gi, group in enumerate(groups):
            size, seed, bgdir = group[0][:3]
            start, stop = group[0][3], group[-1][4]
            out = os.path.join(tmp, f"part{gi}.npz")
            arg = json.dumps([list(size), seed, bgdir, start, stop])
            procs.append((start, out, subprocess.Popen([sys.executable, "-c", code, arg, out], env=env,
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
        errors = []
        for start, out, proc in procs:
            _, err = proc.communicate()
            if proc.returncode != 0:
                errors.append(err.decode(errors="replace")[-2000:])
                continue
            with np.load(out) as z:
                put(start, {k: z[k] for k in _POOL_KEYS})
        if errors:
            raise RuntimeError("pool worker failed: " + errors[0])


def _generate_pool(cfg: DataConfig, n: int, workers: int | None = None) -> dict:
    h, w = cfg.input_size
    size = (h, w)
    if workers is None:
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # pragma: no cover - not Linux
            cpus = os.cpu_count() or 1
        workers = min(cpus, POOL_MAX_WORKERS)
        # about 3 ms + 7 ms per 256x256 per sample: not worth starting processes for < ~1.5 s
        if n * (3e-3 + 7e-3 * h * w / 65536) < 1.5:
            workers = 1
    pool = {"image": np.empty((n, h, w, 3), np.uint8), "alpha": np.empty((n, h, w), np.uint8),
            "fg": np.empty((n, h, w, 3), np.uint8), "bg": np.empty((n, h, w, 3), np.uint8)}

    def put(start, part):
        for k in _POOL_KEYS:
            pool[k][start:start + len(part[k])] = part[k]

    if workers > 1:
        chunk = max(1, -(-n // (4 * workers)))
        jobs = [(size, cfg.seed, cfg.backgrounds_dir, a, min(n, a + chunk)) for a in range(0, n, chunk)]
        # fork while TensorFlow is not loaded (numpy/PIL state is fork-safe); once TF may
        # have started its thread pools, forking is unsafe: use fresh interpreters instead.
        try:
            if "tensorflow" not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
                with multiprocessing.get_context("fork").Pool(workers) as mp_pool:
                    for start, part in mp_pool.imap_unordered(_pool_chunk, jobs):
                        put(start, part)
            else:
                _generate_subprocesses(jobs, put, workers)
            return pool
        except (RuntimeError, OSError) as e:
            warnings.warn(f"Generating the synthetic pool in this process (worker processes failed: {e})",
                          stacklevel=3)
    put(*_pool_chunk((size, cfg.seed, cfg.backgrounds_dir, 0, n)))
    return pool


def build_synthetic_pool(cfg: DataConfig, workers: int | None = None) -> tuple[dict, dict]:
    """The synthetic training pool as numpy arrays, from the disk cache or generated.

    Returns ``(pool, info)``: pool has image (N,H,W,3), alpha (N,H,W) (alpha*255), fg, bg
    (N,H,W,3), all uint8; sample i is ``SyntheticPortraits(size, seed).sample(i)``. info
    has n, source ("cache" or "generated"), seconds, path (the cache file or None).
    """
    t0 = time.perf_counter()
    n = pool_size(cfg)
    if n < cfg.synthetic_pool:
        h, w = cfg.input_size
        warnings.warn(
            f"synthetic_pool={cfg.synthetic_pool} at {h}x{w} exceeds the pool memory budget "
            f"({POOL_BUDGET_BYTES / 2**30:.1f} GiB at 10 bytes/pixel): using {n} samples.", stacklevel=2)
    path = _pool_cache_path(cfg, n)
    pool = _load_pool(path, n, cfg.input_size) if path is not None and path.is_file() else None
    source = "cache"
    if pool is None:
        source = "generated"
        pool = _generate_pool(cfg, n, workers)
        if path is not None:
            _save_pool(path, pool)
    return pool, {"n": n, "source": source, "seconds": time.perf_counter() - t0,
                  "path": None if path is None else str(path)}


def _pool_tensors(cfg: DataConfig):
    """Pool as TF tensors (+ build info); the last pool is reused by the next identical call."""
    key = (tuple(cfg.input_size), cfg.seed, pool_size(cfg), cfg.backgrounds_dir, cfg.pool_cache_dir)
    if _last_pool.get("key") == key:
        return _last_pool["tensors"], dict(_last_pool["info"], source="memory", seconds=0.0)
    _last_pool.clear()  # release the previous pool before building another
    pool, info = build_synthetic_pool(cfg)
    T = tf()  # only now: importing and running TF starts threads, and fork wants none
    tensors = {k: T.convert_to_tensor(pool.pop(k)) for k in _POOL_KEYS}
    _last_pool.update(key=key, tensors=tensors, info=info)
    return tensors, info


def _pool_train(cfg: DataConfig):
    """Training elements (image, alpha, fg, bg) from the pool, augmented in graph mode."""
    from .augment_tf import augment_composite, composite

    pool, info = _pool_tensors(cfg)
    T = tf()
    n = int(pool["alpha"].shape[0])
    p_comp = float(cfg.composite_prob) if n > 1 else 0.0
    acfg = cfg.augment

    def make(key):
        key = T.cast(key, T.int64)
        seed = T.stack([key, T.constant(cfg.seed, T.int64)])
        u = T.random.stateless_uniform([2], seed=T.stack([key, T.constant(7, T.int64)]))
        i = T.minimum(T.cast(u[0] * n, T.int64), n - 1)
        fg = T.gather(pool["fg"], i)
        alpha8 = T.cast(T.gather(pool["alpha"], i), T.float32)
        if p_comp > 0:
            # composition: the background of another pool sample
            j = (i + 1 + T.minimum(T.cast(u[1] / p_comp * (n - 1), T.int64), n - 2)) % n
            bg = T.gather(pool["bg"], T.where(u[1] < p_comp, j, i))
        else:
            bg = T.gather(pool["bg"], i)
        if not acfg.enabled:
            fgf, bgf = T.cast(fg, T.float32), T.cast(bg, T.float32)
            return composite(alpha8, fgf, bgf), alpha8 / 255.0, fgf, bgf
        return augment_composite(fg, bg, alpha8 / 255.0, seed, acfg)

    keys = T.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).take(cfg.n_synthetic_train)
    make = T.autograph.experimental.do_not_convert(make)  # plain graph ops, tf.cond for branches
    ds = keys.map(make, num_parallel_calls=T.data.AUTOTUNE, deterministic=True)
    return ds, cfg.n_synthetic_train, info


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


def _decoded(cfg: DataConfig, samples: list[Sample], shuffle: bool = False):
    """Dataset of (image uint8, alpha uint8, loss weight float32) at model size, cached when it fits.

    `shuffle`: a new order every epoch. A cached dataset is shuffled after the cache (a
    buffer of up to 4096 samples); one too large to cache streams from disk, its *indices*
    shuffled before decoding, so only the samples in flight are in memory, whatever the
    folder's size."""
    T = tf()
    h, w = cfg.input_size
    n = len(samples)

    def load(i):
        s = samples[int(i)]
        return (*_resize_sample(load_sample(s), cfg.input_size), np.float32(s.weight))

    cached = cfg.cache and n * h * w * 4 <= CACHE_BUDGET_BYTES
    order = T.data.Dataset.range(n)
    if shuffle and not cached:
        order = order.shuffle(n, seed=cfg.seed, reshuffle_each_iteration=True)
    ds = _py_map(order, load, [T.uint8, T.uint8, T.float32], [(h, w, 3), (h, w), ()])
    if cached:
        ds = ds.cache()
        if shuffle:
            ds = ds.shuffle(min(n, 4096), seed=cfg.seed, reshuffle_each_iteration=True)
    return ds


def teacher_samples(cfg: DataConfig) -> list[Sample]:
    return [Sample(Path(photo), Path(matte), False, float(cfg.teacher_weight)) for photo, matte in cfg.teacher_pairs]


def _split(cfg: DataConfig, samples: list[Sample], name: str) -> tuple[list[Sample], list[Sample]]:
    n = len(samples)
    if cfg.val_ratio == 0:
        return samples, []
    if n < 2:
        warnings.warn(
            f"{name} has a single usable pair: validating on the training sample. Add "
            "images or pass a separate validation folder (val_source).", stacklevel=4)
        return samples, list(samples)
    n_val = min(n - 1, max(1, int(round(n * cfg.val_ratio))))
    perm = np.random.default_rng(cfg.seed).permutation(n)
    val_idx = set(perm[:n_val].tolist())
    return ([s for i, s in enumerate(samples) if i not in val_idx],
            [s for i, s in enumerate(samples) if i in val_idx])


def _folder_split(cfg: DataConfig) -> tuple[list[Sample], list[Sample] | None]:
    """(train, val) samples. Validation is split off the labelled folder; with teacher data
    only, off the teacher-labelled photos (agreement with the teacher)."""
    labelled = scan_folder(cfg.source, skip_bad=cfg.skip_bad) if cfg.source is not None else []
    if cfg.soft_edges:
        edges = {str(k): Path(v) for k, v in cfg.soft_edges.items()}
        for s in labelled:
            s.soft_edges = edges.get(str(s.image))
    taught = teacher_samples(cfg)
    if cfg.val_source is not None:
        return labelled + taught, None
    if labelled:
        train, val = _split(cfg, labelled, cfg.source)
        return train + taught, val
    train, val = _split(cfg, taught, "the teacher-labelled photos")
    return train, [Sample(s.image, s.alpha, False, 1.0) for s in val]


def _folder_train(cfg: DataConfig, samples: list[Sample], backgrounds):
    T = tf()
    h, w = cfg.input_size
    ds = _decoded(cfg, samples, shuffle=True)
    keys = T.data.Dataset.random(seed=cfg.seed + 1, rerandomize_each_iteration=True)
    ds = T.data.Dataset.zip((ds, keys)).map(lambda d, k: (d[0], d[1], d[2], k))
    weighted = any(s.weight != 1.0 for s in samples)

    def make(image, alpha8, weight, key):
        s = {"image": image, "alpha": alpha8.astype(np.float32) * np.float32(1 / 255.0)}
        s["fg"] = s["bg"] = image
        out = _finish(cfg, s, _rng(cfg.seed, int(key), 2), backgrounds)
        return (*out, np.float32(weight)) if weighted else out

    dtypes = [T.uint8, T.float32, T.uint8, T.uint8] + ([T.float32] if weighted else [])
    shapes = [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)] + ([()] if weighted else [])
    return _py_map(ds, make, dtypes, shapes)


def _folder_val(cfg: DataConfig, samples: list[Sample]):
    T = tf()
    h, w = cfg.input_size
    ds = _decoded(cfg, samples)

    def make(image, alpha8, _weight):
        return image, alpha8.astype(np.float32) * np.float32(1 / 255.0), image, image

    return _py_map(ds, make, [T.uint8, T.float32, T.uint8, T.uint8],
                   [(h, w, 3), (h, w), (h, w, 3), (h, w, 3)])


def with_priors(ds, cfg: DataConfig, rerandomize: bool):
    """Batches ``(x, y[, w])`` -> ``(concat(x, prior), y[, w])``: the prior simulated from
    ``y[..., :1]`` (the true alpha), one stateless key per batch (`prior.simulate_priors`)."""
    from ..prior import PriorSimConfig, simulate_priors

    T = tf()
    sim = PriorSimConfig.from_dict(cfg.prior_sim)  # None: prior.default_sim()
    keys = T.data.Dataset.random(seed=cfg.seed + _PRIOR_SEED_OFFSET, rerandomize_each_iteration=rerandomize)

    def add(xy, key):
        x, y = xy[0], xy[1]
        seed = T.stack([T.cast(key, T.int64), T.constant(27, T.int64)])
        p = simulate_priors(y[..., :1], seed, sim)
        return (T.concat([x, p], -1), *xy[1:])

    add = T.autograph.experimental.do_not_convert(add)
    return T.data.Dataset.zip((ds, keys)).map(add, num_parallel_calls=T.data.AUTOTUNE, deterministic=True)


def make_datasets(cfg: DataConfig, mean=DEFAULT_MEAN, std=DEFAULT_STD):
    """Build ``(train, val, info)``; info has n_train, n_val, steps_per_epoch, val_steps.

    train yields ``cfg.n_synthetic_train`` (synthetic) or all training pairs (folder) per
    iteration, shuffled and augmented anew each epoch, in full batches when there are at
    least `batch_size` samples. val is unaugmented, deterministic and cached.
    """
    if cfg.source is not None and not cfg.is_synthetic and not Path(cfg.source).is_dir():
        raise DataError(
            f"Dataset folder not found: {cfg.source}. Pass 'synthetic' or a folder with "
            "image/ and alpha/ subfolders (`edgematting quickstart` writes one).")
    use_pool = cfg.is_synthetic and cfg.synthetic_pool > 0
    backgrounds = _Backgrounds(cfg) if cfg.composite_prob > 0 and not use_pool else None

    pool_info = None
    if cfg.is_synthetic and cfg.synthetic_pool > 0:
        # pool before any other TF work: its workers may then fork safely
        train, n_train, pool_info = _pool_train(cfg)
        val_samples = None
    elif cfg.is_synthetic:
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

    T = tf()
    bs = cfg.batch_size
    drop = n_train >= bs
    to_xy = _to_xy(mean, std)
    train = train.batch(bs, drop_remainder=drop).map(to_xy, num_parallel_calls=T.data.AUTOTUNE)
    val = val.batch(bs).map(to_xy)
    if cfg.prior:
        train = with_priors(train, cfg, rerandomize=True)
        val = with_priors(val, cfg, rerandomize=False)
    train = train.prefetch(T.data.AUTOTUNE)
    val = val.prefetch(T.data.AUTOTUNE)
    info = {
        "n_train": int(n_train),
        "n_val": int(n_val),
        "steps_per_epoch": int(n_train // bs if drop else 1),
        "val_steps": int(math.ceil(n_val / bs)) if n_val else 0,
        "source": cfg.source,
        "teacher_pairs": len(cfg.teacher_pairs),
        "input_size": list(cfg.input_size),
        "batch_size": bs,
    }
    if pool_info is not None:
        info["pool"] = pool_info
    return train, val, info


def pipeline_throughput(cfg: DataConfig, batches: int = 20, details: bool = False):
    """Images per second delivered by the training input pipeline alone (after one warm-up batch).

    Timed after `make_datasets` returns, i.e. after the synthetic pool exists. With
    ``details=True`` returns a dict: images_per_second, cpu_ms_per_image (this process's
    CPU time over the timed batches), build_seconds (make_datasets) and pool (its info:
    n, source, seconds) for a pooled synthetic source.
    """
    t0 = time.perf_counter()
    train, _, info = make_datasets(cfg)
    build = time.perf_counter() - t0
    it = iter(train.repeat())
    next(it)
    n = 0
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(batches):
        x, _y = next(it)
        n += int(x.shape[0])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    ips = n / wall
    if not details:
        return ips
    return {"images_per_second": ips, "cpu_ms_per_image": 1000.0 * cpu / max(n, 1),
            "build_seconds": build, "pool": info.get("pool")}
