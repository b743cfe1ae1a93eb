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
with the same stem (``a/x.jpg``, ``b/x.png``; compared without case, as macOS and Windows
file systems do) get ``x_cutout.png`` and ``x_2_cutout.png``, in input order, and a number
that another input's own stem has (``x_2.jpg``) is passed over: no two inputs ever share an
output file. One file given twice (the same file, however it is spelled) is cut out once,
with a note. Files an earlier run wrote into ``out_dir`` (``*_cutout.png``, ...) are not
taken as inputs, with a note: a second run over a folder that holds its own ``--out`` does
not cut out its cut-outs. A broken symbolic link in a photo folder counts as an unreadable
photo: an InputError, or skipped with one ``skipped N broken link(s)`` note under ``--skip-bad``.

``background`` (composite only): ``'#rrggbb'``, ``'#rgb'`` or ``'r,g,b'`` (0..255), the word
``'blur'`` (the photo itself, box-blurred), or the path of an image (resized to each
photo). Default black.

`load_predictor` and `predict_alphas` are shared with `edgematting.evaluation`: any object
with ``.run(x) -> alpha`` (an `edgematting.runners.base.Runner`) or a plain callable
mapping a normalized float NHWC batch to (N, H, W, 1) works in place of a model directory.

Memory budget. Everything at the photo's size runs a strip of rows at a time
(`imageops_fast.STRIP_PIXELS`, 1 MP): the alpha upsampled (the runner's
``ops.alpha_rows``: `imageops_cv.AlphaRows` / `imageops_cv.GuidedRows` by default,
`imageops_fast.AlphaRows` for ``EDGEMATTING_PIPELINE=exact``), the refinement's photo-size steps and the foreground colours
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
    """Files as given and the images (jpg/jpeg/png) directly inside given directories, each
    file once.

    Broken symbolic links (given, or named like images in a directory) are kept, for
    `check_images` to report like any unreadable photo. A file given more than once (the
    same file however it is spelled: ``a.jpg ./a.jpg``, a directory and a photo in it, a
    link to it) is kept once, at its first place, with one note naming the repeats.
    """
    from .data.io import broken_links, is_broken_link, list_images

    out: list[Path] = []
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    for item in images:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(list_images(p) + broken_links(p))
            if not found:
                raise InputError(f"No .jpg/.jpeg/.png images in directory {p}.")
            out.extend(found)
        elif p.is_file() or is_broken_link(p):
            out.append(p)
        else:
            raise InputError(f"Image not found: {p}. Check the path (directories are searched for images).")
    if not out:
        raise InputError("No images given: pass image files or directories holding images.")
    first: dict = {}
    unique, repeats = [], []
    for p in out:
        key = _file_key(p)
        if key in first:
            repeats.append(p if str(p) == str(first[key]) else f"{p} (= {first[key]})")
        else:
            first[key] = p
            unique.append(p)
    if repeats:
        _note(f"{len(repeats)} input(s) given more than once, each cut out once: {_few(repeats)}")
    return unique


def _file_key(p: Path):
    """What makes two paths one file: device and inode (hard links, case-insensitive file
    systems, links), or the resolved path for a broken link."""
    try:
        st = p.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return os.path.realpath(p)


def _few(items, n: int = 5) -> str:
    """The first `n` of `items`, comma-separated, and how many more."""
    items = [str(i) for i in items]
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _note(message: str) -> None:
    """One ``warning: ...`` line from the CLI (an `EdgemattingWarning`)."""
    import warnings

    from .errors import EdgemattingWarning

    warnings.warn(message, EdgemattingWarning, stacklevel=3)


#: the endings of what predict writes (`SUFFIX`; refine's STEM_trimap.png)
OUTPUT_ENDINGS = tuple(s + ".png" for s in SUFFIX.values()) + ("_trimap.png",)


def drop_earlier_outputs(paths: Sequence[Path], out_dir, grid=None) -> list[Path]:
    """`paths` less the files an earlier run wrote: those in `out_dir` (or below it) named
    like an output (`OUTPUT_ENDINGS`, any case), and the `grid` file. With ``--out`` equal
    to a photo folder (or a folder given with it), a second run would otherwise cut out its
    own cut-outs (and overwrite an input with an output). One note says how many, and
    which; InputError when nothing is left."""
    o = Path(os.path.realpath(out_dir))
    g = os.path.realpath(grid) if grid is not None else None
    keep, dropped = [], []
    for p in paths:
        parent = Path(os.path.realpath(p.parent))
        earlier = (parent == o or o in parent.parents) and p.name.lower().endswith(OUTPUT_ENDINGS)
        if earlier or (g is not None and os.path.realpath(p) == g):
            dropped.append(p)
        else:
            keep.append(p)
    if dropped and not keep:
        raise InputError(f"Nothing to cut out: every input ({_few(dropped)}) is an earlier predict run's output "
                         f"in --out {out_dir}. Pass the photos, or choose another --out.")
    if dropped:
        _note(f"skipped {len(dropped)} earlier output(s), not taken as inputs (predict's files in --out {out_dir}"
              f"{', or the --grid' if grid is not None else ''}): {_few(p.name for p in dropped)}")
    return keep


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
    from .data.io import is_broken_link

    p, why = bad[0]
    more = f" (and {len(bad) - 1} more unreadable photo(s))" if len(bad) > 1 else ""
    if is_broken_link(p):
        return InputError(f"{p} is a {why}{more}. Fix or remove the link, or pass --skip-bad to cut out the "
                          f"other {total - len(bad)} photo(s).")
    return InputError(f"{p} is not a readable image: {why}{more}. Remove it or convert it to PNG/JPEG, or pass "
                      f"--skip-bad to cut out the other {total - len(bad)} photo(s).")


def output_names(paths: Sequence[Path], output: str) -> list[str]:
    """``STEM{suffix}.png`` per input, all different: a stem met again (without case, as on
    macOS and Windows) gets ``_2``, ``_3``... in input order, passing over a number that is
    another input's own stem (``x.jpg``, ``b/x.png``, ``x_2.jpg`` -> ``x``, ``x_3``, ``x_2``)."""
    own = {p.stem.casefold() for p in paths}
    used: set[str] = set()
    names = []
    for p in paths:
        stem, n = p.stem, 1
        while stem.casefold() in used or (n > 1 and stem.casefold() in own):
            n += 1
            stem = f"{p.stem}_{n}"
        used.add(stem.casefold())
        names.append(f"{stem}{SUFFIX[output]}.png")
    return names


def _check_output(output: str) -> str:
    if output not in OUTPUTS:
        close = difflib.get_close_matches(str(output), OUTPUTS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise InputError(f"Unknown output {output!r}; choose one of {', '.join(OUTPUTS)}.{hint}")
    return output


# -- main entry --------------------------------------------------------------------------
def render(output: str, rgb: np.ndarray, alpha: np.ndarray, background=None, foreground=None, ops=None):
    """The PIL image written for one photo (`OUTPUTS`), by `ops` (`imageops_cv.PhotoOps`;
    None: the default pipeline, OpenCV, within `imageops_cv`'s bounds of the definitions
    `imageops.rgba_cutout`, ``round(255 * alpha)`` and `imageops.composite`; "exact": bit for
    bit). `foreground`: the person's estimated colours (`refine.estimate_foreground`) in place
    of the photo's."""
    from PIL import Image

    from .imageops_cv import get_ops

    ops = ops or get_ops()
    if output == "rgba":
        return ops.rgba_cutout(rgb if foreground is None else foreground, alpha, as_image=True)
    if output == "alpha":
        return Image.fromarray(ops.alpha_to_uint8(alpha), "L")
    return ops.composite(rgb, alpha, background, as_image=True, foreground=foreground)


def render_strips(output: str, rgb: np.ndarray, alpha_rows, background=None, foreground=None,
                  strip_pixels: int | None = None, ops=None):
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
        im.paste(render(output, rgb[y0:y1], a, bg, foreground=fg, ops=ops), (0, y0))
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
    keep_largest: float | None = None,
) -> list[Path]:
    """Write one PNG per image into `out_dir` (see the module docstring); return their paths.

    model_dir: a model directory, a converted artifact (.tflite/.onnx/.mlpackage with its
    sidecar), or a Runner / callable with `spec`. images: files and/or directories.
    background: only for output="composite" (default black). grid: also write a PNG grid of
    input / alpha / cut-out for the first few images. guided: an `imageops.GuidedFilter` to
    upsample the alpha edge-aware (None: bilinear). refine: an `edgematting.refine.RefineConfig`
    (trimap refinement of the alpha, foreground colour estimation for rgba/composite,
    STEM_trimap.png); None: the plain pipeline (the CLI passes its defaults,
    ``RefineConfig()``: foreground estimation on). keep_largest: a fraction (e.g. 0.05); each
    model output's regions smaller than that fraction of its largest are zeroed
    (`components.keep_person_components`), None: all kept.

    Everything that can be checked is checked before the model is loaded or anything is
    written: the model path, the output mode, the background, that `out_dir` is writable,
    that every image exists and can be read completely. An unreadable image is an
    InputError naming it, unless `skip_bad`: then it is skipped with a warning (and listed
    in `skipped` as (path, why), when a list is passed; broken links share one warning).
    Each input file is cut out once, into a file of its own, and never one an earlier run
    wrote into `out_dir` (`expand_images`, `drop_earlier_outputs`, `output_names`): the
    paths returned are the files written, all different. Every file is written atomically.
    """
    import warnings

    from .errors import EdgemattingWarning

    if isinstance(model_dir, (str, os.PathLike)):
        check_model_path(model_dir)  # missing model -> InputError before anything else
    output = _check_output(output)
    if keep_largest is not None:
        from .components import check_min_area_fraction

        try:
            check_min_area_fraction(keep_largest)
        except ValueError as e:
            raise InputError(f"{e}; e.g. 0.05.") from None
    if background is not None and output != "composite":
        raise InputError(f"--background only applies to --output composite (got --output {output}).")
    bg = parse_background(background) if output == "composite" else None
    if batch_size < 1:
        raise InputError(f"batch size must be >= 1, got {batch_size}")
    paths = expand_images(images)  # each file once
    out = Path(out_dir)
    atomic.check_output_dir(out)
    if grid is not None:
        atomic.check_output_file(grid, "--grid")
    paths = drop_earlier_outputs(paths, out, grid)
    names = dict(zip(paths, output_names(paths, output)))  # stable names, skipped photos or not
    if len(set(names.values())) != len(paths):  # one input, one file: the count said is the count written
        raise RuntimeError(f"output names clash: {sorted(names.values())}")
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
    from .data.io import is_broken_link

    links = [(p, why) for p, why in bad if is_broken_link(p)]
    for p, why in bad:
        if (p, why) not in links:
            skip(p, why)
    if links:  # one line for all of them
        skipped.extend(links)
        warnings.warn(f"skipped {len(links)} broken link(s): {_few(p.name for p, _ in links)}",
                      EdgemattingWarning, stacklevel=2)
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
                low = lowres[i]
                if keep_largest is not None:  # stray regions dropped at the model's size (cheap)
                    from .components import keep_person_components

                    low = keep_person_components(low, keep_largest)
                alpha = model.ops.alpha_rows(low, rgb, guided)  # = upsample_alpha, a strip at a time
                fg = None
                if refine is not None:
                    alpha, fg = refine_mod.apply_rows(rgb, alpha, refine, output,
                                                      target.with_name(target.name[: -len(SUFFIX[output] + ".png")]))
                write_pil_png(target, render_strips(output, rgb, alpha, bg, foreground=fg, ops=model.ops))
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
