"""Temporal metrics of a predicted matte sequence against the true one (numpy only).

Both take the predicted and true alphas of consecutive frames (HxW, or HxWx1, float in
[0, 1]) and look at frame-to-frame changes ``d x_t = x_t - x_{t-1}``, t = 1..T-1:

* :func:`flicker` -- mean ``|d pred_t|`` over the pixels whose true alpha did not change
  (``|d gt_t| < STATIC_TOL``), pooled over every such pixel of every frame pair: how much
  the prediction moves where nothing moved. 0 for a prediction that is constant wherever
  the truth is, whatever its error.
* :func:`dtssd` -- the temporal-gradient error of Erofeev et al. (BMVC 2015, "Perceptually
  motivated benchmark for video matting"), as the video-matting literature computes it
  (e.g. Robust Video Matting's evaluation): per frame pair ``sqrt(mean_pixels((d pred_t -
  d gt_t)^2))``, averaged over the T-1 pairs. 0 when the prediction changes exactly as the
  truth does (so a constant error is not counted); papers print it x 100.

`TemporalMetrics` computes both streaming (one frame at a time, holding the previous
pair only): what a video evaluation uses. Values are float64 sums of float32 differences.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

#: a true alpha that changed by less than this between two frames counts as unchanged
STATIC_TOL = 1e-3
TEMPORAL_KEYS = ("flicker", "dtssd")


def _frame(x) -> np.ndarray:
    a = np.asarray(x, np.float32)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"expected an HxW alpha, got shape {a.shape}")
    return a


class TemporalMetrics:
    """Streaming `flicker` and `dtssd`: ``update(pred_t, gt_t)`` per frame, in order, then
    ``result()`` -> ``{"flicker": ..., "dtssd": ..., "frames": T, "static_fraction": ...}``
    (NaN for a metric with nothing to average: one frame, or no unchanged pixel)."""

    def __init__(self, static_tol: float = STATIC_TOL):
        self.static_tol = float(static_tol)
        self.prev: tuple[np.ndarray, np.ndarray] | None = None
        self.frames = 0
        self._flicker_sum = 0.0
        self._static = 0
        self._pixels = 0
        self._dtssd_sum = 0.0
        self._pairs = 0

    def update(self, pred, gt) -> None:
        p, g = _frame(pred), _frame(gt)
        if p.shape != g.shape:
            raise ValueError(f"prediction {p.shape} and ground truth {g.shape} differ in shape")
        if self.prev is not None:
            pp, gp = self.prev
            if pp.shape != p.shape:
                raise ValueError(f"frame {self.frames} is {p.shape}, the one before {pp.shape}")
            dp = p - pp
            dg = g - gp
            static = np.abs(dg) < self.static_tol
            self._flicker_sum += float(np.abs(dp[static], dtype=np.float64).sum())
            self._static += int(static.sum())
            self._pixels += static.size
            err = dp - dg
            self._dtssd_sum += float(np.sqrt(np.mean(np.square(err, dtype=np.float64))))
            self._pairs += 1
        self.prev = (p, g)
        self.frames += 1

    def result(self) -> dict:
        nan = float("nan")
        return {
            "flicker": self._flicker_sum / self._static if self._static else nan,
            "dtssd": self._dtssd_sum / self._pairs if self._pairs else nan,
            "frames": self.frames,
            "static_fraction": self._static / self._pixels if self._pixels else nan,
        }


def temporal_metrics(preds: Iterable, gts: Iterable, static_tol: float = STATIC_TOL) -> dict:
    """`TemporalMetrics` over two equally long sequences of alphas."""
    m = TemporalMetrics(static_tol)
    preds, gts = list(preds), list(gts)
    if len(preds) != len(gts):
        raise ValueError(f"{len(preds)} predicted and {len(gts)} true frames")
    for p, g in zip(preds, gts):
        m.update(p, g)
    return m.result()


def flicker(preds, gts, static_tol: float = STATIC_TOL) -> float:
    """Mean |pred_t - pred_{t-1}| where |gt_t - gt_{t-1}| < static_tol (see the module docstring)."""
    return temporal_metrics(preds, gts, static_tol)["flicker"]


def dtssd(preds, gts) -> float:
    """Mean over frame pairs of sqrt(mean((d pred - d gt)^2)) (see the module docstring)."""
    return temporal_metrics(preds, gts)["dtssd"]
