"""Building blocks shared by the architectures, written with stock tf-keras layers only.

Every helper takes a ``name`` (the block) and names its layers ``f"{name}_{part}"``, so a
graph reads the same in Keras, Netron and every converted artifact. No custom layers and
no Lambda layers: ``get_config()`` / ``from_config()`` and ``.keras`` files round-trip
without ``custom_objects``.

Layers used (and therefore the only ops the converters see):

* ``Conv2D`` (1x1 and 3x3, stride 1 or 2, no bias when followed by BN)
* ``DepthwiseConv2D`` (3x3, stride 1 or 2, dilation 1/2/4; stride and dilation never both > 1)
* ``BatchNormalization`` (folded into the conv by every converter)
* ``ReLU`` (``max_value=6`` where noted; i.e. relu or relu6)
* ``Add``, ``Concatenate`` (channel axis)
* ``AveragePooling2D`` (pool == stride, ``valid``; pyramid / global pooling)
* ``UpSampling2D(interpolation="bilinear")`` for integer factors,
  ``Resizing(h, w, interpolation="bilinear")`` for non-integer ones
  (both are ``tf.image.resize`` bilinear with half-pixel centres)
* ``Activation("sigmoid")`` for the output
"""
from __future__ import annotations

from .._tf import keras

#: BatchNorm moving-average momentum. Keras' default (0.99) keeps ~37% of the initial
#: statistics after 100 steps, so a model trained for a few hundred steps (the quickstart,
#: QAT fine-tunes) predicts garbage in inference mode while its training-mode IoU looks
#: fine. 0.9 (PyTorch's 0.1) tracks the batch statistics within ~50 steps.
BN_MOMENTUM = 0.9


def make_divisible(channels: float, divisor: int = 8, minimum: int = 8) -> int:
    """Round `channels` to the nearest multiple of `divisor` (never below `minimum`,
    never more than 10% below the requested value), as in MobileNet."""
    new = max(minimum, int(channels + divisor / 2) // divisor * divisor)
    if new < 0.9 * channels:
        new += divisor
    return int(new)


def scaled(channels: int, width: float) -> int:
    """Channel count `channels` scaled by the width multiplier."""
    return make_divisible(channels * width)


def conv_bn(x, filters, kernel_size, name, strides=1, relu=True, relu6=False):
    """Conv2D (no bias) -> BN [-> ReLU/ReLU6]. Layers: {name}_conv, {name}_bn, {name}_relu."""
    L = keras().layers
    x = L.Conv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    if relu:
        x = L.ReLU(max_value=6.0 if relu6 else None, name=f"{name}_relu")(x)
    return x


def dw_bn(x, name, strides=1, dilation=1, relu=True, relu6=False):
    """3x3 DepthwiseConv2D (no bias) -> BN [-> ReLU]. Layers: {name}_dw, {name}_dwbn, {name}_dwrelu."""
    L = keras().layers
    x = L.DepthwiseConv2D(
        3,
        strides=strides,
        dilation_rate=dilation,
        padding="same",
        use_bias=False,
        name=f"{name}_dw",
    )(x)
    x = L.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_dwbn")(x)
    if relu:
        x = L.ReLU(max_value=6.0 if relu6 else None, name=f"{name}_dwrelu")(x)
    return x


def dsconv(x, filters, name, strides=1, dilation=1, relu6=False):
    """Depthwise-separable conv: 3x3 depthwise -> BN -> ReLU -> 1x1 conv -> BN -> ReLU
    (written as two layers rather than SeparableConv2D so each converter sees plain ops)."""
    x = dw_bn(x, name, strides=strides, dilation=dilation, relu6=relu6)
    return conv_bn(x, filters, 1, f"{name}_pw", relu6=relu6)


def inverted_residual(x, filters, name, strides=1, expansion=6, dilation=1):
    """MobileNetV2 bottleneck: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear
    projection, with a residual Add when input and output shapes match.

    Layers: {name}_expand_*, {name}_dw*, {name}_project_*, {name}_add.
    """
    L = keras().layers
    in_ch = int(x.shape[-1])
    h = conv_bn(x, in_ch * expansion, 1, f"{name}_expand", relu6=True)
    h = dw_bn(h, name, strides=strides, dilation=dilation, relu6=True)
    h = conv_bn(h, filters, 1, f"{name}_project", relu=False)
    if strides == 1 and in_ch == filters:
        h = L.Add(name=f"{name}_add")([x, h])
    return h


def resize_to(x, size, name):
    """Bilinear resize of `x` to spatial `size` (h, w) with one layer named `name`.

    Integer factors use UpSampling2D (what every converter maps to its native bilinear
    upsample); anything else uses Resizing to the exact target size. Returns `x` unchanged
    when it already has that size.
    """
    L = keras().layers
    h, w = int(x.shape[1]), int(x.shape[2])
    th, tw = int(size[0]), int(size[1])
    if (h, w) == (th, tw):
        return x
    if th % h == 0 and tw % w == 0 and th >= h and tw >= w:
        return L.UpSampling2D(size=(th // h, tw // w), interpolation="bilinear", name=name)(x)
    return L.Resizing(th, tw, interpolation="bilinear", name=name)(x)


def spatial(x):
    return int(x.shape[1]), int(x.shape[2])


def pyramid_pooling(x, bins, name, out_filters=None):
    """Pyramid pooling module (PSPNet / Fast-SCNN), adapted to the feature size.

    For each bin b: AveragePooling2D(pool = stride = feature_size // b) -> 1x1 conv
    (C/4) -> BN -> ReLU -> bilinear resize back; concatenate with the input; 1x1 conv to
    `out_filters`. Bins whose pool would be smaller than 2 px in both dimensions add
    nothing over the input and are skipped, as are bins giving the same pooled grid
    as an earlier one (this keeps the model valid down to 64 px inputs).

    Layers: {name}_pool{b}, {name}_b{b}_conv/_bn/_relu, {name}_up{b}, {name}_concat,
    {name}_out_*.
    """
    L = keras().layers
    fh, fw = spatial(x)
    in_ch = int(x.shape[-1])
    out_filters = out_filters or in_ch
    branch_ch = max(8, in_ch // 4)
    branches = [x]
    seen = set()
    for b in bins:
        ph, pw = max(1, fh // b), max(1, fw // b)
        if b != 1 and ph < 2 and pw < 2:
            continue
        grid = (fh // ph, fw // pw)
        if grid in seen:
            continue
        seen.add(grid)
        p = L.AveragePooling2D(pool_size=(ph, pw), strides=(ph, pw), padding="valid", name=f"{name}_pool{b}")(x)
        p = conv_bn(p, branch_ch, 1, f"{name}_b{b}")
        p = resize_to(p, (fh, fw), f"{name}_up{b}")
        branches.append(p)
    y = L.Concatenate(name=f"{name}_concat")(branches)
    return conv_bn(y, out_filters, 1, f"{name}_out")


def check_prior(value) -> bool:
    """The ``prior`` option (the previous frame's alpha as a 4th input channel, see
    `edgematting.prior`): true/false, also as a string (``--model-option prior=true``)."""
    from ..errors import InputError

    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", "none"):
        return False
    raise InputError(f"prior must be true or false (the previous frame's alpha as a 4th input channel), got {value!r}.")
