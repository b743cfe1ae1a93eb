"""Training curves: loss and the model's metric vs epoch, train and validation."""
from __future__ import annotations

import os
from pathlib import Path

from .. import atomic
from ..models.registry import METRICS

_LABELS = {"iou": "IoU (threshold 0.5)", "mae": "alpha MAE", "sad": "SAD / 1000"}


def _series(history: dict, key: str):
    vals = history.get(key) or []
    xs = [i + 1 for i, v in enumerate(vals) if v is not None]
    ys = [float(v) for v in vals if v is not None]
    return xs, ys


def plot_history(history: dict, out_png: str | os.PathLike, metric: str = "iou", title: str = "") -> Path:
    """Write a two-panel PNG (loss | metric) of a Keras-style history dict.

    Uses the Agg canvas directly (no pyplot global state), so it is safe in a training
    callback, in threads and on machines without a display. Written atomically.
    """
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    for ax, key, label in (
        (fig.add_subplot(1, 2, 1), "loss", "loss"),
        (fig.add_subplot(1, 2, 2), metric, _LABELS.get(metric, METRICS.get(metric, metric))),
    ):
        for prefix, style, name in (("", "-o", "train"), ("val_", "-s", "validation")):
            xs, ys = _series(history, prefix + key)
            if xs:
                ax.plot(xs, ys, style, markersize=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        if ax.has_data():
            ax.legend(loc="best", fontsize=8)
            ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    out = Path(out_png)
    atomic.write_bytes(out, buf.getvalue())
    return out
