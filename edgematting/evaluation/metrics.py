"""Per-image segmentation and matting metrics (numpy + scipy only).

Every function takes a predicted and a ground-truth alpha, float in [0, 1], shape (H, W)
(an (H, W, 1) array is accepted and squeezed). Values are computed in float64.

Segmentation (on masks thresholded with ``alpha >= threshold``):

* :func:`iou` -- person (foreground) intersection over union; two empty masks give 1.0.
* :func:`boundary_f` -- the DAVIS boundary F-measure (Perazzi et al., CVPR 2016; the
  ``f_measure`` of the DAVIS evaluation code). A mask's boundary is its foreground pixels
  that have a 4-neighbour in the background (the image border is not a boundary). A
  predicted boundary pixel is a hit when a ground-truth boundary pixel lies within
  ``tolerance_px`` (Euclidean distance, i.e. dilation by a disk, as DAVIS does); recall is
  the same the other way round; F = 2PR/(P+R). Default tolerance, as in the DAVIS code:
  ``ceil(0.008 * image diagonal)`` pixels (at least 1). Empty-boundary cases follow DAVIS:
  both empty -> 1.0; only one empty -> 0.0.

Matting, after Deep Image Matting (Xu et al., CVPR 2017) and its official MATLAB
evaluation code (``compute_sad_loss.m`` etc.), with alpha in [0, 1] (the DIM code works on
0..255 images divided by 255, so the numbers are on the same scale):

* :func:`sad` -- ``sum |p - g| / 1000`` over the region.
* :func:`mse` -- ``mean (p - g)^2`` over the region (not scaled; papers often print
  MSE x 1e3).
* :func:`mad` -- ``mean |p - g|`` over the region.
* :func:`grad` -- ``sum (|grad p| - |grad g|)^2 / 1000`` over the region. Gradients are
  the DIM ``gaussgradient.m`` filters: a (2h+1)^2 kernel ``hx[i, j] = G(i) * G'(j)`` (G a
  Gaussian of ``sigma``, G' its first derivative, offsets -h..h, ``h = ceil(sigma *
  sqrt(-2 ln(sqrt(2 pi) sigma 0.01)))``, 4 for sigma 1.4), divided by its L2 (Frobenius)
  norm, ``hy = hx.T``, applied as a convolution with replicated edges. The filter is
  computed on the whole image and the squared differences are summed over the region.
  One deliberate difference: ``compute_gradient_loss.m`` first calls ``mat2gray`` (which
  stretches each map's own min..max to 0..1); we use alpha in [0, 1] as it is, as the
  widely used Python port (GCA-Matting's ``evaluate.py``) does. The two agree whenever
  an alpha spans the full 0..1 range and differ otherwise (mat2gray would, e.g., make a
  prediction that is a scaled copy of the ground truth look perfect).
* :func:`conn` -- connectivity error as ``compute_connectivity_error.m``: for thresholds
  ``t_i = i / n`` (n = 1/step, i = 1..n), omega_i is the largest 4-connected component of
  ``(p >= t_i) & (g >= t_i)``; ``l[x]`` is ``t_(i-1)`` for the first i whose omega_i does
  not contain x (1.0 if every omega does); ``d = alpha - l``; ``phi = 1 - d * (d >= 0.15)``;
  the error is ``sum |phi_p - phi_g| / 1000`` over the region (computed on the whole
  image, summed over the region, as DIM). ``i / n`` (not ``i * step``) makes 0.3 the
  double nearest 0.3. Ties between equally large components
  go to the first in row-major order (MATLAB's ``bwconncomp`` scans column-major; this can
  only matter for exact ties). An empty intersection gives an empty omega.

Memory: the whole-image metrics never make a float64 copy of an alpha. A float32 alpha is
used as it is; values are converted to float64 a strip of rows at a time, and the
gradient filters, the boundary distances and the unknown band run a strip at a time with
the halo of rows each needs (the filter's half width, the tolerance, the band width), so
they give the same values as on the whole image; only the order in which float64 sums
add up differs (last-digit differences). The connectivity's components are labelled a
strip at a time and joined across the strips' boundaries (`_largest_in_strips`). What
stays at the image's size: the two alphas as given, the unknown band (bool) and the
connectivity's levels (int8): 2 bytes a pixel beyond the alphas, plus windows of a few
million pixels (at 108 MP, `evaluate_alpha` adds about 0.35 GiB to the two float32 alphas'
0.80 GiB).

Region: ``mask=None`` is the whole image. ``evaluate_alpha`` also reports each matting
metric over :func:`unknown_band` (keys ending ``_unknown``), the automatically derived
stand-in for a trimap's unknown region: the error *near the edge*. Over an empty region the
sums (sad, grad, conn) are 0.0 and the means (mse, mad) are NaN.

Away from the edge (the complement of the band; ``evaluate_alpha``, issue 26):

* ``sad_away``, ``mse_away`` -- SAD and MSE over the pixels outside the unknown band, so
  ``sad = sad_unknown + sad_away`` (up to the order of float64 additions). Outside the band
  the truth is exactly 0 or 1 (every fractional pixel of the truth is in the band).
* ``sad_away_wrong`` -- the part of ``sad_away`` from pixels on the wrong side of the
  threshold (``(p >= t) != (g >= t)``: an error over 0.5, wrong regions), and
  ``sad_away_soft`` -- the rest (an error below 0.5: right side, an alpha that is not
  decisive). An error of exactly 0.5 counts as wrong where the truth is 0 (``p = 0.5`` is
  foreground) and as soft where it is 1. ``sad_away = sad_away_wrong + sad_away_soft``.

Stray regions (:func:`stray_regions`, on the masks ``alpha >= threshold``, 8-connected):

* ``components_pred``, ``components_true`` -- how many connected components each mask has
  (not ranked: the closer the prediction's count to the truth's, the better).
* ``false_regions``, ``false_region_area`` (fraction of the image), ``false_region_pixels``
  -- predicted components with no pixel in the true foreground (blobs that are not there).
* ``missed_regions``, ``missed_region_area``, ``missed_region_pixels`` -- true components
  with no pixel in the predicted foreground (a whole person, or a hand, missed).

The components are labelled a strip of rows at a time and joined across the strips'
boundaries (`_components_in_strips`), so no label image of the whole photo is made.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from ..bands import _SQUARE
from ..bands import default_band_width, unknown_band  # noqa: F401 - part of the metrics API

__all__ = [
    "iou",
    "boundary_f",
    "boundary_precision_recall",
    "sad",
    "mse",
    "mad",
    "grad",
    "conn",
    "unknown_band",
    "default_band_width",
    "stray_regions",
    "evaluate_alpha",
    "METRIC_KEYS",
    "HIGHER_IS_BETTER",
    "UNRANKED",
]

#: Keys of :func:`evaluate_alpha`, in display order.
METRIC_KEYS = (
    "iou",
    "boundary_f",
    "sad",
    "mse",
    "mad",
    "grad",
    "conn",
    "sad_unknown",
    "mse_unknown",
    "mad_unknown",
    "grad_unknown",
    "conn_unknown",
    "sad_away",
    "mse_away",
    "sad_away_wrong",
    "sad_away_soft",
    "components_pred",
    "components_true",
    "false_regions",
    "false_region_area",
    "missed_regions",
    "missed_region_area",
)
#: Metrics where larger is better (all others are errors: smaller is better, but `UNRANKED`).
HIGHER_IS_BETTER = frozenset({"iou", "boundary_f"})
#: Metrics that are neither: counts to compare with the truth's.
UNRANKED = frozenset({"components_pred", "components_true"})

_CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity


#: pixels per strip of the whole-image metrics (each strip's float64 work is a few times this)
STRIP_PIXELS = 1 << 20


def _strips(shape, halo: int = 0, strip_pixels: int | None = None):
    """(y0, y1, w0, w1): strips of rows y0..y1 covering an image of `shape`, each with its
    window w0..w1 (the strip plus `halo` rows either side, cut at the image's edges)."""
    h, w = int(shape[0]), int(shape[1])
    rows = max(1, int(strip_pixels or STRIP_PIXELS) // max(1, w), 2 * int(halo))
    for y0 in range(0, h, rows):
        y1 = min(h, y0 + rows)
        yield y0, y1, max(0, y0 - int(halo)), min(h, y1 + int(halo))


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _float(x) -> np.ndarray:
    """float32 and float64 arrays as they are (no copy), anything else as float64."""
    a = np.asarray(x)
    return a if a.dtype in (np.float32, np.float64) else a.astype(np.float64)


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = _float(pred)
    g = _float(gt)
    if p.ndim == 3 and p.shape[-1] == 1:
        p = p[..., 0]
    if g.ndim == 3 and g.shape[-1] == 1:
        g = g[..., 0]
    if p.ndim != 2 or g.ndim != 2:
        raise ValueError(f"alphas must be HxW, got shapes {p.shape} and {g.shape}")
    if p.shape != g.shape:
        raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in size")
    return p, g


def _region(mask, shape) -> np.ndarray | None:
    if mask is None:
        return None
    m = np.asarray(mask, dtype=bool)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.shape != shape:
        raise ValueError(f"region mask {m.shape} does not match alpha {shape}")
    return m


def _sum(err: np.ndarray, region) -> float:
    return float(err.sum() if region is None else err[region].sum())


def _mean(err: np.ndarray, region) -> float:
    vals = err if region is None else err[region]
    return float(vals.mean()) if vals.size else math.nan


def _strip_sums(err_rows, shape, regions) -> list[tuple[float, int]]:
    """(sum, count) of ``err_rows(y0, y1)`` (float64 rows) over each region (None: every
    pixel; a callable: ``region(y0, y1)`` gives the region's rows), a strip of rows at a time."""
    out = [[0.0, 0] for _ in regions]
    for y0, y1, _, _ in _strips(shape):
        err = err_rows(y0, y1)
        for acc, r in zip(out, regions):
            if r is None:
                acc[0] += float(err.sum())
                acc[1] += err.size
            else:
                m = r(y0, y1) if callable(r) else r[y0:y1]
                acc[0] += float(err[m].sum())
                acc[1] += int(np.count_nonzero(m))
    return [(a, n) for a, n in out]


def _mean_of(total: tuple[float, int]) -> float:
    return total[0] / total[1] if total[1] else math.nan


# -- segmentation ------------------------------------------------------------------------
def iou(pred, gt, threshold: float = 0.5) -> float:
    """Foreground IoU of ``pred >= threshold`` and ``gt >= threshold``; both empty -> 1.0."""
    p, g = _pair(pred, gt)
    t = np.float64(threshold)  # compared in float64 whatever the alphas' dtype
    inter = union = 0
    for y0, y1, _, _ in _strips(p.shape):
        pm, gm = p[y0:y1] >= t, g[y0:y1] >= t
        union += np.count_nonzero(pm | gm)
        inter += np.count_nonzero(pm & gm)
    if union == 0:
        return 1.0
    return inter / union


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour in the background (the image edge is not)."""
    return mask & ~ndimage.binary_erosion(mask, _CROSS, border_value=1)


def _boundary_rows(a: np.ndarray, threshold: float, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1 of ``_boundary(a >= threshold)`` (compared in float64), from those rows
    and one more on each side (the erosion is 3x3): the same as on the whole image."""
    w0, w1 = max(0, y0 - 1), min(a.shape[0], y1 + 1)
    return _boundary(a[w0:w1] >= np.float64(threshold))[y0 - w0:y1 - w0]


def default_tolerance(shape) -> int:
    """DAVIS: ``ceil(0.008 * diagonal)`` pixels, at least 1."""
    return max(1, int(math.ceil(0.008 * math.hypot(shape[0], shape[1]))))


def boundary_precision_recall(pred, gt, threshold: float = 0.5, tolerance_px=None):
    """(precision, recall, F) of the DAVIS boundary measure; see :func:`boundary_f`."""
    p, g = _pair(pred, gt)
    tol = default_tolerance(p.shape) if tolerance_px is None else float(tolerance_px)
    if tol < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    n_p = sum(int(np.count_nonzero(_boundary_rows(p, threshold, y0, y1))) for y0, y1, _, _ in _strips(p.shape))
    n_g = sum(int(np.count_nonzero(_boundary_rows(g, threshold, y0, y1))) for y0, y1, _, _ in _strips(g.shape))
    if n_p == 0 and n_g == 0:
        return 1.0, 1.0, 1.0
    if n_p == 0:
        return 1.0, 0.0, 0.0
    if n_g == 0:
        return 0.0, 1.0, 0.0
    # distance from every pixel to the nearest boundary pixel of the other mask
    precision = float(_within(p, g, threshold, tol)) / n_p
    recall = float(_within(g, p, threshold, tol)) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f


def _within(a: np.ndarray, b: np.ndarray, threshold: float, tol: float) -> int:
    """How many boundary pixels of ``a >= threshold`` lie within Euclidean distance `tol`
    of a boundary pixel of ``b >= threshold``: the distance transform a strip at a time,
    each with ``floor(tol) + 1`` rows of halo (a pixel of b's boundary outside that reach is
    farther than `tol`, so each strip's answer is the whole image's); the boundaries are
    made for each strip and window (`_boundary_rows`), never for the whole image."""
    halo = int(math.floor(tol)) + 1
    hits = 0
    for y0, y1, w0, w1 in _strips(a.shape, halo):
        sa = _boundary_rows(a, threshold, y0, y1)
        if not sa.any():
            continue
        wb = _boundary_rows(b, threshold, w0, w1)
        if not wb.any():
            continue  # nothing of b's boundary within reach
        d = ndimage.distance_transform_edt(~wb)[y0 - w0:y1 - w0]
        hits += int(np.count_nonzero(d[sa] <= tol))
    return hits


def boundary_f(pred, gt, threshold: float = 0.5, tolerance_px=None) -> float:
    """DAVIS boundary F-measure of the thresholded masks (see the module docstring)."""
    return boundary_precision_recall(pred, gt, threshold, tolerance_px)[2]


# -- matting -----------------------------------------------------------------------------
def _abs_rows(p, g):
    return lambda y0, y1: np.abs(_f64(p[y0:y1]) - _f64(g[y0:y1]))


def _sq_rows(p, g):
    return lambda y0, y1: (_f64(p[y0:y1]) - _f64(g[y0:y1])) ** 2


def sad(pred, gt, mask=None) -> float:
    """Sum of absolute differences / 1000 (DIM)."""
    p, g = _pair(pred, gt)
    return _strip_sums(_abs_rows(p, g), p.shape, [_region(mask, p.shape)])[0][0] / 1000.0


def mse(pred, gt, mask=None) -> float:
    """Mean squared error over the region (NaN for an empty region)."""
    p, g = _pair(pred, gt)
    return _mean_of(_strip_sums(_sq_rows(p, g), p.shape, [_region(mask, p.shape)])[0])


def mad(pred, gt, mask=None) -> float:
    """Mean absolute difference over the region (NaN for an empty region)."""
    p, g = _pair(pred, gt)
    return _mean_of(_strip_sums(_abs_rows(p, g), p.shape, [_region(mask, p.shape)])[0])


def gauss_gradient_kernel(sigma: float = 1.4) -> np.ndarray:
    """The x-derivative kernel of DIM's ``gaussgradient.m`` (rows: y, columns: x)."""
    half = int(math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2 * math.pi) * sigma * 1e-2))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-(u**2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dg = -u * g / sigma**2
    hx = g[:, None] * dg[None, :]
    return hx / np.sqrt(np.sum(hx * hx))


def gradient_magnitude(alpha, sigma: float = 1.4) -> np.ndarray:
    """``sqrt(gx^2 + gy^2)`` with the DIM Gaussian-derivative filters, edges replicated."""
    a = np.asarray(alpha, dtype=np.float64)
    hx = gauss_gradient_kernel(sigma)
    gx = ndimage.convolve(a, hx, mode="nearest")
    gy = ndimage.convolve(a, hx.T, mode="nearest")
    return np.sqrt(gx**2 + gy**2)


def _grad_rows(p, g, sigma: float = 1.4):
    """``(|grad p| - |grad g|)^2`` for rows y0..y1: the filters on the rows plus the kernel's
    half width of halo (the same values as on the whole image: `gradient_magnitude`)."""
    hx = gauss_gradient_kernel(sigma)
    half = hx.shape[0] // 2

    def rows(y0, y1):
        w0, w1 = max(0, y0 - half), min(p.shape[0], y1 + half)
        out = None
        for a in (p, g):
            x = _f64(a[w0:w1])
            gx = ndimage.convolve(x, hx, mode="nearest")
            gy = ndimage.convolve(x, hx.T, mode="nearest")
            m = np.sqrt(gx**2 + gy**2)[y0 - w0:y1 - w0]
            out = m if out is None else (out - m) ** 2
        return out

    return rows


def grad(pred, gt, mask=None, sigma: float = 1.4) -> float:
    """Gradient error (DIM): ``sum (|grad p| - |grad g|)^2 / 1000`` over the region."""
    p, g = _pair(pred, gt)
    return _strip_sums(_grad_rows(p, g, sigma), p.shape, [_region(mask, p.shape)])[0][0] / 1000.0


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=_CROSS)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


def _largest_in_strips(mask, shape):
    """``(y0, y1, omega rows)`` of `_largest_component` of the mask given by ``mask(y0, y1)``,
    strip by strip, without labelling the whole image: each strip is labelled on its own
    (4-connectivity, labels in raster order), the strips' components are joined where they
    touch across a strip boundary (a graph of local labels, `connected_components`), their
    sizes summed, and the largest kept, ties going to the one met first in row-major order
    (the smallest label of its first strip), as `_largest_component`. The strips are
    labelled again to give omega."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    bands = list(_strips(shape))
    offsets, sizes, edges = [], [], []
    total, prev = 0, None  # prev: the global labels of the previous strip's last row
    for y0, y1, _, _ in bands:
        labels, k = ndimage.label(mask(y0, y1), structure=_CROSS)
        offsets.append(total)
        counts = np.bincount(labels.ravel(), minlength=k + 1)[1:]
        sizes.append(counts)
        first = np.where(labels[0] > 0, labels[0] + total, 0)
        if prev is not None:
            touch = (prev > 0) & (first > 0)
            edges.append(np.stack([prev[touch], first[touch]]))
        prev = np.where(labels[-1] > 0, labels[-1] + total, 0)
        total += k
        del labels
    if total == 0:
        for y0, y1, _, _ in bands:
            yield y0, y1, np.zeros((y1 - y0, shape[1]), bool)
        return
    # nodes 1..total are the strips' labels (0 unused); components of the join graph
    e = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), np.int64)
    graph = coo_matrix((np.ones(e.shape[1], np.int8), (e[0], e[1])), shape=(total + 1, total + 1))
    _, comp = connected_components(graph, directed=False)
    size = np.bincount(comp[1:], weights=np.concatenate(sizes).astype(np.float64))
    first_label = np.full(size.size, total + 1, np.int64)  # raster order of each component's first pixel
    np.minimum.at(first_label, comp[1:], np.arange(1, total + 1))
    best = np.flatnonzero(size == size.max())
    largest = best[np.argmin(first_label[best])]
    for (y0, y1, _, _), off in zip(bands, offsets):
        labels, _ = ndimage.label(mask(y0, y1), structure=_CROSS)
        yield y0, y1, (labels > 0) & (comp[labels + off] == largest)


def _conn_error_map(p: np.ndarray, g: np.ndarray, step: float = 0.1) -> np.ndarray:
    n = int(round(1.0 / step))
    if n < 1 or not math.isclose(n * step, 1.0, rel_tol=1e-9):
        raise ValueError(f"step must divide 1 evenly (e.g. 0.1), got {step}")
    thresholds = np.arange(n + 1, dtype=np.float64) / n
    l_map = np.full(p.shape, -1.0)
    for i in range(1, n + 1):
        omega = _largest_component((p >= thresholds[i]) & (g >= thresholds[i]))
        l_map[(l_map == -1) & ~omega] = thresholds[i - 1]
    l_map[l_map == -1] = 1.0
    p_d, g_d = p - l_map, g - l_map
    p_phi = 1.0 - p_d * (p_d >= 0.15)
    g_phi = 1.0 - g_d * (g_d >= 0.15)
    return np.abs(p_phi - g_phi)


def _conn_rows(p: np.ndarray, g: np.ndarray, step: float = 0.1):
    """`_conn_error_map` for rows y0..y1, with the image's levels made once: the level of
    each pixel (the index ``i - 1`` of ``l = t_(i-1)``, -1 for 1.0) is kept as int8, and
    each threshold's largest component is found a strip at a time (`_largest_in_strips`)."""
    n = int(round(1.0 / step))
    if n < 1 or not math.isclose(n * step, 1.0, rel_tol=1e-9):
        raise ValueError(f"step must divide 1 evenly (e.g. 0.1), got {step}")
    thresholds = np.arange(n + 1, dtype=np.float64) / n
    level = np.full(p.shape, -1, np.int16 if n > 126 else np.int8)
    for i in range(1, n + 1):
        t = thresholds[i]

        def mask(y0, y1, t=t):
            return (p[y0:y1] >= t) & (g[y0:y1] >= t)

        for y0, y1, omega in _largest_in_strips(mask, p.shape):
            lv = level[y0:y1]
            lv[(lv == -1) & ~omega] = i - 1
    values = np.append(thresholds[:n], 1.0)  # level -1 (in every omega) -> 1.0

    def rows(y0, y1):
        l_map = values[level[y0:y1].astype(np.intp)]  # -1 -> values[-1] = 1.0
        p_d, g_d = _f64(p[y0:y1]) - l_map, _f64(g[y0:y1]) - l_map
        p_phi = 1.0 - p_d * (p_d >= 0.15)
        g_phi = 1.0 - g_d * (g_d >= 0.15)
        return np.abs(p_phi - g_phi)

    return rows


def conn(pred, gt, mask=None, step: float = 0.1) -> float:
    """Connectivity error / 1000 (DIM ``compute_connectivity_error.m``)."""
    p, g = _pair(pred, gt)
    return _strip_sums(_conn_rows(p, g, step), p.shape, [_region(mask, p.shape)])[0][0] / 1000.0


# -- stray regions -----------------------------------------------------------------------
def _components_in_strips(mask, other, shape) -> tuple[int, int, int]:
    """(components, lone components, their pixels) of the mask given by ``mask(y0, y1)``
    (8-connected), a lone component being one with no pixel in ``other(y0, y1)``; strip by
    strip, as `_largest_in_strips`: each strip labelled on its own, the strips' components
    joined where they touch across a strip boundary (diagonally too), sizes summed and
    "touches `other`" or-ed over each joined component. No label image of the whole mask."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    w = int(shape[1])
    sizes, hits, edges = [], [], []
    total, prev = 0, None  # prev: the global labels of the previous strip's last row
    for y0, y1, _, _ in _strips(shape):
        m = mask(y0, y1)
        labels, k = ndimage.label(m, structure=_SQUARE)
        sizes.append(np.bincount(labels.ravel(), minlength=k + 1)[1:])
        hits.append(np.bincount(labels[other(y0, y1) & m], minlength=k + 1)[1:] > 0)
        first = np.where(labels[0] > 0, labels[0] + total, 0)
        if prev is not None:
            for a, b in ((prev, first), (prev[:-1], first[1:]), (prev[1:], first[:w - 1])):
                touch = (a > 0) & (b > 0)
                edges.append(np.stack([a[touch], b[touch]]))
        prev = np.where(labels[-1] > 0, labels[-1] + total, 0)
        total += k
        del labels, m
    if total == 0:
        return 0, 0, 0
    # nodes 1..total are the strips' labels (0 unused); components of the join graph
    e = np.concatenate(edges, axis=1) if edges else np.zeros((2, 0), np.int64)
    graph = coo_matrix((np.ones(e.shape[1], np.int8), (e[0], e[1])), shape=(total + 1, total + 1))
    _, comp = connected_components(graph, directed=False)
    comp = comp[1:]
    n = int(comp.max()) + 1
    present = np.bincount(comp, minlength=n) > 0
    size = np.bincount(comp, weights=np.concatenate(sizes).astype(np.float64), minlength=n)
    hit = np.bincount(comp, weights=np.concatenate(hits).astype(np.float64), minlength=n) > 0
    lone = present & ~hit
    return int(present.sum()), int(lone.sum()), int(round(size[lone].sum()))


def stray_regions(pred, gt, threshold: float = 0.5) -> dict:
    """Connected components (8-connected) of ``pred >= threshold`` and ``gt >= threshold``:
    their counts, and the predicted components with no true-foreground pixel (false regions)
    and the true components with no predicted-foreground pixel (missed regions), as counts,
    pixels and fractions of the image. See the module docstring."""
    p, g = _pair(pred, gt)
    t = np.float64(threshold)  # compared in float64 whatever the alphas' dtype

    def pm(y0, y1):
        return p[y0:y1] >= t

    def gm(y0, y1):
        return g[y0:y1] >= t

    n_pred, n_false, px_false = _components_in_strips(pm, gm, p.shape)
    n_true, n_missed, px_missed = _components_in_strips(gm, pm, p.shape)
    return {
        "components_pred": n_pred,
        "components_true": n_true,
        "false_regions": n_false,
        "false_region_area": px_false / p.size,
        "false_region_pixels": px_false,
        "missed_regions": n_missed,
        "missed_region_area": px_missed / p.size,
        "missed_region_pixels": px_missed,
    }


# -- all at once -------------------------------------------------------------------------
def evaluate_alpha(pred, gt, threshold: float = 0.5, band_width: int | None = None, keys=None) -> dict:
    """All metrics of one image: whole-image values, ``*_unknown`` over the band (near the
    edge), ``*_away`` outside it, and the stray regions (:func:`stray_regions`).

    Keys are :data:`METRIC_KEYS`, plus ``unknown_pixels`` (size of the band),
    ``false_region_pixels`` and ``missed_region_pixels``; `keys` limits the result to those
    (the cheap ones skip the gradient/connectivity maps).
    """
    p, g = _pair(pred, gt)
    if keys is not None and set(keys) <= {"iou", "boundary_f", "sad", "mse", "mad"}:
        fns = {"iou": lambda: float(iou(p, g, threshold)), "boundary_f": lambda: float(boundary_f(p, g, threshold)),
               "sad": lambda: sad(p, g), "mse": lambda: mse(p, g), "mad": lambda: mad(p, g)}
        return {k: fns[k]() for k in keys}
    band = _unknown_band(g, band_width)
    # every error map once, a strip at a time, summed over the image and over the band
    both = [None, band]
    t = np.float64(threshold)

    def away(y0, y1):
        return ~band[y0:y1]

    def away_wrong(y0, y1):  # outside the band and on the wrong side of the threshold
        return ~band[y0:y1] & ((p[y0:y1] >= t) != (g[y0:y1] >= t))

    def away_soft(y0, y1):
        return ~band[y0:y1] & ((p[y0:y1] >= t) == (g[y0:y1] >= t))

    (sad_all, _), (sad_band, n_band), (sad_away, _), (sad_wrong, _), (sad_soft, _) = _strip_sums(
        _abs_rows(p, g), p.shape, [None, band, away, away_wrong, away_soft])
    mse_all, mse_band, mse_away = _strip_sums(_sq_rows(p, g), p.shape, [None, band, away])
    (grad_all, _), (grad_band, _) = _strip_sums(_grad_rows(p, g), p.shape, both)
    (conn_all, _), (conn_band, _) = _strip_sums(_conn_rows(p, g), p.shape, both)
    out = {
        "iou": float(iou(p, g, threshold)),
        "boundary_f": float(boundary_f(p, g, threshold)),
        "sad": sad_all / 1000.0,
        "mse": _mean_of(mse_all),
        "mad": _mean_of((sad_all, p.size)),
        "grad": grad_all / 1000.0,
        "conn": conn_all / 1000.0,
        "sad_unknown": sad_band / 1000.0,
        "mse_unknown": _mean_of(mse_band),
        "mad_unknown": _mean_of((sad_band, n_band)),
        "grad_unknown": grad_band / 1000.0,
        "conn_unknown": conn_band / 1000.0,
        "unknown_pixels": int(n_band),
        "sad_away": sad_away / 1000.0,
        "mse_away": _mean_of(mse_away),
        "sad_away_wrong": sad_wrong / 1000.0,
        "sad_away_soft": sad_soft / 1000.0,
        **stray_regions(p, g, threshold),
    }
    return out if keys is None else {k: out[k] for k in keys}


def _unknown_band(g: np.ndarray, width: int | None = None) -> np.ndarray:
    """`unknown_band` (edgematting.bands), the same mask, a strip of rows at a time: the
    3x3 dilation and erosion with 1 row of halo, the distances to the other side of the 0.5
    contour with ``width + 1`` rows (a pixel of the other side farther away than that is
    beyond the band), so no float64 copy or distance map of the whole image is made."""
    from ..bands import _SQUARE

    if g.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {g.shape}")
    w = default_band_width(g.shape) if width is None else int(width)
    if w < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    out = np.zeros(g.shape, bool)
    m_any, m_all = False, True
    for y0, y1, w0, w1 in _strips(g.shape, 1):
        x = g[w0:w1]
        soft = ndimage.binary_dilation(x > 0, _SQUARE) & ~ndimage.binary_erosion(x >= 1, _SQUARE, border_value=1)
        out[y0:y1] = soft[y0 - w0:y1 - w0]
        m = g[y0:y1] >= 0.5
        m_any, m_all = m_any or bool(m.any()), m_all and bool(m.all())
    if not (w > 0 and m_any and not m_all):
        return out
    for y0, y1, w0, w1 in _strips(g.shape, w + 1):
        m = g[w0:w1] >= 0.5
        band = np.zeros(m.shape, bool)
        if m.any() and not m.all():
            d_in = ndimage.distance_transform_edt(m)  # fg pixel -> nearest bg pixel
            band |= m & (d_in <= w)
            del d_in
            d_out = ndimage.distance_transform_edt(~m)  # bg pixel -> nearest fg pixel
            band |= ~m & (d_out <= w)
        out[y0:y1] |= band[y0 - w0:y1 - w0]
    return out


def summarize(rows: list[dict], keys=METRIC_KEYS) -> dict[str, float]:
    """Mean over images of each metric in `keys`; NaN values (e.g. an MSE over an empty
    unknown band) are left out of the mean (NaN when no image has a value)."""
    import math

    mean = {}
    for k in keys:
        vals = np.array([r[k] for r in rows if k in r], dtype=np.float64)
        vals = vals[np.isfinite(vals)]
        mean[k] = float(vals.mean()) if vals.size else math.nan
    return mean
