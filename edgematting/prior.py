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
  shifted, scaled, eroded or dilated, blurred, noisy, or empty), TensorFlow graph ops with
  stateless random numbers: a pure function of (alpha, seed);
* `sample_priors`: the same, for numpy callers (calibration, verification, tests).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .errors import UnsupportedError

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

    Recorded in model.json's training section. Order: affine (shift up to ``max_shift`` of
    the size in x and y, scale in ``scale_range`` about the centre), then erode or dilate
    (``p_morph``, a ``3x3`` or ``5x5`` max filter), blur (``p_blur``, 5x5 box), noise
    (``p_noise``, Gaussian with sigma up to ``noise_std``), clip to [0, 1]; with
    ``p_empty`` it is all zeros instead (a first frame).
    """

    p_empty: float = 0.25
    max_shift: float = 0.05
    scale_range: tuple = (0.92, 1.08)
    p_morph: float = 0.5
    p_blur: float = 0.4
    p_noise: float = 0.3
    noise_std: float = 0.08

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scale_range"] = list(self.scale_range)
        return d


def simulate_priors(alpha, seed, cfg: PriorSimConfig | None = None):
    """True alphas (N, H, W, 1) or (N, H, W), float in [0, 1] -> simulated priors (N, H, W, 1)
    float32 (a tf.Tensor). `seed`: a shape-[2] int tensor (stateless random ops: the same
    seed gives the same priors)."""
    from ._tf import tf

    T = tf()
    cfg = cfg or PriorSimConfig()
    a = T.convert_to_tensor(alpha, T.float32)
    if a.shape.rank == 3:
        a = a[..., None]
    seed = T.cast(T.convert_to_tensor(seed), T.int64)
    n = T.shape(a)[0]
    hf = T.cast(T.shape(a)[1], T.float32)
    wf = T.cast(T.shape(a)[2], T.float32)
    u = T.random.stateless_uniform(T.stack([n, 12]), seed=seed)
    col = lambda j: u[:, j]  # noqa: E731

    # affine: output (x, y) samples input ((x - cx) / s + cx - dx, (y - cy) / s + cy - dy)
    s = cfg.scale_range[0] + col(0) * (cfg.scale_range[1] - cfg.scale_range[0])
    dx = (col(1) * 2 - 1) * cfg.max_shift * wf
    dy = (col(2) * 2 - 1) * cfg.max_shift * hf
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
    d3 = T.nn.max_pool2d(p, 3, 1, "SAME")
    d5 = T.nn.max_pool2d(p, 5, 1, "SAME")
    e3 = -T.nn.max_pool2d(-p, 3, 1, "SAME")
    e5 = -T.nn.max_pool2d(-p, 5, 1, "SAME")
    m = pick(dilate, pick(big, d5, d3), pick(big, e5, e3))
    p = pick(morph, m, p)
    # blur
    p = pick(col(6) < cfg.p_blur, T.nn.avg_pool2d(p, 5, 1, "SAME"), p)
    # noise
    sigma = col(7) * cfg.noise_std
    noise = T.random.stateless_normal(T.shape(p), seed=seed + T.constant([1, 7], T.int64))
    p = pick(col(8) < cfg.p_noise, p + noise * sigma[:, None, None, None], p)
    p = T.clip_by_value(p, 0.0, 1.0)
    # empty: a first frame
    return pick(col(9) < cfg.p_empty, T.zeros_like(p), p)


def sample_priors(alpha, seed: int = 0, cfg: PriorSimConfig | None = None) -> np.ndarray:
    """`simulate_priors` for numpy: (N, H, W[, 1]) alphas -> (N, H, W, 1) float32 priors."""
    a = np.asarray(alpha, np.float32)
    if a.ndim == 2:
        a = a[None]
    return np.asarray(simulate_priors(a, np.array([int(seed), 27], np.int64), cfg), np.float32)
