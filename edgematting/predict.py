"""Cut people out of photos with a trained model.

`predict_images` runs the reference photo pipeline of `edgematting.imageops` (photo ->
model size -> model -> alpha resized back to the photo -> output) and writes one PNG per
photo into `out_dir`, each written atomically:

============  ========================  ==============================================
``output``    file                      contents
============  ========================  ==============================================
``rgba``      ``STEM_cutout.png``       RGBA: the photo with the matte as alpha channel
``alpha``     ``STEM_alpha.png``        8-bit grey matte, ``round(255 * alpha)``
``composite`` ``STEM_composite.png``    RGB: ``alpha * photo + (1 - alpha) * background``
============  ========================  ==============================================

The suffix keeps an output from ever overwriting its input photo (even with ``--out``
pointing at the photos' own folder) and lets several modes share one folder. Two inputs
with the same stem (``a/x.jpg``, ``b/x.png``) get ``x_cutout.png`` and ``x_2_cutout.png``,
in input order.

``background`` (composite only): ``'#rrggbb'``, ``'#rgb'`` or ``'r,g,b'`` (0..255), the word
``'blur'`` (the photo itself, box-blurred), or the path of an image (resized to each
photo). Default black.

`load_predictor` and `predict_alphas` are shared with `edgematting.evaluation`: any object
with ``.run(x) -> alpha`` (an `edgematting.runners.base.Runner`) or a plain callable
mapping a normalized float NHWC batch to (N, H, W, 1) works in place of a model directory.
"""
from __future__ import annotations

import difflib
import io
import os
import re
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from . import atomic, imageops, imageops_fast
from .errors import DataError, InputError
from .modelio import ModelSpec, load_model_dir, load_spec

OUTPUTS = ("rgba", "alpha", "composite")
#: How the model's alpha is brought to the photo's resolution (`upsample_alpha`).
UPSAMPLE = ("bilinear", "guided")
SUFFIX = {"rgba": "_cutout", "alpha": "_alpha", "composite": "_composite"}
DEFAULT_BACKGROUND = "#000000"
GRID_ROWS = 4  # images shown in --grid



# -- model / runner ----------------------------------------------------------------------
class PhotoModel:
    """A model as the photo pipeline sees it (`edgematting.contract`): photo -> the model's
    own input tensor (`inputs`) -> raw output -> alpha at model size (`run`).

    Made by `load_predictor` from a model directory (Keras), a verified artifact
    (``.tflite``/``.onnx``/``.mlpackage``, run by its runner with the metadata of its sidecar,
    exactly as an app would), or a Runner / callable taking the Keras model's normalized
    float input together with its `ModelSpec`. `spec` gives what reports need (name, input
    size, threshold); `contract` is the validated input/output mapping.
    """

    def __init__(self, spec: ModelSpec, contract: dict, run_native: Callable[[np.ndarray], np.ndarray], *,
                 kind: str, engine: str = "", batch_one: bool = False, path=None, keras_model=None):
        self.spec, self.contract, self._run_native = spec, contract, run_native
        self.kind, self.engine, self.batch_one, self.path = kind, engine, batch_one, path
        self._keras = keras_model

    # the pipeline's stages (the fast paths of `edgematting.imageops_fast`, equal to the definition)
    def inputs(self, photos: Sequence[np.ndarray]) -> np.ndarray:
        """Photos (HxWx3 uint8) -> the stacked native input tensor (`contract.model_input`)."""
        from .contract import encode_pixels

        c = self.contract
        px = np.stack([imageops_fast.resize_bilinear(np.asarray(p)[..., :3], c["height"], c["width"]) for p in photos])
        return encode_pixels(px, c)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Native input batch -> float alpha (N, h, w, 1) on the [0, 1] scale (not clipped).
        NonFiniteError (exit 9), naming the first bad layer when it can, on NaN/Inf."""
        from .contract import decode_output
        from .finite import check_output

        if self.batch_one:
            y = np.concatenate([decode_output(self._run_native(x[i:i + 1]), self.contract) for i in range(len(x))])
        else:
            y = decode_output(self._run_native(x), self.contract)
        y = _as_alpha_batch(y, len(x))
        if not np.all(np.isfinite(y)):
            where = f"The model {self.path or self.spec.name}"
            kw = {} if self._keras is not None or self.path is None or self.kind in ("keras", "callable") else {
                "hint": f"Its weights are corrupt, or its conversion is: `edgematting verify {self.path}` compares it "
                        "with its Keras model."}
            check_output(y, model=self._keras, x=x if self._keras is not None else None, what=where,
                         artifact=self.path if self.kind == "tflite" else None, native=x, **kw)
        return y

    def __call__(self, x: np.ndarray) -> np.ndarray:  # the legacy interface: normalized float NHWC
        return self.run(np.asarray(x, np.float32))


def keras_contract(spec: ModelSpec) -> dict:
    """The contract of a Keras model (normalized float32 NHWC in, float alpha out)."""
    from .contract import validate_metadata
    from .models.registry import OUTPUT_MEANINGS

    h, w = spec.input_size
    meaning = spec.output_meaning if spec.output_meaning in OUTPUT_MEANINGS else next(iter(OUTPUT_MEANINGS))
    return validate_metadata({
        "format_version": 1,
        "input": {"height": h, "width": w, "channels": 3, "channel_order": spec.channel_order, "layout": "NHWC",
                  "dtype": "float32", "mean": list(spec.mean), "std": list(spec.std),
                  "normalization_in_model": False, "quantization": None},
        "output": {"height": h, "width": w, "channels": 1, "dtype": "float32", "meaning": meaning,
                   "range": [0.0, 1.0], "threshold": spec.threshold},
    })


def artifact_spec(meta: dict, contract: dict) -> ModelSpec:
    """A `ModelSpec` for reports, from an artifact's sidecar."""
    mean = contract["model_mean"] or (127.5, 127.5, 127.5)
    std = contract["model_std"] or (127.5, 127.5, 127.5)
    return ModelSpec(architecture=str(meta.get("architecture", "unknown")), config={},
                     input_size=(contract["height"], contract["width"]), name=str(meta.get("model_name", "")),
                     channel_order=contract["channel_order"][:3], mean=mean, std=std,
                     output_meaning=contract["meaning"], threshold=contract["threshold"])


def load_artifact(path, num_threads: int = 1) -> PhotoModel:
    """A verified artifact as a `PhotoModel`: its runner (Core ML through the MIL reference
    interpreter off macOS), driven by the metadata of its sidecar, which must describe the
    file (`verify.check_sidecar`)."""
    from .contract import SIDECAR_ONLY_KEYS, read_sidecar, target_of, validate_metadata
    from .runners import load_runner
    from .verify import check_sidecar

    p = Path(path)
    if not p.exists():
        raise InputError(f"Model not found: {p}.")
    side = read_sidecar(p)  # InputError when missing: the sidecar is the contract
    meta = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS}
    contract = validate_metadata(meta)
    runner = load_runner(p, num_threads=num_threads)
    check_sidecar(p, getattr(runner, "metadata", None) or {})
    runner.metadata, runner._contract = meta, contract
    kind = target_of(p)
    return PhotoModel(artifact_spec(meta, contract), contract, runner.run_raw, kind=kind,
                      engine=getattr(runner, "engine", kind), batch_one=getattr(runner, "batch_one", True), path=p)


def load_predictor(model, spec: ModelSpec | None = None, num_threads: int = 1) -> tuple[PhotoModel, ModelSpec]:
    """(PhotoModel, spec) from a model directory, an artifact file, a Runner (``.run``) or a
    callable.

    A Runner or callable maps a float32 (N, H, W, 3) batch, normalized as in model.json, to
    a float32 (N, H, W, 1) alpha; `spec` (or ``model.spec``) must give the model's input
    size and normalization. The PhotoModel is also such a callable.
    """
    if isinstance(model, PhotoModel):
        return model, model.spec
    if isinstance(model, (str, os.PathLike)):
        from .contract import target_of

        kind = target_of(model)
        if kind != "keras":
            pm = load_artifact(model, num_threads)
            return pm, pm.spec
        keras_model, spec = load_model_dir(model)

        def predict_fn(x):
            return np.asarray(keras_model.predict_on_batch(np.asarray(x, np.float32)))

        return PhotoModel(spec, keras_contract(spec), predict_fn, kind="keras", engine="tf-keras",
                          path=Path(model), keras_model=keras_model), spec
    spec = spec if spec is not None else getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(
            "a runner or callable needs its ModelSpec: pass spec=load_spec(model_dir) "
            "(it gives the input size and normalization)"
        )
    if hasattr(model, "run"):
        fn = model.run
    elif callable(model):
        fn = model
    else:
        raise TypeError(f"expected a model directory, a Runner or a callable, got {type(model).__name__}")
    return PhotoModel(spec, keras_contract(spec), fn, kind="callable", engine=type(model).__name__), spec


def check_model_path(model_dir) -> None:
    """InputError, saying what to do, unless `model_dir` is a model directory (or its model
    file) or a converted artifact with its sidecar."""
    from .contract import read_sidecar, target_of

    p = Path(model_dir)
    if not p.exists():
        raise InputError(f"Model not found: {p}. Train one with `edgematting train` (or `edgematting quickstart`) "
                         "first, or pass a converted .tflite/.onnx/.mlpackage.")
    if target_of(p) != "keras":
        read_sidecar(p)
        return
    load_spec(p)


def _as_alpha_batch(y, n: int) -> np.ndarray:
    a = np.asarray(y, dtype=np.float32)
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[0] != n or a.shape[-1] != 1:
        raise ValueError(f"predictor returned shape {a.shape}; expected ({n}, H, W, 1)")
    return a


def parse_upsample(upsample: str | None = None, radius: int | None = None, eps: float | None = None):
    """--upsample bilinear|guided [--guided-radius R] [--guided-eps E] -> None (bilinear) or an
    `imageops.GuidedFilter`. InputError for anything else."""
    mode = (upsample or "bilinear").strip().lower()
    if mode not in UPSAMPLE:
        raise InputError(f"--upsample takes {' or '.join(UPSAMPLE)}, not {upsample!r}.")
    if mode == "bilinear":
        if radius is not None or eps is not None:
            raise InputError("--guided-radius/--guided-eps apply to --upsample guided.")
        return None
    d = imageops.GuidedFilter()
    try:
        return imageops.GuidedFilter(radius=d.radius if radius is None else radius, eps=d.eps if eps is None else eps)
    except ValueError as e:
        raise InputError(f"--upsample guided: {e}") from None


def upsample_alpha(alpha, photo: np.ndarray, guided=None) -> np.ndarray:
    """A model-resolution alpha -> the photo's size: bilinear, or the edge-aware guided
    filter (`imageops.guided_upsample`, guided by the photo) when `guided` is given.
    (The fast paths of `imageops_fast`, bit for bit equal to the definitions.)"""
    a = np.asarray(alpha, np.float32)
    if guided is None:
        return imageops_fast.alpha_to_photo(a, photo.shape[:2])
    return imageops_fast.guided_upsample(a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a, photo,
                                         guided.radius, guided.eps)


def predict_alphas(predict_fn, spec: ModelSpec | None, photos: Sequence[np.ndarray],
                   guided=None) -> list[np.ndarray]:
    """Alpha (HxW float32 in [0, 1]) of each photo (HxWx3 uint8) at the photo's own size.

    The photo pipeline, one stage per line: photos -> the model's input tensor -> model ->
    alpha at model size -> alpha at photo size (`upsample_alpha`). `predict_fn`: a
    `PhotoModel`, or anything `load_predictor` takes with `spec`. All photos go through the
    model as one batch: pass a few at a time.
    """
    if not photos:
        return []
    model, _ = load_predictor(predict_fn, spec)
    lowres = model.run(model.inputs(photos))
    return [upsample_alpha(lowres[i], p, guided) for i, p in enumerate(photos)]


# -- arguments ---------------------------------------------------------------------------
_HEX = re.compile(r"^#([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
_RGB = re.compile(r"^\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*$")


def parse_color(text: str) -> tuple[int, int, int] | None:
    """'#rrggbb' | '#rgb' | 'r,g,b' -> (r, g, b); None if `text` is not written as a colour.

    InputError for a colour-shaped string with values out of range.
    """
    s = str(text).strip()
    m = _HEX.match(s)
    if m:
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))
    m = _RGB.match(s)
    if m:
        rgb = tuple(int(v) for v in m.groups())
        if max(rgb) > 255:
            raise InputError(f"Background colour {text!r} has a value above 255; use 0..255 per channel, e.g. '0,255,0'.")
        return rgb
    return None


def parse_background(background) -> tuple[int, int, int] | str | np.ndarray:
    """A colour tuple, the string 'blur', or an HxWx3 uint8 image read from a path."""
    if background is None:
        background = DEFAULT_BACKGROUND
    if isinstance(background, np.ndarray):
        return background
    if isinstance(background, (tuple, list)) and len(background) == 3:
        if not all(0 <= float(v) <= 255 for v in background):
            raise InputError(f"Background colour {background!r} must have 3 values in 0..255.")
        return tuple(int(v) for v in background)
    s = str(background)
    if s.strip().lower() == "blur":
        return "blur"
    rgb = parse_color(s)
    if rgb is not None:
        return rgb
    p = Path(s).expanduser()
    if p.is_file():
        from .data.io import read_image

        try:
            return read_image(p)
        except DataError as e:
            raise InputError(f"Background image {p} cannot be read: {e}") from e
    raise InputError(
        f"Background {s!r} is not a colour, 'blur' or an existing image file. Use e.g. "
        "--background '#00ff00', --background 0,255,0, --background blur or "
        "--background path/to/room.jpg."
    )


def expand_images(images: Sequence[str | os.PathLike]) -> list[Path]:
    """Files as given and the images (jpg/jpeg/png) directly inside given directories."""
    from .data.io import list_images

    out: list[Path] = []
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    for item in images:
        p = Path(item).expanduser()
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise InputError(f"No .jpg/.jpeg/.png images in directory {p}.")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise InputError(f"Image not found: {p}. Check the path (directories are searched for images).")
    if not out:
        raise InputError("No images given: pass image files or directories holding images.")
    return out


def check_images(paths: Sequence[Path]) -> list[tuple[Path, str]]:
    """(path, why) of every input that cannot be read: a complete but cheap check
    (`data.io.check_image`), so a truncated photo at #100 is found before anything is written."""
    from .data.io import check_image

    bad = []
    for p in paths:
        why = check_image(p)
        if why:
            bad.append((p, why))
    return bad


def _unreadable_error(bad: list[tuple[Path, str]], total: int) -> InputError:
    p, why = bad[0]
    more = f" (and {len(bad) - 1} more unreadable photo(s))" if len(bad) > 1 else ""
    return InputError(f"{p} is not a readable image: {why}{more}. Remove it or convert it to PNG/JPEG, or pass "
                      f"--skip-bad to cut out the other {total - len(bad)} photo(s).")


def output_names(paths: Sequence[Path], output: str) -> list[str]:
    """``STEM{suffix}.png`` per input; repeated stems get ``_2``, ``_3``... in input order."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0) + 1
        seen[p.stem] = n
        stem = p.stem if n == 1 else f"{p.stem}_{n}"
        names.append(f"{stem}{SUFFIX[output]}.png")
    return names


def _check_output(output: str) -> str:
    if output not in OUTPUTS:
        close = difflib.get_close_matches(str(output), OUTPUTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"Unknown output {output!r}; choose one of {', '.join(OUTPUTS)}.{hint}")
    return output


# -- main entry --------------------------------------------------------------------------
def render(output: str, rgb: np.ndarray, alpha: np.ndarray, background=None):
    """The PIL image written for one photo (`OUTPUTS`), with the fast paths of
    `imageops_fast` (bit for bit the definitions `imageops.rgba_cutout`, ``round(255 *
    alpha)`` and `imageops.composite`)."""
    from PIL import Image

    if output == "rgba":
        return imageops_fast.rgba_cutout(rgb, alpha, as_image=True)
    if output == "alpha":
        return Image.fromarray(imageops_fast.alpha_to_uint8(alpha), "L")
    return imageops_fast.composite(rgb, alpha, background, as_image=True)


def predict_images(
    model_dir,
    images: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    output: str = "rgba",
    background=None,
    grid: str | os.PathLike | None = None,
    batch_size: int = 8,
    progress: bool = True,
    spec: ModelSpec | None = None,
    guided=None,
    skip_bad: bool = False,
    skipped: list | None = None,
    num_threads: int = 1,
) -> list[Path]:
    """Write one PNG per image into `out_dir` (see the module docstring); return their paths.

    model_dir: a model directory, a converted artifact (.tflite/.onnx/.mlpackage with its
    sidecar), or a Runner / callable with `spec`. images: files and/or directories.
    background: only for output="composite" (default black). grid: also write a PNG grid of
    input / alpha / cut-out for the first few images. guided: an `imageops.GuidedFilter` to
    upsample the alpha edge-aware (None: bilinear).

    Everything that can be checked is checked before the model is loaded or anything is
    written: the model path, the output mode, the background, that `out_dir` is writable,
    that every image exists and can be read completely. An unreadable image is an
    InputError naming it, unless `skip_bad`: then it is skipped with a warning (and listed
    in `skipped` as (path, why), when a list is passed). Every file is written atomically.
    """
    import warnings

    from .errors import EdgemattingWarning

    if isinstance(model_dir, (str, os.PathLike)):
        check_model_path(model_dir)  # missing model -> InputError before anything else
    output = _check_output(output)
    if background is not None and output != "composite":
        raise InputError(f"--background only applies to --output composite (got --output {output}).")
    bg = parse_background(background) if output == "composite" else None
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    paths = expand_images(images)
    out = Path(out_dir)
    atomic.check_output_dir(out)
    if grid is not None:
        atomic.check_output_file(grid, "--grid")
    names = dict(zip(paths, output_names(paths, output)))  # stable names, skipped photos or not
    skipped = skipped if skipped is not None else []

    def skip(p: Path, why: str) -> None:
        skipped.append((p, why))
        warnings.warn(f"skipping {p}: {why}", EdgemattingWarning, stacklevel=3)

    bad = check_images(paths)
    if bad and not skip_bad:
        raise _unreadable_error(bad, len(paths))
    for p, why in bad:
        skip(p, why)
    bad_set = {p for p, _ in bad}
    paths = [p for p in paths if p not in bad_set]
    if not paths:
        raise InputError("No readable images left to cut out.")

    model, spec = load_predictor(model_dir, spec, num_threads=num_threads)
    from .data.io import read_image, write_pil_png

    written: list[Path] = []
    shown: list[tuple[str, np.ndarray, np.ndarray]] = []
    with _progress(progress and len(paths) > 4, len(paths), "predict") as advance:
        for start in range(0, len(paths), batch_size):
            chunk, photos = [], []
            for p in paths[start : start + batch_size]:
                try:
                    photos.append(read_image(p))
                    chunk.append(p)
                except DataError as e:
                    why = e.bad_files[0][1] if e.bad_files else str(e)
                    if not skip_bad:
                        raise InputError(f"Cannot read image {p}: {why}. Remove it, or pass --skip-bad to skip "
                                         "unreadable photos.") from e
                    skip(p, why)
                    advance()
            alphas = predict_alphas(model, spec, photos, guided)
            for p, rgb, a in zip(chunk, photos, alphas):
                target = out / names[p]
                write_pil_png(target, render(output, rgb, a, bg))
                written.append(target)
                if grid is not None and len(shown) < GRID_ROWS:
                    shown.append((p.name, rgb, a))
                advance()
    if grid is not None:
        write_grid(shown, grid)
    return written


class _progress:
    """Context manager yielding an `advance()` callable; a rich bar when enabled."""

    def __init__(self, enabled: bool, total: int, label: str):
        self.enabled, self.total, self.label = enabled, total, label
        self._bar = None

    def __enter__(self):
        if not self.enabled:
            return lambda: None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            transient=True,
        )
        self._bar.__enter__()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda: self._bar.advance(task)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.__exit__(*exc)
        return False


def _checkerboard(h: int, w: int, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    light = ((yy // cell + xx // cell) % 2 == 0)
    return np.where(light[..., None], 204, 153).astype(np.uint8).repeat(3, axis=2)


def write_grid(rows: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | os.PathLike) -> Path:
    """PNG grid, one row per image: input / alpha / cut-out over a checkerboard."""
    from matplotlib.figure import Figure

    if not rows:
        raise InputError("No images to put in the grid.")
    fig = Figure(figsize=(9, 3 * len(rows)), dpi=100)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    for r, (name, rgb, a) in enumerate(rows):
        h, w = a.shape
        cut = imageops.composite(rgb, a, _checkerboard(h, w, max(4, min(h, w) // 16)))
        for c, (img, title, kw) in enumerate(
            [(rgb, name, {}), (a, "alpha", {"cmap": "gray", "vmin": 0, "vmax": 1}), (cut, "cut-out", {})]
        ):
            ax = axes[r][c]
            ax.imshow(img, interpolation="nearest", **kw)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic.write_bytes(path, buf.getvalue())
    return Path(path)
