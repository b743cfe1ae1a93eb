"""Reading and writing the images and mattes of a dataset.

Every reader raises `DataError` (with the file in `bad_files`) for a file that cannot be
used, so the caller can list all bad files at once; nothing here needs TensorFlow.
"""
from __future__ import annotations

import io
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


def _open_loaded(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image; DataError if it is missing, unreadable or truncated."""
    path = Path(path)
    if not path.is_file():
        raise _bad(path, "file not found", "Check the path.")
    try:
        im = Image.open(path)
        im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        why = "truncated file" if "truncat" in str(e).lower() else f"unreadable image ({e})"
        raise _bad(path, why, "Re-export or remove the file.") from e
    return im


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image as HxWx3 uint8 RGB.

    Palette, CMYK, grey and RGBA images are converted to RGB (an alpha channel is dropped;
    use `read_alpha` for it). A 16-bit PNG raises `DataError`: its values would be cut to
    8 bits without warning. EXIF orientation is *not* applied, so an image stays aligned
    with its matte file.
    """
    hdr = png_header(path) if Path(path).is_file() else None
    if hdr is not None and hdr[0] == 16:
        raise _bad(path, "16-bit PNG", "Convert it to 8-bit RGB first.")
    im = _open_loaded(path)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        raise _bad(path, f"{im.mode} (16/32-bit) image", "Convert it to 8-bit RGB first.")
    if im.mode != "RGB":
        im = im.convert("RGBA").convert("RGB") if im.mode in ("P", "PA", "LA") else im.convert("RGB")
    return np.asarray(im, dtype=np.uint8).copy()


def read_alpha(path: str | os.PathLike) -> np.ndarray:
    """Read a matte as HxW float32 in [0, 1].

    Accepted: an 8-bit grey matte (value/255); a binary mask stored as 0/1 or 0/255
    (a matte whose maximum is 1 is taken as a 0/1 mask); a 1-bit PNG; a palette mask
    (its indices, when they are 0/1, else its grey values); a 16-bit grey matte
    (value/65535); an RGBA or grey+alpha PNG (its alpha channel, AISegment style); an RGB
    matte (its first channel).
    """
    im = _open_loaded(path)
    mode = im.mode
    if mode in ("RGBA", "LA", "PA"):
        a = np.asarray(im.getchannel("A"), dtype=np.float32) / 255.0
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
        a = a if raw.max(initial=0) <= 1 else a / 255.0
    return np.clip(a, 0.0, 1.0).astype(np.float32)


def has_alpha_channel(path: str | os.PathLike) -> bool:
    """True when the image file carries an alpha channel (RGBA, LA, or palette transparency)."""
    with Image.open(path) as im:
        return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def write_png(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 HxW, HxWx3 or HxWx4 array as a PNG, atomically."""
    a = np.asarray(array)
    if a.dtype != np.uint8:
        raise ValueError(f"write_png expects uint8, got {a.dtype}; scale and round first")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise ValueError(f"write_png expects HxW, HxWx3 or HxWx4, got shape {a.shape}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="PNG", compress_level=1)
    atomic.write_bytes(path, buf.getvalue())


def list_images(dir: str | os.PathLike) -> list[Path]:
    """Image files (IMAGE_EXTS, any case) directly in `dir`, sorted by name; hidden files skipped."""
    d = Path(dir)
    if not d.is_dir():
        return []
    return sorted(
        p for p in d.iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")
    )
