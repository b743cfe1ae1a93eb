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

from . import atomic, imageops
from .errors import DataError, InputError
from .modelio import ModelSpec, load_model_dir, load_spec

OUTPUTS = ("rgba", "alpha", "composite")
#: How the model's alpha is brought to the photo's resolution (`upsample_alpha`).
UPSAMPLE = ("bilinear", "guided")
SUFFIX = {"rgba": "_cutout", "alpha": "_alpha", "composite": "_composite"}
DEFAULT_BACKGROUND = "#000000"
GRID_ROWS = 4  # images shown in --grid

PredictFn = Callable[[np.ndarray], np.ndarray]


# -- model / runner ----------------------------------------------------------------------
def load_predictor(model, spec: ModelSpec | None = None) -> tuple[PredictFn, ModelSpec]:
    """(predict_fn, spec) from a model directory, a Runner (``.run``) or a callable.

    predict_fn maps a float32 (N, H, W, 3) batch, normalized as in model.json, to a
    float32 (N, H, W, 1) alpha. For a runner or callable, `spec` (or ``model.spec``) must
    give the model's input size and normalization.
    """
    if isinstance(model, (str, os.PathLike)):
        keras_model, spec = load_model_dir(model)

        def predict_fn(x):
            return np.asarray(keras_model.predict_on_batch(np.asarray(x, np.float32)))

        return predict_fn, spec
    spec = spec if spec is not None else getattr(model, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(
            "a runner or callable needs its ModelSpec: pass spec=load_spec(model_dir) "
            "(it gives the input size and normalization)"
        )
    if hasattr(model, "run"):
        return model.run, spec
    if callable(model):
        return model, spec
    raise TypeError(f"expected a model directory, a Runner or a callable, got {type(model).__name__}")


def check_model_path(model_dir) -> None:
    """InputError, saying what to do, unless `model_dir` is a model directory (or its model file)."""
    p = Path(model_dir)
    if not p.exists():
        raise InputError(f"Model not found: {p}. Train one with `edgematting train` (or `edgematting quickstart`) first.")
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
    filter (`imageops.guided_upsample`, guided by the photo) when `guided` is given."""
    a = np.asarray(alpha, np.float32)
    if guided is None:
        return imageops.alpha_to_photo(a, photo.shape[:2])
    return imageops.guided_upsample(a.reshape(a.shape[-3], a.shape[-2]) if a.ndim >= 3 else a, photo,
                                    guided.radius, guided.eps)


def predict_alphas(predict_fn: PredictFn, spec: ModelSpec, photos: Sequence[np.ndarray],
                   guided=None) -> list[np.ndarray]:
    """Alpha (HxW float32 in [0, 1]) of each photo (HxWx3 uint8) at the photo's own size
    (upsampled with `upsample_alpha`).

    All photos go through the model as one batch: pass a few at a time.
    """
    if not photos:
        return []
    x = np.concatenate(
        [imageops.to_model_input(p, spec.input_size, spec.mean, spec.std, channel_order=spec.channel_order) for p in photos]
    )
    y = _as_alpha_batch(predict_fn(x), len(photos))
    return [upsample_alpha(y[i], p, guided) for i, p in enumerate(photos)]


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


def _check_readable(paths: Sequence[Path]) -> None:
    """Cheap header check of every input before anything is written."""
    from PIL import Image, UnidentifiedImageError

    for p in paths:
        try:
            with Image.open(p) as im:
                im.size  # noqa: B018 - parses the header only
        except (UnidentifiedImageError, OSError, ValueError) as e:
            raise InputError(f"{p} is not a readable image ({e}). Remove it or convert it to PNG/JPEG.") from e


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
    refine=None,
) -> list[Path]:
    """Write one PNG per image into `out_dir` (see the module docstring); return their paths.

    model_dir: a model directory, or a Runner / callable with `spec`. images: files and/or
    directories. background: only for output="composite" (default black). grid: also
    write a PNG grid of input / alpha / cut-out for the first few images. guided: an
    `imageops.GuidedFilter` to upsample the alpha edge-aware (None: bilinear). refine: an
    `edgematting.refine.RefineConfig` (trimap refinement of the alpha, foreground colour
    estimation for rgba/composite, STEM_trimap.png); None: the plain pipeline (the CLI
    passes its defaults, ``RefineConfig()``: foreground estimation on).

    Everything that can be checked is checked before the model is loaded or anything is
    written: the model path, the output mode, the background, that every image exists and
    has a readable header. Every file is written atomically.
    """
    if isinstance(model_dir, (str, os.PathLike)):
        check_model_path(model_dir)  # missing model -> InputError before anything else
    output = _check_output(output)
    if background is not None and output != "composite":
        raise InputError(f"--background only applies to --output composite (got --output {output}).")
    bg = parse_background(background) if output == "composite" else None
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    paths = expand_images(images)
    _check_readable(paths)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} exists and is not a directory.")
    targets = [out / n for n in output_names(paths, output)]
    if refine is not None:
        from . import refine as refine_mod

        refine_mod.check_available(refine)  # missing extra -> DependencyError before the model loads

    predict_fn, spec = load_predictor(model_dir, spec)
    from .data.io import read_image, write_png

    written: list[Path] = []
    shown: list[tuple[str, np.ndarray, np.ndarray]] = []
    with _progress(progress and len(paths) > 4, len(paths), "predict") as advance:
        for start in range(0, len(paths), batch_size):
            chunk = paths[start : start + batch_size]
            photos = []
            for p in chunk:
                try:
                    photos.append(read_image(p))
                except DataError as e:
                    raise InputError(f"Cannot read image {p}: {e}") from e
            alphas = predict_alphas(predict_fn, spec, photos, guided)
            for p, rgb, a, target in zip(chunk, photos, alphas, targets[start : start + batch_size]):
                fg = rgb
                if refine is not None:
                    a, fg = refine_mod.apply(rgb, a, refine, output,
                                             target.with_name(target.name[: -len(SUFFIX[output] + ".png")]))
                if output == "rgba":
                    img = imageops.rgba_cutout(fg, a)
                elif output == "alpha":
                    img = imageops.round_to_uint8(a * np.float32(255.0))
                else:
                    img = imageops.composite(rgb, a, bg, foreground=fg)
                write_png(target, img)
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
