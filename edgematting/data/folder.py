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

from ..errors import DataError, EdgemattingWarning
from .io import (GRAYSCALE_MODES, IMAGE_EXTS, PIL_ERRORS, broken_link_why, broken_links, list_images, png_header,
                 read_alpha, read_image, stored_and_upright_size, why_unreadable)

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


def _image_problem(path: Path, notes: list | None = None) -> str | None:
    """Why `path` cannot be a training image, or None. Decodes it fully (JPEGs at 1/8 scale).

    A grayscale photo is usable (read as RGB, as `read_image` does): it only adds a note.
    An RGBA photo whose own alpha is not opaque adds a note when a matte folder is used
    (its own alpha is then ignored)."""
    try:
        hdr = png_header(path)
        if hdr is not None and hdr[0] == 16:
            return "16-bit PNG; convert it to 8-bit RGB"
        with Image.open(path) as im:
            if im.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                return f"{im.mode} (16/32-bit) image; convert it to 8-bit RGB"
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
            if notes is not None:
                if im.mode in GRAYSCALE_MODES:
                    notes.append((str(path), "grayscale photo, used as RGB"))
                if im.mode in ("RGBA", "LA", "PA") and im.getchannel("A").getextrema()[0] < 255:
                    notes.append((str(path), "has its own alpha channel"))
    except PIL_ERRORS as e:
        return why_unreadable(e)
    return None


def _sizes(path: Path):
    try:
        return stored_and_upright_size(path)
    except PIL_ERRORS:
        return None


def _size(path: Path) -> tuple[int, int] | None:
    s = _sizes(path)
    return None if s is None else s[0]


def _alpha_problem(path: Path) -> str | None:
    try:
        with Image.open(path) as im:
            im.load()
    except PIL_ERRORS as e:
        w = why_unreadable(e)
        return w.replace("truncated file", "truncated matte").replace("unreadable image", "unreadable matte")
    return None


def size_mismatch(image: Path, matte: Path, upright_wh, stored_wh, orientation: int, matte_wh) -> str:
    """Why an image and its matte do not pair up; names EXIF when the matte matches the
    photo as stored but not as it is shown (mattes are taken as stored)."""
    if orientation != 1 and tuple(stored_wh) == tuple(matte_wh):
        from ..imageops import exif_transform

        deg, mirror = exif_transform(orientation)
        turn = " and ".join(x for x in ("mirrored" if mirror else "", f"rotated {deg} degrees clockwise" if deg else "")
                            if x)
        return (f"EXIF Orientation={orientation}: the photo is shown (and read) {turn}, "
                f"{upright_wh[0]}x{upright_wh[1]}, but its matte {matte.name} ({matte_wh[0]}x{matte_wh[1]}) "
                "matches the pixels as stored; mattes are taken as stored: turn the matte the same way, "
                "or save the photo upright without the Orientation tag")
    return (f"size {upright_wh[0]}x{upright_wh[1]} differs from its matte {matte.name} "
            f"({matte_wh[0]}x{matte_wh[1]})")


def _check_pair(s: Sample, notes: list | None = None) -> list[tuple[str, str]]:
    bad = []
    why = _image_problem(s.image, notes if not s.alpha_from_rgba else None)
    if why:
        bad.append((str(s.image), why))
    if s.alpha_from_rgba:
        return bad
    why_a = _alpha_problem(s.alpha)
    if why_a:
        bad.append((str(s.alpha), why_a))
    if not why and not why_a:
        si, sa = _sizes(s.image), _size(s.alpha)
        if si is None or sa is None or si[1] != sa:
            stored, up, o = si if si is not None else ((0, 0), (0, 0), 1)
            bad.append((str(s.image), size_mismatch(s.image, s.alpha, up, stored, o, sa or (0, 0))))
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


def scan_folder(dir, skip_bad: bool = False, check_contents: bool = True, purpose: str = "train",
                can_skip: bool = True) -> list[Sample]:
    """Pair images with mattes, check every pair, return the usable samples (sorted by name).

    Problems found (all reported together): no `image/` folder or no images; an image with
    no matte or a matte with no image; two files with one stem; an unreadable or truncated
    file; a broken symbolic link among the images or mattes; a grayscale or 16-bit image; an image and matte of different sizes; an image with
    no alpha channel when the folder has no `alpha/` or `mask/`. `check_contents=False`
    only pairs names (fast; content problems then surface when a sample is loaded).
    With `skip_bad=True` bad samples are skipped with a warning instead of raising;
    DataError is raised only if nothing usable is left. `purpose` ("train", "evaluate",
    ...) is the verb of the hint in the error.

    Grayscale photos are used as RGB, with one note listing them; so is an RGBA photo whose
    own alpha loses to its matte in alpha/.
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
    broken_images = broken_links(img_dir)  # reported below, never dropped without a word
    if not images and not broken_images:
        raise DataError(
            f"No .jpg/.png images in {img_dir}. {LAYOUT_HELP}", bad_files=[(str(img_dir), "empty")]
        )
    alpha_dir = next((root / n for n in ("alpha", "mask", "masks", "alphas") if (root / n).is_dir()), None)

    bad: list[tuple[str, str]] = [(str(p), broken_link_why(p)) for p in broken_images]
    img_by_stem = _by_stem(images, bad)
    dup_images = {Path(p) for p, _ in bad}
    samples: list[Sample] = []
    if alpha_dir is not None:
        broken_mattes = broken_links(alpha_dir)
        bad.extend((str(p), broken_link_why(p)) for p in broken_mattes)
        # the broken link is the problem: no second line ("no matte", "matte without an image") for its pair
        broken_stems = {p.stem for p in broken_images + broken_mattes}
        mattes = _by_stem(list_images(alpha_dir), bad)
        for stem, ip in img_by_stem.items():
            ap = mattes.get(stem)
            if ap is None:
                if stem not in broken_stems:
                    bad.append((str(ip), f"no matte {alpha_dir.name}/{stem}.png"))
            else:
                samples.append(Sample(ip, ap, False))
        for stem, ap in mattes.items():
            if stem not in img_by_stem and stem not in broken_stems:
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
        notes: list[tuple[str, str]] = []

        def check(s: Sample):
            problems = _check_pair(s, notes)
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
        _warn_notes(sorted(notes), alpha_dir)

    bad.sort()
    if bad and not skip_bad:
        hint = (f", or pass --skip-bad to {purpose} on the {len(samples)} good pair(s)" if can_skip else "")
        raise DataError(f"{len(bad)} problem(s) in dataset {root}. Fix or remove these files{hint}:", bad_files=bad)
    if bad:
        listing = "\n".join(f"  {p}: {w}" for p, w in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        warnings.warn(f"Skipping {len(bad)} bad file(s) in {root}:\n{listing}{more}", EdgemattingWarning,
                      stacklevel=2)
    if not samples:
        raise DataError(f"No usable image/matte pairs left in {root}. {LAYOUT_HELP}", bad_files=bad)
    return samples


def _warn_notes(notes: list[tuple[str, str]], alpha_dir: Path | None) -> None:
    grey = [p for p, w in notes if w.startswith("grayscale")]
    own = [p for p, w in notes if w.startswith("has its own alpha")]
    for paths, what in ((grey, "grayscale photo(s), used as RGB (the grey value in all three channels)"),
                        (own, f"RGBA photo(s) with their own alpha channel: the mattes in "
                              f"{alpha_dir.name if alpha_dir else 'alpha'}/ are used, their own alpha is ignored")):
        if paths:
            more = f" and {len(paths) - 3} more" if len(paths) > 3 else ""
            warnings.warn(f"{len(paths)} {what}: {', '.join(paths[:3])}{more}", EdgemattingWarning, stacklevel=3)


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
    image = read_image(sample.image, note_grayscale=False)  # scan_folder noted them once
    # an RGBA photo's own alpha turns upright with it; a matte file is taken as stored
    alpha = read_alpha(sample.image, exif=True) if sample.alpha_from_rgba else read_alpha(sample.alpha)
    if alpha.shape != image.shape[:2]:
        sizes = _sizes(sample.image)
        stored, o = (sizes[0], sizes[2]) if sizes else ((image.shape[1], image.shape[0]), 1)
        why = size_mismatch(sample.image, Path(sample.alpha), (image.shape[1], image.shape[0]), stored, o,
                            (alpha.shape[1], alpha.shape[0]))
        raise DataError(f"Cannot use {sample.image}: {why}.", bad_files=[(str(sample.image), why)])
    if sample.soft_edges is not None:
        alpha = soft_edge_target(alpha, read_alpha(sample.soft_edges))
    return {"image": image, "alpha": alpha, "fg": image, "bg": image}


def soft_edge_target(label: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """A binary label with the teacher's soft matte inside its unknown band (the same band
    as `bands.unknown_band`, which the metrics use: 1% of the diagonal, >= 3 px, around the contour):
    hair and edges get soft targets, the label still decides everything else. A label that
    is already soft (any value strictly between 0 and 1) is kept as it is."""
    from ..bands import unknown_band

    if teacher.shape != label.shape or np.any((label > 0) & (label < 1)):
        return label
    band = unknown_band(label)
    return np.where(band, teacher, label).astype(np.float32)


__all__ = ["Sample", "scan_folder", "load_sample", "IMAGE_EXTS"]
