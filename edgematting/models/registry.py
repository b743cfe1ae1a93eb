"""The architecture registry: what each model *is*, in one entry per architecture.

    >>> from edgematting.models.registry import get_architecture
    >>> spec = get_architecture("fast-scnn")
    >>> spec.output_meaning, spec.best_metric, spec.best_mode, spec.android_role
    ('person_probability', 'iou', 'max', 'camera')

Everything that used to branch on an architecture's name (model building and option
checks, training loss, metrics, best-checkpoint metric, the loss line in model.json, what
the output means, the Android demo's role, CLI choices and help) reads its entry here.
Adding an architecture is one builder module plus one `ArchitectureSpec`:

* the module (e.g. ``edgematting/models/my_net.py``) defines ``DEFAULT_OPTIONS`` (dict of
  the extra constructor options and their defaults), ``build(input_size, width=1.0,
  **options)`` returning a tf-keras Model (input ``image``, output ``alpha`` in [0, 1]),
  and optionally ``check_options(merged) -> merged`` to validate and normalize the
  options (raise `InputError`);
* the entry goes in `_BUILTIN` below (or `register_architecture` at run time, as the tests
  do).

Nothing here imports TensorFlow, the builder modules or the training code: the builder
module, loss factory and loss-weights class are import paths, resolved on first use.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import InputError

#: What a model's single output channel can mean -> the task that output solves.
OUTPUT_MEANINGS = {
    "person_probability": "segmentation",
    "alpha_matte": "matting",
}

#: Roles a model can fill in the Android demo (camera: live view; photo: still cut-out).
ANDROID_ROLES = ("camera", "photo")

#: Metrics training can compile in (`training.losses` builds them), with their display names.
METRICS = {
    "iou": "IoU",
    "mae": "alpha MAE",
    "sad": "SAD",
    "band_mae": "unknown-band MAE",
    "boundary_f": "boundary F",
    "edge_score": "edge score (boundary F x (1 - unknown-band MAE))",
}

BEST_MODES = ("max", "min")

#: The architecture commands use when none is given.
DEFAULT_ARCHITECTURE = "fast-scnn"


def normalize_name(name) -> str:
    """How names are compared: case, surrounding space and '_' vs '-' do not matter."""
    return str(name).strip().lower().replace("_", "-")


@dataclass(frozen=True)
class ArchitectureSpec:
    """One architecture: how to build it, train it, judge it and what its output means."""

    name: str  # canonical name, as stored in model.json and state.json
    description: str  # one line for --help
    module: str  # import path of the builder module (DEFAULT_OPTIONS, build, check_options)
    loss: str  # "module:factory"; factory(weights or None) -> loss(y_true, y_pred) -> (B,)
    loss_weights: str  # "module:Class", the loss-weights dataclass (validates loss_weights)
    loss_description: str  # model.json training.loss
    metrics: tuple[str, ...]  # compiled Keras metrics, names from METRICS, in log order
    best_metric: str  # picks the best checkpoint; one of `metrics`
    best_mode: str  # "max" | "min"
    output_meaning: str  # a key of OUTPUT_MEANINGS
    android_role: str  # default role in the Android demo, one of ANDROID_ROLES
    aliases: tuple[str, ...] = ()  # other spellings accepted on input
    # a layer of the built model giving logits at the input size that training may also
    # supervise (deep supervision, loss weight "coarse"); never an output of the exported model
    coarse_output: str | None = None

    def __post_init__(self):
        if self.name != normalize_name(self.name):
            raise ValueError(f"Architecture name {self.name!r} must be lower case with '-', not '_'.")
        object.__setattr__(self, "metrics", tuple(self.metrics))
        object.__setattr__(self, "aliases", tuple(normalize_name(a) for a in self.aliases))
        checks = (
            ("metrics", set(self.metrics) <= set(METRICS) and bool(self.metrics), tuple(METRICS)),
            ("best_metric", self.best_metric in self.metrics, self.metrics),
            ("best_mode", self.best_mode in BEST_MODES, BEST_MODES),
            ("output_meaning", self.output_meaning in OUTPUT_MEANINGS, tuple(OUTPUT_MEANINGS)),
            ("android_role", self.android_role in ANDROID_ROLES, ANDROID_ROLES),
        )
        for field_name, ok, valid in checks:
            if not ok:
                raise ValueError(
                    f"Architecture {self.name!r}: {field_name}={getattr(self, field_name)!r}; "
                    f"use {' / '.join(map(str, valid))}."
                )
        for ref in (self.loss, self.loss_weights):
            if ":" not in ref:
                raise ValueError(f"Architecture {self.name!r}: {ref!r} must be 'module:attribute'.")

    @property
    def task(self) -> str:
        """The task its output solves: "segmentation" or "matting"."""
        return OUTPUT_MEANINGS[self.output_meaning]

    @property
    def best_metric_label(self) -> str:
        return METRICS[self.best_metric]

    def load_module(self) -> ModuleType:
        """The builder module (imported now, on first use)."""
        return importlib.import_module(self.module)

    def loss_factory(self):
        return _resolve(self.loss)

    def loss_weights_class(self):
        return _resolve(self.loss_weights)


def _resolve(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_LOSSES = "edgematting.training.losses"

_BUILTIN = (
    ArchitectureSpec(
        name="fast-scnn",
        aliases=("fastscnn",),
        description="Fast-SCNN person segmentation, fast enough for a live camera",
        module="edgematting.models.fast_scnn",
        loss=f"{_LOSSES}:segmentation_loss_fn",
        loss_weights=f"{_LOSSES}:SegmentationLossWeights",
        loss_description="segmentation (bce+dice+boundary)",
        metrics=("iou", "mae", "band_mae", "boundary_f"),
        best_metric="iou",
        best_mode="max",
        output_meaning="person_probability",
        android_role="camera",
    ),
    ArchitectureSpec(
        name="mattingnet",
        aliases=("matting-net",),
        description="MMNet-style soft alpha matting with hair-level detail, for photos",
        module="edgematting.models.mattingnet",
        loss=f"{_LOSSES}:matting_loss_fn",
        loss_weights=f"{_LOSSES}:MattingLossWeights",
        loss_description="matting (alpha L1+composition+gradient+unknown-band L1+BCE+boundary BCE; "
        "the same on the coarse 1/2-res logits)",
        metrics=("mae", "sad", "iou", "band_mae", "boundary_f", "edge_score"),
        coarse_output="coarse_up",
        # chosen by its edges: whole-image MAE is dominated by the easy interior, and on
        # binary-labelled photos it rewards a hard mask over a soft edge; band MAE alone
        # ignores where the contour lies (boundary F), boundary F alone how soft it is
        best_metric="edge_score",
        best_mode="max",
        output_meaning="alpha_matte",
        android_role="photo",
    ),
)

#: canonical name -> entry, in registration order (the order choices are listed in).
REGISTRY: dict[str, ArchitectureSpec] = {spec.name: spec for spec in _BUILTIN}


def architecture_names() -> tuple[str, ...]:
    """Canonical names of the registered architectures, in registration order."""
    return tuple(REGISTRY)


def find_architecture(name) -> ArchitectureSpec | None:
    """The entry for `name` (canonical or an alias, any case, '_' for '-'), or None."""
    key = normalize_name(name)
    if key in REGISTRY:
        return REGISTRY[key]
    for spec in REGISTRY.values():
        if key in spec.aliases:
            return spec
    return None


def get_architecture(name, what: str = "architecture") -> ArchitectureSpec:
    """The entry for `name`, or InputError listing the valid names and the closest one.

    `what` is the word the message uses for the value (e.g. "model" for --model).
    """
    if isinstance(name, ArchitectureSpec):
        return name
    spec = find_architecture(name)
    if spec is not None:
        return spec
    names = architecture_names()
    close = difflib.get_close_matches(normalize_name(name), names, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise InputError(f"Unknown {what} '{name}'. Choose one of: {', '.join(names)}.{hint}")


def register_architecture(spec: ArchitectureSpec) -> ArchitectureSpec:
    """Add `spec` to the registry (ValueError if its name or an alias is already taken)."""
    taken = {n for s in REGISTRY.values() for n in (s.name, *s.aliases)}
    clash = sorted(taken & {spec.name, *spec.aliases})
    if clash:
        raise ValueError(f"Architecture name(s) already registered: {', '.join(clash)}.")
    REGISTRY[spec.name] = spec
    return spec


def unregister_architecture(name: str) -> ArchitectureSpec | None:
    """Remove an architecture added with `register_architecture`; returns its entry."""
    return REGISTRY.pop(normalize_name(name), None)


def architecture_help() -> str:
    """'fast-scnn: ...; mattingnet: ...' for a --model help text."""
    return "; ".join(f"{s.name}: {s.description}" for s in REGISTRY.values())


__all__ = [
    "ANDROID_ROLES",
    "DEFAULT_ARCHITECTURE",
    "METRICS",
    "OUTPUT_MEANINGS",
    "REGISTRY",
    "ArchitectureSpec",
    "architecture_help",
    "architecture_names",
    "find_architecture",
    "get_architecture",
    "register_architecture",
    "unregister_architecture",
]
