"""The unknown band around a matte's contour: where metrics judge the edge, and where
distillation takes the teacher's soft matte (`data.folder.soft_edge_target`).

Below `edgematting.evaluation` and `edgematting.data`, which both use it.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

_SQUARE = ndimage.generate_binary_structure(2, 2)  # 8-connectivity / 3x3


def default_band_width(shape) -> int:
    """``max(3, round(0.01 * diagonal))`` pixels."""
    return max(3, int(round(0.01 * math.hypot(shape[0], shape[1]))))


def unknown_band(gt, width: int | None = None) -> np.ndarray:
    """Boolean HxW "unknown" region derived from the ground truth (a trimap stand-in).

    The union of

    1. the soft edge: ``dilate(gt > 0) & ~erode(gt >= 1)`` with a 3x3 square (so every
       fractional pixel, plus one pixel either side of any hard 0/1 step), and
    2. a band around the 0.5 contour: pixels within Euclidean distance ``width`` of the
       other side of ``gt >= 0.5`` (i.e. ``dilate(m, disk) & ~erode(m, disk)``), with
       ``width`` defaulting to :func:`default_band_width` (1% of the diagonal, >= 3 px).

    The image border is never treated as a contour (erosion pads with foreground), so a
    person cut off by the frame gets no band along the frame. An all-0 or all-1 ground
    truth has an empty band.
    """
    g = np.asarray(gt, dtype=np.float64)
    if g.ndim == 3 and g.shape[-1] == 1:
        g = g[..., 0]
    if g.ndim != 2:
        raise ValueError(f"alpha must be HxW, got shape {g.shape}")
    w = default_band_width(g.shape) if width is None else int(width)
    if w < 0:
        raise ValueError(f"width must be >= 0, got {width}")
    soft = ndimage.binary_dilation(g > 0, _SQUARE) & ~ndimage.binary_erosion(
        g >= 1, _SQUARE, border_value=1
    )
    m = g >= 0.5
    band = np.zeros_like(m)
    if w > 0 and m.any() and not m.all():
        d_in = ndimage.distance_transform_edt(m)  # fg pixel -> nearest bg pixel
        d_out = ndimage.distance_transform_edt(~m)  # bg pixel -> nearest fg pixel
        band = (m & (d_in <= w)) | (~m & (d_out <= w))
    return soft | band
