"""Mixed precision and XLA in training: `--mixed-precision`, `--jit-compile`, the float32
export, and the throughput tool that compares them.

Tiny settings (32x32, width 0.25, batch 2, one step): these check that each mode runs and
exports a float32 model that loads, predicts and converts, not how fast it is.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgematting.errors import InputError, UnsupportedError

TINY = dict(input_size=32, width=0.25, batch_size=2, steps_per_epoch=1, epochs=1, n_synthetic_val=2,
            synthetic_pool=4, lr=1e-3)


@pytest.fixture(autouse=True)
def _pool_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))


def _global_policy():
    from edgematting._tf import keras

    return keras().mixed_precision.global_policy().name


def _train(out, **kw):
    from edgematting.training import TrainConfig, train

    return train(TrainConfig(**{**TINY, "out": str(out), **kw}), progress=False)


@pytest.mark.parametrize(
    "flags,policy,jit",
    [
        # bfloat16 and XLA each take ~30-60 s on 2 cores: `pytest -m slow`
        pytest.param(dict(mixed_precision="bfloat16"), "mixed_bfloat16", False, marks=pytest.mark.slow),
        pytest.param(dict(jit_compile="on"), "float32", True, marks=pytest.mark.slow),
        # the GPU default's code path (LossScaleOptimizer around the checkpointed Adam), run
        # on the CPU where float16 is emulated: one step is enough to check it works. 20-35 s
        # on 2 cores, and not what a CPU run does by default: `pytest -m slow` as well
        pytest.param(dict(mixed_precision="float16"), "mixed_float16", False, marks=pytest.mark.slow),
    ],
    ids=["bfloat16", "xla", "float16"],
)
def test_one_step_exports_a_float32_model(tmp_path, flags, policy, jit):
    from edgematting.modelio import load_model_dir

    before = _global_policy()
    r = _train(tmp_path / "run", **flags)
    assert _global_policy() == before == "float32"  # restored
    assert r.optimizer_iterations == 1 and r.epochs_completed == 1
    assert np.isfinite(r.history["loss"][0])
    training = json.loads((tmp_path / "run" / "model.json").read_text())["training"]
    assert training["mixed_precision"] == {"requested": flags.get("mixed_precision", "auto"), "policy": policy}
    assert training["jit_compile"] == {"requested": flags.get("jit_compile", "auto"), "enabled": jit}
    assert training["device"] == "CPU"
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["config"]["mixed_precision"] == flags.get("mixed_precision", "auto")

    model, spec = load_model_dir(tmp_path / "run")
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    assert all(w.dtype == "float32" for w in model.weights)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = model(x, training=False).numpy()
    assert y.dtype == np.float32 and y.shape == (2, 32, 32, 1) and np.all(np.isfinite(y))
    # the trained (mixed) model and the exported float32 one hold the same weights
    for a, b in zip(r.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_bfloat16_trained_model_converts(tmp_path):
    """An export of a bf16 run is an ordinary float32 model.keras: it converts like any other."""
    # (a model trained 1 step is not confident, so parity here shows only that it converts
    # and runs; the float32 export is what is checked)
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.modelio import load_model_dir

    _train(tmp_path / "run", mixed_precision="bfloat16")
    model, _ = load_model_dir(tmp_path / "run")
    assert {w.dtype.name for w in model.weights} == {"float32"}
    assert model.compute_dtype == "float32" and model.output.dtype.name == "float32"
    art = convert_model(tmp_path / "run", ExportConfig(target="tflite", precision="fp32", verify_samples=2),
                        out_dir=tmp_path / "export", progress=False)
    assert art.verification.passed and art.verification.max_abs <= 1e-4


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_resume_may_change_precision(tmp_path):
    """Precision is not part of the model: a run resumes under another policy."""
    from edgematting.training import load_run_config, train

    _train(tmp_path / "run", epochs=2, time_limit=1e-6, mixed_precision="bfloat16")
    cfg = load_run_config(tmp_path / "run", mixed_precision="off")
    r = train(cfg, progress=False)
    assert r.epochs_completed == 2 and r.optimizer_iterations == 2
    training = json.loads((tmp_path / "run" / "model.json").read_text())["training"]
    assert training["mixed_precision"]["policy"] == "float32"


def test_resolve_compute_policy(capsys):
    from edgematting.training.compute import ComputePolicy, resolve_compute_policy

    assert resolve_compute_policy("auto", "auto", gpu=False) == ComputePolicy("float32", False, "CPU")
    assert resolve_compute_policy("auto", "auto", gpu=True) == ComputePolicy("mixed_float16", True, "GPU")
    assert resolve_compute_policy("off", "off", gpu=True) == ComputePolicy("float32", False, "GPU")
    assert resolve_compute_policy("bfloat16", "off", gpu=False).policy == "mixed_bfloat16"
    assert resolve_compute_policy("bfloat16", "on", gpu=True) == ComputePolicy("mixed_bfloat16", True, "GPU")
    assert resolve_compute_policy("off", "on", gpu=False).jit_compile is True
    with pytest.raises(UnsupportedError, match="bfloat16 with --jit-compile on"):
        resolve_compute_policy("bfloat16", "on", gpu=False)
    assert resolve_compute_policy("float16", "off", gpu=False).policy == "mixed_float16"  # as asked ...
    assert "emulated and slow" in capsys.readouterr().err  # ... with a warning
    with pytest.raises(InputError, match="Did you mean 'bfloat16'"):
        resolve_compute_policy("bf16x", "auto", gpu=False)


def test_dtype_policy_is_restored_after_an_error():
    from edgematting.training.compute import dtype_policy

    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_bfloat16"):
            assert _global_policy() == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert _global_policy() == "float32"


def test_bad_values_are_input_errors(tmp_path, capsys):
    from edgematting.cli import main
    from edgematting.training import TrainConfig

    with pytest.raises(InputError, match="^Unknown --mixed-precision 'fp16'. Choose one of: auto, off, "
                       "float16, bfloat16. Did you mean 'float16'"):
        TrainConfig(mixed_precision="fp16")
    with pytest.raises(InputError, match="Unknown --jit-compile 'yes'. Choose one of: auto, on, off"):
        TrainConfig(jit_compile="yes")
    c = TrainConfig(mixed_precision="BFLOAT16", jit_compile="Off")
    assert c.to_dict()["mixed_precision"] == "bfloat16" and c.to_dict()["jit_compile"] == "off"
    base = ["train", "--out", str(tmp_path / "r"), "--epochs", "1"]
    assert main(base + ["--mixed-precision", "fp16"]) == InputError.exit_code == 2
    assert "Did you mean 'float16'" in capsys.readouterr().err
    assert main(base + ["--jit-compile", "maybe"]) == 2
    assert "--jit-compile" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_throughput_compare_and_table():
    from edgematting.training.throughput import compare_training, format_table

    rows = compare_training("fast-scnn", 32, batch_size=2, steps=1, width=0.25, warmup=1,
                            policies=("float32", "mixed_bfloat16"), jit=(False, True), rounds=1)
    by = {(r["policy"], r["jit_compile"]): r for r in rows}
    assert set(by) == {("float32", False), ("float32", True), ("mixed_bfloat16", False), ("mixed_bfloat16", True)}
    assert by[("float32", False)]["vs_first"] == 1.0
    for key in (("float32", False), ("float32", True), ("mixed_bfloat16", False)):
        assert by[key]["images_per_second"] > 0 and by[key]["finite_loss"], key
    assert "error" in by[("mixed_bfloat16", True)]  # XLA CPU rejects the bf16 step
    assert _global_policy() == "float32"
    text = format_table({"model": "fast-scnn", "input_size": "32", "batch_size": 2, "width": 0.25,
                         "model_options": {}, "device": "CPU", "cpus": 2, "train": rows,
                         "pipeline": {"images_per_second": 50.0, "cpu_ms_per_image": 3.0}})
    assert "| input pipeline alone (synthetic, augmented) | 50.0 |" in text
    assert "training step, mixed_bfloat16 + XLA | fails:" in text
