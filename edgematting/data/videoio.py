"""Video files through PyAV: upright RGB frames in, H.264 out, timing, rotation and audio kept.

`VideoReader` opens a video and yields its frames upright (HxWx3 uint8), one at a time
(never the whole clip in memory), with their presentation timestamps; `VideoWriter`
encodes frames into an mp4/mov/m4v/mkv with the reader's frame rate, time base and
rotation, and copies the reader's audio packets unchanged (remuxed, not re-encoded).
`write_video` writes a list of frames (and optionally a sine tone) for tests and the
synthetic clips of `edgematting.data.clip`.

Rotation. A phone stores a portrait video as landscape frames plus a display matrix (the
old ``rotate`` tag). PyAV gives the matrix's rotation as `VideoFrame.rotation`: the angle
the display turns the stored frame counter-clockwise. The reader turns each frame upright
(``np.rot90(stored, rotation // 90)``), as a player shows it and as the model was trained;
the writer turns the frames back and writes the same display matrix
(`VideoStream.set_display_rotation`), so the output is stored, and shown, like its input.
Flips in the matrix are not read (PyAV exposes only the rotation).

Codec: libx264 (the PyAV wheels ship it) at `CRF`, yuv420p, else mpeg4 at a bit rate of
`MPEG4_BITS_PER_PIXEL`. yuv420p needs an even width and height: an odd one is padded by
repeating the last row/column (`VideoWriter.padded` says so).

PyAV is imported inside the functions: `import edgematting` does not load FFmpeg.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..errors import DependencyError, InputError

#: what is read as a video (any case)
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi")
#: what can be written: containers that take H.264 and copied audio (WebM takes only
#: VP8/VP9/AV1; AVI has no B-frame timestamps)
WRITE_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")
#: libx264 constant rate factor: 18 is visually lossless for most content
CRF = 18
#: libx264 speed/size trade-off: the model dominates the time per frame either way
PRESET = "fast"
#: the mpeg4 fallback's bit rate, bits per pixel per frame
MPEG4_BITS_PER_PIXEL = 0.25
#: a video whose stream reports this many more frames than decode is called truncated
TRUNCATION_SLACK = 1
PIP_HINT = "pip install av==18.1.0 (it is in edgematting's dependencies: pip install -e .)"


def av():
    """The `av` module, or DependencyError saying how to install it."""
    try:
        import av as _av
    except ImportError as e:  # pragma: no cover - av is a dependency
        raise DependencyError(f"Reading and writing videos needs PyAV: {PIP_HINT}") from e
    return _av


def is_video(path: str | os.PathLike) -> bool:
    """True when the path's suffix is a video's (`VIDEO_SUFFIXES`); the file is not opened."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_codec() -> str:
    """libx264 when this FFmpeg build has it, else mpeg4 (every build has that one)."""
    a = av()
    try:
        a.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:  # noqa: BLE001 - av raises its own UnknownCodecError
        return "mpeg4"


def _upright_k(rotation: float) -> int:
    """Quarter turns (counter-clockwise, np.rot90's k) that make a stored frame upright."""
    return int(round(float(rotation or 0) / 90.0)) % 4


@dataclass
class VideoInfo:
    """What a video is. width/height: upright (as shown); rotation: the display matrix's
    counter-clockwise angle (0, 90, 180, -90); rate: the average frame rate; time_base: the
    video stream's; frames: the expected frame count (from the stream, else from its
    duration; 0 when neither is known); audio: the audio streams' codec names."""

    path: Path
    width: int
    height: int
    rotation: int
    rate: Fraction
    time_base: Fraction
    frames: int
    duration_s: float | None
    codec: str
    audio: list[str]


class VideoReader:
    """An open video: `info`, then `frames()` once. A context manager (closes the file).

    InputError (one line, saying what to do) when the file is missing, is not a video FFmpeg
    can read, or has no video stream. A stream that ends early (a truncated file) or a packet
    that cannot be decoded ends `frames()` quietly; `truncated` then says why in one line.
    """

    def __init__(self, path: str | os.PathLike):
        a = av()
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"Video not found: {self.path}. Check the path.")
        try:
            self.container = a.open(str(self.path))
        except (a.error.FFmpegError, OSError, ValueError) as e:
            raise InputError(f"{self.path} is not a readable video ({_why(e)}): the file is damaged, truncated "
                             "before its index, or not a video. Re-export it, or convert it to H.264 mp4.") from None
        if not self.container.streams.video:
            self.container.close()
            raise InputError(f"{self.path} has no video stream (only {_kinds(self.container)}). Pass a video file.")
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # frame and slice threads: decoding 1080p is not the bottleneck
        self.audio_streams = list(self.container.streams.audio)
        self.decoded = 0
        self.truncated: str | None = None
        self._error: str | None = None
        self._pending_audio: list = []
        self._first = None
        self._frames_iter = None
        s = self.stream
        rate = s.average_rate or s.guessed_rate or s.base_rate or Fraction(30)
        frames = int(s.frames or 0)
        duration = None
        if s.duration is not None and s.time_base:
            duration = float(s.duration * s.time_base)
        elif self.container.duration:
            duration = self.container.duration / 1_000_000
        if not frames and duration:
            frames = int(round(duration * rate))
        rotation = self._peek_rotation()
        w, h = s.codec_context.width, s.codec_context.height
        if _upright_k(rotation) % 2:
            w, h = h, w
        self.info = VideoInfo(self.path, int(w), int(h), int(rotation), Fraction(rate), Fraction(s.time_base),
                              frames, duration, s.codec_context.name, [x.codec_context.name for x in self.audio_streams])

    def _peek_rotation(self) -> int:
        """The rotation of the first frame (decoding it now; `frames()` yields it first).
        A video whose first frame cannot be decoded is an InputError."""
        self._frames_iter = self._decode()
        try:
            self._first = next(self._frames_iter)
        except StopIteration:
            self.container.close()
            why = f" ({self._error})" if self._error else ""
            raise InputError(f"{self.path} has no decodable video frame{why}. The file is damaged or truncated; "
                             "re-export it.") from None
        rot = self._first.rotation or 0
        if rot % 90:
            rot = 90 * round(rot / 90)  # a display matrix at an odd angle: the nearest quarter turn
        return int(rot)

    def _decode(self) -> Iterator:
        a = av()
        audio = {s.index for s in self.audio_streams}
        try:
            for packet in self.container.demux(self.stream, *self.audio_streams):
                if packet.stream.index in audio:
                    if packet.dts is None:
                        continue
                    if self._audio_sink is not None:
                        self._audio_sink(packet)
                    else:  # met while the first frame was peeked at: kept for `frames()`
                        self._pending_audio.append(packet)
                    continue
                for frame in packet.decode():
                    yield frame
        except a.error.FFmpegError as e:
            self._error = _why(e)

    _audio_sink: Callable | None = None

    def frames(self, audio_sink: Callable | None = None) -> Iterator[tuple[np.ndarray, int | None]]:
        """(upright RGB frame HxWx3 uint8, pts in `info.time_base`) for each frame, in order.
        `audio_sink(packet)` receives the audio packets met on the way (for `VideoWriter.mux_audio`)."""
        self._audio_sink = audio_sink
        pending, self._pending_audio = self._pending_audio, []
        if audio_sink is not None:
            for packet in pending:
                audio_sink(packet)
        k = _upright_k(self.info.rotation)
        it, first = self._frames_iter, self._first
        self._first = None
        pending = [first] if first is not None else []
        for frame in _chain(pending, it):
            rgb = frame.to_ndarray(format="rgb24")
            if k:
                rgb = np.ascontiguousarray(np.rot90(rgb, k))
            self.decoded += 1
            yield rgb, frame.pts
        of = f" of {self.info.frames}" if self.info.frames else ""
        if self._error:
            self.truncated = (f"decoding stopped after {self.decoded}{of} frames at an undecodable packet "
                              f"({self._error}): the file is damaged or truncated")
        elif self.info.frames and self.decoded + TRUNCATION_SLACK < self.info.frames:
            self.truncated = f"the file ends after {self.decoded}{of} frames: it is truncated"

    def close(self) -> None:
        self.container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _chain(first: list, rest) -> Iterator:
    yield from first
    yield from rest


def _why(e: BaseException) -> str:
    s = getattr(e, "strerror", None) or str(e)
    return str(s).split(":")[0].strip() or type(e).__name__


def _kinds(container) -> str:
    kinds = sorted({s.type for s in container.streams})
    return ", ".join(kinds) if kinds else "no streams"


class VideoWriter:
    """Encode upright frames into `path` (format from its suffix): H.264 yuv420p (`video_codec`)
    with `rate`, `time_base` and `rotation` as given (a `VideoInfo`'s), audio streams copied
    from `audio_from` (input audio streams: their packets go through `mux_audio`). A context
    manager; `close()` flushes the encoder and finishes the file. `faststart`: an mp4/mov's
    index goes at the front (a second pass at close), so players start before the end arrives.

    Audio whose codec the container cannot hold is dropped and listed in `dropped_audio`.
    """

    def __init__(self, path: str | os.PathLike, width: int, height: int, rate: Fraction,
                 time_base: Fraction | None = None, rotation: int = 0, audio_from: Sequence = (),
                 crf: int = CRF, container_format: str | None = None, faststart: bool = True):
        self.path = Path(path)
        self.k = _upright_k(rotation)
        sw, sh = (height, width) if self.k % 2 else (width, height)  # stored size
        self.stored = (sh, sw)
        self.padded = (sw % 2, sh % 2) != (0, 0)
        self.rate = Fraction(rate)
        self.time_base = Fraction(time_base) if time_base else 1 / self.rate
        self.rotation, self.crf, self.container_format, self.faststart = rotation, crf, container_format, faststart
        self.codec = video_codec()
        self.dropped_audio: list[str] = []
        self._open(audio_from)
        self.frames = 0
        self._next_pts = 0
        self._started = False

    def _open(self, audio_from: Sequence) -> None:
        a = av()
        mov = self.path.suffix.lower() in (".mp4", ".mov", ".m4v") or (self.container_format or "") in ("mp4", "mov")
        fmt_opts = {"movflags": "+faststart"} if self.faststart and mov else {}
        self.container = a.open(str(self.path), "w", format=self.container_format, options=fmt_opts)
        s = self.container.add_stream(self.codec, rate=self.rate)
        sh, sw = self.stored
        s.width, s.height = sw + sw % 2, sh + sh % 2
        s.pix_fmt = "yuv420p"
        s.codec_context.time_base = self.time_base
        s.time_base = self.time_base
        if self.codec == "libx264":
            s.options = {"crf": str(int(self.crf)), "preset": PRESET}
        else:
            s.bit_rate = int(MPEG4_BITS_PER_PIXEL * s.width * s.height * float(self.rate))
        if self.k:
            s.set_display_rotation(self.rotation)
        self.stream = s
        self.audio_map = {}
        supported = getattr(self.container, "supported_codecs", None)
        for src in audio_from:
            name = src.codec_context.name
            if supported is not None and name not in supported:
                self.dropped_audio.append(name)
                continue
            self.audio_map[src.index] = self.container.add_stream_from_template(src)

    def _start(self) -> None:
        """Write the header. A container that turns the copied audio down there (opus in .mov)
        is reopened without it (listed in `dropped_audio`)."""
        if self._started:
            return
        a = av()
        try:
            self.container.start_encoding()
        except a.error.FFmpegError:
            if not self.audio_map:
                raise
            self.dropped_audio += self.audio_copied
            self.container.close()
            self._open(())
            self.container.start_encoding()
        self._started = True

    def write(self, rgb: np.ndarray, pts: int | None = None) -> None:
        """One upright frame (HxWx3 uint8 RGB, or HxW grey) at `pts` (in `time_base`; None:
        one frame after the last)."""
        a = av()
        x = np.asarray(rgb)
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=2)
        if self.k:
            x = np.rot90(x, -self.k)
        if self.padded:
            sh, sw = self.stored
            x = np.pad(x, ((0, sh % 2), (0, sw % 2), (0, 0)), mode="edge")
        frame = a.VideoFrame.from_ndarray(np.ascontiguousarray(x), format="rgb24")
        if pts is None:
            pts = self._next_pts
        frame.pts = int(pts)
        frame.time_base = self.time_base
        self._start()
        self._next_pts = int(pts) + max(1, int(round(1 / (self.time_base * self.stream.codec_context.framerate))))
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.frames += 1

    def mux_audio(self, packet) -> None:
        """Copy one input audio packet into its output stream (unknown streams are skipped)."""
        self._start()
        out = self.audio_map.get(packet.stream.index)
        if out is None:
            return
        packet.stream = out
        self.container.mux(packet)

    @property
    def audio_copied(self) -> list[str]:
        return [s.codec_context.name for s in self.audio_map.values()]

    def close(self) -> None:
        if self.container is None:
            return
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
        finally:
            self.container.close()
            self.container = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        if exc_type is None:
            self.close()
        elif self.container is not None:
            self.container.close()  # the caller removes the unfinished file
            self.container = None
        return False


def read_video(path: str | os.PathLike) -> list[np.ndarray]:
    """Every frame of a video, upright (a list: for tests and short clips only)."""
    with VideoReader(path) as r:
        return [f for f, _ in r.frames()]


def sine_tone(seconds: float, rate: int = 48000, freq: float = 440.0) -> np.ndarray:
    """A mono float32 sine, amplitude 0.2 (for a test clip's audio track)."""
    t = np.arange(int(round(seconds * rate)), dtype=np.float64) / rate
    return (0.2 * np.sin(2 * math.pi * freq * t)).astype(np.float32)


def write_video(path: str | os.PathLike, frames, fps: float | Fraction = 25, rotation: int = 0, audio: bool = False,
                crf: int = CRF, container_format: str | None = None, faststart: bool = True,
                audio_codec: str = "aac") -> Path:
    """Write upright frames (iterable of HxWx3 uint8, all one size) as an H.264 video,
    stored with `rotation` (see the module docstring), with a 440 Hz mono tone (48 kHz,
    `audio_codec`) as long as the video when `audio`. For tests and synthetic clips; not
    atomic (write to a temporary name when that matters). `faststart=False` puts an mp4's
    index at the end (as a camera does), so a truncated copy has none."""
    a = av()
    rate = Fraction(fps).limit_denominator(1001 * 1000)
    it = iter(frames)
    first = np.asarray(next(it))
    h, w = first.shape[:2]
    path = Path(path)
    with VideoWriter(path, w, h, rate, rotation=rotation, crf=crf, container_format=container_format,
                     faststart=faststart) as writer:
        audio_stream = None
        if audio:
            audio_stream = writer.container.add_stream(audio_codec, rate=48000, layout="mono")
        n = 0
        for x in _chain([first], it):
            writer.write(x)
            n += 1
        if audio_stream is not None:
            fmt = audio_stream.codec_context.format.name  # fltp (aac), flt or s16 (opus), s16 (pcm)...
            tone = sine_tone(n / float(rate), rate=48000)
            if fmt.startswith("s16"):
                tone = (tone * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                tone = (tone.astype(np.float64) * 2147483647).astype(np.int32)
            for t in range(0, len(tone), 1024):
                frame = a.AudioFrame.from_ndarray(np.ascontiguousarray(tone[None, t:t + 1024]), format=fmt,
                                                  layout="mono")
                frame.sample_rate, frame.pts = 48000, t
                for packet in audio_stream.encode(frame):
                    writer.container.mux(packet)
            for packet in audio_stream.encode():
                writer.container.mux(packet)
    return path
