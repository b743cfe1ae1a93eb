"""Training augmentation on sample dicts ``{"image", "alpha", "fg", "bg"}``.

Geometric ops (flips, rotation + scale about the centre) move all four arrays together, so
image and matte stay aligned; pixels brought in from outside the frame are black with
alpha 0 in every array. Photometric ops:

* gamma, global brightness and per-element brightness noise (integer, uniform) are
  pointwise colour changes; they are applied to image, fg and bg alike, so
  ``image ~ fg*alpha + bg*(1-alpha)`` still holds (exactly for the additive ones up to
  clipping at 0/255, and to within rounding of gamma at fractional alpha);
* blur (mean / median / gaussian, one at random) is a camera degradation and is applied to
  the image only;
* occlusion pastes an object *in front of* the person (a rectangle of flat colour or
  noise): the person is hidden there, so alpha becomes 0, and the occluder becomes part
  of bg, which keeps the composition consistent.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageChops, ImageFilter

from ..imageops import resize_bilinear, round_to_uint8

F32 = np.float32


@dataclass
class AugmentConfig:
    hflip: bool = True
    vflip: bool = False
    rotate_deg: float = 10.0  # uniform in [-rotate_deg, rotate_deg]
    scale: tuple[float, float] = (0.9, 1.1)  # zoom factor range (>1 zooms in)
    affine_prob: float = 0.5  # chance of rotation+scale (flips are separate); it is the costliest op
    brightness: float = 0.15  # global add, uniform in [-b, b] x 255
    brightness_element: float = 0.03  # per-element add, uniform in [-e, e] x 255
    occlusion_prob: float = 0.2
    blur_prob: float = 0.2
    gamma: tuple[float, float] = (0.8, 1.25)  # log-uniform
    enabled: bool = True

    def __post_init__(self):
        self.scale = tuple(float(v) for v in self.scale)
        self.gamma = tuple(float(v) for v in self.gamma)
        for name in ("occlusion_prob", "blur_prob", "affine_prob"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"AugmentConfig.{name} must be in [0, 1], got {v}")
        if min(self.scale) <= 0 or min(self.gamma) <= 0:
            raise ValueError("AugmentConfig.scale and .gamma must be positive")


def augment(sample: dict, rng: np.random.Generator, cfg: AugmentConfig) -> dict:
    """Return an augmented copy of `sample` (the input is not modified).

    Works on PIL images throughout (C loops; numpy broadcasting over a last axis of 3 is
    slow), with alpha carried as 8-bit, i.e. quantized to multiples of 1/255 like the PNG
    mattes it comes from.
    """
    image = np.asarray(sample["image"], np.uint8)
    alpha = np.asarray(sample["alpha"], F32)
    fg = sample.get("fg", image)
    bg = sample.get("bg", image)
    if not cfg.enabled:
        return {"image": image, "alpha": alpha, "fg": np.asarray(fg, np.uint8), "bg": np.asarray(bg, np.uint8)}
    # folder samples: fg and bg are the photo itself and stay so
    same_fg, same_bg = fg is sample["image"], bg is sample["image"]
    h, w = alpha.shape
    im = Image.fromarray(np.ascontiguousarray(image))
    am = Image.fromarray(round_to_uint8(alpha * F32(255.0)))
    fgi = None if same_fg else Image.fromarray(np.ascontiguousarray(fg, np.uint8))
    bgi = None if same_bg else Image.fromarray(np.ascontiguousarray(bg, np.uint8))

    def each(fn):
        nonlocal im, am, fgi, bgi
        im, am = fn(im, (0, 0, 0)), fn(am, 0)
        fgi = None if fgi is None else fn(fgi, (0, 0, 0))
        bgi = None if bgi is None else fn(bgi, (0, 0, 0))

    # -- geometry ------------------------------------------------------------------
    if cfg.hflip and rng.random() < 0.5:
        each(lambda x, _f: x.transpose(Image.FLIP_LEFT_RIGHT))
    if cfg.vflip and rng.random() < 0.5:
        each(lambda x, _f: x.transpose(Image.FLIP_TOP_BOTTOM))
    ang = math.radians(rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)) if cfg.rotate_deg else 0.0
    zoom = rng.uniform(cfg.scale[0], cfg.scale[1]) if cfg.scale != (1.0, 1.0) else 1.0
    if (ang != 0.0 or zoom != 1.0) and rng.random() < cfg.affine_prob:
        # output pixel p samples the input at c + R(-ang)(p - c) / zoom (PIL's inverse map)
        cx, cy = w / 2.0, h / 2.0
        c, s = math.cos(ang) / zoom, math.sin(ang) / zoom
        coeffs = (c, s, cx - c * cx - s * cy, -s, c, cy + s * cx - c * cy)
        each(lambda x, fill: x.transform(x.size, Image.AFFINE, coeffs, resample=Image.BILINEAR,
                                         fillcolor=fill))

    # -- occlusion: an object in front of the person -------------------------------------
    if rng.random() < cfg.occlusion_prob:
        oh = int(rng.uniform(0.08, 0.35) * h) + 1
        ow = int(rng.uniform(0.08, 0.35) * w) + 1
        y0, x0 = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        if rng.random() < 0.5:
            patch = tuple(int(v) for v in rng.integers(0, 256, 3))
        else:
            patch = Image.fromarray(rng.integers(0, 256, (oh, ow, 3), dtype=np.uint8))
        box = (x0, y0, x0 + ow, y0 + oh) if isinstance(patch, tuple) else (x0, y0)
        im = im.copy()
        im.paste(patch, box)
        if bgi is not None:
            bgi = bgi.copy()
            bgi.paste(patch, box)
        am = am.copy()
        am.paste(0, (x0, y0, x0 + ow, y0 + oh))

    # -- pointwise colour: gamma + global brightness as one LUT, then element noise ------
    g = (math.exp(rng.uniform(math.log(cfg.gamma[0]), math.log(cfg.gamma[1])))
         if cfg.gamma != (1.0, 1.0) else 1.0)
    b = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0 if cfg.brightness else 0.0
    if g != 1.0 or b != 0.0:
        lut = round_to_uint8(255.0 * (np.arange(256, dtype=np.float64) / 255.0) ** g + b)
        lut = np.tile(lut, 3).tolist()
        im = im.point(lut)
        fgi = None if fgi is None else fgi.point(lut)
        bgi = None if bgi is None else bgi.point(lut)
    e = int(round(cfg.brightness_element * 255.0))
    if e > 0:
        noise = Image.fromarray(rng.integers(128 - e, 128 + e + 1, (h, w, 3), dtype=np.uint8))
        im = ImageChops.add(im, noise, 1.0, -128)  # image + noise, clipped to [0, 255]
        fgi = None if fgi is None else ImageChops.add(fgi, noise, 1.0, -128)
        bgi = None if bgi is None else ImageChops.add(bgi, noise, 1.0, -128)

    # fg/bg of folder data are the (unblurred) photo
    fg_out = np.asarray(fgi) if fgi is not None else None
    bg_out = np.asarray(bgi) if bgi is not None else None
    if fg_out is None or bg_out is None:
        photo = np.asarray(im)
        fg_out = photo if fg_out is None else fg_out
        bg_out = photo if bg_out is None else bg_out

    # -- blur: camera degradation, image only ---------------------------------------------
    if rng.random() < cfg.blur_prob:
        kind = int(rng.integers(0, 3))
        r = rng.uniform(0.5, 1.5) * max(h, w) / 256
        if kind == 0:
            im = im.filter(ImageFilter.BoxBlur(r))
        elif kind == 1:
            im = im.filter(ImageFilter.MedianFilter(3))
        else:
            im = im.filter(ImageFilter.GaussianBlur(r))

    return {"image": np.asarray(im), "alpha": np.asarray(am).astype(F32) * F32(1.0 / 255.0),
            "fg": fg_out, "bg": bg_out}


def recomposite(sample: dict, background: np.ndarray) -> dict:
    """Composition augmentation: a new image ``fg*alpha + background*(1-alpha)``.

    `background` (HxWx3) is resized to the sample's size. For folder data fg is the
    photo itself, so edge pixels keep a trace of the old background (colour spill).
    """
    alpha = np.asarray(sample["alpha"], F32)
    h, w = alpha.shape
    bg = np.asarray(background)[..., :3]
    if bg.shape[:2] != (h, w):
        bg = round_to_uint8(resize_bilinear(bg, h, w))
    bg = np.asarray(bg, np.uint8)
    fg = np.asarray(sample["fg"], np.uint8)
    a = alpha[..., None]
    image = round_to_uint8(fg.astype(F32) * a + bg.astype(F32) * (F32(1.0) - a))
    return {"image": image, "alpha": alpha, "fg": fg, "bg": bg}
