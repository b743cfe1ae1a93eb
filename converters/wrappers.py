"""Input wrappers shared by every target: uint8 pixels and 4-channel (RGBA/BGRA) input.

The Keras model takes normalized float NHWC, 3 channels. An app often has camera bytes
or an Android ``Bitmap`` (RGBA). Rather than making each app re-implement the
normalization, we fold it into the graph: `wrap_model` returns a new functional model

    input "image" (1|None, H, W, C)
      -> [uint8]  Rescaling(1/std, -mean/std)  "input_normalize"  (casts uint8 -> float32;
                  the 4th channel's scale and offset are 0, so it never sets the range)
      -> [C == 4] Conv2D 1x1, fixed weights [I3; 0], no bias  "input_drop_alpha"
      -> the original model
      -> Activation("linear") "alpha"   (so every target names the output "alpha")

Only plain ops (Cast, Mul, Add, Conv2D) are added; all three targets convert and quantize
them (a 1x1 conv with weights exactly 0/1 quantizes losslessly per-channel, unlike a
slice, which some delegates reject). The wrapper is built at conversion time and never
saved, so it needs no custom objects.

A prior-frame model (`edgematting.prior`) already takes 4 channels, RGB + the previous
frame's alpha: it is never given the RGBA wrapper (`PriorChannelError`), and with uint8
input its 4th channel is the prior as a byte, ``round(prior * 255)``, scaled by 1/255.
"""
from __future__ import annotations

import numpy as np


def wrap_model(model, spec, input_type: str = "float", channels: int = 3, pixels_dtype: str = "uint8",
               batch_size: int | None = None):
    """Return `model` itself for float/3-channel input, else a wrapping functional model.

    pixels_dtype: dtype of the uint8-input tensor in the Keras graph. "uint8" for float
    and weight-only targets; "float32" (values 0..255) when a quantizer will calibrate the
    input range itself (TFLite full-integer: the converter then makes the input uint8 with
    scale 1, zero point 0).
    """
    from edgematting._tf import keras
    from edgematting.prior import model_channels

    prior = model_channels(spec, channels) == 4 and channels == 3  # PriorChannelError for RGBA
    if input_type == "float" and channels == 3 and batch_size is None:
        return model
    k = keras()
    L = k.layers
    h, w = spec.input_size
    dtype = pixels_dtype if input_type == "uint8" else "float32"
    inp = L.Input(shape=(h, w, 4 if prior else channels), batch_size=batch_size, dtype=dtype, name=spec.input_name)
    x = inp
    if input_type == "uint8":
        scale = [1.0 / s for s in spec.std]
        offset = [-m / s for m, s in zip(spec.mean, spec.std)]
        if channels == 4:
            # The alpha byte is multiplied by 0: it must not widen this tensor's range. (Left
            # at 0..255 beside RGB in -1..1, full-int8 quantized the tensor per-tensor at
            # scale ~1, which left RGB 3 levels: IoU 0.78 against the Keras model.)
            scale, offset = scale + [0.0], offset + [0.0]
        elif prior:  # the prior byte round(prior * 255) -> [0, 1], as the model was trained
            scale, offset = scale + [1.0 / 255.0], offset + [0.0]
        x = L.Rescaling(scale=scale, offset=offset, name="input_normalize")(x)
    if channels == 4:
        conv = L.Conv2D(3, 1, use_bias=False, name="input_drop_alpha", trainable=False)
        x = conv(x)
        kernel = np.zeros((1, 1, 4, 3), np.float32)
        kernel[0, 0, :3, :3] = np.eye(3, dtype=np.float32)
        conv.set_weights([kernel])
    elif channels != 3:
        raise ValueError(f"channels must be 3 or 4, not {channels}")
    y = model(x)
    out = L.Activation("linear", dtype="float32", name=spec.output_name)(y)
    return k.Model(inp, out, name=f"{model.name}_{input_type}_{channels}ch")
