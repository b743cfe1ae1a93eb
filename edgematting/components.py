"""Keep the person, drop stray regions: ``predict --keep-largest`` (issue 26).

A region is a connected component (8-connected) of ``alpha >= 0.5`` with its soft fringe:
the pixels with ``0 < alpha < 0.5`` whose nearest ``alpha >= 0.5`` pixel (Euclidean) is in
that component. `keep_person_components` zeroes every region whose component is smaller
than `min_area_fraction` of the largest one; the largest (and any other as large as the
fraction) is kept as it is. Two people of similar size are both kept; a blob on the wall
is not.

Predict and evaluate call it on the model's own output (at the model's input size, before
the alpha is brought to the photo's size), so its cost and memory do not grow with the
photo: about 20 bytes a pixel of the alpha it is given (labels, nearest-pixel indices).
"""
from __future__ import annotations

import numpy as np

#: --keep-largest's default: regions under 5% of the largest one's area go
DEFAULT_MIN_AREA_FRACTION = 0.05


def check_min_area_fraction(value) -> float:
    """`value` as a float in [0, 1]; ValueError otherwise (0 keeps every region)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"the minimum region size must be a fraction of the largest region in [0, 1], "
                         f"got {value!r}")
    return float(value)


def keep_person_components(alpha, min_area_fraction: float = DEFAULT_MIN_AREA_FRACTION) -> np.ndarray:
    """`alpha` (HxW or HxWx1, values in [0, 1]) with every region smaller than
    `min_area_fraction` of the largest zeroed (see the module docstring).

    The same dtype and shape; the array itself when nothing is dropped (one region or none,
    or all large enough), a new one otherwise (the input is never written to).
    """
    from scipy import ndimage  # scipy (and bands, which imports it) off the CLI's start-up

    from .bands import _SQUARE  # 8-connectivity

    frac = check_min_area_fraction(min_area_fraction)
    a = np.asarray(alpha)
    a2 = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    if a2.ndim != 2:
        raise ValueError(f"alpha must be HxW or HxWx1, got shape {a.shape}")
    core = a2 >= 0.5
    labels, n = ndimage.label(core, structure=_SQUARE)
    if n <= 1:
        return alpha
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    sizes[0] = 0
    keep = sizes >= frac * sizes[1:].max()
    keep[0] = True
    if keep.all():
        return alpha
    # every pixel belongs to the region of its nearest alpha >= 0.5 pixel
    idx = ndimage.distance_transform_edt(~core, return_distances=False, return_indices=True)
    owner = labels[idx[0], idx[1]]
    del idx
    out = a.copy()
    out2 = out[..., 0] if out.ndim == 3 else out
    out2[~keep[owner]] = 0
    return out
