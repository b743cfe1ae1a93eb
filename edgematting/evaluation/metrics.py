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

Region: ``mask=None`` is the whole image. ``evaluate_alpha`` also reports each matting
metric over :func:`unknown_band` (keys ending ``_unknown``), the automatically derived
stand-in for a trimap's unknown region. Over an empty region the sums (sad, grad, conn)
are 0.0 and the means (mse, mad) are NaN.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

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
    "evaluate_alpha",
    "METRIC_KEYS",
    "HIGHER_IS_BETTER",
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
)
#: Metrics where larger is better (all others are errors: smaller is better).
HIGHER_IS_BETTER = frozenset({"iou", "boundary_f"})

_CROSS = ndimage.generate_binary_structure(2, 1)  # 4-connectivity


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
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


# -- segmentation ------------------------------------------------------------------------
def iou(pred, gt, threshold: float = 0.5) -> float:
    """Foreground IoU of ``pred >= threshold`` and ``gt >= threshold``; both empty -> 1.0."""
    p, g = _pair(pred, gt)
    pm, gm = p >= threshold, g >= threshold
    union = np.count_nonzero(pm | gm)
    if union == 0:
        return 1.0
    return np.count_nonzero(pm & gm) / union


def _boundary(mask: np.ndarray) -> np.ndarray:
    """Foreground pixels with a 4-neighbour in the background (the image edge is not)."""
    return mask & ~ndimage.binary_erosion(mask, _CROSS, border_value=1)


def default_tolerance(shape) -> int:
    """DAVIS: ``ceil(0.008 * diagonal)`` pixels, at least 1."""
    return max(1, int(math.ceil(0.008 * math.hypot(shape[0], shape[1]))))


def boundary_precision_recall(pred, gt, threshold: float = 0.5, tolerance_px=None):
    """(precision, recall, F) of the DAVIS boundary measure; see :func:`boundary_f`."""
    p, g = _pair(pred, gt)
    tol = default_tolerance(p.shape) if tolerance_px is None else float(tolerance_px)
    if tol < 0:
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    pb, gb = _boundary(p >= threshold), _boundary(g >= threshold)
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 and n_g == 0:
        return 1.0, 1.0, 1.0
    if n_p == 0:
        return 1.0, 0.0, 0.0
    if n_g == 0:
        return 0.0, 1.0, 0.0
    # distance from every pixel to the nearest boundary pixel of the other mask
    dist_to_g = ndimage.distance_transform_edt(~gb)
    dist_to_p = ndimage.distance_transform_edt(~pb)
    precision = float(np.count_nonzero(dist_to_g[pb] <= tol)) / n_p
    recall = float(np.count_nonzero(dist_to_p[gb] <= tol)) / n_g
    f = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f


def boundary_f(pred, gt, threshold: float = 0.5, tolerance_px=None) -> float:
    """DAVIS boundary F-measure of the thresholded masks (see the module docstring)."""
    return boundary_precision_recall(pred, gt, threshold, tolerance_px)[2]


# -- matting -----------------------------------------------------------------------------
def sad(pred, gt, mask=None) -> float:
    """Sum of absolute differences / 1000 (DIM)."""
    p, g = _pair(pred, gt)
    return _sum(np.abs(p - g), _region(mask, p.shape)) / 1000.0


def mse(pred, gt, mask=None) -> float:
    """Mean squared error over the region (NaN for an empty region)."""
    p, g = _pair(pred, gt)
    return _mean((p - g) ** 2, _region(mask, p.shape))


def mad(pred, gt, mask=None) -> float:
    """Mean absolute difference over the region (NaN for an empty region)."""
    p, g = _pair(pred, gt)
    return _mean(np.abs(p - g), _region(mask, p.shape))


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


def grad(pred, gt, mask=None, sigma: float = 1.4) -> float:
    """Gradient error (DIM): ``sum (|grad p| - |grad g|)^2 / 1000`` over the region."""
    p, g = _pair(pred, gt)
    err = (gradient_magnitude(p, sigma) - gradient_magnitude(g, sigma)) ** 2
    return _sum(err, _region(mask, p.shape)) / 1000.0


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask, structure=_CROSS)
    if n == 0:
        return np.zeros_like(mask, dtype=bool)
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (int(np.argmax(sizes)) + 1)


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


def conn(pred, gt, mask=None, step: float = 0.1) -> float:
    """Connectivity error / 1000 (DIM ``compute_connectivity_error.m``)."""
    p, g = _pair(pred, gt)
    return _sum(_conn_error_map(p, g, step), _region(mask, p.shape)) / 1000.0


# -- region ------------------------------------------------------------------------------
# -- all at once -------------------------------------------------------------------------
def evaluate_alpha(pred, gt, threshold: float = 0.5, band_width: int | None = None, keys=None) -> dict:
    """All metrics of one image: whole-image values and ``*_unknown`` over the band.

    Keys are :data:`METRIC_KEYS`, plus ``unknown_pixels`` (size of the band); `keys`
    limits the result to those (the cheap ones skip the gradient/connectivity maps).
    """
    p, g = _pair(pred, gt)
    if keys is not None and set(keys) <= {"iou", "boundary_f", "sad", "mse", "mad"}:
        fns = {"iou": lambda: float(iou(p, g, threshold)), "boundary_f": lambda: float(boundary_f(p, g, threshold)),
               "sad": lambda: sad(p, g), "mse": lambda: mse(p, g), "mad": lambda: mad(p, g)}
        return {k: fns[k]() for k in keys}
    band = unknown_band(g, band_width)
    # the gradient magnitudes and connectivity maps are the costly part: compute once
    gm = (gradient_magnitude(p) - gradient_magnitude(g)) ** 2
    cm = _conn_error_map(p, g)
    out = {
        "iou": float(iou(p, g, threshold)),
        "boundary_f": float(boundary_f(p, g, threshold)),
        "sad": sad(p, g),
        "mse": mse(p, g),
        "mad": mad(p, g),
        "grad": _sum(gm, None) / 1000.0,
        "conn": _sum(cm, None) / 1000.0,
        "sad_unknown": sad(p, g, band),
        "mse_unknown": mse(p, g, band),
        "mad_unknown": mad(p, g, band),
        "grad_unknown": _sum(gm, band) / 1000.0,
        "conn_unknown": _sum(cm, band) / 1000.0,
        "unknown_pixels": int(band.sum()),
    }
    return out if keys is None else {k: out[k] for k in keys}


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
