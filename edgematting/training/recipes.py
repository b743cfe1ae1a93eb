"""The best measured training recipe for a time budget: `edgematting train --minutes N`.

One table, `RECIPES`: per architecture and budget band, the batch, learning rate, epoch
length and progressive stages that docs/experiments.md found best, each entry naming the
section its evidence comes from. A band the experiments did not cover says so
(``measured=False``) and keeps the measured recipe unchanged, only with more (or fewer)
epochs: the cosine schedule is stretched over the budget, nothing else is guessed.

The budget is counted in training images at the input size, the number a run can train in
its minutes on this machine (a short probe measures images/s, `measure_images_per_second`,
the same probe `edgematting quickstart` sizes its run with), scaled to 256x256 pixels so
one table serves every input size:

    >>> plan = plan_for_budget(cfg, minutes=20, given=set())   # cfg: a TrainConfig
    >>> plan.config.epochs, plan.config.progressive, plan.config.recipe["band"]

`plan_for_budget` returns a new TrainConfig with epochs, steps per epoch, batch, lr,
progressive stage and ``time_limit`` (the hard stop) set, and ``recipe``, the record
written to state.json and model.json. Flags the user gave (``given``) win over the recipe.

Nothing here imports TensorFlow at import time (the probe does, when called).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

from ..errors import InputError

#: share of the budget the training steps may use; validation estimates aside, the rest is
#: set-up, checkpoints, the export and the alpha calibration (quickstart's figure)
TRAIN_SHARE = 0.85
#: a validation image costs about a third of a training image (forward pass only)
VAL_SPEEDUP = 3.0
#: fixed cost of an epoch's end besides validation: checkpoint, best weights, history, curves.png
EPOCH_OVERHEAD_S = 1.0
#: the measured recipes ran 96 (MattingNet) and 120 (Fast-SCNN) epochs of 25 steps; a longer
#: budget lengthens the epochs instead, so validation and checkpoints stay a small share
MAX_EPOCHS = 120
#: the probe: untimed warm-up steps, then timed steps (what quickstart always used)
PROBE_STEPS, PROBE_WARMUP = 3, 1
#: the run's set-up (model, data, tracing the training and validation steps in its first
#: epoch) costs about this many times what the probe took: `train --minutes 2` on a loaded
#: 2-core machine spent 76 s probing and 126 s in a first epoch of one step + validation
SETUP_PROBES = 2.0
#: budgets are counted in images of this many pixels (the size every recipe was measured at)
REFERENCE_PIXELS = 256 * 256
EXPERIMENTS = "docs/experiments.md"
SECTION_EQUAL_FLOPS = "MattingNet vs Fast-SCNN at equal training FLOPs"
SECTION_QUICKSTART = "Quickstart"
SECTION_BUDGET = "The best recipe within a budget"


@dataclass(frozen=True)
class Recipe:
    """One row of the table: how to train `architecture` when the budget buys fewer than
    `max_images` 256x256-equivalent training images (None: no upper bound)."""

    architecture: str
    band: str  # "short", "measured" or "long"
    max_images: int | None
    batch_size: int
    lr: float  # peak; a progressive run's second stage runs at lr x config.PROGRESSIVE_LR_FACTOR
    measured: bool  # False: the band was not measured; the measured recipe, with the epochs scaled
    sources: tuple[str, ...]  # sections of docs/experiments.md
    evidence: str
    steps_per_epoch: int = 25
    progressive_scale: float | None = None  # first stage at this fraction of the input size
    progressive_ratio: float = 0.0  # first-stage epochs per second-stage epoch
    measured_images: int = 0  # the budget (256x256-equivalent images) the recipe was measured at

    @property
    def progressive(self) -> bool:
        return self.progressive_scale is not None


_FS_EVIDENCE = ("3,000 steps x batch 8 at 256x256 (24,000 images), lr 3e-3: held-out IoU 0.961-0.968, "
                "boundary F 0.846-0.879 over three data seeds; batch 16 gave 0.958 / 0.855 and a worse "
                "band SAD (6.33 vs 5.65), lr 1e-3 0.951 / 0.817, progressive resizing 0.832-0.853")
_MN_EVIDENCE = ("84 epochs x 25 steps x batch 8 at 128x128, then 12 at 256x256 (6,600 256x256-equivalent "
                "images), lr 3e-3 then 1e-3: IoU 0.971-0.973, boundary F 0.878-0.883 over three "
                "seeds; before deep supervision and OHEM: one stage 0.766, two stages 0.814 at batch 16, 0.853 at "
                "batch 8")
_SHORT = "below half the measured budget: the measured recipe with fewer epochs"
_LONG = ("beyond twice the measured budget (e.g. 8 hours): the measured recipe with more "
         "(and from 120 on, longer) epochs, the cosine decay stretched over the budget")

#: the table `train --minutes` picks from, first matching band per architecture
RECIPES: tuple[Recipe, ...] = (
    Recipe("fast-scnn", "short", 12_000, 8, 3e-3, False, (SECTION_EQUAL_FLOPS, SECTION_QUICKSTART, SECTION_BUDGET),
           f"{_SHORT}; the 10-minute quickstart (batch 16, lr 3e-3) reached IoU 0.849; "
           "at 8 minutes (128x128) it beat --time-limit 8 with the old defaults: SAD 44.5 vs 51.1, "
           "boundary F 0.555 vs 0.517", measured_images=24_000),
    Recipe("fast-scnn", "measured", 48_000, 8, 3e-3, True, (SECTION_EQUAL_FLOPS,), _FS_EVIDENCE,
           measured_images=24_000),
    Recipe("fast-scnn", "long", None, 8, 3e-3, False, (SECTION_EQUAL_FLOPS,), _LONG, measured_images=24_000),
    Recipe("mattingnet", "short", 3_300, 8, 3e-3, False, (SECTION_EQUAL_FLOPS,),
           _SHORT, progressive_scale=0.5,
           progressive_ratio=7.0, measured_images=6_600),
    Recipe("mattingnet", "measured", 13_200, 8, 3e-3, True, (SECTION_EQUAL_FLOPS,), _MN_EVIDENCE,
           progressive_scale=0.5, progressive_ratio=7.0, measured_images=6_600),
    Recipe("mattingnet", "long", None, 8, 3e-3, False, (SECTION_EQUAL_FLOPS,), _LONG,
           progressive_scale=0.5, progressive_ratio=7.0, measured_images=6_600),
)


def recipes_for(architecture: str) -> list[Recipe]:
    rows = [r for r in RECIPES if r.architecture == architecture]
    if not rows:
        raise InputError(f"No --minutes recipe for {architecture}; pass --epochs and --time-limit instead.")
    return rows


def pick_recipe(architecture: str, images: float) -> Recipe:
    """The entry of `architecture` whose band holds a budget of `images` 256x256-equivalent images."""
    for r in recipes_for(architecture):
        if r.max_images is None or images < r.max_images:
            return r
    return recipes_for(architecture)[-1]  # pragma: no cover - the last band is open


def check_minutes(minutes, flag: str = "--minutes") -> float:
    """`minutes` as a float, or InputError for 0, negative, NaN, infinite or non-numbers."""
    try:
        m = float(minutes)
    except (TypeError, ValueError):
        raise InputError(f"{flag} takes a number of minutes, e.g. {flag} 20; got {minutes!r}.") from None
    if not math.isfinite(m) or m <= 0:
        raise InputError(f"{flag} must be a positive number of minutes, e.g. {flag} 20; got {minutes!r}.")
    return m


# -- sizing, shared with quickstart -------------------------------------------------------
def measure_images_per_second(architecture: str, input_size, batch_size: int, width: float = 1.0,
                              model_options: dict | None = None, policy: str = "float32",
                              jit_compile: bool = False) -> float:
    """Training images/s of `architecture` on this machine: a few steps on one in-memory
    batch (`throughput.measure_training_details`), what `quickstart` and `train --minutes`
    size their runs with. The input pipeline is not in it (it is not the bottleneck on a CPU:
    docs/experiments.md, Training speed on a CPU)."""
    from .throughput import measure_training_details

    return measure_training_details(architecture, input_size, batch_size, steps=PROBE_STEPS, width=width,
                                    warmup=PROBE_WARMUP, policy=policy, jit_compile=jit_compile,
                                    model_options=model_options)["images_per_second"]


def epoch_seconds(images_per_second: float, steps_per_epoch: int, batch_size: int, val_images: int = 0,
                  overhead_s: float = 0.0) -> float:
    """Estimated seconds of one epoch: its steps, its validation pass and its end-of-epoch work."""
    ips = max(float(images_per_second), 1e-9)
    return steps_per_epoch * batch_size / ips + val_images / (VAL_SPEEDUP * ips) + overhead_s


def epochs_for_budget(seconds: float, images_per_second: float, steps_per_epoch: int, batch_size: int, *,
                      min_epochs: int = 2, val_images: int = 0, overhead_s: float = 0.0,
                      share: float = TRAIN_SHARE) -> int:
    """How many epochs fit in `seconds` (their `share`; the rest is set-up and the export), at
    least `min_epochs`. quickstart sizes its run with this, as `plan_for_budget` does."""
    per_epoch = epoch_seconds(images_per_second, steps_per_epoch, batch_size, val_images, overhead_s)
    return max(int(min_epochs), int(seconds * share // per_epoch))


# -- the plan ------------------------------------------------------------------------------
@dataclass
class Plan:
    config: object  # the TrainConfig to run
    record: dict = field(default_factory=dict)  # == config.recipe

    def lines(self) -> list[str]:
        return describe(self.record)


def describe(record: dict) -> list[str]:
    """One or two lines saying what `train --minutes` chose (and which flags overrode it)."""
    r = record
    prog = r.get("progressive")
    stages = (f"{prog.split(':')[1]} epochs at {prog.split(':')[0]}, then {r['epochs']} at {r['input_size']} "
              "(at a third of the lr)"
              if prog else f"{r['epochs']} epochs at {r['input_size']}")
    lines = [
        f"recipe for {r['minutes']:g} min ({r['architecture']}, {r['band']} band, "
        f"{'measured' if r['measured'] else 'extrapolated'}: {EXPERIMENTS}, {'; '.join(r['sources'])}): "
        f"{stages} of {r['steps_per_epoch']} step{'s' if r['steps_per_epoch'] != 1 else ''} x batch "
        f"{r['batch_size']}, lr {r['lr']:g}; "
        f"{r['images_per_second']:.1f} images/s here -> ~{r['budget_images']:,.0f} 256x256 images in about "
        f"{r['estimated_minutes']:.1f} min; time limit {r['time_limit']:.2f} min (what the probe left)"
    ]
    extra = []
    if r.get("overridden"):
        extra.append("your flags win over the recipe: " + ", ".join(
            f"{k} {v['yours']} (recipe: {v['recipe']})" for k, v in r["overridden"].items()))
    extra += list(r.get("notes") or [])
    if extra:
        lines.append("; ".join(extra))
    return lines


def _low_size(size, scale: float):
    """`size` x `scale`, rounded down to multiples of 16; None when that is not smaller or < 32."""
    h, w = (max(16, int(v * scale) // 16 * 16) for v in size)
    if (h, w) == tuple(size) or min(h, w) < 32:
        return None
    return h, w


def _valid_size(cfg, size) -> bool:
    """Whether `cfg`'s architecture builds at `size` (a first stage's input size)."""
    from ..models import architecture_config

    try:
        architecture_config(cfg.model, size, cfg.width, **cfg.model_options)
    except InputError:
        return False
    return True


def _validation_images(cfg) -> int:
    """About how many images each epoch validates on (for the time estimate)."""
    from pathlib import Path

    if cfg.val == "synthetic" or (cfg.val is None and cfg.data == "synthetic"):
        return int(cfg.n_synthetic_val)
    try:
        from ..data.io import list_images

        if cfg.val:
            return len(list_images(Path(cfg.val) / "image"))
        if cfg.data:
            return int(round(len(list_images(Path(cfg.data) / "image")) * float(cfg.val_ratio)))
    except Exception:  # an estimate only; the data pipeline reports bad folders itself
        return 0
    return 0


_FLAGS = {"batch_size": "--batch-size", "lr": "--lr", "epochs": "--epochs", "steps_per_epoch": "--steps-per-epoch",
          "progressive": "--progressive"}


def plan_for_budget(cfg, minutes: float, given=frozenset(), *, measure=None, started: float | None = None,
                    clock=time.monotonic) -> Plan:
    """`cfg` (a TrainConfig) with the recipe for `minutes` applied: epochs, steps per epoch,
    batch, lr and progressive stage sized so the run ends within the budget, ``time_limit``
    as the hard stop and ``recipe`` recording the choice. `given`: the TrainConfig fields the
    user set (they win). `measure(architecture, input_size, batch_size, width, model_options,
    policy, jit_compile) -> images/s` defaults to `measure_images_per_second`; `started`
    (a `clock()` reading, by default time.monotonic()) is when the budget began, by default now."""
    from .compute import resolve_compute_policy

    started = clock() if started is None else started
    minutes = check_minutes(minutes)
    given = set(given)
    if cfg.time_limit is not None and "time_limit" in given:
        raise InputError("--minutes sets the time limit itself; pass --minutes or --time-limit, not both.")
    measure = measure or measure_images_per_second
    compute = resolve_compute_policy(cfg.mixed_precision, cfg.jit_compile)
    size = tuple(cfg.input_size)
    scale = size[0] * size[1] / REFERENCE_PIXELS
    rows = recipes_for(cfg.model)
    anchor = next((r for r in rows if r.measured), rows[0])

    def probe(at, batch):
        ips = float(measure(cfg.model, at, batch, cfg.width, cfg.model_options, compute.policy,
                            compute.jit_compile))
        if not (math.isfinite(ips) and ips > 0):
            raise InputError(f"The training-speed probe measured {ips!r} images/s; pass --epochs and "
                             "--time-limit instead of --minutes.")
        return ips

    batch = cfg.batch_size if "batch_size" in given else anchor.batch_size
    t_probe = clock()
    ips = probe(size, batch)
    probe_s = clock() - t_probe
    setup_s = SETUP_PROBES * probe_s  # see SETUP_PROBES
    seconds = minutes * 60.0 - (clock() - started)
    recipe = pick_recipe(cfg.model, ips * max(seconds - setup_s, 0.0) * TRAIN_SHARE * scale)
    if "batch_size" not in given and recipe.batch_size != batch:  # pragma: no cover - one batch per model today
        batch = recipe.batch_size
        ips = probe(size, batch)
    notes: list[str] = []
    # the first stage: the user's --progressive (or none with --progressive off), else the recipe's
    low_epochs_fixed = None
    if "progressive" in given:
        low = cfg.progressive_stage if cfg.progressive else None
        low_size, low_epochs_fixed = low if low else (None, None)
        ratio = 0.0
    elif recipe.progressive:
        low_size, ratio = _low_size(size, recipe.progressive_scale), recipe.progressive_ratio
        if low_size is not None and not _valid_size(cfg, low_size):
            low_size = None
        if low_size is None:
            notes.append(f"input {size[0]}x{size[1]} too small for a first stage at {recipe.progressive_scale:g}x")
        elif cfg.strategy.value == "multiworker":
            low_size = None
            notes.append("no first stage under --strategy multiworker (--progressive does not run there)")
    else:
        low_size, ratio = None, 0.0
    ips_low = probe(low_size, batch) if low_size else None

    seconds = max(minutes * 60.0 - (clock() - started), 1.0)  # the probes count
    budget = max(seconds - setup_s, 0.0) * TRAIN_SHARE
    n_val = _validation_images(cfg)
    low_val = int(round(n_val * ((low_size[0] * low_size[1]) / (size[0] * size[1])))) if low_size else 0
    user_steps = "steps_per_epoch" in given
    user_epochs = "epochs" in given
    steps = cfg.steps_per_epoch if user_steps else recipe.steps_per_epoch

    def cost(s, low: bool) -> float:
        if low:
            return epoch_seconds(ips_low, s, batch, low_val, EPOCH_OVERHEAD_S)
        return epoch_seconds(ips, s, batch, n_val, EPOCH_OVERHEAD_S)

    def steps_for(e2: int, e1: int) -> int:
        """Steps per epoch that make e2 epochs at the input size (and e1 first-stage ones) fill the budget."""
        per_step = e2 * batch / ips + (e1 * batch / ips_low if e1 else 0.0)
        fixed = e2 * cost(0, False) + (e1 * cost(0, True) if e1 else 0.0)
        return int((budget - fixed) // per_step)

    def fill_first_stage(e2: int, s: int) -> int:
        """First-stage epochs in what e2 epochs at the input size leave of the budget."""
        return max(0, int((budget - e2 * cost(s, False)) // cost(s, True)))

    two_stages = low_size is not None
    if user_epochs:
        e2 = cfg.epochs
        e1 = (low_epochs_fixed if low_epochs_fixed is not None
              else int(round(ratio * e2)) if two_stages else 0)
        if user_steps and two_stages and low_epochs_fixed is None:
            e1 = min(e1, fill_first_stage(e2, steps))  # both fixed: the first stage takes what is left
        elif not user_steps:
            steps = steps_for(e2, e1)  # the epochs' length fills the budget
    elif not two_stages:
        e2, e1 = int(budget // cost(steps, False)), 0
    elif low_epochs_fixed is not None:
        e1 = low_epochs_fixed
        e2 = int((budget - e1 * cost(steps, True)) // cost(steps, False))
    else:  # the recipe's ratio of first-stage epochs, the rest of the budget to the first stage
        e2 = int(budget / (ratio * cost(steps, True) + cost(steps, False)))
        e1 = fill_first_stage(e2, steps)
    if two_stages and low_epochs_fixed is None and (e1 < 1 or (e2 < 2 and not user_epochs)):
        notes.append("the budget is too short for two stages: one stage at the input size")
        two_stages, low_size, ips_low, e1 = False, None, None, 0
        if user_epochs and not user_steps:
            steps = steps_for(e2, 0)
        elif not user_epochs:
            e2 = int(budget // cost(steps, False))
    if not user_epochs and not user_steps:
        if e2 + e1 > MAX_EPOCHS:  # long budgets: longer epochs, not more of them
            if two_stages and low_epochs_fixed is None:
                e2 = max(1, int(round(MAX_EPOCHS / (1.0 + ratio))))
                e1 = MAX_EPOCHS - e2
            else:
                e2 = max(1, MAX_EPOCHS - e1)
            steps = steps_for(e2, e1)
        elif e2 < 2:  # short budgets: shorter epochs, at least 2 of them
            e2 = 2
            steps = steps_for(e2, e1)
    steps, e2 = max(1, steps), max(1, e2)
    estimate = e2 * cost(steps, False) + (e1 * cost(steps, True) if e1 else 0.0)
    if estimate > budget * 1.05:
        need = (estimate / TRAIN_SHARE + setup_s + probe_s) / 60
        notes.append(f"this run needs about {need:.1f} min here (set-up {(setup_s + probe_s) / 60:.1f} min): the time "
                     "limit stops it after the first epoch that ends past the limit, before its learning rate "
                     "has decayed")
    progressive = f"{low_size[0]}x{low_size[1]}:{e1}" if low_size and e1 else None
    overridden = {}
    if "batch_size" in given and cfg.batch_size != recipe.batch_size:
        overridden["--batch-size"] = {"recipe": recipe.batch_size, "yours": cfg.batch_size}
    if "lr" in given and cfg.lr != recipe.lr:
        overridden["--lr"] = {"recipe": recipe.lr, "yours": cfg.lr}
    if "progressive" in given and (recipe.progressive or cfg.progressive):
        overridden["--progressive"] = {"recipe": "on" if recipe.progressive else "off",
                                       "yours": cfg.progressive or "off"}
    for key in ("epochs", "steps_per_epoch"):
        if key in given:
            overridden[_FLAGS[key]] = {"recipe": "sized to the budget", "yours": getattr(cfg, key)}
    new = replace(
        cfg,
        batch_size=cfg.batch_size if "batch_size" in given else recipe.batch_size,
        lr=cfg.lr if "lr" in given else recipe.lr,
        epochs=int(e2),
        steps_per_epoch=int(steps),
        progressive=(cfg.progressive if low_epochs_fixed is not None and low_size else progressive),
        time_limit=seconds / 60.0,
        recipe=None,
    )
    record = {
        "minutes": minutes,
        "architecture": cfg.model,
        "band": recipe.band,
        "measured": recipe.measured,
        "sources": list(recipe.sources),
        "evidence": recipe.evidence,
        "input_size": f"{size[0]}x{size[1]}",
        "images_per_second": round(ips, 2),
        "images_per_second_first_stage": round(ips_low, 2) if ips_low else None,
        "budget_images": round(ips * budget * scale),
        "epochs": new.epochs,
        "steps_per_epoch": new.steps_per_epoch,
        "batch_size": new.batch_size,
        "lr": new.lr,
        "progressive": new.progressive,
        "time_limit": round(new.time_limit, 3),
        "probe_seconds": round(probe_s, 1),
        "estimated_minutes": round((estimate / TRAIN_SHARE + setup_s + probe_s) / 60.0, 2),
        "overridden": overridden,
        "notes": notes,
    }
    new = replace(new, recipe=record)
    return Plan(new, record)


def recipes_markdown() -> str:
    """The table as docs/reference.md shows it (a test keeps the two the same)."""
    lines = ["| model | band: 256x256 images the budget buys | batch | lr | first stage | evidence "
             f"({EXPERIMENTS}, section) |", "|---|---|---|---|---|---|"]
    for arch in dict.fromkeys(r.architecture for r in RECIPES):
        lo = 0
        for r in recipes_for(arch):
            band = (f"{r.band}: under {r.max_images:,}" if lo == 0 else
                    f"{r.band}: {lo:,} to {r.max_images:,}" if r.max_images else f"{r.band}: {lo:,} and more")
            lo = r.max_images or lo
            prog = (f"{r.progressive_ratio:g} epochs at {r.progressive_scale:g} x the size for each epoch at "
                    "full size" if r.progressive else "none")
            how = "**measured**" if r.measured else "not measured"
            lines.append(f"| {arch} | {band} | {r.batch_size} | {r.lr:g} | {prog} | {how}: {r.evidence} "
                         f"({'; '.join(r.sources)}) |")
    return "\n".join(lines)
