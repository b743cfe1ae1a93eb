"""MattingNet: a soft-alpha portrait matting network for phones, in the spirit of MMNet
(Seo & Ha 2019, "Towards Real-Time Automatic Portrait Matting on Mobile Devices",
arXiv:1904.03816).

    image (H, W, 3)
    -> "stem":   Conv 3x3 s2 (1/2)
    -> "enc1":   bottleneck s2 -> 1/4, then an encoder block, dilations (1, 2)
    -> "enc2":   bottleneck s2 -> 1/8, then encoder blocks, dilations (1, 2, 4)
    -> "enc3":   bottleneck s2 -> 1/16, then encoder blocks, dilations (1, 2, 4)
    -> "enc4":   bottleneck s2 -> 1/32, then encoder blocks, dilations (1, 2)
    -> "ctx":    global average pool -> 1x1 conv -> upsample, concatenated, 1x1 conv
    -> "dec4" .. "dec1": bilinear x2 (Resizing to the exact skip size when the deeper map
                 is not exactly half of it, e.g. 144 px -> 1/32 = 5, 1/16 = 9) + 1x1 conv
                 of the encoder skip, Add, ReLU, DSConv   (1/32 -> 1/16 -> 1/8 -> 1/4 -> 1/2)
    -> "coarse": 1x1 conv -> coarse alpha logits at 1/2; "coarse_up" x2 to (H, W)
    -> "refine": Concatenate[image, coarse logits, upsampled decoder features] -> Conv 3x3
                 -> DSConv -> Conv 3x3 to 1 channel, Add to the coarse logits (a residual
                 correction at full resolution for hair-level detail)
    -> "alpha":  sigmoid

An *encoder block* (MMNet's multi-branch dilated block): for each dilation rate d, a
branch 1x1 conv (expand) -> 3x3 depthwise conv with dilation d; the branches are
concatenated and projected by a 1x1 linear bottleneck; residual Add (shapes always match
in a non-strided block). Strided steps are MobileNetV2 bottlenecks (Keras does not allow
stride and dilation > 1 together).

Ops used: Conv2D, DepthwiseConv2D (dilation 1/2/4), BatchNormalization, ReLU / ReLU6,
Add, Concatenate, AveragePooling2D, UpSampling2D(bilinear), Resizing(bilinear) (only when
a size is not an integer multiple), Activation(sigmoid). No Conv2DTranspose, no Lambda,
no custom layers.
"""
from __future__ import annotations

import numbers

from .._tf import keras
from ..errors import InputError
from .layers import check_prior, conv_bn, dsconv, dw_bn, inverted_residual, resize_to, scaled, spatial

NAME = "mattingnet"
#: prior: take the previous frame's alpha as a 4th input channel (`edgematting.prior`).
DEFAULT_OPTIONS = {"refine_channels": 16, "prior": False}


def check_options(merged: dict) -> dict:
    """Validate DEFAULT_OPTIONS merged with the user's (InputError)."""
    rc = merged["refine_channels"]
    if not isinstance(rc, numbers.Integral) or isinstance(rc, bool) or not 8 <= rc <= 64:
        raise InputError(f"refine_channels must be an integer in 8..64, got {rc!r}.")
    merged["prior"] = check_prior(merged["prior"])
    return merged

# (stage, out channels at width 1, number of encoder blocks after the strided step,
#  dilations of each encoder block, expansion of each branch)
STAGES = (
    ("enc1", 40, 1, (1, 2), 2),  # 1/4
    ("enc2", 80, 3, (1, 2, 4), 2),  # 1/8
    ("enc3", 160, 3, (1, 2, 4), 2),  # 1/16
    ("enc4", 256, 3, (1, 2), 2),  # 1/32
)
# (decoder level, encoder skip index, channels at width 1): 1/32 -> 1/16 -> ... -> 1/2
DECODER = ((4, 3, 128), (3, 2, 96), (2, 1, 64), (1, 0, 32))


def encoder_block(x, name, dilations, expansion):
    """Multi-branch dilated depthwise block with a linear bottleneck and residual Add.

    Layers: {name}_br{d}_expand_*, {name}_br{d}_dw*, {name}_concat, {name}_project_*,
    {name}_add.
    """
    L = keras().layers
    ch = int(x.shape[-1])
    branch_ch = max(8, (ch * expansion) // len(dilations) // 8 * 8)
    branches = []
    for d in dilations:
        b = conv_bn(x, branch_ch, 1, f"{name}_br{d}_expand", relu6=True)
        b = dw_bn(b, f"{name}_br{d}", dilation=d, relu6=True)
        branches.append(b)
    y = L.Concatenate(name=f"{name}_concat")(branches) if len(branches) > 1 else branches[0]
    y = conv_bn(y, ch, 1, f"{name}_project", relu=False)
    return L.Add(name=f"{name}_add")([x, y])


def build(input_size, width=1.0, refine_channels=16, prior=False):
    k = keras()
    L = k.layers
    h, w = int(input_size[0]), int(input_size[1])
    c = lambda n: scaled(n, width)  # noqa: E731

    inp = L.Input(shape=(h, w, 4 if prior else 3), dtype="float32", name="image")

    # Encoder.
    x = conv_bn(inp, c(32), 3, "stem", strides=2, relu6=True)  # 1/2
    skips = [x]
    for stage, filters, blocks, dilations, expansion in STAGES:
        x = inverted_residual(x, c(filters), f"{stage}_down", strides=2, expansion=4)
        for i in range(blocks):
            x = encoder_block(x, f"{stage}_b{i + 1}", dilations, expansion)
        skips.append(x)  # 1/4, 1/8, 1/16, 1/32
    skips.pop()  # the deepest features are the decoder input, not a skip

    # Global context at 1/32.
    fh, fw = spatial(x)
    g = L.AveragePooling2D(pool_size=(fh, fw), strides=(fh, fw), name="ctx_pool")(x)
    g = conv_bn(g, c(64), 1, "ctx_conv")
    g = resize_to(g, (fh, fw), "ctx_up")
    x = L.Concatenate(name="ctx_concat")([x, g])
    x = conv_bn(x, c(160), 1, "ctx_out")

    # Decoder: 1/32 -> 1/16 -> 1/8 -> 1/4 -> 1/2.
    for level, skip_index, filters in DECODER:
        skip = skips[skip_index]
        x = resize_to(x, spatial(skip), f"dec{level}_up")
        x = conv_bn(x, c(filters), 1, f"dec{level}_reduce", relu=False)
        s = conv_bn(skip, c(filters), 1, f"dec{level}_skip", relu=False)
        x = L.Add(name=f"dec{level}_add")([x, s])
        x = L.ReLU(name=f"dec{level}_relu")(x)
        x = dsconv(x, c(filters), f"dec{level}_ds")

    # Coarse alpha at 1/2, then refinement at full resolution.
    coarse = L.Conv2D(1, 1, padding="same", use_bias=True, name="coarse_logits")(x)
    coarse_up = resize_to(coarse, (h, w), "coarse_up")
    feat = conv_bn(x, 4, 1, "refine_feat")  # decoder features for the refiner, fixed 4 ch
    feat_up = resize_to(feat, (h, w), "refine_feat_up")
    r = L.Concatenate(name="refine_concat")([inp, coarse_up, feat_up])
    rc = max(8, int(refine_channels))
    r = conv_bn(r, rc, 3, "refine_conv1")
    r = dsconv(r, rc, "refine_ds")
    r = L.Conv2D(1, 3, padding="same", use_bias=True, name="refine_out")(r)
    logits = L.Add(name="refine_add")([coarse_up, r])
    out = L.Activation("sigmoid", dtype="float32", name="alpha")(logits)
    return k.Model(inp, out, name="mattingnet")
