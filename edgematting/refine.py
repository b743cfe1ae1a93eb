"""Hair-level cut-outs: automatic trimap, alpha-matting refinement, foreground colours.

Two steps that sit after the model, at the photo's own resolution:

1. **Trimap refinement** (``--refine trimap``). The model's alpha becomes a trimap
   (`make_trimap`: definite background 0, unknown 128, definite foreground 255, the
   format of Adobe's Deep Image Matting set and of every matting tool); an alpha-matting
   solver from `pymatting` (closed-form, KNN or large-kernel, ``method``) solves alpha in
   the unknown region from the photo's colours; the model's alpha is kept everywhere else
   (`refine_alpha`). The solve runs at a bounded resolution (``max_side``) on the crop
   around the unknown region, so a 12 MP photo costs about as much as a 1 MP one.
2. **Foreground colour estimation** (`estimate_foreground`, on by default). A pixel with
   alpha 0.4 at the hair's edge is 60% old background; cut out with the photo's own
   colour it keeps that background's tint (a halo over a new background). The multilevel
   foreground estimation of Germer et al. (2020), as `pymatting.estimate_foreground_ml`,
   solves for the colour of the person alone. It is implemented here in numpy (one
   vectorized Jacobi sweep per iteration instead of pymatting's in-place numba loops), so
   the default `predict --output rgba` needs neither the ``refine`` extra nor numba's
   minutes-long first compilation. Opaque pixels (alpha that writes as 255) keep the
   photo's pixels exactly.

Memory: only the reduced copies (at most ``max_side`` long) are whole; what is at the
photo's size (the alpha read, the trimap and solved alpha enlarged, the colours) is made a
strip of rows at a time (`RefinedAlpha`, `Foreground`, `apply_rows` for predict), bit for
bit the whole-frame result: nothing changes but the memory (see the strip section below).

pymatting (and numba) is the optional ``refine`` extra (``pip install
'edgematting[refine]'``); it is imported only inside `refine_alpha`, so ``import
edgematting`` stays light and a missing extra is a `DependencyError` (exit 7).

The CLI uses `add_refine_arguments` / `refine_config_from_args`; the library API takes a
`RefineConfig`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from .errors import DependencyError, InputError

#: Trimap values (uint8 PNG), as Adobe's Deep Image Matting set and pymatting read them.
TRIMAP_BG, TRIMAP_UNKNOWN, TRIMAP_FG = 0, 128, 255
#: Model alpha strictly between these is "unsure" and always goes into the unknown region,
#: wherever it is (a semi-transparent strand far from the 0.5 contour).
SOFT_LOW, SOFT_HIGH = 0.05, 0.95
#: Solver crop margin around the unknown region, in solve-resolution pixels (the largest
#: window any method looks through: large-kernel's radius).
CROP_MARGIN = 12
#: Large-kernel matting's window radius (pymatting's default); smaller when a crop is tiny.
LKM_RADIUS = 10
#: The `refine` extra's pip command, said by every DependencyError here.
PIP_EXTRA = "pip install 'edgematting[refine]'"


class RefineMode(str, Enum):
    NONE = "none"
    TRIMAP = "trimap"


class RefineMethod(str, Enum):
    """pymatting's solvers: closed-form (Levin et al. 2008), KNN (Chen et al. 2013),
    large-kernel (He et al. 2010)."""

    CLOSED_FORM = "closed-form"
    KNN = "knn"
    LARGE_KERNEL = "large-kernel"


@dataclass(frozen=True)
class RefineConfig:
    """What happens after the model's alpha is at the photo's resolution.

    refine: "none" or "trimap" (solve alpha in the trimap's unknown region).
    method: the solver (`RefineMethod`).
    band: half-width of the unknown band around the model's 0.5 contour, as a fraction of
        the photo's diagonal (so the same at every photo size; 0.02 of a 600x800 photo's
        diagonal is 20 px, of a 4000x3000 one 100 px).
    max_side: the solve runs with the photo's long side at most this many pixels; a larger
        photo is solved downscaled and the solved alpha upsampled into the unknown region.
    foreground: estimate the person's own colours for rgba cut-outs and composites
        (`estimate_foreground`); False keeps the photo's pixels under the alpha.
    save_trimap: predict also writes STEM_trimap.png.
    """

    refine: RefineMode | str = RefineMode.NONE
    method: RefineMethod | str = RefineMethod.CLOSED_FORM
    band: float = 0.02
    max_side: int = 1024
    foreground: bool = True
    save_trimap: bool = False

    def __post_init__(self):
        for name, enum in (("refine", RefineMode), ("method", RefineMethod)):
            v = getattr(self, name)
            try:
                object.__setattr__(self, name, enum(v.value if isinstance(v, Enum) else str(v)))
            except ValueError:
                raise ValueError(f"RefineConfig.{name} must be one of {', '.join(e.value for e in enum)}, "
                                 f"got {v!r}") from None
        if isinstance(self.band, bool) or not isinstance(self.band, (int, float)) or not (0 < self.band < 0.5):
            raise ValueError(f"RefineConfig.band must be a fraction of the diagonal in (0, 0.5), got {self.band!r}")
        if isinstance(self.max_side, bool) or not isinstance(self.max_side, (int, np.integer)) or self.max_side < 32:
            raise ValueError(f"RefineConfig.max_side must be an integer >= 32, got {self.max_side!r}")

    @property
    def enabled(self) -> bool:
        """True when the alpha is refined (``refine == "trimap"``)."""
        return self.refine is RefineMode.TRIMAP

    def describe(self) -> dict:
        """JSON-ready settings (for reports)."""
        return {"refine": self.refine.value, "method": self.method.value, "band": self.band,
                "max_side": self.max_side, "foreground": self.foreground}


# -- trimap ------------------------------------------------------------------------------
def band_pixels(shape, band: float) -> int:
    """The unknown band's half-width in pixels: ``max(1, round(band * diagonal))``."""
    return max(1, int(round(float(band) * math.hypot(shape[0], shape[1]))))


def make_trimap(alpha, band: float = RefineConfig.band) -> np.ndarray:
    """HxW uint8 trimap of an alpha in [0, 1]: 0 background, 128 unknown, 255 foreground.

    Unknown is the union of (1) every pixel within `band_pixels` (Euclidean) of the other
    side of the ``alpha >= 0.5`` mask, i.e. a band of that half-width on both sides of the
    0.5 contour, and (2) every pixel whose alpha is strictly between `SOFT_LOW` and
    `SOFT_HIGH` (the model is unsure there, e.g. a strand). The rest is foreground where
    ``alpha >= 0.5``, background elsewhere. The image border is not a contour (a person
    cut off by the frame gets no band along it); an all-foreground or all-background mask
    has no band.
    """
    a = np.asarray(alpha, np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {a.shape}")
    from scipy import ndimage

    m = a >= 0.5
    unknown = (a > SOFT_LOW) & (a < SOFT_HIGH)
    if m.any() and not m.all():
        w = band_pixels(a.shape, band)
        # edt(m): distance of a foreground pixel to the nearest background pixel, and back
        unknown |= m & (ndimage.distance_transform_edt(m) <= w)
        unknown |= ~m & (ndimage.distance_transform_edt(~m) <= w)
    tri = np.where(m, np.uint8(TRIMAP_FG), np.uint8(TRIMAP_BG)).astype(np.uint8)
    tri[unknown] = TRIMAP_UNKNOWN
    return tri


def _resize(img: np.ndarray, h: int, w: int, resample) -> np.ndarray:
    from PIL import Image

    if img.ndim == 2:
        mode = "F" if img.dtype != np.uint8 else "L"
        return np.asarray(Image.fromarray(img.astype(np.float32) if mode == "F" else img, mode).resize((w, h), resample))
    return np.asarray(Image.fromarray(np.asarray(img, np.uint8)).resize((w, h), resample))


def solve_size(shape, max_side: int) -> tuple[int, int]:
    """(h, w) the solve runs at: the photo's size with its long side cut to `max_side`."""
    from .imageops import bounded_size

    return bounded_size(int(shape[0]), int(shape[1]), int(max_side))


def photo_trimap(alpha, cfg: RefineConfig) -> np.ndarray:
    """The trimap `refine_alpha` uses for this alpha, at the alpha's (photo's) size: made by
    `make_trimap` at the solve resolution and enlarged nearest-neighbour."""
    a = np.asarray(alpha, np.float32)
    a = a[..., 0] if a.ndim == 3 else a
    from .imageops_fast import ArrayRows

    t = RefinedAlpha(ArrayRows(a), None, cfg, solve=False, clip=False)
    return t.trimap_rows(0, a.shape[0])


# -- the photo-size steps a strip at a time ----------------------------------------------
# The solve runs on a reduced copy; what is at the photo's size (the alpha in, the trimap
# enlarged, the solved alpha enlarged, the foreground colours) is made a strip of rows at a
# time, so no photo-size float array is needed. Every step is the full-frame one, bit for
# bit: PIL's resizes run as its own two passes (a horizontal pass is row by row, so it is
# run a strip at a time; the vertical pass of a reduction runs on the narrow intermediate;
# the vertical pass of an enlargement is PIL's own coefficients, computed here), the
# nearest-neighbour enlargement is PIL's own row and column mapping, and the foreground's
# full-resolution Jacobi sweeps reach `n` rows in `n` iterations, so a strip computed with
# that many rows of halo on each side is exact.

#: partial pixels per sub-strip of the full-resolution foreground level (each costs a few
#: hundred bytes while it is computed): a strip of an unsure model's alpha (every pixel
#: partial) is cut into thinner ones
SPARSE_PIXELS = 1 << 19


def _box_reduce(rows, h: int, w: int, small: tuple[int, int], strip: int) -> np.ndarray:
    """PIL's BOX resize of the h x w image given by ``rows(y0, y1)`` (float32 HxW, mode F,
    or uint8 HxWx3, RGB) to `small`, bit for bit: its horizontal pass a strip at a time,
    then its vertical pass on the narrow intermediate, as `ImagingResampleInner` runs them."""
    from PIL import Image

    from .imageops_fast import strips

    hs, ws = small
    parts = []
    for y0, y1 in strips(h, strip):
        x = rows(y0, y1)
        im = Image.fromarray(np.ascontiguousarray(x, np.float32), "F") if x.ndim == 2 else \
            Image.fromarray(np.ascontiguousarray(x, np.uint8))
        parts.append(np.asarray(im.resize((ws, y1 - y0), Image.BOX)))
    mid = np.concatenate(parts)
    im = Image.fromarray(mid, "F") if mid.ndim == 2 else Image.fromarray(mid)
    return np.asarray(im.resize((ws, hs), Image.BOX))


def _nearest_map(n_in: int, n_out: int) -> np.ndarray:
    """The source index of each of `n_out` positions in PIL's NEAREST resize from `n_in`
    (its mapping along one axis does not depend on the other)."""
    from PIL import Image

    idx = Image.fromarray(np.arange(n_in, dtype=np.int32).reshape(n_in, 1), "I")
    return np.asarray(idx.resize((1, n_out), Image.NEAREST), np.int64)[:, 0]


def _pil_bilinear_coeffs(in_size: int, out_size: int):
    """(bounds (out, 2), weights (out, ksize)) of PIL's BILINEAR resample along one axis,
    as its `precompute_coeffs` computes them (double precision, same order)."""
    scale = float(in_size) / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    bounds = np.zeros((out_size, 2), np.int64)
    kk = np.zeros((out_size, ksize), np.float64)
    ss = 1.0 / filterscale
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ww = 0.0
        k = []
        for x in range(xmax):
            t = ((x + xmin) - center + 0.5) * ss
            t = -t if t < 0.0 else t
            wgt = 1.0 - t if t < 1.0 else 0.0
            k.append(wgt)
            ww += wgt
        for x in range(xmax):
            kk[xx, x] = k[x] / ww if ww != 0.0 else k[x]
        bounds[xx] = xmin, xmax
    return bounds, kk


class RefinedAlpha:
    """`refine_alpha`'s alpha (and trimap) at the photo's size, a few rows at a time.

    source: the model's alpha at the photo's size as rows (`imageops_fast.AlphaRows`, or
    `imageops_fast.ArrayRows` of a whole one); photo: HxWx3 uint8. The trimap, crop and
    solve are made here (on the reduced copy); `rows` / `rows_at` give the refined alpha,
    `trimap_rows` the photo-size trimap. ``solve=False``: the trimap only (`photo_trimap`;
    ``clip=False`` makes it from the alpha as given, as `photo_trimap` does).
    """

    def __init__(self, source, photo, cfg: RefineConfig, solve: bool = True, clip: bool = True,
                 strip_pixels: int | None = None):
        from .imageops_fast import strip_height

        self.source, self.cfg, self.clip = source, cfg, clip
        h, w = self.shape = tuple(source.shape)
        self.strip = strip_height(w, strip_pixels)
        self.small = small = solve_size((h, w), cfg.max_side)
        self.same = small == (h, w)
        if self.same:
            self.tri_s = make_trimap(self._alpha(0, h), cfg.band)
            self._ymap = self._xmap = None
            hit = self.tri_s
        else:
            from PIL import Image  # noqa: F401

            a_s = _box_reduce(self._alpha, h, w, small, self.strip)
            self.tri_s = make_trimap(a_s, cfg.band)
            self._ymap, self._xmap = _nearest_map(small[0], h), _nearest_map(small[1], w)
            hit = self.tri_s[np.ix_(np.unique(self._ymap), np.unique(self._xmap))]  # what the enlargement shows
        self._solved = self._mid = None
        unknown = hit == TRIMAP_UNKNOWN
        if not (solve and unknown.any() and not unknown.all()):
            return
        photo = np.asarray(photo)[..., :3]
        if photo.shape[:2] != (h, w):
            raise ValueError(f"alpha {(h, w)} and photo {photo.shape[:2]} differ in size")
        tri_s = self.tri_s
        img_s = photo if self.same else _box_reduce(lambda y0, y1: photo[y0:y1], h, w, small, self.strip)
        ys, xs = np.nonzero(tri_s == TRIMAP_UNKNOWN)
        y0, y1 = max(int(ys.min()) - CROP_MARGIN, 0), min(int(ys.max()) + CROP_MARGIN + 1, small[0])
        x0, x1 = max(int(xs.min()) - CROP_MARGIN, 0), min(int(xs.max()) + CROP_MARGIN + 1, small[1])
        crop_tri = tri_s[y0:y1, x0:x1]
        crop_alpha = None
        if (crop_tri != TRIMAP_UNKNOWN).any():  # something known to solve from
            crop_alpha = _solve(cfg.method, img_s[y0:y1, x0:x1].astype(np.float64) / 255.0,
                                crop_tri.astype(np.float64) / 255.0)
        if crop_alpha is None:
            return
        solved = np.zeros(small, np.float32)
        solved[y0:y1, x0:x1] = crop_alpha
        if self.same:
            self._solved = solved
            return
        from PIL import Image

        # PIL's bilinear enlargement (mode F): its horizontal pass (every reduced row to the
        # photo's width), then its vertical pass row by row (`_solved_rows`)
        self._mid = np.asarray(Image.fromarray(solved, "F").resize((w, small[0]), Image.BILINEAR))
        self._vb, self._vk = _pil_bilinear_coeffs(small[0], h)

    def _alpha(self, y0: int, y1: int) -> np.ndarray:
        a = np.asarray(self.source.rows(y0, y1), np.float32)
        return np.clip(a, 0.0, 1.0) if self.clip else a

    def trimap_rows(self, y0: int, y1: int) -> np.ndarray:
        """uint8 rows of the photo-size trimap (`photo_trimap`)."""
        return self._trimap_at(np.arange(y0, y1))

    def _trimap_at(self, idx) -> np.ndarray:
        if self.same:
            return self.tri_s[idx]
        return self.tri_s[self._ymap[idx]][:, self._xmap]

    def _solved_rows(self, idx) -> np.ndarray:
        if self.same:
            return self._solved[idx]
        bounds, kk = self._vb[idx], self._vk[idx]
        acc = np.zeros((len(idx), self._mid.shape[1]), np.float64)
        for t in range(kk.shape[1]):  # ss += pixel * k[y], y < ymax, in PIL's order
            use = np.flatnonzero(t < bounds[:, 1])
            if use.size == 0:
                break
            src = self._mid[bounds[use, 0] + t].astype(np.float64) * kk[use, t][:, None]
            if use.size == len(idx):
                acc += src
            else:
                acc[use] += src
        return acc.astype(np.float32)

    def _refine(self, a: np.ndarray, idx) -> np.ndarray:
        if self._solved is None and self._mid is None:
            return a
        unknown = self._trimap_at(idx) == TRIMAP_UNKNOWN
        if unknown.any():
            a = np.array(a)  # never write into the source's rows
            a[unknown] = np.clip(self._solved_rows(idx)[unknown], 0.0, 1.0)
        return a

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """float32 rows y0..y1 of the refined alpha."""
        return self._refine(self._alpha(y0, y1), np.arange(y0, y1))

    def rows_at(self, idx) -> np.ndarray:
        idx = np.asarray(idx, np.intp)
        a = np.asarray(self.source.rows_at(idx), np.float32)
        return self._refine(np.clip(a, 0.0, 1.0) if self.clip else a, idx)


# -- alpha refinement --------------------------------------------------------------------
def _pymatting():
    """The pymatting module, or DependencyError (exit 7) saying how to install it."""
    try:
        import pymatting  # noqa: F401  (its first import compiles numba kernels once: minutes)
    except ImportError as e:
        raise DependencyError(
            f"--refine trimap needs pymatting (alpha matting) and numba, which are not installed ({e}). "
            f"Install the extra: {PIP_EXTRA}"
        ) from None
    return pymatting


def _solve(method: RefineMethod, image: np.ndarray, trimap01: np.ndarray) -> np.ndarray:
    import contextlib
    import io

    pm = _pymatting()
    # pymatting's incomplete Cholesky prints a "PERFORMANCE WARNING" to stdout each time it
    # retries with a diagonal shift (routine for matting Laplacians); keep stdout for our output
    with contextlib.redirect_stdout(io.StringIO()):
        return _solve_with(pm, method, image, trimap01)


def _solve_with(pm, method: RefineMethod, image: np.ndarray, trimap01: np.ndarray) -> np.ndarray:
    if method is RefineMethod.CLOSED_FORM:
        return pm.estimate_alpha_cf(image, trimap01)
    if method is RefineMethod.KNN:
        return pm.estimate_alpha_knn(image, trimap01)
    # the large kernel (radius 10, pymatting's default) must fit in the crop
    radius = min(LKM_RADIUS, (min(image.shape[:2]) - 1) // 4)  # its box filters need 4r+1 px
    if radius < 1:
        return None  # a crop under 5 px across: too small for the large kernel; keep the model's alpha
    return pm.estimate_alpha_lkm(image, trimap01, laplacian_kwargs={"radius": radius})


def refine_alpha(rgb, alpha, cfg: RefineConfig | None = None, return_trimap: bool = False):
    """Alpha (HxW float32 in [0, 1], photo size) refined by alpha matting in the trimap's
    unknown region; the model's alpha unchanged in the definite regions.

    rgb: the photo, HxWx3 uint8. alpha: the model's alpha at the photo's size. The photo
    and trimap are shrunk to `solve_size` (box filter), cropped to the unknown region plus
    `CROP_MARGIN`, solved with ``cfg.method``, and the solved alpha is enlarged
    (bilinear) back into the unknown pixels. With ``return_trimap``: ``(alpha, trimap)``,
    the trimap at photo size as `photo_trimap` makes it. DependencyError without pymatting.
    The photo-size steps run a strip at a time (`RefinedAlpha`): beyond the result, memory
    is the reduced copies and one strip.
    """
    from .imageops_fast import ArrayRows, strips

    cfg = cfg if cfg is not None else RefineConfig(refine=RefineMode.TRIMAP)
    photo = np.asarray(rgb)[..., :3]
    a = np.asarray(alpha, np.float32)
    a = a[..., 0] if a.ndim == 3 else a
    if a.shape != photo.shape[:2]:
        raise ValueError(f"alpha {a.shape} and photo {photo.shape[:2]} differ in size")
    r = RefinedAlpha(ArrayRows(a), photo, cfg)
    h, w = a.shape
    out = np.empty((h, w), np.float32)
    tri = np.empty((h, w), np.uint8) if return_trimap else None
    for y0, y1 in strips(h, r.strip):
        out[y0:y1] = r.rows(y0, y1)
        if return_trimap:
            tri[y0:y1] = r.trimap_rows(y0, y1)
    return (out, tri) if return_trimap else out


# -- foreground colours ------------------------------------------------------------------
_OPAQUE, _CLEAR = np.float32(254.5 / 255.0), np.float32(0.5 / 255.0)  # alpha that writes as 255 / 0


def _nearest(src: np.ndarray, h: int, w: int) -> np.ndarray:
    """pymatting's nearest resize: ``src[y * h_src // h, x * w_src // w]``."""
    if src.shape[:2] == (h, w):
        return src
    ys = np.minimum(np.arange(h) * src.shape[0] // h, src.shape[0] - 1)
    xs = np.minimum(np.arange(w) * src.shape[1] // w, src.shape[1] - 1)
    return src[np.ix_(ys, xs)]


def _alpha_at(alpha, ys, xs) -> np.ndarray:
    """``alpha[np.ix_(ys, xs)]`` of an HxW array or of rows (``rows_at``), a band of rows at a time."""
    if isinstance(alpha, np.ndarray):
        return alpha[np.ix_(ys, xs)]
    from .imageops_fast import strip_height

    n = strip_height(alpha.shape[1])
    return np.concatenate([np.asarray(alpha.rows_at(ys[i:i + n]))[:, xs] for i in range(0, len(ys), n)]) \
        if len(ys) else np.zeros((0, len(xs)), np.float32)


def _nearest_alpha(alpha, h: int, w: int) -> np.ndarray:
    """`_nearest` of an HxW array or of rows (``rows_at``)."""
    if tuple(alpha.shape[:2]) == (h, w):
        return alpha if isinstance(alpha, np.ndarray) else _alpha_at(alpha, np.arange(h), np.arange(w))
    ys = np.minimum(np.arange(h) * alpha.shape[0] // h, alpha.shape[0] - 1)
    xs = np.minimum(np.arange(w) * alpha.shape[1] // w, alpha.shape[1] - 1)
    return _alpha_at(alpha, ys, xs)


def _shifts(x: np.ndarray):
    """The 4 neighbours of every pixel (up, down, left, right), edges clamped."""
    p = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2), mode="edge")
    return p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]


def _to01(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


def _levels_left(shape, max_dense) -> int:
    """The third value `_ml_levels` returns for an alpha of this shape: how many levels are
    above `max_dense` (0: every level dense)."""
    h0, w0 = int(shape[0]), int(shape[1])
    n_levels = max(1, int(math.ceil(math.log2(max(w0, h0, 2)))))
    for level in range(n_levels + 1):
        if max_dense is not None and max(int(round(h0 ** (level / n_levels))),
                                         int(round(w0 ** (level / n_levels)))) > max_dense:
            return n_levels + 1 - level
    return 0


def _ml_levels(image, alpha, regularization, n_small, n_big, small_size, gradient_weight, max_dense):
    """The dense levels of the multilevel estimation: (F, B) at the last level whose long
    side is at most `max_dense` (every level when None), and how many levels remain."""
    h0, w0 = alpha.shape
    depth = image.shape[2]
    step = max(1, int(math.sqrt(h0 * w0 / 2**20)))  # the start colours from <= ~1 MP samples
    a_s, i_s = _alpha_at(alpha, np.arange(0, h0, step), np.arange(0, w0, step)), _to01(image[::step, ::step])
    fg_sel, bg_sel = a_s > 0.9, a_s < 0.1
    F = (i_s[fg_sel].sum(0) / (fg_sel.sum() + 1e-5)).astype(np.float32).reshape(1, 1, depth)
    B = (i_s[bg_sel].sum(0) / (bg_sel.sum() + 1e-5)).astype(np.float32).reshape(1, 1, depth)
    n_levels = max(1, int(math.ceil(math.log2(max(w0, h0, 2)))))
    reg, gw = np.float32(regularization), np.float32(gradient_weight)
    for level in range(n_levels + 1):
        w = int(round(w0 ** (level / n_levels)))
        h = int(round(h0 ** (level / n_levels)))
        if max_dense is not None and max(h, w) > max_dense:
            return F, B, n_levels + 1 - level
        img = _to01(_nearest(image, h, w))
        a = _nearest_alpha(alpha, h, w)
        F, B = _nearest(F, h, w), _nearest(B, h, w)
        n_iter = n_small if (w <= small_size and h <= small_size) else n_big
        if n_iter == 0:
            continue
        one_minus = np.float32(1.0) - a
        da = [reg + gw * np.abs(a - n) for n in _shifts(a)]
        dsum = da[0] + da[1] + da[2] + da[3]
        a00 = a * a + dsum
        a11 = one_minus * one_minus + dsum
        a01 = a * one_minus
        inv_det = np.float32(1.0) / (a00 * a11 - a01 * a01)
        b00, b01, b11 = (inv_det * a11)[..., None], (-inv_det * a01)[..., None], (inv_det * a00)[..., None]
        ai, bi = a[..., None] * img, one_minus[..., None] * img
        da3 = [d[..., None] for d in da]
        for _ in range(n_iter):
            sf, sb = ai.copy(), bi.copy()
            for d, fn, bn in zip(da3, _shifts(F), _shifts(B)):
                sf += d * fn
                sb += d * bn
            F = np.clip(b00 * sf + b01 * sb, 0.0, 1.0)
            B = np.clip(b01 * sf + b11 * sb, 0.0, 1.0)
    return F, B, 0


def _ml_sparse_top(image, alpha, F_lo, B_lo, n_iter, regularization, gradient_weight, y_offset: int = 0,
                   full_h: int | None = None):
    """The full-resolution level, updating only the visibly partial pixels.

    Returns (ys, xs, F, B): their coordinates and colours. A neighbour that is not partial
    takes F = the photo where alpha writes as 255 and B = the photo where it writes as 0
    (what the full update converges to there), and otherwise the coarse level's value
    (nearest), as the dense scheme starts each level.

    `image` and `alpha` may be a band of rows of the photo, starting at row `y_offset` of a
    photo `full_h` rows high: each iteration reads only the 4 neighbours' previous values,
    so rows at least `n_iter` rows inside a band's cut edges get the whole photo's values.
    """
    h, w = alpha.shape
    full_h = h if full_h is None else int(full_h)
    hl, wl = F_lo.shape[:2]
    ys, xs = np.nonzero((alpha > _CLEAR) & (alpha < _OPAQUE))
    if ys.size == 0:
        return ys, xs, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    n = ys.size
    idx = ys * w + xs
    ai = alpha[ys, xs]
    reg, gw = np.float32(regularization), np.float32(gradient_weight)
    one_minus = np.float32(1.0) - ai
    # per neighbour: its weight, and where its value is read from: row q of F (a partial
    # neighbour) or, past F's n rows, its fixed value (photo or coarse level), stored once
    da, where, fixed_f, fixed_b = [], [], [], []
    n_fixed = n
    for k in range(4):
        ny = (np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1), ys, ys)[k]
        nx = (xs, xs, np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1))[k]
        an = alpha[ny, nx]
        da.append((reg + gw * np.abs(ai - an))[:, None])
        flat = ny * w + nx
        q = np.minimum(np.searchsorted(idx, flat), n - 1)
        out = np.flatnonzero(idx[q] != flat)  # not partial: a fixed value
        del flat
        q = q.astype(np.int32 if n + 4 * n < 2**31 else np.int64)
        q[out] = n_fixed + np.arange(out.size)
        n_fixed += out.size
        where.append(q)
        ny, nx, an = ny[out], nx[out], an[out]
        coarse = (np.minimum((ny + y_offset) * hl // full_h, hl - 1), np.minimum(nx * wl // w, wl - 1))
        photo = _to01(image[ny, nx])
        fixed_f.append(np.where((an >= _OPAQUE)[:, None], photo, F_lo[coarse]))
        fixed_b.append(np.where((an <= _CLEAR)[:, None], photo, B_lo[coarse]))
    del idx
    dsum = da[0] + da[1] + da[2] + da[3]
    a00 = ai[:, None] * ai[:, None] + dsum
    a11 = one_minus[:, None] * one_minus[:, None] + dsum
    a01 = (ai * one_minus)[:, None]
    del dsum
    inv_det = np.float32(1.0) / (a00 * a11 - a01 * a01)
    b00, b01, b11 = inv_det * a11, -inv_det * a01, inv_det * a00
    del a00, a11, a01, inv_det
    im = _to01(image[ys, xs])
    fa, ba = ai[:, None] * im, one_minus[:, None] * im
    del im
    hl_idx = (np.minimum((ys + y_offset) * hl // full_h, hl - 1), np.minimum(xs * wl // w, wl - 1))
    F, B = F_lo[hl_idx].astype(np.float32), B_lo[hl_idx].astype(np.float32)
    Fx = np.concatenate([F] + fixed_f)  # rows n.. hold the fixed values, never overwritten
    Bx = np.concatenate([B] + fixed_b)
    del fixed_f, fixed_b
    for _ in range(n_iter):
        Fx[:n], Bx[:n] = F, B
        sf, sb = fa.copy(), ba.copy()
        for d, q in zip(da, where):  # the neighbour's value, as np.where(partial, F[p], fixed)
            sf += d * Fx[q]
            sb += d * Bx[q]
        F = np.clip(b00 * sf + b01 * sb, 0.0, 1.0)
        B = np.clip(b01 * sf + b11 * sb, 0.0, 1.0)
    return ys, xs, F, B


def estimate_foreground_ml(image, alpha, regularization: float = 1e-5, n_small_iterations: int = 10,
                           n_big_iterations: int = 2, small_size: int = 32, gradient_weight: float = 1.0):
    """Multilevel foreground (and background) estimation (Germer, Uelwer, Conrad, Harmeling
    2020), numpy: `image` HxWx3 float in [0, 1] (or uint8), `alpha` HxW -> (F, B), float32
    HxWx3 in [0, 1].

    The same coarse-to-fine scheme and per-pixel 2x2 least-squares update as
    `pymatting.estimate_foreground_ml` (levels ``round(size ** (i / n))``, nearest
    resizes, mean colours of alpha > 0.9 / < 0.1 as the 1x1 start, 4 neighbours with
    weight ``regularization + gradient_weight * |delta alpha|``, result clipped to
    [0, 1]); each iteration updates all pixels at once from the previous iterate (Jacobi;
    pymatting updates in place).
    """
    F, B, _ = _ml_levels(np.asarray(image), np.asarray(alpha, np.float32), regularization, n_small_iterations,
                         n_big_iterations, small_size, gradient_weight, None)
    return F, B


def estimate_foreground(rgb, alpha, cfg: RefineConfig | None = None) -> np.ndarray:
    """The person's own colours: HxWx3 uint8 to use in place of the photo under `alpha`.

    Only pixels whose alpha writes as neither 0 nor 255 (``round(255 * alpha)``) change;
    they get the multilevel estimate (`estimate_foreground_ml`) rounded to uint8. Every
    other pixel keeps the photo's value exactly. With ``cfg.foreground`` False: the photo.

    Bounded cost: the levels run dense up to a long side of ``cfg.max_side``; a larger
    photo then gets one full-resolution level over its partial pixels only (a few percent
    of a 12 MP portrait), with 2 iterations per level skipped, a strip of rows at a time
    (`Foreground`).
    """
    from .imageops_fast import ArrayRows, strips

    cfg = cfg if cfg is not None else RefineConfig()
    photo = np.asarray(rgb, np.uint8)[..., :3]
    if not cfg.foreground:
        return photo
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    a = a[..., 0] if a.ndim == 3 else a
    if a.shape != photo.shape[:2]:
        raise ValueError(f"alpha {a.shape} and photo {photo.shape[:2]} differ in size")
    fg = Foreground(ArrayRows(a), photo, cfg)
    out = np.empty_like(photo)
    for y0, y1 in strips(a.shape[0], fg.strip):
        out[y0:y1] = fg.rows(y0, y1)
    return out


class Foreground:
    """`estimate_foreground`'s colours a strip of rows at a time.

    source: the alpha at the photo's size as rows (``rows(y0, y1)``, ``rows_at(idx)``,
    ``shape``: `imageops_fast.AlphaRows`, `RefinedAlpha`...); photo: HxWx3 uint8. The dense
    levels (long side at most ``cfg.max_side``) are made once, when a first strip has a
    partial pixel, from rows sampled out of `source`; the full-resolution level then runs
    on each strip with ``n_iter`` rows of halo on both sides (exact: see `_ml_sparse_top`),
    in sub-strips of at most `SPARSE_PIXELS` partial pixels.
    """

    N_BIG = 2

    def __init__(self, source, photo, cfg: RefineConfig | None = None, strip_pixels: int | None = None):
        from .imageops_fast import RowCache, strip_height

        self.cfg = cfg if cfg is not None else RefineConfig()
        self.photo = np.asarray(photo, np.uint8)[..., :3]
        self.shape = tuple(source.shape)
        if self.photo.shape[:2] != self.shape:
            raise ValueError(f"alpha {self.shape} and photo {self.photo.shape[:2]} differ in size")
        self.source = source if isinstance(source, RowCache) else RowCache(source)
        self.strip = strip_height(self.shape[1], strip_pixels)
        self._levels = None

    def _alpha(self, y0: int, y1: int) -> np.ndarray:
        return np.clip(np.asarray(self.source.rows(y0, y1), np.float32), 0.0, 1.0)

    def levels(self):
        """(F, B, levels left) of the dense levels (`_ml_levels`), made once."""
        if self._levels is None:
            src = _Clipped(self.source)
            self._levels = _ml_levels(self.photo, src, 1e-5, 10, self.N_BIG, 32, 1.0, self.cfg.max_side)
        return self._levels

    def rows(self, y0: int, y1: int) -> np.ndarray:
        """uint8 (y1 - y0, W, 3): the colours of rows y0..y1 (the photo's where not partial)."""
        from .imageops import round_to_uint8

        out = self.photo[y0:y1].copy()
        if not self.cfg.foreground:
            return out
        h = self.shape[0]
        left = _levels_left(self.shape, self.cfg.max_side)
        n_iter = self.N_BIG * left
        pad = n_iter + 1 if left else 0  # rows of halo: exact rows (see `_ml_sparse_top`)
        a_win_y0 = max(0, y0 - pad)
        a_win = self._alpha(a_win_y0, min(h, y1 + pad))
        a = a_win[y0 - a_win_y0:y1 - a_win_y0]
        partial = (a > _CLEAR) & (a < _OPAQUE)
        if not partial.any():
            return out
        F, B, left = self.levels()
        if left == 0:  # every level dense: F is at the photo's size
            out[partial] = round_to_uint8(F[y0:y1][partial] * np.float32(255.0))
            return out
        per_row = np.count_nonzero((a_win > _CLEAR) & (a_win < _OPAQUE), axis=1)
        s0 = y0
        while s0 < y1:  # sub-strips of at most SPARSE_PIXELS partial pixels (halo included)
            s1 = s0 + 1
            w0, w1 = max(0, s0 - pad), min(h, s1 + pad)
            count = int(per_row[w0 - a_win_y0:w1 - a_win_y0].sum())
            while s1 < y1:
                n1 = min(h, s1 + 1 + pad)
                more = int(per_row[w1 - a_win_y0:n1 - a_win_y0].sum())
                if count + more > SPARSE_PIXELS:
                    break
                s1, w1, count = s1 + 1, n1, count + more
            ys, xs, Fp, _ = _ml_sparse_top(self.photo[w0:w1], a_win[w0 - a_win_y0:w1 - a_win_y0], F, B, n_iter,
                                           1e-5, 1.0, y_offset=w0, full_h=h)
            keep = (ys + w0 >= s0) & (ys + w0 < s1)
            out[ys[keep] + w0 - y0, xs[keep]] = round_to_uint8(Fp[keep] * np.float32(255.0))
            s0 = s1
        return out


class _Clipped:
    """Rows of a source clipped to [0, 1] (as `estimate_foreground` clips its alpha)."""

    def __init__(self, source):
        self.source, self.shape = source, source.shape

    def rows_at(self, idx) -> np.ndarray:
        return np.clip(np.asarray(self.source.rows_at(idx), np.float32), 0.0, 1.0)


# -- command line ------------------------------------------------------------------------
def add_refine_arguments(parser, cutouts: bool = True) -> None:
    """--refine, --refine-method, --trimap-band, --refine-max-side; with `cutouts` (predict)
    also --save-trimap and --foreground-estimation/--no-foreground-estimation."""
    d = RefineConfig()
    g = parser.add_argument_group("alpha-matting refinement" + (" and cut-out colours" if cutouts else ""))
    g.add_argument("--refine", default=None, choices=[m.value for m in RefineMode],
                   help="trimap: turn the model's alpha into a trimap (definite background / unknown band / "
                   "definite foreground) and solve alpha in the unknown band by alpha matting from the photo's "
                   f"colours, keeping the model's alpha elsewhere; needs `{PIP_EXTRA}` (default: none)")
    g.add_argument("--refine-method", default=None, choices=[m.value for m in RefineMethod],
                   help=f"matting solver for --refine trimap (pymatting): closed-form (Levin et al.), knn "
                   f"(Chen et al.) or large-kernel (He et al.) (default: {d.method.value})")
    g.add_argument("--trimap-band", type=float, default=None, metavar="F",
                   help="half-width of the trimap's unknown band around the model's 0.5 contour, as a fraction "
                   f"of the photo's diagonal (default: {d.band}; 0.02 is 20 px on a 600x800 photo)")
    g.add_argument("--refine-max-side", type=int, default=None, metavar="PX",
                   help="solve at most at this long side; larger photos are solved downscaled and the solved "
                   "alpha enlarged into the band" + ("; foreground estimation runs dense up to this side, then on "
                   "the partial pixels only" if cutouts else "") + f" (default: {d.max_side})")
    if cutouts:
        g.add_argument("--save-trimap", action="store_true",
                       help="also write STEM_trimap.png (0 background, 128 unknown, 255 foreground), the trimap "
                       "--refine trimap solves (made from the model's alpha with or without --refine)")
        g.add_argument("--foreground-estimation", dest="foreground_estimation", default=None,
                       action="store_true",
                       help="rgba and composite: estimate the person's own colours where alpha is partial "
                       "(multilevel foreground estimation), so soft edges lose the old background's tint "
                       "(default: on)")
        g.add_argument("--no-foreground-estimation", dest="foreground_estimation", action="store_false",
                       help="rgba and composite: keep the photo's own pixels under the alpha")


def refine_config_from_args(args) -> RefineConfig:
    """The `RefineConfig` of parsed arguments; InputError for a bad value or for a setting
    that does nothing with the others (e.g. --refine-method without --refine trimap)."""
    refine = args.refine or RefineMode.NONE.value
    trimap = refine == RefineMode.TRIMAP.value
    save_trimap = bool(getattr(args, "save_trimap", False))
    cutouts = hasattr(args, "foreground_estimation")  # predict
    fg = getattr(args, "foreground_estimation", None)
    colours = cutouts and getattr(args, "output", "rgba") != "alpha"
    if fg is not None and not colours:
        raise InputError("--foreground-estimation/--no-foreground-estimation apply to --output rgba or "
                         "composite, not --output alpha (a matte has no colours).")
    # each tuning flag must change something, or it is an error (never ignored silently)
    unused = [flag for flag, value, used in (
        ("--refine-method", args.refine_method, trimap),
        ("--trimap-band", args.trimap_band, trimap or save_trimap),
        ("--refine-max-side", args.refine_max_side, trimap or save_trimap or (colours and fg is not False)),
    ) if value is not None and not used]
    if unused:
        also = " (or --save-trimap)" if cutouts and "--refine-method" not in unused else ""
        raise InputError(f"{', '.join(unused)} appl{'ies' if len(unused) == 1 else 'y'} to --refine trimap{also}; "
                         "add --refine trimap or drop " + ("it" if len(unused) == 1 else "them") + ".")
    d = RefineConfig()
    try:
        return RefineConfig(
            refine=refine,
            method=args.refine_method or d.method,
            band=d.band if args.trimap_band is None else args.trimap_band,
            max_side=d.max_side if args.refine_max_side is None else args.refine_max_side,
            foreground=d.foreground if fg is None else bool(fg),
            save_trimap=save_trimap,
        )
    except ValueError as e:
        msg = str(e).replace("RefineConfig.band", "--trimap-band").replace("RefineConfig.max_side", "--refine-max-side")
        raise InputError(msg) from None


def check_available(cfg: RefineConfig) -> None:
    """DependencyError (exit 7) now, before any model is loaded or file written, when
    `cfg` needs pymatting and it is missing. Cheap: looks the package up, imports nothing."""
    if cfg.enabled:
        import importlib.util

        missing = [m for m in ("pymatting", "numba") if importlib.util.find_spec(m) is None]
        if missing:
            raise DependencyError(f"--refine trimap needs {' and '.join(missing)}, not installed. "
                                  f"Install the extra: {PIP_EXTRA}")


# -- the photo pipeline's hook -------------------------------------------------------------
def apply(rgb, alpha, cfg: RefineConfig, output: str = "rgba", stem_path=None):
    """What predict does after the alpha is at photo size: ``(alpha, foreground)``.

    alpha: refined when ``cfg.enabled``; foreground: `estimate_foreground` for the rgba and
    composite outputs, the photo otherwise. With ``cfg.save_trimap`` the trimap is written
    to ``{stem_path}_trimap.png``.
    """
    trimap = None
    if cfg.enabled:
        alpha, trimap = refine_alpha(rgb, alpha, cfg, return_trimap=True)
    elif cfg.save_trimap:
        trimap = photo_trimap(alpha, cfg)
    if cfg.save_trimap and stem_path is not None:
        from pathlib import Path

        from .data.io import write_png

        p = Path(stem_path)
        write_png(p.with_name(p.name + "_trimap.png"), trimap)
    fg = estimate_foreground(rgb, alpha, cfg) if output in ("rgba", "composite") else np.asarray(rgb)
    return alpha, fg


def apply_rows(rgb, alpha_rows, cfg: RefineConfig, output: str = "rgba", stem_path=None):
    """`apply` a strip at a time: ``(alpha rows, foreground rows or None)``.

    alpha_rows: the model's alpha at the photo's size as rows (`imageops_fast.AlphaRows`).
    Returns the refined alpha as rows (`RefinedAlpha`; `alpha_rows` itself without
    refinement) and, for rgba and composite with ``cfg.foreground``, a `Foreground` whose
    ``rows(y0, y1)`` are the colours `estimate_foreground` gives (None: the photo's own).
    The trimap (``cfg.save_trimap``) is written here, built a strip at a time. Bit for bit
    what `apply` computes on the whole frame.
    """
    from .imageops_fast import RowCache, strips

    photo = np.asarray(rgb)[..., :3]
    src, trimap = alpha_rows, None
    if cfg.enabled:
        src = trimap = RefinedAlpha(alpha_rows, photo, cfg)
    elif cfg.save_trimap:
        trimap = RefinedAlpha(alpha_rows, photo, cfg, solve=False, clip=False)
    if cfg.save_trimap and stem_path is not None:
        from pathlib import Path

        from PIL import Image

        from .data.io import write_pil_png

        h, w = trimap.shape
        im = Image.new("L", (w, h))
        for y0, y1 in strips(h, trimap.strip):
            im.paste(Image.fromarray(np.ascontiguousarray(trimap.trimap_rows(y0, y1)), "L"), (0, y0))
        p = Path(stem_path)
        write_pil_png(p.with_name(p.name + "_trimap.png"), im)
        del im
    src = RowCache(src)
    fg = Foreground(src, photo, cfg) if output in ("rgba", "composite") and cfg.foreground else None
    return src, fg
