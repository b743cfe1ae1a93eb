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

Memory budget. Everything at the photo's size runs a strip of rows at a time
(`imageops_fast.STRIP_PIXELS`, 1 MP): the alpha upsampled (`imageops_fast.AlphaRows`,
bilinear or guided), the refinement's photo-size steps and the foreground colours
(`refine.apply_rows`), the composite and cut-out (`render_strips`), the decode
(`data.io.upright_rgb`); each strip is bit for bit those rows of the whole-frame functions,
and no photo-size float array is made. What is at the photo's size is uint8: the photo (3
bytes a pixel; while it is decoded, PIL's copy too, 4 bytes) and the output image, PNG-
encoded straight into its file (4 bytes a pixel for rgba, 3 composite, 1 alpha). The
refinement's solve, trimap and the dense foreground levels work on reduced copies (at most
``--refine-max-side`` px long); the foreground's full-resolution level works on sub-strips
of at most `refine.SPARSE_PIXELS` partial pixels. Batches hold at most `BATCH_PIXELS`
beyond one photo. So the peak resident memory is about

    baseline + 7 bytes x pixels (7 MB per megapixel) + 0.3 GiB

with baseline = Python, TensorFlow and the model (0.62 GiB for a Keras Fast-SCNN; 0.75 GiB
once pymatting is loaded for ``--refine trimap``): a 108 MP photo peaks at 1.37 GiB (no
foreground estimation), 1.49 GiB (the CLI's defaults: guided filter, foreground
estimation) and 1.63 GiB (``--refine trimap``); it was 3.36 / 4.20 / 5.01 GiB, and over 14
GiB with an unsure model's alpha (every pixel partial), now 1.50 GiB. Measure: ``python -m
edgematting.bench.memory`` (figures in docs/reference.md, "Large photos").
Not bounded by strips: ``--background blur`` keeps the box blur's float64 running sums over
``2 r + 1`` rows (``r = min(h, w) / 40``: about 3.6 bytes a pixel more).
"""
from __future__ import annotations

import difflib
import io
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from . import atomic, imageops, imageops_fast, runners
from .errors import DataError, InputError
from .console import progress_bar
from .formats import target_of
from .modelio import ModelSpec, load_spec
from .runners.photo import PhotoRunner, upsample_alpha

OUTPUTS = ("rgba", "alpha", "composite")
SUFFIX = {"rgba": "_cutout", "alpha": "_alpha", "composite": "_composite"}
DEFAULT_BACKGROUND = "#000000"
GRID_ROWS = 4  # images shown in --grid



# -- model -------------------------------------------------------------------------------
def load_predictor(model, spec: ModelSpec | None = None, num_threads: int = 1) -> tuple[PhotoRunner, ModelSpec]:
    """(PhotoRunner, spec) from anything `runners.open` takes: a model directory, an artifact
    file, a PhotoRunner, or a Runner (``.run``) / callable with its `spec`.

    A Runner or callable maps a float32 (N, H, W, 3) batch, normalized as in model.json, to
    a float32 (N, H, W, 1) alpha; `spec` (or ``model.spec``) must give the model's input
    size and normalization.
    """
    pm = runners.open(model, num_threads=num_threads, spec=spec)
    return pm, pm.spec


def check_model_path(model_dir) -> None:
    """InputError, saying what to do, unless `model_dir` is a model directory (or its model
    file) or a converted artifact with its sidecar."""
    from .contract import read_sidecar

    p = Path(model_dir)
    if not p.exists():
        raise InputError(f"Model not found: {p}. Train one with `edgematting train` (or `edgematting quickstart`) "
                         "first, or pass a converted .tflite/.onnx/.mlpackage.")
    if target_of(p) != "keras":
        read_sidecar(p)
        return
    load_spec(p)


def predict_alphas(predict_fn, spec: ModelSpec | None, photos: Sequence[np.ndarray],
                   guided=None) -> list[np.ndarray]:
    """Alpha (HxW float32 in [0, 1]) of each photo (HxWx3 uint8) at the photo's own size.

    The photo pipeline, one stage per line: photos -> the model's input tensor -> model ->
    alpha at model size -> alpha at photo size (`upsample_alpha`). `predict_fn`: a
    `PhotoRunner`, or anything `runners.open` takes with `spec`. All photos go through the
    model as one batch: pass a few at a time.
    """
    return runners.open(predict_fn, spec=spec).predict_photos(photos, guided)


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
def render(output: str, rgb: np.ndarray, alpha: np.ndarray, background=None, foreground=None):
    """The PIL image written for one photo (`OUTPUTS`), with the fast paths of
    `imageops_fast` (bit for bit the definitions `imageops.rgba_cutout`, ``round(255 *
    alpha)`` and `imageops.composite`). `foreground`: the person's estimated colours
    (`refine.estimate_foreground`) in place of the photo's."""
    from PIL import Image

    if output == "rgba":
        return imageops_fast.rgba_cutout(rgb if foreground is None else foreground, alpha, as_image=True)
    if output == "alpha":
        return Image.fromarray(imageops_fast.alpha_to_uint8(alpha), "L")
    return imageops_fast.composite(rgb, alpha, background, as_image=True, foreground=foreground)


def render_strips(output: str, rgb: np.ndarray, alpha_rows, background=None, foreground=None,
                  strip_pixels: int | None = None):
    """`render` of the whole photo, made a strip of rows at a time: the same PIL image, bit
    for bit (every output pixel is a function of its own pixel's alpha, photo, foreground
    and background values; the background's rows come from
    `imageops_fast.background_rows`, the blur's from its streaming `BoxBlurRows`).

    alpha_rows: the alpha at the photo's size as rows (``rows(y0, y1)``: an
    `imageops_fast.AlphaRows`, `refine.RefinedAlpha`...; `imageops_fast.ArrayRows` of a
    whole one); foreground: None or rows of colours (`refine.Foreground`). Memory: the
    output image (uint8) and one strip of float rows.
    """
    from PIL import Image

    h, w = np.asarray(rgb).shape[:2]
    im = Image.new({"rgba": "RGBA", "alpha": "L", "composite": "RGB"}[output], (w, h))
    bg_rows = imageops_fast.background_rows(background, rgb) if output == "composite" else None
    for y0, y1 in imageops_fast.strips(h, imageops_fast.strip_height(w, strip_pixels)):
        a = alpha_rows.rows(y0, y1)
        fg = None if foreground is None else foreground.rows(y0, y1)
        bg = None if bg_rows is None else bg_rows(y0, y1)
        im.paste(render(output, rgb[y0:y1], a, bg, foreground=fg), (0, y0))
    return im


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
    refine=None,
) -> list[Path]:
    """Write one PNG per image into `out_dir` (see the module docstring); return their paths.

    model_dir: a model directory, a converted artifact (.tflite/.onnx/.mlpackage with its
    sidecar), or a Runner / callable with `spec`. images: files and/or directories.
    background: only for output="composite" (default black). grid: also write a PNG grid of
    input / alpha / cut-out for the first few images. guided: an `imageops.GuidedFilter` to
    upsample the alpha edge-aware (None: bilinear). refine: an `edgematting.refine.RefineConfig`
    (trimap refinement of the alpha, foreground colour estimation for rgba/composite,
    STEM_trimap.png); None: the plain pipeline (the CLI passes its defaults,
    ``RefineConfig()``: foreground estimation on).

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
    if refine is not None:
        from . import refine as refine_mod

        refine_mod.check_available(refine)  # missing extra -> DependencyError before the model loads

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

    def read(p: Path):
        try:
            return read_image(p)
        except DataError as e:
            why = e.bad_files[0][1] if e.bad_files else str(e)
            if not skip_bad:
                raise InputError(f"Cannot read image {p}: {why}. Remove it, or pass --skip-bad to skip "
                                 "unreadable photos.") from e
            skip(p, why)
            return None

    with progress_bar(progress and len(paths) > 4, len(paths), "predict") as advance:
        for chunk, photos in _batches(paths, batch_size, read, advance):
            lowres = model.run(model.inputs(photos))  # the model once per batch (`predict_alphas`)
            for i, p in enumerate(chunk):
                rgb, photos[i] = photos[i], None  # each photo is let go once it is written
                target = out / names[p]
                alpha = imageops_fast.AlphaRows(lowres[i], rgb, guided)  # = upsample_alpha, a strip at a time
                fg = None
                if refine is not None:
                    alpha, fg = refine_mod.apply_rows(rgb, alpha, refine, output,
                                                      target.with_name(target.name[: -len(SUFFIX[output] + ".png")]))
                write_pil_png(target, render_strips(output, rgb, alpha, bg, foreground=fg))
                written.append(target)
                if grid is not None and len(shown) < GRID_ROWS:
                    shown.append((p.name, *_grid_copy(rgb, alpha)))
                del rgb, alpha, fg
                advance()
    if grid is not None:
        write_grid(shown, grid)
    return written


#: a batch of photos in memory holds at most `batch_size` photos and, beyond one photo,
#: this many pixels (uint8 RGB: 3 bytes each)
BATCH_PIXELS = 1 << 24
#: --grid keeps a copy of each photo shown and its alpha; above this many pixels, a
#: subsampled one (every k-th row and column: the grid shows a few hundred pixels anyway)
GRID_PIXELS = 1 << 22


def _batches(paths, batch_size: int, read, advance):
    """(paths, photos) batches of readable photos: at most `batch_size` photos and
    `BATCH_PIXELS` pixels (a photo larger than that alone). Unreadable ones (``read`` gives
    None) are skipped (and counted by `advance`)."""
    chunk, photos, pixels = [], [], 0
    for p in paths:
        rgb = read(p)
        if rgb is None:
            advance()
            continue
        n = rgb.shape[0] * rgb.shape[1]
        if photos and pixels + n > BATCH_PIXELS:
            yield chunk, photos
            chunk, photos, pixels = [], [], 0
        chunk.append(p)
        photos.append(rgb)
        pixels += n
        del rgb
        if len(photos) >= batch_size:
            yield chunk, photos
            chunk, photos, pixels = [], [], 0
    if photos:
        yield chunk, photos


def _grid_copy(rgb: np.ndarray, alpha_rows) -> tuple[np.ndarray, np.ndarray]:
    """The photo and its alpha (rows: ``rows_at``) for --grid, subsampled above `GRID_PIXELS`."""
    h, w = rgb.shape[:2]
    k = max(1, int(np.ceil(np.sqrt(h * w / GRID_PIXELS))))
    ys = np.arange(0, h, k)
    a = np.concatenate([alpha_rows.rows_at(ys[i:i + 256])[:, ::k] for i in range(0, len(ys), 256)])
    return np.ascontiguousarray(rgb[::k, ::k]), np.ascontiguousarray(a, np.float32)


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
