"""The training loop: outputs, reload parity, resume after kill -9, distribution, CLI errors.

Tiny settings throughout (64x64 input, width 0.25, 2 steps per epoch, batch 2) so each
training costs a few seconds plus graph tracing.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgematting.errors import InputError

REPO = Path(__file__).resolve().parents[1]
TINY = dict(input_size=64, width=0.25, batch_size=2, steps_per_epoch=2, n_synthetic_val=4, synthetic_pool=8, lr=1e-3)


@pytest.fixture(autouse=True)
def _pool_cache(tmp_path, monkeypatch):
    """Keep synthetic-pool caches out of the user's ~/.cache."""
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))


def _cfg(out, **kw):
    from edgematting.training import TrainConfig

    return TrainConfig(**{**TINY, "out": str(out), **kw})


def _env(**extra):
    env = dict(os.environ)
    env.update({"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"})
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# -- both models: outputs and reload parity --------------------------------------------
# MattingNet (~55 s) runs with `pytest -m slow`; test_models trains it two steps by default
@pytest.mark.parametrize("arch,monitor", [("fast-scnn", "val_iou"),
                                          pytest.param("mattingnet", "val_edge_score", marks=pytest.mark.slow)])
def test_train_writes_run_dir_and_reloads(tmp_path, arch, monitor):
    from edgematting.modelio import load_model_dir
    from edgematting.training import train
    from edgematting.training.losses import describe_loss

    out = tmp_path / "run"
    # 3 epochs asked, but a time limit of ~0 stops cleanly after the first one.
    cfg = _cfg(out, model=arch, epochs=3, time_limit=1e-6)
    r = train(cfg, progress=False)

    assert r.stopped_early == "time_limit"
    assert r.epochs_run == 1 and r.epochs_completed == 1
    assert r.optimizer_iterations == 2
    assert r.metric_name == monitor and r.best_epoch == 1
    assert r.best_metric == pytest.approx(r.history[monitor][0])
    assert r.images_per_second and r.images_per_second > 0
    for name in ("model.keras", "model.json", "history.csv", "history.json", "curves.png", "state.json"):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = _csv_rows(out / "history.csv")
    assert len(rows) == 1 and float(rows[0][monitor]) == pytest.approx(r.best_metric)
    assert 0.0 <= float(rows[0]["val_boundary_f"]) <= 1.0  # both models log where their edge lies
    hist = json.loads((out / "history.json").read_text())
    assert hist["epochs"] == 1 and hist["monitor"] == monitor

    model, spec = load_model_dir(out)
    assert spec.architecture == arch
    assert tuple(spec.input_size) == (64, 64)
    assert spec.config["width"] == 0.25
    assert spec.channel_order == "RGB" and spec.mean == (127.5, 127.5, 127.5)
    assert spec.training["best_metric"]["name"] == monitor
    assert spec.training["best_metric"]["epoch"] == 1
    assert spec.training["loss"] == describe_loss(arch, cfg.loss_weights)
    x = np.random.default_rng(3).uniform(-1, 1, (2, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), r.model.predict(x, verbose=0))


def test_resume_of_a_finished_run_leaves_its_model_files_alone(tmp_path, capsys):
    """--resume on a run that has all its epochs and its export: nothing is rewritten (a
    user may have copied, signed or converted that model.keras)."""
    from edgematting.cli import main

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "1", "--input-size", "64", "--width", "0.25",
            "--batch-size", "2", "--steps-per-epoch", "2", "--quiet"]
    assert main(args) == 0, capsys.readouterr().err
    before = {n: ((out / n).read_bytes(), (out / n).stat().st_mtime_ns) for n in ("model.keras", "model.json")}
    assert main(args + ["--resume"]) == 0, capsys.readouterr().err
    assert {n: ((out / n).read_bytes(), (out / n).stat().st_mtime_ns) for n in before} == before
    # killed between the last epoch and the export: --resume writes it
    (out / "model.keras").unlink()
    assert main(args + ["--resume"]) == 0 and (out / "model.keras").is_file()


def test_resume_rejects_a_truncated_checkpoint(tmp_path, capsys):
    """A checkpoint cut short (a full disk, a crash mid-write) is named on --resume, not loaded
    as if it were whole: state.json records each file's sha256 after flushing it to disk."""
    from edgematting.cli import main

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--epochs", "2", "--input-size", "64", "--width", "0.25",
            "--batch-size", "2", "--steps-per-epoch", "2", "--quiet", "--time-limit", "0.0001"]
    assert main(args) == 0, capsys.readouterr().err  # stops after epoch 1
    state = json.loads((out / "state.json").read_text())
    data = next(f for f in (out / "backup").iterdir() if f.name.startswith(state["checkpoint"] + ".data"))
    assert data.name in state["digests"]
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    capsys.readouterr()
    assert main(args[:-2] + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert "truncated or damaged" in err and data.name in err and "Traceback" not in err


def test_a_full_disk_stops_before_the_checkpoint_is_written(tmp_path, monkeypatch, capsys):
    """The epoch's files are not started on a disk that cannot hold them (a write that fails
    half-way inside TensorFlow can crash natively): one line, the last complete epoch kept,
    and a failed run leaves no empty --out behind."""
    import shutil as _shutil
    from collections import namedtuple

    from edgematting.cli import main

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(_shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    out = tmp_path / "new" / "run"
    args = ["train", "--out", str(out), "--epochs", "1", "--input-size", "64", "--width", "0.25",
            "--batch-size", "2", "--steps-per-epoch", "2", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "Not enough disk space" in err and "Traceback" not in err
    assert not out.exists(), list(out.rglob("*"))


# -- resume after kill -9 -----------------------------------------------------------------
def test_resume_after_kill_continues_epoch_optimizer_and_schedule(tmp_path):
    from edgematting.training import load_run_config, train
    from edgematting.training.loop import make_schedule

    out = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "edgematting", "train", "--model", "fast-scnn", "--data", "synthetic",
        "--input-size", "64", "--width", "0.25", "--epochs", "3", "--batch-size", "2",
        "--steps-per-epoch", "2", "--lr", "0.001", "--out", str(out), "--quiet",
    ]
    # os._exit(1) at the start of epoch 3: two epochs committed, like kill -9 mid-run.
    p = subprocess.run(cmd, env=_env(EDGEMATTING_CRASH_AT_EPOCH="3"), capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stderr[-2000:]
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 4
    assert not (out / "model.keras").exists()
    before = _csv_rows(out / "history.csv")
    assert len(before) == 2

    # A new run into the non-empty folder is refused ...
    with pytest.raises(InputError, match="--resume"):
        train(_cfg(out, model="fast-scnn", epochs=3), progress=False)
    # ... and resuming with a different model is refused too.
    with pytest.raises(InputError, match="different model"):
        train(_cfg(out, model="fast-scnn", epochs=3, width=0.5, resume=True), progress=False)

    cfg = load_run_config(out)  # what `edgematting train --out OUT --resume` does
    assert cfg.epochs == 3 and cfg.width == 0.25
    r = train(cfg, progress=False)
    assert r.initial_epoch == 2 and r.epochs_run == 1 and r.epochs_completed == 3
    assert r.optimizer_iterations == 3 * 2  # steps of three epochs: the counter continued
    rows = _csv_rows(out / "history.csv")
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert rows[:2] == before  # epochs 1-2 were not re-run
    # The LR schedule continued: epoch 3's last step (iteration 5) used schedule(5).
    expected_lr = float(make_schedule(1e-3, total_steps=6, warmup_steps=2)(5))
    assert float(rows[2]["lr"]) == pytest.approx(expected_lr, rel=1e-5)
    # Best-so-far bookkeeping survived the restart.
    vals = [float(row["val_iou"]) for row in rows]
    assert r.best_metric == pytest.approx(max(vals))
    assert r.best_epoch == 1 + int(np.argmax(vals))
    assert (out / "model.keras").is_file()
    assert json.loads((out / "model.json").read_text())["training"]["best_metric"]["epoch"] == r.best_epoch


def test_out_dir_rules(tmp_path):
    from edgematting.training import train

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="Nothing to resume"):
        train(_cfg(empty, resume=True), progress=False)
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not empty.*--resume"):
        train(_cfg(full), progress=False)


# -- distribution --------------------------------------------------------------------------
# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    out = tmp_path / "run"
    code = (
        "import json, sys\n"
        "from edgematting.training import TrainConfig, train\n"
        f"r = train(TrainConfig(model='fast-scnn', input_size=64, width=0.25, epochs=1, batch_size=4,"
        f" steps_per_epoch=2, n_synthetic_val=4, synthetic_pool=8, strategy='mirrored', out={str(out)!r}), progress=False)\n"
        "print('RESULT ' + json.dumps({'replicas': r.num_replicas, 'epochs': r.epochs_run,"
        " 'iterations': r.optimizer_iterations}))\n"
    )
    p = subprocess.run(
        [sys.executable, "-c", code], env=_env(EDGEMATTING_LOGICAL_CPUS="2"),
        capture_output=True, text=True, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    res = json.loads(line[len("RESULT "):])
    assert res == {"replicas": 2, "epochs": 1, "iterations": 2}
    assert (out / "model.keras").is_file() and (out / "model.json").is_file()


# -- init weights --------------------------------------------------------------------------
def test_init_weights_by_name_and_shape(tmp_path):
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model
    from edgematting.training import load_init_weights

    cfg = architecture_config("fast-scnn", (64, 64), 0.25)
    src = build_model("fast-scnn", **cfg)
    save_model_dir(src, ModelSpec("fast-scnn", cfg, (64, 64)), tmp_path / "src")
    src.save_weights(str(tmp_path / "w.h5"))

    for source in (tmp_path / "src", tmp_path / "w.h5"):
        dst = build_model("fast-scnn", **cfg)
        rep = load_init_weights(dst, source)
        assert rep.skipped == [] and len(rep.loaded) > 5
        for a, b in zip(src.get_weights(), dst.get_weights()):
            np.testing.assert_array_equal(a, b)

    # Another architecture shares no layer: a clear InputError, not a silent no-op.
    other = build_model("mattingnet", **architecture_config("mattingnet", (64, 64), 0.25))
    with pytest.raises(InputError, match="no layer matched"):
        load_init_weights(other, tmp_path / "src")
    # Another width: same names, other shapes -> the error says so.
    wide = build_model("fast-scnn", **architecture_config("fast-scnn", (64, 64), 0.5))
    with pytest.raises(InputError, match="other shapes"):
        load_init_weights(wide, tmp_path / "w.h5")
    # A source missing one layer: the rest load, the missing one is reported.
    import h5py

    with h5py.File(tmp_path / "w.h5", "r+") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
        victim = next(n for n in names if len(f[n].attrs.get("weight_names", [])))
        del f[victim]
        f.attrs["layer_names"] = [n.encode() for n in names if n != victim]
    dst = build_model("fast-scnn", **cfg)
    rep = load_init_weights(dst, tmp_path / "w.h5")
    assert rep.skipped == [(victim, "not in the source")]
    assert victim in rep.format()


# -- config validation and CLI -----------------------------------------------------------------
def test_train_config_validation(tmp_path):
    from edgematting.training import Strategy, TrainConfig

    c = TrainConfig(model="mattingnet", strategy="mirrored", input_size="64x32", lite=True, out=str(tmp_path))
    assert c.model == "mattingnet" and c.strategy is Strategy.MIRRORED
    assert c.spec.best_metric == "edge_score" and c.to_dict()["model"] == "mattingnet"
    assert c.input_size == (64, 32) and c.width == 0.5
    assert TrainConfig(model="Fast_SCNN").model == "fast-scnn"
    with pytest.raises(InputError, match="^Unknown model 'fast-scn'. Choose one of: fast-scnn, mattingnet. "
                       "Did you mean 'fast-scnn'"):
        TrainConfig(model="fast-scn")
    with pytest.raises(InputError):
        TrainConfig(input_size="65")
    with pytest.raises(InputError, match="--lite"):
        TrainConfig(lite=True, width=0.75)
    with pytest.raises(InputError):
        TrainConfig(epochs=0)
    with pytest.raises(InputError):
        TrainConfig(strategy="tpu")
    with pytest.raises(InputError, match="not found"):
        TrainConfig(data=str(tmp_path / "missing"))


def test_cli_bad_arguments(tmp_path, capsys):
    from edgematting.cli import main

    base = ["train", "--out", str(tmp_path / "r"), "--epochs", "1"]
    with pytest.raises(SystemExit) as e:  # argparse choices
        main(base + ["--model", "unet"])
    assert e.value.code == 2
    assert main(base + ["--input-size", "100x7"]) == 2
    assert "multiple of 16" in capsys.readouterr().err
    assert main(base + ["--data", str(tmp_path / "nope")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(base + ["--val-ratio", "0.2"]) == 2  # nothing to split in synthetic data
    assert "--val-ratio" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "r2"), "--resume"]) == 2
    assert "Nothing to resume" in capsys.readouterr().err


def test_resumed_run_judged_by_another_metric_starts_its_best_afresh(tmp_path):
    """A run whose state.json picked the best checkpoint by another metric (band MAE, lower
    is better) must not compare MattingNet's edge scores (higher is better) with that value."""
    from edgematting.training.loop import TrainingRun

    cfg = _cfg(tmp_path / "r", model="mattingnet")
    old = {"monitor": "val_band_mae", "best_metric": 0.05, "best_epoch": 3, "best_weights": "best-3.weights.h5"}
    run = TrainingRun(cfg, tmp_path, tmp_path, True, old)
    assert run.monitor == "val_edge_score" and run.monitor_changed == "val_band_mae"
    assert run.best_metric is None and run._better(0.01)  # any finite edge score is the new best
    same = TrainingRun(cfg, tmp_path, tmp_path, True, {**old, "monitor": "val_edge_score", "best_metric": 0.6})
    assert same.monitor_changed is None and same.best_metric == 0.6 and not same._better(0.5)


# -- progressive resizing --------------------------------------------------------------------
# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores);
# four training calls, ~75 s. The default suite keeps the stage plan (test_train_minutes, test_progressive_validation).
@pytest.mark.slow
def test_progressive_run_trains_both_stages_and_resumes_each(tmp_path, capsys):
    """--progressive 32:2 --input-size 64: two epochs at 32x32 into OUT/progressive, then the
    run's epochs at 64x64 from those weights at a third of the lr. A time limit of ~0 stops
    after every epoch, so each stage is left mid-way and resumed from the command line."""
    from edgematting.cli import main
    from edgematting.modelio import load_model_dir
    from edgematting.training import train
    from edgematting.training.config import PROGRESSIVE_LR_FACTOR

    out = tmp_path / "run"
    r = train(_cfg(out, epochs=2, progressive="32:2", time_limit=1e-6), progress=False)
    assert r.stage == "1/2 at 32x32" and r.stopped_early == "time_limit"
    assert r.out_dir == out / "progressive" and r.epochs_completed == 1 and r.epochs_planned == 2
    assert not (out / "state.json").exists()
    assert json.loads((out / "progressive" / "state.json").read_text())["config"]["input_size"] == [32, 32]

    resume = ["train", "--out", str(out), "--resume", "--quiet", "--time-limit", "1e-6"]
    assert main(resume) == 0  # finishes stage 1 (epoch 2); no time left for stage 2
    assert "continue: edgematting train --out" in capsys.readouterr().out
    low = json.loads((out / "progressive" / "state.json").read_text())
    assert low["epoch"] == 2 and low["config"]["lr"] == pytest.approx(1e-3)
    assert not (out / "state.json").exists()
    low_model, low_spec = load_model_dir(out / "progressive")
    assert tuple(low_spec.input_size) == (32, 32)

    assert main(resume) == 0  # stage 2, epoch 1 of 2
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 1 and state["config"]["input_size"] == [64, 64]
    assert state["config"]["lr"] == pytest.approx(1e-3 * PROGRESSIVE_LR_FACTOR)
    assert state["config"]["init_weights"] == str(out / "progressive")
    assert state["init_weights_report"]["loaded"] == sum(1 for layer in low_model.layers if layer.weights)  # all of them
    assert state["init_weights_report"]["skipped"] == []

    # a different first stage is another model: refused
    assert main(["train", "--out", str(out), "--resume", "--progressive", "48:2"]) == 2
    assert "different model" in capsys.readouterr().err

    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 2 and state["iterations"] == 2 * 2  # the stage's own optimizer, resumed
    model, spec = load_model_dir(out)
    assert tuple(spec.input_size) == (64, 64)
    prog = spec.training["progressive"]
    assert prog["size"] == [32, 32] and prog["epochs"] == 2 and prog["best_metric"]["epoch"] in (1, 2)
    assert spec.training["lr"] == pytest.approx(1e-3 * PROGRESSIVE_LR_FACTOR)
    # a new run into the same folder is refused like any other
    with pytest.raises(InputError, match="not empty"):
        train(_cfg(out, epochs=2, progressive="32:2"), progress=False)


def test_progressive_validation(tmp_path):
    from edgematting.training import TrainConfig

    c = TrainConfig(input_size="256x192", progressive=" 128x96:84", out=str(tmp_path))
    assert c.progressive == "128x96:84" and c.progressive_stage == ((128, 96), 84)
    for bad, match in (("128", "SIZE:EPOCHS"), ("128:0", "SIZE:EPOCHS"), ("128:x", "SIZE:EPOCHS"),
                       ("256:4", "smaller than"), ("320:4", "smaller than"), ("100:4", "multiple of 16")):
        with pytest.raises(InputError, match=match):
            TrainConfig(input_size=256, progressive=bad)
    with pytest.raises(InputError, match="multiworker"):
        TrainConfig(input_size=256, progressive="128:4", strategy="multiworker")
    with pytest.raises(InputError, match="Nothing to resume.*not a progressive run"):
        from edgematting.training import train

        train(TrainConfig(**{**TINY, "out": str(tmp_path / "none"), "progressive": "32:1", "resume": True}),
              progress=False)
