"""`--strategy multiworker` with two real worker processes on 127.0.0.1.

Two `python -m edgematting train` processes with TF_CONFIG (worker 0 is the chief), the
same --out, a tiny model: both must finish, the chief must write exactly one loadable
model, and the other worker must leave nothing behind (in the chief's folder or in its
own temporary folder).
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
# Measured for both workers on 2 cores shared with other jobs: 57 s at load average ~7,
# 190 s at ~12 (two TensorFlow start-ups, two synthetic pools, a gRPC cluster). Not `slow`
# (about a minute on its own); the timeout leaves room for a busy machine.
TIMEOUT_S = 300


def _free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _env(index, ports, tmp):
    env = dict(os.environ)
    env.update({
        "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg",
        "TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                 "task": {"type": "worker", "index": index}}),
        # each worker's temporary files in a folder of its own, checked empty at the end
        "TMPDIR": str(tmp / f"tmp{index}"),
        "EDGEMATTING_CACHE_DIR": str(tmp / f"cache{index}"),
        # one thread pool each: two TensorFlow processes share the machine's cores
        "TF_NUM_INTEROP_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "OMP_NUM_THREADS": "1",
    })
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    (tmp / f"tmp{index}").mkdir()
    return env


# about 60-100 s on 2 cores (two TensorFlow processes): run with `pytest -m slow`
@pytest.mark.slow
def test_two_workers_train_and_only_the_chief_writes(tmp_path):
    out = tmp_path / "run"
    ports = _free_ports(2)
    cmd = [
        sys.executable, "-m", "edgematting", "train", "--model", "fast-scnn", "--data", "synthetic",
        "--input-size", "32", "--width", "0.25", "--epochs", "2", "--steps-per-epoch", "2",
        "--batch-size", "4", "--strategy", "multiworker", "--out", str(out), "--quiet",
    ]
    t0 = time.monotonic()
    procs = [subprocess.Popen(cmd, env=_env(i, ports, tmp_path), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    results = []
    try:
        for p in procs:
            o, e = p.communicate(timeout=max(1, TIMEOUT_S - (time.monotonic() - t0)))
            results.append((p.returncode, o, e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    print(f"two workers: {time.monotonic() - t0:.0f} s")
    for i, (rc, o, e) in enumerate(results):
        assert rc == 0, f"worker {i} exited {rc}:\n{o[-1500:]}\n{e[-3000:]}"

    # the chief's folder: one model, its logs and its resume state, nothing else
    names = {p.name for p in out.iterdir()}
    assert names == {"model.keras", "model.json", "state.json", "history.csv", "history.json",
                     "curves.png", "backup"}, names
    assert len(list(out.rglob("*.keras"))) == 1 and len(list(out.rglob("model.json"))) == 1
    backup = sorted(p.name for p in (out / "backup").iterdir())
    state = json.loads((out / "state.json").read_text())
    assert state["epoch"] == 2 and state["config"]["strategy"] == "multiworker"
    # only the files state.json points at: a second writer would have left its own
    assert backup == sorted({state["best_weights"], *[p.name for p in (out / "backup").glob(state["checkpoint"] + ".*")]})
    assert len(json.loads((out / "history.json").read_text())["history"]["loss"]) == 2

    from edgematting.modelio import load_model_dir

    model, spec = load_model_dir(out)
    assert spec.training["strategy"] == "multiworker" and spec.training["epochs_completed"] == 2
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (2, 32, 32, 1) and np.all(np.isfinite(y))

    # the non-chief cleaned up its working folder (checkpoints, state) on the way out
    leftovers = [str(p.relative_to(tmp_path)) for p in (tmp_path / "tmp1").rglob("*")]
    assert not leftovers, leftovers
    assert "replicas" in results[0][1]  # the chief printed its summary table
