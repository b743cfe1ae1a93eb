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
    return _trimaps(a, solve_size(a.shape, cfg.max_side), cfg.band)[1]


def _trimaps(a: np.ndarray, small: tuple[int, int], band: float):
    """(trimap at the solve size, the same at the photo's size)."""
    from PIL import Image

    h, w = a.shape
    if small == (h, w):
        tri = make_trimap(a, band)
        return tri, tri
    tri = make_trimap(_resize(a, small[0], small[1], Image.BOX), band)
    return tri, _resize(tri, h, w, Image.NEAREST)


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
    """
    cfg = cfg if cfg is not None else RefineConfig(refine=RefineMode.TRIMAP)
    photo = np.asarray(rgb)[..., :3]
    a = np.asarray(alpha, np.float32)
    a = a[..., 0] if a.ndim == 3 else a
    if a.shape != photo.shape[:2]:
        raise ValueError(f"alpha {a.shape} and photo {photo.shape[:2]} differ in size")
    a = np.clip(a, 0.0, 1.0)
    h, w = a.shape
    small = solve_size(a.shape, cfg.max_side)
    tri_s, tri_full = _trimaps(a, small, cfg.band)
    unknown_full = tri_full == TRIMAP_UNKNOWN
    out = a.copy()
    if unknown_full.any() and not unknown_full.all():
        from PIL import Image

        img_s = photo if small == (h, w) else _resize(photo, small[0], small[1], Image.BOX)
        ys, xs = np.nonzero(tri_s == TRIMAP_UNKNOWN)
        y0, y1 = max(int(ys.min()) - CROP_MARGIN, 0), min(int(ys.max()) + CROP_MARGIN + 1, small[0])
        x0, x1 = max(int(xs.min()) - CROP_MARGIN, 0), min(int(xs.max()) + CROP_MARGIN + 1, small[1])
        crop_tri = tri_s[y0:y1, x0:x1]
        crop_alpha = None
        if (crop_tri != TRIMAP_UNKNOWN).any():  # something known to solve from
            crop_alpha = _solve(cfg.method, img_s[y0:y1, x0:x1].astype(np.float64) / 255.0,
                                crop_tri.astype(np.float64) / 255.0)
        if crop_alpha is not None:
            solved = np.zeros(small, np.float32)
            solved[y0:y1, x0:x1] = crop_alpha
            if small != (h, w):
                # only the crop's rows/columns matter; enlarging the whole plane keeps the
                # mapping identical to a plain resize
                solved = _resize(solved, h, w, Image.BILINEAR)
            out[unknown_full] = np.clip(solved[unknown_full], 0.0, 1.0)
    return (out, tri_full) if return_trimap else out


# -- foreground colours ------------------------------------------------------------------
_OPAQUE, _CLEAR = np.float32(254.5 / 255.0), np.float32(0.5 / 255.0)  # alpha that writes as 255 / 0


def _nearest(src: np.ndarray, h: int, w: int) -> np.ndarray:
    """pymatting's nearest resize: ``src[y * h_src // h, x * w_src // w]``."""
    if src.shape[:2] == (h, w):
        return src
    ys = np.minimum(np.arange(h) * src.shape[0] // h, src.shape[0] - 1)
    xs = np.minimum(np.arange(w) * src.shape[1] // w, src.shape[1] - 1)
    return src[np.ix_(ys, xs)]


def _shifts(x: np.ndarray):
    """The 4 neighbours of every pixel (up, down, left, right), edges clamped."""
    p = np.pad(x, [(1, 1), (1, 1)] + [(0, 0)] * (x.ndim - 2), mode="edge")
    return p[:-2, 1:-1], p[2:, 1:-1], p[1:-1, :-2], p[1:-1, 2:]


def _to01(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / np.float32(255.0) if x.dtype == np.uint8 else x.astype(np.float32, copy=False)


def _ml_levels(image, alpha, regularization, n_small, n_big, small_size, gradient_weight, max_dense):
    """The dense levels of the multilevel estimation: (F, B) at the last level whose long
    side is at most `max_dense` (every level when None), and how many levels remain."""
    h0, w0 = alpha.shape
    depth = image.shape[2]
    step = max(1, int(math.sqrt(h0 * w0 / 2**20)))  # the start colours from <= ~1 MP samples
    a_s, i_s = alpha[::step, ::step], _to01(image[::step, ::step])
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
        a = _nearest(alpha, h, w)
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


def _ml_sparse_top(image, alpha, F_lo, B_lo, n_iter, regularization, gradient_weight):
    """The full-resolution level, updating only the visibly partial pixels.

    Returns (ys, xs, F, B): their coordinates and colours. A neighbour that is not partial
    takes F = the photo where alpha writes as 255 and B = the photo where it writes as 0
    (what the full update converges to there), and otherwise the coarse level's value
    (nearest), as the dense scheme starts each level.
    """
    h, w = alpha.shape
    hl, wl = F_lo.shape[:2]
    ys, xs = np.nonzero((alpha > _CLEAR) & (alpha < _OPAQUE))
    if ys.size == 0:
        return ys, xs, np.zeros((0, 3), np.float32), np.zeros((0, 3), np.float32)
    idx = ys * w + xs
    nb_y = [np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1), ys, ys]
    nb_x = [xs, xs, np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1)]
    ai = alpha[ys, xs]
    reg, gw = np.float32(regularization), np.float32(gradient_weight)
    one_minus = np.float32(1.0) - ai
    da, pos, fixed_f, fixed_b = [], [], [], []
    for ny, nx in zip(nb_y, nb_x):
        an = alpha[ny, nx]
        da.append((reg + gw * np.abs(ai - an))[:, None])
        k = np.searchsorted(idx, ny * w + nx)
        k = np.minimum(k, idx.size - 1)
        is_partial = idx[k] == ny * w + nx
        pos.append(np.where(is_partial, k, -1))
        coarse = (np.minimum(ny * hl // h, hl - 1), np.minimum(nx * wl // w, wl - 1))
        photo = _to01(image[ny, nx])
        fixed_f.append(np.where((an >= _OPAQUE)[:, None], photo, F_lo[coarse]))
        fixed_b.append(np.where((an <= _CLEAR)[:, None], photo, B_lo[coarse]))
    dsum = da[0] + da[1] + da[2] + da[3]
    a00 = ai[:, None] * ai[:, None] + dsum
    a11 = one_minus[:, None] * one_minus[:, None] + dsum
    a01 = (ai * one_minus)[:, None]
    inv_det = np.float32(1.0) / (a00 * a11 - a01 * a01)
    b00, b01, b11 = inv_det * a11, -inv_det * a01, inv_det * a00
    im = _to01(image[ys, xs])
    fa, ba = ai[:, None] * im, one_minus[:, None] * im
    hl_idx = (np.minimum(ys * hl // h, hl - 1), np.minimum(xs * wl // w, wl - 1))
    F, B = F_lo[hl_idx].astype(np.float32), B_lo[hl_idx].astype(np.float32)
    for _ in range(n_iter):
        sf, sb = fa.copy(), ba.copy()
        for d, p, ff, fb in zip(da, pos, fixed_f, fixed_b):
            inside = (p >= 0)[:, None]
            sf += d * np.where(inside, F[p], ff)
            sb += d * np.where(inside, B[p], fb)
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
    of a 12 MP portrait), with 2 iterations per level skipped.
    """
    cfg = cfg if cfg is not None else RefineConfig()
    photo = np.asarray(rgb, np.uint8)[..., :3]
    if not cfg.foreground:
        return photo
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    a = a[..., 0] if a.ndim == 3 else a
    if a.shape != photo.shape[:2]:
        raise ValueError(f"alpha {a.shape} and photo {photo.shape[:2]} differ in size")
    from .imageops import round_to_uint8

    partial = (a > _CLEAR) & (a < _OPAQUE)
    out = photo.copy()
    if not partial.any():
        return out
    n_big = 2
    F, B, left = _ml_levels(photo, a, 1e-5, 10, n_big, 32, 1.0, cfg.max_side)
    if left == 0:
        out[partial] = round_to_uint8(F[partial] * np.float32(255.0))
    else:
        ys, xs, Fp, _ = _ml_sparse_top(photo, a, F, B, n_big * left, 1e-5, 1.0)
        out[ys, xs] = round_to_uint8(Fp * np.float32(255.0))
    return out


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
