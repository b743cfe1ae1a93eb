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
  pipeline as `predict` (`imageops`);
* a converted artifact with its sidecar (``.tflite``, ``.onnx``, ``.mlpackage``): run by its
  runner through the artifact contract (`contract.model_input` / `output_to_alpha`);
* any other ``.tflite`` / ``.onnx`` file: input size, dtype and layout (NHWC or NCHW) are
  read from the model; what a sidecar would say comes from `TeacherOptions`
  (``--teacher-input``, ``--teacher-channels``, ``--teacher-output``), and a missing one is
  an InputError naming its flag.

`cache_teacher_mattes` computes one matte per photo at the photo's own resolution and keeps
it as an 8-bit PNG (the format of every matting data set; soft values are kept, never
thresholded) in a cache folder keyed by the teacher's identity, each file written
atomically: after kill -9 a rerun computes only what is missing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import imageops
from .errors import DataError, DependencyError, InputError

#: Presets of ``--teacher-input``: (mean, std) in pixel units, x = (pixel - mean) / std.
INPUT_PRESETS = {
    "0,1": ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0)),
    "-1,1": ((127.5, 127.5, 127.5), (127.5, 127.5, 127.5)),
    "0,255": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "imagenet": ((123.675, 116.28, 103.53), (58.395, 57.12, 57.375)),
}
OUTPUT_KINDS = ("probability", "logits", "2class:K", "channel:K")
MEDIAPIPE = {"mediapipe": "square", "mediapipe-landscape": "landscape"}
#: 2: photos are read upright (EXIF orientation applied), so mattes of version 1 may be sideways.
CACHE_FORMAT = 2
#: Test hook: exit the process (as kill -9 would) after this many mattes were written.
CRASH_ENV = "EDGEMATTING_CRASH_AFTER_TEACHER_MATTES"


@dataclass(frozen=True)
class TeacherOptions:
    """What a sidecar would say about a foreign model (ignored for our own models)."""

    input: str | None = None  # a key of INPUT_PRESETS, or "mean=R,G,B;std=R,G,B"
    channels: str = "RGB"  # RGB | BGR
    output: str | None = None  # probability | logits | 2class:K | channel:K
    size: str | None = None  # HxW when the model's input size is not fixed

    def __post_init__(self):
        if self.input is not None:
            parse_input(self.input)
        if str(self.channels).upper() not in ("RGB", "BGR"):
            raise InputError(f"--teacher-channels takes RGB or BGR, not {self.channels!r}.")
        if self.output is not None:
            parse_output(self.output)


def parse_input(text: str):
    """--teacher-input -> (mean, std)."""
    key = str(text).strip().lower()
    if key in INPUT_PRESETS:
        return INPUT_PRESETS[key]
    m = re.fullmatch(r"mean=([-\d.e]+),([-\d.e]+),([-\d.e]+);std=([-\d.e]+),([-\d.e]+),([-\d.e]+)", key.replace(" ", ""))
    if not m:
        raise InputError(
            f"--teacher-input {text!r} is not understood: use {', '.join(INPUT_PRESETS)} (the model's input "
            "range, or ImageNet mean/std) or 'mean=R,G,B;std=R,G,B' in pixel units.")
    vals = [float(v) for v in m.groups()]
    if any(v == 0 for v in vals[3:]):
        raise InputError("--teacher-input: std must not be 0.")
    return tuple(vals[:3]), tuple(vals[3:])


def parse_output(text: str) -> tuple[str, int | None]:
    """--teacher-output -> (kind, class or channel index)."""
    key = str(text).strip().lower()
    if key in ("probability", "logits"):
        return key, None
    m = re.fullmatch(r"(2class|channel):(\d+)", key)
    if not m:
        raise InputError(
            f"--teacher-output {text!r} is not understood: use probability (a [0,1] person map), logits "
            "(sigmoid is applied), 2class:K (softmax over a 2-channel map, K = the person class) or "
            "channel:K (channel K of a probability map).")
    return m.group(1), int(m.group(2))


def _sha256(path: Path, limit: int = 1 << 26) -> str:
    h = hashlib.sha256()
    paths = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in paths:
        with open(p, "rb") as f:
            h.update(f.read(limit))
    return h.hexdigest()


class Teacher:
    """A model that maps a photo (HxWx3 uint8 RGB) to a soft person matte (HxW float32)."""

    def __init__(self, name: str, kind: str, path: Path | None, predict: Callable[[np.ndarray], np.ndarray],
                 options: dict | None = None):
        self.name, self.kind, self.path = name, kind, path
        self._predict = predict
        self.options = options or {}

    def predict_photo(self, rgb: np.ndarray) -> np.ndarray:
        a = np.asarray(self._predict(np.asarray(rgb)[..., :3]), np.float32)
        if a.shape != rgb.shape[:2]:
            raise InputError(f"teacher {self.name} returned a matte of shape {a.shape} for a {rgb.shape[:2]} photo")
        if not np.all(np.isfinite(a)):
            raise InputError(f"teacher {self.name} produces non-finite values (NaN/Inf); it cannot label photos.")
        return np.clip(a, 0.0, 1.0)

    def identity(self) -> dict:
        """What the cached mattes depend on: the teacher's kind, its file's hash, its options."""
        return {"kind": self.kind, "name": self.name,
                "sha256": _sha256(self.path) if self.path is not None else None, "options": self.options,
                "cache_format": CACHE_FORMAT}

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
        from .bench.peer import cached_mediapipe

        p = cached_mediapipe(MEDIAPIPE[text])
        if p is None:
            raise DependencyError(f"The {text} teacher is not downloaded yet: run `edgematting peer fetch` first.")
        return _foreign(Path(p), TeacherOptions(input="0,1", output="probability"), threads, name=text,
                        kind="mediapipe")
    p = Path(text)
    if not p.exists():
        raise InputError(
            f"Teacher {text!r} not found. Pass mediapipe, mediapipe-landscape, a model directory, a converted "
            "artifact (.tflite/.onnx/.mlpackage with its .json sidecar) or a foreign .tflite/.onnx file.")
    if p.is_dir() and (p / "model.json").is_file():
        return _model_dir(p)
    from .contract import read_sidecar, target_of

    kind = target_of(p)
    side = read_sidecar(p, required=False)
    if side is not None and side.get("format") == "edgematting-artifact":
        return _artifact(p, threads)
    if kind == "coreml":
        raise InputError(f"{p} has no edgematting sidecar; a foreign Core ML model cannot be a teacher "
                         "(use a .tflite or .onnx file).")
    if kind not in ("tflite", "onnx"):
        raise InputError(f"Teacher {p} is not a model directory or a .tflite/.onnx/.mlpackage file.")
    return _foreign(p, options, threads)


def _model_dir(p: Path) -> Teacher:
    from .modelio import load_model_dir

    model, spec = load_model_dir(p)

    def predict(rgb):
        x = imageops.to_model_input(rgb, spec.input_size, spec.mean, spec.std, channel_order=spec.channel_order)
        return imageops.alpha_to_photo(np.asarray(model(x, training=False)), rgb.shape[:2])

    return Teacher(spec.name, "model-dir", p, predict)


def _artifact(p: Path, threads: int) -> Teacher:
    from .contract import model_input, output_to_alpha
    from .runners import load_runner

    runner = load_runner(p, num_threads=threads)
    meta = runner.metadata
    contract = runner.contract

    def predict(rgb):
        return output_to_alpha(runner.run_raw(model_input(rgb, contract)), contract, rgb.shape[:2])

    return Teacher(meta.get("model_name", p.stem), "artifact", p, predict)


def _missing(flag: str, p: Path, what: str) -> InputError:
    return InputError(f"Teacher {p.name} is not an edgematting artifact (no sidecar), so {what} must be given: "
                      f"pass {flag}.")


def _foreign(p: Path, options: TeacherOptions, threads: int, name: str | None = None,
             kind: str = "foreign") -> Teacher:
    from .contract import decode_output, encode_pixels, validate_metadata

    if options.input is None:
        raise _missing("--teacher-input (0,1 | -1,1 | 0,255 | imagenet | mean=R,G,B;std=R,G,B)", p,
                       "its input normalization")
    if options.output is None:
        raise _missing("--teacher-output (probability | logits | 2class:K | channel:K)", p, "what its output means")
    mean, std = parse_input(options.input)
    out_kind, index = parse_output(options.output)
    if p.suffix.lower() == ".tflite":
        run_raw, shape, in_dtype, in_q, out_q = _tflite_session(p, threads)
    else:
        run_raw, shape, in_dtype, in_q, out_q = _onnx_session(p, threads)
    layout, h, w, c = _layout(shape, p, options)
    if c not in (3, 4):
        raise InputError(f"Teacher {p.name} takes {c}-channel input; a teacher must take RGB (3 channels, or 4).")
    order = str(options.channels).upper() + ("A" if c == 4 else "")
    meta = {"format_version": 1,
            "input": {"height": h, "width": w, "channels": c, "channel_order": order, "layout": layout,
                      "dtype": in_dtype, "mean": list(mean), "std": list(std),
                      "normalization_in_model": False, "quantization": in_q},
            "output": {"height": h, "width": w, "channels": 1, "dtype": "float32", "meaning": "person_probability"}}
    contract = validate_metadata(meta)

    def predict(rgb):
        px = imageops.resize_bilinear(rgb, h, w)[None]
        y = np.asarray(run_raw(encode_pixels(px, contract)))
        if out_q is not None:
            y = (y.astype(np.float32) - np.float32(out_q[1])) * np.float32(out_q[0])
        a = _output_map(y.astype(np.float32), out_kind, index, (h, w), p)
        return imageops.alpha_to_photo(decode_output(a, contract)[0], rgb.shape[:2])

    opts = {"input": options.input, "channels": options.channels, "output": options.output, "size": options.size}
    return Teacher(name or p.stem, kind, p, predict, opts)


def _layout(shape, p: Path, options: TeacherOptions) -> tuple[str, int, int, int]:
    dims = list(shape)
    if len(dims) != 4:
        raise InputError(f"Teacher {p.name} takes a {len(dims)}-d input {dims}; expected an image batch (4-d).")
    fixed = [d if isinstance(d, int) and d > 0 else None for d in dims]
    if fixed[1] in (3, 4) and fixed[3] not in (3, 4):
        layout, c, hw = "NCHW", fixed[1], (fixed[2], fixed[3])
    else:
        layout, c, hw = "NHWC", fixed[3], (fixed[1], fixed[2])
    if c is None:
        raise InputError(f"Teacher {p.name}: cannot tell its channel axis from input shape {dims}.")
    if None in hw:
        if not options.size:
            raise InputError(f"Teacher {p.name} has no fixed input size ({dims}): pass --teacher-size HxW.")
        from .models import parse_size

        hw = parse_size(options.size)
    return layout, int(hw[0]), int(hw[1]), int(c)


def _output_map(y: np.ndarray, kind: str, index: int | None, hw, p: Path) -> np.ndarray:
    """A raw output tensor -> (1, h', w', 1) probability."""
    if y.ndim == 3:
        y = y[..., None]
    if y.ndim != 4:
        raise InputError(f"Teacher {p.name} returns a {y.ndim}-d output; expected a map (N, H, W, C) or (N, C, H, W).")
    nchw = y.shape[1] <= 4 and y.shape[-1] > 4
    if nchw:
        y = np.transpose(y, (0, 2, 3, 1))
    if kind in ("probability", "logits"):
        if y.shape[-1] != 1:
            raise InputError(f"Teacher {p.name} outputs {y.shape[-1]} channels; use --teacher-output 2class:K or "
                             "channel:K to pick the person channel.")
        return 1.0 / (1.0 + np.exp(-y)) if kind == "logits" else y
    if index is None or index >= y.shape[-1]:
        raise InputError(f"--teacher-output {kind}:{index}: the model outputs {y.shape[-1]} channels.")
    if kind == "2class":
        e = np.exp(y - y.max(axis=-1, keepdims=True))
        y = e / e.sum(axis=-1, keepdims=True)
    return y[..., index:index + 1]


def _tflite_session(p: Path, threads: int):
    from ai_edge_litert.interpreter import Interpreter

    try:
        it = Interpreter(model_path=str(p), num_threads=threads)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise InputError(f"LiteRT cannot load teacher {p}: {str(e).strip()[:300]}") from e
    inp, out = it.get_input_details()[0], it.get_output_details()[0]

    def q(d):
        s, z = d["quantization"]
        return (float(s), int(z)) if s else None

    dtype = np.dtype(inp["dtype"]).name
    if dtype not in ("float32", "uint8", "int8"):
        raise InputError(f"Teacher {p.name} takes {dtype} input; supported: float32, uint8, int8.")

    def run_raw(x):
        it.set_tensor(inp["index"], x.astype(inp["dtype"]))
        it.invoke()
        return it.get_tensor(out["index"])

    in_q = q(inp)
    return run_raw, [int(v) for v in inp["shape"]], dtype, (
        {"scale": in_q[0], "zero_point": in_q[1]} if in_q else None), q(out)


def _onnx_session(p: Path, threads: int):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.log_severity_level = 3
    try:
        sess = ort.InferenceSession(str(p), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types
        raise InputError(f"onnxruntime cannot load teacher {p}: {str(e).strip()[:300]}") from e
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    types = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8"}
    if inp.type not in types:
        raise InputError(f"Teacher {p.name} takes {inp.type} input; supported: float32, uint8, int8.")
    shape = [d if isinstance(d, int) else None for d in inp.shape]
    if shape and shape[0] is None:
        shape[0] = 1

    def run_raw(x):
        return sess.run([out.name], {inp.name: x})[0]

    return run_raw, shape, types[inp.type], None, None


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


def cache_teacher_mattes(teacher: Teacher, photos: list[Path], cache_root: str | os.PathLike,
                         root: Path | None = None, skip_bad: bool = False,
                         progress: bool = True) -> tuple[Path, list[tuple[Path, Path]], list[tuple[str, str]]]:
    """Compute (or reuse) the teacher's matte of every photo.

    Returns (cache folder, [(photo, matte)], [(bad photo, why)]). The folder is
    ``cache_root/<teacher key>/`` with ``teacher.json`` (the teacher's identity) and one PNG
    per photo. Unreadable photos raise DataError listing all of them, unless `skip_bad`.
    """
    from . import atomic
    from .data.io import read_image, write_png

    root = root or (photos[0].parent if photos else Path("."))
    folder = Path(cache_root) / teacher.key()
    folder.mkdir(parents=True, exist_ok=True)
    ident = folder / "teacher.json"
    if not ident.exists():
        atomic.write_json(ident, {"format": "edgematting-teacher-cache", "format_version": CACHE_FORMAT,
                                  **teacher.identity()})
    pairs, bad, todo = [], [], []
    for ph in photos:
        m = folder / matte_name(ph, root)
        (pairs if m.exists() else todo).append((ph, m))
    crash_after = int(os.environ.get(CRASH_ENV, "0") or 0)
    written = 0
    from .predict import _progress

    with _progress(progress and len(todo) > 1, len(todo), f"teacher {teacher.name}") as advance:
        for ph, m in todo:
            try:
                rgb = read_image(ph)
            except DataError as e:
                bad.append((str(ph), str(e).splitlines()[0]))
                advance()
                continue
            write_png(m, imageops.round_to_uint8(teacher.predict_photo(rgb) * np.float32(255.0)))
            pairs.append((ph, m))
            written += 1
            advance()
            if crash_after and written >= crash_after:
                os._exit(9)  # test hook: as if killed
    if bad and not skip_bad:
        raise DataError(f"{len(bad)} unreadable photo(s) in --unlabelled. Remove them or pass --skip-bad:",
                        bad_files=bad)
    order = {p: i for i, p in enumerate(photos)}
    pairs.sort(key=lambda pm: order[pm[0]])
    return folder, pairs, bad


def teacher_options_dict(options: TeacherOptions) -> dict:
    return {k: v for k, v in asdict(options).items() if v is not None}
