"""The OpenCV path of the photo pipeline: within a stated bound of `edgematting.imageops`.

`edgematting.imageops` is *the* definition (float32 in a fixed order; the Java core and the
web demo reproduce it bit for bit, golden vectors are made from it) and
`edgematting.imageops_fast` computes it bit for bit in numpy. This module computes the same
stages with OpenCV (``opencv-python-headless``, pinned in pyproject.toml): not bit for bit,
but within these bounds of the definition, which ``tests/test_imageops_cv.py`` proves on
random and on edge-case inputs (alpha exactly 0, 1 and 0.5, 1x1, 3x5, odd and 12001 px wide
sizes, RGBA photos) and which a deliberately shifted resize, swapped composite weights, a box
mean with another border rule or a guide with R and B swapped fail:

=========================  ==================================  =====================================
here                       definition                          bound (max abs over all pixels)
=========================  ==================================  =====================================
`model_pixels`             `imageops.resize_bilinear` of the   0.25 pixel levels (0..255) before the
                           photo (float32 pixels)              normalization (`PIXEL_BOUND`);
                                                               measured 0.06 (12 MP), 0.15 (12000
                                                               px wide)
`AlphaRows`,               `imageops.alpha_to_photo`           1/255 (`ALPHA_BOUND`); measured
`alpha_to_photo`                                               3.2e-5 on random alphas
`GuidedRows`,              `imageops.guided_upsample`          1/255 (`GUIDED_BOUND`) for eps >=
`upsample_alpha(...,                                           `GUIDED_EPS_MIN` (1e-5; below, the
guided)`                                                       exact path runs); measured 2.1e-5
                                                               (radius 1..8, eps 1e-5..1e-2, random,
                                                               low-variance and RGBA photos)
`composite` over a colour  `imageops.composite`                1 level per channel
                                                               (`COMPOSITE_BOUND`); the definition's
                                                               bytes for the same alpha when at most
                                                               `SOFT_SHARE` of the pixels are soft
`composite` over "blur"    `imageops.composite`                1 level per channel; the definition's
or an image                                                    bytes for "blur" on every test input
`alpha_to_uint8`           ``round_to_uint8(alpha * 255)``     equal for the same alpha; 1 level
`rgba_cutout`              `imageops.rgba_cutout`              RGB equal; alpha 1 level (equal for
                                                               the same alpha)
=========================  ==================================  =====================================

1/255 and one level are below what any precision of the contract may differ by
(`edgematting.formats` tolerances: fp32 artifacts ``max_abs`` 1e-4 on the model's own output,
quantized ones ``mean_abs`` >= 2e-3 and an 8-bit output step of 1/256), and below one step
of the 8-bit images written: a byte of the cut-out, the alpha PNG or the composite moves by
at most one. The model input moves by at most a quarter of a pixel level, a quarter of one
step of an int8 model's input quantization (about one pixel level on -1..1): a model amplifies
what its input is given (a confident tiny test model turned a whole level of input rounding
into 3/255 of alpha), so the model input is kept in float.

Why each is what it is:

* **Resize of the photo** (`model_pixels`): ``cv2.resize(..., INTER_LINEAR)`` uses the same
  half-pixel-centre convention as the definition (``src = (dst + 0.5) * in / out - 0.5``,
  clamped at the edges, two taps, no antialiasing). The rows the definition blends are
  gathered (its own `imageops.axis_weights`), converted to float32 and resized across by
  OpenCV, then blended down in the definition's float32 order: only the horizontal sample
  positions differ (OpenCV's are computed in double, the definition's in float32, whose
  error grows with the photo's width: 0.06 levels at 3000-4000 px, 0.15 at 12000). Resizing
  the uint8 photo itself (fixed-point, 11-bit weights, uint8 out) would be faster but is
  0.83 levels off (``INTER_LINEAR_EXACT``: 1.34), too much for a model's input (above).
* **Alpha at photo size** (`AlphaRows`): float32 ``cv2.resize`` differs from the definition
  only in the rounding of the sample positions (OpenCV rounds them to float32 from double,
  the definition computes them in float32) and in the order of the float operations:
  ~1e-5 px within a model's size, so the alpha moves by 3.2e-5 at most (random alphas,
  where it changes fastest). A photo of up to `WHOLE_PIXELS` (1 MP) is resized in one call;
  a larger one runs the vertical pass first at the model's width (an (H, w) plane,
  model-resolution memory), then each strip of rows is resized horizontally with a vertical
  scale of 1, whose vertical weights are exactly (1, 0): every output row depends only on
  its row of that plane, so a strip is bit for bit the same rows of the whole frame and
  `edgematting.predict` keeps its bounded memory.
* **Guided filter** (``--upsample guided``, `predict`'s default; `GuidedRows`): at model
  resolution the definition's values. The guide's resize is the exact one
  (`imageops_fast.resize_bilinear`); the six box means are `box_means`: per axis one
  normalized float64 ``cv2.boxFilter`` for the windows inside the image and, for the at most
  2r windows the border clips, the definition's rule (sum of the in-image pixels / their
  number, ``boxfilter(I) / boxfilter(ones)``), which gives the definition's float32 values on
  every test input; the float32 steps between them are the definition's, in numpy. This
  matters: ``a = cov / (var + eps)`` divides float32 roundings by eps, so box means each one
  step off (a plain float32 ``cv2.boxFilter``) moved the alpha by 7e-5 at eps 1e-4, 9.2e-4 at
  1e-5 and 1.5e-2 at 1e-8, and the model input's quarter level (`model_pixels`) as the guide
  7e-3 at 1e-6; with the definition's values it stays below 3e-5 down to eps 1e-8. Below
  `GUIDED_EPS_MIN` (1e-5, ten times below the default) the exact path runs all the same, so
  that a rare float64 tie could not cost more than the bound. At the photo's size
  ``q = clip(A' * Y + B, 0, 1)``: ``A' = resize(mean_a / 255)`` and ``B = resize(mean_b)`` by
  ``cv2.resize`` as `AlphaRows` (the whole frame up to `WHOLE_PIXELS`, else the vertical pass
  at the model's width, then strips across: any rows are bit for bit the whole frame's),
  ``Y`` the luminance by ``cv2.cvtColor`` (RGB2GRAY, the definition's coefficients) of the
  photo's rows converted to float32 a `CHUNK_PIXELS` chunk at a time, the multiply, add and
  clip by OpenCV in that chunk (no photo-size float copy of the photo).
* **Composite over an integer colour**: the hard pixels of `imageops_fast` (alpha within
  2^-9 of 0 or 1: exactly the background or the photo) are a fill and a masked
  ``cv2.copyTo``; the soft ones are computed with the definition's float32 operations, so
  with the same alpha the result is the definition's, bit for bit. When more than
  `SOFT_SHARE` of the pixels are soft (an unsure model) every pixel is blended the same way
  (no gather). The blend (`_blend_chunk`) is ``a * f + (1 - a) * b + 0.5`` with each float32
  operation correctly rounded (OpenCV's array-array multiply and add, as numpy's), then
  truncated (= floor: the value is >= 0.5), a 64K-pixel chunk at a time in reused buffers.
  The alpha's own error moves the unrounded value by at most 255 x 3.2e-5 = 0.008 levels, so
  end to end (definition's alpha vs this path's) a byte moves by one level at most.
* **Other backgrounds** (`composite`, the whole frame): ``"blur"`` is `box_blur`, per pass
  and axis one normalized float64 ``cv2.boxFilter`` with replicated edges (the definition's
  clamped window; equal to `imageops.box_blur` on every test input, 10x faster); an image
  of another size is resized by `model_pixels` (within `PIXEL_BOUND`); the blend (and an
  estimated foreground) is `imageops_fast.composite`'s, the definition's float32 operations:
  within `COMPOSITE_BOUND`. `edgematting.predict`'s strips take their background rows from
  `imageops_fast.background_rows` (the exact streaming blur, `BoxBlurRows`, whose memory is
  bounded): a strip-wise OpenCV blur would need a halo of 3 radii per strip
  (``min(h, w) / 40`` each), several times a strip's work on large photos, and is not done.
* **Cut-out and 8-bit alpha**: the definition's ``floor(alpha * 255 + 0.5)`` (numpy, exact;
  ``cv2.convertScaleAbs`` would round ties to even, and an 8-bit model's alpha 0.5 is a
  tie), the channels joined by ``cv2.merge``. The alpha's own error moves a byte by one
  level at most.
* **Threads**: OpenCV's pool is process-wide; `set_threads` (called by
  `edgematting.runners.photo.PhotoRunner` with the runner's thread count) sets it. The
  numpy steps (the composite's masks and soft-pixel gathers) run on one thread; splitting
  the composite into row bands in a thread pool was slower on a shared 2-core machine
  (docs/experiments.md, Photo pipeline speed) and is not done.
* **Memory**: fresh photo-size temporaries cost a page fault per 4 KB, more than the
  arithmetic on them; the stages here reuse per-thread buffers (`_Scratch`, bounded by a
  strip or a chunk) and work on 32-bit RGBX pixels instead of 3-byte ones.

Which path runs: `get_ops(name)`: ``"opencv"`` (the default when OpenCV imports) or
``"exact"`` (`imageops_fast`, bit for bit the definition); the environment variable
``EDGEMATTING_PIPELINE`` overrides the default, ``runners.open(..., pipeline=...)`` a runner's.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import imageops, imageops_fast
from .errors import DependencyError, InputError

_F32 = np.float32

#: `model_pixels` is within this many pixel levels (0..255) of the definition's float pixels
#: (measured 0.06 on 12 MP photos; see the module docstring).
PIXEL_BOUND = 0.25
#: The alpha at the photo's size is within this of the definition's.
ALPHA_BOUND = 1.0 / 255.0
#: The guided filter's alpha at the photo's size (`GuidedRows`) is within this of
#: `imageops.guided_upsample`'s (measured 3e-5 at most; see the module docstring).
GUIDED_BOUND = ALPHA_BOUND
#: Composite, cut-out alpha and 8-bit alpha: within this many levels of the definition's bytes.
COMPOSITE_BOUND = 1

PIPELINES = ("opencv", "exact")
ENV = "EDGEMATTING_PIPELINE"
#: above this share of soft pixels the composite blends every pixel instead of gathering the soft ones
SOFT_SHARE = imageops_fast.SOFT_SHARE

_THREADS: list[int | None] = [None]


def _cv2():
    try:
        import cv2  # a 60 MB native library: imported on first use, not with edgematting
    except ImportError as e:
        raise DependencyError(f"The OpenCV photo pipeline needs opencv-python-headless ({e}). Install the pinned "
                              f"stack (pip install -e .), or run the exact one: {ENV}=exact.") from e
    return cv2


def available() -> bool:
    """Can the OpenCV path run here (does cv2 import)?"""
    try:
        _cv2()
    except DependencyError:
        return False
    return True


def set_threads(n: int) -> None:
    """OpenCV's worker threads for the stages that follow (process-wide; 1 = the caller's own)."""
    n = max(1, int(n))
    if _THREADS[0] != n:
        _cv2().setNumThreads(n)
        _THREADS[0] = n


def _resize(x: np.ndarray, out_h: int, out_w: int, dst: np.ndarray | None = None) -> np.ndarray:
    """``cv2.resize`` bilinear with half-pixel centres (the one call every resize here makes)."""
    cv2 = _cv2()
    return cv2.resize(x, (int(out_w), int(out_h)), dst=dst, interpolation=cv2.INTER_LINEAR)


# -- photo -> model input ----------------------------------------------------------------
def model_pixels(rgb: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """A photo (HxWx3 or HxWx4 uint8, or float) resized to the model's size, its first three
    channels, float32 (what `contract.encode_pixels` takes): within `PIXEL_BOUND` levels of
    `imageops.resize_bilinear`.

    The two input rows each output row blends (the definition's own `imageops.axis_weights`)
    are gathered from the uint8 photo, converted to float32 (exactly), resized across by
    ``cv2.resize`` (vertical scale 1: the rows stay as they are) and blended down in the
    definition's float32 order: only the horizontal sample positions are OpenCV's."""
    x = np.asarray(rgb)
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=-1)
    if x.shape[-1] > 4:
        x = x[..., :3]
    out_h, out_w = int(out_h), int(out_w)
    yi0, yi1, wy = imageops.axis_weights(x.shape[0], out_h)
    shape = (2 * out_h,) + x.shape[1:]
    g = _SCRATCH.get("rows8", int(np.prod(shape)), x.dtype).reshape(shape)
    np.take(x, np.concatenate([yi0, yi1]), axis=0, out=g)  # (2 h, W, c): the rows the output uses
    f = _SCRATCH.get("rows", g.size, _F32).reshape(g.shape)
    np.copyto(f, g)  # exact uint8 -> float32
    c = f.shape[-1]
    across = _resize(f, 2 * out_h, out_w).reshape(2 * out_h, out_w, c)  # >= 2 rows: the multi-row route
    wy_ = wy[:, None, None]
    top = across[:out_h] * (_F32(1.0) - wy_)  # the definition's vertical step: top (1 - wy) + bottom wy
    top += across[out_h:] * wy_
    return top[..., :3] if c != 3 else top


# -- model output -> alpha at photo size -------------------------------------------------
#: photos up to this many pixels get their alpha from one ``cv2.resize`` of the whole frame
#: (kept, at most 4 MB, and served as rows); larger ones a strip at a time (see `AlphaRows`)
WHOLE_PIXELS = 1 << 20


class AlphaRows:
    """The model's alpha at the photo's size (bilinear, clipped to [0, 1]) a few rows at a
    time: within `ALPHA_BOUND` of `imageops.alpha_to_photo`, and any set of rows is bit for
    bit those rows of the whole frame (the interface of `imageops_fast.AlphaRows`).

    A photo of at most `WHOLE_PIXELS` is resized in one call (kept: at most 4 MB); a larger
    one runs the vertical pass once at the model's width (an (H, w) float32 plane), and each
    strip is that plane's rows resized horizontally (vertical scale 1: weights exactly 1 and
    0), so no photo-size float array is made. Either way the mode depends only on the sizes,
    so strips and the whole frame are the same numbers."""

    def __init__(self, alpha_lr, photo):
        a = np.asarray(alpha_lr, _F32)
        a = a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a.reshape(a.shape[0], a.shape[1])
        a = np.ascontiguousarray(a)
        H, W = photo if isinstance(photo, tuple) else np.asarray(photo).shape[:2]
        self.shape = (int(H), int(W))
        # values in [0, 1] interpolate to [0, 1 + 1 ulp]: then only the top needs cutting
        self._in_range = bool(a.size) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
        if self.shape[0] * self.shape[1] <= WHOLE_PIXELS:
            self._whole = self._clip(_resize(a, *self.shape).reshape(self.shape))
            self._plane = None
        else:
            self._whole = None
            self._plane = np.ascontiguousarray(_resize(a, self.shape[0], a.shape[1]).reshape(self.shape[0], -1))

    def _clip(self, out: np.ndarray) -> np.ndarray:
        if self._in_range:
            _cv2().threshold(out, 1.0, 1.0, _cv2().THRESH_TRUNC, dst=out)
        else:
            np.clip(out, _F32(0.0), _F32(1.0), out=out)
        return out

    def _horizontal(self, src: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
        n, W = src.shape[0], self.shape[1]
        if n == 1:  # OpenCV resizes a 1-row image by another route (1e-7 apart): make it 2 rows
            one = self._clip(_resize(np.repeat(src, 2, axis=0), 2, W).reshape(2, W)[:1])
            if dst is None:
                return one
            np.copyto(dst.reshape(1, W), one)
            return dst
        return self._clip(_resize(src, n, W, dst).reshape(n, W))

    def rows_at(self, idx) -> np.ndarray:
        """float32 (len(idx), W): the alpha's rows `idx`."""
        idx = np.asarray(idx, np.intp)
        if self._whole is not None:
            return self._whole[idx]
        return self._horizontal(np.ascontiguousarray(self._plane[idx]))

    def rows(self, y0: int, y1: int) -> np.ndarray:
        if self._whole is not None:
            return self._whole[y0:y1]
        return self._horizontal(self._plane[y0:y1])

    def full(self, strip_pixels: int | None = None) -> np.ndarray:
        """The whole HxW alpha (filled a strip at a time when it is larger than `WHOLE_PIXELS`)."""
        if self._whole is not None:
            return self._whole.copy()
        out = np.empty(self.shape, _F32)
        for y0, y1 in imageops_fast.strips(self.shape[0], imageops_fast.strip_height(self.shape[1], strip_pixels)):
            res = self._horizontal(self._plane[y0:y1], out[y0:y1])
            if not np.shares_memory(res, out):
                out[y0:y1] = res
        return out


# -- the guided filter (``--upsample guided``) ---------------------------------------------
#: The guided filter runs here for eps at or above this; below it, on the exact path
#: (`imageops_fast.AlphaRows`): ``a = cov / (var + eps)`` then divides float32 roundings by
#: eps, and with every box mean one float32 step off (as a float32 ``cv2.boxFilter`` makes
#: them) the alpha moved 9.2e-4 at eps 1e-5 but 3.9e-3 (the bound) at 1e-6 and 1.5e-2 at
#: 1e-8 (a smooth photo with noise, random alpha, radius 1). The default eps is 1e-4.
GUIDED_EPS_MIN = 1e-5


def _box_counts(n: int, r: int) -> np.ndarray:
    """`imageops.box_mean`'s divisors along one axis: the in-image pixels of each window."""
    i = np.arange(n)
    return (np.minimum(i + r, n - 1) + 1 - np.maximum(i - r, 0)).astype(np.float64)


def box_means(planes: np.ndarray, radius: int) -> np.ndarray:
    """`imageops.box_mean` of each channel of an (h, w) or (h, w, C) float32 array, the
    definition's border rule and order: axis 0, then axis 1 (rounded to float32 between
    them), each the window's float64 sum divided by the number of its pixels inside the image.

    Per axis, one normalized ``cv2.boxFilter`` (the window summed in float64, times 1 / (2r + 1)
    in float64, rounded to float32) gives every position whose window lies inside the image;
    the at most 2r positions whose window the border clips are summed again (unnormalized,
    zero borders, float64) from the few rows or columns they read and divided by their
    in-image count, as the definition. The definition's float64 sums are prefix sums
    (``c[hi] - c[lo]``), OpenCV's a sliding window, and its ``/ k`` a multiply by ``1 / k``:
    each within a few float64 ulps, so the float32 values agree except where that decides a
    rounding (equal on every test input: ``tests/test_imageops_cv.py``)."""
    x = np.ascontiguousarray(planes, dtype=_F32)
    shape = x.shape
    x = x.reshape(shape[0], shape[1], -1)
    r = int(radius)
    for axis in (0, 1):
        x = _box_axis(x, r, axis)
    return x.reshape(shape)


def _box_axis(x: np.ndarray, r: int, axis: int) -> np.ndarray:
    """One axis of `box_means` on (h, w, C) float32 (see there)."""
    cv2 = _cv2()
    k = 2 * r + 1
    ksize = (1, k) if axis == 0 else (k, 1)  # (width, height)
    out = cv2.boxFilter(x, -1, ksize, normalize=True, borderType=cv2.BORDER_CONSTANT).reshape(x.shape)
    n = x.shape[axis]
    counts = _box_counts(n, r)
    for lo, hi in ((0, min(r, n)), (max(n - r, min(r, n)), n)):  # positions whose window the border clips
        if hi <= lo:
            continue
        s0, s1 = max(0, lo - r), min(n, hi + r)  # what their windows read
        part = np.ascontiguousarray(x[s0:s1] if axis == 0 else x[:, s0:s1])
        sums = cv2.boxFilter(part, cv2.CV_64F, ksize, normalize=False,
                             borderType=cv2.BORDER_CONSTANT).reshape(part.shape)
        c = counts[lo:hi].reshape((-1, 1, 1) if axis == 0 else (1, -1, 1))
        if axis == 0:
            np.divide(sums[lo - s0:hi - s0], c, out=out[lo:hi], casting="unsafe")
        else:
            np.divide(sums[:, lo - s0:hi - s0], c, out=out[:, lo:hi], casting="unsafe")
    return out


def guided_coefficients(alpha_lr: np.ndarray, photo: np.ndarray, guided) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1 and 2 of `imageops.guided_upsample`, at model resolution: (mean_a, mean_b),
    float32 (h, w). The guide's resize is the exact one (`imageops_fast.resize_bilinear`:
    `model_pixels`' quarter level moved the alpha by 7e-3 at eps 1e-6), the four box means
    in one call and the two in another (`box_means`), the float32 steps between them the
    definition's, in numpy."""
    cv2 = _cv2()
    gf = imageops.GuidedFilter(guided.radius, guided.eps)
    a = np.asarray(alpha_lr, _F32)
    h, w = a.shape
    r, e = gf.radius, _F32(gf.eps)
    p = np.clip(a, _F32(0.0), _F32(1.0))
    # all of an RGBA photo's channels: the fast resize gathers 32-bit pixels (a [..., :3] view would be copied whole)
    guide_lr = np.ascontiguousarray(imageops.luminance01(imageops_fast.resize_bilinear(photo, h, w)[..., :3]))
    m = box_means(cv2.merge([guide_lr, p, guide_lr * p, guide_lr * guide_lr]), r).reshape(h, w, 4)
    mean_i, mean_p, corr_ip, corr_ii = (x.reshape(h, w) for x in cv2.split(m))
    var_i = corr_ii - mean_i * mean_i
    cov_ip = corr_ip - mean_i * mean_p
    ga = cov_ip / (var_i + e)
    gb = mean_p - ga * mean_i
    mean_a, mean_b = cv2.split(box_means(cv2.merge([ga, gb]), r).reshape(h, w, 2))
    return mean_a.reshape(h, w), mean_b.reshape(h, w)


def _luma(rgb: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """`imageops.luminance` (0..255) of a few rows of a photo into float32 `dst` (rows, W): the
    pixels converted to float32 (exactly) in a reused buffer, then ``cv2.cvtColor`` RGB2GRAY
    (coefficients 0.299f, 0.587f, 0.114f, as the definition's; its own order of operations)."""
    cv2 = _cv2()
    n, W = dst.shape
    f = _SCRATCH.get("guided_f", n * W * 3, _F32).reshape(n, W, 3)
    np.copyto(f, rgb)  # exact uint8 -> float32
    return cv2.cvtColor(f, cv2.COLOR_RGB2GRAY, dst=dst).reshape(n, W)


class GuidedRows:
    """`imageops.guided_upsample` (the fast guided filter) within `GUIDED_BOUND`, a few rows
    at a time, with the interface of `imageops_fast.AlphaRows` (``shape``, ``rows``,
    ``rows_at``, ``full``): any set of rows is bit for bit those rows of the whole frame.

    At model resolution `guided_coefficients` (the definition's values: float64 box sums).
    At the photo's size ``q = clip(A' * Y + B, 0, 1)``: ``A' = resize(mean_a / 255)`` and
    ``B = resize(mean_b)`` by ``cv2.resize`` (as `AlphaRows`: one call for a photo of at most
    `WHOLE_PIXELS`, else the vertical pass at the model's width, kept, and each strip's rows
    across with a vertical scale of 1), ``Y`` the photo's Rec. 601 luminance in 0..255 by
    ``cv2.cvtColor`` of its float32 pixels (the definition's coefficients 0.299f, 0.587f,
    0.114f; its ``/ 255`` folded into A), the multiply and add by OpenCV, a `CHUNK_PIXELS`
    chunk of rows at a time in reused buffers (no photo-size float copy of the photo).
    """

    def __init__(self, alpha_lr, photo, guided):
        a = np.asarray(alpha_lr, _F32)
        a = a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a.reshape(a.shape[0], a.shape[1])
        self.photo = np.asarray(photo)[..., :3]
        if self.photo.ndim != 3:
            raise ValueError(f"photo must be HxWx3, got shape {np.asarray(photo).shape}")
        H, W = self.photo.shape[:2]
        self.shape = (int(H), int(W))
        self._whole = self._planes = None
        if H * W == 0:
            self._whole = np.zeros(self.shape, _F32)
            return
        mean_a, mean_b = guided_coefficients(a, np.asarray(photo), guided)
        mean_a *= _F32(1.0 / 255.0)  # the guide's / 255, at model resolution
        if H * W <= WHOLE_PIXELS:
            big_a = _resize(mean_a, H, W).reshape(H, W)
            big_b = _resize(mean_b, H, W, _SCRATCH.get("guided_b", H * W, _F32).reshape(H, W)).reshape(H, W)
            self._whole = self._combine(big_a, big_b, self.photo)
        else:
            self._planes = [np.ascontiguousarray(_resize(m, H, a.shape[1]).reshape(H, -1)) for m in (mean_a, mean_b)]

    def _across(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Rows of a vertical-pass plane resized across to the photo's width, into `dst`."""
        n, W = src.shape[0], self.shape[1]
        if n == 1:  # OpenCV resizes a 1-row image by another route (1e-7 apart): make it 2 rows
            np.copyto(dst, _resize(np.repeat(src, 2, axis=0), 2, W).reshape(2, W)[:1])
            return dst
        return _resize(np.ascontiguousarray(src), n, W, dst).reshape(n, W)

    @staticmethod
    def _combine(big_a: np.ndarray, big_b: np.ndarray, photo: np.ndarray) -> np.ndarray:
        """``clip(A' * Y + B, 0, 1)`` into `big_a`, a chunk of rows at a time; photo: the same rows."""
        cv2 = _cv2()
        n, W = big_a.shape
        step = max(1, CHUNK_PIXELS // max(1, W))
        for c0 in range(0, n, step):
            c1 = min(n, c0 + step)
            y = _luma(photo[c0:c1], _SCRATCH.get("guided_y", (c1 - c0) * W, _F32).reshape(c1 - c0, W))
            qa = big_a[c0:c1]
            cv2.multiply(qa, y, dst=qa)
            cv2.add(qa, big_b[c0:c1], dst=qa)
            cv2.threshold(qa, 1.0, 1.0, cv2.THRESH_TRUNC, dst=qa)  # clip to [0, 1]
            cv2.threshold(qa, 0.0, 0.0, cv2.THRESH_TOZERO, dst=qa)
        return big_a

    def _strip(self, sel) -> np.ndarray:
        """Rows `sel` (a slice or indices) in strip mode: A' and B across, then combined."""
        plane_a, plane_b = self._planes[0][sel], self._planes[1][sel]
        n, W = plane_a.shape[0], self.shape[1]
        big_a = self._across(plane_a, np.empty((n, W), _F32))
        big_b = self._across(plane_b, _SCRATCH.get("guided_b", n * W, _F32).reshape(n, W))
        return self._combine(big_a, big_b, self.photo[sel])

    def rows_at(self, idx) -> np.ndarray:
        """float32 (len(idx), W): the alpha's rows `idx`."""
        idx = np.asarray(idx, np.intp)
        if self._whole is not None:
            return self._whole[idx]
        return self._strip(idx)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        if self._whole is not None:
            return self._whole[y0:y1]
        return self._strip(slice(y0, y1))

    def full(self, strip_pixels: int | None = None, copy: bool = True) -> np.ndarray:
        """The whole HxW alpha (filled a strip at a time when it is larger than `WHOLE_PIXELS`);
        `copy` False: the kept whole frame itself, when there is one (for a caller that drops
        this object)."""
        if self._whole is not None:
            return self._whole.copy() if copy else self._whole
        out = np.empty(self.shape, _F32)
        for y0, y1 in imageops_fast.strips(self.shape[0], imageops_fast.strip_height(self.shape[1], strip_pixels)):
            out[y0:y1] = self.rows(y0, y1)
        return out


def alpha_rows(alpha_lr, photo, guided=None):
    """The row source of the alpha at the photo's size: `AlphaRows` (bilinear), or with
    `guided` (an `imageops.GuidedFilter`) `GuidedRows`; the exact `imageops_fast.AlphaRows`
    when its eps is below `GUIDED_EPS_MIN`."""
    if guided is None:
        return AlphaRows(alpha_lr, photo)
    gf = imageops.GuidedFilter(guided.radius, guided.eps)  # validates
    if _F32(gf.eps) < _F32(GUIDED_EPS_MIN):
        return imageops_fast.AlphaRows(alpha_lr, photo, gf)
    return GuidedRows(alpha_lr, photo, gf)


def alpha_to_photo(alpha: np.ndarray, photo_hw: tuple[int, int]) -> np.ndarray:
    """`imageops.alpha_to_photo` within `ALPHA_BOUND`: model output -> alpha at photo size."""
    return AlphaRows(alpha, (int(photo_hw[0]), int(photo_hw[1]))).full()


def upsample_alpha(alpha, photo: np.ndarray, guided=None) -> np.ndarray:
    """`runners.photo.upsample_alpha` on this path: bilinear (`alpha_to_photo`) or the guided
    filter (`alpha_rows`: `GuidedRows`)."""
    if guided is not None:
        rows = alpha_rows(alpha, photo, guided)
        return rows.full(copy=False) if isinstance(rows, GuidedRows) else rows.full()
    return alpha_to_photo(alpha, np.asarray(photo).shape[:2])


# -- alpha -> bytes ----------------------------------------------------------------------
def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """``round_to_uint8(alpha * 255)``, bit for bit (`imageops_fast.alpha_to_uint8`: OpenCV's
    ``convertScaleAbs`` rounds ties to even, and an 8-bit model's alpha of 0.5 is a tie)."""
    return imageops_fast.alpha_to_uint8(alpha)


def rgba_cutout(rgb: np.ndarray, alpha: np.ndarray, as_image: bool = False):
    """`imageops.rgba_cutout`: the photo's bytes, and `alpha_to_uint8` as the alpha channel."""
    from PIL import Image

    cv2 = _cv2()
    photo = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    a8 = alpha_to_uint8(alpha).reshape(photo.shape[:2])
    if photo.size == 0:
        out = np.zeros(photo.shape[:2] + (4,), np.uint8)
    else:
        out = cv2.merge([*cv2.split(photo), a8]).reshape(photo.shape[:2] + (4,))
    return Image.fromarray(out, "RGBA") if as_image else out


# -- composite ---------------------------------------------------------------------------
def _integer_colour(background):
    if isinstance(background, str) or (isinstance(background, np.ndarray) and background.ndim == 3):
        return None
    try:
        c = np.asarray(background, _F32).reshape(3)
    except ValueError:
        return None
    if np.all(c == np.floor(c)) and np.all((c >= 0) & (c <= 255)):
        return c
    return None


#: pixels blended per chunk: the float32 temporaries of a chunk (4 values a pixel) stay in a
#: few reused 1 MB buffers, in cache and never freshly paged in
CHUNK_PIXELS = 1 << 16


class _Scratch(threading.local):
    """Buffers reused from call to call (per thread): fresh memory costs a page fault per
    4 KB, more than the arithmetic on it (on a VM that returns freed pages to its host, many
    times more). Sizes are bounded by a strip (`imageops_fast.STRIP_PIXELS`) or a chunk."""

    def __init__(self):
        self.bufs: dict = {}

    def get(self, name: str, n: int, dtype) -> np.ndarray:
        buf = self.bufs.get(name)
        if buf is None or buf.size < n or buf.dtype != dtype:
            buf = self.bufs[name] = np.empty(max(int(n), 1), dtype)
        return buf[:n]


_SCRATCH = _Scratch()


def _blend_chunk(a4: np.ndarray, f4: np.ndarray, bg4: np.ndarray, out: np.ndarray) -> None:
    """The definition's ``floor(a * f + (1 - a) * b + 0.5)`` on flat float32 arrays (alpha
    repeated per channel) in its order of float32 operations, each correctly rounded (in
    OpenCV as in numpy: the same values), written into uint8 `out`. ``x = a f + (1 - a) b +
    0.5`` lies in [0.5, 255.5 + 4 ulp] for 0 <= a <= 1 and bytes f, b: so ``floor`` is the
    truncation of the cast, and the definition's clip to [0, 255] changes nothing."""
    cv2 = _cv2()
    n = a4.size
    a4, f4, bg4 = (x.reshape(1, n) for x in (a4, f4, bg4))  # one long row (a 1-D array is a column to cv2)
    t = _SCRATCH.get("blend_t", n, _F32).reshape(1, n)
    cv2.multiply(a4, f4, dst=f4)  # a * fg
    np.subtract(_F32(1.0), a4, out=t)  # 1 - a
    cv2.multiply(t, bg4, dst=t)  # (1 - a) * bg
    cv2.add(f4, t, dst=f4)
    f4 += _F32(0.5)
    np.copyto(out.reshape(1, n), f4, casting="unsafe")  # truncation == floor (x >= 0.5)


def _background_pattern(colour: np.ndarray) -> np.ndarray:
    """float32 (r, g, b, 0) repeated for `CHUNK_PIXELS` pixels (kept while the colour stays)."""
    key = tuple(float(v) for v in colour)
    if getattr(_SCRATCH, "bg_key", None) != key:
        words = np.empty(CHUNK_PIXELS, np.uint32)
        words.fill(np.append(colour, 0).astype(np.uint8).view(np.uint32)[0])
        _SCRATCH.bg = words.view(np.uint8).astype(_F32)
        _SCRATCH.bg_key = key
    return _SCRATCH.bg


def _composite_rgbx(photo: np.ndarray, a: np.ndarray, colour: np.ndarray, out4: np.ndarray) -> None:
    """One strip of the composite over an integer `colour`, into `out4` (h, w, 4; RGBX)."""
    cv2 = _cv2()
    h, w = a.shape
    p4 = _SCRATCH.get("p4", h * w * 4, np.uint8).reshape(h, w, 4)
    cv2.cvtColor(photo, cv2.COLOR_RGB2RGBA, dst=p4)  # a pixel is one 32-bit word
    words = p4.reshape(-1).view(np.uint32)
    bg_word = np.append(colour, 0).astype(np.uint8).view(np.uint32)[0]
    t = imageops_fast.HARD
    hard_fg = np.greater_equal(a, _F32(1.0) - t, out=_SCRATCH.get("hard", h * w, bool).reshape(h, w))
    soft = np.greater(a, t, out=_SCRATCH.get("soft", h * w, bool).reshape(h, w))
    np.greater(soft, hard_fg, out=soft)  # soft and not hard 1
    n_soft = int(np.count_nonzero(soft))
    out_words = out4.reshape(-1).view(np.uint32)
    if n_soft > SOFT_SHARE * a.size:  # mostly soft (an unsure model): every pixel, a chunk at a time
        idx = None
    else:
        out_words.fill(bg_word)  # the background colour
        if hard_fg.any():
            cv2.copyTo(p4, hard_fg.view(np.uint8), out4)  # the photo where alpha is hard 1
        if not n_soft:
            return
        idx = np.flatnonzero(soft)
    total = a.size if idx is None else idx.size
    af = a.reshape(-1)
    for c0 in range(0, total, CHUNK_PIXELS):
        c1 = min(c0 + CHUNK_PIXELS, total)
        n = c1 - c0
        sel = slice(c0, c1) if idx is None else idx[c0:c1]
        a1 = (af[sel] if idx is None else np.take(af, sel)).reshape(1, n)
        a4 = _SCRATCH.get("a4", 4 * n, _F32)
        cv2.merge([a1, a1, a1, a1], dst=a4.reshape(1, n, 4))  # alpha repeated per channel
        f4 = _SCRATCH.get("f4", 4 * n, _F32)
        px = words[sel] if idx is None else np.take(words, sel)
        np.copyto(f4, px.view(np.uint8))  # exact uint8 -> float32
        bg4 = _background_pattern(colour)[: 4 * n]
        res = _SCRATCH.get("res", 4 * n, np.uint8)
        _blend_chunk(a4, f4, bg4, res)
        if idx is None:
            out_words[c0:c1] = res.view(np.uint32)
        else:
            out_words[sel] = res.view(np.uint32)


def box_blur(img: np.ndarray, radius: int, passes: int = 3) -> np.ndarray:
    """`imageops.box_blur` (HxWxC, float32 out): per pass and axis (0, then 1) one normalized
    ``cv2.boxFilter`` with replicated edges, the definition's edge-clamped window, summed in
    float64 and times 1 / (2r + 1), rounded to float32 as the definition's float64 prefix-sum
    difference / (2r + 1) is. Equal to the definition on every test input (as `box_means`; a
    float64 tie could move a value by a float32 step, 2e-5 of a level), so the composite over
    it is within `COMPOSITE_BOUND`."""
    cv2 = _cv2()
    x = np.ascontiguousarray(img, dtype=_F32)
    if radius <= 0 or x.size == 0:
        return x.copy()
    k = 2 * int(radius) + 1
    for _ in range(int(passes)):
        x = cv2.boxFilter(x, -1, (1, k), normalize=True, borderType=cv2.BORDER_REPLICATE)
        x = cv2.boxFilter(x, -1, (k, 1), normalize=True, borderType=cv2.BORDER_REPLICATE)
    return x.reshape(np.shape(img))


def composite(rgb: np.ndarray, alpha: np.ndarray, background, as_image: bool = False, foreground=None):
    """`imageops.composite` (HxWx3 uint8; a PIL image with `as_image`). Over an integer
    colour, the definition's bytes for the same alpha, bit for bit (`_composite_rgbx`, a
    strip at a time): pixels as 32-bit words (RGBX), the hard ones a fill and a masked
    ``cv2.copyTo``, the soft ones gathered and blended with the definition's float32
    operations (`_blend_chunk`), or, when more than `SOFT_SHARE` of them are soft, every
    pixel blended. Other backgrounds and `foreground`: `imageops_fast.composite` (the
    definition's blend), with ``"blur"`` made by `box_blur` (of the photo, also with a
    foreground) and an image of another size resized by `model_pixels` (within `PIXEL_BOUND`):
    within `COMPOSITE_BOUND` of the definition."""
    colour = _integer_colour(background) if foreground is None else None
    if colour is None:
        shape = np.shape(rgb)
        if isinstance(background, str) and background == "blur":
            photo = np.asarray(rgb, np.uint8)[..., :3]
            background = box_blur(photo, imageops.default_blur_radius(*shape[:2]))
        elif isinstance(background, np.ndarray) and background.ndim == 3 and background.shape[:2] != shape[:2] \
                and background.size and shape[0] * shape[1]:
            background = model_pixels(background, *shape[:2])
        return imageops_fast.composite(rgb, alpha, background, as_image=as_image, foreground=foreground)
    from PIL import Image

    cv2 = _cv2()
    photo = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    h, w = photo.shape[:2]
    a = np.asarray(alpha, _F32)
    if a.shape != (h, w):
        a = a.reshape(h, w)
    if photo.size == 0:
        out = np.zeros((h, w, 3), np.uint8)
        return Image.fromarray(out, "RGB") if as_image else out
    rows = imageops_fast.strip_height(w)
    if as_image and rows >= h:  # one strip: PIL reads the RGBX words straight into its image
        out4 = _SCRATCH.get("out4", h * w * 4, np.uint8).reshape(h, w, 4)
        _composite_rgbx(photo, np.ascontiguousarray(a), colour, out4)
        return Image.frombytes("RGB", (w, h), out4, "raw", "RGBX")
    out = np.empty((h, w, 3), np.uint8)
    for y0, y1 in imageops_fast.strips(h, rows):
        out4 = _SCRATCH.get("out4", (y1 - y0) * w * 4, np.uint8).reshape(y1 - y0, w, 4)
        _composite_rgbx(photo[y0:y1], np.ascontiguousarray(a[y0:y1]), colour, out4)
        cv2.cvtColor(out4, cv2.COLOR_RGBA2RGB, dst=out[y0:y1])
    return Image.fromarray(out, "RGB") if as_image else out


# -- the bounds, measured -----------------------------------------------------------------
def measure_bounds(rgb: np.ndarray, alpha_lr: np.ndarray, colours=((0, 255, 0), (255, 255, 255), (0, 0, 0)),
                   guided=None, backgrounds=None) -> dict:
    """How far this path is from the definition on one photo (HxWx3 or HxWx4 uint8) and one
    model output (h, w): the largest difference of each stage, and ``"failures"``, the
    stages beyond their bound. model input: model_pixels vs `imageops.resize_bilinear`
    (levels); alpha: `alpha_to_photo` vs `imageops.alpha_to_photo`, and strips vs the whole;
    guided: `alpha_rows` with `guided` (default `imageops.GuidedFilter()`) vs
    `imageops.guided_upsample`, and strips vs the whole;
    composite: end to end (this path's alpha and composite vs the definition's) over each
    colour, and with the definition's alpha (which must be equal); composite_backgrounds: the
    same over `backgrounds` (None: "blur" and an image of another size); alpha8 and cut-out."""
    photo = np.asarray(rgb)
    a_lr = np.asarray(alpha_lr, _F32)
    h, w = a_lr.shape[-2:] if a_lr.ndim == 2 else a_lr.shape[-3:-1]
    hw = photo.shape[:2]
    r: dict = {}
    ref_px = imageops.resize_bilinear(photo[..., :3], h, w)
    r["model_pixels"] = float(np.abs(model_pixels(photo, h, w).astype(np.float64) - ref_px).max())
    ref_a = imageops.alpha_to_photo(a_lr, hw)
    rows = AlphaRows(a_lr, tuple(hw))
    a = rows.full()
    r["alpha"] = float(np.abs(a.astype(np.float64) - ref_a).max())
    strips = np.concatenate([rows.rows(y0, y1) for y0, y1 in imageops_fast.strips(hw[0], 2)])
    r["alpha_strips_equal"] = bool(np.array_equal(strips, a) and np.array_equal(rows.rows_at(np.arange(hw[0])), a))
    r["alpha_in_range"] = bool(a.size == 0 or (a.min() >= 0.0 and a.max() <= 1.0))
    gf = imageops.GuidedFilter() if guided is None else guided
    g_rows = alpha_rows(a_lr, photo, gf)
    g = g_rows.full()
    r["guided"] = float(np.abs(g.astype(np.float64) - imageops.guided_upsample(a_lr, photo, gf.radius, gf.eps)).max(
        initial=0.0))
    g_strips = np.concatenate([g_rows.rows(y0, y1) for y0, y1 in imageops_fast.strips(hw[0], 3)])
    backwards = g_rows.rows_at(np.arange(hw[0])[::-1])
    r["guided_strips_equal"] = bool(np.array_equal(g_strips, g) and np.array_equal(backwards, g[::-1]))
    r["guided_in_range"] = bool(g.size == 0 or (g.min() >= 0.0 and g.max() <= 1.0))
    comp, same = 0, True
    for c in colours:
        ref = imageops.composite(photo, ref_a, c)
        comp = max(comp, int(np.abs(composite(photo, a, c).astype(np.int16) - ref).max(initial=0)))
        same = same and np.array_equal(composite(photo, ref_a, c), ref) and \
            np.array_equal(np.asarray(composite(photo, ref_a, c, as_image=True)).reshape(ref.shape), ref)
    r["composite"] = comp
    r["composite_same_alpha_equal"] = bool(same)
    if backgrounds is None:  # "blur" and an image of another size
        backdrop = np.random.default_rng(0).integers(0, 256, (hw[0] // 3 + 1, max(1, hw[1] * 2 - 1), 3), np.uint8)
        backgrounds = ("blur", backdrop)
    r["composite_backgrounds"] = max(  # end to end
        (int(np.abs(composite(photo, a, bg).astype(np.int16) - imageops.composite(photo, ref_a, bg)).max(initial=0))
         for bg in backgrounds), default=0)
    ref8 = imageops.round_to_uint8(ref_a * _F32(255.0))
    r["alpha8"] = int(np.abs(alpha_to_uint8(a).astype(np.int16) - ref8).max(initial=0))
    r["composite_same_alpha_equal"] = r["composite_same_alpha_equal"] and bool(
        np.array_equal(alpha_to_uint8(ref_a), ref8))
    cut, ref_cut = rgba_cutout(photo, a), imageops.rgba_cutout(photo, ref_a)
    r["cutout_rgb_equal"] = bool(np.array_equal(cut[..., :3], ref_cut[..., :3]))
    r["cutout_alpha"] = int(np.abs(cut[..., 3].astype(np.int16) - ref_cut[..., 3]).max(initial=0))
    fails = []
    if not r["model_pixels"] < PIXEL_BOUND:
        fails.append(f"model_pixels {r['model_pixels']:.3f} >= {PIXEL_BOUND} levels")
    if not r["alpha"] <= ALPHA_BOUND:
        fails.append(f"alpha {r['alpha']:.3g} > {ALPHA_BOUND:.3g}")
    if not r["guided"] <= GUIDED_BOUND:
        fails.append(f"guided {r['guided']:.3g} > {GUIDED_BOUND:.3g}")
    for k in ("alpha_strips_equal", "alpha_in_range", "guided_strips_equal", "guided_in_range",
              "composite_same_alpha_equal", "cutout_rgb_equal"):
        if not r[k]:
            fails.append(f"not {k}")
    for k in ("composite", "composite_backgrounds", "alpha8", "cutout_alpha"):
        if r[k] > COMPOSITE_BOUND:
            fails.append(f"{k} {r[k]} > {COMPOSITE_BOUND} level")
    r["failures"] = fails
    return r


# -- which path runs ---------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoOps:
    """The photo-size stages of one pipeline, as `PhotoRunner` and `edgematting.predict` call
    them: ``model_pixels(rgb, h, w)`` (for `contract.encode_pixels`), ``alpha_rows(alpha_lr,
    photo, guided)`` (a row source, `imageops_fast.AlphaRows`'s interface),
    ``upsample_alpha(alpha_lr, photo, guided)``, ``composite``, ``rgba_cutout``,
    ``alpha_to_uint8`` and ``background_rows`` (as `imageops_fast`'s)."""

    name: str
    model_pixels: Callable
    alpha_rows: Callable
    upsample_alpha: Callable
    composite: Callable
    rgba_cutout: Callable
    alpha_to_uint8: Callable
    background_rows: Callable
    exact: bool


def _exact_upsample(alpha, photo, guided=None):
    a = np.asarray(alpha, _F32)
    if guided is None:
        return imageops_fast.alpha_to_photo(a, np.asarray(photo).shape[:2])
    return imageops_fast.guided_upsample(a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a, photo,
                                         guided.radius, guided.eps)


EXACT = PhotoOps(
    name="exact", model_pixels=lambda rgb, h, w: imageops_fast.resize_bilinear(np.asarray(rgb)[..., :3], h, w),
    alpha_rows=imageops_fast.AlphaRows, upsample_alpha=_exact_upsample, composite=imageops_fast.composite,
    rgba_cutout=imageops_fast.rgba_cutout, alpha_to_uint8=imageops_fast.alpha_to_uint8,
    background_rows=imageops_fast.background_rows, exact=True)
OPENCV = PhotoOps(
    name="opencv", model_pixels=model_pixels, alpha_rows=alpha_rows, upsample_alpha=upsample_alpha,
    composite=composite, rgba_cutout=rgba_cutout, alpha_to_uint8=alpha_to_uint8,
    background_rows=imageops_fast.background_rows, exact=False)


def default_pipeline() -> str:
    """``$EDGEMATTING_PIPELINE`` when set, else "opencv" where OpenCV imports, else "exact"."""
    env = os.environ.get(ENV, "").strip().lower()
    if env:
        return check_pipeline(env)
    return "opencv" if available() else "exact"


def check_pipeline(name: str) -> str:
    n = str(name).strip().lower()
    if n not in PIPELINES:
        raise InputError(f"The photo pipeline is {' or '.join(PIPELINES)}, not {name!r} (from {ENV} or "
                         "pipeline=).")
    return n


def get_ops(name: str | None = None, threads: int | None = None) -> PhotoOps:
    """The stages of pipeline `name` (None: `default_pipeline`); for "opencv", `threads` sets
    OpenCV's thread count (`set_threads`)."""
    n = check_pipeline(name) if name else default_pipeline()
    if n == "exact":
        return EXACT
    _cv2()  # DependencyError with what to do, when asked for and missing
    if threads is not None:
        set_threads(threads)
    return OPENCV
