"""Fast-SCNN (Poudel, Liwicki, Cipolla 2019, arXiv:1902.04502) for 1-class portrait
segmentation.

    image (H, W, 3)
    -> learning to downsample  "ltd":  Conv 32 3x3 s2, DSConv 48 s2, DSConv 64 s2   (1/8)
    -> global feature extractor "gfe": bottlenecks t=6: 64 x3 (s2), 96 x3 (s2), 128 x3 (1/32)
    -> pyramid pooling          "ppm": bins 1,2,3,6 (adapted to the feature size)
    -> feature fusion           "ffm": 1/32 branch upsampled x4 -> depthwise 3x3 (dilation
                                       `ffm_dilation`) -> 1x1 conv; 1/8 branch -> 1x1 conv;
                                       Add -> ReLU
    -> classifier               "cls": DSConv 128 x2 -> 1x1 conv (1 channel, logits)
    -> "upsample" x8 to (H, W) -> "alpha" sigmoid

``head="fused"`` (optional; the default ``head="plain"`` is the model above, unchanged)
replaces the 1/8 classifier's last step with a decoder step at the resolution of the
first downsampling stage, for sharper edges (the plain model predicts at 1/8 and only
interpolates up)::

    cls_ds2 (1/8) -> "head_reduce" 1x1 conv -> "head_up" bilinear x2 (to 1/4) or x4 (to 1/2)
    ltd_ds1 (1/4) or ltd_conv1 (1/2) -> "head_detail" 1x1 conv        (``detail_stride`` 4 | 2)
    -> "head_concat" -> "head_ds" DSConv -> "head_logits" 1x1 conv (1 channel)
    -> "upsample" x4 / x2 to (H, W) -> "alpha" sigmoid

Channels: reduce/DSConv 64 and detail 32 at stride 4; 32 and 16 at stride 2 (four times
the pixels), so both cost about the same, ~0.09 GFLOPs at 256x256 and width 1.0.

About 1.1M parameters at width 1.0 (``width`` scales every channel count, rounded to a
multiple of 8, minimum 8). Convolutions in the 1/8 and 1/32 branches use "same" padding,
so for sizes that are multiples of 16 but not of 32 (e.g. 144) the 1/32 branch is
ceil(size/32) and the fusion upsample uses ``Resizing`` to the exact 1/8 size.

Ops used: Conv2D, DepthwiseConv2D (dilation only if ffm_dilation > 1),
BatchNormalization, ReLU / ReLU6, Add, Concatenate, AveragePooling2D,
UpSampling2D(bilinear), Resizing(bilinear) (only for non-integer factors),
Activation(sigmoid); the fused head adds nothing to this list. Nothing else (no Conv2DTranspose, no Lambda, no custom layers).
"""
from __future__ import annotations

from .._tf import keras
from ..errors import InputError
from .layers import check_prior, conv_bn, dsconv, dw_bn, inverted_residual, pyramid_pooling, resize_to, scaled, spatial

NAME = "fast-scnn"
#: head: "plain" (classifier at 1/8, the paper's) or "fused" (see the module docstring).
#: detail_stride: the fused head's resolution, 4 (default) or 2; only with head="fused".
#: prior: take the previous frame's alpha as a 4th input channel (`edgematting.prior`).
DEFAULT_OPTIONS = {"ppm_bins": (1, 2, 3, 6), "ffm_dilation": 1, "head": "plain", "detail_stride": None,
                   "prior": False}
HEADS = ("plain", "fused")
DETAIL_STRIDES = (4, 2)


def check_options(merged: dict) -> dict:
    """Validate and normalize DEFAULT_OPTIONS merged with the user's (InputError)."""
    bins = merged["ppm_bins"]
    try:
        bins = tuple(int(b) for b in bins)
    except (TypeError, ValueError):
        raise InputError(f"ppm_bins must be a list of positive integers, got {bins!r}.") from None
    if not bins or any(b < 1 for b in bins):
        raise InputError(f"ppm_bins must be a list of positive integers, got {bins!r}.")
    merged["ppm_bins"] = bins
    if int(merged["ffm_dilation"]) not in (1, 2, 4):
        raise InputError("ffm_dilation must be 1, 2 or 4.")
    merged["ffm_dilation"] = int(merged["ffm_dilation"])
    head = str(merged["head"]).strip().lower()
    if head not in HEADS:
        raise InputError(f"head must be one of {', '.join(HEADS)}, got {merged['head']!r}.")
    merged["head"] = head
    stride = merged["detail_stride"]
    if head == "plain":
        if stride is not None:
            raise InputError(
                f"detail_stride={stride!r} applies only to the fused head; add head=fused "
                "(or drop detail_stride)."
            )
    else:
        if stride is None:
            stride = DETAIL_STRIDES[0]
        if isinstance(stride, bool) or str(stride).strip() not in {str(v) for v in DETAIL_STRIDES}:
            raise InputError(
                f"detail_stride must be {' or '.join(map(str, DETAIL_STRIDES))} (the fused "
                f"head's resolution, 1/4 or 1/2), got {stride!r}."
            )
        merged["detail_stride"] = int(stride)
    merged["prior"] = check_prior(merged["prior"])
    return merged


def build(input_size, width=1.0, ppm_bins=(1, 2, 3, 6), ffm_dilation=1, head="plain", detail_stride=None,
          prior=False):
    k = keras()
    L = k.layers
    h, w = int(input_size[0]), int(input_size[1])
    c = lambda n: scaled(n, width)  # noqa: E731

    inp = L.Input(shape=(h, w, 4 if prior else 3), dtype="float32", name="image")

    # Learning to downsample (1/8).
    x = conv_bn(inp, c(32), 3, "ltd_conv1", strides=2)
    half = x
    x = dsconv(x, c(48), "ltd_ds1", strides=2)
    quarter = x
    x = dsconv(x, c(64), "ltd_ds2", strides=2)
    high = x

    # Global feature extractor (1/32).
    b = 0
    for filters, first_stride in ((64, 2), (96, 2), (128, 1)):
        for i in range(3):
            b += 1
            x = inverted_residual(x, c(filters), f"gfe_b{b}", strides=first_stride if i == 0 else 1)
    x = pyramid_pooling(x, tuple(int(v) for v in ppm_bins), "ppm", out_filters=c(128))

    # Feature fusion at 1/8.
    low = resize_to(x, spatial(high), "ffm_up")
    low = dw_bn(low, "ffm_low", dilation=int(ffm_dilation))
    low = conv_bn(low, c(128), 1, "ffm_low_pw", relu=False)
    hi = conv_bn(high, c(128), 1, "ffm_high", relu=False)
    x = L.Add(name="ffm_add")([low, hi])
    x = L.ReLU(name="ffm_relu")(x)

    # Classifier.
    x = dsconv(x, c(128), "cls_ds1")
    x = dsconv(x, c(128), "cls_ds2")
    if head == "fused":
        x = fused_head(x, half if detail_stride == 2 else quarter, width, fine=detail_stride == 2)
    else:
        x = L.Conv2D(1, 1, padding="same", use_bias=True, name="cls_logits")(x)
    x = resize_to(x, (h, w), "upsample")
    out = L.Activation("sigmoid", dtype="float32", name="alpha")(x)
    return k.Model(inp, out, name="fast_scnn")


def fused_head(x, detail, width, fine=False):
    """Decoder step from the 1/8 classifier features `x` to the resolution of `detail`
    (a first-stage feature map at 1/4, or at 1/2 with `fine`); returns 1-channel logits
    there. At 1/2 the channels are halved, so both strides cost about the same.

    Layers: head_reduce_*, head_up, head_detail_*, head_concat, head_ds_*, head_logits.
    """
    L = keras().layers
    ch = scaled(32 if fine else 64, width)
    x = conv_bn(x, ch, 1, "head_reduce")
    x = resize_to(x, spatial(detail), "head_up")
    d = conv_bn(detail, scaled(16 if fine else 32, width), 1, "head_detail")
    x = L.Concatenate(name="head_concat")([x, d])
    x = dsconv(x, ch, "head_ds")
    return L.Conv2D(1, 1, padding="same", use_bias=True, name="head_logits")(x)
