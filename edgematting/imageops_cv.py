"""The OpenCV path of the photo pipeline: within a stated bound of `edgematting.imageops`.

`edgematting.imageops` is *the* definition (float32 in a fixed order; the Java core and the
web demo reproduce it bit for bit, golden vectors are made from it) and
`edgematting.imageops_fast` computes it bit for bit in numpy. This module computes the same
stages with OpenCV (``opencv-python-headless``, pinned in pyproject.toml): not bit for bit,
but within these bounds of the definition, which ``tests/test_imageops_cv.py`` proves on
random and on edge-case inputs (alpha exactly 0, 1 and 0.5, 1x1 and odd sizes, RGBA photos)
and which a deliberately shifted resize or swapped composite weights fail:

=========================  ==================================  =====================================
here                       definition                          bound (max abs over all pixels)
=========================  ==================================  =====================================
`model_pixels`             `imageops.resize_bilinear` of the   0.25 pixel levels (0..255) before the
                           photo (float32 pixels)              normalization (`PIXEL_BOUND`);
                                                               measured 0.06 (12 MP), 0.15 (12000
                                                               px wide)
`AlphaRows`,               `imageops.alpha_to_photo`           1/255 (`ALPHA_BOUND`); measured
`alpha_to_photo`                                               3.2e-5 on random alphas
`composite` over a colour  `imageops.composite`                1 level per channel
                                                               (`COMPOSITE_BOUND`); the definition's
                                                               bytes for the same alpha when at most
                                                               `SOFT_SHARE` of the pixels are soft
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
  `edgematting.predict` keeps its bounded memory. The guided filter (``--upsample guided``)
  stays on the exact path.
* **Composite over an integer colour**: the hard pixels of `imageops_fast` (alpha within
  2^-9 of 0 or 1: exactly the background or the photo) are a fill and a masked
  ``cv2.copyTo``; the soft ones are computed with the definition's float32 operations, so
  with the same alpha the result is the definition's, bit for bit. When more than
  `SOFT_SHARE` of the pixels are soft (an unsure model) every pixel is blended the same way
  (no gather). The blend (`_blend_chunk`) is ``a * f + (1 - a) * b + 0.5`` with each float32
  operation correctly rounded (OpenCV's array-array multiply and add, as numpy's), then
  truncated (= floor: the value is >= 0.5), a 64K-pixel chunk at a time in reused buffers.
  The alpha's own error moves the unrounded value by at most 255 x 3.2e-5 = 0.008 levels, so
  end to end (definition's alpha vs this path's) a byte moves by one level at most. Other backgrounds (an image, ``"blur"``) and an estimated foreground run the
  exact `imageops_fast.composite`.
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


def alpha_rows(alpha_lr, photo, guided=None):
    """The row source of the alpha at the photo's size: `AlphaRows` (bilinear), or the exact
    `imageops_fast.AlphaRows` for the guided filter."""
    if guided is not None:
        return imageops_fast.AlphaRows(alpha_lr, photo, guided)
    return AlphaRows(alpha_lr, photo)


def alpha_to_photo(alpha: np.ndarray, photo_hw: tuple[int, int]) -> np.ndarray:
    """`imageops.alpha_to_photo` within `ALPHA_BOUND`: model output -> alpha at photo size."""
    return AlphaRows(alpha, (int(photo_hw[0]), int(photo_hw[1]))).full()


def upsample_alpha(alpha, photo: np.ndarray, guided=None) -> np.ndarray:
    """`runners.photo.upsample_alpha` on this path (the guided filter exact)."""
    if guided is not None:
        return imageops_fast.AlphaRows(alpha, photo, guided).full()
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


def composite(rgb: np.ndarray, alpha: np.ndarray, background, as_image: bool = False, foreground=None):
    """`imageops.composite` (HxWx3 uint8; a PIL image with `as_image`). Over an integer
    colour, the definition's bytes for the same alpha, bit for bit (`_composite_rgbx`, a
    strip at a time): pixels as 32-bit words (RGBX), the hard ones a fill and a masked
    ``cv2.copyTo``, the soft ones gathered and blended with the definition's float32
    operations (`_blend_chunk`), or, when more than `SOFT_SHARE` of them are soft, every
    pixel blended. Other backgrounds and `foreground`: the exact `imageops_fast.composite`."""
    colour = _integer_colour(background) if foreground is None else None
    if colour is None:
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
def measure_bounds(rgb: np.ndarray, alpha_lr: np.ndarray, colours=((0, 255, 0), (255, 255, 255), (0, 0, 0))) -> dict:
    """How far this path is from the definition on one photo (HxWx3 or HxWx4 uint8) and one
    model output (h, w): the largest difference of each stage, and ``"failures"``, the
    stages beyond their bound. model input: model_pixels vs `imageops.resize_bilinear`
    (levels); alpha: `alpha_to_photo` vs `imageops.alpha_to_photo`, and strips vs the whole;
    composite: end to end (this path's alpha and composite vs the definition's) over each
    colour, and with the definition's alpha (which must be equal); alpha8 and cut-out."""
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
    comp, same = 0, True
    for c in colours:
        ref = imageops.composite(photo, ref_a, c)
        comp = max(comp, int(np.abs(composite(photo, a, c).astype(np.int16) - ref).max(initial=0)))
        same = same and np.array_equal(composite(photo, ref_a, c), ref) and \
            np.array_equal(np.asarray(composite(photo, ref_a, c, as_image=True)).reshape(ref.shape), ref)
    r["composite"] = comp
    r["composite_same_alpha_equal"] = bool(same)
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
    for k in ("alpha_strips_equal", "alpha_in_range", "composite_same_alpha_equal", "cutout_rgb_equal"):
        if not r[k]:
            fails.append(f"not {k}")
    for k in ("composite", "alpha8", "cutout_alpha"):
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
