"""Teachers for distillation: any accurate model that turns a photo into a soft matte.

    >>> from edgematting.teacher import resolve_teacher, cache_teacher_mattes
    >>> t = resolve_teacher("mediapipe")                       # after `edgematting peer fetch`
    >>> t = resolve_teacher("runs/big")                        # a model directory
    >>> t = resolve_teacher("runs/big/export/big_fp32.tflite") # an artifact with its sidecar
    >>> t = resolve_teacher("other.onnx", TeacherOptions(input="imagenet", output="2class:1"))
    >>> alpha = t.predict_photo(rgb)                           # HxW float32 in [0, 1]

Kinds of SPEC:

* ``mediapipe`` / ``mediapipe-landscape``: MediaPipe's selfie segmenters, from the cache
  that `edgematting peer fetch` fills ([0, 1] RGB in, person probability out);
* a model directory (``model.keras`` + ``model.json``): run by Keras, through the same photo
  pipeline as `predict` (`edgematting.runners.open`);
* a converted artifact with its sidecar (``.tflite``, ``.onnx``, ``.mlpackage``): run by its
  runner through the artifact contract (`contract.model_input` / `output_to_alpha`);
* any other ``.tflite`` / ``.onnx`` file: input size, dtype and layout (NHWC or NCHW) are
  read from the model; what a sidecar would say comes from `TeacherOptions`
  (``--teacher-input``, ``--teacher-channels``, ``--teacher-output``), and a missing one is
  an InputError naming its flag.

`cache_teacher_mattes` computes one matte per photo at the photo's own resolution and keeps
it as an 8-bit PNG (the format of every matting data set; soft values are kept, never
thresholded) in a cache folder keyed by the teacher's identity, each file written
atomically and recorded in the folder's ``labels.jsonl`` with the version of its photo:
after Ctrl-C, kill -9 or an error a rerun computes only what is missing, and a changed
photo is labelled again. Photos stream through one at a time (memory does not grow with
the folder), with a progress bar (count, photos/s, ETA) on a terminal.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from . import atomic, imageops
from .errors import DataError, DependencyError, InputError
from .runners.foreign import INPUT_PRESETS, ForeignOptions as TeacherOptions  # noqa: F401 - the --teacher-* flags

OUTPUT_KINDS = ("probability", "logits", "2class:K", "channel:K")
MEDIAPIPE = {"mediapipe": "square", "mediapipe-landscape": "landscape"}
#: 2: photos are read upright (EXIF orientation applied), so mattes of version 1 may be sideways.
#: 3: labels.jsonl says which version of each photo a matte labels (`_Manifest`).
CACHE_FORMAT = 3
MANIFEST = "labels.jsonl"
#: Labelling progress in a log (stdout not a terminal): one line every this many seconds.
PROGRESS_EVERY_S = 30.0
#: Test hook: exit the process (as kill -9 would) after this many mattes were written.
CRASH_ENV = "EDGEMATTING_CRASH_AFTER_TEACHER_MATTES"


class Teacher:
    """A model that maps a photo (HxWx3 uint8 RGB) to a soft person matte (HxW float32)."""

    def __init__(self, name: str, kind: str, path: Path | None, predict: Callable[[np.ndarray], np.ndarray],
                 options: dict | None = None):
        self.name, self.kind, self.path = name, kind, path
        self._predict = predict
        self.options = options or {}
        self._identity: dict | None = None

    def predict_photo(self, rgb: np.ndarray) -> np.ndarray:
        a = np.asarray(self._predict(np.asarray(rgb)[..., :3]), np.float32)
        if a.shape != rgb.shape[:2]:
            raise InputError(f"teacher {self.name} returned a matte of shape {a.shape} for a {rgb.shape[:2]} photo")
        if not np.all(np.isfinite(a)):
            raise InputError(f"teacher {self.name} produces non-finite values (NaN/Inf); it cannot label photos.")
        return np.clip(a, 0.0, 1.0)

    def identity(self) -> dict:
        """What the cached mattes depend on: the teacher's kind, its file's hash, its options."""
        if self._identity is None:
            self._identity = {"kind": self.kind, "name": self.name, "sha256": self._digest(),
                              "options": self.options, "cache_format": CACHE_FORMAT}
        return dict(self._identity)

    def _digest(self) -> str | None:
        """sha256 of what the teacher computes with: a model directory's model.keras and
        model.json (not the rest of a run folder: its checkpoints, exports, its own teacher
        cache), an artifact and its sidecar (its pre- and post-processing), else the file."""
        if self.path is None:
            return None
        if self.kind == "model-dir":
            files = [self.path / "model.keras", self.path / "model.json"]
        elif self.kind == "artifact":
            from .contract import sidecar_path

            files = [self.path, sidecar_path(self.path)]
        else:
            return atomic.digest(self.path)
        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode() + b"\0" + (atomic.digest(f).encode() if f.exists() else b"-"))
        return h.hexdigest()

    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]


# -- resolving a SPEC -----------------------------------------------------------------------
def resolve_teacher(spec: str, options: TeacherOptions | None = None, num_threads: int | None = None) -> Teacher:
    """The Teacher named by `spec` (see the module docstring). InputError / DependencyError
    with what to do next."""
    options = options or TeacherOptions()
    threads = num_threads or max(1, min(4, os.cpu_count() or 1))
    text = str(spec)
    if text in MEDIAPIPE:
        from .peer import cached_mediapipe

        p = cached_mediapipe(MEDIAPIPE[text])
        if p is None:
            raise DependencyError(f"The {text} teacher is not downloaded yet: run `edgematting peer fetch` first.")
        from .peer import MEDIAPIPE_CONTRACT

        return _open(Path(p), "foreign", threads, MEDIAPIPE_CONTRACT, name=text, teacher_kind="mediapipe")
    p = Path(text)
    if not p.exists():
        raise InputError(
            f"Teacher {text!r} not found. Pass mediapipe, mediapipe-landscape, a model directory, a converted "
            "artifact (.tflite/.onnx/.mlpackage with its .json sidecar) or a foreign .tflite/.onnx file.")
    if p.is_dir() and (p / "model.json").is_file():
        return _open(p, "model-dir", threads)
    from .contract import FORMAT, read_sidecar
    from .formats import target_of

    kind = target_of(p)
    side = read_sidecar(p, required=False)
    if side is not None and side.get("format") == FORMAT:
        return _open(p, "artifact", threads)
    if kind == "coreml":
        raise InputError(f"{p} has no edgematting sidecar; a foreign Core ML model cannot be a teacher "
                         "(use a .tflite or .onnx file).")
    if kind not in ("tflite", "onnx"):
        raise InputError(f"Teacher {p} is not a model directory or a .tflite/.onnx/.mlpackage file.")
    return _open(p, "foreign", threads, options)


def _open(p: Path, kind: str, threads: int, options: TeacherOptions | None = None, name: str | None = None,
          teacher_kind: str | None = None) -> Teacher:
    """A Teacher over `runners.open` (bilinear upsampling: the matte is a label, not a cut-out)."""
    from . import runners

    model = runners.open(p, num_threads=threads, foreign=options)
    opts = None if options is None else {"input": options.input, "channels": options.channels,
                                         "output": options.output, "size": options.size}
    return Teacher(name or model.spec.name or p.stem, teacher_kind or kind, p, model.predict_photo, opts)


# -- the cache ------------------------------------------------------------------------------
def list_photos(folder: str | os.PathLike) -> list[Path]:
    """The photos of an unlabelled folder (or of a labelled folder's image/ subfolder)."""
    from .calibration import image_dir
    from .data.io import list_images

    d = image_dir(folder)
    if not d.is_dir():
        raise InputError(f"--unlabelled folder not found: {d}.")
    photos = list_images(d)
    if not photos:
        raise InputError(f"No .jpg/.png photos in {d} (nor in its image/ subfolder). Add photos to --unlabelled.")
    return photos


def matte_name(photo: Path, root: Path) -> str:
    """Cache file of a photo: its stem plus a short hash of its path under the root (unique)."""
    rel = str(photo.relative_to(root)) if photo.is_relative_to(root) else str(photo)
    return f"{photo.stem}-{hashlib.sha1(rel.encode()).hexdigest()[:8]}.png"


class _Manifest:
    """``labels.jsonl`` of a cache folder: one line per matte written, appended (and flushed)
    only after the matte itself was written atomically, saying which version of its photo it
    labels (size, mtime, sha256) and the matte's own size. A matte that is not in it (a kill
    between the two writes, a file put there by hand), whose size differs, or whose photo
    changed is redone: nothing half-written or stale is ever trusted. A line cut short by a
    kill is dropped, and the file is compacted when it holds such lines or repeats."""

    def __init__(self, folder: Path):
        self.path = folder / MANIFEST
        self.entries: dict[str, tuple[int, int, str, int]] = {}
        data = self.path.read_bytes() if self.path.exists() else b""
        lines = 0
        for raw in data.splitlines():
            lines += 1
            try:
                e = json.loads(raw)
                self.entries[str(e["matte"])] = (int(e["size"]), int(e["mtime_ns"]), str(e["sha256"]),
                                                 int(e["matte_size"]))
            except (ValueError, KeyError, TypeError):
                continue
        if lines > len(self.entries) or (data and not data.endswith(b"\n")):
            atomic.write_bytes(self.path, b"".join(self._line(k, v) for k, v in self.entries.items()))
        self._file = open(self.path, "ab")

    @staticmethod
    def _line(name: str, e: tuple) -> bytes:
        return (json.dumps({"matte": name, "size": e[0], "mtime_ns": e[1], "sha256": e[2], "matte_size": e[3]})
                + "\n").encode()

    def add(self, name: str, entry: tuple[int, int, str, int]) -> None:
        self.entries[name] = entry
        self._file.write(self._line(name, entry))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _photo_sha(path: Path) -> str:
    return atomic.digest(path)


class _Progress:
    """Labelling progress: on a terminal the project's progress bar (count, photos/s, ETA);
    otherwise (a log file) one plain line every `every` seconds, as training prints one
    line per epoch there."""

    def __init__(self, enabled: bool, total: int, label: str, every: float | None = None):
        import sys
        import time

        self.tty = enabled and sys.stdout.isatty()
        self.enabled, self.total, self.label = enabled, total, label
        self.every = PROGRESS_EVERY_S if every is None else every
        self.done, self._clock = 0, time.perf_counter
        self.t0 = self._last = self._clock()
        from .console import progress_bar

        self._bar = progress_bar(self.tty and total > 1, total, label, unit="photos")

    def __enter__(self):
        self._advance = self._bar.__enter__()
        return self

    def __exit__(self, *exc):
        return self._bar.__exit__(*exc)

    def rate(self) -> float:
        dt = self._clock() - self.t0
        return self.done / dt if dt > 0 else 0.0

    def advance(self) -> None:
        self.done += 1
        self._advance()
        now = self._clock()
        if self.enabled and not self.tty and now - self._last >= self.every and self.done < self.total:
            self._last = now
            r = self.rate()
            eta = f", ETA {(self.total - self.done) / r:.0f} s" if r > 0 else ""
            print(f"{self.label}: {self.done}/{self.total} photos, {r:.2f} photos/s{eta}", flush=True)


def cache_teacher_mattes(teacher: Teacher, photos: list[Path], cache_root: str | os.PathLike,
                         root: Path | None = None, skip_bad: bool = False,
                         progress: bool = True) -> tuple[Path, list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Compute (or reuse) the teacher's matte of every photo.

    Returns (cache folder, [(photo, matte)], [(bad photo, why)]). The folder is
    ``cache_root/<teacher key>/`` with ``teacher.json`` (the teacher's identity), one PNG
    per photo and ``labels.jsonl`` (`_Manifest`): a rerun after Ctrl-C, kill -9 or an error
    at photo k labels only the photos without a valid matte; a changed photo (size, mtime
    and then sha256) is labelled again, a changed teacher gets another folder. Photos are
    read, labelled and written one at a time: memory does not grow with their number.
    Unreadable photos raise DataError listing all of them, unless `skip_bad`.
    """
    from .data.io import read_image, write_png

    root = root or (photos[0].parent if photos else Path("."))
    folder = Path(cache_root) / teacher.key()
    folder.mkdir(parents=True, exist_ok=True)
    ident = folder / "teacher.json"
    if not ident.exists():
        atomic.write_json(ident, {"format": "edgematting-teacher-cache", "format_version": CACHE_FORMAT,
                                  **teacher.identity()})
    manifest = _Manifest(folder)
    try:
        pairs, bad, todo = [], [], []
        for ph in photos:
            m = folder / matte_name(ph, root)
            (pairs if _still_valid(manifest, ph, m) else todo).append((ph, m))
        if progress:
            print(f"teacher {teacher.name}: {len(pairs)} of {len(photos)} photos already labelled in {folder}, "
                  f"{len(todo)} to label", flush=True)
        crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
        written = 0
        with _Progress(progress, len(todo), f"teacher {teacher.name}") as bar:
            for ph, m in todo:
                try:
                    st = ph.stat()  # before reading: a photo changed meanwhile is labelled again next time
                    sha = _photo_sha(ph)
                    rgb = read_image(ph)
                except (DataError, OSError) as e:
                    bad.append((str(ph), str(e).splitlines()[0]))
                    bar.advance()
                    continue
                alpha8 = imageops.round_to_uint8(teacher.predict_photo(rgb) * np.float32(255.0))
                del rgb
                write_png(m, alpha8)
                manifest.add(m.name, (st.st_size, st.st_mtime_ns, sha, m.stat().st_size))
                pairs.append((ph, m))
                written += 1
                bar.advance()
                if crash_after and written >= crash_after:
                    os._exit(9)  # test hook: as if killed
        if progress and todo:
            print(f"teacher {teacher.name}: labelled {written} photos in {bar._clock() - bar.t0:.1f} s "
                  f"({bar.rate():.2f} photos/s)", flush=True)
    finally:
        manifest.close()
    if bad and not skip_bad:
        raise DataError(f"{len(bad)} unreadable photo(s) in --unlabelled. Remove them or pass --skip-bad:",
                        bad_files=bad)
    order = {p: i for i, p in enumerate(photos)}
    pairs.sort(key=lambda pm: order[pm[0]])
    return folder, pairs, bad


def _still_valid(manifest: _Manifest, photo: Path, matte: Path) -> bool:
    """Whether `matte` is a whole matte of `photo` as it is now (see `_Manifest`); a photo
    whose mtime changed but not its bytes keeps its matte (its entry is updated)."""
    e = manifest.entries.get(matte.name)
    if e is None:
        return False
    try:
        st, matte_size = photo.stat(), matte.stat().st_size
    except OSError:
        return False
    if matte_size != e[3] or st.st_size != e[0]:
        return False
    if st.st_mtime_ns == e[1]:
        return True
    try:
        if _photo_sha(photo) != e[2]:
            return False
    except OSError:
        return False
    manifest.add(matte.name, (st.st_size, st.st_mtime_ns, e[2], e[3]))
    return True


def teacher_options_dict(options: TeacherOptions) -> dict:
    return {k: v for k, v in asdict(options).items() if v is not None}
