"""Synthetic video clips with an exact alpha matte for every frame (tests, temporal metrics).

One procedural portrait (`SyntheticPortraits`: its foreground colours, matte and background;
drawn `MARGIN` taller than the frame, so its torso continues below the bottom edge) is animated: the figure is moved by an affine transform per frame and composited over a
window of a wider background, so the matte of every frame is known exactly:

    motion "still"  the figure stays put (every frame the same when the background is static)
           "move"   the figure sways sideways and bobs down a little (sub-pixel translation)
           "turn"   the figure rotates about a pivot below the frame (a lean of the body)
    background "static"  one background
               "moving"  a window panning across a wider background (a camera pan)

Each frame is composited as `SyntheticPortraits.sample` does, ``round(fg * a + bg * (1 -
a))`` with ``a`` the 8-bit matte (PIL's integer composite), so ``frame`` and ``alpha`` agree
to the uint8 level. Everything is a function of ``(n_frames, size, seed, motion,
background)``. `write_clip` writes a clip as an H.264 video (`data.videoio.write_video`),
optionally with an audio tone.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .synthetic import SyntheticPortraits

MOTIONS = ("still", "move", "turn")
BACKGROUNDS = ("static", "moving")
#: sideways sway amplitude and downward bob, as fractions of the frame width / height
SWAY, BOB = 0.12, 0.04
#: the turn's largest angle (degrees)
TURN_DEG = 10.0
#: the figure is drawn this much (a fraction of the height) taller than the frame, so a
#: move or turn never lifts its torso off the bottom edge
MARGIN = 0.3
#: the pan: how far the background window moves over the clip, as a fraction of the width
PAN = 0.5


def _affine(motion: str, t: float, h: int, w: int) -> tuple | None:
    """PIL's inverse affine coefficients (output -> input) for the figure at phase t in [0, 1]."""
    if motion == "still":
        return None
    if motion == "move":
        dx = SWAY * w * math.sin(2 * math.pi * t)
        dy = BOB * h * 0.5 * (1 - math.cos(2 * math.pi * t))  # >= 0: the torso keeps the bottom edge covered
        return (1.0, 0.0, -dx, 0.0, 1.0, -dy)
    ang = math.radians(TURN_DEG * math.sin(2 * math.pi * t))
    px, py = w / 2.0, h * 1.3  # pivot below the frame
    c, s = math.cos(ang), math.sin(ang)
    # input = R(-ang) (output - pivot) + pivot
    return (c, s, px - c * px - s * py, -s, c, py + s * px - c * py)


def synthetic_clip(n_frames: int, size=(96, 128), seed: int = 0, motion: str = "move",
                   background: str = "moving") -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames, alphas): `n_frames` RGB frames (HxWx3 uint8) and their exact mattes (HxW
    float32 in [0, 1], multiples of 1/255). size: (height, width). See the module docstring."""
    if motion not in MOTIONS:
        raise ValueError(f"motion must be one of {MOTIONS}, got {motion!r}")
    if background not in BACKGROUNDS:
        raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    h, w = int(size[0]), int(size[1])
    hh = h + int(math.ceil(MARGIN * h))  # the figure is drawn taller and cropped: its torso runs below the frame
    sample = SyntheticPortraits(size=(hh, w), seed=seed).sample(0)
    pan = int(round(PAN * w)) if background == "moving" else 0
    if pan:
        wide = SyntheticPortraits(size=(h, w + pan), seed=seed).background(1)
    else:
        wide = sample["bg"][:h]
    fg = Image.fromarray(sample["fg"])
    a8 = Image.fromarray((np.asarray(sample["alpha"]) * 255.0 + 0.5).astype(np.uint8))
    frames, alphas = [], []
    for i in range(n_frames):
        t = i / max(n_frames - 1, 1)
        coeffs = _affine(motion, t, h, w)
        if coeffs is None:
            fg_t, a_t = fg, a8
        else:
            fg_t = fg.transform((w, hh), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=(0, 0, 0))
            a_t = a8.transform((w, hh), Image.AFFINE, coeffs, resample=Image.BILINEAR, fillcolor=0)
        fg_t, a_t = fg_t.crop((0, 0, w, h)), a_t.crop((0, 0, w, h))
        x0 = int(round(t * pan))
        bg_t = Image.fromarray(np.ascontiguousarray(wide[:, x0:x0 + w]))
        frames.append(np.asarray(Image.composite(fg_t, bg_t, a_t)))
        alphas.append(np.asarray(a_t, np.float32) * np.float32(1.0 / 255.0))
    return frames, alphas


def write_clip(path: str | os.PathLike, frames, fps: float = 25, audio: bool = False, rotation: int = 0,
               **kw) -> Path:
    """Write frames (from `synthetic_clip`) as an H.264 video; `audio`: with a 440 Hz AAC
    tone; `rotation`: stored sideways with that display rotation (reads back upright). Other
    keywords go to `data.videoio.write_video`."""
    from .videoio import write_video

    return write_video(path, frames, fps=fps, rotation=rotation, audio=audio, **kw)
