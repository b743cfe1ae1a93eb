"""Losses and metrics for person segmentation (Fast-SCNN) and alpha matting (MattingNet).

Every loss takes ``y_true`` of shape (B, H, W, 7) = [alpha, fg_rgb, bg_rgb] (fg/bg in
[0, 1], as the data pipeline yields them) and ``y_pred`` of shape (B, H, W, 1) (a sigmoid
probability / alpha), and returns one value per image, shape (B,), so Keras' reduction
(and `tf.distribute`'s per-replica scaling) averages it correctly over the global batch.

Which loss, metrics and best-checkpoint metric go with which architecture is part of its
entry in the architecture registry (`edgematting.models.registry`):

* ``fast-scnn``  -> `segmentation_loss` = BCE + Dice + boundary-weighted BCE
* ``mattingnet`` -> `matting_loss`      = alpha L1 + composition L1 + Sobel-gradient L1
  + unknown-band L1 + BCE + boundary-weighted BCE (soft targets), on the output and (deep
  supervision, weight ``coarse``) on the coarse 1/2-resolution prediction: training then
  fits a model whose ``y_pred`` is (B, H, W, 2) = [alpha, coarse alpha], and every metric
  reads channel 0

`describe_loss` says in words which loss a run trains with (model.json's training.loss).

TensorFlow is imported inside each function (see `edgematting._tf`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from ..errors import InputError
from ..models.registry import get_architecture

_EPS = 1e-7

#: Kernel sizes of the boundary bands (pixels): thin, medium and wide edge bands.
BOUNDARY_KERNELS = (3, 5, 9)


@dataclass
class SegmentationLossWeights:
    """Weights of the segmentation loss terms (defaults: the three terms count equally)."""

    bce: float = 1.0
    dice: float = 1.0
    boundary: float = 1.0
    # OHEM: BCE over each image's hardest HARD_FRACTION of pixels (see MattingLossWeights.hard)
    hard: float = 0.0
    boundary_kernels: tuple[int, ...] = BOUNDARY_KERNELS

    def __post_init__(self):
        _check_weights(self, ("bce", "dice", "boundary", "hard"))
        self.boundary_kernels = _check_kernels(self.boundary_kernels)


@dataclass
class MattingLossWeights:
    """Weights of the matting loss terms.

    Alpha L1 carries the matte; composition and gradient terms (Deep Image Matting,
    Xu et al. 2017; MODNet-style detail supervision) sharpen hair and edges.
    """

    alpha: float = 1.0
    composition: float = 1.0
    gradient: float = 1.0
    # alpha L1 over the unknown band only (soft pixels and the ring around the 0.5 contour):
    # the whole-image L1 is dominated by the easy interior, so edges get their own term
    band: float = 1.0
    # cross-entropy against the (soft) matte, whole image and boundary-weighted as in the
    # segmentation loss: an L1 through the sigmoid has a vanishing gradient on a confidently
    # wrong pixel (d|p - a|/dz = p(1 - p)), so a mask that is wrong by whole regions is
    # corrected slowly; BCE's gradient there is p - a. With a soft target BCE is still
    # minimal at p = alpha, so it does not push the matte towards a hard mask.
    bce: float = 1.0
    boundary: float = 1.0
    # deep supervision: the same loss on the architecture's coarse prediction (MattingNet:
    # the 1/2-resolution logits before the full-resolution refiner), so the encoder-decoder
    # learns the contour itself instead of only through the refiner's residual; training
    # only, the exported model keeps its single output. At equal training FLOPs it lifted
    # held-out boundary F from 0.853 to 0.877 (one run; docs/experiments.md, "Edges")
    coarse: float = 1.0
    # online hard example mining (OHEM): the cross-entropy excess averaged over each image's
    # hardest HARD_FRACTION of pixels only. A small confidently wrong region (a patch of
    # patterned background taken for clothing, a hole in a striped shirt) is ~1% of the image,
    # so the whole-image mean barely sees it, yet it costs boundary F a whole false contour
    hard: float = 0.0
    # the same on the coarse prediction only (deep supervision), where the stray regions come
    # from; counted inside `coarse`'s terms. At equal training FLOPs (seed 7, one machine) held-out
    # boundary F rose 0.862 -> 0.881 (band SAD 3.30 -> 3.93); `hard` on the output as well gave 0.886
    # and 0.883 at two seeds but a harder matte (band SAD 4.7). With it MattingNet led Fast-SCNN at
    # three seeds run side by side (0.881 vs 0.866). Fast-SCNN lost with it (docs/experiments.md, "Edges")
    coarse_hard: float = 1.0
    boundary_kernels: tuple[int, ...] = BOUNDARY_KERNELS

    def __post_init__(self):
        _check_weights(self, ("alpha", "composition", "gradient", "band", "bce", "boundary", "coarse", "hard",
                              "coarse_hard"))
        self.boundary_kernels = _check_kernels(self.boundary_kernels)


def _check_kernels(kernels) -> tuple[int, ...]:
    given = kernels
    if isinstance(kernels, str):  # "3,5,9" from the command line
        kernels = [k for k in kernels.replace(" ", "").split(",") if k]
    elif isinstance(kernels, (int, float)):
        kernels = [kernels]
    try:
        kernels = tuple(int(k) for k in kernels)
    except (TypeError, ValueError):
        raise InputError(f"boundary_kernels must be odd sizes >= 3, e.g. 3,5,9; got {given!r}.") from None
    if not kernels or any(k < 3 or k % 2 == 0 for k in kernels):
        raise InputError(f"boundary_kernels must be odd sizes >= 3, e.g. 3,5,9; got {kernels}.")
    return kernels


def _check_weights(obj, names):
    for n in names:
        try:
            v = float(getattr(obj, n))
        except (TypeError, ValueError):
            raise InputError(f"Loss weight '{n}' must be a number, got {getattr(obj, n)!r}.") from None
        if not v >= 0.0:  # also rejects NaN
            raise InputError(f"Loss weight '{n}' must be >= 0, got {v}.")
        setattr(obj, n, v)


# -- helpers -------------------------------------------------------------------------
_TF = None


def _tf():
    """TensorFlow, cached: loss bodies run under AutoGraph, which should not trace into
    `edgematting._tf.tf()` (it touches os.environ). Primed eagerly by the factories."""
    global _TF
    if _TF is None:
        from .._tf import tf

        _TF = tf()
    return _TF


def _split(y_true, y_pred):
    tf = _tf()
    y_true = tf.cast(y_true, tf.float32)
    y_pred = tf.cast(y_pred, tf.float32)
    alpha = y_true[..., 0:1]
    return y_true, y_pred, alpha


def _mean_per_image(t):
    """Mean over all axes but the first: (B, ...) -> (B,)."""
    tf = _tf()
    return tf.reduce_mean(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)


def _sum_per_image(t):
    tf = _tf()
    return tf.reduce_sum(tf.reshape(t, [tf.shape(t)[0], -1]), axis=1)


def _pixel_bce(target, prob):
    tf = _tf()
    p = tf.clip_by_value(prob, _EPS, 1.0 - _EPS)
    return -(target * tf.math.log(p) + (1.0 - target) * tf.math.log(1.0 - p))


#: Share of each image's pixels, the hardest, that the `hard` (OHEM) term averages over.
HARD_FRACTION = 1.0 / 16.0


def hardest_mean(pixel_loss, fraction: float = HARD_FRACTION):
    """Per-image mean of the largest `fraction` of `pixel_loss` (B, H, W, 1) values, (B,)."""
    tf = _tf()
    flat = tf.reshape(pixel_loss, [tf.shape(pixel_loss)[0], -1])
    n = tf.shape(flat)[1]
    k = tf.maximum(1, tf.cast(tf.math.ceil(fraction * tf.cast(n, tf.float32)), tf.int32))
    return tf.reduce_mean(tf.math.top_k(flat, k=k, sorted=False).values, axis=1)


# -- segmentation ----------------------------------------------------------------------
def edge_band(mask, kernel_size: int):
    """Morphological gradient of `mask` (B, H, W, 1): dilation - erosion with a k x k box.

    1 on a band of about `kernel_size` pixels straddling the mask's edge, 0 elsewhere
    (for a binary mask; a soft mask gives a soft band). Max pooling with SAME padding
    ignores out-of-image pixels, so the image border is not mistaken for an edge.
    """
    from .._tf import box_max, box_min

    tf = _tf()
    k = int(kernel_size)
    mask = tf.cast(mask, tf.float32)
    # max pooling, computed as shifted maxima (`box_max`: the same values, ~40x faster on a CPU)
    return box_max(mask, k) - box_min(mask, k)


def boundary_weights(mask, kernel_sizes=BOUNDARY_KERNELS):
    """Per-pixel weight map: the sum of the edge bands at each kernel size.

    A morphological band rather than, say, Canny edges of the mask: it needs no thresholds
    and stays a plain tensor op on the target (so it runs in the graph, on any device and
    under tf.distribute). Pixels right on the edge are in every band and weigh most; pixels
    only in the widest band weigh 1; pixels far from any edge weigh 0.
    """
    tf = _tf()
    bands = [edge_band(mask, k) for k in kernel_sizes]
    return tf.add_n(bands)


def bce_loss(y_true, y_pred):
    """Binary cross-entropy against channel 0 of y_true, per image."""
    _, y_pred, alpha = _split(y_true, y_pred)
    return _mean_per_image(_pixel_bce(alpha, y_pred))


def dice_loss(y_true, y_pred, smooth: float = 1.0):
    """1 - Dice coefficient, per image (soft, so it is differentiable)."""
    _, y_pred, alpha = _split(y_true, y_pred)
    inter = _sum_per_image(alpha * y_pred)
    denom = _sum_per_image(alpha) + _sum_per_image(y_pred)
    return 1.0 - (2.0 * inter + smooth) / (denom + smooth)


def boundary_loss(y_true, y_pred, kernel_sizes=BOUNDARY_KERNELS):
    """BCE weighted by `boundary_weights` of the true mask, per image.

    Normalized by the total weight, so it is an average BCE over the edge bands; an
    image with no edge (all background or all person) contributes 0.
    """
    _, y_pred, alpha = _split(y_true, y_pred)
    return _boundary_mean(alpha, _pixel_bce(alpha, y_pred), kernel_sizes)


def _boundary_mean(alpha, pixel_loss, kernel_sizes):
    """Per-image mean of `pixel_loss` weighted by `boundary_weights` of `alpha`, (B,)."""
    tf = _tf()
    w = boundary_weights(alpha, kernel_sizes)
    return tf.math.divide_no_nan(_sum_per_image(w * pixel_loss), _sum_per_image(w))


def segmentation_loss_fn(weights: SegmentationLossWeights | None = None):
    """Return ``loss(y_true, y_pred) -> (B,)`` = weighted BCE + Dice + boundary BCE."""
    w = weights or SegmentationLossWeights()
    _tf()

    def segmentation_loss(y_true, y_pred):
        total = 0.0
        if w.bce:
            total += w.bce * bce_loss(y_true, y_pred)
        if w.dice:
            total += w.dice * dice_loss(y_true, y_pred)
        if w.boundary:
            total += w.boundary * boundary_loss(y_true, y_pred, w.boundary_kernels)
        if w.hard:
            _, pred, alpha = _split(y_true, y_pred)
            total += w.hard * hardest_mean(_pixel_bce(alpha, pred))
        return total

    segmentation_loss.weights = asdict(w)
    return segmentation_loss


# -- matting -----------------------------------------------------------------------------
def alpha_l1_loss(y_true, y_pred):
    """Mean |alpha_pred - alpha_true| per image."""
    tf = _tf()
    _, y_pred, alpha = _split(y_true, y_pred)
    return _mean_per_image(tf.abs(y_pred - alpha))


def composition_loss(y_true, y_pred):
    """Mean |I - (a_pred * F + (1 - a_pred) * B)| per image, with I = a*F + (1-a)*B.

    The image I is recomposited from the true alpha and the fg/bg channels of y_true, so
    the loss needs nothing but y_true. When the foreground and background are unknown
    (folder data without fg/bg) the pipeline sets F = B = image; then both composites
    equal the image and the term is exactly 0 for any prediction: it drops out instead
    of pulling the matte anywhere. (Those images still count in the batch average, so
    a batch mixing both kinds gets a proportionally smaller composition term.)
    """
    tf = _tf()
    y_true, y_pred, alpha = _split(y_true, y_pred)
    fg = y_true[..., 1:4]
    bg = y_true[..., 4:7]
    image = alpha * fg + (1.0 - alpha) * bg
    recomposed = y_pred * fg + (1.0 - y_pred) * bg
    return _mean_per_image(tf.abs(image - recomposed))


def sobel_gradients(alpha):
    """(B, H, W, 1) -> (B, H, W, 1, 2): Sobel dy, dx (reflect padding): what
    ``tf.image.sobel_edges`` computes (to float rounding), as separable differences and
    smoothings of shifted slices, not a depthwise convolution: 1.3x faster on a CPU, forward
    and backward (18.6 vs 24.8 ms, 8 x 128 x 128; the same gradients)."""
    tf = _tf()
    a = tf.cast(alpha, tf.float32)
    p = tf.pad(a, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="REFLECT")
    dy = p[:, 2:] - p[:, :-2]  # (B, H, W + 2, C): rows i+1 - i-1
    dx = p[:, :, 2:] - p[:, :, :-2]  # (B, H + 2, W, C)
    dy = dy[:, :, :-2] + 2.0 * dy[:, :, 1:-1] + dy[:, :, 2:]  # smoothed across columns
    dx = dx[:, :-2] + 2.0 * dx[:, 1:-1] + dx[:, 2:]  # smoothed across rows
    return tf.stack([dy, dx], axis=-1)


def gradient_loss(y_true, y_pred):
    """Mean L1 between the Sobel gradients of predicted and true alpha, per image."""
    tf = _tf()
    _, y_pred, alpha = _split(y_true, y_pred)
    return _mean_per_image(tf.abs(sobel_gradients(y_pred) - sobel_gradients(alpha)))


#: Width (kernel size) of the ring around the 0.5 contour counted as unknown band in training,
#: at model resolution (evaluation's band is max(3, 1% of the diagonal) px each side: 3 px at 256x256).
BAND_KERNEL = 7


def unknown_band(alpha, kernel_size: int = BAND_KERNEL):
    """(B, H, W, 1) {0, 1} mask of the unknown band of a matte: its soft pixels plus a ring of
    about `kernel_size` pixels around the 0.5 contour (as `evaluation.metrics.unknown_band`
    at model resolution)."""
    tf = _tf()
    a = tf.cast(alpha, tf.float32)
    soft = tf.cast((a > 0.01) & (a < 0.99), tf.float32)
    ring = edge_band(tf.cast(a >= 0.5, tf.float32), kernel_size)
    return tf.maximum(soft, ring)


def band_l1_loss(y_true, y_pred):
    """Mean |alpha_pred - alpha_true| over the unknown band, per image (0 without a band)."""
    tf = _tf()
    _, y_pred, alpha = _split(y_true, y_pred)
    band = unknown_band(alpha)
    return tf.math.divide_no_nan(_sum_per_image(band * tf.abs(y_pred - alpha)), _sum_per_image(band))


def matting_loss_fn(weights: MattingLossWeights | None = None):
    """Return ``loss(y_true, y_pred) -> (B,)`` = weighted alpha L1 + composition + gradient
    + unknown-band L1 + BCE + boundary-weighted BCE."""
    w = weights or MattingLossWeights()
    _tf()

    def terms(y_true, y_pred, hard):
        total = 0.0
        if w.alpha:
            total += w.alpha * alpha_l1_loss(y_true, y_pred)
        if w.composition:
            total += w.composition * composition_loss(y_true, y_pred)
        if w.gradient:
            total += w.gradient * gradient_loss(y_true, y_pred)
        if w.band:
            total += w.band * band_l1_loss(y_true, y_pred)
        if w.bce or w.boundary or hard:
            # cross-entropy minus its value at the exact matte (the matte's entropy): the
            # same gradients, and the whole loss is 0 for a perfect soft prediction
            _, pred, alpha = _split(y_true, y_pred)
            excess = _pixel_bce(alpha, pred) - _pixel_bce(alpha, alpha)
            if w.bce:
                total += w.bce * _mean_per_image(excess)
            if w.boundary:
                total += w.boundary * _boundary_mean(alpha, excess, w.boundary_kernels)
            if hard:
                total += hard * hardest_mean(excess)
        return total

    def matting_loss(y_true, y_pred):
        if y_pred.shape[-1] == 2:  # [alpha, coarse alpha] of a deeply supervised training model
            return terms(y_true, y_pred[..., 0:1], w.hard) + w.coarse * terms(y_true, y_pred[..., 1:2], w.coarse_hard)
        return terms(y_true, y_pred, w.hard)

    matting_loss.weights = asdict(w)
    return matting_loss


def loss_for(architecture: str, weights=None):
    """The training loss of `architecture` (its registry entry's loss factory).

    `weights` is None, an instance of the entry's loss-weights class, or a dict of its
    fields (validated: InputError).
    """
    spec = get_architecture(architecture)
    if isinstance(weights, dict):
        weights = spec.loss_weights_class()(**weights)
    return spec.loss_factory()(weights)


def describe_loss(architecture: str, weights=None) -> str:
    """The loss `loss_for(architecture, weights)` trains with, in words (model.json's
    training.loss): the registry entry's description, plus the OHEM terms (``hard``,
    ``coarse_hard``) that have a non-zero weight and act in this model's training."""
    spec = get_architecture(architecture)
    if weights is None:
        weights = spec.loss_weights_class()()
    elif isinstance(weights, dict):
        weights = spec.loss_weights_class()(**weights)
    ohem = []
    hard = float(getattr(weights, "hard", 0.0))
    if hard:
        ohem.append(f"hard={hard:g} on the output")
    coarse_hard = float(getattr(weights, "coarse_hard", 0.0))
    # the coarse prediction is trained only with deep supervision (`loop.deeply_supervised`)
    if coarse_hard and spec.coarse_output and float(getattr(weights, "coarse", 0.0)):
        ohem.append(f"coarse_hard={coarse_hard:g} on the coarse prediction")
    if not ohem:
        return spec.loss_description
    return (f"{spec.loss_description} + OHEM (cross-entropy over each image's hardest "
            f"{HARD_FRACTION:.2%} of pixels: {', '.join(ohem)})")


# -- boundary F in the graph ---------------------------------------------------------------
def _mask_boundary(mask):
    """(B, H, W, 1) {0, 1} -> its boundary: foreground pixels with a 4-neighbour in the
    background; the image border is not a boundary (as `evaluation.metrics._boundary`)."""
    tf = _tf()
    p = tf.pad(mask, [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0)
    eroded = tf.reduce_min(tf.stack([p[:, 1:-1, 1:-1], p[:, :-2, 1:-1], p[:, 2:, 1:-1],
                                     p[:, 1:-1, :-2], p[:, 1:-1, 2:]]), axis=0)
    return mask * (1.0 - eroded)


def _disk_dilate(mask, radius: int):
    """Binary dilation of a {0, 1} (B, H, W, 1) mask by a Euclidean disk of `radius` px (every
    pixel whose distance to a set pixel is <= radius): a convolution with the disk, > 0.
    (A convolution, not `tf.nn.dilation2d`, which is ~20x slower on a CPU.)"""
    import numpy as np

    tf = _tf()
    r = int(radius)
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (yy * yy + xx * xx <= r * r).astype(np.float32)[..., None, None]
    return tf.cast(tf.nn.conv2d(mask, tf.constant(disk), strides=1, padding="SAME") > 0.5, tf.float32)


def boundary_f_per_image(alpha_true, alpha_pred, threshold: float = 0.5):
    """The DAVIS boundary F-measure of each image, (B,): the graph version of
    `evaluation.metrics.boundary_f` (same boundary, same default tolerance
    ceil(0.008 * diagonal) px for the static image size, same empty-boundary cases)."""
    tf = _tf()
    h, w = alpha_pred.shape[1], alpha_pred.shape[2]
    if h is None or w is None:
        raise ValueError("boundary F in the graph needs a static image size")
    tol = max(1, int(math.ceil(0.008 * math.hypot(h, w))))
    gb = _mask_boundary(tf.cast(tf.cast(alpha_true, tf.float32) >= threshold, tf.float32))
    pb = _mask_boundary(tf.cast(tf.cast(alpha_pred, tf.float32) >= threshold, tf.float32))
    n_g, n_p = _sum_per_image(gb), _sum_per_image(pb)
    precision = tf.math.divide_no_nan(_sum_per_image(pb * _disk_dilate(gb, tol)), n_p)
    recall = tf.math.divide_no_nan(_sum_per_image(gb * _disk_dilate(pb, tol)), n_g)
    f = tf.math.divide_no_nan(2.0 * precision * recall, precision + recall)
    return tf.where((n_p == 0) & (n_g == 0), tf.ones_like(f), f)


# -- metrics -------------------------------------------------------------------------------
def _metric_classes():
    """Build the Keras metric classes lazily (Keras must not load at import time)."""
    global _METRICS
    if _METRICS is not None:
        return _METRICS
    from .._tf import keras

    tf = _tf()
    k = keras()

    class AlphaIoU(k.metrics.Metric):
        """Intersection over union of (pred >= threshold) and (alpha >= threshold),
        accumulated over every pixel seen (dataset-level IoU), on channel 0 of y_true."""

        def __init__(self, threshold=0.5, name="iou", **kwargs):
            super().__init__(name=name, **kwargs)
            self.threshold = float(threshold)
            self.intersection = self.add_weight("intersection", initializer="zeros")
            self.union = self.add_weight("union", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            t = tf.cast(tf.cast(y_true[..., 0:1], tf.float32) >= self.threshold, tf.float32)
            p = tf.cast(tf.cast(y_pred[..., 0:1], tf.float32) >= self.threshold, tf.float32)
            inter = tf.reduce_sum(t * p)
            self.intersection.assign_add(inter)
            self.union.assign_add(tf.reduce_sum(t) + tf.reduce_sum(p) - inter)

        def result(self):
            # No foreground in either: a perfect (empty) prediction.
            return tf.where(self.union > 0, self.intersection / tf.maximum(self.union, 1.0), 1.0)

        def reset_state(self):
            self.intersection.assign(0.0)
            self.union.assign(0.0)

        def get_config(self):
            return {**super().get_config(), "threshold": self.threshold}

    class _Ratio(k.metrics.Metric):
        """A running total / count over every batch seen; subclasses say what a batch adds
        (`amounts(y_true, y_pred) -> (total, count)`)."""

        def __init__(self, name, **kwargs):
            super().__init__(name=name, **kwargs)
            self.total = self.add_weight("total", initializer="zeros")
            self.count = self.add_weight("count", initializer="zeros")

        def update_state(self, y_true, y_pred, sample_weight=None):
            total, count = self.amounts(tf.cast(y_true[..., 0:1], tf.float32), tf.cast(y_pred[..., 0:1], tf.float32))
            self.total.assign_add(total)
            self.count.assign_add(count)

        def result(self):
            return tf.math.divide_no_nan(self.total, self.count)

        def reset_state(self):
            self.total.assign(0.0)
            self.count.assign(0.0)

    class AlphaMAE(_Ratio):
        """Mean |pred - alpha| over every pixel seen, on channel 0 of y_true."""

        def __init__(self, name="mae", **kwargs):
            super().__init__(name=name, **kwargs)

        def amounts(self, alpha, pred):
            d = tf.abs(pred - alpha)
            return tf.reduce_sum(d), tf.cast(tf.size(d), tf.float32)

    class AlphaSAD(_Ratio):
        """Sum of absolute differences per image, in thousands (the matting benchmark
        convention), averaged over images."""

        def __init__(self, name="sad", **kwargs):
            super().__init__(name=name, **kwargs)

        def amounts(self, alpha, pred):
            return tf.reduce_sum(tf.abs(pred - alpha)) / 1000.0, tf.cast(tf.shape(pred)[0], tf.float32)

    class BandMAE(_Ratio):
        """Mean |pred - alpha| over the unknown band of the true matte (`unknown_band`),
        over every band pixel seen: the edge error the whole-image MAE hides."""

        def __init__(self, name="band_mae", **kwargs):
            super().__init__(name=name, **kwargs)

        def amounts(self, alpha, pred):
            band = unknown_band(alpha)
            return tf.reduce_sum(band * tf.abs(pred - alpha)), tf.reduce_sum(band)

    class BoundaryF(_Ratio):
        """DAVIS boundary F per image (`boundary_f_per_image`), averaged over images: where
        the 0.5 contour lies, within ceil(0.008 * diagonal) px, as `edgematting evaluate`
        reports it."""

        def __init__(self, name="boundary_f", **kwargs):
            super().__init__(name=name, **kwargs)

        def amounts(self, alpha, pred):
            f = boundary_f_per_image(alpha, pred)
            return tf.reduce_sum(f), tf.cast(tf.shape(f)[0], tf.float32)

    class EdgeScore(k.metrics.Metric):
        """Boundary F x (1 - unknown-band MAE): where the edge is (the 0.5 contour, DAVIS
        boundary F per image, averaged) and how right the soft alpha around it is (band MAE
        over every band pixel seen). Equals boundary F when the band's alpha is exact;
        higher is better."""

        def __init__(self, name="edge_score", **kwargs):
            super().__init__(name=name, **kwargs)
            self.f = BoundaryF(name="f")
            self.band = BandMAE(name="band")

        def update_state(self, y_true, y_pred, sample_weight=None):
            self.f.update_state(y_true, y_pred)
            self.band.update_state(y_true, y_pred)

        def result(self):
            return self.f.result() * (1.0 - self.band.result())

        def reset_state(self):
            self.f.reset_state()
            self.band.reset_state()

    _METRICS = {"iou": AlphaIoU, "mae": AlphaMAE, "sad": AlphaSAD, "band_mae": BandMAE,
                "boundary_f": BoundaryF, "edge_score": EdgeScore}
    return _METRICS


_METRICS = None


def make_metrics(architecture: str):
    """Fresh Keras metric objects for `architecture`, in its registry entry's order (create
    them inside strategy.scope())."""
    cls = _metric_classes()
    return [cls[name]() for name in get_architecture(architecture).metrics]
