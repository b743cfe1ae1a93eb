"""The training loop: `train` fits a model into a run directory epoch by epoch, committing
each epoch (see `rundir`) so an interrupted run resumes where it stopped, and exports the
best model at the end (`export.export_model`).

``EDGEMATTING_CRASH_AT_EPOCH=N`` (for tests and debugging, not in --help) calls
``os._exit(1)`` at the start of epoch N (1-based), which simulates ``kill -9`` after N-1
committed epochs.

TensorFlow and the data pipeline are imported inside functions: `edgematting --help` must
not load them.
"""
from __future__ import annotations

import atexit
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import atomic
from ..errors import InputError
from ..modelio import MODEL_FILE, SPEC_FILE, ModelSpec, load_model_dir
from ..models import architecture_config, build_model
from .compute import ComputePolicy, configure_logical_cpus, dtype_policy, is_chief, make_strategy, resolve_compute_policy
from .config import PROGRESSIVE_LR_FACTOR, Strategy, TrainConfig
from .distill import teacher_pairs
from .export import export_model
from .init_weights import load_init_weights
from .losses import loss_for, make_metrics
from .rundir import (
    BACKUP_DIR,
    MODEL_FIELDS,
    PROGRESSIVE_DIR,
    PROGRESSIVE_FILE,
    STATE_FILE,
    STATE_VERSION,
    TEACHER_DIR,
    check_out_dir,
    check_same_model,
    read_progressive_config,
    read_state,
    check_digests,
    check_free_space,
    checkpoint_files,
    file_digests,
    remove_checkpoint,
    write_history,
)

CRASH_ENV = "EDGEMATTING_CRASH_AT_EPOCH"


@dataclass
class TrainResult:
    """What `train` returns: where the run is, how far it got and its best epoch."""

    out_dir: Path
    best_metric: float | None
    best_epoch: int | None  # 1-based
    epochs_run: int  # epochs trained by this call (a resumed call counts only its own)
    history: dict
    images_per_second: float | None
    metric_name: str = ""
    initial_epoch: int = 0  # epochs already done before this call (resume)
    epochs_completed: int = 0  # total epochs in the run directory after this call
    optimizer_iterations: int = 0
    stopped_early: str | None = None  # "time_limit" or None
    num_replicas: int = 1
    model: Any = field(default=None, repr=False)  # the exported (best) Keras model
    epochs_planned: int = 0  # the run's --epochs (of the stage this result is of)
    stage: str = ""  # progressive runs: which stage this result is of, e.g. "1/2 at 128x128"
    alpha_calibration: dict | None = None  # model.json's record of the end-of-run alpha calibration


# -- learning rate -------------------------------------------------------------------
def make_schedule(lr: float, total_steps: int, warmup_steps: int, min_lr_ratio: float = 0.01):
    """Linear warm-up to `lr`, then cosine decay to ``lr * min_lr_ratio`` at `total_steps`.

    Keyed on the optimizer's iteration counter, which the checkpoint restores, so a
    resumed run continues the schedule exactly where it stopped.
    """
    from .._tf import keras

    k = keras()
    warmup_steps = int(max(0, min(warmup_steps, total_steps - 1)))
    decay_steps = max(1, int(total_steps) - warmup_steps)
    if warmup_steps:
        return k.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr * 0.01, decay_steps=decay_steps, alpha=min_lr_ratio,
            warmup_target=lr, warmup_steps=warmup_steps,
        )
    return k.optimizers.schedules.CosineDecay(initial_learning_rate=lr, decay_steps=decay_steps, alpha=min_lr_ratio)


# -- callbacks -------------------------------------------------------------------------
def _callbacks(ctx):
    """Keras callbacks of a run; `ctx` is the TrainingRun that owns the state."""
    from .._tf import keras

    k = keras()

    class CrashHook(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            at = os.environ.get(CRASH_ENV)
            if at and int(at) == epoch + 1:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(1)

    class Throughput(k.callbacks.Callback):
        """Training images/s over batches 2..N of each epoch (the first batch of an
        epoch includes tracing / iterator start-up). Logs are synced to numpy before a
        Callback without `_supports_tf_logs` sees them, so the step is finished."""

        def on_epoch_begin(self, epoch, logs=None):
            self._first = None
            self._n = 0

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            if self._first is None:
                self._first = now
            else:
                self._n += 1
                self._last = now

        def on_epoch_end(self, epoch, logs=None):
            if self._n:
                ctx.timed_images += self._n * ctx.cfg.batch_size
                ctx.timed_seconds += self._last - self._first

    class Commit(k.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            ctx.commit_epoch(epoch + 1, dict(logs or {}), time.perf_counter() - self._t0)

    class TimeLimit(k.callbacks.Callback):
        """Stop after the epoch in progress once the budget is spent -- or as soon as the
        next epoch (taking as long as the last one, validation included) would not
        finish within it. The budget counts from the start of `train` (set-up included)."""

        def on_epoch_end(self, epoch, logs=None):
            if ctx.deadline is None:
                return
            now = time.monotonic()
            if now >= ctx.deadline or now + ctx.last_epoch_seconds > ctx.deadline:
                ctx.stopped_early = "time_limit"
                self.model.stop_training = True

    return [CrashHook(), Throughput(), Commit(), TimeLimit()]


class TrainingRun:
    """Everything one call of `train` keeps between epochs, and its per-epoch commit."""

    def __init__(self, cfg: TrainConfig, out: Path, work: Path, chief: bool, state: dict | None, started=None):
        self.cfg = cfg
        self.out = out  # where the user looks (chief only writes there)
        self.work = work  # where this worker writes (== out on the chief)
        self.chief = chief
        arch = cfg.spec
        name, self.mode = arch.best_metric, arch.best_mode
        self.metric_base = name
        self.monitor = f"val_{name}"
        state = state or {}
        self.history: dict[str, list] = {k: list(v) for k, v in state.get("history", {}).items()}
        self.epochs_done = int(state.get("epoch", 0))
        self.best_metric = state.get("best_metric")
        self.best_epoch = state.get("best_epoch")
        self.best_weights = state.get("best_weights")
        # a state.json whose monitor is not this architecture's best metric holds a best
        # value of another metric: not comparable, so the next epoch starts the best-so-far
        # afresh
        self.monitor_changed = None
        old = state.get("monitor")
        if old and self.best_metric is not None and old.removeprefix("val_") != name:
            self.monitor_changed = old
            self.best_metric = self.best_epoch = None
        self.checkpoint = state.get("checkpoint")
        self.digests = dict(state.get("digests") or {})
        self.init_report = state.get("init_weights_report")
        self.elapsed_before = float(state.get("train_seconds", 0.0))
        self.timed_images = 0
        self.timed_seconds = 0.0
        self.epochs_this_call = 0
        self.last_epoch_seconds = 0.0
        self.started = started if started is not None else time.monotonic()
        self.deadline = self.started + 60.0 * cfg.time_limit if cfg.time_limit else None
        self.stopped_early = None
        self.model = None
        self.ckpt = None
        self.optimizer = None
        self.compute_policy: ComputePolicy | None = None
        self.training_extra: dict = {}

    def _better(self, value) -> bool:
        if value is None or not math.isfinite(value):
            return False
        if self.best_metric is None:
            return True
        return value > self.best_metric if self.mode == "max" else value < self.best_metric

    def commit_epoch(self, epoch: int, logs: dict, seconds: float) -> None:
        """End of epoch `epoch` (1-based): write checkpoint, best weights and logs, then
        atomically replace state.json (the commit point), then drop stale files."""
        self.epochs_this_call += 1
        self.last_epoch_seconds = seconds
        monitor = self.monitor if self.monitor in logs else self.metric_base
        value = logs.get(monitor)
        value = float(value) if value is not None else None
        backup = self.work / BACKUP_DIR
        backup.mkdir(parents=True, exist_ok=True)
        old_best, old_ckpt = self.best_weights, self.checkpoint
        # What this epoch writes, at most: the last checkpoint and best weights again (first
        # epoch: weights + optimizer slots, 4 bytes each). Checked before TensorFlow writes:
        # a write that fails half-way on a full disk may crash natively.
        last = sum(f.stat().st_size for f in checkpoint_files(backup / old_ckpt)) if old_ckpt else 0
        best = (backup / old_best).stat().st_size if old_best and (backup / old_best).is_file() else 0
        check_free_space(backup, (last + best) or 16 * int(self.model.count_params()))
        improved = self._better(value)
        if improved:
            path = backup / f"best-{epoch}.weights.h5"
            self.model.save_weights(str(path))
            self.best_metric, self.best_epoch, self.best_weights = value, epoch, path.name
            self.digests = {k: v for k, v in self.digests.items() if not k.startswith("best-")}
            self.digests.update(file_digests([path]))
        self.checkpoint = Path(self.ckpt.write(str(backup / f"ckpt-{epoch}"))).name
        self.digests = {k: v for k, v in self.digests.items() if not k.startswith("ckpt-")}
        self.digests.update(file_digests(checkpoint_files(backup / self.checkpoint)))
        lr = self.optimizer.learning_rate
        try:
            lr_now = float(lr(self.optimizer.iterations)) if callable(lr) else float(lr)
        except Exception:  # pragma: no cover - informational only
            lr_now = float("nan")
        row = {k: float(v) for k, v in logs.items() if _is_number(v)}
        row["lr"] = lr_now
        row["epoch_seconds"] = round(seconds, 3)
        n_before = len(next(iter(self.history.values()), []))
        for key in set(self.history) | set(row):
            col = self.history.setdefault(key, [None] * n_before)
            col.append(row.get(key))
        self.epochs_done = epoch
        if self.chief:
            write_history(self.work, self.history, monitor)
        atomic.write_json(self.work / STATE_FILE, self.state_dict(monitor))
        # Committed: files no longer referenced by state.json can go.
        if old_ckpt and old_ckpt != self.checkpoint:
            remove_checkpoint(str(backup / old_ckpt))
        if improved and old_best and old_best != self.best_weights:
            try:
                (backup / old_best).unlink()
            except OSError:
                pass

    def state_dict(self, monitor: str) -> dict:
        return {
            "version": STATE_VERSION,
            "epoch": self.epochs_done,
            "iterations": int(self.optimizer.iterations.numpy()),
            "monitor": monitor,
            "mode": self.mode,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "best_weights": self.best_weights,
            "checkpoint": self.checkpoint,
            "digests": self.digests,
            "train_seconds": self.elapsed_before + (time.monotonic() - self.started),
            "init_weights_report": self.init_report,
            "config": self.cfg.to_dict(),
            "history": self.history,
        }


def _is_number(v) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


# -- data ------------------------------------------------------------------------------
def _datasets(cfg: TrainConfig, spec: ModelSpec, strategy_name: Strategy, taught=(), soft_edges=None):
    from .._tf import tf
    from ..data.augment import AugmentConfig
    from ..data.pipeline import DataConfig, make_datasets

    augment = AugmentConfig() if cfg.augment else AugmentConfig(enabled=False)
    kwargs = dict(
        source=cfg.data,
        input_size=cfg.input_size,
        batch_size=cfg.batch_size,
        val_source=cfg.val,
        val_ratio=cfg.val_ratio,
        n_synthetic_val=cfg.n_synthetic_val,
        seed=cfg.seed,
        augment=augment,
        backgrounds_dir=cfg.backgrounds,
        skip_bad=cfg.skip_bad,
        teacher_pairs=list(taught),
        teacher_weight=cfg.distill_weight,
        soft_edges=dict(soft_edges or {}),
        prior=bool(spec.config.get("prior")),  # a prior-frame model: simulated priors (edgematting.prior)
    )
    # Unset: 0.5 for synthetic data (the pool recomposites foregrounds onto other samples'
    # backgrounds, no folder needed) or when the user gave background photos; else none.
    if cfg.composite_prob is not None:
        kwargs["composite_prob"] = cfg.composite_prob
    elif cfg.backgrounds or cfg.data == "synthetic":
        kwargs["composite_prob"] = 0.5
    if cfg.synthetic_pool is not None:
        kwargs["synthetic_pool"] = cfg.synthetic_pool
    if cfg.steps_per_epoch and cfg.data == "synthetic":
        kwargs["n_synthetic_train"] = cfg.steps_per_epoch * cfg.batch_size
    train_ds, val_ds, info = make_datasets(DataConfig(**kwargs), spec.mean, spec.std)
    if strategy_name is Strategy.MULTIWORKER:
        opts = tf().data.Options()
        opts.experimental_distribute.auto_shard_policy = tf().data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(opts)
        val_ds = val_ds.with_options(opts) if val_ds is not None else None
    if not info.get("n_val"):
        val_ds = None
    return train_ds, val_ds, info


def deeply_supervised(model, spec, loss_weights: dict):
    """The model `fit` trains: `model` itself, or -- when the architecture has a coarse
    prediction and the loss weighs it (``coarse`` > 0) -- the same layers with a second
    output channel, sigmoid(coarse logits), that the loss supervises too. Checkpoints and
    the export hold `model` only (the extra layers have no weights)."""
    if not spec.coarse_output or not float(loss_weights.get("coarse", 0.0)):
        return model
    from .._tf import keras

    L = keras().layers
    coarse = L.Activation("sigmoid", dtype="float32", name="coarse_alpha")(model.get_layer(spec.coarse_output).output)
    both = L.Concatenate(dtype="float32", name="alpha_and_coarse")([model.outputs[0], coarse])
    return keras().Model(model.inputs, both, name=f"{model.name}_deeply_supervised")


# -- main entry ------------------------------------------------------------------------
def train(cfg: TrainConfig, progress: bool = True) -> TrainResult:
    """Train (or resume) a run into ``cfg.out`` and export the best model there.

    With ``cfg.progressive`` the run has two stages: OUT/progressive/ at the small size, then
    OUT itself at ``input_size`` from the first stage's best weights; a resumed call picks up
    whichever stage was interrupted.

    Raises InputError for a bad run directory (non-empty without resume, nothing to
    resume), DataError for bad data. Prints progress when `progress` is true.
    """
    if not isinstance(cfg, TrainConfig):
        raise InputError("train() takes a TrainConfig.")
    atomic.check_output_dir(cfg.out)  # an existing file or an unwritable folder: one line, before any work
    out = Path(cfg.out)
    created = not out.exists()
    try:
        if cfg.progressive:
            return _train_progressive(cfg, progress)
        return _train_one(cfg, progress)
    except BaseException:
        if created:
            _remove_empty_folders(out)  # a run that failed before writing anything leaves no trace
        raise


def _remove_empty_folders(root: Path) -> None:
    """Remove `root` and the folders under it that hold no file (files are never touched)."""
    if not root.is_dir():
        return
    for d in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            d.rmdir()
        except OSError:
            pass
    try:
        root.rmdir()
    except OSError:
        pass


def _train_progressive(cfg: TrainConfig, progress: bool) -> TrainResult:
    started = time.monotonic()
    say = print if progress else (lambda *a, **kw: None)
    out = Path(cfg.out)
    (h, w), low_epochs = cfg.progressive_stage
    stage_dir = out / PROGRESSIVE_DIR
    pre_run = frozenset({TEACHER_DIR, PROGRESSIVE_DIR, PROGRESSIVE_FILE})
    stored = read_progressive_config(out) if out.exists() else None
    if cfg.resume:
        if stored is None:
            raise InputError(f"Nothing to resume in {out}: it has no {PROGRESSIVE_FILE} (it is not a "
                             "progressive run). Start a new run without --resume.")
        old = TrainConfig(**{**stored, "resume": False, "time_limit": None, "init_weights": None}).to_dict()
        new = cfg.to_dict()
        check_same_model(out, old, new, (*MODEL_FIELDS, "progressive"))
    else:
        check_out_dir(cfg, out)  # a new run: an empty folder (or only a teacher cache)
    out.mkdir(parents=True, exist_ok=True)
    if stored is None:
        atomic.write_json(out / PROGRESSIVE_FILE, cfg.to_dict())

    def remaining_minutes():
        return None if cfg.time_limit is None else cfg.time_limit - (time.monotonic() - started) / 60.0

    info = {"size": [h, w], "epochs": low_epochs, "lr": cfg.lr, "dir": PROGRESSIVE_DIR}
    final_state = read_state(out)
    stage_state = read_state(stage_dir) if final_state is None and stage_dir.exists() else None
    stage_done = (stage_state is not None and stage_state.get("epoch", 0) >= low_epochs
                  and (stage_dir / "model.keras").is_file())
    first = None
    if final_state is None and not stage_done:  # the first stage has not finished (or not started)
        if stage_state is None and stage_dir.exists():
            shutil.rmtree(stage_dir)  # killed before its first epoch was committed: nothing to keep
        low = replace(cfg, input_size=(h, w), epochs=low_epochs, progressive=None, out=str(stage_dir),
                      resume=stage_state is not None, calibrate_alpha=False)  # only the final model is calibrated
        say(f"progressive: stage 1 of 2, {low_epochs} epochs at {h}x{w} -> {stage_dir}")
        first = _train_one(low, progress, teacher_root=out, stage=f"1/2 at {h}x{w}", user_out=out)
        left = remaining_minutes()
        if first.stopped_early or (left is not None and left <= 0):
            first.stopped_early = first.stopped_early or "time_limit"
            return first
    else:
        left = remaining_minutes()
        left = None if left is None else max(left, 1e-9)  # this call trains at least one epoch
    H, W = cfg.input_size
    full = replace(cfg, progressive=None, lr=cfg.lr * PROGRESSIVE_LR_FACTOR, init_weights=str(stage_dir),
                   resume=final_state is not None, time_limit=left)
    say(f"progressive: stage 2 of 2, {cfg.epochs} epochs at {H}x{W} from {stage_dir}'s best weights, "
        f"lr {full.lr:.3g}")
    if first is not None:
        info["best_metric"] = {"name": first.metric_name, "value": first.best_metric, "epoch": first.best_epoch}
    else:
        prev = stage_state or (read_state(stage_dir) if stage_dir.exists() else None)
        if prev is not None:
            info["best_metric"] = {"name": prev.get("monitor"), "value": prev.get("best_metric"),
                                   "epoch": prev.get("best_epoch")}
    return _train_one(full, progress, pre_run=pre_run, stage=f"2/2 at {H}x{W}", training_extra={"progressive": info})


def _train_one(cfg: TrainConfig, progress: bool, teacher_root: Path | None = None,
               pre_run=frozenset({TEACHER_DIR}), stage: str = "", training_extra: dict | None = None,
               user_out: Path | None = None) -> TrainResult:
    """One run directory's training (`train`, or one stage of a progressive run: the
    teacher cache may live in `teacher_root`, and `user_out` is the folder to resume)."""
    started = time.monotonic()
    configure_logical_cpus()  # before any TensorFlow op
    from .._tf import keras, tf

    t, k = tf(), keras()
    say = print if progress else (lambda *a, **kw: None)
    out = Path(cfg.out)
    single = cfg.strategy is not Strategy.MULTIWORKER
    state = check_out_dir(cfg, out, pre_run) if single else None  # fail fast, before TF work
    strategy = make_strategy(cfg.strategy)
    compute = resolve_compute_policy(cfg.mixed_precision, cfg.jit_compile)  # before writing anything
    chief = is_chief(strategy)
    if chief and not single:
        state = check_out_dir(cfg, out)
    if chief:
        out.mkdir(parents=True, exist_ok=True)
        work = out
    else:
        work = Path(tempfile.mkdtemp(prefix="edgematting-worker-"))
        # A non-chief's checkpoints only have to exist while it trains (they are written
        # because saving is collective); remove them at the end, or at exit after an error.
        atexit.register(shutil.rmtree, work, True)
        state = read_state(out) if cfg.resume else None
    run = TrainingRun(cfg, out, work, chief, state, started)
    run.training_extra = dict(training_extra or {})

    arch = cfg.architecture
    arch_cfg = architecture_config(arch, cfg.input_size, cfg.width, **cfg.model_options)
    spec = ModelSpec(architecture=arch, config=arch_cfg, input_size=cfg.input_size)
    taught, soft_edges = (teacher_pairs(cfg, teacher_root or (out if chief else work), progress)
                          if cfg.teacher else ([], {}))
    train_ds, val_ds, info = _datasets(cfg, spec, cfg.strategy, taught, soft_edges)
    if spec.config.get("prior"):  # model.json records the simulated priors it trained with (edgematting.prior)
        from ..prior import default_sim

        run.training_extra["prior_sim"] = default_sim().to_dict()
    steps = int(cfg.steps_per_epoch or info["steps_per_epoch"])
    if steps < 1:
        raise InputError("The training set is smaller than one batch; lower --batch-size or add images.")
    if val_ds is None:
        run.monitor = run.metric_base
        say(f"note: no validation data; the best checkpoint is picked by training {run.metric_base}.")

    total_steps = steps * cfg.epochs
    run.compute_policy = compute
    if compute.policy != "float32" or compute.jit_compile:
        say(f"training in {compute.policy}{' with XLA' if compute.jit_compile else ''} "
            f"({compute.device}); the exported model is float32")
    with strategy.scope():
        with dtype_policy(compute.policy):  # layers keep it; the global policy is restored
            model = build_model(arch, **arch_cfg)
        if model.outputs[0].dtype != t.float32:
            raise InputError(
                f"{arch}'s output layer computes in {model.outputs[0].dtype.name} under "
                f"{compute.policy}; give it dtype='float32' or train with --mixed-precision off."
            )
        schedule = make_schedule(cfg.lr, total_steps, int(round(cfg.warmup_epochs * steps)), cfg.min_lr_ratio)
        optimizer = k.optimizers.Adam(learning_rate=schedule)
        # Under mixed_float16 compile wraps `optimizer` in a LossScaleOptimizer; `optimizer`
        # itself (the one checkpointed) still holds the moments and the iteration counter.
        loss = loss_for(arch, cfg.loss_weights)
        fit_model = deeply_supervised(model, cfg.spec, loss.weights)
        fit_model.compile(optimizer=optimizer, loss=loss, metrics=make_metrics(arch), jit_compile=compute.jit_compile)
        optimizer.build(model.trainable_variables)
        ckpt = t.train.Checkpoint(model=model, optimizer=optimizer)
    run.model, run.optimizer, run.ckpt = model, optimizer, ckpt
    if cfg.init_weights and state is None:
        # Outside the scope: the source model is only read, it needs no mirrored copies.
        report = load_init_weights(model, cfg.init_weights)
        run.init_report = {"source": report.source, "loaded": len(report.loaded), "skipped": report.skipped,
                           "widened": report.widened}
        say(report.format())

    if state is not None:
        prefix = Path(out) / BACKUP_DIR / state["checkpoint"]
        check_digests(Path(out) / BACKUP_DIR, state.get("digests"), "checkpoint")
        try:
            ckpt.read(str(prefix)).assert_existing_objects_matched()
        except (t.errors.NotFoundError, AssertionError, ValueError) as e:
            raise InputError(
                f"Cannot resume from {prefix}: {e}. The run directory is damaged; start a new "
                "run with another --out."
            ) from e
        say(
            f"resuming {out} after epoch {run.epochs_done} (optimizer step "
            f"{int(optimizer.iterations.numpy())}, best {run.monitor} = {run.best_metric})"
        )
        if cfg.init_weights:
            say("note: --init-weights applies only when a run starts; resuming from its checkpoint.")
        if run.monitor_changed:
            say(f"note: this run's best checkpoint was picked by {run.monitor_changed}; {arch} now picks it "
                f"by {run.monitor}, so the best so far starts again with the next epoch.")

    initial_epoch = run.epochs_done
    verbose = (1 if sys.stdout.isatty() else 2) if progress else 0
    try:
        if initial_epoch < cfg.epochs:
            fit_model.fit(
                train_ds.repeat(),
                epochs=cfg.epochs,
                initial_epoch=initial_epoch,
                steps_per_epoch=steps,
                validation_data=val_ds,
                callbacks=_callbacks(run),
                verbose=verbose,
            )
        else:
            say(f"{out} already has {initial_epoch} epochs (--epochs {cfg.epochs}): the run is finished.")
    except KeyboardInterrupt:
        if chief and run.epochs_done > initial_epoch:
            export_model(run, arch, arch_cfg, spec, steps)
            print(
                f"\ninterrupted: exported the best model so far to {out}; continue with "
                f"`edgematting train --out {user_out or out} --resume`.",
                file=sys.stderr,
            )
        raise

    ips = run.timed_images / run.timed_seconds if run.timed_seconds > 0 else None
    exported = alpha_record = None
    if chief and initial_epoch >= cfg.epochs and (out / MODEL_FILE).is_file() and (out / SPEC_FILE).is_file():
        exported = load_model_dir(out)[0]  # finished and exported: leave the user's model files as they are
    elif chief:
        calibration: dict = {}
        finish = _calibrate_alpha(cfg, val_ds, say, calibration)
        exported = export_model(run, arch, arch_cfg, spec, steps, ips, finish=finish)
        alpha_record = calibration.get("record")
    if not chief:
        shutil.rmtree(work, ignore_errors=True)
    return TrainResult(
        out_dir=out,
        best_metric=run.best_metric,
        best_epoch=run.best_epoch,
        epochs_run=run.epochs_done - initial_epoch,
        history=run.history,
        images_per_second=ips,
        metric_name=run.monitor,
        initial_epoch=initial_epoch,
        epochs_completed=run.epochs_done,
        optimizer_iterations=int(optimizer.iterations.numpy()),
        stopped_early=run.stopped_early,
        num_replicas=int(strategy.num_replicas_in_sync),
        model=exported,
        epochs_planned=cfg.epochs,
        stage=stage,
        alpha_calibration=alpha_record,
    )


def validation_dataset(run_dir):
    """The validation split of a run directory's training (what `train` calibrates the alpha
    on at the end), as the run's dataset of (x, y) batches. InputError when `run_dir` is no run
    directory (no state.json), has no validation split, or validates on a teacher's mattes."""
    from ..modelio import load_spec
    from .rundir import load_run_config

    cfg = replace(load_run_config(run_dir), synthetic_pool=0)  # no training pool: only the split is read
    if cfg.teacher:
        raise InputError(f"{run_dir} was trained with a teacher; its validation split needs the teacher's "
                         "mattes. Pass --data DIR (a labelled held-out folder).")
    _, val_ds, _ = _datasets(cfg, load_spec(run_dir), Strategy.DEFAULT)
    if val_ds is None:
        raise InputError(f"{run_dir} has no validation split (--val-ratio 0). Pass --data DIR.")
    return val_ds


def _calibrate_alpha(cfg: TrainConfig, val_ds, say, into: dict):
    """`export_model`'s finish step: the alpha calibration of the best model on the validation
    split (`edgematting.alpha_calibration`), reported in the log; None when it is off or there
    is no validation data. `into["record"]` receives model.json's record."""
    if not cfg.calibrate_alpha:
        return None
    if val_ds is None:
        say("note: no validation data: the alpha calibration is skipped.")
        return None

    def finish(model, spec):
        from ..alpha_calibration import calibrate_model, dataset_batches

        model, result = calibrate_model(model, spec, dataset_batches(val_ds), source="validation")
        for line in result.lines():
            say(line)
        into["record"] = spec.alpha_calibration
        return model

    return finish
