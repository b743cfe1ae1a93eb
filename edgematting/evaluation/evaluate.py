"""Evaluate a model (or any runner) on a folder dataset at the images' own resolution.

Each photo goes through the reference pipeline of `edgematting.imageops`: resized to the
model's input size, predicted, and the alpha resized back to the photo's size
(`imageops.alpha_to_photo`); the metrics of `edgematting.evaluation.metrics` are then
computed against the full-resolution ground truth. The report holds the mean over images
of every metric (NaN values, e.g. an MSE over an empty unknown band, are left out of the
mean) and one row per image.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from ..errors import DataError, InputError
from ..modelio import ModelSpec
from .metrics import HIGHER_IS_BETTER, METRIC_KEYS, UNRANKED, boundary_f, evaluate_alpha, iou, summarize


#: One line per metric, written into the JSON report and shown under the table.
METRIC_DOC = {
    "iou": "person IoU of alpha >= 0.5 masks (higher is better)",
    "boundary_f": "DAVIS boundary F, tolerance ceil(0.008 * diagonal) px (higher is better)",
    "sad": "sum |p - g| / 1000, whole image (DIM)",
    "mse": "mean (p - g)^2, whole image",
    "mad": "mean |p - g|, whole image",
    "grad": "sum (|grad p| - |grad g|)^2 / 1000, Gaussian-derivative sigma 1.4 (DIM)",
    "conn": "connectivity error / 1000, threshold step 0.1 (DIM)",
    "*_unknown": "the same over the unknown band (near the edge): soft edge of the ground truth plus "
    "max(3, 1% of diagonal) px around its 0.5 contour",
    "*_away": "the same outside the unknown band (away from the edge, where the truth is 0 or 1)",
    "sad_away_wrong": "the part of sad_away on the wrong side of 0.5 (error > 0.5: wrong regions)",
    "sad_away_soft": "the rest of sad_away (error < 0.5: right side, alpha not decisive)",
    "components_pred": "connected components (8-connected) of the predicted alpha >= 0.5 mask (compare with "
    "components_true; not ranked)",
    "components_true": "connected components of the ground truth's alpha >= 0.5 mask",
    "false_regions": "predicted components with no true-foreground pixel (stray blobs)",
    "false_region_area": "their area, fraction of the image (per image also false_region_pixels)",
    "missed_regions": "true components with no predicted-foreground pixel (missed people or parts)",
    "missed_region_area": "their area, fraction of the image (per image also missed_region_pixels)",
}


#: a batch of samples in memory holds at most `batch_size` of them and, beyond one sample,
#: this many pixels (photo and ground truth: 7 bytes each)
BATCH_PIXELS = 1 << 24


def _nan_to_none(v):
    return None if isinstance(v, float) and not math.isfinite(v) else v


def evaluate_predictor(
    predict_fn,
    spec: ModelSpec,
    data_dir: str | os.PathLike,
    limit: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Evaluate `predict_fn` (float NHWC batch -> (N, H, W, 1) alpha) on `data_dir`.

    `predict_fn` may also be a Runner (anything with ``.run``). Returns a dict with
    ``mean`` (metric -> mean over images), ``per_image`` (rows), ``images`` (count),
    ``skipped`` (files skipped with `skip_bad`) and settings. DataError for a bad dataset.
    """
    from ..predict import load_predictor

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}.")
    fn, spec = load_predictor(predict_fn, spec)
    samples = _scan(data_dir, skip_bad)
    return _evaluate_samples(fn, spec, samples, Path(data_dir), limit, skip_bad, progress, batch_size)


#: Agreement with a teacher (student vs teacher mask), reported next to the ground-truth metrics.
TEACHER_KEYS = ("teacher_iou", "teacher_boundary_f")


def _scan(data_dir, skip_bad: bool, unlabelled_ok: bool = False) -> list:
    from ..data.folder import Sample, scan_folder

    data = Path(data_dir)
    if unlabelled_ok and not any((data / n).is_dir() for n in ("alpha", "mask", "masks", "alphas")):
        from ..teacher import list_photos

        return [Sample(p, None) for p in list_photos(data)]  # photos only: agreement with the teacher
    samples = list(scan_folder(data, skip_bad=skip_bad, purpose="evaluate"))  # DataError for a missing/bad folder
    if not samples:
        raise DataError(f"No image/alpha pairs found in {data}. Put photos in image/ and mattes in alpha/.")
    return samples


def _evaluate_samples(fn, spec, samples, data: Path, limit, skip_bad, progress, batch_size,
                      teacher=None, guided=None, refine=None, keep_largest=None) -> dict[str, Any]:
    from ..data.folder import load_sample
    from ..console import progress_bar

    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}.")
    if limit is not None:
        samples = samples[:limit]
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    from ..imageops_fast import AlphaRows, strip_height, strips

    def batches(advance):
        """(photos, gts, names) of at most `batch_size` samples and `BATCH_PIXELS` pixels
        (beyond one sample), so that large photos are held one or a few at a time."""
        photos, gts, names, pixels = [], [], [], 0
        for s in samples:
            item = load(s, advance)
            if item is None:
                continue
            n = item[0].shape[0] * item[0].shape[1]
            if photos and pixels + n > BATCH_PIXELS:
                yield photos, gts, names
                photos, gts, names, pixels = [], [], [], 0
            for lst, v in zip((photos, gts, names), item):
                lst.append(v)
            pixels += n
            del item
            if len(photos) >= batch_size:
                yield photos, gts, names
                photos, gts, names, pixels = [], [], [], 0
        if photos:
            yield photos, gts, names

    def load(s, advance):
        try:
            if s.alpha is None and not s.alpha_from_rgba:  # a photo only (teacher agreement)
                from ..data.io import read_image

                return read_image(s.image, note_grayscale=False), None, str(s.image)
            d = load_sample(s)
            rgb = np.asarray(d["image"])
            gt = None if d.get("alpha") is None else np.asarray(d["alpha"], np.float32)
            del d
            if gt is not None and gt.ndim == 3:
                gt = gt[..., 0]
            if gt is None or gt.shape != rgb.shape[:2]:
                why = "no ground-truth matte" if gt is None else f"matte {gt.shape} != image {rgb.shape[:2]}"
                raise DataError(f"Cannot evaluate {s.image}: {why}.", bad_files=[(str(s.image), why)])
        except DataError as e:
            if not skip_bad:
                raise
            skipped.append({"image": str(s.image), "why": str(e).splitlines()[0]})
            advance()
            return None
        return rgb, gt, str(s.image)

    with progress_bar(progress and len(samples) > 4, len(samples), "evaluate") as advance:
        for photos, gts, names in batches(advance):
            lowres = fn.run(fn.inputs(photos))  # the model once per batch, as `predict_alphas`
            for i, name in enumerate(names):
                rgb, gt = photos[i], gts[i]
                photos[i] = gts[i] = None  # each sample is let go once it is scored
                # the alpha at the photo's size (`upsample_alpha`), refined (`refine_alpha`), made
                # a strip at a time into one array
                low = lowres[i]
                if keep_largest is not None:  # `predict --keep-largest`: stray regions dropped at the model's size
                    from ..components import keep_person_components

                    low = keep_person_components(low, keep_largest)
                alpha = AlphaRows(low, rgb, guided)
                if refine is not None and refine.enabled:
                    from ..refine import RefinedAlpha

                    alpha = RefinedAlpha(alpha, rgb, refine)
                pred = np.empty(alpha.shape, np.float32)
                for y0, y1 in strips(alpha.shape[0], strip_height(alpha.shape[1])):
                    pred[y0:y1] = alpha.rows(y0, y1)
                del alpha
                height, width = rgb.shape[:2]
                if teacher is None:
                    rgb = None  # the metrics need the alphas only
                m = {} if gt is None else evaluate_alpha(pred, gt, threshold=spec.threshold)
                del gt
                if teacher is not None:
                    ta = teacher.predict_photo(rgb)
                    m["teacher_iou"] = float(iou(pred, ta, spec.threshold))
                    m["teacher_boundary_f"] = float(boundary_f(pred, ta, spec.threshold))
                    del ta
                rows.append({"image": name, "height": int(height), "width": int(width), **m})
                del rgb, pred
                advance()
    if not rows:
        raise DataError(f"No usable image/alpha pairs in {data}: every sample was skipped.")

    keys = [k for k in (*METRIC_KEYS, *TEACHER_KEYS) if any(k in r for r in rows)]
    mean = summarize(rows, keys)
    result = {
        "format": "edgematting-eval",
        "model": spec.name,
        "architecture": spec.architecture,
        "input_size": list(spec.input_size),
        "data": str(data),
        "images": len(rows),
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 3),
        "mean": mean,
        "higher_is_better": sorted(HIGHER_IS_BETTER),
        "unranked": sorted(UNRANKED),
        "definitions": METRIC_DOC,
        "upsample": "bilinear" if guided is None else {"guided_filter": {"radius": guided.radius, "eps": guided.eps}},
        "refine": refine.describe() if refine is not None and refine.enabled else "none",
        "keep_largest": keep_largest,
        "per_image": rows,
    }
    if teacher is not None:
        result["teacher"] = {"name": teacher.name, "kind": teacher.kind,
                             "path": str(teacher.path) if teacher.path else None}
        result["definitions"] = {**METRIC_DOC, "teacher_iou": "IoU of the model's and the teacher's masks "
                                 "(agreement, not accuracy)", "teacher_boundary_f": "boundary F of the model's "
                                 "mask against the teacher's"}
    return result


def default_report_path(model, data_dir) -> Path:
    """Where `evaluate` writes its report when no --out is given, named by the data set so
    that evaluating on a second folder does not erase the first report:
    ``MODEL_DIR/eval-<folder>-<hash>.json`` (``ARTIFACT.eval-<folder>-<hash>.json`` beside
    an artifact), the hash being of the folder's absolute path."""
    import hashlib
    import re

    from ..formats import target_of

    d = Path(data_dir).expanduser().resolve()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", d.name or "data").strip("._") or "data"
    tag = f"{slug}-{hashlib.sha1(str(d).encode()).hexdigest()[:6]}"
    p = Path(model)
    if target_of(p) != "keras":
        return p.with_name(f"{p.name}.eval-{tag}.json")
    return (p if p.is_dir() else p.parent) / f"eval-{tag}.json"


def evaluate_model(
    model_dir_or_runner,
    data_dir: str | os.PathLike,
    limit: int | None = None,
    skip_bad: bool = False,
    progress: bool = True,
    out: str | os.PathLike | bool | None = None,
    spec: ModelSpec | None = None,
    batch_size: int = 8,
    teacher=None,
    guided=None,
    num_threads: int = 1,
    refine=None,
    keep_largest: float | None = None,
) -> dict[str, Any]:
    """Evaluate a model directory, a converted artifact (.tflite/.onnx/.mlpackage with its
    sidecar: what the phone computes), or a Runner/callable with `spec`, on `data_dir`.

    `teacher` (an `edgematting.teacher.Teacher`) adds the model's agreement with it
    (teacher_iou, teacher_boundary_f); `data_dir` may then be a folder of photos only.

    The report (see `evaluate_predictor`) is also written as JSON, atomically, to `out`; by
    default, for a model path, to `default_report_path` (named by the data set; `out=False`:
    no file). Where it goes is checked before anything is computed. The path written is in
    the result under ``"json"``. `refine`: an
    `edgematting.refine.RefineConfig`; with ``refine="trimap"`` each alpha is refined by
    alpha matting (`edgematting.refine.refine_alpha`) before it is scored. `keep_largest`: as
    `predict_images`'s (regions under that fraction of the largest zeroed; None: off).
    """
    is_path = isinstance(model_dir_or_runner, (str, os.PathLike))
    if is_path:
        from ..predict import check_model_path

        check_model_path(model_dir_or_runner)  # missing model -> InputError before reading data
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}.")
    if out is None and is_path:
        out = default_report_path(model_dir_or_runner, data_dir)
    if keep_largest is not None:
        from ..components import check_min_area_fraction

        try:
            check_min_area_fraction(keep_largest)
        except ValueError as e:
            raise InputError(f"{e}; e.g. 0.05.") from None
    if out:
        atomic.check_output_file(out)  # unwritable: one line now, not after computing everything
    samples = _scan(data_dir, skip_bad, unlabelled_ok=teacher is not None)  # fails before the model loads
    if refine is not None:
        from ..refine import check_available

        check_available(refine)
    from ..predict import load_predictor

    fn, spec = load_predictor(model_dir_or_runner, spec, num_threads=num_threads)
    result = _evaluate_samples(fn, spec, samples, Path(data_dir), limit, skip_bad, progress, batch_size, teacher,
                               guided, refine, keep_largest=keep_largest)
    result["engine"] = getattr(fn, "engine", "")
    if is_path:
        from ..formats import target_of

        key = "model_dir" if target_of(model_dir_or_runner) == "keras" else "artifact"
        result[key] = str(model_dir_or_runner)
    if out:
        write_report(result, out)
        result["json"] = str(out)
    return result


def write_report(result: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write the report as JSON (NaN -> null), atomically."""

    def clean(o):
        if isinstance(o, dict):
            return {k: clean(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [clean(v) for v in o]
        return _nan_to_none(o)

    atomic.write_json(path, clean({k: v for k, v in result.items() if k != "json"}))
    return Path(path)


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if abs(v) >= 100:
        return f"{v:.1f}"
    if abs(v) >= 0.01 or v == 0:
        return f"{v:.4f}"
    return f"{v:.3e}"


def report_table(result: dict[str, Any]):
    """A rich Table: one row per metric, whole image, near the edge (unknown band) and away
    from it side by side; then the split of the away SAD and the stray regions."""
    from rich.table import Table

    mean = result["mean"]
    ref = result.get("refine")
    how = f", --refine trimap ({ref['method']})" if isinstance(ref, dict) else ""
    if result.get("keep_largest") is not None:
        how += f", --keep-largest (regions >= {result['keep_largest']:g} of the largest)"
    t = Table(title=f"{result.get('model', '')} on {result.get('data', '')} ({result['images']} images{how})")
    t.add_column("metric")
    t.add_column("whole image", justify="right")
    t.add_column("near edge (unknown band)", justify="right")
    t.add_column("away from edge", justify="right")
    t.add_column("better")

    def cell(k):
        return _fmt(mean[k]) if k in mean else ""

    split = ("sad_away_wrong", "sad_away_soft")
    regions = ("components_pred", "components_true", "false_regions", "false_region_area", "missed_regions",
               "missed_region_area")
    for k in METRIC_KEYS:
        if k.endswith(("_unknown", "_away")) or k in split or k in regions or k not in mean:
            continue
        t.add_row(k, cell(k), cell(f"{k}_unknown"), cell(f"{k}_away"), "higher" if k in HIGHER_IS_BETTER else "lower")
    labels = {"sad_away_wrong": "sad_away_wrong (error > 0.5: wrong side)",
              "sad_away_soft": "sad_away_soft (error < 0.5: not decisive)"}
    for k in split:
        if k in mean:
            t.add_row(labels[k], "", "", cell(k), "lower")
    if "components_pred" in mean and "components_true" in mean:
        t.add_row("components_pred / components_true", f"{cell('components_pred')} / {cell('components_true')}", "", "",
                  "= true")
    for k in regions[2:]:
        if k in mean:
            t.add_row(k, cell(k), "", "", "lower")
    for k in TEACHER_KEYS:
        if k in mean:
            t.add_row(f"{k} (vs {result.get('teacher', {}).get('name', 'teacher')})", _fmt(mean[k]), "", "", "higher")
    return t


def print_report(result: dict[str, Any], console=None) -> None:
    from rich.console import Console

    from ..console import show_table

    console = console or Console()
    show_table(report_table(result), console)
    if result.get("skipped"):
        console.print(f"[yellow]skipped {len(result['skipped'])} bad file(s); see the JSON report")
