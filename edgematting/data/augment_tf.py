"""Training augmentation as TensorFlow graph ops (for ``Dataset.map``), on composite inputs.

The TF counterpart of `augment.augment` for samples whose foreground, background and matte
are known separately (the synthetic pool). Instead of moving a finished image around, it
transforms the *inputs of the composite* -- fg, bg and alpha -- and composites the image
afterwards, so ``image == round(alpha*fg + (1-alpha)*bg)`` holds exactly (in 8-bit
arithmetic) for every augmentation except the blur, which is a camera degradation of the
image alone. Everything runs in the tf.data runtime (no Python, no GIL) and all randomness
is stateless, keyed by a ``[2]`` int64 seed, so an element is a pure function of
(sample, seed).

Ops, with the same `AugmentConfig` fields and probabilities as the numpy reference:

* horizontal / vertical flip (each with probability 0.5 when enabled);
* rotation about the centre + zoom (with probability ``affine_prob``), one bilinear
  `ImageProjectiveTransformV3`: alpha is filled with 0 outside the frame, fg and bg are
  reflected (no black corners in the background; fg is irrelevant where alpha is 0);
* occlusion (``occlusion_prob``): a rectangle of flat colour or noise in front of the
  person: alpha = 0 there and the rectangle becomes part of bg;
* gamma (log-uniform) + global brightness add, then per-element brightness noise
  (integer, uniform in [-e, e]); applied to fg and bg, the image follows by composition;
* blur (``blur_prob``) of the image only: mean (box of fractional radius, as PIL's
  BoxBlur), exact 3x3 median (a 19 compare-exchange sorting network) or Gaussian, as
  separable depthwise convolutions with symmetric edge padding. Radii scale with
  ``max(h, w) / 256`` as in the reference.

Values: fg, bg and image come out as float32 integers in [0, 255]; alpha as float32
multiples of 1/255 in [0, 1] (the 8-bit matte quantization of the reference).
"""
from __future__ import annotations

import math

from .._tf import tf
from .augment import AugmentConfig

# Indices into the per-element vector of uniform draws.
_U_HFLIP, _U_VFLIP, _U_ANG, _U_ZOOM, _U_AFF = 0, 1, 2, 3, 4
_U_OCC, _U_OH, _U_OW, _U_OY, _U_OX, _U_OFLAT, _U_OR, _U_OG, _U_OB = range(5, 14)
_U_GAMMA, _U_BRIGHT, _U_BLUR, _U_BKIND, _U_BRAD = range(14, 19)
_N_UNIFORM = 19
# Stream ids for the per-element noise fields.
_S_UNIFORM, _S_OCC_NOISE, _S_ELEM_NOISE = 11, 12, 13


def _seed(seed, stream: int):
    """A [2] int64 stateless seed for `stream`, derived from the element seed."""
    T = tf()
    seed = T.cast(seed, T.int64)
    return T.stack([seed[0], seed[1] * 1_000_003 + stream])


def affine_matrix(ang, zoom, h: int, w: int):
    """ImageProjectiveTransformV3 row (8,) mapping output pixels to input pixels.

    Output pixel p samples the input at ``c + R(-ang) (p - c) / zoom`` with c the frame
    centre in pixel-index coordinates (the same map as the numpy reference).
    """
    T = tf()
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    c = T.cos(ang) / zoom
    s = T.sin(ang) / zoom
    zero = T.zeros_like(c)
    return T.stack([c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy, zero, zero])


def _transform(x, matrix, fill_mode: str):
    T = tf()
    h, w = x.shape[0], x.shape[1]
    out = T.raw_ops.ImageProjectiveTransformV3(
        images=x[None], transforms=T.cast(matrix, T.float32)[None], output_shape=T.constant([h, w], T.int32),
        fill_value=T.constant(0.0, T.float32), interpolation="BILINEAR", fill_mode=fill_mode)
    return out[0]


def _sym_pad(x, k: int):
    T = tf()
    return T.pad(x, [[k, k], [k, k], [0, 0]], mode="SYMMETRIC")


def _separable(x, taps):
    """Blur HxWxC `x` with the normalized 1-D kernel `taps` (2K+1,) along both axes.

    Weighted sums of shifted slices: several times faster on CPU than TF's depthwise
    convolution for these small kernels.
    """
    T = tf()
    k = (int(taps.shape[0]) - 1) // 2
    h, w = int(x.shape[0]), int(x.shape[1])
    taps = taps / T.reduce_sum(taps)
    xp = _sym_pad(x, k)
    y = taps[0] * xp[:, 0:w]
    for i in range(1, 2 * k + 1):
        y = y + taps[i] * xp[:, i:i + w]
    out = taps[0] * y[0:h]
    for i in range(1, 2 * k + 1):
        out = out + taps[i] * y[i:i + h]
    return out


def box_blur(x, radius, max_radius: float):
    """PIL-style BoxBlur of fractional `radius` (edge taps weighted by its fraction)."""
    T = tf()
    k = int(math.ceil(max_radius)) + 1
    t = T.abs(T.range(-k, k + 1, dtype=T.float32))
    return _separable(x, T.clip_by_value(radius + 1.0 - t, 0.0, 1.0))


def gaussian_blur(x, sigma, max_sigma: float):
    T = tf()
    k = max(1, int(math.ceil(3.0 * max_sigma)))
    t = T.range(-k, k + 1, dtype=T.float32)
    return _separable(x, T.exp(-(t * t) / (2.0 * sigma * sigma)))


def median3(x):
    """Exact 3x3 median of HxWxC `x` (symmetric edges): an optimal median-of-9 network."""
    T = tf()
    h, w = x.shape[0], x.shape[1]
    xp = _sym_pad(x, 1)
    p = [xp[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]

    def srt(i, j):
        p[i], p[j] = T.minimum(p[i], p[j]), T.maximum(p[i], p[j])

    for i, j in ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
                 (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)):
        srt(i, j)
    return p[4]


def composite(alpha8, fg, bg):
    """round(bg + (fg - bg) * a/255) for integer-valued float inputs: PIL's composite.

    Exact: the true value is never within 1/510 of a rounding tie (255 is odd), far more
    than the float32 error.
    """
    T = tf()
    return T.floor(bg + (fg - bg) * (alpha8 * (1.0 / 255.0))[..., None] + 0.5)


def augment_composite(fg, bg, alpha, seed, cfg: AugmentConfig):
    """Augment one sample in graph mode; returns ``(image, alpha, fg, bg)`` float32.

    fg, bg: HxWx3 float32 (or uint8) in [0, 255]; alpha: HxW float32 in [0, 1]; seed: [2]
    integer tensor. Static shapes are required (H, W known at trace time).
    """
    T = tf()
    fg = T.cast(fg, T.float32)
    bg = T.cast(bg, T.float32)
    alpha = T.cast(alpha, T.float32)
    h, w = int(alpha.shape[0]), int(alpha.shape[1])
    if not cfg.enabled:
        a8 = T.round(alpha * 255.0)
        return composite(a8, fg, bg), a8 / 255.0, fg, bg
    u = T.random.stateless_uniform([_N_UNIFORM], seed=_seed(seed, _S_UNIFORM))
    # fg, bg and alpha are kept apart: concatenating along channels is slow on CPU

    # -- geometry ------------------------------------------------------------------------
    def flip(axis, p):
        nonlocal fg, bg, alpha
        fg, bg, alpha = T.cond(p, lambda: (T.reverse(fg, [axis]), T.reverse(bg, [axis]), T.reverse(alpha, [axis])),
                               lambda: (fg, bg, alpha))

    if cfg.hflip:
        flip(1, u[_U_HFLIP] < 0.5)
    if cfg.vflip:
        flip(0, u[_U_VFLIP] < 0.5)
    if (cfg.rotate_deg or cfg.scale != (1.0, 1.0)) and cfg.affine_prob > 0:
        ang = (2.0 * u[_U_ANG] - 1.0) * math.radians(cfg.rotate_deg)
        zoom = cfg.scale[0] + u[_U_ZOOM] * (cfg.scale[1] - cfg.scale[0])
        m = affine_matrix(ang, zoom, h, w)

        def warp():
            return (_transform(fg, m, "REFLECT"), _transform(bg, m, "REFLECT"),
                    _transform(alpha[..., None], m, "CONSTANT")[..., 0])

        fg, bg, alpha = T.cond(u[_U_AFF] < cfg.affine_prob, warp, lambda: (fg, bg, alpha))

    # -- occlusion: an object in front of the person ----------------------------------------
    if cfg.occlusion_prob > 0:
        def occlude():
            oh = T.cast((0.08 + 0.27 * u[_U_OH]) * h, T.int32) + 1
            ow = T.cast((0.08 + 0.27 * u[_U_OW]) * w, T.int32) + 1
            y0 = T.minimum(T.cast(u[_U_OY] * T.cast(h - oh + 1, T.float32), T.int32), h - oh)
            x0 = T.minimum(T.cast(u[_U_OX] * T.cast(w - ow + 1, T.float32), T.int32), w - ow)
            ys, xs = T.range(h)[:, None], T.range(w)[None, :]
            inside = (ys >= y0) & (ys < y0 + oh) & (xs >= x0) & (xs < x0 + ow)
            flat = T.floor(T.stack([u[_U_OR], u[_U_OG], u[_U_OB]]) * 256.0)
            noise = T.floor(T.random.stateless_uniform([h, w, 3], _seed(seed, _S_OCC_NOISE)) * 256.0)
            patch = T.where(u[_U_OFLAT] < 0.5, T.broadcast_to(flat, [h, w, 3]), noise)
            return T.where(inside[..., None], patch, bg), T.where(inside, T.zeros_like(alpha), alpha)

        bg, alpha = T.cond(u[_U_OCC] < cfg.occlusion_prob, occlude, lambda: (bg, alpha))

    # -- pointwise colour on fg and bg (the image follows by composition) -------------------
    e = int(round(cfg.brightness_element * 255.0))
    noise = None
    if e > 0:
        noise = T.cast(T.random.stateless_uniform([h, w, 3], _seed(seed, _S_ELEM_NOISE), minval=-e, maxval=e + 1,
                                                  dtype=T.int32), T.float32)
    g = b = None
    if cfg.gamma != (1.0, 1.0):
        lg0, lg1 = math.log(cfg.gamma[0]), math.log(cfg.gamma[1])
        g = T.exp(lg0 + u[_U_GAMMA] * (lg1 - lg0))
    if cfg.brightness:
        b = (2.0 * u[_U_BRIGHT] - 1.0) * (cfg.brightness * 255.0)

    def colour(v):
        if g is not None:  # 255 (v/255)^g; exp(g log x) is 3x faster than pow here
            v = T.exp(g * T.math.log(v * (1.0 / 255.0))) * 255.0
        if b is not None:
            v = v + b
        if noise is not None:
            v = T.clip_by_value(v, 0.0, 255.0) + noise
        return T.floor(T.clip_by_value(v, 0.0, 255.0) + 0.5)

    fg, bg = colour(fg), colour(bg)
    a8 = T.floor(T.clip_by_value(alpha, 0.0, 1.0) * 255.0 + 0.5)
    image = composite(a8, fg, bg)

    # -- blur: camera degradation, image only ------------------------------------------------
    if cfg.blur_prob > 0:
        scale = max(h, w) / 256.0
        r = (0.5 + u[_U_BRAD]) * scale
        kind = T.minimum(T.cast(u[_U_BKIND] * 3.0, T.int32), 2)
        blurred = lambda: T.switch_case(kind, [  # noqa: E731
            lambda: box_blur(image, r, 1.5 * scale),
            lambda: median3(image),
            lambda: gaussian_blur(image, r, 1.5 * scale)])
        image = T.cond(u[_U_BLUR] < cfg.blur_prob, blurred, lambda: image)
        image = T.floor(T.clip_by_value(image, 0.0, 255.0) + 0.5)
    return image, a8 / 255.0, fg, bg
