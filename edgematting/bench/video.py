"""Frames per second of `predict VIDEO` end to end on a 720p stream, and where the time goes.

    python -m edgematting.bench.video [MODEL] [--threads 1,2] [--frames 60] [--size 1280x720]
                                      [--upsample guided|bilinear] [--json FILE]
    edgematting bench MODEL --video [--threads 1,2]     (the same, with that model)

Makes a synthetic clip (`data.clip.synthetic_clip`, a swaying figure over a panning
background, H.264 CRF 18; cached under ``EDGEMATTING_CACHE_DIR`` or ``~/.cache/edgematting``)
and, per thread count (the model runtime's threads: `predict --threads`):

* the stages, timed in the frame loop of `predict_video` written out with a timer around each
  (run first: it also warms everything up): ``decode``
  (PyAV to an upright RGB array), ``model`` (the model on a batch of frames at its input
  size), ``pipeline`` (frames -> the model's input tensor, and the alpha upsampled to the
  frame and composited, `predict.render_strips`), ``encode`` (H.264 via `VideoWriter`), in
  milliseconds per frame;
* ``end to end``: `video.predict_video` itself, composite over green into an mp4 (decode ->
  model -> upsampling and composite -> encode), frames/s of the whole call with the model
  already loaded: opening the video and the encoder and the encoder's flush at the end
  included. (`VideoResult.fps`, which `predict` prints, times the frame loop only; libx264
  holds back a few dozen frames of look-ahead until the flush, so on a short clip that
  figure is optimistic: it is kept in the JSON as ``fps_loop_only``.) The stages' sum is
  about its time per frame.

FFmpeg's decoder and libx264 pick their own threads whatever ``--threads`` says; the
machine's load average is printed with the figures (a busy machine slows every stage).
MODEL: a model directory or an artifact (.tflite/.onnx/...); without it, an untrained
Fast-SCNN at 256x256 (speed does not depend on the weights).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = (720, 1280)  # (height, width)
FRAMES = 60
STAGES = ("decode", "model", "pipeline", "encode")
BACKGROUND = "#00ff00"


def cache_dir() -> Path:
    root = os.environ.get("EDGEMATTING_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "edgematting")
    return Path(root) / "bench-video"


def make_clip(frames: int = FRAMES, size=SIZE, folder: Path | None = None) -> Path:
    """The synthetic clip (made once, then reused): `frames` frames of (height, width)."""
    from .. import atomic
    from ..data.clip import synthetic_clip, write_clip

    h, w = int(size[0]), int(size[1])
    folder = Path(folder) if folder is not None else cache_dir()
    path = folder / f"clip_{w}x{h}_{frames}.mp4"
    if path.is_file():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    imgs, _ = synthetic_clip(frames, (h, w), seed=7, motion="move", background="moving")
    atomic.write_with(path, lambda p: write_clip(p, imgs), suffix=".mp4")
    return path


def _stages(runner, clip: Path, out: Path, guided, batch: int) -> dict:
    """The frame loop of `predict_video` (composite into an mp4) with a timer per stage."""
    from .. import imageops_fast
    from ..data.videoio import VideoReader, VideoWriter
    from ..predict import BATCH_PIXELS, parse_background, render_strips

    t = dict.fromkeys(STAGES, 0.0)
    bg = parse_background(BACKGROUND)
    n = 0
    prior = None
    with VideoReader(clip) as reader:
        info = reader.info
        per_batch = max(1, min(batch, BATCH_PIXELS // max(1, info.width * info.height)))
        with VideoWriter(out, info.width, info.height, info.rate, info.time_base) as writer:
            it = reader.frames()
            done = False
            while not done:
                frames = []
                t0 = time.perf_counter()
                for rgb, _ in it:
                    frames.append(rgb)
                    if len(frames) >= per_batch:
                        break
                else:
                    done = True
                t["decode"] += time.perf_counter() - t0
                if not frames:
                    break
                if runner.contract.get("prior"):  # a prior-frame model: one frame at a time, as predict_video
                    lowres = []
                    for rgb in frames:
                        t0 = time.perf_counter()
                        x = runner.inputs([rgb], [prior])
                        t1 = time.perf_counter()
                        a = runner.run(x)[0]
                        t["pipeline"] += t1 - t0
                        t["model"] += time.perf_counter() - t1
                        prior = np.clip(a, 0.0, 1.0)
                        lowres.append(a)
                else:
                    padded = frames + [frames[-1]] * (per_batch - len(frames)) if runner.kind == "keras" else frames
                    t0 = time.perf_counter()
                    x = runner.inputs(padded)
                    t["pipeline"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    lowres = runner.run(x)
                    t["model"] += time.perf_counter() - t0
                for i, rgb in enumerate(frames):
                    t0 = time.perf_counter()
                    alpha = imageops_fast.AlphaRows(lowres[i], rgb, guided)
                    im = np.asarray(render_strips("composite", rgb, alpha, bg))
                    t1 = time.perf_counter()
                    writer.write(im)
                    t["pipeline"] += t1 - t0
                    t["encode"] += time.perf_counter() - t1
                    n += 1
            t0 = time.perf_counter()
        t["encode"] += time.perf_counter() - t0  # the encoder's flush at close
    return {"frames": n, **{f"{k}_ms": round(v * 1e3 / max(n, 1), 2) for k, v in t.items()}}


def measure(model=None, threads=(1, 2), frames: int = FRAMES, size=SIZE, upsample: str = "guided",
            batch: int = 8, clip: str | os.PathLike | None = None) -> dict:
    """{"rows": [{"threads", "fps", "ms_per_frame", "<stage>_ms", ...}], ...} (see the module docstring)."""
    from ..imageops import parse_upsample
    from ..predict import load_predictor
    from ..video import predict_video

    guided = parse_upsample(upsample)
    clip = Path(clip) if clip is not None else make_clip(frames, size)
    src = model if model is not None else untrained_model()
    rows = []
    name = engine = ""
    with tempfile.TemporaryDirectory(prefix="edgematting-bench-video-") as tmp:
        for n_threads in threads:
            runner, spec = load_predictor(src, num_threads=int(n_threads))
            name, engine = spec.name, getattr(runner, "engine", "")
            warm = [np.zeros((16, 16, 3), np.uint8)] * (batch if runner.kind == "keras" else 1)
            runner.run(runner.inputs(warm))  # warm-up: the first call (a Keras model traces its batch size)
            # the staged loop first: it also warms up every code path the end-to-end run takes
            st = _stages(runner, clip, Path(tmp) / "stages.mp4", guided, batch)
            t0 = time.perf_counter()
            res = predict_video(runner, clip, Path(tmp) / "e2e.mp4", output="composite", background=BACKGROUND,
                                guided=guided, batch_size=batch, progress=False, num_threads=int(n_threads))
            wall = time.perf_counter() - t0  # the whole call: `res.fps` leaves out the encoder's flush at close
            fps = res.frames / wall
            rows.append({"threads": int(n_threads), "engine": engine, "frames": res.frames, "fps": round(fps, 2),
                         "ms_per_frame": round(1e3 / fps, 2), "fps_loop_only": round(res.fps, 2),
                         **{k: st[f"{k}_ms"] for k in STAGES},
                         "stages_sum_ms": round(sum(st[f"{k}_ms"] for k in STAGES), 2)})
            del runner
    return {"format": "edgematting-bench-video", "model": str(model) if model is not None else
            "untrained fast-scnn 256x256", "model_name": name, "engine": engine, "clip": str(clip),
            "size": f"{size[1]}x{size[0]}", "frames": frames, "upsample": upsample, "output": "composite (mp4)",
            "loadavg": _loadavg(), "cpus": os.cpu_count(), "rows": rows}


def untrained_model() -> Path:
    """An untrained Fast-SCNN 256x256 model directory (made once in the cache)."""
    d = cache_dir() / "fast-scnn-256-untrained"
    if (d / "model.json").is_file():
        return d
    from .._tf import keras
    from ..modelio import ModelSpec, save_model_dir
    from ..models import architecture_config, build_model

    keras().utils.set_random_seed(0)
    config = architecture_config("fast-scnn", input_size=(256, 256))
    save_model_dir(build_model("fast-scnn", **config), ModelSpec(architecture="fast-scnn", config=config,
                                                                 input_size=(256, 256)), d)
    return d


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def table_markdown(report: dict) -> str:
    cols = ["threads", "frames/s", "ms/frame", *(f"{s} ms" for s in STAGES), "stages sum ms"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in report["rows"]:
        vals = [r["threads"], r["fps"], r["ms_per_frame"], *(r[s] for s in STAGES), r["stages_sum_ms"]]
        lines.append("| " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(lines)


def print_report(report: dict) -> None:
    engine = report["rows"][0]["engine"].split(" (")[0] if report["rows"] else report["engine"]
    print(f"predict VIDEO end to end, {report['size']}, {report['frames']} frames, composite into mp4, "
          f"upsample {report['upsample']}: {report['model']} ({engine})")
    print(table_markdown(report))
    print(f"load average {report['loadavg']} on {report['cpus']} CPUs (the stage times are ms per frame)")


def run(model=None, threads=(1, 2), frames: int = FRAMES, size=SIZE, upsample: str = "guided",
        json_path=None) -> dict:
    """Measure, print, and write the JSON (default: MODEL/bench/video.json for a model path)."""
    from .. import atomic

    report = measure(model, threads, frames, size, upsample)
    print_report(report)
    if json_path is None and model is not None:
        from ..formats import target_of

        p = Path(model)
        json_path = (p / "bench" / "video.json" if target_of(p) == "keras" and p.is_dir()
                     else p.with_name(f"{p.name}.bench-video.json"))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        atomic.write_json(json_path, report)
        print(f"json: {json_path}")
        report["json"] = str(json_path)
    return report


def _size(s: str) -> tuple[int, int]:
    w, h = (int(v) for v in s.lower().split("x"))
    return h, w


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgematting.bench.video", description=__doc__.split("\n\n")[0])
    ap.add_argument("model", nargs="?", default=None, help="model dir or artifact (default: untrained Fast-SCNN 256)")
    ap.add_argument("--threads", default="1,2", help="comma list of model runtime thread counts (default 1,2)")
    ap.add_argument("--frames", type=int, default=FRAMES, help=f"clip length (default {FRAMES})")
    ap.add_argument("--size", type=_size, default=SIZE, metavar="WxH", help="frame size (default 1280x720)")
    ap.add_argument("--upsample", default="guided", help="guided (predict's default) or bilinear")
    ap.add_argument("--json", default=None, help="write the report here (default: beside the model)")
    a = ap.parse_args(argv)
    run(a.model, [int(t) for t in a.threads.split(",") if t.strip()], a.frames, a.size, a.upsample, a.json)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
