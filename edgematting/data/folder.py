"""Folder datasets: ``DIR/image/*`` with ``DIR/alpha/*.png`` (or ``DIR/mask/``) of the same stem.

When neither ``alpha/`` nor ``mask/`` exists, the images themselves must be RGBA PNGs whose
alpha channel is the matte (AISegment style). `scan_folder` checks every pair up front and
reports *all* problems in one `DataError`, so a user fixes a dataset in one pass.
"""
from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataError
from .io import IMAGE_EXTS, list_images, png_header, read_alpha, read_image

LAYOUT_HELP = (
    "Expected layout: DIR/image/NAME.jpg|png with DIR/alpha/NAME.png (8-bit matte or 0/1, "
    "0/255 mask; DIR/mask/ also works), or RGBA PNGs in DIR/image/ whose alpha channel is "
    "the matte. `edgematting quickstart` writes an example folder."
)


@dataclass
class Sample:
    image: Path
    alpha: Path | None
    alpha_from_rgba: bool = False
    weight: float = 1.0  # loss weight (distillation: teacher-labelled samples get --distill-weight)
    soft_edges: Path | None = None  # a teacher's soft matte of this photo (`train --teacher-edges`)


def _image_problem(path: Path) -> str | None:
    """Why `path` cannot be a training image, or None. Decodes it fully (JPEGs at 1/8 scale)."""
    try:
        hdr = png_header(path)
        if hdr is not None:
            depth, ctype = hdr
            if depth == 16:
                return "16-bit PNG; convert it to 8-bit RGB"
            if ctype in (0, 4):
                return "grayscale image; training needs 8-bit RGB"
        with Image.open(path) as im:
            if im.mode in ("L", "LA", "1", "I", "I;16", "I;16B", "I;16L", "F"):
                return f"grayscale image (mode {im.mode}); training needs 8-bit RGB"
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return "truncated file" if "truncat" in str(e).lower() else f"unreadable image ({e})"
    return None


def _size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return None


def _alpha_problem(path: Path) -> str | None:
    try:
        with Image.open(path) as im:
            im.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        return "truncated matte" if "truncat" in str(e).lower() else f"unreadable matte ({e})"
    return None


def _check_pair(s: Sample) -> list[tuple[str, str]]:
    bad = []
    why = _image_problem(s.image)
    if why:
        bad.append((str(s.image), why))
    if s.alpha_from_rgba:
        return bad
    why_a = _alpha_problem(s.alpha)
    if why_a:
        bad.append((str(s.alpha), why_a))
    if not why and not why_a:
        si, sa = _size(s.image), _size(s.alpha)
        if si != sa:
            bad.append((str(s.image), f"size {si[0]}x{si[1]} differs from its matte "
                                      f"{s.alpha.name} ({sa[0]}x{sa[1]})"))
    return bad


def _by_stem(files: list[Path], bad: list) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in files:
        if p.stem in out:
            bad.append((str(p), f"two files named {p.stem}.* ({out[p.stem].name} and {p.name}); "
                                "keep one"))
        else:
            out[p.stem] = p
    return out


def scan_folder(dir, skip_bad: bool = False, check_contents: bool = True) -> list[Sample]:
    """Pair images with mattes, check every pair, return the usable samples (sorted by name).

    Problems found (all reported together): no `image/` folder or no images; an image with
    no matte or a matte with no image; two files with one stem; an unreadable or truncated
    file; a grayscale or 16-bit image; an image and matte of different sizes; an image with
    no alpha channel when the folder has no `alpha/` or `mask/`. `check_contents=False`
    only pairs names (fast; content problems then surface when a sample is loaded).
    With `skip_bad=True` bad samples are skipped with a warning instead of raising;
    DataError is raised only if nothing usable is left.
    """
    root = Path(dir)
    if not root.is_dir():
        raise DataError(f"Dataset folder not found: {root}. {LAYOUT_HELP}")
    img_dir = root / "image"
    if not img_dir.is_dir():
        alt = root / "images"
        img_dir = alt if alt.is_dir() else img_dir
    if not img_dir.is_dir():
        raise DataError(f"No image/ folder in {root}. {LAYOUT_HELP}", bad_files=[(str(root), "no image/ folder")])
    images = list_images(img_dir)
    if not images:
        raise DataError(
            f"No .jpg/.png images in {img_dir}. {LAYOUT_HELP}", bad_files=[(str(img_dir), "empty")]
        )
    alpha_dir = next((root / n for n in ("alpha", "mask", "masks", "alphas") if (root / n).is_dir()), None)

    bad: list[tuple[str, str]] = []
    img_by_stem = _by_stem(images, bad)
    dup_images = {Path(p) for p, _ in bad}
    samples: list[Sample] = []
    if alpha_dir is not None:
        mattes = _by_stem(list_images(alpha_dir), bad)
        for stem, ip in img_by_stem.items():
            ap = mattes.get(stem)
            if ap is None:
                bad.append((str(ip), f"no matte {alpha_dir.name}/{stem}.png"))
            else:
                samples.append(Sample(ip, ap, False))
        for stem, ap in mattes.items():
            if stem not in img_by_stem:
                bad.append((str(ap), f"matte without an image {img_dir.name}/{stem}.*"))
    else:
        for ip in img_by_stem.values():
            if ip.suffix.lower() != ".png":
                bad.append((str(ip), f"no {root.name}/alpha/ folder and a {ip.suffix} has no "
                                     "alpha channel; add alpha/ mattes or use RGBA PNGs"))
                continue
            samples.append(Sample(ip, None, True))
    samples = [s for s in samples if s.image not in dup_images]

    if check_contents and samples:
        def check(s: Sample):
            problems = _check_pair(s)
            if not problems and s.alpha_from_rgba and not _has_alpha(s.image):
                problems = [(str(s.image), "no alpha channel and no alpha/ folder; add alpha/ "
                                           "mattes or save RGBA PNGs")]
            return problems

        workers = min(8, (os.cpu_count() or 1) * 2) if len(samples) > 16 else 1
        if workers > 1:
            with ThreadPoolExecutor(workers) as ex:
                results = list(ex.map(check, samples))
        else:
            results = [check(s) for s in samples]
        bad_samples = set()
        for s, problems in zip(samples, results):
            if problems:
                bad.extend(problems)
                bad_samples.add(s.image)
        samples = [s for s in samples if s.image not in bad_samples]

    bad.sort()
    if bad and not skip_bad:
        raise DataError(
            f"{len(bad)} problem(s) in dataset {root}. Fix or remove these files, or pass "
            f"--skip-bad (skip_bad=True) to train on the {len(samples)} good pair(s):",
            bad_files=bad,
        )
    if bad:
        listing = "\n".join(f"  {p}: {w}" for p, w in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        warnings.warn(f"Skipping {len(bad)} bad file(s) in {root}:\n{listing}{more}", stacklevel=2)
    if not samples:
        raise DataError(f"No usable image/matte pairs left in {root}. {LAYOUT_HELP}", bad_files=bad)
    return samples


def _has_alpha(path: Path) -> bool:
    try:
        with Image.open(path) as im:
            return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    except (UnidentifiedImageError, OSError):
        return False


def load_sample(sample: Sample) -> dict:
    """Decode one sample: ``{"image", "alpha", "fg", "bg"}`` as SyntheticPortraits.sample.

    A real photo's true foreground and background colours are unknown, so fg and bg are
    the image itself (the same array). Raises DataError for an unreadable file or a size
    mismatch.
    """
    image = read_image(sample.image)
    alpha = read_alpha(sample.image if sample.alpha_from_rgba else sample.alpha)
    if alpha.shape != image.shape[:2]:
        raise DataError(
            f"{sample.image} is {image.shape[1]}x{image.shape[0]} but its matte {sample.alpha} is "
            f"{alpha.shape[1]}x{alpha.shape[0]}; resize the matte to match.",
            bad_files=[(str(sample.image), "size mismatch with its matte")],
        )
    if sample.soft_edges is not None:
        alpha = soft_edge_target(alpha, read_alpha(sample.soft_edges))
    return {"image": image, "alpha": alpha, "fg": image, "bg": image}


def soft_edge_target(label: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """A binary label with the teacher's soft matte inside its unknown band (the same band
    as `evaluation.metrics.unknown_band`: 1% of the diagonal, >= 3 px, around the contour):
    hair and edges get soft targets, the label still decides everything else. A label that
    is already soft (any value strictly between 0 and 1) is kept as it is."""
    from ..evaluation.metrics import unknown_band

    if teacher.shape != label.shape or np.any((label > 0) & (label < 1)):
        return label
    band = unknown_band(label)
    return np.where(band, teacher, label).astype(np.float32)


__all__ = ["Sample", "scan_folder", "load_sample", "IMAGE_EXTS"]
