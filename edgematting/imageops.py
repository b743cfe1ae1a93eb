"""Reference image operations of the photo pipeline, defined exactly.

decoded photo -> resize to model size -> model input buffer -> inference -> alpha resized
back to photo size -> composite. These functions are *the* definition of that pipeline:
`predict`, the benchmarks' end-to-end timing and the Android demo's Java core
(`android_demo/core`) all compute the same thing, and the Java core is tested against
golden vectors made here. Every step is float32 arithmetic in a fixed order (so Java's
IEEE-754 float math reproduces it bit for bit), with rounding ``floor(x + 0.5)``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import InputError

#: The models' input normalization, ``(pixel - mean) / std`` per channel (RGB): pixels 0..255
#: -> -1..1. model.json records each model's own; this is the default everywhere.
DEFAULT_MEAN = (127.5, 127.5, 127.5)
DEFAULT_STD = (127.5, 127.5, 127.5)


def axis_weights(in_size: int, out_size: int):
    """Half-pixel-centre bilinear sampling along one axis (as tf.image.resize, no antialias).

    Returns (i0, i1, w1) with out[j] = in[i0[j]] * (1 - w1[j]) + in[i1[j]] * w1[j].
    """
    scale = np.float32(in_size) / np.float32(out_size)
    j = np.arange(out_size, dtype=np.float32)
    src = (j + np.float32(0.5)) * scale - np.float32(0.5)
    src = np.maximum(src, np.float32(0.0))
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize HxW or HxWxC to (out_h, out_w) as float32, half-pixel centres, edges clamped.

    Rows first, then columns: ``top = a*(1-wx) + b*wx``; ``out = top*(1-wy) + bottom*wy``.
    """
    x = np.asarray(img, dtype=np.float32)
    squeeze = x.ndim == 2
    if squeeze:
        x = x[:, :, None]
    h, w = x.shape[:2]
    yi0, yi1, wy = axis_weights(h, out_h)
    xi0, xi1, wx = axis_weights(w, out_w)
    wx_ = wx[None, :, None]
    one = np.float32(1.0)
    top = x[yi0][:, xi0] * (one - wx_) + x[yi0][:, xi1] * wx_
    bot = x[yi1][:, xi0] * (one - wx_) + x[yi1][:, xi1] * wx_
    wy_ = wy[:, None, None]
    out = top * (one - wy_) + bot * wy_
    return out[:, :, 0] if squeeze else out


def round_to_uint8(x: np.ndarray) -> np.ndarray:
    """floor(x + 0.5), clipped to [0, 255]."""
    return np.clip(np.floor(np.asarray(x, np.float32) + np.float32(0.5)), 0, 255).astype(np.uint8)


def to_model_input(
    rgb: np.ndarray,
    size: tuple[int, int],
    mean=DEFAULT_MEAN,
    std=DEFAULT_STD,
    input_type: str = "float",
    channels: int = 3,
    channel_order: str = "RGB",
) -> np.ndarray:
    """Photo (HxWx3 uint8 RGB) -> one model input tensor (1, h, w, channels).

    float: ``(pixel - mean) / std`` of the resized float pixels; uint8: the resized pixels
    rounded to uint8 (the normalization is folded into the model). A 4th channel, when
    asked for, is 255 (opaque alpha; models ignore it). channel_order "BGR" swaps R and B.
    """
    h, w = size
    px = resize_bilinear(np.asarray(rgb)[..., :3], h, w)
    if channel_order.upper().startswith("BGR"):
        px = px[..., ::-1]
    if input_type == "uint8":
        out = round_to_uint8(px)
        if channels == 4:
            out = np.concatenate([out, np.full((h, w, 1), 255, np.uint8)], axis=-1)
    elif input_type == "float":
        m = np.asarray(mean, np.float32)
        s = np.asarray(std, np.float32)
        if channel_order.upper().startswith("BGR"):
            m, s = m[::-1], s[::-1]
        out = ((px - m) / s).astype(np.float32)
        if channels == 4:
            out = np.concatenate([out, np.zeros((h, w, 1), np.float32)], axis=-1)
    else:
        raise ValueError(f"input_type must be 'float' or 'uint8', not {input_type!r}")
    return out[None]


def alpha_to_photo(alpha: np.ndarray, photo_hw: tuple[int, int]) -> np.ndarray:
    """Model output (h, w) or (1, h, w, 1), float in [0,1] -> alpha at photo size, clipped."""
    a = np.asarray(alpha, np.float32)
    a = a.reshape(a.shape[-3], a.shape[-2]) if a.ndim == 4 else a.reshape(a.shape[0], a.shape[1])
    return np.clip(resize_bilinear(a, photo_hw[0], photo_hw[1]), 0.0, 1.0)


def box_blur(img: np.ndarray, radius: int, passes: int = 3) -> np.ndarray:
    """Separable box blur (edges clamped), `passes` times: a cheap Gaussian, float32."""
    x = np.asarray(img, np.float32)
    if radius <= 0:
        return x.copy()
    k = 2 * radius + 1
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(0, 0)] * x.ndim
            pad[axis] = (radius + 1, radius)
            c = np.cumsum(np.pad(x, pad, mode="edge"), axis=axis, dtype=np.float64)
            n = x.shape[axis]
            hi = np.take(c, np.arange(k, k + n), axis=axis)
            lo = np.take(c, np.arange(0, n), axis=axis)
            x = ((hi - lo) / k).astype(np.float32)
    return x


def default_blur_radius(h: int, w: int) -> int:
    return max(1, int(round(min(h, w) / 40)))


def composite(rgb: np.ndarray, alpha: np.ndarray, background, foreground=None) -> np.ndarray:
    """``alpha * photo + (1 - alpha) * background`` rounded to uint8.

    background: an (r, g, b) colour, an HxWx3 image (resized to the photo), or "blur" (the
    photo blurred). foreground: the person's colours to use in place of the photo (e.g.
    `edgematting.refine.estimate_foreground`); the blurred background stays the photo's.
    """
    fg = np.asarray(rgb, np.float32)[..., :3]
    h, w = fg.shape[:2]
    if isinstance(background, str) and background == "blur":
        bg = box_blur(fg, default_blur_radius(h, w))
    elif isinstance(background, np.ndarray) and background.ndim == 3:
        bg = background.astype(np.float32)[..., :3]
        if bg.shape[:2] != (h, w):
            bg = resize_bilinear(bg, h, w)
    else:
        bg = np.broadcast_to(np.asarray(background, np.float32).reshape(1, 1, 3), fg.shape)
    if foreground is not None:
        fg = np.asarray(foreground, np.float32)[..., :3]
    a = np.asarray(alpha, np.float32)[..., None]
    return round_to_uint8(a * fg + (np.float32(1.0) - a) * bg)


def rgba_cutout(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """HxWx4 uint8: the photo with the alpha matte as its alpha channel."""
    return np.concatenate([np.asarray(rgb, np.uint8)[..., :3], round_to_uint8(alpha * 255.0)[..., None]], -1)


# --------------------------------------------------------------------------------------
# comic effect (reference for the web demo's web_demo/src/imageops.js)
# --------------------------------------------------------------------------------------
# Edge-preserving smoothing, per-channel colour quantization and dark outlines, blended onto
# the person by alpha. Like the rest of this module every step is float32 arithmetic in a
# fixed order with no transcendental functions (only + - * / floor sqrt, each correctly
# rounded in IEEE 754), so the JavaScript twin, which rounds every operation with
# Math.fround, reproduces it bit for bit.

#: 3x3 window, 3 passes: strong enough to flatten skin and clothes, cheap enough for a
#: 640x480 camera frame in the browser.
COMIC_RADIUS = 1
COMIC_PASSES = 3
#: Range scale of the smoothing, in pixel levels: neighbours this far apart in RGB get
#: half weight.
COMIC_SIGMA_RANGE = 20.0
#: Spatial scale, in pixels: a neighbour at this distance gets half weight.
COMIC_SIGMA_SPACE = 1.0
#: Colour levels per channel (6 -> steps of 51).
COMIC_LEVELS = 6
#: Sobel magnitude (of luminance, 0..255 units) where outlines start and where they are full.
COMIC_EDGE_LOW = 40.0
COMIC_EDGE_HIGH = 140.0
#: How much a full outline darkens: the colour is multiplied by (1 - strength).
COMIC_INK = 0.85


def edge_preserving_smooth(img: np.ndarray, radius: int = COMIC_RADIUS, passes: int = COMIC_PASSES,
                           sigma_range: float = COMIC_SIGMA_RANGE,
                           sigma_space: float = COMIC_SIGMA_SPACE) -> np.ndarray:
    """A bilateral filter with a rational kernel, `passes` times; HxWx3 -> HxWx3 float32.

    For each pixel p and each neighbour n in the (2r+1)^2 window (edges clamped), visited
    row by row (dy outer, dx inner, both from -r to r)::

        d2 = dR*dR + dG*dG + dB*dB                  (d = n - p)
        w  = 1 / ((1 + d2 * (1 / sr^2)) + (dy^2 + dx^2) * (1 / ss^2))
        num += w * n ;  den += w
        out = num / den

    A neighbour across a strong colour edge gets a small weight, so edges stay sharp.
    """
    f32 = np.float32
    x = np.asarray(img, f32)[..., :3].copy()
    h, w = x.shape[:2]
    one = f32(1.0)
    inv_r = one / (f32(sigma_range) * f32(sigma_range))
    inv_s = one / (f32(sigma_space) * f32(sigma_space))
    r = int(radius)
    for _ in range(int(passes)):
        pad = np.pad(x, ((r, r), (r, r), (0, 0)), mode="edge")
        num = np.zeros_like(x)
        den = np.zeros((h, w), f32)
        for dy in range(-r, r + 1):
            for dx in range(-r, r + 1):
                n = pad[r + dy:r + dy + h, r + dx:r + dx + w]
                d = n - x
                d2 = d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2]
                ws = f32(dy * dy + dx * dx) * inv_s
                wgt = one / ((one + d2 * inv_r) + ws)
                num = num + wgt[..., None] * n
                den = den + wgt
        x = num / den[..., None]
    return x


def quantize_levels(img: np.ndarray, levels: int = COMIC_LEVELS) -> np.ndarray:
    """Per-channel quantization to `levels` values over 0..255: ``floor(v / step + 0.5) * step``."""
    f32 = np.float32
    step = f32(255.0) / f32(levels - 1)
    return np.floor(np.asarray(img, f32) / step + f32(0.5)) * step


def luminance(img: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of an HxWx3 image: ``(0.299 R + 0.587 G) + 0.114 B`` in float32."""
    f32 = np.float32
    x = np.asarray(img, f32)
    return (f32(0.299) * x[..., 0] + f32(0.587) * x[..., 1]) + f32(0.114) * x[..., 2]


def outline_strength(img: np.ndarray, low: float = COMIC_EDGE_LOW, high: float = COMIC_EDGE_HIGH) -> np.ndarray:
    """Sobel gradient magnitude of the luminance (edges clamped) mapped to 0..1: 0 below
    `low`, 1 above `high`, linear between. HxWx3 -> HxW float32."""
    f32 = np.float32
    lum = luminance(img)
    h, w = lum.shape
    p = np.pad(lum, 1, mode="edge")
    two = f32(2.0)
    gx = ((p[0:h, 2:w + 2] + two * p[1:h + 1, 2:w + 2]) + p[2:h + 2, 2:w + 2]) - \
         ((p[0:h, 0:w] + two * p[1:h + 1, 0:w]) + p[2:h + 2, 0:w])
    gy = ((p[2:h + 2, 0:w] + two * p[2:h + 2, 1:w + 1]) + p[2:h + 2, 2:w + 2]) - \
         ((p[0:h, 0:w] + two * p[0:h, 1:w + 1]) + p[0:h, 2:w + 2])
    mag = np.sqrt(gx * gx + gy * gy)
    e = (mag - f32(low)) / (f32(high) - f32(low))
    return np.clip(e, f32(0.0), f32(1.0))


def comic_style(rgb: np.ndarray) -> np.ndarray:
    """The whole photo in comic style, HxWx3 float32 in 0..255: smoothed, quantized, outlined.

    Outlines come from the smoothed (not yet quantized) image, so colour bands do not all
    become lines: ``quantized * (1 - ink * outline_strength)``.
    """
    f32 = np.float32
    smooth = edge_preserving_smooth(rgb)
    q = quantize_levels(smooth)
    e = outline_strength(smooth)
    return q * (f32(1.0) - f32(COMIC_INK) * e)[..., None]


def comic(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """The photo with the person (by alpha) in comic style: HxWx3 uint8,
    ``round(alpha * comic_style(rgb) + (1 - alpha) * rgb)`` (as `composite`)."""
    return composite(comic_style(rgb), alpha, np.asarray(rgb, np.float32)[..., :3])


# phone photos: bounded decode and EXIF orientation
# (the Android core's PhotoDecode / Orientation mirror these; golden vectors check them)
# --------------------------------------------------------------------------------------
def _positive_int(name: str, v) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def decode_sample_size(h: int, w: int, max_side: int) -> int:
    """Power-of-two subsampling factor for decoding an h x w photo with a bounded long side.

    The smallest ``s = 2**k`` with ``ceil(max(h, w) / s) <= max_side`` (Android's
    ``BitmapFactory.Options.inSampleSize``): decoders return ``floor`` or ``ceil`` of
    ``size / s``, so the decoded long side is at most `max_side` either way, and the full
    photo is never held in memory.
    """
    long_side = max(_positive_int("h", h), _positive_int("w", w))
    max_side = _positive_int("max_side", max_side)
    s = 1
    while -(-long_side // s) > max_side:  # ceil(long_side / s)
        s *= 2
    return s


def bounded_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is exactly `max_side` when it is longer; unchanged
    otherwise. Aspect ratio kept, each side ``floor(side * max_side / long + 1/2)`` in exact
    integer arithmetic, at least 1."""
    h, w, max_side = _positive_int("h", h), _positive_int("w", w), _positive_int("max_side", max_side)
    long_side = max(h, w)
    if long_side <= max_side:
        return h, w
    return (max(1, (2 * h * max_side + long_side) // (2 * long_side)),
            max(1, (2 * w * max_side + long_side) // (2 * long_side)))


#: EXIF orientation tag (0x0112) -> (clockwise rotation in degrees, mirror), meaning: mirror
#: the stored image left-right first (when mirror), then rotate it clockwise, to display it
#: upright. 2/4/5/7 are the mirrored ones (as androidx ExifInterface's isFlipped /
#: getRotationDegrees); 0 ("undefined") and unknown values leave the image as stored.
EXIF_ORIENTATIONS = {
    1: (0, False), 2: (0, True), 3: (180, False), 4: (180, True),
    5: (270, True), 6: (90, False), 7: (90, True), 8: (270, False),
}


def exif_transform(orientation: int) -> tuple[int, bool]:
    """(clockwise degrees, mirror) that turn a stored image with this EXIF orientation upright."""
    return EXIF_ORIENTATIONS.get(int(orientation), (0, False))


def orient(img: np.ndarray, rotate_cw: int, mirror: bool) -> np.ndarray:
    """Mirror left-right (when `mirror`), then rotate clockwise by 0/90/180/270 degrees.
    HxW or HxWxC; a 90 or 270 degree rotation swaps height and width."""
    if rotate_cw not in (0, 90, 180, 270):
        raise ValueError(f"rotate_cw must be 0, 90, 180 or 270, got {rotate_cw!r}")
    x = np.asarray(img)
    if mirror:
        x = x[:, ::-1]
    return np.ascontiguousarray(np.rot90(x, k=-(rotate_cw // 90), axes=(0, 1)))


def apply_exif_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """The stored pixels of a photo with this EXIF orientation, turned upright."""
    return orient(img, *exif_transform(orientation))


# --------------------------------------------------------------------------------------
# edge-aware upsampling of the alpha: the fast guided filter (He et al. 2010; He & Sun 2015)
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GuidedFilter:
    """Parameters of `guided_upsample`: box radius in *model-resolution* pixels, and the
    regularization eps (variance units of the [0, 1] luminance; larger = smoother).

    Defaults measured on trained models (issue 8), 48 held-out synthetic 800x600 portraits
    (`edgematting evaluate MODEL --data runs/distill/heldout_800x600 --upsample ...`): for a
    Fast-SCNN (width 1.0, 256x256, IoU 0.962 bilinear) radius 2 / eps 1e-4 gave the best
    unknown-band errors of the grid radius {1, 2} x eps {1e-4, 1e-3, 1e-2}: boundary F
    0.859 -> 0.870, IoU 0.962 -> 0.967, SAD 6.09 -> 5.86, MSE 0.0545 -> 0.0475, Grad
    10.0 -> 6.8, Conn 5.91 -> 5.56 (unknown band); eps 1e-3 had the best boundary F (0.874)
    but a worse SAD than bilinear; eps 1e-2 was worse. Two lite students (IoU 0.87)
    improved on every metric as well (boundary F +0.019 and +0.016). (On 4x-upsampled
    synthetic *alpha maps* with no model, radius 1 had looked better: measure on models.)"""

    radius: int = 2
    eps: float = 1e-4

    def __post_init__(self):
        if isinstance(self.radius, bool) or not isinstance(self.radius, (int, np.integer)) or self.radius < 1:
            raise ValueError(f"GuidedFilter.radius must be an integer >= 1, got {self.radius!r}")
        try:
            with np.errstate(over="ignore"):
                ok = isinstance(self.eps, (int, float, np.floating)) and not isinstance(self.eps, bool)
                e = np.float32(self.eps) if ok else None
        except OverflowError:
            e = None
        if e is None or not (np.isfinite(e) and e > 0):
            raise ValueError(f"GuidedFilter.eps must be a positive finite number (as float32), got {self.eps!r}")


def luminance01(rgb: np.ndarray) -> np.ndarray:
    """`luminance` on the 0..1 scale, ``((0.299 R + 0.587 G) + 0.114 B) / 255`` in float32
    (the guided filter's guide; the Java core computes it in the same order)."""
    return luminance(rgb) / np.float32(255.0)


def box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1) x (2r+1) window clipped to the image (divided by the number of
    in-image pixels, as He et al.'s ``boxfilter(I) / boxfilter(ones)``), HxW float32.

    Separable, axis 0 then axis 1; along each axis: float64 running sums ``c[0] = 0``,
    ``c[k] = c[k-1] + x[k-1]`` (sequential, as numpy's cumsum), then
    ``float32((c[hi] - c[lo]) / (hi - lo))`` with ``lo = max(i - r, 0)``,
    ``hi = min(i + r, n - 1) + 1``.
    """
    x = np.asarray(x, np.float32)
    r = int(radius)
    for axis in (0, 1):
        n = x.shape[axis]
        shape = list(x.shape)
        shape[axis] = 1
        c = np.concatenate([np.zeros(shape, np.float64), np.cumsum(x, axis=axis, dtype=np.float64)], axis=axis)
        i = np.arange(n)
        lo = np.maximum(i - r, 0)
        hi = np.minimum(i + r, n - 1) + 1
        count = (hi - lo).astype(np.float64)
        count = count.reshape([-1 if k == axis else 1 for k in range(x.ndim)])
        x = ((np.take(c, hi, axis=axis) - np.take(c, lo, axis=axis)) / count).astype(np.float32)
    return x


def guided_upsample(alpha_lr: np.ndarray, photo: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Model-resolution alpha (h, w) -> edge-aware alpha at the photo's resolution (H, W),
    float32 in [0, 1]: the fast guided filter, guided by the photo's luminance.

    Exactly, in float32 unless stated (the Android core repeats it bit for bit):

    1. ``p = clip(alpha_lr, 0, 1)``; guide ``I = luminance01(photo)`` at (H, W) and
       ``I_lr = luminance01(resize_bilinear(photo, h, w))`` (the model input's own resize);
    2. at (h, w), with ``box_mean`` of `radius`: ``mean_I = box(I_lr)``, ``mean_p = box(p)``,
       ``corr_Ip = box(I_lr * p)``, ``corr_II = box(I_lr * I_lr)``,
       ``var_I = corr_II - mean_I * mean_I``, ``cov_Ip = corr_Ip - mean_I * mean_p``,
       ``a = cov_Ip / (var_I + eps)``, ``b = mean_p - a * mean_I``,
       ``mean_a = box(a)``, ``mean_b = box(b)``;
    3. ``A = resize_bilinear(mean_a, H, W)``, ``B = resize_bilinear(mean_b, H, W)``,
       ``q = clip(A * I + B, 0, 1)``.
    """
    gf = GuidedFilter(radius, eps)  # validates
    rgb = np.asarray(photo)[..., :3]
    if rgb.ndim != 3:
        raise ValueError(f"photo must be HxWx3, got shape {np.asarray(photo).shape}")
    a_lr = np.asarray(alpha_lr, np.float32)
    a_lr = a_lr.reshape(a_lr.shape[-3], a_lr.shape[-2]) if a_lr.ndim >= 3 else a_lr
    h, w = a_lr.shape
    H, W = rgb.shape[:2]
    r, e = gf.radius, np.float32(gf.eps)
    p = np.clip(a_lr, np.float32(0.0), np.float32(1.0))
    guide = luminance01(rgb)
    guide_lr = luminance01(resize_bilinear(rgb, h, w))
    mean_i = box_mean(guide_lr, r)
    mean_p = box_mean(p, r)
    corr_ip = box_mean(guide_lr * p, r)
    corr_ii = box_mean(guide_lr * guide_lr, r)
    var_i = corr_ii - mean_i * mean_i
    cov_ip = corr_ip - mean_i * mean_p
    a = cov_ip / (var_i + e)
    b = mean_p - a * mean_i
    mean_a = box_mean(a, r)
    mean_b = box_mean(b, r)
    q = resize_bilinear(mean_a, H, W) * guide + resize_bilinear(mean_b, H, W)
    return np.clip(q, np.float32(0.0), np.float32(1.0)).astype(np.float32)


#: How a model-resolution alpha is brought to the photo's resolution.
UPSAMPLE = ("bilinear", "guided")


def parse_upsample(upsample: str | None = None, radius: int | None = None, eps: float | None = None):
    """--upsample bilinear|guided [--guided-radius R] [--guided-eps E] -> None (bilinear) or an
    `GuidedFilter`. InputError for anything else."""
    mode = (upsample or "bilinear").strip().lower()
    if mode not in UPSAMPLE:
        raise InputError(f"--upsample takes {' or '.join(UPSAMPLE)}, not {upsample!r}.")
    if mode == "bilinear":
        if radius is not None or eps is not None:
            raise InputError("--guided-radius/--guided-eps apply to --upsample guided.")
        return None
    d = GuidedFilter()
    try:
        return GuidedFilter(radius=d.radius if radius is None else radius, eps=d.eps if eps is None else eps)
    except ValueError as e:
        raise InputError(f"--upsample guided: {e}") from None
