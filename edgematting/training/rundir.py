"""The run directory (``--out``): its layout, the resume state in state.json, the checks
that a new or resumed run fits the folder, and the per-epoch logs.

What a run directory holds::

    model.keras, model.json   the best model by the validation metric (written at the end,
                              on a time-limit stop and on Ctrl-C) -- a modelio model dir
    history.csv, history.json one row per finished epoch (rewritten every epoch)
    curves.png                loss and metric vs epoch, train and validation
    state.json                resume state: epochs done, best so far, history, config
    backup/ckpt-N.*           model + optimizer (with its step counter) after epoch N
    backup/best-N.weights.h5  weights of the best epoch so far
    teacher/                  with ``teacher``: the teacher's mattes of the photos (a cache)
    progressive/              with ``progressive``: the low-resolution first stage, itself a
                              run directory; progressive.json keeps the run's own settings

Fault tolerance: every epoch ends with a commit -- checkpoint, best weights and logs are
written first, then ``state.json`` is replaced atomically and points at them. A crash
(even ``kill -9``) loses at most the epoch in progress; ``resume=True`` restores model,
optimizer (Adam moments and the iteration counter that drives the learning-rate schedule),
epoch counter, best-so-far bookkeeping and history from the last commit. We keep our own
checkpoint instead of `keras.callbacks.BackupAndRestore` because that callback restores
weights, optimizer and epoch but not the best-checkpoint bookkeeping or the logs, and it
deletes its backup when ``fit`` returns.
"""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .. import atomic
from ..errors import InputError
from .config import TrainConfig
from .plots import plot_history

STATE_FILE = "state.json"
STATE_VERSION = 1
BACKUP_DIR = "backup"
TEACHER_DIR = "teacher"
PROGRESSIVE_DIR = "progressive"
PROGRESSIVE_FILE = "progressive.json"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
CURVES_PNG = "curves.png"

#: Fields that must match the stored run when resuming (they define the model).
MODEL_FIELDS = ("model", "input_size", "width", "model_options")


def read_state(out: Path) -> dict | None:
    """The last committed state.json of run directory `out`, or None if it has none."""
    p = out / STATE_FILE
    if not p.exists():
        return None
    try:
        state = json.loads(p.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"{p} is unreadable ({e}); cannot resume. Start a new run with another --out.") from e
    if state.get("version") != STATE_VERSION:
        raise InputError(f"{p} was written by an incompatible version; start a new run with another --out.")
    return state


def load_run_config(out_dir: str | os.PathLike, **overrides) -> TrainConfig:
    """The TrainConfig stored in a run directory, with `overrides` applied (for --resume)."""
    d = read_progressive_config(Path(out_dir))
    if d is None:
        state = read_state(Path(out_dir))
        if state is None:
            raise InputError(
                f"Nothing to resume in {out_dir}: it has no {STATE_FILE}. Start a new run "
                "without --resume."
            )
        d = dict(state["config"])
    # Per-invocation settings are not inherited: the time budget is for this call, and
    # --init-weights only ever applies when a run starts (the file may be gone by now).
    d["time_limit"] = None
    d["init_weights"] = None
    d.update({k: v for k, v in overrides.items() if v is not None})
    d["out"] = str(out_dir)
    d["resume"] = True
    return TrainConfig(**d)


def read_progressive_config(out: Path) -> dict | None:
    """The settings a progressive run was started with (its stages' state.json files hold
    the settings of each stage), or None for any other run."""
    p = out / PROGRESSIVE_FILE
    if not p.is_file():
        return None
    try:
        return dict(json.loads(p.read_text()))
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as e:
        raise InputError(f"{p} is unreadable ({e}); cannot resume. Start a new run with another --out.") from e


def resumable(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` holds a run that `load_run_config` can continue."""
    out = Path(out_dir)
    return out.is_dir() and ((out / STATE_FILE).exists() or (out / PROGRESSIVE_FILE).is_file())


def check_same_model(out: Path, old: dict, new: dict, keys) -> None:
    """--resume must not change what defines the model (`keys` of the stored and the new config)."""
    diffs = [f"{k}: run has {old.get(k)!r}, you passed {new[k]!r}" for k in keys if _norm(old.get(k)) != _norm(new[k])]
    if diffs:
        raise InputError(
            f"--resume in {out} with a different model:\n  " + "\n  ".join(diffs)
            + "\nPass the run's settings (or omit them), or start a new run with another --out."
        )


def check_out_dir(cfg: TrainConfig, out: Path, pre_run=frozenset({TEACHER_DIR})) -> dict | None:
    """Check that `cfg` can run in `out` (InputError otherwise): a resumed run needs a stored
    state of the same model, a new run an empty folder (or one holding only the `pre_run`
    names). Returns the stored state to resume from, or None to start afresh."""
    state = read_state(out) if out.exists() else None
    if cfg.resume:
        if state is None:
            if _only_pre_run_files(out, pre_run):
                return None  # killed while the teacher labelled photos: start, reusing its cache
            raise InputError(
                f"Nothing to resume in {out}: it has no {STATE_FILE} (no epoch of a run there "
                "has finished). Start a new run without --resume."
            )
        old = state["config"]
        new = cfg.to_dict()
        check_same_model(out, old, new, MODEL_FIELDS)
        return state
    if out.exists() and any(out.iterdir()) and not _only_pre_run_files(out, pre_run):
        raise InputError(
            f"Output folder {out} is not empty. Pass --resume to continue the run there, or "
            "choose another --out."
        )
    return None


def _only_pre_run_files(out: Path, names=frozenset({TEACHER_DIR})) -> bool:
    """The run folder holds nothing but what is written before its first epoch (the
    teacher's matte cache; a progressive run's first stage): starting there again reuses it."""
    present = {p.name for p in out.iterdir()} if out.is_dir() else set()
    return bool(present) and present <= set(names)


def _norm(v):
    """`v` as JSON gives it back (tuples become lists), to compare with a stored config."""
    return json.loads(json.dumps(v))


def checkpoint_files(prefix: str | os.PathLike) -> list[Path]:
    """The files of the `tf.train.Checkpoint` written at `prefix` (prefix.index, prefix.data-*)."""
    p = Path(prefix)
    return sorted(p.parent.glob(p.name + ".*"))


def file_digests(paths) -> dict[str, str]:
    """{file name: sha256} of `paths`, each flushed to disk first: what state.json records so
    that --resume can tell a complete checkpoint from a truncated one."""
    out = {}
    for f in paths:
        atomic.fsync(f)
        out[Path(f).name] = atomic.digest(f)
    return out


def check_digests(folder: Path, recorded: dict | None, what: str) -> None:
    """InputError when a file that state.json recorded is missing or differs (a checkpoint cut
    short by a full disk or a crash). Runs written before digests were recorded pass."""
    for name, sha in (recorded or {}).items():
        f = folder / name
        if not f.is_file() or atomic.digest(f) != sha:
            state = "missing" if not f.is_file() else "truncated or damaged (its sha256 differs from state.json)"
            raise InputError(f"Cannot resume: the {what} file {f} is {state}. The last epoch's files did not reach "
                             "the disk whole (a full disk or a crash while writing); start a new run with another "
                             "--out, or free space and retrain.")


def check_free_space(folder: Path, need_bytes: int) -> None:
    """InputError before an epoch's files are written when the disk cannot hold them (twice
    their size: the new files are written before the old ones go)."""
    import shutil

    free = shutil.disk_usage(folder).free
    if free < 2 * need_bytes:
        raise InputError(f"Not enough disk space in {folder} for this epoch's checkpoint: {free / 1e6:.1f} MB free, "
                         f"{2 * need_bytes / 1e6:.1f} MB needed. Free some space and continue with --resume "
                         "(the last completed epoch is kept).")


def remove_checkpoint(prefix: str) -> None:
    """Delete the files of the `tf.train.Checkpoint` written at `prefix` (prefix.index, ...)."""
    p = Path(prefix)
    for f in p.parent.glob(p.name + ".*"):
        try:
            f.unlink()
        except OSError:
            pass


def write_history(out: Path, history: dict, metric: str) -> None:
    """Write history.csv, history.json and curves.png of `history` (one list per column)."""
    keys = sorted(history)
    n = max((len(v) for v in history.values()), default=0)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["epoch", *keys])
    for i in range(n):
        w.writerow([i + 1, *[history[k][i] if i < len(history[k]) else "" for k in keys]])
    atomic.write_bytes(out / HISTORY_CSV, buf.getvalue().encode())
    atomic.write_json(out / HISTORY_JSON, {"epochs": n, "monitor": metric, "history": history})
    plot_history(history, out / CURVES_PNG, metric=metric.removeprefix("val_"))

