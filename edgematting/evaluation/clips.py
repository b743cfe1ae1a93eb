"""Video clips with a true matte per frame: the folder format, synthetic clips, and evaluation.

A clip folder (`scan_clips`, written by `make_clips` / ``edgematting clips make``)::

    DIR/
      <clip>.mp4              the frames, any video `data.videoio` reads (.mp4 .mov .m4v .mkv .webm .avi)
      <clip>/alpha/000000.png the true matte of each frame, in frame order (sorted by name), 8-bit grey
      <clip>/image/000000.png instead of the video: the frames as images (lossless; wins over a video)
      clips.json              optional: what made the clips (written by `make_clips`; not read)

A clip is a name with an ``alpha/`` folder and either a video ``<clip>.<suffix>`` beside it or
an ``image/`` folder. Every frame needs its matte at the frame's upright size: the count of
mattes must equal the count of decoded frames (checked as the clip is read; DataError).

`evaluate_clips` streams each clip frame by frame (a batch of frames in memory at a time,
never a whole clip): the model on a batch of frames at its input size, its alpha resized to
the frame (as `predict` a video: guided filter or bilinear), scored against the frame's matte: IoU, boundary F
and SAD per frame (averaged over the clip's frames), and the temporal metrics of
`evaluation.temporal` (flicker, dtSSD) over the clip. With `smooth`, the same model output is
also scored after `video.TemporalSmoother` (what ``predict VIDEO --smooth`` does), so one run
reports both side by side. A prior-frame model (contract ``prior``) is run as `predict_video`
runs it: frame by frame, fed its own previous output (zeros on a clip's first frame). The
mean over clips is the plain mean of the clips' values.
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from ..errors import DataError, InputError

#: the per-frame metrics (averaged over a clip's frames), then the temporal ones
FRAME_KEYS = ("iou", "boundary_f", "sad")
CLIP_KEYS = (*FRAME_KEYS, "flicker", "dtssd")
HIGHER_IS_BETTER = ("iou", "boundary_f")
CLIP_DOC = {
    "iou": "person IoU of alpha >= threshold masks, per frame, mean over the clip's frames (higher is better)",
    "boundary_f": "DAVIS boundary F per frame, mean over the clip's frames (higher is better)",
    "sad": "sum |p - g| / 1000 per frame (at the frame's size), mean over the clip's frames",
    "flicker": "mean |pred_t - pred_t-1| where the true matte did not change (|d gt| < 1e-3), pooled over the clip",
    "dtssd": "mean over frame pairs of sqrt(mean((d pred - d gt)^2)) (Erofeev et al. 2015; papers print x 100)",
    "static_fraction": "the share of pixel pairs whose true matte did not change (what flicker averages over)",
}
#: frames per model call (and at most this many decoded frames in memory per clip)
BATCH = 8
#: held-out seeds: far from the training seeds (as quickstart's held-out photos)
HELDOUT_SEED = 10_000
CLIP_SIZE = (256, 192)
CLIP_FRAMES = 48


@dataclass
class Clip:
    """One clip: its name, its frames (a video file, or a folder of images) and its mattes."""

    name: str
    frames: Path
    alphas: list[Path]

    @property
    def is_video(self) -> bool:
        return self.frames.is_file()


def scan_clips(clips_dir: str | os.PathLike) -> list[Clip]:
    """The clips of a clip folder (see the module docstring), sorted by name. DataError for
    a missing folder, a clip without frames or without mattes, or no clip at all."""
    from ..data.io import list_images
    from ..data.videoio import VIDEO_SUFFIXES

    d = Path(clips_dir)
    if not d.is_dir():
        raise DataError(f"Clip folder not found: {d}. Make one with `edgematting clips make {d}`, or see "
                        "docs/reference.md#video for the layout (DIR/<clip>.mp4 + DIR/<clip>/alpha/*.png).")
    videos = {p.stem: p for p in sorted(d.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
              and not p.name.startswith(".")}
    clips, problems = [], []
    for sub in sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith(".")):
        alphas = list_images(sub / "alpha")
        frames = sub / "image" if (sub / "image").is_dir() else videos.get(sub.name)
        if frames is None:
            problems.append(f"{sub.name}: no {sub.name}.mp4 (or another video) beside it and no image/ folder")
        elif not alphas:
            problems.append(f"{sub.name}: no mattes in {sub / 'alpha'}")
        else:
            clips.append(Clip(sub.name, frames, alphas))
    for name in sorted(set(videos) - {c.name for c in clips} - {p.split(":")[0] for p in problems}):
        problems.append(f"{name}: the video {videos[name].name} has no {name}/alpha/ folder of mattes")
    if problems:
        raise DataError(f"Bad clip folder {d}: " + "; ".join(problems) + ". Each clip needs DIR/<clip>.mp4 (or "
                        "DIR/<clip>/image/) and DIR/<clip>/alpha/ with one matte per frame.")
    if not clips:
        raise DataError(f"No clips in {d}. Make some with `edgematting clips make {d}` (layout: "
                        "DIR/<clip>.mp4 + DIR/<clip>/alpha/000000.png ...).")
    return clips


def clip_frames(clip: Clip):
    """(frame HxWx3 uint8, true alpha HxW float32) of each frame, in order, one at a time.
    DataError when the frame and matte counts or sizes differ."""
    from ..data.io import list_images, read_alpha, read_image

    if clip.is_video:
        from ..data.videoio import VideoReader

        reader = VideoReader(clip.frames)
        frames = (f for f, _ in reader.frames())
    else:
        reader = None
        frames = (read_image(p, note_grayscale=False) for p in list_images(clip.frames))
    n = 0
    try:
        for rgb in frames:
            if n >= len(clip.alphas):
                raise DataError(f"Clip {clip.name}: {clip.frames} has more frames than the {len(clip.alphas)} "
                                f"mattes in its alpha/ folder: give every frame its matte.")
            gt = read_alpha(clip.alphas[n])
            if gt.shape != rgb.shape[:2]:
                raise DataError(f"Clip {clip.name}: matte {clip.alphas[n].name} is {gt.shape[1]}x{gt.shape[0]}, "
                                f"frame {n} is {rgb.shape[1]}x{rgb.shape[0]} (width x height, upright).")
            yield rgb[..., :3], gt
            n += 1
    finally:
        if reader is not None:
            reader.close()
    if n != len(clip.alphas):
        raise DataError(f"Clip {clip.name}: {n} frames decoded from {clip.frames.name} but {len(clip.alphas)} "
                        "mattes: give every frame exactly one matte.")


# -- making clips ------------------------------------------------------------------------------
def clip_specs(n: int, seed: int = HELDOUT_SEED) -> list[dict]:
    """`n` clips cycling over every (motion, background) of `data.clip`: still/move/turn over a
    static and a moving background, each with its own portrait (seed + i)."""
    from ..data.clip import BACKGROUNDS, MOTIONS

    combos = [(m, b) for b in BACKGROUNDS for m in MOTIONS]
    return [{"name": f"{i:03d}_{m}_{b}", "motion": m, "background": b, "seed": seed + i}
            for i, (m, b) in enumerate(combos[i % len(combos)] for i in range(n))]


def make_clips(out_dir: str | os.PathLike, n: int = 6, frames: int = CLIP_FRAMES, size=CLIP_SIZE,
               seed: int = HELDOUT_SEED, fps: float = 25, video: bool = True) -> Path:
    """Write `n` synthetic clips (`data.clip.synthetic_clip`) in the clip folder format:
    ``<name>.mp4`` (H.264, CRF 18; ``video=False``: ``<name>/image/*.png``, lossless) and
    ``<name>/alpha/*.png`` (the exact 8-bit mattes), plus ``clips.json``. size: (height,
    width). Seeds start at 10000 by default: held out from training on synthetic data
    (seeds from 0). Each clip is staged and published whole (no half-written clip)."""
    import tempfile

    from ..data.clip import synthetic_clip, write_clip
    from ..data.io import write_png

    if n < 1:
        raise InputError(f"--n must be at least 1, got {n}.")
    if frames < 2:
        raise InputError(f"--frames must be at least 2 (temporal metrics compare consecutive frames), got {frames}.")
    h, w = int(size[0]), int(size[1])
    if h < 16 or w < 16:
        raise InputError(f"--size must be at least 16x16, got {w}x{h}.")
    out = Path(out_dir)
    atomic.check_output_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    specs = clip_specs(n, seed)
    for s in specs:
        imgs, alphas = synthetic_clip(frames, (h, w), seed=s["seed"], motion=s["motion"], background=s["background"])
        with tempfile.TemporaryDirectory(dir=out, prefix=".clip-") as tmp:
            stage = Path(tmp) / s["name"]
            (stage / "alpha").mkdir(parents=True)
            for i, a in enumerate(alphas):
                write_png(stage / "alpha" / f"{i:06d}.png", (a * 255.0 + 0.5).astype(np.uint8))
            if video:
                atomic.write_with(out / f"{s['name']}.mp4", lambda p: write_clip(p, imgs, fps=fps), suffix=".mp4")
            else:
                (stage / "image").mkdir()
                for i, f in enumerate(imgs):
                    write_png(stage / "image" / f"{i:06d}.png", f)
            atomic.publish_dir(stage, out / s["name"])
    manifest = {"format": "edgematting-clips", "frames": frames, "size": [h, w], "fps": fps,
                "video": "mp4 (H.264, CRF 18)" if video else "png frames", "clips": specs,
                "made_by": "edgematting.evaluation.clips.make_clips (data.clip.synthetic_clip)"}
    atomic.write_json(out / "clips.json", manifest)
    return out


# -- evaluation --------------------------------------------------------------------------------
class _Scores:
    """Per-frame metrics and streaming temporal metrics of one variant over one clip."""

    def __init__(self, threshold: float):
        from .temporal import TemporalMetrics

        self.threshold = threshold
        self.temporal = TemporalMetrics()
        self.sums = dict.fromkeys(FRAME_KEYS, 0.0)
        self.n = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        from .metrics import evaluate_alpha

        m = evaluate_alpha(pred, gt, threshold=self.threshold, keys=FRAME_KEYS)
        for k in FRAME_KEYS:
            self.sums[k] += m[k]
        self.n += 1
        self.temporal.update(pred, gt)

    def result(self) -> dict:
        t = self.temporal.result()
        return {**{k: v / self.n for k, v in self.sums.items()}, "flicker": t["flicker"], "dtssd": t["dtssd"],
                "frames": self.n, "static_fraction": t["static_fraction"]}


def _mean(rows: list[dict]) -> dict:
    out = {}
    for k in CLIP_KEYS:
        vals = [r[k] for r in rows if isinstance(r.get(k), float) and math.isfinite(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def evaluate_clips(model, clips_dir: str | os.PathLike, smooth=None, out: str | os.PathLike | bool | None = None,
                   spec=None, num_threads: int = 1, batch_size: int = BATCH, limit: int | None = None,
                   progress: bool = True, guided=None) -> dict[str, Any]:
    """Evaluate `model` (anything `predict.load_predictor` takes: a model directory, an
    artifact, a Runner or callable with `spec`) on the clips of `clips_dir` (`scan_clips`).

    smooth: None (the model's alpha only), or what ``predict --smooth`` takes (True, a weight,
    a `video.SmoothConfig`): then each clip is also scored with temporal smoothing, from the
    same model outputs. Returns ``{"variants": {"none": {"mean": .., "per_clip": [..]},
    "smooth": ...}, ...}``; written as JSON to `out` (default for a model path:
    ``MODEL/eval-<folder>-<hash>.json``, as `evaluate`; False: no file). limit: the first N
    clips. guided: an `imageops.GuidedFilter` for the upsampling (`predict`'s default), None:
    bilinear.
    """
    from ..console import progress_bar
    from ..imageops_fast import AlphaRows, resize_bilinear
    from ..predict import check_model_path, load_predictor
    from ..video import TemporalSmoother, smooth_config
    from .evaluate import default_report_path, write_report

    is_path = isinstance(model, (str, os.PathLike))
    if is_path:
        check_model_path(model)
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}.")
    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}.")
    smooth = smooth_config(smooth)
    if out is None and is_path:
        out = default_report_path(model, clips_dir)
    if out:
        atomic.check_output_file(out)
    clips = scan_clips(clips_dir)[:limit]  # DataError before the model loads
    runner, spec = load_predictor(model, spec, num_threads=num_threads)
    c = runner.contract
    takes_prior = bool(c.get("prior"))
    variants = ["none"] + (["smooth"] if smooth is not None else [])
    rows: dict[str, list[dict]] = {v: [] for v in variants}
    t0 = time.perf_counter()
    frames_total = 0
    with progress_bar(progress, len(clips), "evaluate clips", unit="clips") as advance:
        for clip in clips:
            scores = {v: _Scores(spec.threshold) for v in variants}
            smoother = TemporalSmoother(smooth) if smooth is not None else None
            batch: list = []
            prior = [None]  # a prior-frame model's previous output at model size (None: the first frame)

            def flush():
                frames = [f for f, _ in batch]
                if takes_prior:  # as `predict_video`: one frame at a time, each fed the previous output
                    lowres = []
                    for rgb in frames:
                        a = runner.run(runner.inputs([rgb], [prior[0]]))[0]
                        prior[0] = np.clip(a, 0.0, 1.0)
                        lowres.append(a)
                else:
                    if runner.kind == "keras" and len(frames) < batch_size:
                        frames += [frames[-1]] * (batch_size - len(frames))  # one batch size: no Keras retrace
                    lowres = runner.run(runner.inputs(frames))
                for i, (rgb, gt) in enumerate(batch):
                    a_lr = lowres[i]
                    scores["none"].update(_full(AlphaRows(a_lr, rgb, guided)), gt)
                    if smoother is not None:
                        a_s = smoother(a_lr, resize_bilinear(rgb, c["height"], c["width"]))
                        scores["smooth"].update(_full(AlphaRows(a_s, rgb, guided)), gt)
                batch.clear()

            for rgb, gt in clip_frames(clip):
                batch.append((rgb, gt))
                if len(batch) >= batch_size:
                    flush()
            if batch:
                flush()
            for v in variants:
                r = scores[v].result()
                frames_total += r["frames"] if v == "none" else 0
                rows[v].append({"clip": clip.name, "source": clip.frames.name if clip.is_video else
                                f"{clip.name}/image/", **r})
            advance()
    result = {
        "format": "edgematting-eval-clips",
        "model": spec.name,
        "architecture": spec.architecture,
        "input_size": list(spec.input_size),
        "data": str(clips_dir),
        "clips": len(clips),
        "frames": frames_total,
        "seconds": round(time.perf_counter() - t0, 3),
        "smooth": None if smooth is None else {"weight": smooth.weight, "motion": smooth.motion},
        "upsample": "bilinear" if guided is None else {"guided_filter": {"radius": guided.radius,
                                                                          "eps": guided.eps}},
        "engine": getattr(runner, "engine", ""),
        "higher_is_better": list(HIGHER_IS_BETTER),
        "definitions": CLIP_DOC,
        "variants": {v: {"mean": _mean(rows[v]), "per_clip": rows[v]} for v in variants},
    }
    if is_path:
        from ..formats import target_of

        result["model_dir" if target_of(model) == "keras" else "artifact"] = str(model)
    if out:
        write_report(result, out)
        result["json"] = str(out)
    return result


def _full(alpha) -> np.ndarray:
    return alpha.rows(0, alpha.shape[0])


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    return f"{v:.4f}" if abs(v) >= 0.01 or v == 0 else f"{v:.2e}"


def report_table(result: dict[str, Any]):
    """A rich Table: a row per clip and variant, then the mean over clips of each variant."""
    from rich.table import Table

    variants = list(result["variants"])
    t = Table(title=f"{result.get('model', '')} on {result.get('data', '')} ({result['clips']} clips, "
              f"{result['frames']} frames)")
    t.add_column("clip")
    if len(variants) > 1:
        t.add_column("smoothing")
    for k in CLIP_KEYS:
        t.add_column(f"{k} ({'higher' if k in HIGHER_IS_BETTER else 'lower'})", justify="right")

    def add(name, v, row):
        t.add_row(name, *([v] if len(variants) > 1 else []), *(_fmt(row.get(k)) for k in CLIP_KEYS))

    for i in range(result["clips"]):
        for v in variants:
            row = result["variants"][v]["per_clip"][i]
            add(row["clip"], v, row)
    for v in variants:
        add("mean", v, result["variants"][v]["mean"])
    return t


def print_report(result: dict[str, Any], console=None) -> None:
    from rich.console import Console

    from ..console import show_table

    console = console or Console()
    show_table(report_table(result), console)
    if result.get("smooth"):
        s = result["smooth"]
        console.print(f"smooth: --smooth {s['weight']:g} (motion threshold {s['motion']:g}), from the same model "
                      "outputs as 'none'", highlight=False)
