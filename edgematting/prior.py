"""The previous frame's alpha as a 4th input channel (issue 27): one place for its facts.

A *prior-frame* model (architecture option ``prior=True``, ``edgematting train
--model-option prior=true``) takes (H, W, 4): the RGB pixels normalized as model.json says
(``(pixel - mean) / std``), then the **prior**: the alpha the model itself produced for the
previous frame, at the model's input size, as float in [0, 1] (0 = background, 1 = person),
*not* normalized by mean/std. On the first frame of a clip, after a cut, and for a single
photo the prior is all zeros. Its output is alpha, as for every model.

This module holds:

* the contract facts: `PRIOR_ORDER` (the artifact's ``input.channel_order``, "RGB+prior",
  never to be confused with "RGBA", the bitmap wrapper whose alpha is ignored),
  `prior_description()` (``input.prior`` in every artifact's metadata), `is_prior_spec`,
  `model_channels` and the typed refusal `PriorChannelError`;
* `simulate_priors`: the simulated previous-frame alphas training feeds (the true alpha
  shifted, scaled, eroded or dilated, blurred, noisy, or empty; in `PRESETS["v2"]` also
  fast moves, holes, false blobs, soft mattes and other samples' shapes), TensorFlow graph
  ops with stateless random numbers: a pure function of (alpha, seed), configured by
  `PriorSimConfig` (recorded in model.json as ``training.prior_sim``; `simulation` picks
  the one training uses when its DataConfig names none);
* `sample_priors`: the same, for numpy callers (calibration, verification, tests).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields

import numpy as np

from .errors import InputError, UnsupportedError

#: ``input.channel_order`` of a prior-frame model's artifacts (and of its model.json).
PRIOR_ORDER = "RGB+prior"


def prior_description() -> dict:
    """``input.prior`` of a prior-frame artifact's metadata: what an app feeds as channel 4."""
    return {
        "channel": 3,
        "what": "the alpha this model output for the previous frame, at the model's input size "
                "(bilinear, as the output itself), not normalized by mean/std",
        "range": [0.0, 1.0],
        "first_frame": "zeros (also after a cut, and for a single photo)",
        "uint8_input": "round(prior * 255) when input.dtype is uint8 with the normalization in the model",
    }


class PriorChannelError(UnsupportedError):
    """A prior-frame model asked for something its 4th channel cannot be (an RGBA wrapper,
    a Core ML image input)."""


def is_prior_spec(spec) -> bool:
    """Does this `ModelSpec` (or architecture config dict) describe a prior-frame model?"""
    if isinstance(spec, dict):
        return bool(spec.get("prior"))
    cfg = getattr(spec, "config", None) or {}
    return bool(cfg.get("prior")) or str(getattr(spec, "channel_order", "")).lower() == PRIOR_ORDER.lower()


def model_channels(spec, requested: int = 3) -> int:
    """The artifact's input channels: 4 for a prior-frame model (`requested` must then be 3:
    a prior model cannot also be wrapped to take RGBA bitmaps), else `requested`."""
    if not is_prior_spec(spec):
        return int(requested)
    if int(requested) != 3:
        raise PriorChannelError(
            f"{getattr(spec, 'name', 'this model')} is a prior-frame model: its 4th input channel is the "
            "previous frame's alpha (channel order RGB+prior), so it cannot also take RGBA bitmaps "
            "(--channels 4, whose alpha is ignored). Convert it with --channels 3 and feed RGB + prior.")
    return 4


def with_prior(spec, x: np.ndarray, prior=None) -> np.ndarray:
    """Normalized RGB input (N, H, W, 3) -> the Keras model's input: unchanged for a plain
    model; for a prior-frame model the prior appended ((N, H, W[, 1]) in [0, 1]; None: zeros)."""
    x = np.asarray(x, np.float32)
    if not is_prior_spec(spec) or x.shape[-1] == 4:
        return x
    if prior is None:
        p = np.zeros(x.shape[:-1] + (1,), np.float32)
    else:
        p = np.asarray(prior, np.float32).reshape(x.shape[:-1] + (1,))
    return np.concatenate([x[..., :3], p], axis=-1)


@dataclass(frozen=True)
class PriorSimConfig:
    """How a training sample's prior is made from its true alpha (each applied at random).

    Recorded in model.json's training section (``training.prior_sim``). Order: affine (shift
    up to ``max_shift`` of the size in x and y, scale in ``scale_range`` about the centre;
    with ``p_fast`` a fast move instead: shift up to ``fast_shift``, scale in
    ``fast_scale_range``), then erode or dilate (``p_morph``, a ``3x3`` or ``5x5`` max
    filter), then an imperfect model's mistakes: ``p_holes`` cuts 1 to 3 soft ellipses out
    (missing parts), ``p_blobs`` adds 1 to 3 (false blobs), ``p_soft`` makes it a
    low-contrast, blurred version (``0.5 + (p - 0.5) * c``, c in ``soft_contrast``); then
    blur (``p_blur``, 5x5 box), noise (``p_noise``, Gaussian with sigma up to
    ``noise_std``), clip to [0, 1]; with ``p_swap`` another sample's prior (a wrong shape,
    as after a cut); with ``p_empty`` all zeros instead (a first frame).

    The fields' defaults are the first recorded simulation (``PRESETS["v1"]``: its knobs
    after ``noise_std`` are off, so a record without them loads as what it was);
    ``PRESETS["v2"]`` turns them on (docs/experiments.md, "Prior v2").
    """

    p_empty: float = 0.25
    max_shift: float = 0.05
    scale_range: tuple = (0.92, 1.08)
    p_morph: float = 0.5
    p_blur: float = 0.4
    p_noise: float = 0.3
    noise_std: float = 0.08
    # v2 knobs (0: off)
    p_fast: float = 0.0
    fast_shift: float = 0.18
    fast_scale_range: tuple = (0.8, 1.25)
    p_holes: float = 0.0
    p_blobs: float = 0.0
    p_soft: float = 0.0
    soft_contrast: tuple = (0.2, 0.7)
    p_swap: float = 0.0

    def __post_init__(self):
        for name in ("p_empty", "p_morph", "p_blur", "p_noise", "p_fast", "p_holes", "p_blobs", "p_soft", "p_swap"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise InputError(f"prior simulation: {name} must be a probability in [0, 1], got {v!r}.")
        for name in ("max_shift", "fast_shift", "noise_std"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 0.5):
                raise InputError(f"prior simulation: {name} must be in [0, 0.5] (a fraction of the size), got {v!r}.")
        for name in ("scale_range", "fast_scale_range", "soft_contrast"):
            v = getattr(self, name)
            try:
                lo, hi = (float(x) for x in v)
            except (TypeError, ValueError):
                raise InputError(f"prior simulation: {name} must be two numbers [low, high], got {v!r}.") from None
            if not 0.0 < lo <= hi:
                raise InputError(f"prior simulation: {name} must have 0 < low <= high, got {v!r}.")
            object.__setattr__(self, name, (lo, hi))

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("scale_range", "fast_scale_range", "soft_contrast"):
            d[k] = list(getattr(self, k))
        return d

    @classmethod
    def from_dict(cls, d: dict | None) -> "PriorSimConfig":
        """A recorded config (model.json's ``training.prior_sim``, `DataConfig.prior_sim`), or
        a preset name (``"v1"``, ``"v2"``); None: the default. Missing fields take the
        defaults (so a v1 record loads as v1); an unknown field is an InputError."""
        if d is None:
            return default_sim()
        if isinstance(d, str):
            return preset(d)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"prior simulation has no field {', '.join(map(repr, unknown))}. "
                             f"Its fields: {', '.join(sorted(known))}.")
        return cls(**d)


#: named simulations: v1 (the first prior-frame runs: the truth perturbed, small motion) and
#: v2 (fast moves, more empty priors, an imperfect model's holes / false blobs / soft mattes,
#: wrong shapes), docs/experiments.md "A prior-frame model" and "Prior v2".
PRESETS = {
    "v1": PriorSimConfig(),
    "v2": PriorSimConfig(p_empty=0.35, p_fast=0.4, p_holes=0.3, p_blobs=0.3, p_soft=0.2, p_swap=0.1),
}

#: what a prior-frame model trains with when nothing chooses (`simulation` changes it for a block)
DEFAULT_PRESET = "v1"
_default = [None]


def preset(name: str) -> PriorSimConfig:
    """A named `PriorSimConfig` (`PRESETS`); InputError naming the presets for another name."""
    try:
        return PRESETS[str(name)]
    except KeyError:
        raise InputError(f"Unknown prior simulation {name!r}. Known: {', '.join(PRESETS)}.") from None


def default_sim() -> PriorSimConfig:
    """The simulation training uses when its DataConfig names none."""
    return _default[0] or preset(DEFAULT_PRESET)


@contextmanager
def simulation(cfg):
    """Within the block, training with no explicit ``prior_sim`` simulates priors with `cfg`
    (a `PriorSimConfig`, a recorded dict or a preset name), e.g. a bench driver's choice."""
    sim = cfg if isinstance(cfg, PriorSimConfig) else PriorSimConfig.from_dict(cfg)
    old = _default[0]
    _default[0] = sim
    try:
        yield sim
    finally:
        _default[0] = old


def _ellipses(T, u, start, k, hf, wf, rmin=0.06, rmax=0.22):
    """(N, H, W, 1) soft ellipses, `k` per sample, the j-th from ``u[:, start + 4j : start + 4j + 4]``:
    centre x, y in [0.1, 0.9] of the size, radii x, y in [rmin, rmax] of it."""
    ys = T.range(hf)[None, :, None]
    xs = T.range(wf)[None, None, :]
    out = []
    for j in range(k):
        c = start + 4 * j
        cx = (0.1 + 0.8 * u[:, c]) * wf
        cy = (0.1 + 0.8 * u[:, c + 1]) * hf
        rx = (rmin + (rmax - rmin) * u[:, c + 2]) * wf
        ry = (rmin + (rmax - rmin) * u[:, c + 3]) * hf
        d = ((xs - cx[:, None, None]) / rx[:, None, None]) ** 2 + ((ys - cy[:, None, None]) / ry[:, None, None]) ** 2
        out.append(T.sigmoid((1.0 - d) * 6.0)[..., None])
    return out


def simulate_priors(alpha, seed, cfg: PriorSimConfig | None = None):
    """True alphas (N, H, W, 1) or (N, H, W), float in [0, 1] -> simulated priors (N, H, W, 1)
    float32 (a tf.Tensor). `seed`: a shape-[2] int tensor (stateless random ops: the same
    seed gives the same priors). `cfg`: None is `default_sim()`. The v1 knobs draw the same
    random numbers as they always did: a v1 config gives the priors it gave."""
    from ._tf import box_max, box_min, tf

    T = tf()
    cfg = cfg or default_sim()
    a = T.convert_to_tensor(alpha, T.float32)
    if a.shape.rank == 3:
        a = a[..., None]
    seed = T.cast(T.convert_to_tensor(seed), T.int64)
    n = T.shape(a)[0]
    hf = T.cast(T.shape(a)[1], T.float32)
    wf = T.cast(T.shape(a)[2], T.float32)
    u = T.random.stateless_uniform(T.stack([n, 12]), seed=seed)
    col = lambda j: u[:, j]  # noqa: E731
    v2 = any((cfg.p_fast, cfg.p_holes, cfg.p_blobs, cfg.p_soft, cfg.p_swap))
    if v2:  # the v2 knobs' own random numbers (v1's stream stays as it was)
        u2 = T.random.stateless_uniform(T.stack([n, 48]), seed=seed + T.constant([2, 11], T.int64))
        col2 = lambda j: u2[:, j]  # noqa: E731

    # affine: output (x, y) samples input ((x - cx) / s + cx - dx, (y - cy) / s + cy - dy)
    s = cfg.scale_range[0] + col(0) * (cfg.scale_range[1] - cfg.scale_range[0])
    dx = (col(1) * 2 - 1) * cfg.max_shift * wf
    dy = (col(2) * 2 - 1) * cfg.max_shift * hf
    if cfg.p_fast > 0:  # a fast move between frames: larger shift and scale
        fast = col2(0) < cfg.p_fast
        lo, hi = cfg.fast_scale_range
        s = T.where(fast, lo * (hi / lo) ** col2(1), s)  # log-uniform: as likely to grow as to shrink
        dx = T.where(fast, (col2(2) * 2 - 1) * cfg.fast_shift * wf, dx)
        dy = T.where(fast, (col2(3) * 2 - 1) * cfg.fast_shift * hf, dy)
    cx, cy = (wf - 1) / 2, (hf - 1) / 2
    inv = 1.0 / s
    zeros = T.zeros_like(s)
    transforms = T.stack([inv, zeros, cx - cx * inv - dx, zeros, inv, cy - cy * inv - dy, zeros, zeros], axis=1)
    p = T.raw_ops.ImageProjectiveTransformV3(
        images=a, transforms=transforms, output_shape=T.shape(a)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="CONSTANT")

    def pick(cond, yes, no):
        return T.where(cond[:, None, None, None], yes, no)

    # erode or dilate, 3x3 or 5x5
    morph = col(3) < cfg.p_morph
    dilate = col(4) < 0.5
    big = col(5) < 0.5
    d3, d5, e3, e5 = box_max(p, 3), box_max(p, 5), box_min(p, 3), box_min(p, 5)  # = max_pool2d, faster
    m = pick(dilate, pick(big, d5, d3), pick(big, e5, e3))
    p = pick(morph, m, p)
    # an imperfect model's output: missing parts, false blobs, a soft low-contrast matte
    if cfg.p_holes > 0:  # 1 to 3 ellipses cut out
        on = col2(4) < cfg.p_holes
        for j, h in enumerate(_ellipses(T, u2, 17, 3, hf, wf)):
            use = on if j == 0 else on & (col2(4 + j) < 0.5)
            p = pick(use, p * (1.0 - h), p)
    if cfg.p_blobs > 0:  # 1 to 3 ellipses added, each at 0.5 to 1
        on = col2(7) < cfg.p_blobs
        for j, b in enumerate(_ellipses(T, u2, 29, 3, hf, wf)):
            use = on if j == 0 else on & (col2(7 + j) < 0.5)
            amp = 0.5 + 0.5 * col2(10 + j)
            p = pick(use, T.maximum(p, b * amp[:, None, None, None]), p)
    if cfg.p_soft > 0:  # low contrast and blurred: an unsure matte, mostly under 0.5 outside
        lo, hi = cfg.soft_contrast
        c = (lo + (hi - lo) * col2(14))[:, None, None, None]
        blurred = T.nn.avg_pool2d(T.nn.avg_pool2d(p, 5, 1, "SAME"), 5, 1, "SAME")
        soft = 0.5 + (blurred - 0.5) * c - (0.5 - 0.5 * c) * col2(15)[:, None, None, None]
        p = pick(col2(13) < cfg.p_soft, soft, p)
    # blur
    p = pick(col(6) < cfg.p_blur, T.nn.avg_pool2d(p, 5, 1, "SAME"), p)
    # noise
    sigma = col(7) * cfg.noise_std
    noise = T.random.stateless_normal(T.shape(p), seed=seed + T.constant([1, 7], T.int64))
    p = pick(col(8) < cfg.p_noise, p + noise * sigma[:, None, None, None], p)
    p = T.clip_by_value(p, 0.0, 1.0)
    if cfg.p_swap > 0:  # another sample's prior: a wrong shape (after a cut, a lost track)
        p = pick(col2(16) < cfg.p_swap, T.roll(p, 1, axis=0), p)
    # empty: a first frame
    return pick(col(9) < cfg.p_empty, T.zeros_like(p), p)


def sample_priors(alpha, seed: int = 0, cfg: PriorSimConfig | None = None) -> np.ndarray:
    """`simulate_priors` for numpy: (N, H, W[, 1]) alphas -> (N, H, W, 1) float32 priors."""
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = a[None]
    return np.asarray(simulate_priors(a, np.array([int(seed), 27], np.int64), cfg), np.float32)
