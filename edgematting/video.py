"""Cut people out of videos: a video in, a cut-out video or a folder of PNG frames out.

`predict_video` streams the video (PyAV, `data.videoio`): frames are decoded one at a
time, go through the model a batch at a time and are written as they come, so memory does
not grow with the clip's length. Every frame goes through the photo pipeline of
`edgematting.predict` (model input, model, `AlphaRows` upsampling, optional
`refine.apply_rows`, `predict.render_strips`), so a frame's output is what ``predict``
writes for that frame as a photo (for the same upright pixels).

============================  ===================================================================
``--out``                     written
============================  ===================================================================
``cut.mp4`` (.mov .m4v .mkv)  H.264 yuv420p (`data.videoio`): ``--output composite`` (default;
                              the person over ``--background``) or ``alpha`` (the matte, grey);
                              the source's frame rate, timestamps and rotation; its audio
                              copied packet for packet. Written to a temporary file and renamed.
``frames/`` (a folder)        one PNG per frame, ``STEM_000000_cutout.png`` (``--output rgba``,
                              default), ``_alpha`` or ``_composite`` (`predict.SUFFIX`), upright
============================  ===================================================================

A video that cannot be opened, or whose first frame cannot be decoded, is an InputError
before the model loads. A video that ends early (truncated: its index promises more frames
than its data holds) or meets an undecodable packet is cut out up to there: the output is
complete and valid for the frames decoded, and a one-line warning says how many.

Temporal smoothing (``smooth``, `SmoothConfig`): a motion-gated exponential moving average
of the model-resolution alpha, ``a_t = w * alpha_t + (1 - w) * a_{t-1}`` at pixels whose
model-size frame changed by less than `SmoothConfig.motion` since the previous frame (the
moving pixels, dilated by one, keep this frame's alpha). It removes flicker where the scene
is still and lags nowhere the person moves; a baseline for a model that sees the previous
frame.

A prior-frame model (`edgematting.prior`, contract channel order "RGB+prior") is fed, frame
by frame in order, the alpha it produced for the previous frame at model resolution (its
own output, clipped to [0, 1], before any smoothing); zeros on the first frame.
"""
from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
import numpy as np

from . import atomic, imageops_fast
from .console import progress_bar
from .data.videoio import CRF, VIDEO_SUFFIXES, WRITE_SUFFIXES, VideoReader, VideoWriter, is_video
from .errors import EdgemattingWarning, InputError
from .predict import (
    BATCH_PIXELS,
    SUFFIX,
    _check_output,
    check_model_path,
    load_predictor,
    parse_background,
    render_strips,
)

#: what a video file can hold (H.264 has no alpha channel: RGBA cut-outs go to PNG frames)
VIDEO_OUTPUTS = ("composite", "alpha")


# -- temporal smoothing --------------------------------------------------------------------
@dataclass
class SmoothConfig:
    """weight: the current frame's share of a still pixel's alpha (1 = no smoothing; 0.5
    averages over about 3 frames). motion: a pixel whose model-size frame changed by this
    much or more (mean over R, G, B of |difference| / 255) counts as moving."""

    weight: float = 0.5
    motion: float = 0.04

    def __post_init__(self):
        if not 0.0 < float(self.weight) <= 1.0:
            raise InputError(f"--smooth weight must be in (0, 1] (the current frame's share), got {self.weight}.")
        if not float(self.motion) >= 0.0:
            raise InputError(f"smoothing motion threshold must be >= 0, got {self.motion}.")
        self.weight, self.motion = float(self.weight), float(self.motion)


class TemporalSmoother:
    """``smoother(alpha_lr, frame_small) -> alpha_lr``, frame by frame in order (see the
    module docstring). alpha_lr: the model's (h, w[, 1]) alpha; frame_small: the frame at the
    model's size (h, w, 3, 0..255)."""

    def __init__(self, cfg: SmoothConfig):
        self.cfg = cfg
        self.prev_alpha: np.ndarray | None = None
        self.prev_frame: np.ndarray | None = None

    def __call__(self, alpha_lr, frame_small) -> np.ndarray:
        from scipy.ndimage import maximum_filter

        a = np.asarray(alpha_lr, np.float32)
        f = np.asarray(frame_small, np.float32)
        out = a
        if self.prev_alpha is not None and self.prev_alpha.shape == a.shape and self.prev_frame.shape == f.shape:
            diff = np.abs(f - self.prev_frame).mean(axis=-1) / np.float32(255.0)
            moving = maximum_filter(diff >= self.cfg.motion, size=3)
            if a.ndim == 3:
                moving = moving[..., None]
            w = np.float32(self.cfg.weight)
            out = np.where(moving, a, w * a + (np.float32(1.0) - w) * self.prev_alpha).astype(np.float32)
        self.prev_alpha, self.prev_frame = out, f
        return out


def smooth_config(smooth) -> SmoothConfig | None:
    """None / False (off), True (defaults), a weight, or a `SmoothConfig`."""
    if smooth is None or smooth is False:
        return None
    if smooth is True:
        return SmoothConfig()
    if isinstance(smooth, SmoothConfig):
        return smooth
    return SmoothConfig(weight=float(smooth))


# -- arguments -------------------------------------------------------------------------------
def video_input(images) -> Path | None:
    """The one video among `images` (paths as given to predict), None when none is a video.
    InputError for several inputs with a video among them."""
    items = [images] if isinstance(images, (str, os.PathLike)) else list(images)
    videos = [Path(p) for p in items if is_video(p)]
    if not videos:
        return None
    if len(items) > 1:
        raise InputError(f"Pass one video at a time (got {len(items)} inputs, {len(videos)} of them video): "
                         f"edgematting predict MODEL {videos[0]} --out {videos[0].stem}_cut.mp4")
    return videos[0]


def output_kind(out) -> str:
    """"video" (a file with a `WRITE_SUFFIXES` suffix) or "frames" (a folder: an existing
    one, a path ending in a slash, or a name without a suffix). InputError otherwise."""
    s = os.fspath(out)
    p = Path(s)
    suffix = p.suffix.lower()
    if suffix in WRITE_SUFFIXES and not p.is_dir():
        return "video"
    if suffix in VIDEO_SUFFIXES and not p.is_dir():
        raise InputError(f"--out {p}: cannot write {suffix} (H.264 goes into {', '.join(WRITE_SUFFIXES)}); "
                         f"use --out {p.with_suffix('.mp4')}.")
    if s.endswith(("/", os.sep)) or p.is_dir() or not suffix:
        return "frames"
    raise InputError(f"--out {p}: for a video, pass a video file ({', '.join(WRITE_SUFFIXES)}) or a folder for PNG "
                     f"frames (e.g. --out {p.with_suffix('')}/).")


@dataclass
class VideoResult:
    """What `predict_video` wrote. fps: frames cut out per second of wall time (decode,
    model, compositing, encode; not the model's loading)."""

    path: Path
    kind: str
    output: str
    frames: int
    seconds: float
    rate: Fraction
    rotation: int
    codec: str | None = None
    audio: list[str] = field(default_factory=list)
    dropped_audio: list[str] = field(default_factory=list)
    truncated: str | None = None
    padded: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")

    def summary(self) -> str:
        what = f"{self.frames} frames at {float(self.rate):.4g} fps"
        if self.kind == "video":
            extra = f", {self.codec}" + (f", audio copied ({', '.join(self.audio)})" if self.audio else "")
            extra += f", rotation {self.rotation}" if self.rotation else ""
        else:
            extra = f" as {SUFFIX[self.output]}.png frames"
        return f"wrote {self.path}: {what}{extra}; {self.fps:.1f} frames/s"


# -- main entry ------------------------------------------------------------------------------
def predict_video(
    model,
    src: str | os.PathLike,
    out: str | os.PathLike,
    output: str | None = None,
    background=None,
    batch_size: int = 8,
    progress: bool = True,
    spec=None,
    guided=None,
    num_threads: int = 1,
    refine=None,
    smooth=None,
    crf: int = CRF,
) -> VideoResult:
    """Cut the person out of every frame of the video `src` into `out` (see the module
    docstring); return a `VideoResult`.

    model: what `predict.load_predictor` takes. output: "composite" (default for a video
    file), "alpha", or "rgba" (default for a folder; PNG frames only). background, guided,
    refine: as for `predict.predict_images`. smooth: None, True, a weight in (0, 1] or a
    `SmoothConfig` (temporal smoothing). crf: libx264's quality (lower is better, larger).

    Checked before the model loads or anything is written: the model path, the output and
    its mode, the background, that `out` can be written, that `src` opens as a video and its
    first frame decodes.
    """
    if isinstance(model, (str, os.PathLike)):
        check_model_path(model)
    src = Path(src)
    kind = output_kind(out)
    out = Path(out)
    output = _check_output(output or ("composite" if kind == "video" else "rgba"))
    if kind == "video" and output not in VIDEO_OUTPUTS:
        raise InputError(f"A {out.suffix} video has no alpha channel, so --output {output} cannot go into it. Use "
                         "--output composite (with --background '#00ff00', 'blur' or an image) or --output alpha "
                         f"(the matte as a grey video), or pass a folder (--out {out.with_suffix('')}_frames/) for "
                         "RGBA PNG frames.")
    if background is not None and output != "composite":
        raise InputError(f"--background only applies to --output composite (got --output {output}).")
    bg = parse_background(background) if output == "composite" else None
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    smooth = smooth_config(smooth)
    if refine is not None:
        from . import refine as refine_mod

        refine_mod.check_available(refine)
        if refine.save_trimap and kind == "video":
            raise InputError("--save-trimap writes a PNG per frame: pass a folder (--out DIR/) for a video.")
    if kind == "video":
        atomic.check_output_file(out)
        if out.resolve() == src.resolve():
            raise InputError(f"--out {out} is the input video itself; pass another file name.")
    else:
        atomic.check_output_dir(out)

    reader = VideoReader(src)  # InputError for an unreadable video, before the model loads
    try:
        runner, _ = load_predictor(model, spec, num_threads=num_threads)
        info = reader.info
        if isinstance(bg, np.ndarray):  # resized once: the same rows `background_rows` gives each frame
            bg = imageops_fast.resize_bilinear(bg[..., :3], info.height, info.width)
        job = _Job(runner, reader, output, bg, guided, refine, smooth, batch_size, progress)
        t0 = time.perf_counter()  # the frames/s said covers the encoder's final flush too
        if kind == "video":
            result = VideoResult(out, kind, output, 0, 0.0, info.rate, info.rotation)

            def write(tmp: str) -> None:
                with VideoWriter(tmp, info.width, info.height, info.rate, info.time_base, info.rotation,
                                 audio_from=reader.audio_streams, crf=crf) as w:
                    job.run(w.write, audio_sink=w.mux_audio)
                    result.codec, result.padded = w.codec, w.padded
                    result.audio, result.dropped_audio = w.audio_copied, list(w.dropped_audio)

            atomic.write_with(out, write, suffix=out.suffix)
        else:
            result = VideoResult(out, kind, output, 0, 0.0, info.rate, info.rotation)
            out.mkdir(parents=True, exist_ok=True)
            job.frames_dir = out
            job.stem = src.stem
            job.run(job.write_png)
        seconds = time.perf_counter() - t0
    finally:
        reader.close()
    result.frames, result.seconds, result.truncated = job.count, seconds, reader.truncated
    if result.truncated:
        warnings.warn(f"{src}: {result.truncated}; wrote the {result.frames} frames decoded, a complete "
                      f"{'video' if kind == 'video' else 'set of frames'} up to there.", EdgemattingWarning,
                      stacklevel=2)
    if result.dropped_audio:
        warnings.warn(f"{out.suffix} cannot hold {', '.join(result.dropped_audio)} audio: written without it "
                      "(use --out NAME.mkv to keep it).", EdgemattingWarning, stacklevel=2)
    if result.padded:
        warnings.warn(f"{src} has an odd width or height: the H.264 output is padded by one row/column "
                      "(a copy of the last).", EdgemattingWarning, stacklevel=2)
    return result


class _Job:
    """The frame loop: batches of decoded frames -> model -> per-frame output -> `emit`."""

    def __init__(self, runner, reader: VideoReader, output, bg, guided, refine, smooth, batch_size, progress):
        self.runner, self.reader, self.output, self.bg = runner, reader, output, bg
        self.guided, self.refine, self.batch_size, self.progress = guided, refine, batch_size, progress
        self.smoother = TemporalSmoother(smooth) if smooth is not None else None
        info = reader.info
        self.per_batch = max(1, min(batch_size, BATCH_PIXELS // max(1, info.width * info.height)))
        self.count, self.seconds = 0, 0.0
        self.frames_dir: Path | None = None
        self.stem = ""
        self._last_pts = None
        #: a prior-frame model's previous alpha at model size (None: the first frame)
        self.prior = None
        self.takes_prior = bool(runner.contract.get("prior"))

    def run(self, emit, audio_sink=None) -> None:
        t0 = time.perf_counter()
        total = self.reader.info.frames or None
        with progress_bar(self.progress, total, "cut out", unit="frames") as advance:
            batch: list = []
            for rgb, pts in self.reader.frames(audio_sink=audio_sink):
                batch.append((rgb, self._pts(pts)))
                if len(batch) >= self.per_batch:
                    self._batch(batch, emit, advance)
                    batch = []
            if batch:
                self._batch(batch, emit, advance)
        self.seconds = time.perf_counter() - t0

    def _pts(self, pts):
        """The frame's pts, or None (the writer's next) when missing or not increasing."""
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            return None
        self._last_pts = pts
        return pts

    def _batch(self, batch, emit, advance) -> None:
        r = self.runner
        frames = [f for f, _ in batch]
        if r.kind == "keras" and len(frames) < self.per_batch:
            # the last, short batch padded with its last frame: a Keras model retraces (seconds)
            # for every new batch size
            frames += [frames[-1]] * (self.per_batch - len(frames))
        if self.takes_prior:  # one frame at a time: each frame's input holds the previous output
            lowres = []
            for rgb, _ in batch:
                a = r.run(r.inputs([rgb], [self.prior]))[0]
                self.prior = np.clip(a, 0.0, 1.0)
                lowres.append(a)
        else:
            lowres = r.run(r.inputs(frames))  # the model once per batch
        c = r.contract
        for i, (rgb, pts) in enumerate(batch):
            a_lr = lowres[i]
            if self.smoother is not None:
                a_lr = self.smoother(a_lr, imageops_fast.resize_bilinear(rgb, c["height"], c["width"]))
            alpha = imageops_fast.AlphaRows(a_lr, rgb, self.guided)  # = upsample_alpha, a strip at a time
            fg = None
            if self.refine is not None:
                from . import refine as refine_mod

                stem = self._name(self.count)[: -len(SUFFIX[self.output] + ".png")] if self.frames_dir else None
                alpha, fg = refine_mod.apply_rows(rgb, alpha, self.refine, self.output,
                                                  None if stem is None else self.frames_dir / stem)
            emit(render_strips(self.output, rgb, alpha, self.bg, foreground=fg), pts)
            self.count += 1
            advance()
        batch.clear()

    def _name(self, index: int) -> str:
        return f"{self.stem}_{index:06d}{SUFFIX[self.output]}.png"

    def write_png(self, im, pts) -> None:
        from .data.io import write_pil_png

        write_pil_png(self.frames_dir / self._name(self.count), im)
