"""The end of a run: write the best model to the run directory as a model directory
(model.keras + model.json, see `edgematting.modelio`), with how it was trained.
"""
from __future__ import annotations

from ..modelio import ModelSpec, save_model_dir
from ..models import build_model
from .compute import dtype_policy
from .distill import teacher_record
from .losses import describe_loss
from .rundir import BACKUP_DIR


def export_model(run, arch: str, arch_cfg: dict, spec: ModelSpec, steps: int, ips=None, finish=None):
    """Write model.keras + model.json with the best weights (a clean, uncompiled float32
    model) into ``run.out`` and return the model.

    `run` is the training loop's state of the run (`loop.TrainingRun`): its config, its
    model and optimizer, the best-epoch bookkeeping and what it adds to model.json.
    `finish(model, spec) -> model`, when given, runs before anything is written (the alpha
    calibration of the end of a run)."""
    cfg = run.cfg
    with dtype_policy("float32"):  # float32 whatever the training (or the caller's global) policy
        model = build_model(arch, **arch_cfg)
    src = "best"
    if run.best_weights and (run.out / BACKUP_DIR / run.best_weights).exists():
        model.load_weights(str(run.out / BACKUP_DIR / run.best_weights))
    else:  # no finite validation metric: keep the last weights
        model.set_weights(run.model.get_weights())
        src = "last"
    spec.training = {
        "lr": cfg.lr,
        "schedule": "cosine decay with linear warm-up",
        "epochs": cfg.epochs,
        "epochs_completed": run.epochs_done,
        "steps_per_epoch": steps,
        "batch_size": cfg.batch_size,
        "optimizer_steps": int(run.optimizer.iterations.numpy()),
        "data": cfg.data,
        "unlabelled": cfg.unlabelled,
        "teacher": teacher_record(cfg),
        "val": cfg.val if cfg.val else f"split {cfg.val_ratio}" if cfg.data != "synthetic" else "synthetic",
        "augment": cfg.augment,
        "seed": cfg.seed,
        "strategy": cfg.strategy.value,
        "init_weights": cfg.init_weights,
        "loss": describe_loss(cfg.model, cfg.loss_weights),
        "loss_weights": cfg.loss_weights,
        "best_metric": {"name": run.monitor, "value": run.best_metric, "epoch": run.best_epoch, "weights": src},
        "images_per_second": ips,
        **({"recipe": cfg.recipe} if cfg.recipe else {}),  # train --minutes N (training.recipes)
        **run.training_extra,
    }
    if run.compute_policy is not None:
        spec.training.update(run.compute_policy.to_dict(cfg))
    if finish is not None:
        model = finish(model, spec)
    save_model_dir(model, spec, run.out)
    return model
