"""Reading and writing the images and mattes of a dataset.

Every reader raises `DataError` (with the file in `bad_files`) for a file that cannot be
used, so the caller can list all bad files at once; nothing here needs TensorFlow.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from .. import atomic
from ..errors import DataError

# A truncated file must fail loudly, never decode as a half-grey image.
ImageFile.LOAD_TRUNCATED_IMAGES = False

IMAGE_EXTS = (".jpg", ".jpeg", ".png")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# IHDR colour types: 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA.
_PNG_GREY_TYPES = (0, 4)


def png_header(path: str | os.PathLike) -> tuple[int, int] | None:
    """(bit_depth, colour_type) from a PNG's IHDR, or None when `path` is not a PNG.

    PIL silently reduces a 16-bit RGB PNG to 8 bits, so the bit depth is read from the
    header itself.
    """
    with open(path, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _bad(path, why: str, what_next: str) -> DataError:
    return DataError(f"Cannot use {path}: {why}. {what_next}", bad_files=[(str(path), why)])


#: Errors PIL raises for a file it cannot decode. DecompressionBombError (an image over
#: 2 x Image.MAX_IMAGE_PIXELS) is not an OSError, so it is listed on its own.
PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)

#: EXIF tag 0x0112.
EXIF_ORIENTATION_TAG = 0x0112


def why_unreadable(e: BaseException) -> str:
    """One line saying why PIL could not read a file (`PIL_ERRORS`)."""
    if isinstance(e, Image.DecompressionBombError):
        return f"too large to decode safely, over PIL's decompression-bomb limit ({e}); downscale it first"
    return "truncated file" if "truncat" in str(e).lower() else f"unreadable image ({e})"


def _open_loaded(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image; DataError if it is missing, unreadable or truncated."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "file not found", "Check the path.")
    try:
        im = Image.open(path)
        im.load()
    except PIL_ERRORS as e:
        raise _bad(path, why_unreadable(e), "Re-export or remove the file.") from e
    return im


def exif_orientation(im: Image.Image) -> int:
    """The EXIF Orientation (1..8) of an opened image; 1 when it has none or a bad one."""
    try:
        v = int(im.getexif().get(EXIF_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - a corrupt EXIF block must not make a photo unreadable
        return 1
    return v if 1 <= v <= 8 else 1


#: EXIF orientation -> the PIL transpose that turns the stored image upright: the same
#: transform as `imageops.apply_exif_orientation` (mirror, then rotate clockwise), done in C
#: on the decoded image (tests check the two agree for all 8 values).
_PIL_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(im: Image.Image, orientation: int) -> Image.Image:
    """`im` turned upright for its EXIF `orientation` (unchanged for 1 or an unknown value)."""
    t = _PIL_UPRIGHT.get(int(orientation))
    return im if t is None else im.transpose(t)


def stored_and_upright_size(path: str | os.PathLike) -> tuple[tuple[int, int], tuple[int, int], int]:
    """((w, h) as stored, (w, h) as shown upright, EXIF orientation) from the header only.
    Raises PIL's errors (`PIL_ERRORS`)."""
    with Image.open(path) as im:
        size = im.size
        o = exif_orientation(im)
    return size, ((size[1], size[0]) if o in (5, 6, 7, 8) else size), o


def _note(message: str) -> None:
    import warnings

    from ..errors import EdgemattingWarning

    warnings.warn(message, EdgemattingWarning, stacklevel=3)


GRAYSCALE_MODES = ("L", "LA", "1")


def read_image(path: str | os.PathLike, exif: bool = True, note_grayscale: bool = True) -> np.ndarray:
    """Read a photo as HxWx3 uint8 RGB, *upright*.

    The EXIF Orientation tag is applied (`exif=False`: the pixels as stored), as every phone
    gallery does: a phone photo stored sideways with Orientation=6 is read the way it is
    shown. Mattes are taken as stored (`read_alpha`), so a dataset's matte must match the
    upright photo (`edgematting.data.folder` says so, naming EXIF, when it does not).

    Palette, CMYK, grey and RGBA images are converted to RGB (an alpha channel is dropped;
    use `read_alpha` for it); a grayscale photo is converted with a note (an
    `EdgemattingWarning`) unless `note_grayscale` is False. A 16-bit PNG raises
    `DataError`: its values would be cut to 8 bits without warning.
    """
    hdr = png_header(path) if Path(path).is_file() else None
    if hdr is not None and hdr[0] == 16:
        raise _bad(path, "16-bit PNG", "Convert it to 8-bit RGB first.")
    im = _open_loaded(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise _bad(path, f"{im.mode} (16/32-bit) image", "Convert it to 8-bit RGB first.")
    orientation = exif_orientation(im) if exif else 1
    if im.mode in GRAYSCALE_MODES and note_grayscale:
        _note(f"{path} is a grayscale image; it is used as RGB (the grey value in all three channels).")
    return upright_rgb(im, orientation)


#: pixels per strip when a decoded image is copied into numpy (`upright_rgb`)
STRIP_PIXELS = 1 << 22
#: transposes that swap height and width, and which stored columns / rows give the upright
#: image's rows y0..y1 (stored size w x h)
_BY_COLUMNS = {Image.Transpose.TRANSPOSE: False, Image.Transpose.ROTATE_270: False,
               Image.Transpose.TRANSVERSE: True, Image.Transpose.ROTATE_90: True}
_BY_ROWS_REVERSED = (Image.Transpose.ROTATE_180, Image.Transpose.FLIP_TOP_BOTTOM)


def _stored_box(t, y0: int, y1: int, w: int, h: int) -> tuple[int, int, int, int]:
    """The box of the stored image that transpose `t` turns into the upright rows y0..y1."""
    if t in _BY_COLUMNS:
        return (w - y1, 0, w - y0, h) if _BY_COLUMNS[t] else (y0, 0, y1, h)
    if t in _BY_ROWS_REVERSED:
        return (0, h - y1, w, h - y0)
    return (0, y0, w, y1)


def upright_rgb(im: Image.Image, orientation: int = 1, strip_pixels: int | None = None) -> np.ndarray:
    """A decoded image as HxWx3 uint8 RGB, turned upright for its EXIF `orientation`:
    ``np.asarray(upright(im.convert("RGB"), orientation))`` (palette and grey+alpha images
    through RGBA), made a strip at a time: the colour conversion is per pixel and a strip
    of the upright image is a transposed strip of rows or columns of the stored one, so
    beyond the decoded image only the result and one strip are in memory (a 108 MP JPEG:
    432 MB decoded by PIL + 324 MB result, instead of three more full copies)."""
    t = _PIL_UPRIGHT.get(int(orientation))
    w, h = im.size
    uw, uh = (h, w) if t in _BY_COLUMNS else (w, h)
    out = np.empty((uh, uw, 3), np.uint8)
    rows = max(1, int(strip_pixels or STRIP_PIXELS) // max(1, uw))
    for y0 in range(0, uh, rows):
        y1 = min(uh, y0 + rows)
        piece = im.crop(_stored_box(t, y0, y1, w, h))
        if piece.mode != "RGB":
            piece = piece.convert("RGBA").convert("RGB") if piece.mode in ("P", "PA", "LA") else piece.convert("RGB")
        if t is not None:
            piece = piece.transpose(t)
        out[y0:y1] = np.asarray(piece, dtype=np.uint8)
    return out


def read_alpha(path: str | os.PathLike, exif: bool = False) -> np.ndarray:
    """Read a matte as HxW float32 in [0, 1], as stored (`exif=True` turns it upright by its
    own EXIF orientation: for the alpha channel of an RGBA photo, read with `read_image`).

    Accepted: an 8-bit grey matte (value/255); a binary mask stored as 0/1 or 0/255
    (a matte whose maximum is 1 is taken as a 0/1 mask); a 1-bit PNG; a palette mask
    (its indices, when they are 0/1, else its grey values); a 16-bit grey matte
    (value/65535); an RGBA or grey+alpha PNG (its alpha channel, AISegment style); an RGB
    matte (its first channel).
    """
    im = _open_loaded(path)
    mode = im.mode
    if mode in ("RGBA", "LA", "PA"):
        a = _div255(np.asarray(im.getchannel("A"), dtype=np.float32))
    elif mode == "P" and "transparency" in im.info:
        a = np.asarray(im.convert("RGBA").getchannel("A"), dtype=np.float32) / 255.0
    elif mode in ("I;16", "I;16B", "I;16L", "I"):
        raw = np.asarray(im).astype(np.float32)
        a = raw if raw.max(initial=0) <= 1 else raw / (65535.0 if raw.max() > 255 else 255.0)
    elif mode == "F":
        a = np.asarray(im, dtype=np.float32)
        a = a if a.max(initial=0) <= 1 else a / 255.0
    elif mode == "1":
        a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    else:
        if mode == "P":
            idx = np.asarray(im)
            if idx.max(initial=0) <= 1:
                return idx.astype(np.float32)
            im = im.convert("L")
        elif mode != "L":
            im = im.convert("RGB").getchannel("R")
        raw = np.asarray(im, dtype=np.uint8)
        a = raw.astype(np.float32)
        a = a if raw.max(initial=0) <= 1 else _div255(a)
        del raw
    # in place where `a` is ours: no second full-size copy (a 108 MP matte is 432 MB)
    a = a.astype(np.float32, copy=False)
    a = np.clip(a, 0.0, 1.0, out=a) if a.flags.writeable and a.flags.owndata else np.clip(a, 0.0, 1.0)
    if exif:
        from ..imageops import apply_exif_orientation

        a = apply_exif_orientation(a, exif_orientation(im))
    return a


def _div255(a: np.ndarray) -> np.ndarray:
    """``a / 255.0`` of a float32 array made here, in place (the same float32 division)."""
    return np.divide(a, np.float32(255.0), out=a)


def has_alpha_channel(path: str | os.PathLike) -> bool:
    """True when the image file carries an alpha channel (RGBA, LA, or palette transparency)."""
    with Image.open(path) as im:
        return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def check_image(path: str | os.PathLike) -> str | None:
    """Why `path` cannot be read as a photo, or None: a cheap but complete check (a JPEG is
    decoded at 1/8 scale, which still reads every byte; a PNG's chunks and CRCs are read to
    the end), so a truncated file is caught before a long run writes anything."""
    if is_broken_link(path):
        return broken_link_why(path)
    try:
        hdr = png_header(path)
        if hdr is not None and hdr[0] == 16:
            return "16-bit PNG; convert it to 8-bit RGB"
        with Image.open(path) as im:
            if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
                return f"{im.mode} (16/32-bit) image; convert it to 8-bit RGB"
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
                im.load()
            elif im.format == "PNG":
                im.verify()
            else:
                im.load()
    except PIL_ERRORS as e:
        return why_unreadable(e)
    return None


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 HxW, HxWx3 or HxWx4 array as a PNG, atomically."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {a.dtype}; scale and round first")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"write_png expects HxW, HxWx3 or HxWx4, got shape {a.shape}")
    write_pil_png(path, Image.fromarray(np.ascontiguousarray(a)))


def write_pil_png(path: str | os.PathLike, im: Image.Image) -> None:
    """Write a PIL image as a PNG, atomically (the fast photo pipeline keeps its outputs
    as PIL images: no copy back to numpy). The encoder writes straight into the temporary
    file (the same bytes as through memory, without holding the compressed file twice)."""
    atomic.write_with(path, lambda tmp: im.save(tmp, format="PNG", compress_level=1))


def list_images(dir: str | os.PathLike) -> list[Path]:
    """Image files (IMAGE_EXTS, any case) directly in `dir`, sorted by name; hidden files skipped.

    A broken symbolic link is no file, so it is not listed: callers that must not drop one
    without a word also ask `broken_links`."""
    d = Path(dir)
    if not d.is_dir():
        return []
    return sorted(
        p for p in d.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
    )


def is_broken_link(path: str | os.PathLike) -> bool:
    """True for a symbolic link whose target is missing (or a loop of links)."""
    return os.path.islink(path) and not os.path.exists(path)


def broken_link_why(path: str | os.PathLike) -> str:
    """One line saying why a broken link (`is_broken_link`) cannot be read."""
    try:
        target = os.readlink(path)
    except OSError:
        target = "?"
    return f"broken link: its target {target} does not exist"


def broken_links(dir: str | os.PathLike) -> list[Path]:
    """The broken symbolic links (`is_broken_link`) named like images directly in `dir`,
    sorted by name, hidden ones skipped: the entries `list_images` leaves out, for the
    caller to report (a photo or matte that silently vanished would change a run)."""
    d = Path(dir)
    if not d.is_dir():
        return []
    return sorted(
        p for p in d.iterdir()
        if p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".") and is_broken_link(p)
    )
