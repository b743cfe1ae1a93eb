"""What one training run is: `TrainConfig` (mirrors `edgematting train`'s flags) and the
choices it validates (`Strategy`, `MixedPrecision`, `JitCompile`).

    >>> from edgematting.training import TrainConfig, train
    >>> result = train(TrainConfig(model="fast-scnn", data="synthetic", out="runs/a", epochs=5))

Nothing here imports TensorFlow; building a TrainConfig only checks the settings.
"""
from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import LITE_WIDTH, architecture_config, check_width, parse_size
from ..models.registry import DEFAULT_ARCHITECTURE, ArchitectureSpec, get_architecture
from ..teacher import TeacherOptions

#: the full-size stage of a progressive run fine-tunes at this fraction of --lr (measured:
#: 3e-3 at 128x128, then 1e-3 at 256x256; docs/experiments.md, "Edges")
PROGRESSIVE_LR_FACTOR = 1.0 / 3.0


class Strategy(str, Enum):
    """--strategy: the `tf.distribute` strategy (see `compute.make_strategy`)."""

    DEFAULT = "default"
    MIRRORED = "mirrored"
    MULTIWORKER = "multiworker"


class MixedPrecision(str, Enum):
    """--mixed-precision: the Keras dtype policy of the training model (see `compute.resolve_compute_policy`)."""

    AUTO = "auto"  # float16 on a GPU, float32 on a CPU
    OFF = "off"  # float32
    FLOAT16 = "float16"  # mixed_float16 (loss scaling added by compile)
    BFLOAT16 = "bfloat16"  # mixed_bfloat16


class JitCompile(str, Enum):
    """--jit-compile: XLA-compile the training step (see `compute.resolve_compute_policy`)."""

    AUTO = "auto"  # on with a GPU, off on a CPU
    ON = "on"
    OFF = "off"


def parse_enum(cls, value, what: str):
    """`value` as a member of the enum `cls` (a member, or its value in any case and spacing);
    otherwise InputError naming `what`, the choices and the closest one."""
    if isinstance(value, cls):
        return value
    text = str(value).strip().lower()
    for member in cls:
        if member.value == text:
            return member
    choices = [m.value for m in cls]
    close = difflib.get_close_matches(text, choices, n=1, cutoff=0.5)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise InputError(f"Unknown {what} '{value}'. Choose one of: {', '.join(choices)}.{hint}")


@dataclass
class TrainConfig:
    """Settings of one training run; mirrors `edgematting train`'s flags.

    ``batch_size`` is the global batch (split across replicas under a distribution
    strategy). ``steps_per_epoch`` sets the epoch length (for synthetic data it also sets
    how many distinct synthetic images an epoch draws: steps x batch). ``time_limit`` is
    in minutes. ``width=None`` means 1.0, or `models.LITE_WIDTH` with ``lite=True``.
    """

    model: str = DEFAULT_ARCHITECTURE  # a name from models.registry (aliases accepted)
    data: str = "synthetic"
    out: str = "runs/train"
    input_size: Any = (256, 256)
    width: float | None = None
    lite: bool = False
    epochs: int = 10
    # 8, not 16: at equal training images batch 8 gave the better model for both architectures
    # (Fast-SCNN IoU 0.961-0.968 vs 0.958 and band SAD 5.65 vs 6.33; MattingNet boundary F 0.853
    # vs 0.814: docs/experiments.md, "MattingNet vs Fast-SCNN at equal training FLOPs"), and
    # `train --minutes`' recipes use it
    batch_size: int = 8
    lr: float = 3e-3  # beat 1e-3 for both models at every budget measured (docs/experiments.md, "Edges")
    val: str | None = None
    val_ratio: float = 0.1
    steps_per_epoch: int | None = None
    seed: int = 0
    augment: bool = True
    backgrounds: str | None = None
    composite_prob: float | None = None
    skip_bad: bool = False
    strategy: Strategy | str = Strategy.DEFAULT
    time_limit: float | None = None
    resume: bool = False
    init_weights: str | None = None
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    n_synthetic_val: int = 64
    synthetic_pool: int | None = None  # None: the data pipeline's default
    loss_weights: dict | None = None
    model_options: dict = field(default_factory=dict)
    # distillation (edgematting.teacher): photos in `unlabelled` labelled by `teacher`
    teacher: str | None = None
    unlabelled: str | None = None
    distill_weight: float = 1.0
    teacher_input: str | None = None  # what a sidecar would say of a foreign teacher model
    teacher_channels: str = "RGB"
    teacher_output: str | None = None
    teacher_size: str | None = None
    teacher_edges: bool = False  # the teacher's soft matte inside the edge band of binary --data labels
    mixed_precision: MixedPrecision | str = MixedPrecision.AUTO
    jit_compile: JitCompile | str = JitCompile.AUTO
    # progressive resizing, "SIZE:EPOCHS": first EPOCHS epochs at SIZE (at `lr`), then `epochs`
    # at `input_size` from those weights at lr x PROGRESSIVE_LR_FACTOR
    progressive: str | None = None
    # at the end of the run, fit alpha' = clip((alpha - lo) / (hi - lo), 0, 1) on the validation split
    # and fold it into the exported model (`edgematting.alpha_calibration`; --no-calibrate-alpha)
    calibrate_alpha: bool = True
    # what `train --minutes N` chose and why (`training.recipes.plan_for_budget`); kept on --resume
    recipe: dict | None = None

    def __post_init__(self):
        self.model = get_architecture(self.model, what="model").name
        self.strategy = parse_enum(Strategy, self.strategy, "strategy")
        self.mixed_precision = parse_enum(MixedPrecision, self.mixed_precision, "--mixed-precision")
        self.jit_compile = parse_enum(JitCompile, self.jit_compile, "--jit-compile")
        self.input_size = parse_size(self.input_size)
        if self.lite:
            if self.width is not None and float(self.width) != LITE_WIDTH:
                raise InputError(
                    f"--lite sets width {LITE_WIDTH} but --width {self.width} was also given; "
                    "pass only one of them."
                )
            self.width = LITE_WIDTH
        self.width = check_width(1.0 if self.width is None else self.width)
        for name in ("epochs", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"--{name.replace('_', '-')} must be a positive integer, got {v!r}.")
        if self.steps_per_epoch is not None and (
            isinstance(self.steps_per_epoch, bool) or not isinstance(self.steps_per_epoch, int) or self.steps_per_epoch < 1
        ):
            raise InputError(f"--steps-per-epoch must be a positive integer, got {self.steps_per_epoch!r}.")
        if not (isinstance(self.lr, (int, float)) and 0 < self.lr < 10):
            raise InputError(f"--lr must be a positive number below 10 (e.g. 1e-3), got {self.lr!r}.")
        if not (0.0 <= float(self.val_ratio) < 1.0):
            raise InputError(f"--val-ratio must be in [0, 1), got {self.val_ratio!r}.")
        if self.time_limit is not None and not float(self.time_limit) > 0:
            raise InputError(f"--time-limit must be a positive number of minutes, got {self.time_limit!r}.")
        if self.composite_prob is not None and not (0.0 <= float(self.composite_prob) <= 1.0):
            raise InputError(f"composite_prob must be in [0, 1], got {self.composite_prob!r}.")
        if float(self.warmup_epochs) < 0 or not (0.0 <= float(self.min_lr_ratio) <= 1.0):
            raise InputError("warmup_epochs must be >= 0 and min_lr_ratio in [0, 1].")
        if self.teacher_edges and (self.teacher is None or self.data in (None, "synthetic")):
            raise InputError("--teacher-edges gives the binary labels of a --data folder the --teacher's soft "
                             "edges: pass --teacher SPEC and --data DIR.")
        if self.unlabelled is not None and self.teacher is None:
            raise InputError("--unlabelled photos need a --teacher SPEC to label them. Add --teacher SPEC.")
        if self.teacher is not None and self.unlabelled is None and not self.teacher_edges:
            raise InputError("--teacher needs --unlabelled DIR (photos it labels) or --teacher-edges (soft edges "
                             "for --data's binary labels). Add --unlabelled DIR.")
        if self.teacher is not None:
            self.teacher_options  # validates the --teacher-* flags
            if self.unlabelled is not None and not Path(self.unlabelled).is_dir():
                raise InputError(f"--unlabelled folder not found: {self.unlabelled}.")
            if not (isinstance(self.distill_weight, (int, float)) and self.distill_weight > 0):
                raise InputError(f"--distill-weight must be a positive number, got {self.distill_weight!r}.")
            if self.data == "synthetic" and self.unlabelled is not None:
                raise InputError("--unlabelled photos mix with a labelled folder (--data DIR), not with synthetic "
                                 "data; drop --data synthetic or pass a folder.")
        if self.data is None:
            if self.teacher is None:
                raise InputError("Pass --data (synthetic or a folder), or --teacher with --unlabelled.")
        else:
            self.data = str(self.data)
        if self.data not in (None, "synthetic") and not Path(self.data).is_dir():
            raise InputError(
                f"Training data folder not found: {self.data}. Pass a folder with image/ and "
                "alpha/ (or mask/) subfolders, or --data synthetic."
            )
        if self.val is not None and self.val != "synthetic" and not Path(self.val).is_dir():
            raise InputError(f"Validation folder not found: {self.val}. Pass an existing --val folder.")
        if self.backgrounds is not None and not Path(self.backgrounds).is_dir():
            raise InputError(f"Backgrounds folder not found: {self.backgrounds}.")
        if self.init_weights is not None and not Path(self.init_weights).exists():
            raise InputError(
                f"--init-weights {self.init_weights} not found. Pass a model directory "
                "(with model.keras) or a .keras / .h5 file."
            )
        if self.loss_weights is not None:
            self.loss_weights = dict(self.loss_weights)
            cls = self.spec.loss_weights_class()
            known = [f.name for f in fields(cls)]
            unknown = sorted(set(self.loss_weights) - set(known))
            if unknown:
                raise InputError(f"{self.spec.name} has no loss term {', '.join(map(repr, unknown))}. "
                                 f"Its terms: {', '.join(known)}.")
            cls(**self.loss_weights)  # validates the values
        if self.recipe is not None and not isinstance(self.recipe, dict):
            raise InputError(f"recipe must be a dict (train --minutes' record), got {self.recipe!r}.")
        if not isinstance(self.calibrate_alpha, bool):
            raise InputError(f"calibrate_alpha must be True or False, got {self.calibrate_alpha!r}.")
        self.model_options = dict(self.model_options or {})
        # Validates model options (InputError for unknown ones) without building anything.
        architecture_config(self.model, self.input_size, self.width, **self.model_options)
        if self.progressive is not None:
            size, epochs = self.progressive_stage
            architecture_config(self.model, size, self.width, **self.model_options)
            self.progressive = f"{size[0]}x{size[1]}:{epochs}"

    @property
    def progressive_stage(self) -> tuple[tuple[int, int], int]:
        """(input size, epochs) of a progressive run's first stage."""
        text = str(self.progressive)
        size, sep, epochs = text.partition(":")
        if not sep or not epochs.strip().isdigit() or int(epochs) < 1:
            raise InputError(f"--progressive takes SIZE:EPOCHS, e.g. 128:84 (84 epochs at 128x128 first), "
                             f"got {text!r}.")
        size = parse_size(size)
        h, w = self.input_size
        if size[0] > h or size[1] > w or size == (h, w):
            raise InputError(f"--progressive size {size[0]}x{size[1]} must be smaller than --input-size {h}x{w}.")
        if self.strategy is Strategy.MULTIWORKER:
            raise InputError("--progressive does not run under --strategy multiworker; run the two stages as "
                             "two runs (--input-size SMALL, then --init-weights that run).")
        return size, int(epochs)

    @property
    def architecture(self) -> str:
        return self.model

    @property
    def teacher_options(self):
        return TeacherOptions(input=self.teacher_input, channels=self.teacher_channels,
                              output=self.teacher_output, size=self.teacher_size)

    @property
    def spec(self) -> ArchitectureSpec:
        """The model's registry entry (loss, metrics, best metric, output meaning)."""
        return get_architecture(self.model)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["strategy"] = self.strategy.value
        d["mixed_precision"] = self.mixed_precision.value
        d["jit_compile"] = self.jit_compile.value
        d["input_size"] = list(self.input_size)
        return d
