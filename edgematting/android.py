"""The Android demo's Python side: its asset bundling and the golden vectors for its Java core.

* `android_assets` copies exported TFLite models and their sidecar metadata into the app's
  assets and writes the `models.json` index the app reads (`edgematting android-assets`).
* `model_input`, `output_to_alpha`, `quantize` and `dequantize` are the single Python
  definition of what the app's plain-Java core (`android_demo/core`, package
  `dev.edgematting.core`) computes from a model's metadata. They are built on
  `edgematting.imageops` (the reference pipeline) and add only what it lacks: affine int8/uint8
  quantization, reading the contract from the sidecar dict, and output range mapping.
* `write_golden_vectors` writes test cases made with these functions; the Java JUnit tests
  (`android_demo/core/src/test`) read them and must reproduce them exactly (integer paths) or
  within `FLOAT_TOLERANCE` (float paths; in practice bit-exact).
* `validate_metadata` mirrors `ModelMetadata.java`: both reject the same bad sidecars and
  name the same offending key.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import imageops
from .errors import InputError

#: Max |Java - Python| allowed on float stages (model input floats, alpha, blur): 0, i.e.
#: bit-exact. The Java core repeats the float32 operations in numpy's order and Java 17 float
#: math is strict IEEE 754, so every stage agrees bit for bit. A looser bound (1e-6) would
#: let operation-order slips through: rewriting the resize's last step as
#: ``top + (bot - top) * wy`` moves alpha by only 6e-8.
FLOAT_TOLERANCE = 0.0
#: Integer stages (uint8/int8 input tensors, ARGB composites and cut-outs) must match exactly.
INT_TOLERANCE = 0

GOLDEN_FORMAT = "edgematting-android-golden"
INDEX_FILE = "models.json"
ROLES = ("camera", "photo")
#: Which role an architecture fills when --role is not given.
DEFAULT_ROLE = {"fast-scnn": "camera", "mattingnet": "photo"}
DTYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8}
QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}
CHANNEL_ORDERS = ("RGB", "BGR", "RGBA", "BGRA")
KNOWN_MEANINGS = ("person_probability", "alpha_matte")


# --------------------------------------------------------------------------------------
# metadata validation (mirrors ModelMetadata.java)
# --------------------------------------------------------------------------------------
class MetadataError(InputError):
    """A sidecar the app could not use; `key` is the offending key as a dotted path."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(
            f"model metadata key '{key}': {problem} (re-export the model with "
            "`edgematting convert`, which writes a valid sidecar)"
        )


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _int(d: dict, key: str, prefix: str, positive: bool = False) -> int:
    if key not in d:
        raise MetadataError(prefix + key, "missing")
    v = d[key]
    if not _is_num(v) or float(v) != math.floor(float(v)) or abs(v) > 1e9:
        raise MetadataError(prefix + key, f"must be an integer, got {v!r}")
    if positive and v <= 0:
        raise MetadataError(prefix + key, f"must be positive, got {v}")
    return int(v)


def _str(d: dict, key: str, prefix: str) -> str:
    if key not in d:
        raise MetadataError(prefix + key, "missing")
    if not isinstance(d[key], str):
        raise MetadataError(prefix + key, f"must be a string, got {d[key]!r}")
    return d[key]


def quant_params(q, key: str = "quantization", dtype: str = "int8"):
    """{"scale": s, "zero_point": z} or [s, z] -> (float32 scale, int zero_point); None -> None."""
    if q is None:
        return None
    if isinstance(q, dict):
        for k in ("scale", "zero_point"):
            if k not in q:
                raise MetadataError(f"{key}.{k}", "missing")
        s, z = q["scale"], q["zero_point"]
    elif isinstance(q, (list, tuple)) and len(q) == 2:
        s, z = q
    else:
        raise MetadataError(key, f'must be {{"scale": s, "zero_point": z}} or [s, z], got {q!r}')
    if not _is_num(s):
        raise MetadataError(f"{key}.scale", f"must be a number, got {s!r}")
    s32 = np.float32(s)
    if not (np.isfinite(s32) and s32 > 0):
        raise MetadataError(f"{key}.scale", f"must be a positive finite number, got {s!r}")
    if not _is_num(z) or float(z) != math.floor(float(z)):
        raise MetadataError(f"{key}.zero_point", f"must be an integer, got {z!r}")
    lo, hi = QRANGE.get(dtype, (-(2**31), 2**31 - 1))
    if not lo <= z <= hi:
        raise MetadataError(f"{key}.zero_point", f"{int(z)} is outside the {dtype} range")
    return s32, int(z)


def validate_metadata(meta: Any) -> dict:
    """Check a sidecar dict the way the app's Java core does; return a normalized contract.

    Raises `MetadataError` (an `InputError`) naming the offending key.
    """
    if not isinstance(meta, dict):
        raise MetadataError("(root)", "metadata must be a JSON object")
    if meta.get("format") not in (None, "edgematting-artifact"):
        raise MetadataError("format", f'expected "edgematting-artifact", got {meta["format"]!r}')
    if "format_version" not in meta:
        raise MetadataError("format_version", "missing")
    if not _is_num(meta["format_version"]) or meta["format_version"] != 1:
        raise MetadataError("format_version", f"unsupported version {meta['format_version']!r}; the app reads version 1")
    if "input" not in meta:
        raise MetadataError("input", "missing")
    inp = meta["input"]
    if not isinstance(inp, dict):
        raise MetadataError("input", f"must be an object, got {inp!r}")
    c = {
        "height": _int(inp, "height", "input.", True),
        "width": _int(inp, "width", "input.", True),
        "channels": _int(inp, "channels", "input."),
    }
    if c["channels"] not in (3, 4):
        raise MetadataError("input.channels", f"must be 3 or 4, got {c['channels']}")
    order = _str(inp, "channel_order", "input.").upper()
    if order not in CHANNEL_ORDERS:
        raise MetadataError("input.channel_order", f'unknown order "{order}"; expected one of {list(CHANNEL_ORDERS)}')
    if len(order) != c["channels"]:
        raise MetadataError("input.channel_order", f'"{order}" does not match input.channels={c["channels"]}')
    c["channel_order"] = order
    if inp.get("layout") not in (None, "NHWC"):
        raise MetadataError("input.layout", f"only NHWC is supported on Android, got {inp['layout']!r}")
    dtype = _str(inp, "dtype", "input.")
    if dtype not in DTYPES:
        raise MetadataError("input.dtype", f'unknown dtype "{dtype}"; expected float32, uint8 or int8')
    c["dtype"] = dtype
    if "normalization_in_model" not in inp:
        raise MetadataError("input.normalization_in_model", "missing")
    if not isinstance(inp["normalization_in_model"], bool):
        raise MetadataError("input.normalization_in_model", f"must be true or false, got {inp['normalization_in_model']!r}")
    c["normalization_in_model"] = inp["normalization_in_model"]
    if not c["normalization_in_model"]:
        for key, nonzero in (("mean", False), ("std", True)):
            if key not in inp:
                raise MetadataError("input." + key, "missing")
            v = inp[key]
            if not isinstance(v, list) or len(v) != 3 or not all(_is_num(e) for e in v):
                raise MetadataError("input." + key, f"must be a list of 3 numbers, got {v!r}")
            f = np.asarray(v, np.float32)
            if not np.all(np.isfinite(f)) or (nonzero and np.any(f == 0)):
                raise MetadataError("input." + key, f"must hold finite{', non-zero' if nonzero else ''} numbers, got {v!r}")
            c[key] = tuple(float(e) for e in v)
    else:
        c["mean"], c["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    q_required = dtype == "int8" or (dtype == "uint8" and not c["normalization_in_model"])
    if inp.get("quantization") is None and q_required:
        raise MetadataError("input.quantization", f'missing; a {dtype} tensor needs {{"scale", "zero_point"}}')
    c["input_quant"] = None if dtype == "float32" else quant_params(inp.get("quantization"), "input.quantization", dtype)

    if "output" not in meta:
        raise MetadataError("output", "missing")
    out = meta["output"]
    if not isinstance(out, dict):
        raise MetadataError("output", f"must be an object, got {out!r}")
    for k in ("height", "width"):
        v = _int(out, k, "output.", True)
        if v != c[k]:
            raise MetadataError(f"output.{k}", f"{v} does not match input.{k}={c[k]}")
    ch = _int(out, "channels", "output.")
    if ch != 1:
        raise MetadataError("output.channels", f"must be 1 (one alpha/probability map), got {ch}")
    odt = _str(out, "dtype", "output.")
    if odt not in DTYPES:
        raise MetadataError("output.dtype", f'unknown dtype "{odt}"; expected float32, uint8 or int8')
    c["output_dtype"] = odt
    if odt != "float32" and out.get("quantization") is None:
        raise MetadataError("output.quantization", f'missing; a {odt} tensor needs {{"scale", "zero_point"}}')
    c["output_quant"] = None if odt == "float32" else quant_params(out.get("quantization"), "output.quantization", odt)
    meaning = _str(out, "meaning", "output.")
    if meaning not in KNOWN_MEANINGS:
        raise MetadataError("output.meaning", f'unknown meaning "{meaning}"; expected one of {list(KNOWN_MEANINGS)}')
    c["meaning"] = meaning
    rng = out.get("range")
    if rng is None:
        c["range"] = (0.0, 1.0)
    else:
        if not isinstance(rng, list) or len(rng) != 2 or not all(_is_num(e) for e in rng):
            raise MetadataError("output.range", f"must be [low, high], got {rng!r}")
        lo, hi = np.float32(rng[0]), np.float32(rng[1])
        if not (hi > lo and np.isfinite(hi - lo)):
            raise MetadataError("output.range", f"high must be greater than low, got {rng!r}")
        c["range"] = (float(rng[0]), float(rng[1]))
    return c


# --------------------------------------------------------------------------------------
# the pipeline the Java core reproduces
# --------------------------------------------------------------------------------------
def quantize(x: np.ndarray, scale, zero_point: int, dtype: str) -> np.ndarray:
    """``clip(floor(x / scale + 0.5) + zero_point)`` in float32 (imageops' rounding)."""
    lo, hi = QRANGE[dtype]
    v = np.floor(np.asarray(x, np.float32) / np.float32(scale) + np.float32(0.5)).astype(np.int64)
    return np.clip(v + int(zero_point), lo, hi).astype(DTYPES[dtype])


def dequantize(q: np.ndarray, scale, zero_point: int) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32."""
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


def model_input(rgb: np.ndarray, meta: dict) -> np.ndarray:
    """Photo (HxWx3 uint8 RGB) -> the (1, h, w, c) input tensor the sidecar `meta` describes."""
    c = validate_metadata(meta)
    size = (c["height"], c["width"])
    order = c["channel_order"][:3]
    if c["dtype"] == "uint8" and c["input_quant"] is None:
        # raw pixels, normalization folded into the model: exactly imageops' uint8 path
        return imageops.to_model_input(rgb, size, input_type="uint8", channels=c["channels"], channel_order=order)
    real = imageops.to_model_input(rgb, size, c["mean"], c["std"], "float", 3, order)
    if c["channels"] == 4:
        # opaque alpha in the input's units: 255 for raw pixels, 0 when normalized (as imageops)
        fill = np.float32(255.0 if c["normalization_in_model"] else 0.0)
        real = np.concatenate([real, np.full(real.shape[:3] + (1,), fill, np.float32)], axis=-1)
    if c["dtype"] == "float32":
        return real.astype(np.float32)
    scale, zp = c["input_quant"]
    return quantize(real, scale, zp, c["dtype"])


def output_to_alpha(raw: np.ndarray, meta: dict, photo_hw: tuple[int, int]) -> np.ndarray:
    """Model output (h, w) or (1, h, w, 1) of the sidecar's dtype -> alpha at photo size."""
    c = validate_metadata(meta)
    a = np.asarray(raw)
    if c["output_dtype"] != "float32":
        scale, zp = c["output_quant"]
        a = dequantize(a, scale, zp)
    a = a.astype(np.float32)
    lo, hi = c["range"]
    if (lo, hi) != (0.0, 1.0):
        lo32, hi32 = np.float32(lo), np.float32(hi)
        a = (a - lo32) / (hi32 - lo32)
    return imageops.alpha_to_photo(a, photo_hw)


# --------------------------------------------------------------------------------------
# golden vectors
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
    """A sidecar dict in the schema of `edgematting.converters.base.artifact_metadata`."""
    from . import __version__

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
            "meaning": "person_probability" if architecture == "fast-scnn" else "alpha_matte",
            "range": list(output_range),
            "threshold": 0.5,
            "dtype": output_dtype,
            "quantization": output_quant,
        },
        "edgematting_version": __version__,
        "created": "2024-01-01T00:00:00+00:00",  # fixed: goldens must be deterministic
    }


def _schema_metadata() -> dict | None:
    """A sidecar made by the converters' own `artifact_metadata` (None if it is unavailable)."""
    try:
        from .converters.base import ExportConfig, artifact_metadata
        from .modelio import ModelSpec
    except ImportError:
        return None
    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(24, 40))
    cfg = ExportConfig(target="tflite", precision="int8", input_type="uint8", channels=4, verify=False)
    meta = artifact_metadata(spec, cfg, "fast-scnn_int8_uint8_4ch.tflite",
                             output_dtype="uint8", output_quant={"scale": 1.0 / 256.0, "zero_point": 0})
    meta["created"] = "2024-01-01T00:00:00+00:00"
    return meta


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
]


def _gradient(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255.0 * x / max(w - 1, 1)
    g = 255.0 * y / max(h - 1, 1)
    b = 127.5 + 127.5 * np.sin(x / 3.0) * np.cos(y / 4.0)
    return np.clip(np.round(np.stack([r, g, b], -1)), 0, 255).astype(np.uint8)


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

    # -- metadata files -------------------------------------------------------------------
    good_meta = [("float_rgb", _metadata(32, 32)), ("uint8_rgba", _metadata(24, 40, channels=4, dtype="uint8")),
                 ("int8_io", _metadata(24, 40, architecture="mattingnet", dtype="int8", input_quant=q_int8,
                                       output_dtype="int8", output_quant=[1.0 / 256.0, -128]))]
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


# --------------------------------------------------------------------------------------
# android-assets
# --------------------------------------------------------------------------------------
def sidecar_path(artifact: str | os.PathLike) -> Path:
    p = Path(artifact)
    return p.with_name(p.name + ".json")


def load_sidecar(artifact: str | os.PathLike) -> dict:
    """Read and validate the sidecar of a .tflite artifact for the app (InputError if unusable)."""
    p = Path(artifact)
    if not p.is_file():
        raise InputError(f"Artifact not found: {p}. Export one with `edgematting convert ... --target tflite`.")
    if p.suffix != ".tflite":
        raise InputError(f"{p} is not a .tflite file; the Android demo runs LiteRT (TFLite) models only.")
    sc = sidecar_path(p)
    if not sc.is_file():
        raise InputError(f"No metadata sidecar {sc} beside {p}. Re-export with `edgematting convert`, which writes it.")
    try:
        meta = json.loads(sc.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{sc} is not valid JSON: {e}") from e
    if not isinstance(meta, dict):
        raise InputError(f"{sc} must hold a JSON object.")
    if meta.get("target") != "tflite":
        raise MetadataError("target", f'{sc} describes a {meta.get("target")!r} artifact; the app needs "tflite"')
    try:
        validate_metadata(meta)
    except MetadataError as e:
        raise MetadataError(e.key, f"in {sc}: {str(e).split(': ', 1)[1]}") from None
    return meta


def _atomic_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def android_assets(artifacts, assets_dir: str | os.PathLike, role: str | None = None) -> dict:
    """Copy .tflite artifacts and their sidecars into the app's assets; update `models.json`.

    Each artifact's role is `role` if given (one artifact only), else derived from its
    architecture (fast-scnn -> camera, mattingnet -> photo). Everything is validated before
    anything is written; every file is copied atomically and the index is written last, so a
    failure leaves the assets as they were. Returns the index written.
    """
    from .modelio import atomic_write_json

    artifacts = [Path(a) for a in artifacts]
    if not artifacts:
        raise InputError("Give at least one .tflite artifact.")
    if role is not None and role not in ROLES:
        raise InputError(f"Unknown role '{role}'. Valid: {', '.join(ROLES)}.")
    if role is not None and len(artifacts) > 1:
        raise InputError("--role applies to a single artifact; run the command once per role.")
    plan: dict[str, tuple[Path, dict]] = {}
    for a in artifacts:
        meta = load_sidecar(a)
        r = role or DEFAULT_ROLE.get(meta.get("architecture", ""))
        if r is None:
            raise InputError(f"Cannot tell the role of {a} (architecture {meta.get('architecture')!r}); pass --role camera|photo.")
        if r in plan:
            raise InputError(f"Two artifacts for the '{r}' role: {plan[r][0]} and {a}. Give one per role.")
        plan[r] = (a, meta)

    assets = Path(assets_dir)
    index_path = assets / INDEX_FILE
    index = {"format": "edgematting-android-assets", "format_version": 1, "models": {}}
    if index_path.exists():
        try:
            old = json.loads(index_path.read_text())
            if isinstance(old, dict) and isinstance(old.get("models"), dict):
                index["models"].update(old["models"])
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # a broken index is replaced
    for r, (a, meta) in plan.items():
        _atomic_copy(a, assets / a.name)
        _atomic_copy(sidecar_path(a), assets / (a.name + ".json"))
        index["models"][r] = {
            "file": a.name,
            "metadata": a.name + ".json",
            "architecture": meta.get("architecture", ""),
            "precision": meta.get("precision", ""),
            "input_dtype": meta["input"]["dtype"],
        }
    atomic_write_json(index_path, index)
    return index
