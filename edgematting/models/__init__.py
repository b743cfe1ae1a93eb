"""The architectures and the one function that builds them.

    >>> from edgematting.models import build_model, architecture_config
    >>> cfg = architecture_config("fast-scnn", input_size=(256, 144), width=0.5)
    >>> model = build_model("fast-scnn", **cfg)      # the same call rebuilds it later

What each architecture is (builder module, options, loss, metrics, output meaning, ...) is
one entry of the registry in `edgematting.models.registry`; `get_architecture(name)`
returns it.

Every model is a functional tf-keras Model with one float32 input ``image``
(None, H, W, 3), pixels normalized as (p - 127.5) / 127.5, and one output layer ``alpha``
(None, H, W, 1), a sigmoid in [0, 1]. Layer names are deterministic ``f"{block}_{part}"``.
Only stock Keras layers are used (see each module's docstring for the op list), so
`custom_objects()` is empty and ``.keras`` files load without it.

Input sizes are (height, width); each must be a multiple of 16 and at least 32.
"""
from __future__ import annotations

import numbers
import re
from typing import Any

from ..errors import InputError
from .registry import (
    ArchitectureSpec,
    architecture_names,
    find_architecture,
    get_architecture,
    register_architecture,
    unregister_architecture,
)

#: The built-in architectures (`architecture_names()` also lists ones registered later).
ARCHITECTURES = architecture_names()

#: Width multiplier of the "lite" variants (channels x 0.5, rounded to multiples of 8).
LITE_WIDTH = 0.5

#: Every input dimension must be a multiple of this (the deepest stride that must be exact).
SIZE_MULTIPLE = 16
MIN_SIZE = 32
MAX_SIZE = 4096


def _module(architecture: str):
    return get_architecture(architecture).load_module()


def check_architecture(architecture: str) -> str:
    """Return the canonical architecture name or raise InputError listing the valid ones."""
    return get_architecture(architecture).name


def _nearest_valid(v: int) -> str:
    lo = max(MIN_SIZE, (v // SIZE_MULTIPLE) * SIZE_MULTIPLE)
    hi = max(MIN_SIZE, lo + SIZE_MULTIPLE if lo < v else lo)
    return str(lo) if lo == hi else f"{lo} or {hi}"


def check_input_size(input_size) -> tuple[int, int]:
    """Validate and return (height, width). Accepts an int (square), "HxW" or a pair."""
    if isinstance(input_size, str):
        return parse_size(input_size)
    if isinstance(input_size, bool):
        raise InputError(f"Input size must be (height, width) integers, got {input_size!r}.")
    if isinstance(input_size, numbers.Integral):
        input_size = (input_size, input_size)
    try:
        vals = list(input_size)
    except TypeError:
        raise InputError(
            f"Input size must be (height, width) integers, got {input_size!r}."
        ) from None
    if len(vals) != 2 or not all(
        (isinstance(v, numbers.Integral) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
        for v in vals
    ):
        raise InputError(
            f"Input size must be two integers (height, width), got {input_size!r}. "
            "Example: 256x256 or 256x144."
        )
    h, w = int(vals[0]), int(vals[1])
    for label, v in (("height", h), ("width", w)):
        if v < MIN_SIZE or v > MAX_SIZE or v % SIZE_MULTIPLE:
            raise InputError(
                f"Input {label} {v} is not supported: each side must be a multiple of "
                f"{SIZE_MULTIPLE} between {MIN_SIZE} and {MAX_SIZE} (nearest valid: "
                f"{_nearest_valid(v)})."
            )
    return h, w


def parse_size(s) -> tuple[int, int]:
    """Parse "256" -> (256, 256) and "HEIGHTxWIDTH", e.g. "256x144" -> (256, 144).

    Also accepts an int or a (h, w) pair. Raises InputError for anything else, or for a
    size the models do not support (see `check_input_size`).
    """
    if isinstance(s, str):
        text = s.strip().lower()
        m = re.fullmatch(r"(\d+)\s*(?:[x,*]\s*(\d+))?", text)
        if not m:
            raise InputError(
                f"Cannot read input size '{s}'. Use HEIGHTxWIDTH (e.g. 256x144) or one "
                "number for a square (e.g. 256)."
            )
        h = int(m.group(1))
        w = int(m.group(2)) if m.group(2) else h
        return check_input_size((h, w))
    return check_input_size(s)


def check_width(width) -> float:
    try:
        wv = float(width)
    except (TypeError, ValueError):
        raise InputError(f"Width multiplier must be a number, got {width!r}.") from None
    if not (0.05 <= wv <= 4.0):
        raise InputError(
            f"Width multiplier {wv} is out of range; use 0.05-4.0 (1.0 = the paper's "
            f"channels, {LITE_WIDTH} = lite)."
        )
    return wv


def _options(arch: str, options: dict) -> dict:
    m = _module(arch)
    unknown = sorted(set(options) - set(m.DEFAULT_OPTIONS))
    if unknown:
        raise InputError(
            f"Unknown option(s) for {arch}: {', '.join(unknown)}. Valid options: "
            f"{', '.join(sorted(m.DEFAULT_OPTIONS)) or 'none'}."
        )
    merged = dict(m.DEFAULT_OPTIONS)
    merged.update(options)
    check = getattr(m, "check_options", None)
    return check(merged) if check is not None else merged


def architecture_config(architecture: str, input_size=(256, 256), width: float = 1.0, **options) -> dict:
    """The JSON-ready kwargs that rebuild a model: ``build_model(architecture, **config)``.

    Stored by training in model.json["config"]. Validates everything (InputError).
    """
    arch = check_architecture(architecture)
    h, w = check_input_size(input_size)
    merged = _options(arch, options)
    cfg: dict[str, Any] = {"input_size": [h, w], "width": check_width(width)}
    for k, v in merged.items():
        cfg[k] = list(v) if isinstance(v, tuple) else v
    return cfg


def build_model(architecture: str, input_size=(256, 256), width: float = 1.0, **options):
    """Build a fresh (randomly initialised) tf-keras model. See the module docstring."""
    arch = check_architecture(architecture)
    size = check_input_size(input_size)
    wv = check_width(width)
    merged = _options(arch, options)
    return _module(arch).build(size, width=wv, **merged)


def parse_model_options(items, flag: str = "--model-option", example: str = "head=fused") -> dict:
    """``["head=fused", "detail_stride=2", "ppm_bins=[1,2]"]`` -> a dict of model options.

    What ``--model-option KEY=VALUE`` (or another repeatable KEY=VALUE `flag`, e.g.
    ``--loss-weight``) passes. Each VALUE is read as JSON when it parses (numbers, lists,
    true/false/null), else kept as a string. Names and values are checked later, by
    `architecture_config` (InputError listing the valid options).
    """
    import json

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"{flag} {item!r}: use KEY=VALUE, e.g. {flag} {example}.")
        if key in out:
            raise InputError(f"{flag} {key} is given twice; pass each once.")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value.strip()
    return out


def options_help() -> str:
    """'fast-scnn: head=plain, ...; mattingnet: refine_channels=16' for a --model-option help."""
    from .registry import REGISTRY

    parts = []
    for spec in REGISTRY.values():
        opts = spec.load_module().DEFAULT_OPTIONS
        text = ", ".join(
            f"{k}={','.join(map(str, v)) if isinstance(v, (tuple, list)) else '-' if v is None else v}"
            for k, v in opts.items()
        )
        parts.append(f"{spec.name}: {text or 'none'}")
    return "; ".join(parts)


def custom_objects() -> dict:
    """Custom layers to pass to `load_model`: none, every layer is a stock Keras layer."""
    return {}


def count_flops(model) -> int:
    """FLOPs (2 x multiply-accumulates of conv/dense layers) at the model's input size."""
    from .summary import count_flops as _count

    return _count(model)


def model_summary(model) -> dict:
    """{"params", "trainable_params", "flops", "macs", "input_size": (h, w), "layers"}."""
    from .summary import model_summary as _summary

    return _summary(model)


def format_summary(model, per_layer: bool = False) -> str:
    from .summary import format_summary as _fmt

    return _fmt(model, per_layer=per_layer)


__all__ = [
    "ARCHITECTURES",
    "ArchitectureSpec",
    "LITE_WIDTH",
    "architecture_config",
    "build_model",
    "check_architecture",
    "check_input_size",
    "count_flops",
    "custom_objects",
    "find_architecture",
    "format_summary",
    "get_architecture",
    "model_summary",
    "options_help",
    "parse_model_options",
    "parse_size",
    "register_architecture",
    "unregister_architecture",
]
