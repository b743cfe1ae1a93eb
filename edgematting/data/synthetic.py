"""Procedural portraits with exact alpha: the dataset behind quickstart, tests and calibration.

A figure (head, neck, shoulders and torso, optional arms and hands, hair with fine strands
and a semi-transparent fringe) is built from anti-aliased signed-distance fields in numpy
and composited with the "over" operator, so the matte is exact, fractional at every edge,
and ``image == round(fg * alpha + bg * (1 - alpha))`` holds to the uint8 level. Backgrounds
are gradients, colour blobs, room-like scenes, stripes/checks or noise textures (or crops
from a folder of the user's photos), with distractor shapes in skin, hair and clothing
colours so the task is not colour thresholding.

Speed: every primitive is evaluated only inside its bounding box; above 192 px bodies and
procedural backgrounds are rendered at half resolution and upsampled (edges stay
anti-aliased, about two pixels wide) while hair strands are splatted at full resolution
with `np.bincount`; colour arrays are planar (numpy broadcasting over a trailing axis of 3
is several times slower) and the full-size steps (grain, colour cast, composite) are PIL
C loops.
Everything is a function of ``(seed, index)`` only.

Length: one generator (figure, hair, backgrounds, distractors) whose parts share one random
stream and one set of size constants; split into modules it would only trade a long file
for private names passed between them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from ..errors import DataError
from ..imageops import round_to_uint8
from .io import list_images, read_image, write_png

F32 = np.float32

# Skin tones from very light to very dark (RGB), jittered per figure.
_SKIN = np.array(
    [[255, 224, 196], [241, 194, 167], [224, 172, 138], [198, 134, 98], [170, 116, 80],
     [141, 85, 54], [110, 66, 40], [80, 50, 32], [60, 40, 28], [232, 190, 150]], F32)
_HAIR = np.array(
    [[20, 16, 14], [45, 32, 25], [80, 55, 35], [120, 85, 50], [165, 120, 70], [210, 175, 115],
     [235, 215, 160], [150, 60, 30], [190, 190, 185], [110, 110, 115]], F32)


def _rand_colour(rng, lo=0, hi=255):
    return rng.uniform(lo, hi, 3).astype(F32)


def _jitter(rng, c, amount=18.0):
    return np.clip(c + rng.normal(0, amount, 3), 0, 255).astype(F32)


def _smin(a, b, k):
    """Polynomial smooth minimum (union with a fillet of size k)."""
    if k <= 0:
        return np.minimum(a, b)
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.minimum(a, b) - h * h * (k * 0.25)


def _cov(d, soft=1.0):
    """Anti-aliased coverage of the region d < 0 (one pixel ramp, wider when soft > 1)."""
    return np.clip(0.5 - d / soft, 0.0, 1.0)


def _sd_ellipse(X, Y, cx, cy, rx, ry, ang=0.0):
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = X - cx, Y - cy
    u = dx * c + dy * s
    v = dy * c - dx * s
    k0 = np.sqrt((u / rx) ** 2 + (v / ry) ** 2)
    k1 = np.sqrt((u / (rx * rx)) ** 2 + (v / (ry * ry)) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _sd_capsule(X, Y, a, b, ra, rb=None):
    """Capsule from a to b, radius tapering from ra to rb."""
    rb = ra if rb is None else rb
    bax, bay = b[0] - a[0], b[1] - a[1]
    pax, pay = X - a[0], Y - a[1]
    L2 = max(bax * bax + bay * bay, 1e-6)
    h = np.clip((pax * bax + pay * bay) / L2, 0.0, 1.0)
    return np.sqrt((pax - bax * h) ** 2 + (pay - bay * h) ** 2) - (ra + (rb - ra) * h)


def _sd_box(X, Y, cx, cy, hw, hh, r, ang=0.0, taper=0.0):
    """Rounded box; half-width grows by `taper` per pixel going down its own axis."""
    c, s = math.cos(ang), math.sin(ang)
    dx, dy = X - cx, Y - cy
    u = dx * c + dy * s
    v = dy * c - dx * s
    hw_eff = hw + taper * (v + hh)
    qx = np.abs(u) - hw_eff + r
    qy = np.abs(v) - hh + r
    out = np.sqrt(np.maximum(qx, 0.0) ** 2 + np.maximum(qy, 0.0) ** 2)
    return out + np.minimum(np.maximum(qx, qy), 0.0) - r


def _planar(hwc: np.ndarray) -> np.ndarray:
    """HxWx3 -> 3xHxW float32."""
    return np.ascontiguousarray(np.asarray(hwc).transpose(2, 0, 1), dtype=F32)


def _u8(x) -> np.ndarray:
    """floor(x + 0.5) clipped to [0, 255] as uint8 (as imageops.round_to_uint8, fewer passes)."""
    x = np.clip(x, 0.0, 255.0)
    x += 0.5
    return x.astype(np.uint8)


class _Canvas:
    """Premultiplied colour P and coverage A, composited front-to-back with 'over'."""

    def __init__(self, h, w):
        self.h, self.w = h, w
        self.P = np.zeros((3, h, w), F32)  # planar: broadcasting over a last axis of 3 is slow
        self.A = np.zeros((h, w), F32)

    def box(self, x0, y0, x1, y1):
        """Integer bbox clipped to the frame + coordinate row/column, or None if empty."""
        ix0, iy0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        ix1, iy1 = min(int(math.ceil(x1)) + 1, self.w), min(int(math.ceil(y1)) + 1, self.h)
        if ix1 <= ix0 or iy1 <= iy0:
            return None
        X = np.arange(ix0, ix1, dtype=F32)[None, :]
        Y = np.arange(iy0, iy1, dtype=F32)[:, None]
        return iy0, ix0, X, Y

    def over(self, iy0, ix0, a, col, A=True):
        """Composite coverage `a` (h, w) of colour `col` ((3,) or (3, h, w)) at (iy0, ix0)."""
        nz = a > 0
        rows, cols = np.flatnonzero(nz.any(1)), np.flatnonzero(nz.any(0))
        if rows.size == 0:
            return
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        a = a[r0:r1, c0:c1].astype(F32, copy=False)
        col = np.asarray(col, F32)
        col = col.reshape(3, 1, 1) if col.ndim == 1 else col[:, r0:r1, c0:c1]
        y0, x0 = iy0 + r0, ix0 + c0
        sl = (slice(y0, y0 + a.shape[0]), slice(x0, x0 + a.shape[1]))
        inv = 1.0 - a
        P = self.P[:, sl[0], sl[1]]
        P *= inv[None]
        P += a[None] * col
        if A:
            self.A[sl] = a + self.A[sl] * inv


class SyntheticPortraits:
    """Deterministic procedural portraits: ``sample(index)`` depends only on (seed, index).

    Returns ``{"image", "alpha", "fg", "bg"}``: image/fg/bg HxWx3 uint8, alpha HxW float32
    in [0, 1] (quantized to multiples of 1/255, so it survives a PNG round trip exactly).
    `fg` is the figure colour (extended smoothly where alpha is 0) and `bg` the background;
    the image is their composite. `backgrounds_dir`: a folder of photos used (with random
    crops) for half of the backgrounds instead of procedural ones.
    """

    def __init__(self, size=(256, 256), seed: int = 0, backgrounds_dir=None):
        self.size = (int(size[0]), int(size[1]))
        if min(self.size) < 16:
            raise ValueError(f"size must be at least 16x16, got {self.size}")
        self.seed = int(seed)
        self.backgrounds: list[Path] = []
        if backgrounds_dir is not None:
            self.backgrounds = list_images(backgrounds_dir)
            if not self.backgrounds:
                raise DataError(
                    f"No .jpg/.png backgrounds found in {backgrounds_dir}. Point "
                    "backgrounds_dir at a folder of photos, or leave it unset for procedural ones."
                )
        self._bg_cache: dict[int, np.ndarray] = {}
        bank_rng = np.random.default_rng([self.seed, 0xB4A7])
        h, w = self.size
        bh, bw = h + 64, w + 64
        # Noise bank: white noise in [-1, 1] (grain) and vertical streaks (hair texture).
        self._white = (bank_rng.random((bh, bw), dtype=F32) * 2.0 - 1.0)
        # grain banks (uint8, 128 = no change) at a few strengths, added with ImageChops
        g = bank_rng.random((bh, bw, 3), dtype=F32) * 2.0 - 1.0
        self._grain = [_u8(128.0 + g * amp) for amp in (2.0, 4.0, 7.0, 10.0)]
        streak = bank_rng.random((bh // 8 + 2, bw), dtype=F32)
        self._streak = np.asarray(
            Image.fromarray(streak).resize((bw, bh), Image.BILINEAR), F32)

    # -- public ------------------------------------------------------------------
    def sample(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, int(index) & 0xFFFFFFFFFFFF, 0x5EED])
        h, w = self.size
        # Bodies (and procedural backgrounds) are rendered at half resolution above 192 px
        # and upsampled bilinearly: 4x less pixel work, edges stay anti-aliased (about two
        # pixels wide). Hair strands are drawn at full resolution afterwards.
        rs = 2 if min(h, w) >= 192 else 1
        rh, rw = -(-h // rs), -(-w // rs)
        bg_img = self._background(rng, rs)
        cv = _Canvas(rh, rw)
        strands: list = []
        if rng.random() < 0.12:  # a second, smaller person behind
            self._figure(rng, cv, strands, scale_mul=rng.uniform(0.5, 0.8), secondary=True)
        self._figure(rng, cv, strands)
        planes = [Image.fromarray(_u8(c)) for c in self._unpremultiply(cv.P, cv.A)]
        fga = Image.merge("RGBA", planes + [Image.fromarray(_u8(cv.A * F32(255.0)))])
        if rs > 1:  # one RGBA resize costs the same as an RGB one
            fga = fga.resize((rw * rs, rh * rs), Image.BILINEAR).crop((0, 0, w, h))
        fga = np.asarray(fga)
        fg8, a8 = np.array(fga[..., :3]), np.array(fga[..., 3])
        for hcx, hcy, hrx, hry, ang, hair, rx, long_hair, long_len in strands:
            c = 0.5 * (rs - 1)  # pixel-centre shift between the two grids
            self._strands(rng, fg8, a8, hcx * rs + c, hcy * rs + c, hrx * rs, hry * rs, ang,
                          hair, rx * rs, long_hair, long_len * rs)
        # Grain and a colour cast are applied to fg and bg alike, so the composite stays exact.
        fg_img = Image.fromarray(fg8)
        if rng.random() < 0.7:
            g = Image.fromarray(self._crop(self._grain[int(rng.integers(len(self._grain)))], rng))
            fg_img = ImageChops.add(fg_img, g, 1.0, -128)  # fg + (grain - 128), clipped
            bg_img = ImageChops.add(bg_img, g, 1.0, -128)
        if rng.random() < 0.5:
            cast = rng.uniform(0.88, 1.12, 3)
            lut = np.concatenate([np.clip(np.floor(np.arange(256) * c + 0.5), 0, 255) for c in cast])
            lut = lut.astype(np.uint8).tolist()
            fg_img = fg_img.point(lut)
            bg_img = bg_img.point(lut)
        a_img = Image.fromarray(a8)
        # PIL's composite is round(fg * a/255 + bg * (1 - a/255)) in integer arithmetic.
        image = np.asarray(Image.composite(fg_img, bg_img, a_img))
        alpha = a8.astype(F32) * F32(1.0 / 255.0)
        return {"image": image, "alpha": alpha, "fg": np.asarray(fg_img), "bg": np.asarray(bg_img)}

    def background(self, index: int) -> np.ndarray:
        """A background alone (HxWx3 uint8), for composition augmentation."""
        rng = np.random.default_rng([self.seed, int(index) & 0xFFFFFFFFFFFF, 0xB6])
        return np.asarray(self._background(rng, 2 if min(self.size) >= 192 else 1))

    # -- helpers -----------------------------------------------------------------
    def _crop(self, bank, rng):
        h, w = self.size
        oy = int(rng.integers(0, bank.shape[0] - h + 1))
        ox = int(rng.integers(0, bank.shape[1] - w + 1))
        return bank[oy:oy + h, ox:ox + w]

    def _unpremultiply(self, P, A):
        """fg = P / A (planar), extended into alpha == 0 by a blur of the premultiplied colour."""
        h, w = A.shape
        lh, lw = max(h // 16, 2), max(w // 16, 2)

        def down(x):
            return np.asarray(Image.fromarray(x).resize((lw, lh), Image.BOX), F32)

        Al = down(A)
        mean = P.reshape(3, -1).sum(1) / max(float(A.sum()), 1e-3)
        ok = Al > 0.02
        safe = A > 1e-3
        inv = 1.0 / np.maximum(A, 1e-3)
        fg = np.empty_like(P)
        for c in range(3):
            ext = np.where(ok, down(P[c]) / np.maximum(Al, 1e-3), mean[c]).astype(F32)
            ext = np.asarray(Image.fromarray(ext).resize((w, h), Image.BILINEAR), F32)
            fg[c] = np.where(safe, P[c] * inv, ext)
        return fg

    # -- backgrounds -------------------------------------------------------------
    def _background(self, rng, rs: int) -> Image.Image:
        """A full-size RGB background (procedural at 1/rs size, or a photo crop)."""
        h, w = self.size
        if self.backgrounds and rng.random() < 0.5:
            img = self.photo_background(rng)
        else:
            rh, rw = -(-h // rs), -(-w // rs)
            kind = rng.integers(0, 5)
            lh, lw = max(h // 4, 4), max(w // 4, 4)
            Y = np.linspace(0.0, 1.0, lh, dtype=F32)[:, None]
            X = np.linspace(0.0, 1.0, lw, dtype=F32)[None, :]
            c1, c2 = _rand_colour(rng), _rand_colour(rng)
            if kind == 0:  # linear gradient
                ang = rng.uniform(0, 2 * math.pi)
                t = (X * math.cos(ang) + Y * math.sin(ang))
                t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
                low = c1 * (1 - t[..., None]) + c2 * t[..., None]
            elif kind == 1:  # colour blobs (out-of-focus scene)
                g = int(rng.integers(2, 7))
                grid = rng.uniform(0, 255, (g, g, 3)).astype(np.uint8)
                low = np.asarray(Image.fromarray(grid).resize((lw, lh), Image.BICUBIC), F32)
            elif kind == 2:  # room: wall, floor, frames
                wall = np.broadcast_to(c1, (lh, lw, 3)).astype(F32).copy()
                wall *= (0.8 + 0.3 * (1 - Y))[..., None]
                fy = int(lh * rng.uniform(0.55, 0.95))
                wall[fy:] = c2 * (0.7 + 0.3 * Y[fy:, :, None] / max(Y.max(), 1e-6))
                for _ in range(int(rng.integers(1, 4))):
                    x0, y0 = int(rng.integers(0, lw)), int(rng.integers(0, lh))
                    wall[y0:y0 + int(rng.integers(lh // 8 + 1, lh // 2 + 2)),
                         x0:x0 + int(rng.integers(lw // 8 + 1, lw // 2 + 2))] = _rand_colour(rng)
                low = wall
            elif kind == 3:  # stripes / checks
                f = rng.uniform(3, 14)
                ang = rng.uniform(0, math.pi)
                s1 = np.sin((X * math.cos(ang) + Y * math.sin(ang)) * f * 2 * math.pi)
                if rng.random() < 0.5:
                    s1 = s1 * np.sin((Y * math.cos(ang) - X * math.sin(ang)) * f * 2 * math.pi)
                t = np.clip(s1 * 3.0, -1, 1)[..., None] * 0.5 + 0.5
                low = c1 * t + c2 * (1 - t)
            else:  # noise texture (foliage, stone)
                t = self._white[:lh, :lw][..., None] * 0.5 + 0.5
                low = c1 * t + c2 * (1 - t)
            if kind != 1:  # low-frequency shading
                g = rng.uniform(0.75, 1.15, (3, 3)).astype(F32)
                shade = np.asarray(Image.fromarray(g).resize((lw, lh), Image.BILINEAR), F32)
                low = low * shade[..., None]
            bg = _planar(np.asarray(Image.fromarray(_u8(low)).resize((rw, rh), Image.BILINEAR)))
            bg = self._distractors(rng, bg)
            img = Image.merge("RGB", [Image.fromarray(_u8(c)) for c in bg])
            if rs > 1:
                img = img.resize((rw * rs, rh * rs), Image.BILINEAR).crop((0, 0, w, h))
        if rng.random() < 0.3:  # depth of field
            img = img.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 3.0) * min(h, w) / 256))
        return img

    def photo_background(self, rng) -> np.ndarray:
        h, w = self.size
        i = int(rng.integers(0, len(self.backgrounds)))
        img = self._bg_cache.get(i)
        if img is None:
            img = read_image(self.backgrounds[i])
            # Keep a copy at about twice the output size (bounded memory, varied crops).
            s = max(2 * h / img.shape[0], 2 * w / img.shape[1])
            if s < 1:
                img = np.asarray(Image.fromarray(img).resize(
                    (max(w, round(img.shape[1] * s)), max(h, round(img.shape[0] * s))), Image.BILINEAR))
            if len(self._bg_cache) < 256:
                self._bg_cache[i] = img
        ih, iw = img.shape[:2]
        frac = rng.uniform(0.5, 1.0)
        ch = max(1, int(min(ih, iw * h / w) * frac))
        cw = max(1, int(ch * w / h))
        y0 = int(rng.integers(0, ih - ch + 1))
        x0 = int(rng.integers(0, iw - cw + 1))
        crop = Image.fromarray(img[y0:y0 + ch, x0:x0 + cw])
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        return crop.resize((w, h), Image.BILINEAR)

    def _distractors(self, rng, bg):
        h, w = bg.shape[1:]
        n = int(rng.integers(0, 7))
        if n == 0:
            return bg
        cv = _Canvas(h, w)
        cv.P = bg
        s = min(h, w)
        for _ in range(n):
            r = rng.random()
            col = (_jitter(rng, _SKIN[rng.integers(len(_SKIN))]) if r < 0.3 else
                   _jitter(rng, _HAIR[rng.integers(len(_HAIR))]) if r < 0.45 else _rand_colour(rng))
            cx, cy = rng.uniform(-0.1, 1.1) * w, rng.uniform(-0.1, 1.1) * h
            rx, ry = rng.uniform(0.03, 0.25) * s, rng.uniform(0.03, 0.3) * s
            ang = rng.uniform(0, math.pi)
            b = cv.box(cx - rx - ry, cy - rx - ry, cx + rx + ry, cy + rx + ry)
            if b is None:
                continue
            iy0, ix0, X, Y = b
            kind = rng.integers(0, 3)
            if kind == 0:
                d = _sd_ellipse(X, Y, cx, cy, rx, ry, ang)
            elif kind == 1:
                d = _sd_box(X, Y, cx, cy, rx, ry, rng.uniform(0, 0.5) * min(rx, ry), ang)
            else:
                d = _sd_capsule(X, Y, (cx - rx * math.cos(ang), cy - rx * math.sin(ang)),
                                (cx + rx * math.cos(ang), cy + rx * math.sin(ang)), ry * 0.3)
            a = _cov(d, rng.uniform(1.0, 2.0))
            shade = 0.8 + 0.2 * np.clip(-d / max(min(rx, ry), 1.0), 0, 1)
            cv.over(iy0, ix0, a, col.reshape(3, 1, 1) * shade[None], A=False)
        return cv.P

    # -- the figure --------------------------------------------------------------
    def _figure(self, rng, cv: _Canvas, strands: list, scale_mul: float = 1.0,
                secondary: bool = False):
        h, w = cv.h, cv.w
        s = min(h, w)
        rx = rng.uniform(0.07, 0.2) * s * scale_mul
        if rng.random() < 0.15 and not secondary:
            rx = rng.uniform(0.2, 0.3) * s  # close-up selfie
        ry = rx * rng.uniform(1.15, 1.35)
        if secondary:
            hx = rng.choice([rng.uniform(0.0, 0.3), rng.uniform(0.7, 1.0)]) * w
        else:
            hx = float(np.clip(rng.normal(0.5, 0.17), 0.08, 0.92)) * w
        hy = rng.uniform(0.08, 0.45) * h + (0.0 if rng.random() < 0.85 else -0.6 * ry)
        body_ang = rng.normal(0, math.radians(6))
        head_ang = body_ang + rng.normal(0, math.radians(9))
        soft = rng.uniform(0.8, 1.2) if rng.random() < 0.8 else rng.uniform(1.2, 2.5) * s / 256

        # body frame: rotate local offsets (dx, dy) by body_ang about the neck base
        cb, sb = math.cos(body_ang), math.sin(body_ang)
        neck_base = (hx - math.sin(head_ang) * ry * 1.0, hy + ry * rng.uniform(1.3, 1.6))

        def T(dx, dy):
            return (neck_base[0] + dx * cb - dy * sb, neck_base[1] + dx * sb + dy * cb)

        skin = _jitter(rng, _SKIN[rng.integers(len(_SKIN))], 10)
        hair = _jitter(rng, _HAIR[rng.integers(len(_HAIR))], 12)
        if rng.random() < 0.07:
            hair = _rand_colour(rng)  # dyed
        cloth = _rand_colour(rng)
        if rng.random() < 0.25:  # clothes in skin / hair-like colours are the hard cases
            cloth = _jitter(rng, skin if rng.random() < 0.5 else hair, 25)
        cloth2 = _rand_colour(rng)
        light = rng.uniform(-0.25, 0.25, 2)  # directional light, per unit of distance

        def shaded(col, d, X, Y, cx, cy, scale, lo=0.72):
            t = np.clip(-d / max(scale, 1.0), 0.0, 1.0)
            sh = lo + (1 - lo) * np.sqrt(t)
            sh = sh + ((X - cx) * light[0] + (Y - cy) * light[1]) / max(scale * 2, 1.0)
            col = np.asarray(col, F32)
            return (col.reshape(3, 1, 1) if col.ndim == 1 else col) * np.clip(sh, 0.3, 1.4)[None]

        # hair geometry, in the head frame
        ch_, sh_ = math.cos(head_ang), math.sin(head_ang)
        up = rng.uniform(0.08, 0.3) * ry
        hcx, hcy = hx + sh_ * up, hy - ch_ * up
        hrx, hry = rx * rng.uniform(1.04, 1.35), ry * rng.uniform(0.98, 1.15)
        long_hair = rng.random() < 0.45
        long_len = ry * rng.uniform(1.5, 4.0)
        long_hw = hrx * rng.uniform(0.9, 1.15)
        fringe_band = rx * rng.uniform(0.04, 0.22)
        fringe_op = rng.uniform(0.3, 0.8)

        # 1. hair behind the head (volume + long hair) with a semi-transparent fringe
        ext = max(hrx, hry) + fringe_band + 2
        if long_hair:
            lx = abs(sh_) * long_len + long_hw * 1.6 + fringe_band + 2
            b = cv.box(min(hcx - ext, hx - lx), hcy - ext, max(hcx + ext, hx + lx),
                       hy + long_len + fringe_band + 2)
        else:
            b = cv.box(hcx - ext, hcy - ext, hcx + ext, hcy + ext)
        hair_poly = None
        if b is not None:
            iy0, ix0, X, Y = b
            d = _sd_ellipse(X, Y, hcx, hcy, hrx, hry, head_ang)
            if long_hair:
                dl = _sd_box(X, Y, hx - sh_ * (long_len * 0.5 - ry * 0.2),
                             hy + ch_ * (long_len * 0.5 - ry * 0.2),
                             long_hw, long_len * 0.5, long_hw * 0.5, head_ang,
                             taper=rng.uniform(-0.05, 0.15))
                d = _smin(d, dl, rx * 0.4)
            solid = _cov(d, soft)
            noise = self._white[iy0:iy0 + d.shape[0], ix0:ix0 + d.shape[1]] * 0.5 + 0.5
            fr = np.clip(1.0 - d / fringe_band, 0.0, 1.0) ** 2 * fringe_op * noise
            fr = np.where(d > 0, fr, 0.0)
            a = np.maximum(solid, fr)
            tex = self._streak[iy0:iy0 + d.shape[0], ix0:ix0 + d.shape[1]]
            col = hair.reshape(3, 1, 1) * (0.75 + 0.5 * tex)[None]
            col = shaded(col, d, X, Y, hcx, hcy, rx, lo=0.8)
            cv.over(iy0, ix0, a, col)
            hair_poly = True

        # 2. neck
        nr = rx * rng.uniform(0.36, 0.5)
        n_top = (hx - sh_ * ry * 0.3, hy + ch_ * ry * 0.3)
        n_bot = T(0.0, rx * 0.3)
        b = cv.box(min(n_top[0], n_bot[0]) - nr - 2, min(n_top[1], n_bot[1]) - nr - 2,
                   max(n_top[0], n_bot[0]) + nr + 2, max(n_top[1], n_bot[1]) + nr + 2)
        if b is not None:
            iy0, ix0, X, Y = b
            d = _sd_capsule(X, Y, n_top, n_bot, nr * 0.95, nr * 1.1)
            cv.over(iy0, ix0, _cov(d, soft), shaded(skin * 0.82, d, X, Y, *n_bot, nr))

        # 3. torso with rounded shoulders
        sw = rx * rng.uniform(1.9, 3.0)
        torso_len = h * 2.0
        shoulder_y = rx * rng.uniform(0.15, 0.45)
        c_t = T(0.0, shoulder_y + torso_len * 0.5)
        taper = rng.uniform(-0.05, 0.12)
        top = T(0.0, shoulder_y)
        dy = max(h - top[1], 0.0) / max(cb, 0.5)
        bot_x = top[0] - dy * sb
        hw_max = sw + max(taper, 0.0) * dy + rx + 2
        b = cv.box(min(top[0], bot_x) - hw_max, top[1] - sw * abs(sb) - rx,
                   max(top[0], bot_x) + hw_max, h)
        l_sh, r_sh = T(-sw * 0.78, shoulder_y + rx * 0.45), T(sw * 0.78, shoulder_y + rx * 0.45)
        if b is not None:
            iy0, ix0, X, Y = b
            d = _sd_box(X, Y, c_t[0], c_t[1], sw, torso_len * 0.5, rx * rng.uniform(0.5, 1.0),
                        body_ang, taper)
            d = _smin(d, _sd_capsule(X, Y, l_sh, r_sh, rx * 0.45), rx * 0.3)
            col = self._cloth_colour(rng, X, Y, d, cloth, cloth2, body_ang, rx)
            cv.over(iy0, ix0, _cov(d, soft), shaded(col, d, X, Y, *c_t, rx * 1.2, lo=0.78))

        # 4. head (face)
        b = cv.box(hx - ry - 2, hy - ry - 2, hx + ry + 2, hy + ry + 2)
        if b is not None:
            iy0, ix0, X, Y = b
            d = _sd_ellipse(X, Y, hx, hy, rx, ry, head_ang)
            cv.over(iy0, ix0, _cov(d, soft), shaded(skin, d, X, Y, hx, hy, rx))
            if rng.random() < 0.85 and rx > 5:  # eyes and mouth (colour only)
                fx = rng.normal(0, 0.15) * rx  # gaze / head turn
                for ex, ey, erx, ery, ecol in (
                        (-0.38, -0.05, 0.13, 0.07, (40, 30, 30)),
                        (0.38, -0.05, 0.13, 0.07, (40, 30, 30)),
                        (0.0, 0.5, 0.28, 0.06, (150, 70, 70))):
                    px = hx + (ex * rx + fx) * ch_ - ey * ry * sh_
                    py = hy + (ex * rx + fx) * sh_ + ey * ry * ch_
                    a = _cov(_sd_ellipse(X, Y, px, py, erx * rx, ery * ry, head_ang), 1.0)
                    cv.over(iy0, ix0, a * cv.A[iy0:iy0 + a.shape[0], ix0:ix0 + a.shape[1]],
                            np.asarray(ecol, F32))

        # 5. hair in front: the cap above a wavy hairline (bangs)
        if hair_poly:
            hl = -ry * rng.uniform(0.15, 0.6)
            amp, freq, ph = ry * rng.uniform(0.0, 0.12), rng.uniform(2, 6) / rx, rng.uniform(0, 6.3)
            b = cv.box(hcx - hrx - 2, hcy - hry - 2, hcx + hrx + 2, hcy + hry + 2)
            if b is not None:
                iy0, ix0, X, Y = b
                dx, dy = X - hx, Y - hy
                u = dx * ch_ + dy * sh_
                v = dy * ch_ - dx * sh_
                dline = v - (hl + amp * np.sin(u * freq + ph))
                d = np.maximum(_sd_ellipse(X, Y, hcx, hcy, hrx, hry, head_ang), dline)
                tex = self._streak[iy0:iy0 + d.shape[0], ix0:ix0 + d.shape[1]]
                col = shaded(hair.reshape(3, 1, 1) * (0.75 + 0.5 * tex)[None], d, X, Y, hcx, hcy, rx, lo=0.8)
                cv.over(iy0, ix0, _cov(d, soft), col)

        # 6. arms and hands
        short_sleeves = rng.random() < 0.45
        for side in (-1.0, 1.0):
            if rng.random() < 0.35:
                continue
            self._arm(rng, cv, T, side, sw, rx, skin, cloth, short_sleeves, soft, shaded)

        # 7. hair strands, splatted over everything
        if hair_poly:
            strands.append((hcx, hcy, hrx, hry, head_ang, hair, rx, long_hair, long_len))

    def _cloth_colour(self, rng, X, Y, d, c1, c2, ang, rx):
        kind = rng.integers(0, 4)
        if kind == 0:
            return c1
        c, s = math.cos(ang), math.sin(ang)
        u = X * c + Y * s
        v = Y * c - X * s
        period = rx * rng.uniform(0.3, 1.2)
        if kind == 1:  # stripes
            t = np.clip(np.sin(v * (2 * math.pi / period)) * 4.0, -1, 1) * 0.5 + 0.5
        elif kind == 2:  # checks
            t = np.clip(np.sin(v * (2 * math.pi / period)) * np.sin(u * (2 * math.pi / period)) * 4,
                        -1, 1) * 0.5 + 0.5
        else:  # noisy knit
            t = self._white[: d.shape[0], : d.shape[1]] * 0.25 + 0.5
            return c1.reshape(3, 1, 1) * (0.8 + 0.4 * t)[None]
        return c2.reshape(3, 1, 1) + (c1 - c2).reshape(3, 1, 1) * t[None]

    def _arm(self, rng, cv, T, side, sw, rx, skin, cloth, short_sleeves, soft, shaded):
        sh = T(side * sw * 0.85, rx * 0.75)
        pose = rng.choice(4, p=[0.5, 0.2, 0.15, 0.15])
        if pose == 0:  # hanging down
            el = T(side * (sw * 0.95 + rx * rng.uniform(0, 0.5)), rx * rng.uniform(2.6, 3.2))
            ha = (el[0] + side * rx * rng.uniform(-0.3, 0.6), el[1] + rx * rng.uniform(2.3, 2.8))
        elif pose == 1:  # raised / waving
            el = T(side * (sw + rx * rng.uniform(1.0, 2.0)), rx * rng.uniform(0.0, 1.5))
            ha = (el[0] + side * rx * rng.uniform(-0.5, 0.8), el[1] - rx * rng.uniform(1.8, 2.6))
        elif pose == 2:  # hand across the chest (holding a phone, a cup)
            el = T(side * (sw * 0.9), rx * rng.uniform(2.3, 2.9))
            ha = T(-side * rx * rng.uniform(-0.3, 0.8), rx * rng.uniform(1.5, 2.3))
        else:  # hand to the chin
            el = T(side * (sw * 0.8), rx * rng.uniform(2.5, 3.0))
            ha = T(side * rx * rng.uniform(0.3, 0.9), -rx * rng.uniform(0.6, 1.1))
        r_up, r_el, r_wr = rx * rng.uniform(0.36, 0.45), rx * 0.32, rx * 0.24
        pts = np.array([sh, el, ha])
        m = rx * 1.5
        b = cv.box(pts[:, 0].min() - m, pts[:, 1].min() - m, pts[:, 0].max() + m, pts[:, 1].max() + m)
        if b is None:
            return
        iy0, ix0, X, Y = b
        d_up = _sd_capsule(X, Y, sh, el, r_up, r_el)
        d_fo = _sd_capsule(X, Y, el, ha, r_el * 0.95, r_wr)
        dirx, diry = ha[0] - el[0], ha[1] - el[1]
        L = max(math.hypot(dirx, diry), 1e-3)
        dirx, diry = dirx / L, diry / L
        hc = (ha[0] + dirx * rx * 0.35, ha[1] + diry * rx * 0.35)
        d_hand = _sd_ellipse(X, Y, hc[0], hc[1], rx * 0.3, rx * 0.4, math.atan2(diry, dirx) - math.pi / 2)
        if rng.random() < 0.6:  # fingers
            px, py = -diry, dirx
            for k in np.linspace(-1, 1, 4):
                base = (hc[0] + px * k * rx * 0.2 + dirx * rx * 0.2, hc[1] + py * k * rx * 0.2 + diry * rx * 0.2)
                fl = rx * rng.uniform(0.35, 0.55) * (1 - 0.2 * abs(k))
                tip = (base[0] + dirx * fl + px * k * rx * 0.08, base[1] + diry * fl + py * k * rx * 0.08)
                d_hand = _smin(d_hand, _sd_capsule(X, Y, base, tip, rx * 0.075, rx * 0.06), rx * 0.05)
        d_skin = _smin(d_hand, d_fo, rx * 0.1) if short_sleeves else d_hand
        d_cloth = _smin(d_up, d_fo, rx * 0.15) if not short_sleeves else d_up
        col_c = shaded(cloth, d_cloth, X, Y, *el, rx * 0.5, lo=0.7)
        cv.over(iy0, ix0, _cov(d_cloth, soft), col_c)
        col_s = shaded(skin, d_skin, X, Y, *hc, rx * 0.4)
        cv.over(iy0, ix0, _cov(d_skin, soft), col_s)

    def _strands(self, rng, fg8, a8, hcx, hcy, hrx, hry, ang, hair, rx, long_hair, long_len):
        """Thin curved strands at partial opacity, splatted as points (bilinear), composited
        in place over the full-size fg8 (HxWx3 uint8) and a8 (HxW uint8 alpha)."""
        h, w = a8.shape
        n = int(rng.integers(10, 90) * min(1.0, rx / 20 + 0.3))
        if n <= 0:
            return
        th = rng.uniform(-math.pi * 1.05, 0.05, n)  # mostly the top half of the hair
        if long_hair:
            th = np.where(rng.random(n) < 0.35, rng.uniform(-0.2, math.pi + 0.2, n), th)
        c, s = math.cos(ang), math.sin(ang)
        ex, ey = hrx * np.cos(th) * 0.97, hry * np.sin(th) * 0.97
        x0 = hcx + ex * c - ey * s
        y0 = hcy + ex * s + ey * c
        if long_hair:  # strands from the sides of long hair hang lower
            low = th > 0
            y0 = np.where(low, y0 + rng.uniform(0, long_len * 0.8, n), y0)
        nx, ny = np.cos(th) * c - np.sin(th) * s, np.cos(th) * s + np.sin(th) * c
        rot = rng.normal(0, 0.6, n)
        dx = nx * np.cos(rot) - ny * np.sin(rot)
        dy = nx * np.sin(rot) + ny * np.cos(rot)
        length = rx * rng.uniform(0.1, 0.7, n) * rng.uniform(0.6, 1.3)
        gravity = rng.uniform(0.0, 1.0, n)
        op = rng.uniform(0.25, 0.9, n)
        # points at most half a pixel apart along the longest strand
        steps = int(max(12, math.ceil(float(length.max()) * (1.0 + gravity.max()) * 2.0)))
        t = np.linspace(0.0, 1.0, steps, dtype=F32)[None, :]
        # quadratic curve: p0 + d*L*t + g*L*t^2 (bends down)
        L = length[:, None]
        px = x0[:, None] + dx[:, None] * L * t
        py = y0[:, None] + dy[:, None] * L * t + gravity[:, None] * L * t * t
        seg = np.hypot(np.diff(px, axis=1), np.diff(py, axis=1)).sum(1)
        spacing = seg / (steps - 1)
        # weight = opacity x spacing: a line then covers ~`op` of each pixel it crosses
        wgt = ((op * spacing)[:, None] * (1.0 - 0.7 * t)).ravel()
        px, py = px.ravel(), py.ravel()
        ix = np.floor(px).astype(np.int64)
        iy = np.floor(py).astype(np.int64)
        fx, fy = (px - ix).astype(F32), (py - iy).astype(F32)
        gx0, gy0 = int(ix.min()), int(iy.min())
        gw, gh = int(ix.max()) - gx0 + 2, int(iy.max()) - gy0 + 2
        base = (iy - gy0) * gw + (ix - gx0)
        idx = np.concatenate([base, base + 1, base + gw, base + gw + 1])
        wx1, wy1 = wgt * fx, fy
        wx0 = wgt - wx1
        wts = np.concatenate([wx0 * (1 - wy1), wx1 * (1 - wy1), wx0 * wy1, wx1 * wy1])
        acc = np.bincount(idx, weights=wts, minlength=gh * gw).reshape(gh, gw)
        # crop the splat grid to the frame
        x_lo, y_lo = max(gx0, 0), max(gy0, 0)
        x_hi, y_hi = min(gx0 + gw, w), min(gy0 + gh, h)
        if x_hi <= x_lo or y_hi <= y_lo:
            return
        a = acc[y_lo - gy0:y_hi - gy0, x_lo - gx0:x_hi - gx0]
        yy, xx = np.nonzero(a > 1e-3)
        a = np.minimum(a[yy, xx], 1.0).astype(F32)
        yy += y_lo
        xx += x_lo
        col = np.clip(hair * rng.uniform(0.9, 1.35), 0, 255).astype(F32)
        A0 = a8[yy, xx].astype(F32) * F32(1.0 / 255.0)
        A1 = a + A0 * (1.0 - a)
        # unpremultiplied 'over': fg = (a*col + A0*(1-a)*fg) / A1  (A1 >= a > 0)
        wf = (A0 * (1.0 - a) / A1)[:, None]
        fg8[yy, xx] = _u8(fg8[yy, xx] * wf + col * (1.0 - wf))
        a8[yy, xx] = _u8(A1 * F32(255.0))


def write_synthetic_folder(out_dir, n: int, size=(128, 128), seed: int = 0, rgba: bool = False) -> Path:
    """Write `n` synthetic samples as a dataset folder and return its path.

    Layout: ``out_dir/image/0000.png`` + ``out_dir/alpha/0000.png`` (8-bit matte), or with
    ``rgba=True`` one RGBA PNG per sample in ``out_dir/image/`` whose alpha channel is the
    matte (AISegment style). Reading the folder back gives the same arrays exactly.
    """
    out = Path(out_dir)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    gen = SyntheticPortraits(size=size, seed=seed)
    width = max(4, len(str(n - 1)))
    for i in range(n):
        s = gen.sample(i)
        a8 = round_to_uint8(s["alpha"] * 255.0)
        name = f"{i:0{width}d}.png"
        if rgba:
            write_png(out / "image" / name, np.concatenate([s["image"], a8[..., None]], -1))
        else:
            write_png(out / "image" / name, s["image"])
            write_png(out / "alpha" / name, a8)
    return out
