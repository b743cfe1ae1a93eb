"""Golden vectors for the Android demo's plain-Java core (`android_demo/core`).

`write_golden_vectors` writes test cases computed with the Python definition of the photo
pipeline (`edgematting.contract`: `model_input` (a prior-frame model's previous alpha
included, and camera streams whose every frame holds the previous frame's
``clip(decode_output(raw), 0, 1)``), `output_to_alpha` (plain and guided-filter
upsampling), `quantize`, `validate_metadata`; `edgematting.imageops`: compositing, blur,
the comic effect (`comic`, `comic_style` and its parts with their parameters), bounded decode
sizes, EXIF orientation; `edgematting.runners.tflite.check_tensor`: the
sidecar-vs-tensor quantization check); the Java JUnit tests (`android_demo/core/src/test`)
read them and must reproduce them exactly (integer paths) or within `FLOAT_TOLERANCE`
(float paths: 0, bit-exact). Used by tests/test_android_core.py, and by the Gradle build
(``python tests/android_golden.py OUT_DIR``, which `./gradlew :core:test` runs).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from edgematting import imageops
from edgematting.contract import (
    MetadataError,
    decode_output,
    model_input,
    output_to_alpha,
    quantize,
    validate_metadata,
)
from edgematting.prior import PRIOR_ORDER, prior_description
from edgematting.models.registry import get_architecture
from edgematting.runners.tflite import check_tensor

#: Max |Java - Python| allowed on float stages (model input floats, alpha, blur): 0, i.e.
#: bit-exact. The Java core repeats the float32 operations in numpy's order and Java 17 float
#: math is strict IEEE 754, so every stage agrees bit for bit. A looser bound (1e-6) would
#: let operation-order slips through: rewriting the resize's last step as
#: ``top + (bot - top) * wy`` moves alpha by only 6e-8.
FLOAT_TOLERANCE = 0.0
#: Integer stages (uint8/int8 input tensors, ARGB composites and cut-outs) must match exactly.
INT_TOLERANCE = 0

GOLDEN_FORMAT = "edgematting-android-golden"


# --------------------------------------------------------------------------------------
def _metadata(
    h: int,
    w: int,
    *,
    architecture: str = "fast-scnn",
    channels: int = 3,
    order: str | None = None,
    dtype: str = "float32",
    norm_in_model: bool | None = None,
    mean=(127.5, 127.5, 127.5),
    std=(127.5, 127.5, 127.5),
    input_quant=None,
    output_dtype: str = "float32",
    output_quant=None,
    output_range=(0.0, 1.0),
) -> dict:
    """A sidecar dict in the schema of `edgematting.contract.artifact_metadata`."""
    from edgematting import __version__

    if norm_in_model is None:
        norm_in_model = dtype == "uint8" and input_quant is None
    return {
        "format": "edgematting-artifact",
        "format_version": 1,
        "model_name": architecture,
        "model_version": "1",
        "architecture": architecture,
        "target": "tflite",
        "precision": "fp32" if dtype == "float32" else "int8",
        "file": f"{architecture}.tflite",
        "input": {
            "name": "image",
            "height": h,
            "width": w,
            "channels": channels,
            "channel_order": order or ("RGBA" if channels == 4 else "RGB"),
            "layout": "NHWC",
            "dtype": dtype,
            "mean": list(mean),
            "std": list(std),
            "normalization_in_model": norm_in_model,
            "quantization": input_quant,
        },
        "output": {
            "name": "alpha",
            "height": h,
            "width": w,
            "channels": 1,
            "meaning": get_architecture(architecture).output_meaning,
            "range": list(output_range),
            "threshold": 0.5,
            "dtype": output_dtype,
            "quantization": output_quant,
        },
        "edgematting_version": __version__,
        "created": "2024-01-01T00:00:00+00:00",  # fixed: goldens must be deterministic
    }


def _schema_metadata(prior: bool = False, **io) -> dict:
    """A sidecar made by the converters' own `contract.artifact_metadata`: a 4-channel RGBA
    bitmap model, uint8 in, uint8 out; with `prior`, a prior-frame model ("RGB+prior", 4
    channels, ``input.prior``), uint8 in as LiteRT reports it (scale 1, zero point 0) unless
    `io` says otherwise."""
    from edgematting.converters.base import ExportConfig

    from edgematting.contract import artifact_metadata
    from edgematting.modelio import ModelSpec

    spec = ModelSpec(architecture="fast-scnn", config={"prior": True} if prior else {}, input_size=(24, 40))
    cfg = ExportConfig(target="tflite", precision="int8", input_type="uint8", channels=3 if prior else 4, verify=False)
    if prior:
        io = {"input_quant": {"scale": 1.0, "zero_point": 0}, **io}
    meta = artifact_metadata(spec, cfg, "fast-scnn_int8_uint8" + ("" if prior else "_4ch") + ".tflite",
                             output_dtype="uint8", output_quant={"scale": 1.0 / 256.0, "zero_point": 0}, **io)
    meta["created"] = "2024-01-01T00:00:00+00:00"
    return meta


def _prior_metadata(h: int, w: int, **kw) -> dict:
    """A prior-frame model's sidecar (`_metadata` with channel order "RGB+prior" and
    ``input.prior``, as `contract.artifact_metadata` writes them)."""
    meta = _metadata(h, w, channels=4, order=PRIOR_ORDER, **kw)
    meta["input"]["prior"] = prior_description()
    return meta


def _prior_values(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A previous alpha at model size for the prior-channel goldens: a soft blob, values a
    little outside [0, 1] (clipped), and exact halves of a uint8 step (k + 0.5) / 255, where
    ``round(prior * 255)`` rounds half up."""
    a = _fake_alpha(rng, h, w).reshape(-1)
    k = rng.integers(0, 255, a.size // 4)
    a[: k.size] = ((k + 0.5) / 255.0).astype(np.float32)
    a[k.size: k.size + 4] = [-0.25, 1.5, 0.0, 1.0]
    return rng.permutation(a).astype(np.float32).reshape(h, w)


# imagenet-style statistics: unequal per colour, so a channel swap that forgets to swap the
# mean/std with it is caught.
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: (name, offending key, how to break a good sidecar)
BAD_METADATA = [
    ("missing_input", "input", lambda m: m.pop("input")),
    ("dtype_float64", "input.dtype", lambda m: m["input"].__setitem__("dtype", "float64")),
    ("size_mismatch", "output.height", lambda m: m["output"].__setitem__("height", m["input"]["height"] + 8)),
    ("channels_5", "input.channels", lambda m: m["input"].__setitem__("channels", 5)),
    ("missing_height", "input.height", lambda m: m["input"].pop("height")),
    ("order_vs_channels", "input.channel_order", lambda m: m["input"].__setitem__("channel_order", "RGB") or m["input"].__setitem__("channels", 4)),
    ("int8_without_quant", "input.quantization", lambda m: m["input"].update(dtype="int8", quantization=None, normalization_in_model=False)),
    ("output_dtype_unknown", "output.dtype", lambda m: m["output"].__setitem__("dtype", "int4")),
    ("output_quant_missing", "output.quantization", lambda m: m["output"].update(dtype="uint8", quantization=None)),
    ("meaning_unknown", "output.meaning", lambda m: m["output"].__setitem__("meaning", "depth")),
    ("nchw", "input.layout", lambda m: m["input"].__setitem__("layout", "NCHW")),
    ("std_zero", "input.std", lambda m: m["input"].__setitem__("std", [127.5, 0, 127.5])),
    ("missing_format_version", "format_version", lambda m: m.pop("format_version")),
    ("postprocess_not_object", "postprocess", lambda m: m.__setitem__("postprocess", [1])),
    ("guided_filter_not_object", "postprocess.guided_filter", lambda m: m.__setitem__("postprocess", {"guided_filter": 2})),
    ("guided_radius_zero", "postprocess.guided_filter.radius",
     lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 0, "eps": 1e-3}})),
    ("guided_radius_fraction", "postprocess.guided_filter.radius",
     lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 1.5, "eps": 1e-3}})),
    ("guided_eps_missing", "postprocess.guided_filter.eps", lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 2}})),
    ("guided_eps_negative", "postprocess.guided_filter.eps",
     lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 2, "eps": -0.1}})),
    ("guided_eps_underflows_float32", "postprocess.guided_filter.eps",
     lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 2, "eps": 1e-50}})),
    # a 401-digit integer: beyond float range (Java and JS read it as Infinity)
    ("guided_radius_huge", "postprocess.guided_filter.radius",
     lambda m: m.__setitem__("postprocess", {"guided_filter": {"radius": 10**400, "eps": 1e-3}})),
    ("height_huge", "input.height", lambda m: m["input"].__setitem__("height", 10**400)),
    # a prior-frame model's order needs 4 channels (RGB + the previous alpha); RGB+alpha is no order
    ("prior_3_channels", "input.channels", lambda m: m["input"].__setitem__("channel_order", "RGB+prior")),
    ("prior_misspelt", "input.channel_order",
     lambda m: m["input"].update(channels=4, channel_order="RGB+alpha")),
]

#: (h, w, max_side) for the bounded-decode sizes: the issue's 4000x3000 photo, exact powers
#: of two, one pixel over, portrait and landscape, tiny photos, and a 1-pixel-wide strip.
DECODE_SIZES = [
    (3000, 4000, 2048), (4000, 3000, 2048), (2048, 1536, 2048), (2049, 1000, 2048), (4096, 4096, 2048),
    (4097, 3, 2048), (12000, 9000, 1280), (480, 640, 1280), (1, 1, 1), (7, 5, 2), (5, 7, 3),
    (1, 9999, 100), (3024, 4032, 1024), (4032, 3024, 512), (100, 100, 99),
]

#: Tensors as LiteRT reports them, against sidecars: (name, metadata kwargs, side, tensor dtype,
#: scale, zero point). The expected verdict comes from runners.tflite.check_tensor.
TENSOR_CASES = [
    ("float_ok", {}, "input", "float32", 0.0, 0),
    ("float_vs_uint8_tensor", {}, "input", "uint8", 0.0, 0),
    ("raw_uint8_identity_ok", {"dtype": "uint8"}, "input", "uint8", 1.0, 0),
    ("raw_uint8_no_quant_ok", {"dtype": "uint8"}, "input", "uint8", 0.0, 0),
    ("raw_uint8_vs_scaled_tensor", {"dtype": "uint8"}, "input", "uint8", 0.5, 0),
    ("raw_uint8_vs_zero_point", {"dtype": "uint8"}, "input", "uint8", 1.0, 3),
    ("int8_ok", {"dtype": "int8", "input_quant": {"scale": 0.0078125, "zero_point": 3}}, "input", "int8", 0.0078125, 3),
    ("int8_scale_within_1e-6", {"dtype": "int8", "input_quant": {"scale": 0.0078125, "zero_point": 3}}, "input", "int8", 0.0078129, 3),
    ("int8_scale_differs", {"dtype": "int8", "input_quant": {"scale": 0.0078125, "zero_point": 3}}, "input", "int8", 0.0079, 3),
    ("int8_zero_point_differs", {"dtype": "int8", "input_quant": {"scale": 0.0078125, "zero_point": 3}}, "input", "int8", 0.0078125, 4),
    ("int8_tensor_unquantized", {"dtype": "int8", "input_quant": {"scale": 0.0078125, "zero_point": 3}}, "input", "int8", 0.0, 0),
    ("uint8_normalized_ok", {"dtype": "uint8", "norm_in_model": False, "input_quant": [1.0 / 127.5, 128]}, "input", "uint8",
     1.0 / 127.5, 128),
    ("int16_tensor", {"dtype": "int8", "input_quant": {"scale": 0.5, "zero_point": 0}}, "input", "int16", 0.5, 0),
    ("output_float_ok", {}, "output", "float32", 0.0, 0),
    ("output_float_vs_int8", {}, "output", "int8", 0.00390625, -128),
    ("output_uint8_ok", {"output_dtype": "uint8", "output_quant": [1.0 / 256.0, 0]}, "output", "uint8", 1.0 / 256.0, 0),
    ("output_uint8_scale_1_255", {"output_dtype": "uint8", "output_quant": [1.0 / 256.0, 0]}, "output", "uint8", 1.0 / 255.0, 0),
    ("output_int8_zero_point", {"output_dtype": "int8", "output_quant": [1.0 / 256.0, -128]}, "output", "int8", 1.0 / 256.0, -127),
    ("output_float_tensor_with_scale", {}, "output", "float32", 0.5, 0),
    ("output_large_scale_relative", {"output_dtype": "uint8", "output_quant": [2.0, 0]}, "output", "uint8", 2.0000014, 0),
    ("output_large_scale_beyond", {"output_dtype": "uint8", "output_quant": [2.0, 0]}, "output", "uint8", 2.000003, 0),
]


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    return np.clip(np.round(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


def _portrait(h: int, w: int) -> np.ndarray:
    """A photo with a sharp-edged figure (head and shoulders) over a gradient: where the
    guided filter moves the alpha's edges."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    bg = np.stack([60 + 120 * x / w, 90 + 60 * y / h, 200 - 100 * x / w], -1)
    head = ((y - 0.35 * h) / (0.18 * h)) ** 2 + ((x - 0.5 * w) / (0.16 * w)) ** 2 <= 1.0
    body = (y > 0.55 * h) & (np.abs(x - 0.5 * w) < 0.3 * w + (y - 0.55 * h) * 0.4)
    fg = np.stack([200 + 0 * x, 150 + 20 * np.sin(x / 5.0), 120 + 0 * y], -1)
    img = np.where((head | body)[..., None], fg, bg)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _fake_alpha(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth person-like blob with noise, spilling slightly outside [0, 1] (tests clipping)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    d = ((y - h * 0.55) / (h * 0.4)) ** 2 + ((x - w * 0.5) / (w * 0.3)) ** 2
    a = 1.1 / (1.0 + np.exp(6.0 * (d - 1.0))) - 0.05 + rng.normal(0, 0.05, (h, w))
    return a.astype(np.float32)


class _Writer:
    def __init__(self, out: Path):
        self.out = out
        self.cases: list[dict] = []

    def array(self, name: str, a: np.ndarray) -> dict:
        a = np.ascontiguousarray(a)
        dt = {np.dtype(np.float32): "float32", np.dtype(np.uint8): "uint8", np.dtype(np.int8): "int8"}[a.dtype]
        fname = f"{name}.bin"
        (self.out / fname).write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
        return {"file": fname, "dtype": dt, "shape": list(a.shape)}


def write_golden_vectors(out_dir: str | os.PathLike, seed: int = 0) -> Path:
    """Write golden vectors for the Java core into `out_dir`; return the manifest path.

    Every file is little-endian raw data; `manifest.json` lists each case's stage, inputs,
    sidecar metadata and expected output. Deterministic for a given seed.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w = _Writer(out)

    photos = {
        "photo_37x53": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
        "photo_64x48": rng.integers(0, 256, (64, 48, 3), dtype=np.uint8),
        "gradient_40x30": _gradient(40, 30),
        "gradient_20x16": _gradient(20, 16),  # smaller than the models: upsampling
    }
    photo_refs = {k: w.array(k, v) for k, v in photos.items()}
    backgrounds = {
        "bg_20x25": rng.integers(0, 256, (20, 25, 3), dtype=np.uint8),
        "bg_37x53": rng.integers(0, 256, (37, 53, 3), dtype=np.uint8),
    }
    bg_refs = {k: w.array(k, v) for k, v in backgrounds.items()}

    def add(stage: str, name: str, **fields):
        w.cases.append({"stage": stage, "name": name, **fields})

    # -- stage: model input --------------------------------------------------------------
    q_int8 = {"scale": 0.0078125, "zero_point": 3}
    inputs = [
        ("float_rgb", "photo_37x53", _metadata(32, 32)),
        ("float_rgba_imagenet", "photo_64x48", _metadata(24, 40, channels=4, mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("float_bgr_imagenet", "photo_64x48", _metadata(32, 32, order="BGR", mean=IMAGENET_MEAN, std=IMAGENET_STD)),
        ("float_bgra", "gradient_40x30", _metadata(24, 40, channels=4, order="BGRA")),
        ("float_raw_pixels", "photo_37x53", _metadata(24, 40, norm_in_model=True)),
        ("float_raw_rgba_upsample", "gradient_20x16", _metadata(32, 32, channels=4, norm_in_model=True)),
        ("uint8_rgb", "photo_37x53", _metadata(24, 40, dtype="uint8")),
        ("uint8_rgba", "gradient_40x30", _metadata(32, 32, channels=4, dtype="uint8")),
        ("uint8_bgr_upsample", "gradient_20x16", _metadata(24, 40, order="BGR", dtype="uint8")),
        ("uint8_bgra", "photo_37x53", _metadata(32, 32, channels=4, order="BGRA", dtype="uint8")),
        ("uint8_quant_identity", "photo_64x48", _metadata(24, 40, dtype="uint8", norm_in_model=True,
                                                           input_quant={"scale": 1.0, "zero_point": 0})),
        ("uint8_quant_normalized", "photo_64x48", _metadata(32, 32, dtype="uint8", norm_in_model=False,
                                                             input_quant=[1.0 / 127.5, 128])),
        ("int8_quant", "photo_64x48", _metadata(24, 40, dtype="int8", input_quant=q_int8)),
        ("int8_quant_rgba_imagenet", "photo_37x53", _metadata(32, 32, channels=4, dtype="int8", mean=IMAGENET_MEAN,
                                                               std=IMAGENET_STD, input_quant={"scale": 0.0187, "zero_point": -14})),
        ("int8_raw_pixels", "gradient_40x30", _metadata(24, 40, dtype="int8", norm_in_model=True,
                                                         input_quant={"scale": 1.0, "zero_point": -128})),
    ]
    schema_meta = _schema_metadata()
    if schema_meta is not None:  # the real converter schema, 4 channels uint8 in, uint8 out
        inputs.append(("schema_uint8_rgba", "photo_37x53", schema_meta))
    for name, photo, meta in inputs:
        x = model_input(photos[photo], meta)
        add("input", name, photo=photo_refs[photo], metadata=meta, expected=w.array(f"in_{name}", x[0]))

    # -- stage: model input of a prior-frame model ("RGB+prior"), with a given previous alpha --
    # contract.model_input(photo, meta, prior=): the prior clipped to [0, 1], round(prior * 255)
    # when the normalization is in the model, then quantized as the colours. prior None: zeros.
    prior_inputs = [
        ("prior_float_imagenet", "photo_64x48", _prior_metadata(24, 40, mean=IMAGENET_MEAN, std=IMAGENET_STD), True),
        ("prior_float_zeros", "photo_37x53", _prior_metadata(32, 32), False),
        ("prior_uint8_raw", "photo_37x53", _prior_metadata(24, 40, dtype="uint8"), True),
        ("prior_uint8_schema", "gradient_40x30", _schema_metadata(prior=True), True),  # scale 1, zero point 0
        ("prior_uint8_schema_zeros", "photo_64x48", _schema_metadata(prior=True), False),
        ("prior_uint8_quant_normalized", "photo_64x48", _prior_metadata(32, 32, dtype="uint8", norm_in_model=False,
                                                                         input_quant=[1.0 / 127.5, 128]), True),
        ("prior_int8_quant", "photo_64x48", _prior_metadata(24, 40, dtype="int8", input_quant=q_int8), True),
        ("prior_int8_raw_pixels", "gradient_20x16", _prior_metadata(24, 40, dtype="int8", norm_in_model=True,
                                                                     input_quant={"scale": 1.0, "zero_point": -128}), True),
    ]
    for name, photo, meta, given in prior_inputs:
        c = validate_metadata(meta)
        prior = _prior_values(rng, c["height"], c["width"]) if given else None
        x = model_input(photos[photo], meta, prior=prior)
        add("input", name, photo=photo_refs[photo], metadata=meta,
            prior=None if prior is None else w.array(f"prior_{name}", prior), expected=w.array(f"in_{name}", x[0]))

    # -- stage: a camera stream through a prior-frame model ------------------------------------
    # Frame t's input holds frame t-1's alpha at model size, clip(decode_output(raw), 0, 1) (as
    # edgematting.video keeps it); zeros on the first frame, after a frame of another size and
    # after a reset (a new stream: the Java FrameProcessor and the web page start one there).
    # Frames are (photo, reset before it).
    seq_cases = [
        ("float_imagenet_range", _prior_metadata(24, 40, mean=IMAGENET_MEAN, std=IMAGENET_STD, output_range=(-1.0, 1.0)),
         [("photo_37x53", False), ("photo_37x53", False), ("photo_37x53", False), ("gradient_40x30", False),
          ("gradient_40x30", False)]),
        ("uint8_schema", _schema_metadata(prior=True),
         [("photo_64x48", False), ("photo_64x48", False), ("gradient_20x16", False), ("gradient_20x16", False)]),
        ("int8_io", _prior_metadata(24, 40, architecture="mattingnet", dtype="int8", input_quant=q_int8,
                                    output_dtype="int8", output_quant=[1.0 / 256.0, -128]),
         [("gradient_40x30", False), ("gradient_40x30", False), ("gradient_40x30", True), ("gradient_40x30", False)]),
    ]
    for name, meta, frames in seq_cases:
        c = validate_metadata(meta)
        h, wd = c["height"], c["width"]
        steps, prior, shape = [], None, None
        for t, (photo, reset) in enumerate(frames):
            if reset or photos[photo].shape != shape:  # a new stream, or a new resolution
                prior, shape = None, photos[photo].shape
            x = model_input(photos[photo], meta, prior=prior)
            a = _fake_alpha(rng, h, wd)
            if c["range"] != (0.0, 1.0):
                lo, hi = (np.float32(v) for v in c["range"])
                raw = (a * (hi - lo) + lo).astype(np.float32)
            elif c["output_quant"] is not None:
                raw = quantize(a, *c["output_quant"], c["output_dtype"])
            else:
                raw = a
            steps.append({"photo": photo_refs[photo], "reset": reset, "zeros": prior is None,
                          "expected": w.array(f"seq_{name}_{t}_in", x[0]), "raw": w.array(f"seq_{name}_{t}_raw", raw)})
            prior = np.clip(decode_output(raw.reshape(1, h, wd, 1), c)[0], 0.0, 1.0)
        add("prior_sequence", name, metadata=meta, frames=steps)

    # -- stage: model output -> alpha at photo size ----------------------------------------
    out_cases = [
        ("float_32x32_to_37x53", "photo_37x53", _metadata(32, 32), "float32", None),
        ("float_24x40_to_64x48", "photo_64x48", _metadata(24, 40, architecture="mattingnet"), "float32", None),
        ("float_upsample_24x40_to_20x16", "gradient_20x16", _metadata(24, 40), "float32", None),
        ("uint8_32x32_to_64x48", "photo_64x48", _metadata(32, 32, output_dtype="uint8",
                                                          output_quant={"scale": 1.0 / 255.0, "zero_point": 0}), "uint8", (1.0 / 255.0, 0)),
        ("int8_24x40_to_37x53", "photo_37x53", _metadata(24, 40, architecture="mattingnet", output_dtype="int8",
                                                         output_quant=[1.0 / 256.0, -128]), "int8", (1.0 / 256.0, -128)),
        ("float_range_pm1", "gradient_40x30", _metadata(32, 32, output_range=(-1.0, 1.0)), "range", None),
    ]
    alphas: dict[str, np.ndarray] = {}
    for name, photo, meta, kind, qp in out_cases:
        h, wd = meta["output"]["height"], meta["output"]["width"]
        a = _fake_alpha(rng, h, wd)
        if kind == "range":
            raw = (a * np.float32(2.0) - np.float32(1.0)).astype(np.float32)
        elif qp is not None:
            raw = quantize(a, qp[0], qp[1], kind)
        else:
            raw = a
        alpha = output_to_alpha(raw.reshape(1, h, wd, 1), meta, photos[photo].shape[:2])
        alphas[name] = alpha
        add("alpha", name, photo=photo_refs[photo], metadata=meta, raw=w.array(f"raw_{name}", raw),
            expected=w.array(f"alpha_{name}", alpha))

    # -- stage: compositing -------------------------------------------------------------
    a37 = w.array("alpha_in_37x53", alphas["int8_24x40_to_37x53"])
    a64 = w.array("alpha_in_64x48", alphas["uint8_32x32_to_64x48"])
    a40 = w.array("alpha_in_40x30", alphas["float_range_pm1"])
    p37, p64, p40 = photos["photo_37x53"], photos["photo_64x48"], photos["gradient_40x30"]
    al37, al64, al40 = alphas["int8_24x40_to_37x53"], alphas["uint8_32x32_to_64x48"], alphas["float_range_pm1"]
    comps = [
        ("color_37x53", "photo_37x53", a37, {"type": "color", "rgb": [0, 177, 64]}, imageops.composite(p37, al37, (0, 177, 64))),
        ("color_white_40x30", "gradient_40x30", a40, {"type": "color", "rgb": [255, 255, 255]}, imageops.composite(p40, al40, (255, 255, 255))),
        ("image_resized_64x48", "photo_64x48", a64, {"type": "image", "image": bg_refs["bg_20x25"]},
         imageops.composite(p64, al64, backgrounds["bg_20x25"])),
        ("image_same_size_37x53", "photo_37x53", a37, {"type": "image", "image": bg_refs["bg_37x53"]},
         imageops.composite(p37, al37, backgrounds["bg_37x53"])),
        ("blur_default_37x53", "photo_37x53", a37, {"type": "blur", "radius": None}, imageops.composite(p37, al37, "blur")),
        ("blur_default_64x48", "photo_64x48", a64, {"type": "blur", "radius": None}, imageops.composite(p64, al64, "blur")),
        ("blur_r4_40x30", "gradient_40x30", a40, {"type": "blur", "radius": 4},
         imageops.composite(p40, al40, imageops.box_blur(p40, 4))),
        ("cutout_37x53", "photo_37x53", a37, {"type": "cutout"}, imageops.rgba_cutout(p37, al37)),
        ("cutout_64x48", "photo_64x48", a64, {"type": "cutout"}, imageops.rgba_cutout(p64, al64)),
    ]
    for name, photo, aref, bg, expected in comps:
        add("composite", name, photo=photo_refs[photo], alpha=aref, background=bg, expected=w.array(f"comp_{name}", expected))

    # -- stage: box blur alone (float) ----------------------------------------------------
    for name, photo, radius in (("r1_37x53", "photo_37x53", 1), ("r3_64x48", "photo_64x48", 3), ("r7_gradient", "gradient_40x30", 7)):
        add("blur", name, photo=photo_refs[photo], radius=radius,
            expected=w.array(f"blur_{name}", imageops.box_blur(photos[photo], radius)))

    # -- stage: guided-filter upsampling of the alpha (contract.output_to_alpha(guided=)) ------
    portrait = _portrait(128, 96)
    photo_refs["portrait_128x96"] = w.array("portrait_128x96", portrait)
    photos["portrait_128x96"] = portrait
    portrait_meta = _metadata(32, 24, architecture="mattingnet")
    portrait_meta["postprocess"] = {"guided_filter": {"radius": 1, "eps": 1e-4}}
    portrait_raw = imageops.resize_bilinear(((_portrait(128, 96)[..., 0] == 200)).astype(np.float32), 32, 24)
    guided_cases = [
        # name, photo, metadata, raw kind, GuidedFilter (None: the sidecar's postprocess)
        ("float_default_32x32_to_37x53", "photo_37x53", _metadata(32, 32), "float32", imageops.GuidedFilter()),
        ("uint8_r2_24x40_to_64x48", "photo_64x48", _metadata(24, 40, output_dtype="uint8",
                                                             output_quant={"scale": 1.0 / 255.0, "zero_point": 0}),
         "uint8", imageops.GuidedFilter(2, 1e-3)),
        ("int8_r3_downsample_24x40_to_20x16", "gradient_20x16", _metadata(24, 40, architecture="mattingnet", output_dtype="int8",
                                                                          output_quant=[1.0 / 256.0, -128]),
         "int8", imageops.GuidedFilter(3, 1e-2)),
        ("range_pm1_r1_32x32_to_40x30", "gradient_40x30", _metadata(32, 32, output_range=(-1.0, 1.0)), "range",
         imageops.GuidedFilter(1, 1e-5)),
        ("radius_beyond_image_24x40_to_37x53", "photo_37x53", _metadata(24, 40), "float32", imageops.GuidedFilter(30, 1e-3)),
        ("tiny_eps_32x32_to_40x30", "gradient_40x30", _metadata(32, 32), "float32", imageops.GuidedFilter(2, 1e-8)),
        ("portrait_4x_from_metadata_32x24_to_128x96", "portrait_128x96", portrait_meta, "portrait", None),
        # variances of 1e-3..3e-3 (on a grid far coarser than eps's last bit) make var_I + eps an
        # exact tie in float32 for many pixels: caught only when eps is rounded to float32 first
        ("eps_ties_20x24_to_40x48", "midtones_40x48", _metadata(20, 24), "float32", imageops.GuidedFilter(1, 1e-3)),
    ]
    midtones = np.random.default_rng(seed + 7).integers(80, 160, (40, 48, 3), dtype=np.uint8)
    photo_refs["midtones_40x48"] = w.array("midtones_40x48", midtones)
    photos["midtones_40x48"] = midtones
    for name, photo, meta, kind, gf in guided_cases:
        h, wd = meta["output"]["height"], meta["output"]["width"]
        if kind == "portrait":
            raw = np.clip(portrait_raw + rng.normal(0, 0.03, (h, wd)).astype(np.float32), -0.1, 1.1).astype(np.float32)
        else:
            a = _fake_alpha(rng, h, wd)
            if kind == "range":
                raw = (a * np.float32(2.0) - np.float32(1.0)).astype(np.float32)
            elif kind in ("uint8", "int8"):
                q = validate_metadata(meta)["output_quant"]
                raw = quantize(a, q[0], q[1], kind)
            else:
                raw = a
        c = validate_metadata(meta)
        use = gf if gf is not None else c["guided_filter"]
        alpha = output_to_alpha(raw.reshape(1, h, wd, 1), meta, photos[photo].shape[:2], guide=photos[photo], guided=use)
        add("guided", name, photo=photo_refs[photo], metadata=meta, raw=w.array(f"graw_{name}", raw),
            radius=None if gf is None else gf.radius, eps=None if gf is None else gf.eps,
            expected=w.array(f"guided_{name}", alpha))
        alphas[f"guided_{name}"] = alpha

    # -- stage: comic effect (imageops.comic and its parts) ---------------------------------
    # Photos of several sizes (a sharp-edged figure, noise, a gradient, a one-row strip for the
    # clamped edges), each with an alpha of its size; the parts with their parameters: the
    # defaults (COMIC_*) and others, so that a port that ignores a parameter fails.
    strip = np.random.default_rng(seed + 11).integers(0, 256, (1, 7, 3), dtype=np.uint8)
    photo_refs["strip_1x7"] = w.array("strip_1x7", strip)
    photos["strip_1x7"] = strip
    strip_alpha = np.array([[0.0, 1.0, 0.5, 0.25, 0.75, 1.0, 0.1]], np.float32)
    comic_cases = [
        # name, photo, alpha at photo size
        ("portrait_128x96", "portrait_128x96", alphas["guided_portrait_4x_from_metadata_32x24_to_128x96"]),
        ("noise_37x53", "photo_37x53", alphas["int8_24x40_to_37x53"]),
        ("noise_64x48", "photo_64x48", alphas["uint8_32x32_to_64x48"]),
        ("gradient_40x30", "gradient_40x30", alphas["float_range_pm1"]),
        ("strip_1x7", "strip_1x7", strip_alpha),
    ]
    for name, photo, alpha in comic_cases:
        p = photos[photo]
        add("comic", name, photo=photo_refs[photo], alpha=w.array(f"comic_alpha_{name}", alpha.astype(np.float32)),
            expected=w.array(f"comic_{name}", imageops.comic(p, alpha)))
        add("comic_style", name, photo=photo_refs[photo], expected=w.array(f"comic_style_{name}", imageops.comic_style(p)))
    #: edge_preserving_smooth(photo, radius, passes, sigma_range, sigma_space)
    smooth_cases = [
        ("defaults_portrait_128x96", "portrait_128x96", dict(radius=imageops.COMIC_RADIUS, passes=imageops.COMIC_PASSES,
                                                            sigma_range=imageops.COMIC_SIGMA_RANGE,
                                                            sigma_space=imageops.COMIC_SIGMA_SPACE)),
        ("r2_p1_37x53", "photo_37x53", dict(radius=2, passes=1, sigma_range=35.5, sigma_space=1.5)),
        ("r3_p2_narrow_range_40x30", "gradient_40x30", dict(radius=3, passes=2, sigma_range=8.25, sigma_space=0.7)),
        ("r1_p0_identity_20x16", "gradient_20x16", dict(radius=1, passes=0, sigma_range=20.0, sigma_space=1.0)),
        ("r2_p4_strip_1x7", "strip_1x7", dict(radius=2, passes=4, sigma_range=50.0, sigma_space=2.0)),
    ]
    smoothed = {}
    for name, photo, kw in smooth_cases:
        out_ = imageops.edge_preserving_smooth(photos[photo], **kw)
        smoothed[name] = out_
        add("comic_smooth", name, photo=photo_refs[photo], params=kw, expected=w.array(f"comic_smooth_{name}", out_))
    # quantization and outlines take float images: the smoothed photos above
    smooth_refs = {k: w.array(f"comic_smoothed_{k}", v) for k, v in smoothed.items()
                   if k in ("defaults_portrait_128x96", "r2_p1_37x53", "r3_p2_narrow_range_40x30")}
    for name, src, levels in (("levels6_portrait", "defaults_portrait_128x96", imageops.COMIC_LEVELS),
                              ("levels2_noise", "r2_p1_37x53", 2), ("levels9_gradient", "r3_p2_narrow_range_40x30", 9)):
        add("comic_quantize", name, image=smooth_refs[src], params={"levels": levels},
            expected=w.array(f"comic_quantize_{name}", imageops.quantize_levels(smoothed[src], levels)))
    for name, src, low, high in (("defaults_portrait", "defaults_portrait_128x96", imageops.COMIC_EDGE_LOW, imageops.COMIC_EDGE_HIGH),
                                 ("low10_high60.5_noise", "r2_p1_37x53", 10.0, 60.5),
                                 ("low0_high255_gradient", "r3_p2_narrow_range_40x30", 0.0, 255.0)):
        add("comic_outline", name, image=smooth_refs[src], params={"low": low, "high": high},
            expected=w.array(f"comic_outline_{name}", imageops.outline_strength(smoothed[src], low, high)))

    # -- stage: EXIF orientation (imageops.apply_exif_orientation) ------------------------
    for o in range(0, 10):  # 0 and 9: undefined / unknown -> as stored
        add("orient", f"exif_{o}", photo=photo_refs["gradient_20x16"], orientation=o,
            expected=w.array(f"orient_{o}", imageops.apply_exif_orientation(photos["gradient_20x16"], o)))

    # -- stage: bounded decode sizes (imageops.decode_sample_size / bounded_size) ----------
    for h, wd, mx in DECODE_SIZES:
        add("decode", f"{h}x{wd}_max{mx}", height=h, width=wd, max_side=mx,
            sample_size=imageops.decode_sample_size(h, wd, mx), bounded=list(imageops.bounded_size(h, wd, mx)))

    # -- stage: the model's tensors against the sidecar (runners.tflite.check_tensor) -------
    for name, kw, side, dtype, scale, zp in TENSOR_CASES:
        meta = _metadata(24, 40, **kw)
        scale = float(np.float32(scale))  # LiteRT reports a float32 scale
        try:
            check_tensor({"dtype": np.dtype(dtype), "quantization": (scale, zp)}, validate_metadata(meta), side)
            key = None
        except MetadataError as e:
            key = e.key
        add("tensor_check", name, metadata=meta, side=side, tensor_dtype=dtype, scale=scale, zero_point=zp, expected_key=key)

    # -- metadata files -------------------------------------------------------------------
    good_meta = [("float_rgb", _metadata(32, 32)), ("uint8_rgba", _metadata(24, 40, channels=4, dtype="uint8")),
                 ("guided_filter", portrait_meta),
                 ("postprocess_empty", dict(_metadata(32, 32), postprocess={})),
                 ("postprocess_null_filter", dict(_metadata(32, 32), postprocess={"guided_filter": None, "future_key": 1})),
                 ("int8_io", _metadata(24, 40, architecture="mattingnet", dtype="int8", input_quant=q_int8,
                                       output_dtype="int8", output_quant=[1.0 / 256.0, -128])),
                 ("prior_schema", _schema_metadata(prior=True)),
                 ("prior_lowercase", _prior_metadata(32, 32) | {"input": dict(_prior_metadata(32, 32)["input"],
                                                                              channel_order="rgb+PRIOR")})]
    if schema_meta is not None:
        good_meta.append(("schema", schema_meta))
    meta_list = []
    for name, m in good_meta:
        validate_metadata(m)
        fname = f"meta_good_{name}.json"
        (out / fname).write_text(json.dumps(m, indent=2) + "\n")
        meta_list.append({"file": fname, "valid": True})
    for name, key, breaker in BAD_METADATA:
        m = json.loads(json.dumps(_metadata(32, 32)))
        breaker(m)
        fname = f"meta_bad_{name}.json"
        (out / fname).write_text(json.dumps(m, indent=2) + "\n")
        meta_list.append({"file": fname, "valid": False, "key": key})
    (out / "meta_bad_not_json.json").write_text('{"format_version": 1, "input": {"height": 32,}')
    meta_list.append({"file": "meta_bad_not_json.json", "valid": False, "key": "(json)"})

    manifest = {
        "format": GOLDEN_FORMAT,
        "format_version": 1,
        "seed": seed,
        "tolerance": {"float": FLOAT_TOLERANCE, "int": INT_TOLERANCE},
        "stages": sorted({c["stage"] for c in w.cases}),
        "cases": w.cases,
        "metadata_files": meta_list,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path




if __name__ == "__main__":  # python tests/android_golden.py OUT_DIR (what `./gradlew :core:test` runs)
    import sys

    if len(sys.argv) != 2:
        sys.exit("usage: python tests/android_golden.py OUT_DIR")
    print(write_golden_vectors(sys.argv[1]))
