"""Fast paths of the photo pipeline, equal to the definitions in `edgematting.imageops`.

`edgematting.imageops` is *the* definition (float32 arithmetic in a fixed order, the Java
core and the web demo reproduce it bit for bit, golden vectors are made from it). It is
written for clarity: it converts the whole photo to float32 and gathers full-size
temporaries. The functions here compute the same numbers with less work; each says how
it relates to its definition, and ``tests/test_imageops_fast.py`` checks it:

==========================  ========================================  ==================
fast                        definition                                equal
==========================  ========================================  ==================
`resize_bilinear`           `imageops.resize_bilinear`                bit for bit
`alpha_to_photo`            `imageops.alpha_to_photo`                 bit for bit
`alpha_to_uint8`            ``round_to_uint8(alpha * 255)``           bit for bit
`composite`                 `imageops.composite`                      bit for bit
`rgba_cutout`               `imageops.rgba_cutout`                    bit for bit
`guided_upsample`           `imageops.guided_upsample`                bit for bit
==========================  ========================================  ==================

How:

* **Resize** is separable and the definition's ``top``/``bottom`` rows are the same
  horizontal interpolation of one *input* row, repeated for every output row that uses it.
  The fast path interpolates each needed input row once (same float32 operations, so the
  same values), on the rows/columns gathered from the uint8 photo *before* the float
  conversion (gathering commutes with the exact uint8 -> float32 conversion), and reuses
  its buffers in place.
* **Composite** splits pixels by alpha. With ``t = 2**-9``, a pixel with ``a <= t`` over an
  integer background colour ``b`` gives exactly ``b``, and one with ``a >= 1 - t`` gives
  exactly the photo's ``f``: ``|a (f - b)| <= 255 / 512 = 0.498`` while the float32 rounding
  errors of the definition's four operations stay below ``4e-5``, so ``floor(x + 0.5)``
  cannot change (for ``a >= 0.5`` the definition's ``1 - a`` is exact, Sterbenz). Those
  pixels are filled in C by PIL (the background colour, then the photo pasted through a
  1-bit mask: plain byte copies); only the soft pixels in between are computed with the definition's float
  operations. (For a background image or ``"blur"`` only ``a == 0`` and ``a == 1`` are
  taken as hard.) A trained model's matte is soft only along the person's edge; an
  untrained one is soft everywhere, and then the cost is the definition's.
* **Strips** (bounded memory, `edgematting.predict`): every photo-size output row of the
  bilinear and guided upsampling is a function of model-resolution data and that row of
  the photo (`AlphaRows`: the guided filter's box means run at model resolution, so it
  needs no halo at the photo's size), the composite and cut-out are per pixel, a
  background image's rows are `resize_bilinear(..., rows=)`, and the blur's are a
  streaming `BoxBlurRows` whose float64 running sums continue from strip to strip (an
  accumulation is sequential: the same sums). So a photo is processed `STRIP_PIXELS` at
  a time with no photo-size float array, bit for bit as on the whole frame
  (``tests/test_memory.py``, ``tests/test_upsample.py``).
"""
from __future__ import annotations

import numpy as np

from . import imageops

_F32 = np.float32
#: alpha at or below this (or at or above 1 - this) is "hard" over an integer colour: the
#: composite is then exactly the background (the photo). See the module docstring.
HARD = _F32(2.0**-9)


def _weights(in_size: int, out_size: int):
    i0, i1, w1 = imageops.axis_weights(in_size, out_size)  # the definition's own weights
    return i0, i1, w1, (_F32(1.0) - w1).astype(_F32)


def _hpass(planes: list[np.ndarray], xi0, xi1, wx0, wx) -> list[np.ndarray]:
    """The horizontal pass ``a * (1 - wx) + b * wx`` on float32 planes (rows, w)."""
    out = []
    for p in planes:
        left = np.take(p, xi0, axis=1)
        right = np.take(p, xi1, axis=1)
        np.multiply(left, wx0[None, :], out=left)
        np.multiply(right, wx[None, :], out=right)
        np.add(left, right, out=left)
        out.append(left)
    return out


def _vpass(plane: np.ndarray, r0, r1, wy0, wy, clip01: bool = False) -> np.ndarray:
    """The vertical pass ``top * (1 - wy) + bottom * wy`` (then clip to [0, 1]) of one plane."""
    top = np.take(plane, r0, axis=0)
    bot = np.take(plane, r1, axis=0)
    np.multiply(top, wy0[:, None], out=top)
    np.multiply(bot, wy[:, None], out=bot)
    np.add(top, bot, out=top)
    if clip01:
        np.clip(top, _F32(0.0), _F32(1.0), out=top)
    return top


def _columns_u8(x: np.ndarray, rows: np.ndarray, xi0, xi1) -> tuple[np.ndarray, np.ndarray]:
    """Rows `rows` and columns xi0 / xi1 of a uint8 HxWxC image (C = 3 or 4) as float32
    channel planes (C, rows, columns). A pixel is moved as one 32-bit word: for C = 3
    through an overlapping view whose word at pixel j holds bytes 3j..3j+3 (the 4th, the
    next pixel's red, is never used), so a gather moves 1 word per pixel instead of C bytes."""
    h, w, c = x.shape
    r = len(rows)
    buf = np.empty(r * w * c + 4, np.uint8)  # + 4: the last pixel's word stays in bounds
    np.take(np.ascontiguousarray(x).reshape(h, w * c), rows, axis=0, out=buf[: r * w * c].reshape(r, w * c))
    words = np.ndarray((r, w), dtype="<u4", buffer=buf, offset=0, strides=(w * c, c))
    outs = []
    for idx in (xi0, xi1):
        g = np.ascontiguousarray(words[:, idx]).view(np.uint8).reshape(r, len(idx), 4)
        planes = np.empty((c, r, len(idx)), _F32)
        np.copyto(planes, np.moveaxis(g[..., :c], -1, 0))  # exact uint8 -> float32
        outs.append(planes)
    return outs[0], outs[1]


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int, rows: tuple[int, int] | None = None) -> np.ndarray:
    """`imageops.resize_bilinear`, bit for bit: HxW or HxWxC (any real dtype) -> float32.

    Channel by channel (planes, long inner loops), each input row interpolated once; a uint8
    photo's needed rows and columns are gathered as packed pixels before the exact
    conversion to float32. `rows` ``(y0, y1)``: only those output rows (every output row
    is computed on its own, so a strip equals the same rows of the whole)."""
    x = np.asarray(img)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    h, w, c = x.shape
    yi0, yi1, wy, wy0 = _weights(h, out_h)
    if rows is not None:
        yi0, yi1, wy, wy0 = (v[rows[0]:rows[1]] for v in (yi0, yi1, wy, wy0))
        out_h = len(yi0)
    xi0, xi1, wx, wx0 = _weights(w, out_w)
    rows, inv = np.unique(np.concatenate([yi0, yi1]), return_inverse=True)
    r0, r1 = inv[:out_h], inv[out_h:]
    if x.dtype == np.uint8 and c in (3, 4):
        left, right = _columns_u8(x, rows, xi0, xi1)  # only the rows and columns the output uses
        np.multiply(left, wx0[None, None, :], out=left)
        np.multiply(right, wx[None, None, :], out=right)
        np.add(left, right, out=left)
        planes = left
    else:
        xr = x[rows]  # only the input rows the output uses, still in the input dtype
        planes = _hpass([np.ascontiguousarray(xr[..., k], dtype=_F32) for k in range(c)], xi0, xi1, wx0, wx)
    if squeeze:
        return _vpass(planes[0], r0, r1, wy0, wy)
    top = np.take(np.asarray(planes), r0, axis=1)  # the vertical pass on all planes at once
    bot = np.take(np.asarray(planes), r1, axis=1)
    np.multiply(top, wy0[None, :, None], out=top)
    np.multiply(bot, wy[None, :, None], out=bot)
    np.add(top, bot, out=top)
    # HxWxC as a view of the channel planes (no interleaving copy): elementwise work that
    # follows (normalization, quantization) runs plane by plane, and whoever needs
    # interleaved memory makes it once (np.ascontiguousarray)
    return np.moveaxis(top, 0, -1)


def alpha_to_photo(alpha: np.ndarray, photo_hw: tuple[int, int]) -> np.ndarray:
    """`imageops.alpha_to_photo`, bit for bit: model output -> alpha at photo size, clipped.
    Each model row is interpolated across once; the output is filled a strip at a time
    (`AlphaRows`), so beyond it only one strip's temporaries are made."""
    a = np.asarray(alpha, _F32)
    a = a.reshape(a.shape[-3], a.shape[-2]) if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1])
    return AlphaRows(a, _Shape(photo_hw)).full()


def alpha_to_uint8(alpha: np.ndarray) -> np.ndarray:
    """``imageops.round_to_uint8(alpha * 255)``, bit for bit, in three passes: for the
    non-negative ``x = alpha * 255 + 0.5`` clipped to [0, 255], truncation is ``floor``."""
    t = np.multiply(np.asarray(alpha, _F32), _F32(255.0))
    np.add(t, _F32(0.5), out=t)
    np.clip(t, _F32(0.0), _F32(255.0), out=t)
    return t.astype(np.uint8)


def rgba_cutout(rgb: np.ndarray, alpha: np.ndarray, as_image: bool = False):
    """`imageops.rgba_cutout`, bit for bit (HxWx4 uint8; a PIL image with `as_image`)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3]), "RGB")
    im.putalpha(Image.fromarray(alpha_to_uint8(alpha), "L"))
    return im if as_image else np.asarray(im)


#: above this share of soft pixels the composite is computed for every pixel, one channel
#: plane at a time, instead of gathering the soft ones
SOFT_SHARE = 0.3


def _composite_planes(photo: np.ndarray, a: np.ndarray, colour, bgf) -> np.ndarray:
    """The definition's ``round_to_uint8(a * fg + (1 - a) * bg)`` for every pixel, computed
    per channel plane (contiguous, long inner loops) into one reused buffer."""
    h, w = a.shape
    one_minus = _F32(1.0) - a
    out = np.empty((h, w, 3), np.uint8)
    v = np.empty((h, w), _F32)
    t = np.empty((h, w), _F32)
    for k in range(3):
        np.multiply(a, photo[..., k], out=v, dtype=_F32)
        if bgf is None:
            np.multiply(one_minus, colour[k], out=t)
        else:
            np.multiply(one_minus, bgf[..., k], out=t, dtype=_F32)
        np.add(v, t, out=v)
        np.add(v, _F32(0.5), out=v)
        np.floor(v, out=v)
        np.clip(v, _F32(0.0), _F32(255.0), out=v)
        out[..., k] = v
    return out


def composite(rgb: np.ndarray, alpha: np.ndarray, background, as_image: bool = False, foreground=None):
    """`imageops.composite`, bit for bit (HxWx3 uint8; a PIL image with `as_image`).

    background: an (r, g, b) colour, an HxWx3 image (resized to the photo with the fast
    `resize_bilinear`), or "blur" (`imageops.box_blur`, as the definition). foreground: the
    person's colours in place of the photo's (the blurred background stays the photo's)."""
    from PIL import Image

    photo = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., :3])
    h, w = photo.shape[:2]
    if foreground is not None:
        if isinstance(background, str) and background == "blur":
            background = imageops.box_blur(photo.astype(_F32), imageops.default_blur_radius(h, w))
        photo = np.ascontiguousarray(np.asarray(foreground, np.uint8)[..., :3])
    a = np.asarray(alpha, _F32)
    if a.shape != (h, w):
        a = a.reshape(h, w)
    colour = None
    if isinstance(background, str) and background == "blur":
        bgf = imageops.box_blur(photo.astype(_F32), imageops.default_blur_radius(h, w))
    elif isinstance(background, np.ndarray) and background.ndim == 3:
        bgf = np.asarray(background)[..., :3]
        bgf = resize_bilinear(bgf, h, w) if bgf.shape[:2] != (h, w) else bgf.astype(_F32)
    else:
        colour = np.asarray(background, _F32).reshape(3)
        bgf = None
    integer_colour = colour is not None and np.all(colour == np.floor(colour)) and np.all((colour >= 0) & (colour <= 255))
    if integer_colour:
        hard_bg, hard_fg = a <= HARD, a >= _F32(1.0) - HARD
        bg_img = Image.new("RGB", (w, h), tuple(int(v) for v in colour))
    else:  # only exact 0 and 1 are hard: the background's own rounding decides the rest
        hard_bg, hard_fg = a == _F32(0.0), a == _F32(1.0)
        bg8 = imageops.round_to_uint8(bgf if bgf is not None else np.broadcast_to(colour, (h, w, 3)))
        bg_img = Image.fromarray(np.ascontiguousarray(bg8), "RGB")
    # the photo's bytes where alpha is hard 1, through a 1-bit mask (a plain copy in C)
    bg_img.paste(Image.fromarray(photo, "RGB"), (0, 0), Image.fromarray(np.ascontiguousarray(hard_fg)))
    out_img = bg_img
    soft = np.flatnonzero(~(hard_bg | hard_fg))
    if soft.size == 0:
        return out_img if as_image else np.asarray(out_img)
    if soft.size > SOFT_SHARE * a.size:  # mostly soft (an unsure model): every pixel, channel by channel
        out = _composite_planes(photo, a, colour, bgf)
        return Image.fromarray(out, "RGB") if as_image else out
    out = np.array(out_img)  # writable copy
    flat, pflat = out.reshape(-1), photo.reshape(-1)
    a_s = a.reshape(-1)[soft]
    one_minus = _F32(1.0) - a_s
    bflat = None if bgf is None else np.asarray(bgf, _F32).reshape(-1)
    for k in range(3):  # the definition's operations, one channel at a time (1-D, contiguous)
        at = soft * 3 + k
        v = a_s * pflat[at].astype(_F32)
        v += one_minus * (colour[k] if bflat is None else bflat[at])
        v += _F32(0.5)
        np.floor(v, out=v)
        np.clip(v, _F32(0.0), _F32(255.0), out=v)
        flat[at] = v.astype(np.uint8)
    return Image.fromarray(out, "RGB") if as_image else out


def guided_upsample(alpha_lr: np.ndarray, photo: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """`imageops.guided_upsample`, bit for bit: the same steps with the fast resizes, the
    photo-size ones a strip at a time (`AlphaRows`: no float copy of the photo)."""
    a_lr = np.asarray(alpha_lr, _F32)
    a_lr = a_lr.reshape(a_lr.shape[-3], a_lr.shape[-2]) if a_lr.ndim >= 3 else a_lr
    return AlphaRows(a_lr, photo, imageops.GuidedFilter(radius, eps)).full()


class _Shape:
    """A stand-in photo of a given size (bilinear upsampling reads no pixels)."""

    def __init__(self, hw):
        self.shape = (int(hw[0]), int(hw[1]), 3)

    def __getitem__(self, key):
        return self


# -- photo-size stages a strip at a time (bounded memory) --------------------------------
#: pixels per horizontal strip of the photo-size stages: a strip's float32 planes are a few
#: MB whatever the photo's size (see `edgematting.predict`'s memory budget)
STRIP_PIXELS = 1 << 20


def strip_height(width: int, strip_pixels: int | None = None) -> int:
    """Rows per strip for a photo `width` pixels wide (at least 1)."""
    return max(1, int(strip_pixels or STRIP_PIXELS) // max(1, int(width)))


def strips(height: int, rows: int):
    """(y0, y1) of consecutive strips of `rows` rows covering `height` rows."""
    for y0 in range(0, int(height), int(rows)):
        yield y0, min(y0 + int(rows), int(height))


class ArrayRows:
    """A whole HxW alpha seen through the row interface of `AlphaRows`."""

    def __init__(self, alpha: np.ndarray):
        a = np.asarray(alpha, _F32)
        self.alpha = a[..., 0] if a.ndim == 3 else a
        self.shape = self.alpha.shape

    def rows(self, y0: int, y1: int) -> np.ndarray:
        return self.alpha[y0:y1]

    def rows_at(self, idx) -> np.ndarray:
        return self.alpha[np.asarray(idx, np.intp)]


class AlphaRows:
    """The model's alpha at the photo's size, computed a few rows at a time: `alpha_to_photo`
    (bilinear) or, with `guided` (an `imageops.GuidedFilter`), `guided_upsample`, bit for bit.

    Every output row of both is a function of model-resolution data and of that row of the
    photo only: the bilinear resize interpolates each model row across once (kept here,
    model rows x photo width) and blends two of them per output row; the guided filter's
    box means all run at model resolution (its radius is in model pixels, so no photo-size
    halo is needed), and only ``A * I + B`` with the photo row's luminance ``I`` is at the
    photo's size. So any set of rows equals the same rows of the whole frame, and no
    photo-size float copy is ever made.
    """

    def __init__(self, alpha_lr, photo: np.ndarray, guided=None):
        a = np.asarray(alpha_lr, _F32)
        a = a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a.reshape(a.shape[0], a.shape[1])
        self.photo = photo if isinstance(photo, _Shape) else np.asarray(photo)[..., :3]
        H, W = self.photo.shape[:2]
        self.shape = (H, W)
        h, w = a.shape
        self.guided = guided is not None
        self._y = _weights(h, H)  # yi0, yi1, wy, wy0
        xi0, xi1, wx, wx0 = _weights(w, W)
        if not self.guided:
            (self._plane,) = _hpass([np.ascontiguousarray(a)], xi0, xi1, wx0, wx)  # as alpha_to_photo
            return
        gf = imageops.GuidedFilter(guided.radius, guided.eps)
        r, e = gf.radius, _F32(gf.eps)
        box = imageops.box_mean
        p = np.clip(a, _F32(0.0), _F32(1.0))  # the steps of guided_upsample, at model resolution
        guide_lr = imageops.luminance01(resize_bilinear(self.photo, h, w))
        mean_i = box(guide_lr, r)
        mean_p = box(p, r)
        corr_ip = box(guide_lr * p, r)
        corr_ii = box(guide_lr * guide_lr, r)
        var_i = corr_ii - mean_i * mean_i
        cov_ip = corr_ip - mean_i * mean_p
        ga = cov_ip / (var_i + e)
        gb = mean_p - ga * mean_i
        # resize_bilinear of a 2-D float plane: the horizontal pass of every model row once
        self._planes = [_hpass([np.ascontiguousarray(box(m, r), dtype=_F32)], xi0, xi1, wx0, wx)[0] for m in (ga, gb)]

    def rows_at(self, idx) -> np.ndarray:
        """float32 (len(idx), W): the alpha's rows `idx`."""
        idx = np.asarray(idx, np.intp)
        yi0, yi1, wy, wy0 = (v[idx] for v in self._y)
        if not self.guided:
            return _vpass(self._plane, yi0, yi1, wy0, wy, clip01=True)
        big_a = _vpass(self._planes[0], yi0, yi1, wy0, wy)
        np.multiply(big_a, imageops.luminance01(self.photo[idx]), out=big_a)
        np.add(big_a, _vpass(self._planes[1], yi0, yi1, wy0, wy), out=big_a)
        return np.clip(big_a, _F32(0.0), _F32(1.0), out=big_a)

    def rows(self, y0: int, y1: int) -> np.ndarray:
        return self.rows_at(np.arange(y0, y1))

    def full(self, strip_pixels: int | None = None) -> np.ndarray:
        """The whole HxW alpha, filled a strip at a time."""
        out = np.empty(self.shape, _F32)
        for y0, y1 in strips(self.shape[0], strip_height(self.shape[1], strip_pixels)):
            out[y0:y1] = self.rows(y0, y1)
        return out


class RowCache:
    """Rows of a row source (``.rows(y0, y1)``, ``.shape``), keeping the last block computed so
    that overlapping requests moving down the photo (strips with a halo) compute each row
    about once."""

    def __init__(self, source):
        self.source, self.shape = source, source.shape
        self._y0, self._block = 0, None

    def rows(self, y0: int, y1: int) -> np.ndarray:
        y0, y1 = max(0, y0), min(self.shape[0], y1)
        b, b0 = self._block, self._y0
        if b is not None and b0 <= y0 and y1 <= b0 + len(b):
            return b[y0 - b0:y1 - b0]
        if b is not None and b0 <= y0 < b0 + len(b):  # reuse the overlap, compute the rest
            out = np.concatenate([b[y0 - b0:], self.source.rows(b0 + len(b), y1)])
        else:
            out = self.source.rows(y0, y1)
        self._y0, self._block = y0, out
        return out

    def rows_at(self, idx) -> np.ndarray:
        return self.source.rows_at(idx)


def box_blur_rows(photo: np.ndarray, radius: int, passes: int = 3):
    """`imageops.box_blur` of a uint8 photo as float32, bit for bit, yielded a strip at a
    time (`BoxBlurRows`)."""
    return BoxBlurRows(photo, radius, passes)


class _PhotoRows:
    def __init__(self, photo):
        self.photo, self.next = photo, 0

    def take(self, n: int) -> np.ndarray:
        out = self.photo[self.next:self.next + n].astype(_F32)
        self.next += n
        return out


class _BoxPass:
    """One pass of `imageops.box_blur` (axis 0, then axis 1) of a row source, output rows in
    order. The vertical running sums are the definition's float64 ``cumsum`` of the
    edge-padded rows, continued from one block to the next (an accumulation is sequential,
    so the sums are the same numbers); the sums kept span ``2 r + 1`` rows plus a strip,
    float64 x width x channels."""

    def __init__(self, source, n: int, radius: int):
        self.src, self.n, self.r, self.k = source, int(n), int(radius), 2 * int(radius) + 1
        self.blocks: list[tuple[int, np.ndarray]] = []  # (first index, running sums c[first:...])
        self.c_end = 0  # sums c[0 : c_end] computed
        self.pulled, self.last = 0, None  # source rows taken; the last one (bottom padding)
        self.out = 0  # output rows produced

    def _extend(self, upto: int) -> None:
        """Make the running sums available up to index `upto` (inclusive)."""
        if upto < self.c_end:
            return
        t = np.arange(self.c_end, upto + 1)
        xi = np.clip(t - self.r - 1, 0, self.n - 1)  # padded row t is source row xi (edge mode)
        need = int(xi[-1]) + 1
        if need > self.pulled:
            new = self.src.take(need - self.pulled)
            block = new if self.last is None else np.concatenate([self.last[None], new])
            base = 0 if self.last is None else self.pulled - 1
            self.pulled, self.last = need, new[-1]
        else:
            block, base = self.last[None], self.pulled - 1
        pad = block[xi - base].astype(np.float64)
        start = np.zeros_like(pad[:1]) if not self.blocks else self.blocks[-1][1][-1:]
        csum = np.cumsum(np.concatenate([start, pad]), axis=0)[1:]  # c[j] = c[j - 1] + pad[j]
        self.blocks.append((self.c_end, csum))
        self.c_end = upto + 1

    def _sums(self, a: int, b: int) -> np.ndarray:
        parts = [blk[max(a - s, 0):b - s] for s, blk in self.blocks if s < b and s + len(blk) > a]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def take(self, m: int) -> np.ndarray:
        o, k, r = self.out, self.k, self.r
        self._extend(o + m - 1 + k)
        lo, hi = self._sums(o, o + m), self._sums(o + k, o + k + m)
        x = ((hi - lo) / k).astype(_F32)  # the definition's axis-0 step for these rows
        self.out += m
        keep = self.out  # sums below the next output row are never needed again
        while self.blocks and self.blocks[0][0] + len(self.blocks[0][1]) <= keep and len(self.blocks) > 1:
            self.blocks.pop(0)
        w = x.shape[1]  # axis 1: row by row, as the definition
        pad = [(0, 0)] * x.ndim
        pad[1] = (r + 1, r)
        c = np.cumsum(np.pad(x, pad, mode="edge"), axis=1, dtype=np.float64)
        return ((np.take(c, np.arange(k, k + w), axis=1) - np.take(c, np.arange(0, w), axis=1)) / k).astype(_F32)


class BoxBlurRows:
    """`imageops.box_blur(photo.astype(float32), radius, passes)`, bit for bit, a strip at a
    time from the top (``rows(y0, y1)`` with each ``y0`` the previous ``y1``). Memory: per
    pass ``2 radius + 1`` rows of float64 running sums (with the photo's default radius,
    ``min(h, w) / 40``, about 3.6 bytes per photo pixel over three passes)."""

    def __init__(self, photo: np.ndarray, radius: int, passes: int = 3):
        self.photo = np.asarray(photo)[..., :3]
        self.shape = self.photo.shape[:2]
        src = _PhotoRows(self.photo)
        if radius > 0:
            for _ in range(passes):
                src = _BoxPass(src, self.shape[0], radius)
        self.src, self.next = src, 0

    def rows(self, y0: int, y1: int) -> np.ndarray:
        if y0 != self.next:
            raise ValueError(f"BoxBlurRows gives rows in order: asked for {y0}, next is {self.next}")
        self.next = y1
        return self.src.take(y1 - y0)


def background_rows(background, photo: np.ndarray):
    """What `composite` needs of `background` for rows y0..y1 of `photo`, as a function
    ``(y0, y1) -> background`` (strips asked in order from the top): a colour as it is, an
    image resized to the photo (`resize_bilinear` of those rows), "blur" (`BoxBlurRows`)."""
    h, w = np.asarray(photo).shape[:2]
    if isinstance(background, str) and background == "blur":
        blur = BoxBlurRows(photo, imageops.default_blur_radius(h, w))
        return blur.rows
    if isinstance(background, np.ndarray) and background.ndim == 3:
        bg = np.asarray(background)[..., :3]
        if bg.shape[:2] != (h, w):
            return lambda y0, y1: resize_bilinear(bg, h, w, rows=(y0, y1))
        return lambda y0, y1: bg[y0:y1].astype(_F32)
    return lambda y0, y1: background
