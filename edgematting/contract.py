"""The artifact contract: the one definition of how a converted file is fed and read.

A converted artifact (``.tflite``, ``.onnx``, ``.mlpackage``) carries its metadata twice:
embedded in the file, and in its *sidecar* ``<artifact>.json`` (the same dict plus the
"conversion" and "verification" sections). Everything that feeds an artifact or reads
its output goes through this module -- converters (calibration data), runners, verify,
predict/evaluate, bench, the Android assets and the golden vectors of the Android
core -- so that a fact about the contract is written once:

* where the sidecar lives, how it is read and written (`sidecar_path`, `read_sidecar`,
  `write_sidecar`) (which target a file is: `edgematting.formats.target_of`);
* the metadata schema (`artifact_metadata`) and its validation (`validate_metadata`,
  mirrored key for key by the Android core's ``ModelMetadata.java``);
* the input mapping: pixels at model size or the Keras model's normalized input -> the
  artifact's own tensor (normalization unless folded into the model, channel order, the
  4th channel's fill, quantization, NCHW layout): `encode_pixels`, `encode_normalized`;
* the output mapping: raw tensor -> float alpha (layout, dequantization, output range):
  `decode_output`;
* the photo pipeline built on them (`model_input`, `output_to_alpha`), which the Java
  core reproduces bit for bit (float32 arithmetic in a fixed order, rounding
  ``floor(x + 0.5)``, as in `edgematting.imageops`).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import imageops
from .errors import InputError
from .formats import target_of  # noqa: F401 - part of the contract's file API
from .prior import PRIOR_ORDER, is_prior_spec, model_channels, prior_description

SIDECAR_SUFFIX = ".json"
FORMAT = "edgematting-artifact"
FORMAT_VERSION = 1
#: Sections of the sidecar JSON that are not embedded in the artifact itself.
SIDECAR_ONLY_KEYS = ("conversion", "verification")

DTYPES = {"float32": np.float32, "uint8": np.uint8, "int8": np.int8}
QRANGE = {"uint8": (0, 255), "int8": (-128, 127)}
#: "RGBA"/"BGRA": a bitmap whose 4th byte is ignored (`converters.wrappers`); "RGB+prior": the
#: 4th channel is the previous frame's alpha in [0, 1], zeros on a first frame (`edgematting.prior`)
CHANNEL_ORDERS = ("RGB", "BGR", "RGBA", "BGRA", PRIOR_ORDER)
LAYOUTS = ("NHWC", "NCHW")


# --------------------------------------------------------------------------------------
# files: sidecar and target
# --------------------------------------------------------------------------------------
def sidecar_path(artifact: str | os.PathLike) -> Path:
    """``<artifact>.json`` beside the artifact (``x.tflite`` -> ``x.tflite.json``)."""
    p = Path(artifact)
    return p.with_name(p.name + SIDECAR_SUFFIX)


def read_sidecar(artifact: str | os.PathLike, required: bool = True) -> dict | None:
    """The sidecar dict of `artifact`; None when it has none and `required` is False.

    InputError (one line, saying what to do) when it is missing and required, or when
    it is not a JSON object.
    """
    side = sidecar_path(artifact)
    if not side.is_file():
        if not required:
            return None
        raise InputError(f"No metadata sidecar {side} beside {artifact}. Re-export it with "
                         "`edgematting convert`, which writes it.")
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"{side} is not a readable JSON sidecar ({e}). Re-export the artifact "
                         "with `edgematting convert`.") from e
    if not isinstance(meta, dict):
        raise InputError(f"{side} must hold a JSON object. Re-export the artifact with `edgematting convert`.")
    return meta


def write_sidecar(artifact: str | os.PathLike, meta: dict) -> Path:
    """Write `meta` to the sidecar of `artifact` atomically; return its path."""
    from .atomic import write_json

    side = sidecar_path(artifact)
    write_json(side, meta)
    return side


# --------------------------------------------------------------------------------------
# schema
# --------------------------------------------------------------------------------------
def artifact_metadata(spec, config, filename: str, **io) -> dict[str, Any]:
    """The sidecar/embedded metadata (format_version 1) of one artifact. Apps read this.

    `spec`: the model's `ModelSpec`; `config`: its `ExportConfig`. io may override:
    input_dtype, input_quant ({"scale", "zero_point"}), output_dtype, output_quant,
    normalization_in_model.
    """
    from . import __version__

    h, w = spec.input_size
    uint8 = config.input_type == "uint8"
    prior = is_prior_spec(spec)
    channels = model_channels(spec, config.channels)  # PriorChannelError: a prior model as RGBA
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": spec.name,
        "model_version": spec.version,
        "architecture": spec.architecture,
        "target": config.target,
        "precision": config.precision,
        "file": filename,
        "input": {
            "name": spec.input_name,
            "height": h,
            "width": w,
            "channels": channels,
            "channel_order": PRIOR_ORDER if prior else "RGBA" if config.channels == 4 else spec.channel_order,
            **({"prior": prior_description()} if prior else {}),
            "layout": config.layout,
            "dtype": io.get("input_dtype", "uint8" if uint8 else "float32"),
            "mean": list(spec.mean),
            "std": list(spec.std),
            "normalization_in_model": io.get("normalization_in_model", uint8),
            "quantization": io.get("input_quant"),
        },
        "output": {
            "name": spec.output_name,
            "height": h,
            "width": w,
            "channels": 1,
            "meaning": spec.output_meaning,
            "range": list(spec.output_range),
            "threshold": spec.threshold,
            "dtype": io.get("output_dtype", "float32"),
            "quantization": io.get("output_quant"),
        },
        "edgematting_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        **({"postprocess": {"guided_filter": {"radius": int(gf.radius), "eps": float(gf.eps)}}}
           if (gf := getattr(config, "guided_filter", None)) is not None else {}),
    }


class MetadataError(InputError):
    """Metadata an app or runner cannot use; `key` is the offending key as a dotted path."""

    def __init__(self, key: str, problem: str):
        self.key = key
        super().__init__(
            f"model metadata key '{key}': {problem} (re-export the model with "
            "`edgematting convert`, which writes a valid sidecar)"
        )


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _integral(v) -> bool:
    """An int, or a finite float with no fraction (never an OverflowError: JSON may hold
    1e400, which json.loads reads as inf, or a 400-digit integer)."""
    return isinstance(v, int) or (math.isfinite(v) and v == math.floor(v))


def _int(d: dict, key: str, prefix: str, positive: bool = False) -> int:
    if key not in d:
        raise MetadataError(prefix + key, "missing")
    v = d[key]
    if not _is_num(v) or not _integral(v) or abs(v) > 1e9:
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


def _mean_std(inp: dict, required: bool):
    """The model's normalization (mean, std) from input.mean/std, checked; None if absent
    and not required."""
    vals = []
    for key, nonzero in (("mean", False), ("std", True)):
        if key not in inp:
            if required:
                raise MetadataError("input." + key, "missing")
            return None
        v = inp[key]
        if not isinstance(v, list) or len(v) != 3 or not all(_is_num(e) for e in v):
            raise MetadataError("input." + key, f"must be a list of 3 numbers, got {v!r}")
        f = np.asarray(v, np.float32)
        if not np.all(np.isfinite(f)) or (nonzero and np.any(f == 0)):
            raise MetadataError("input." + key, f"must hold finite{', non-zero' if nonzero else ''} numbers, got {v!r}")
        vals.append(tuple(float(e) for e in v))
    return tuple(vals)


def validate_metadata(meta: Any, layouts: tuple[str, ...] = LAYOUTS) -> dict:
    """Check a sidecar dict; return the normalized contract that the mappings below use.

    Raises `MetadataError` (an `InputError`) naming the offending key. The Android core
    (``ModelMetadata.java``) accepts only NHWC: `edgematting.android_assets` passes
    ``layouts=("NHWC",)``, and both reject the same files with the same key.

    The contract's ``mean``/``std`` are what the *caller* applies to pixels: the model's
    normalization, or (0, 1) when it is folded into the model; ``model_mean``/``model_std``
    are the model's own (needed to turn the Keras model's normalized input back into pixels).
    """
    if not isinstance(meta, dict):
        raise MetadataError("(root)", "metadata must be a JSON object")
    if meta.get("format") not in (None, FORMAT):
        raise MetadataError("format", f'expected "{FORMAT}", got {meta["format"]!r}')
    if "format_version" not in meta:
        raise MetadataError("format_version", "missing")
    if not _is_num(meta["format_version"]) or meta["format_version"] != FORMAT_VERSION:
        raise MetadataError("format_version",
                            f"unsupported version {meta['format_version']!r}; this reads version {FORMAT_VERSION}")
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
    c["prior"] = order == PRIOR_ORDER.upper()
    if c["prior"]:
        order = PRIOR_ORDER
        if c["channels"] != 4:
            raise MetadataError("input.channels", f'"{PRIOR_ORDER}" (RGB + the previous frame\'s alpha) needs 4 channels, '
                                f'got {c["channels"]}')
    elif order not in CHANNEL_ORDERS:
        raise MetadataError("input.channel_order", f'unknown order "{order}"; expected one of {list(CHANNEL_ORDERS)}')
    if not c["prior"] and len(order) != c["channels"]:
        raise MetadataError("input.channel_order", f'"{order}" does not match input.channels={c["channels"]}')
    c["channel_order"] = order
    layout = inp.get("layout", "NHWC")
    if layout not in layouts:
        where = "on Android" if tuple(layouts) == ("NHWC",) else "here"
        raise MetadataError("input.layout", f"only {' or '.join(layouts)} is supported {where}, got {layout!r}")
    c["layout"] = layout
    dtype = _str(inp, "dtype", "input.")
    if dtype not in DTYPES:
        raise MetadataError("input.dtype", f'unknown dtype "{dtype}"; expected float32, uint8 or int8')
    c["dtype"] = dtype
    if "normalization_in_model" not in inp:
        raise MetadataError("input.normalization_in_model", "missing")
    if not isinstance(inp["normalization_in_model"], bool):
        raise MetadataError("input.normalization_in_model", f"must be true or false, got {inp['normalization_in_model']!r}")
    c["normalization_in_model"] = inp["normalization_in_model"]
    model_norm = _mean_std(inp, required=not c["normalization_in_model"])
    if not c["normalization_in_model"]:
        c["mean"], c["std"] = model_norm
    else:
        c["mean"], c["std"] = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    c["model_mean"], c["model_std"] = model_norm if model_norm else (None, None)
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
    from .models.registry import OUTPUT_MEANINGS

    if meaning not in OUTPUT_MEANINGS:
        raise MetadataError("output.meaning", f'unknown meaning "{meaning}"; expected one of {list(OUTPUT_MEANINGS)}')
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
    thr = out.get("threshold", 0.5)
    c["threshold"] = float(thr) if _is_num(thr) else 0.5
    c["guided_filter"] = _guided_filter(meta.get("postprocess"))
    return c


def _guided_filter(post) -> imageops.GuidedFilter | None:
    """The optional ``postprocess`` section: ``{"guided_filter": {"radius": r, "eps": e}}``
    asks for `imageops.guided_upsample` of the alpha to the photo. Absent or null: none
    (sidecars written before it existed stay valid). Unknown keys inside are ignored."""
    if post is None:
        return None
    if not isinstance(post, dict):
        raise MetadataError("postprocess", f"must be an object, got {post!r}")
    gf = post.get("guided_filter")
    if gf is None:
        return None
    if not isinstance(gf, dict):
        raise MetadataError("postprocess.guided_filter", f'must be {{"radius": r, "eps": e}}, got {gf!r}')
    radius = _int(gf, "radius", "postprocess.guided_filter.", positive=True)
    if "eps" not in gf:
        raise MetadataError("postprocess.guided_filter.eps", "missing")
    eps = gf["eps"]
    try:
        with np.errstate(over="ignore"):
            e32 = np.float32(eps) if _is_num(eps) else None  # as the Java core's (float) eps
    except OverflowError:  # an integer beyond float range
        e32 = None
    if e32 is None or not (np.isfinite(e32) and e32 > 0):
        raise MetadataError("postprocess.guided_filter.eps", f"must be a positive number, got {eps!r}")
    return imageops.GuidedFilter(radius, float(eps))


def _contract(meta_or_contract) -> dict:
    if isinstance(meta_or_contract, dict) and "input_quant" in meta_or_contract and "range" in meta_or_contract:
        return meta_or_contract  # already validated
    return validate_metadata(meta_or_contract)


# --------------------------------------------------------------------------------------
# quantization
# --------------------------------------------------------------------------------------
def quantize(x: np.ndarray, scale, zero_point: int, dtype: str) -> np.ndarray:
    """``clip(floor(x / scale + 0.5) + zero_point)`` in float32 (imageops' rounding)."""
    lo, hi = QRANGE[dtype]
    v = np.floor(np.asarray(x, np.float32) / np.float32(scale) + np.float32(0.5)).astype(np.int64)
    return np.clip(v + int(zero_point), lo, hi).astype(DTYPES[dtype])


def dequantize(q: np.ndarray, scale, zero_point: int) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32."""
    return (np.asarray(q).astype(np.float32) - np.float32(zero_point)) * np.float32(scale)


# --------------------------------------------------------------------------------------
# input and output mapping
# --------------------------------------------------------------------------------------
def _prior_channel(prior, real: np.ndarray, c: dict, pixels: bool) -> np.ndarray:
    """A prior-frame model's 4th channel: `prior` ((N, H, W[, 1]) or (H, W) in [0, 1]; None:
    zeros, a first frame), times 255 and rounded when `pixels` (`_prior_in_pixels`)."""
    shape = real.shape[:-1] + (1,)
    if prior is None:
        return np.zeros(shape, np.float32)
    p = np.asarray(prior, np.float32)
    if p.size != int(np.prod(shape)):
        raise InputError(f"the prior (previous frame's alpha) has shape {p.shape}; this model takes "
                         f"{c['height']}x{c['width']} (one per image: {shape})")
    p = np.clip(p.reshape(shape), 0.0, 1.0)
    return imageops.round_to_uint8(p * np.float32(255.0)).astype(np.float32) if pixels else p


def _prior_in_pixels(c: dict) -> bool:
    """Is a prior-frame model's 4th channel on the pixel scale, ``round(prior * 255)``? Whenever
    the normalization is in the model: its input is pixels 0..255 (raw uint8, or uint8/int8
    quantized with scale 1, as LiteRT reports a uint8 pixel input), and the wrapper scales the
    prior byte by 1/255 (`converters.wrappers`)."""
    return bool(c["normalization_in_model"])


def _finish_input(real: np.ndarray, c: dict, fill, quantized: bool) -> np.ndarray:
    """Real-valued NHWC input in the artifact's channel order -> 4th channel (`fill`: a
    value, or the prior channel itself), dtype, layout."""
    if c["channels"] == 4:
        if not np.isscalar(fill):
            real = np.concatenate([real, np.asarray(fill, np.float32)], axis=-1)
        else:
            real = np.concatenate([real, np.full(real.shape[:-1] + (1,), np.float32(fill), np.float32)], axis=-1)
    if quantized and c["dtype"] != "float32":
        if c["input_quant"] is None:  # raw uint8 pixels, normalization folded into the model
            out = imageops.round_to_uint8(real)
        else:
            scale, zp = c["input_quant"]
            out = quantize(real, scale, zp, c["dtype"])
    else:
        out = real.astype(np.float32)
    if c["layout"] == "NCHW":
        out = np.transpose(out, (0, 3, 1, 2))
    return np.ascontiguousarray(out)


def _normalize(px: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(px - mean) / std`` per channel in float32, the same values as the broadcast
    expression, without numpy's slow broadcast over a last axis of 3 (1 ms at 256x256): one
    scalar pass each when the channels share mean and std (the default), else channel by
    channel."""
    if np.all(mean == mean[0]) and np.all(std == std[0]):
        real = np.subtract(px, mean[0], dtype=np.float32)
        return np.divide(real, std[0], out=real)
    real = np.empty(px.shape, np.float32)
    for k in range(px.shape[-1]):
        np.subtract(px[..., k], mean[k], out=real[..., k])
        np.divide(real[..., k], std[k], out=real[..., k])
    return real


def encode_pixels(pixels: np.ndarray, meta_or_contract, *, quantized: bool = True, prior=None) -> np.ndarray:
    """RGB pixels at model size, (N, H, W, 3) uint8 or float32 in 0..255 -> the artifact's
    input tensor: ``(pixel - mean) / std`` (or raw pixels rounded with ``floor(x + 0.5)``
    when the normalization is in the model), channel order, 4th channel (255 for pixels, 0
    when normalized), quantization and layout, exactly as the sidecar says.

    ``quantized=False`` stops before input quantization (float32 values): what a quantizer
    calibrates the float graph with.

    A prior-frame model ("RGB+prior") takes `prior` as its 4th channel: the previous frame's
    alpha at model size in [0, 1] ((N, H, W[, 1])); None feeds zeros (a first frame).
    """
    c = _contract(meta_or_contract)
    px = np.asarray(pixels, np.float32)[..., :3]
    mean = np.asarray(c["mean"], np.float32)
    std = np.asarray(c["std"], np.float32)
    if c["channel_order"].startswith("BGR"):
        px, mean, std = px[..., ::-1], mean[::-1], std[::-1]
    if c["normalization_in_model"] and c["dtype"] == "uint8" and c["input_quant"] is None:
        real = imageops.round_to_uint8(px).astype(np.float32)
    else:
        real = _normalize(px, mean, std)
    if c.get("prior"):
        return _finish_input(real, c, _prior_channel(prior, real, c, _prior_in_pixels(c)), quantized)
    return _finish_input(real, c, 255.0 if c["normalization_in_model"] else 0.0, quantized)


def encode_normalized(x: np.ndarray, meta_or_contract, *, quantized: bool = True, prior=None) -> np.ndarray:
    """The Keras model's input ((N, H, W, 3) float32, normalized as in model.json) -> the
    artifact's input tensor. When the normalization is folded into the artifact, the pixels
    are recovered as ``round_to_uint8(x * std + mean)`` (exact for inputs made from uint8
    pixels, which is what verification feeds). For a prior-frame model, the Keras input's
    4th channel is the prior (or `prior`; neither: zeros)."""
    c = _contract(meta_or_contract)
    x = np.asarray(x, np.float32)
    if c.get("prior") and prior is None and x.shape[-1] == 4:
        prior = x[..., 3:4]
    x = x[..., :3]
    if c["normalization_in_model"]:
        if c["model_mean"] is None:
            raise MetadataError("input.mean", "missing; needed to turn normalized input back into pixels")
        px = imageops.round_to_uint8(x * np.asarray(c["model_std"], np.float32)
                                     + np.asarray(c["model_mean"], np.float32)).astype(np.float32)
        real = px[..., ::-1] if c["channel_order"].startswith("BGR") else px
        fill = 255.0
    else:
        real = x[..., ::-1] if c["channel_order"].startswith("BGR") else x
        fill = 0.0
    if c.get("prior"):
        fill = _prior_channel(prior, real, c, _prior_in_pixels(c))
    return _finish_input(np.ascontiguousarray(real), c, fill, quantized)


def decode_output(raw: np.ndarray, meta_or_contract) -> np.ndarray:
    """The artifact's raw output (N, H, W, 1), (N, 1, H, W) or (H, W) -> float32 (N, H, W, 1)
    on the [0, 1] scale: dequantized and mapped from the output range (not clipped)."""
    c = _contract(meta_or_contract)
    a = np.asarray(raw)
    if a.ndim == 2:
        a = a[None, :, :, None]
    elif a.ndim == 3:
        a = a[..., None] if a.shape[-1] != 1 else a[None]
    if a.ndim == 4 and a.shape[1] == 1 and a.shape[-1] != 1:  # NCHW
        a = np.transpose(a, (0, 2, 3, 1))
    if c["output_dtype"] != "float32" and not np.issubdtype(a.dtype, np.floating):
        scale, zp = c["output_quant"]
        a = dequantize(a, scale, zp)
    a = a.astype(np.float32)
    lo, hi = c["range"]
    if (lo, hi) != (0.0, 1.0):
        lo32, hi32 = np.float32(lo), np.float32(hi)
        a = (a - lo32) / (hi32 - lo32)
    return a


# --------------------------------------------------------------------------------------
# the photo pipeline (what the Android core reproduces)
# --------------------------------------------------------------------------------------
def model_input(rgb: np.ndarray, meta: dict, prior=None) -> np.ndarray:
    """Photo (HxWx3 uint8 RGB) -> the (1, h, w, c) input tensor the sidecar `meta` describes
    (bilinear resize with half-pixel centres, then `encode_pixels`; `prior`: a prior-frame
    model's previous alpha at model size, None for zeros)."""
    c = _contract(meta)
    px = imageops.resize_bilinear(np.asarray(rgb)[..., :3], c["height"], c["width"])
    return encode_pixels(px[None], c, prior=prior)


def output_to_alpha(raw: np.ndarray, meta: dict, photo_hw: tuple[int, int], *,
                    guide: np.ndarray | None = None,
                    guided: imageops.GuidedFilter | None = None) -> np.ndarray:
    """Model output of the sidecar's dtype -> alpha at photo size, clipped to [0, 1].

    Plain bilinear upsampling (`imageops.alpha_to_photo`) unless `guided` is given: then
    the edge-aware `imageops.guided_upsample` with its radius and eps, guided by `guide`,
    the photo itself (HxWx3 uint8, of size `photo_hw`). A sidecar's own choice is
    ``validate_metadata(meta)["guided_filter"]`` (None when it asks for none).
    """
    a = decode_output(raw, _contract(meta))
    if guided is None:
        return imageops.alpha_to_photo(a[0], photo_hw)
    if guide is None:
        raise ValueError("output_to_alpha(guided=...) needs the photo as guide=")
    g = np.asarray(guide)
    if g.ndim != 3 or g.shape[:2] != tuple(photo_hw):
        raise ValueError(f"guide must be the photo, HxWx3 with HxW = {tuple(photo_hw)}, got shape {g.shape}")
    return imageops.guided_upsample(a[0, :, :, 0], g, guided.radius, guided.eps)
