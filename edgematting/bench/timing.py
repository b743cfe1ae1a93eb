"""Timing and memory probes shared by the benchmarks."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np


@dataclass
class Timing:
    median_ms: float
    p90_ms: float
    mean_ms: float
    runs: int

    def to_dict(self):
        return {"median_ms": self.median_ms, "p90_ms": self.p90_ms, "mean_ms": self.mean_ms, "runs": self.runs}


def time_fn(fn, runs: int = 50, warmup: int = 5) -> Timing:
    """Call fn() warmup times, then time `runs` calls individually (perf_counter)."""
    for _ in range(warmup):
        fn()
    ts = np.empty(runs, np.float64)
    for i in range(runs):
        t = time.perf_counter()
        fn()
        ts[i] = time.perf_counter() - t
    ts *= 1e3
    return Timing(float(np.median(ts)), float(np.percentile(ts, 90)), float(ts.mean()), runs)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: fall back to the (monotonic) high-water mark
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakRSS:
    """Peak resident memory above the level at entry, sampled every 2 ms in a thread."""

    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self):
        self.baseline = self.peak = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes())
            self._stop.wait(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_bytes())

    @property
    def delta_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


_PROBE_CACHE: dict[int, float] = {}


def matmul_peak_gflops(num_threads: int = 1, n: int = 512, runs: int = 20) -> float:
    """This machine's achievable float32 GFLOP/s in the same runtime as our models.

    A TFLite model of one (n x n) @ (n x n) matmul (FULLY_CONNECTED, XNNPACK) timed with
    `num_threads` threads: the ceiling a conv network could reach in LiteRT here.
    """
    if num_threads in _PROBE_CACHE:
        return _PROBE_CACHE[num_threads]
    from ai_edge_litert.interpreter import Interpreter

    from .._tf import keras, tf

    k = keras()
    inp = k.Input((n,), batch_size=n)
    out = k.layers.Dense(n, use_bias=False)(inp)
    data = tf().lite.TFLiteConverter.from_keras_model(k.Model(inp, out)).convert()
    it = Interpreter(model_content=data, num_threads=num_threads)
    it.allocate_tensors()
    idx = it.get_input_details()[0]["index"]
    x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    it.set_tensor(idx, x)
    t = time_fn(it.invoke, runs=runs, warmup=3)
    gflops = 2.0 * n**3 / (t.median_ms * 1e-3) / 1e9
    _PROBE_CACHE[num_threads] = gflops
    return gflops
