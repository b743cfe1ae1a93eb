"""Training throughput (images/s) of a model, without the input pipeline.

    python -m edgematting.training.throughput --model fast-scnn --input-size 256 --batch-size 16 --steps 10

Feeds one fixed in-memory batch (random image, random soft alpha, fg/bg) so the number is
the training step alone (forward + loss + backward + Adam update); compare it with
`edgematting.data.pipeline.pipeline_throughput` to see whether the pipeline keeps up.
"""
from __future__ import annotations

import argparse
import json
import time


def measure_training_throughput(
    architecture: str,
    input_size=(256, 256),
    batch_size: int = 16,
    steps: int = 10,
    width: float = 1.0,
    warmup: int = 2,
) -> float:
    """Images per second of `steps` training steps after `warmup` untimed ones."""
    return measure_training_details(architecture, input_size, batch_size, steps, width, warmup)[
        "images_per_second"
    ]


def measure_training_details(
    architecture: str,
    input_size=(256, 256),
    batch_size: int = 16,
    steps: int = 10,
    width: float = 1.0,
    warmup: int = 2,
) -> dict:
    """Like `measure_training_throughput`, returning a dict: images_per_second and
    cpu_ms_per_image (this process's CPU time over the timed steps; on a shared machine
    it varies less with other load than wall time does)."""
    import numpy as np

    from .._tf import keras, tf
    from ..errors import InputError
    from ..models import architecture_config, build_model, parse_size
    from .losses import loss_for

    if steps < 1 or batch_size < 1 or warmup < 0:
        raise InputError("steps and batch_size must be >= 1 and warmup >= 0.")
    t, k = tf(), keras()
    h, w = parse_size(input_size)
    cfg = architecture_config(architecture, (h, w), width)
    model = build_model(architecture, **cfg)
    model.compile(optimizer=k.optimizers.Adam(1e-3), loss=loss_for(architecture))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch_size, h, w, 3)).astype(np.float32)
    y = rng.uniform(0, 1, (batch_size, h, w, 7)).astype(np.float32)
    x, y = t.constant(x), t.constant(y)
    for _ in range(max(1, warmup)):  # the first call traces the step function
        model.train_on_batch(x, y)
    c0, start = time.process_time(), time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)  # returns numpy: the step has finished
    seconds, cpu = time.perf_counter() - start, time.process_time() - c0
    n = steps * batch_size
    return {"images_per_second": n / seconds, "cpu_ms_per_image": 1000.0 * cpu / n, "seconds": seconds}


def main(argv=None) -> int:
    from ..models.registry import DEFAULT_ARCHITECTURE, architecture_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_ARCHITECTURE, choices=architecture_names())
    p.add_argument("--input-size", default="256")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--pipeline-batches", type=int, default=0,
                   help="also time the synthetic input pipeline over this many batches")
    a = p.parse_args(argv)
    out = {"model": a.model, "input_size": a.input_size, "batch_size": a.batch_size, "width": a.width}
    d = measure_training_details(a.model, a.input_size, a.batch_size, a.steps, a.width)
    out["train_images_per_second"] = round(d["images_per_second"], 2)
    out["train_cpu_ms_per_image"] = round(d["cpu_ms_per_image"], 1)
    if a.pipeline_batches:
        from ..data.pipeline import DataConfig, pipeline_throughput
        from ..models import parse_size

        cfg = DataConfig(source="synthetic", input_size=parse_size(a.input_size), batch_size=a.batch_size)
        out["pipeline"] = pipeline_throughput(cfg, a.pipeline_batches, details=True)
    print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
