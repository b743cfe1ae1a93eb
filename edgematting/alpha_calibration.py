"""A decisive alpha: a monotone map fitted on held-out images, folded into the model.

(Not `edgematting.calibration`, which picks the images quantizers calibrate on.)

A segmenter's alpha is often not decisive away from the edge: 0.1 over the background and
0.9 inside the person, where the truth is exactly 0 or 1 (on real photos about a third of
our whole-image SAD, issue 26). The map

    alpha' = clip((alpha - lo) / (hi - lo), 0, 1),    0 <= lo < hi <= 1

sends everything at or below `lo` to 0 and at or above `hi` to 1 and stretches what lies
between. It is monotone, so it never reorders pixels; the mask ``alpha' >= 0.5`` is
``alpha >= (lo + hi) / 2``.

Fitting (`fit_alpha_map`), on held-out images at the model's input size (a run's
validation split, or a labelled folder for `edgematting calibrate`):

* grid: lo in 0, 0.02, ..., 0.44 and hi in 0.56, 0.58, ..., 1.00 (`LO_GRID` x `HI_GRID`,
  23 x 23 = 529 maps, identity included);
* objective: the mean per-image whole-image SAD (``objective="mse"``: MSE), as
  `evaluation.metrics` defines them;
* constraints, against the identity map: mean boundary F and mean IoU each at most
  `BOUNDARY_F_MARGIN` (0.005) lower, mean unknown-band SAD (``sad_unknown``, the error near
  the edge) at most `SAD_UNKNOWN_MARGIN` (2%) higher, and the other whole-image error (MSE
  for the SAD objective, SAD for MSE) not higher (`OTHER_MARGIN`, 0). SAD alone is lowest
  when the alpha is cut to 0/1 (the median of a 0/1 truth): that makes every wrong pixel
  fully wrong and the edge hard, which MSE sees (measured: docs/experiments.md, "A decisive
  alpha");
* the best map must lower the objective by at least `MIN_GAIN` (1%), else the identity is
  kept (no layers are added); among equal objectives the map nearest the identity wins.

The grid search reads a 2-D histogram of (model alpha in 1/1024 bins, each bin standing
for its pixels' mean alpha; truth in 1/255 steps), over the whole image and over the unknown
band, so each of the 529 maps costs a small matrix product rather than a pass over the
pixels; boundary F and IoU depend only on the map's threshold ``(lo + hi) / 2`` and are
computed once per threshold, for the maps the objective ranks first. The figures reported
before and after (`CalibrationResult.before` / `.after`) are computed exactly on the mapped
alphas with `evaluation.metrics.evaluate_alpha`.

Folding (`fold_alpha_map`): the model gets ``Rescaling(scale=1/(hi-lo), offset=-lo/(hi-lo))``
(layer ``alpha_calibration_scale``) and ``ReLU(max_value=1.0)`` (``alpha_calibration_clip``)
after its output: stock layers, so model.keras round-trips with no custom object, and
every converter, runner, demo and the artifact contract carry the map with no app code.
model.json records it under ``alpha_calibration`` (`ModelSpec.alpha_calibration`).
Refitting first removes the layers a previous calibration added (`strip_alpha_map`), so a
map is always fitted on the network's own output.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import InputError

#: the grid of `fit_alpha_map` (lo below, hi above the default threshold 0.5)
LO_GRID = tuple(round(0.02 * i, 2) for i in range(23))  # 0.00 .. 0.44
HI_GRID = tuple(round(1.0 - 0.02 * i, 2) for i in range(23))  # 1.00 .. 0.56
#: a map may lower the mean boundary F (and the mean IoU) by at most this much (absolute)...
BOUNDARY_F_MARGIN = 0.005
#: ...and raise the mean unknown-band SAD by at most this fraction
SAD_UNKNOWN_MARGIN = 0.02
#: the other whole-image error (MSE when minimizing SAD, SAD when minimizing MSE) may rise by
#: at most this fraction: a map must not trade it for the objective (SAD alone is lowest when the
#: alpha is cut to 0/1, which makes every wrong pixel fully wrong)
OTHER_MARGIN = 0.0
#: the objective must drop by at least this fraction, else the identity map is kept
MIN_GAIN = 0.01
#: images fitted on at most (the first ones of the data given)
MAX_IMAGES = 256
#: SyntheticPortraits seed of `edgematting calibrate --data synthetic` (quantization
#: calibration uses 1234, verification 4321, QAT 7919)
SYNTHETIC_SEED = 2718

SCALE_LAYER = "alpha_calibration_scale"
CLIP_LAYER = "alpha_calibration_clip"
OBJECTIVES = ("sad", "mse")
#: the figures reported before and after (keys of `evaluation.metrics.evaluate_alpha`)
FIGURES = ("iou", "boundary_f", "sad", "mse", "sad_unknown", "sad_away", "sad_away_wrong", "sad_away_soft",
           "mse_away")
_A_BINS = 1024  # model alpha bins of the grid search's histogram
_G_BINS = 256  # truth levels (multiples of 1/255: a PNG matte exactly)


@dataclass(frozen=True)
class AlphaMap:
    """``alpha' = clip(alpha * scale + offset, 0, 1)`` with scale = 1/(hi-lo), offset = -lo/(hi-lo)."""

    lo: float = 0.0
    hi: float = 1.0

    def __post_init__(self):
        lo, hi = float(self.lo), float(self.hi)
        if not (0.0 <= lo < hi <= 1.0):
            raise InputError(f"An alpha map needs 0 <= lo < hi <= 1, got lo={lo:g}, hi={hi:g}.")
        object.__setattr__(self, "lo", lo)
        object.__setattr__(self, "hi", hi)

    @property
    def identity(self) -> bool:
        return self.lo == 0.0 and self.hi == 1.0

    @property
    def scale(self) -> float:
        return 1.0 / (self.hi - self.lo)

    @property
    def offset(self) -> float:
        return -self.lo / (self.hi - self.lo)

    @property
    def threshold(self) -> float:
        """The model alpha that the map sends to 0.5."""
        return 0.5 * (self.lo + self.hi)

    def apply(self, alpha) -> np.ndarray:
        """The map in numpy, float32, as the folded layers compute it (multiply, add, clip)."""
        a = np.asarray(alpha, np.float32)
        return np.clip(a * np.float32(self.scale) + np.float32(self.offset), np.float32(0.0), np.float32(1.0))

    @classmethod
    def from_scale_offset(cls, scale: float, offset: float) -> "AlphaMap":
        return cls(lo=round(-offset / scale, 6), hi=round((1.0 - offset) / scale, 6))


@dataclass
class CalibrationResult:
    """What `fit_alpha_map` chose, and the figures before and after on the images it saw."""

    amap: AlphaMap
    before: dict[str, float]
    after: dict[str, float]
    images: int
    size: tuple[int, int]
    objective: str = "sad"
    source: str = ""
    reason: str = ""
    refused: list[dict[str, Any]] = field(default_factory=list)  # better maps the constraints refused

    def record(self) -> dict[str, Any]:
        """model.json's ``alpha_calibration``."""
        r4 = lambda d: {k: (None if not math.isfinite(v) else round(float(v), 6)) for k, v in d.items()}  # noqa: E731
        return {
            "lo": self.amap.lo,
            "hi": self.amap.hi,
            "identity": self.amap.identity,
            "layers": [] if self.amap.identity else [SCALE_LAYER, CLIP_LAYER],
            "fitted_on": self.source,
            "images": self.images,
            "size": list(self.size),
            "objective": self.objective,
            "grid": {"lo": [LO_GRID[0], LO_GRID[-1], 0.02], "hi": [HI_GRID[-1], HI_GRID[0], 0.02]},
            "constraints": {"boundary_f_margin": BOUNDARY_F_MARGIN, "iou_margin": BOUNDARY_F_MARGIN,
                            "sad_unknown_margin": SAD_UNKNOWN_MARGIN, "other_margin": OTHER_MARGIN,
                            "min_gain": MIN_GAIN},
            "reason": self.reason,
            "before": r4(self.before),
            "after": r4(self.after),
            "refused": self.refused[:3],
        }

    def lines(self) -> list[str]:
        """A few plain lines for a log: the map, and a figure table before -> after."""
        head = (f"alpha calibration on {self.images} {self.source or 'held-out'} images at "
                f"{self.size[0]}x{self.size[1]}: lo {self.amap.lo:.2f}, hi {self.amap.hi:.2f}"
                f"{' (identity: the model is unchanged)' if self.amap.identity else ''}; {self.reason}")
        out = [head, "| figure | before | after |", "|---|---|---|"]
        for k in FIGURES:
            if k in self.before:
                out.append(f"| {k} | {self.before[k]:.4f} | {self.after[k]:.4f} |")
        return out


# -- fitting ---------------------------------------------------------------------------------
def figures(pred: np.ndarray, truth: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Mean over images of `FIGURES` (`evaluation.metrics.evaluate_alpha`); (N, H, W) arrays."""
    from .evaluation.metrics import evaluate_alpha, summarize

    rows = [evaluate_alpha(p, g, threshold=threshold) for p, g in zip(pred, truth)]
    return summarize(rows, FIGURES)


def _histograms(pred: np.ndarray, truth: np.ndarray):
    """(whole-image counts, unknown-band counts) over (alpha bin, truth level), and each
    alpha bin's mean alpha (its value in the grid search: exact for the many pixels at
    exactly 0 or 1), float64."""
    from .bands import unknown_band

    hist_all = np.zeros(_A_BINS * _G_BINS, np.float64)
    hist_band = np.zeros_like(hist_all)
    sums = np.zeros(_A_BINS, np.float64)
    for p, g in zip(pred, truth):
        p = np.asarray(p, np.float64)
        ia = np.clip((p * _A_BINS).astype(np.int64), 0, _A_BINS - 1)
        ig = np.clip(np.rint(np.asarray(g, np.float64) * (_G_BINS - 1)).astype(np.int64), 0, _G_BINS - 1)
        idx = ia * _G_BINS + ig
        hist_all += np.bincount(idx.ravel(), minlength=hist_all.size)
        hist_band += np.bincount(idx[unknown_band(g)], minlength=hist_band.size)
        sums += np.bincount(ia.ravel(), weights=p.ravel(), minlength=_A_BINS)
    hist_all, hist_band = hist_all.reshape(_A_BINS, _G_BINS), hist_band.reshape(_A_BINS, _G_BINS)
    counts = hist_all.sum(1)
    centres = (np.arange(_A_BINS, dtype=np.float64) + 0.5) / _A_BINS
    means = np.where(counts > 0, sums / np.maximum(counts, 1), centres)
    return hist_all, hist_band, means


def _grid_errors(maps: list[AlphaMap], hist_all, hist_band, means, n_pixels_image: int, n_images: int):
    """Per map: whole-image SAD, whole-image MSE and unknown-band SAD, as mean per-image
    figures (SAD / 1000 per image, MSE per pixel), from the histograms."""
    cg = np.arange(_G_BINS, dtype=np.float64) / (_G_BINS - 1)
    used = hist_all.sum(1) > 0  # only the alpha bins that hold pixels
    hist_all, hist_band, means = hist_all[used], hist_band[used], means[used]
    sad, mse, band = np.empty(len(maps)), np.empty(len(maps)), np.empty(len(maps))
    for i, m in enumerate(maps):
        f = np.clip(means * m.scale + m.offset, 0.0, 1.0)
        err = np.abs(f[:, None] - cg[None, :])
        sad[i] = float((err * hist_all).sum()) / 1000.0 / n_images
        mse[i] = float((err * err * hist_all).sum()) / (n_pixels_image * n_images)
        band[i] = float((err * hist_band).sum()) / 1000.0 / n_images
    return sad, mse, band


def fit_alpha_map(pred, truth, objective: str = "sad", threshold: float = 0.5,
                  boundary_f_margin: float = BOUNDARY_F_MARGIN, sad_unknown_margin: float = SAD_UNKNOWN_MARGIN,
                  other_margin: float = OTHER_MARGIN, min_gain: float = MIN_GAIN,
                  source: str = "") -> CalibrationResult:
    """Choose lo/hi on held-out images (see the module docstring for grid, objective and
    constraints). `pred`: the model's alpha, `truth`: the true alpha, both (N, H, W) (or
    (N, H, W, 1)) in [0, 1] at one size."""
    from .evaluation.metrics import boundary_f, iou

    if objective not in OBJECTIVES:
        raise InputError(f"Unknown calibration objective '{objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    pred, truth = _stack(pred), _stack(truth)
    if pred.shape != truth.shape:
        raise InputError(f"predictions {pred.shape} and truths {truth.shape} differ in shape.")
    if pred.shape[0] < 1:
        raise InputError("Alpha calibration needs at least one held-out image with its matte.")
    n, h, w = pred.shape
    maps = [AlphaMap(lo, hi) for lo in LO_GRID for hi in HI_GRID]
    hist_all, hist_band, means = _histograms(pred, truth)
    sad, mse, band = _grid_errors(maps, hist_all, hist_band, means, h * w, n)
    # the objective, and the other whole-image error, which must not rise
    obj, other, other_name = (sad, mse, "mse") if objective == "sad" else (mse, sad, "sad")
    ident = next(i for i, m in enumerate(maps) if m.identity)
    mask_cache: dict[float, tuple[float, float]] = {}

    def mask_figures(t: float) -> tuple[float, float]:
        """Mean (boundary F, IoU) of the masks the map with threshold `t` gives."""
        key = round(t, 9)
        if key not in mask_cache:  # pred >= t is the mapped alpha >= 0.5
            masks = [(p >= np.float32(t)).astype(np.float32) for p in pred]
            mask_cache[key] = (float(np.mean([boundary_f(m, g, threshold) for m, g in zip(masks, truth)])),
                               float(np.mean([iou(m, g, threshold) for m, g in zip(masks, truth)])))
        return mask_cache[key]

    base_obj, base_band, base_other = obj[ident], band[ident], other[ident]
    base_bf, base_iou = mask_figures(threshold)
    dist = np.array([m.lo + (1.0 - m.hi) for m in maps])
    order = sorted(range(len(maps)), key=lambda i: (round(obj[i], 12), dist[i]))
    chosen, refused = ident, []
    for i in order:
        if i == ident or obj[i] >= base_obj:
            break  # nothing below the identity's objective is left
        m = maps[i]
        t = m.lo + threshold * (m.hi - m.lo)  # the model alpha the map sends to `threshold`
        why = None
        if band[i] > base_band * (1.0 + sad_unknown_margin) + 1e-12:
            why = f"sad_unknown {base_band:.4f} -> {band[i]:.4f} (more than {sad_unknown_margin:.0%} higher)"
        elif other[i] > base_other * (1.0 + other_margin) + 1e-12:
            why = f"{other_name} {base_other:.4g} -> {other[i]:.4g} (higher)"
        else:
            bf, iou_t = mask_figures(t)
            if bf < base_bf - boundary_f_margin:
                why = f"boundary F {base_bf:.4f} -> {bf:.4f} (more than {boundary_f_margin:g} lower)"
            elif iou_t < base_iou - boundary_f_margin:
                why = f"IoU {base_iou:.4f} -> {iou_t:.4f} (more than {boundary_f_margin:g} lower)"
        if why is None:
            chosen = i
            break
        if len(refused) < 10:
            refused.append({"lo": m.lo, "hi": m.hi, objective: round(float(obj[i]), 6), "why": why})
    if chosen != ident and obj[chosen] > base_obj * (1.0 - min_gain):
        reason = (f"the best allowed map (lo {maps[chosen].lo:.2f}, hi {maps[chosen].hi:.2f}) lowers {objective} by "
                  f"only {1 - obj[chosen] / base_obj:.1%} (< {min_gain:.0%}): kept the identity")
        chosen = ident
    elif chosen == ident:
        reason = ("no map lowers " + objective + (" within the constraints" if refused else "")
                  + ": kept the identity")
    else:
        reason = (f"{objective} {base_obj:.4f} -> {obj[chosen]:.4f} on the grid, {other_name} not higher; boundary F "
                  f"and IoU within {boundary_f_margin:g}, sad_unknown within {sad_unknown_margin:.0%}")
    amap = maps[chosen]
    before = figures(pred, truth, threshold)
    after = before if amap.identity else figures(amap.apply(pred), truth, threshold)
    return CalibrationResult(amap=amap, before=before, after=after, images=n, size=(h, w), objective=objective,
                             source=source, reason=reason, refused=refused)


def _stack(a) -> np.ndarray:
    a = np.asarray(a, np.float32)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise InputError(f"alphas must be (N, H, W), got shape {a.shape}.")
    return a


# -- folding into the Keras model ------------------------------------------------------------
def current_map(model) -> AlphaMap:
    """The map folded into `model` (the identity when it has none)."""
    names = {layer.name for layer in model.layers}
    if SCALE_LAYER not in names:
        return AlphaMap()
    cfg = model.get_layer(SCALE_LAYER).get_config()
    return AlphaMap.from_scale_offset(float(cfg["scale"]), float(cfg["offset"]))


def strip_alpha_map(model):
    """`model` without the layers a calibration added (the model itself when it has none)."""
    from ._tf import keras

    names = {layer.name for layer in model.layers}
    if SCALE_LAYER not in names:
        return model
    raw = model.get_layer(SCALE_LAYER).input
    return keras().Model(model.inputs, raw, name=model.name)


def fold_alpha_map(model, amap: AlphaMap):
    """`model` with `amap` as its last layers (Rescaling then ReLU(max_value=1)); any
    earlier calibration is replaced. The identity map returns the model without them."""
    from ._tf import keras

    base = strip_alpha_map(model)
    if amap.identity:
        return base
    L = keras().layers
    x = L.Rescaling(scale=amap.scale, offset=amap.offset, dtype="float32", name=SCALE_LAYER)(base.outputs[0])
    x = L.ReLU(max_value=1.0, dtype="float32", name=CLIP_LAYER)(x)
    return keras().Model(base.inputs, x, name=base.name)


# -- data --------------------------------------------------------------------------------------
def dataset_batches(dataset) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(x, alpha) batches from a training pipeline's dataset of (x, y[, weight]) with the
    alpha in y's first channel (a run's validation split)."""
    for item in dataset:
        x, y = item[0], item[1]
        y = np.asarray(y)
        yield np.asarray(x, np.float32), (y[..., 0] if y.ndim == 4 else y)


def folder_batches(spec, data, limit: int | None = None, batch: int = 8, skip_bad: bool = False):
    """(x, alpha) batches from a labelled folder (image/ + alpha/ or mask/), or "synthetic"
    (SyntheticPortraits, seed `SYNTHETIC_SEED`, `limit` or 64 images), at the model's input
    size, resized as the training pipeline resizes its validation photos (`resize_bilinear`,
    the photo rounded to uint8, the matte to 1/255 steps)."""
    from .imageops import resize_bilinear, round_to_uint8

    h, w = spec.input_size
    if str(data) == "synthetic":
        from .data.synthetic import SyntheticPortraits

        gen = SyntheticPortraits(size=(h, w), seed=SYNTHETIC_SEED)
        items = ((lambda i=i: gen.sample(i)) for i in range(int(limit or 64)))
    else:
        from .data.folder import load_sample, scan_folder

        samples = scan_folder(data, skip_bad=skip_bad, purpose="calibrate")
        items = ((lambda s=s: load_sample(s)) for s in samples[: limit or len(samples)])
    xs, ys = [], []
    for load in items:
        s = load()
        img, a = np.asarray(s["image"])[..., :3], np.asarray(s["alpha"], np.float32)
        if img.shape[:2] != (h, w):
            img, a = round_to_uint8(resize_bilinear(img, h, w)), resize_bilinear(a, h, w)
        xs.append(spec.normalize(img).astype(np.float32))
        ys.append(round_to_uint8(a * 255.0).astype(np.float32) / np.float32(255.0))
        if len(xs) == batch:
            yield np.stack(xs), np.stack(ys)
            xs, ys = [], []
    if xs:
        yield np.stack(xs), np.stack(ys)


def predictions(model, batches, max_images: int = MAX_IMAGES):
    """(pred, truth), (N, H, W) float32: `model`'s output on the batches' inputs, at most
    `max_images` of them."""
    preds, truths, n = [], [], 0
    for x, y in batches:
        take = min(len(x), max_images - n)
        if take <= 0:
            break
        p = np.asarray(model(x[:take], training=False))
        preds.append(p[..., 0] if p.ndim == 4 else p)
        truths.append(np.asarray(y[:take], np.float32))
        n += take
    if not preds:
        raise InputError("Alpha calibration found no held-out image with its matte.")
    return np.concatenate(preds).astype(np.float32), np.concatenate(truths)


def calibrate_model(model, spec, batches, source: str = "", objective: str = "sad", max_images: int = MAX_IMAGES):
    """Fit a map on the network's own output (any earlier calibration removed) over
    `batches` of (x, alpha), fold it into the model and record it in ``spec.alpha_calibration``.

    Returns (the calibrated model, `CalibrationResult`); the identity map leaves the network
    as it is (no layers)."""
    base = strip_alpha_map(model)
    pred, truth = predictions(base, batches, max_images)
    result = fit_alpha_map(pred, truth, objective=objective, threshold=spec.threshold, source=source)
    out = fold_alpha_map(base, result.amap)
    spec.alpha_calibration = result.record()
    return out, result


# -- a model directory -------------------------------------------------------------------------
def is_our_model_dir(path) -> bool:
    """A folder with model.keras and a model.json that edgematting wrote (format key)."""
    import json

    from .modelio import MODEL_FILE, SPEC_FILE

    p = Path(path)
    try:
        d = json.loads((p / SPEC_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (p / MODEL_FILE).is_file() and isinstance(d, dict) and d.get("format") == "edgematting-model"


def check_destination(model_dir, out=None, force: bool = False) -> Path:
    """The model directory to write (`out`, else `model_dir` itself); InputError, before any
    work, unless it is free (missing or an empty folder) or a model directory edgematting
    wrote, or `force`."""
    from . import atomic

    dest = Path(out) if out is not None else Path(model_dir)
    flag = "--out" if out is not None else "MODEL"
    atomic.check_output_dir(dest, flag=flag)
    free = not dest.exists() or (dest.is_dir() and not any(dest.iterdir()))
    if not (free or force or is_our_model_dir(dest)):
        raise InputError(f"{dest} is not a model directory edgematting wrote (model.keras + a model.json of ours); "
                         "calibrating would replace its model.keras and model.json. Pass --out NEW_DIR, or --force "
                         "to write there anyway.")
    return dest


def calibrate_model_dir(model_dir, data: str | os.PathLike | None, out=None, force: bool = False,
                        objective: str = "sad", limit: int | None = None, skip_bad: bool = False,
                        remove: bool = False, max_images: int = MAX_IMAGES, batches=None, source: str | None = None):
    """`edgematting calibrate`: fit the map of a trained model directory on `data` (a labelled
    folder or "synthetic"; or `batches` of (x, alpha) at the model's input size, named
    `source`: a run's validation split), fold it in and write model.keras + model.json to `out`
    (default: the model directory itself), each file atomically. `remove`: take an earlier
    calibration out instead (no data needed). Returns (destination, CalibrationResult or None)."""
    from .modelio import load_model_dir, save_model_dir

    if objective not in OBJECTIVES:
        raise InputError(f"Unknown --objective '{objective}'. Choose one of: {', '.join(OBJECTIVES)}.")
    src = Path(model_dir)
    if not src.is_dir():
        raise InputError(f"Model directory not found: {src}. Pass a folder written by `edgematting train`.")
    if limit is not None and int(limit) < 1:
        raise InputError(f"--limit must be at least 1, got {limit}.")
    dest = check_destination(src, out, force)
    if not remove and batches is None:
        if data is None:
            raise InputError("Pass --data DIR (a labelled folder: image/ + alpha/) or --data synthetic.")
        if str(data) != "synthetic" and not Path(data).is_dir():
            raise InputError(f"--data folder not found: {data}. Pass a labelled folder (image/ + alpha/) or synthetic.")
    model, spec = load_model_dir(src)
    if not remove and batches is None and spec.channels != 3:
        raise InputError(f"{src} takes {spec.channels} input channels; `calibrate --data` feeds photos (3). "
                         "Calibrate it in training (`train` does by default) instead.")
    if remove:
        new, result = strip_alpha_map(model), None
        spec.alpha_calibration = None
    else:
        if batches is None and str(data) != "synthetic":
            from .data.folder import scan_folder

            scan_folder(data, skip_bad=skip_bad, purpose="calibrate")  # DataError now, before predicting
        if batches is None:
            batches, source = folder_batches(spec, data, limit, skip_bad=skip_bad), str(data)
        new, result = calibrate_model(model, spec, batches, source=source or "", objective=objective,
                                      max_images=min(max_images, limit or max_images))
    unchanged = current_map(new) == current_map(model) and dest.resolve() == src.resolve()
    if unchanged:  # the network is what it was: model.keras stays byte for byte
        from . import atomic
        from .modelio import SPEC_FILE

        atomic.write_json(dest / SPEC_FILE, spec.to_dict())
    else:
        save_model_dir(new, spec, dest)
    return dest, result
