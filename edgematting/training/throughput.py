"""Training throughput (images/s) of a model, and of the input pipeline that feeds it.

    python -m edgematting.training.throughput --model fast-scnn --input-size 256 --batch-size 16 --steps 10
    python -m edgematting.training.throughput --compare --pipeline-batches 20     # the table below

The model step is timed on one fixed in-memory batch (random image, random soft alpha,
fg/bg), so the number is the training step alone (forward + loss + backward + Adam
update); ``--pipeline-batches N`` also times the synthetic input pipeline alone
(`edgematting.data.pipeline.pipeline_throughput`), so the two can be compared: a pipeline
slower than the step starves the accelerator.

``--compare`` times every combination of ``--mixed-precision`` and ``--jit-compile``
values (default: off and bfloat16 on a CPU, off and float16 on a GPU; XLA off and on)
in one process, interleaved over ``--rounds`` rounds and keeping each one's best round,
so the ratios hold on a shared machine. It prints a Markdown table and, with ``--json``,
the same as JSON.
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


class _Step:
    """One compiled model (policy, XLA) and its fixed batch, ready to time."""

    def __init__(self, architecture, input_size, batch_size, width, policy, jit_compile, model_options):
        import numpy as np

        from .._tf import keras, tf
        from ..models import architecture_config, build_model, parse_size
        from .losses import loss_for
        from ..models.registry import get_architecture
        from .compute import dtype_policy
        from .loop import deeply_supervised

        t, k = tf(), keras()
        h, w = parse_size(input_size)
        cfg = architecture_config(architecture, (h, w), width, **(model_options or {}))
        with dtype_policy(policy):
            model = build_model(architecture, **cfg)
        loss = loss_for(architecture)
        # the model `train` fits (with the coarse output when the loss supervises it)
        model = deeply_supervised(model, get_architecture(architecture), loss.weights)
        model.compile(optimizer=k.optimizers.Adam(1e-3), loss=loss, jit_compile=bool(jit_compile))
        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, (batch_size, h, w, 3)).astype(np.float32)
        y = rng.uniform(0, 1, (batch_size, h, w, 7)).astype(np.float32)
        self.model, self.x, self.y, self.batch_size = model, t.constant(x), t.constant(y), batch_size
        self.policy, self.jit_compile = policy, bool(jit_compile)

    def warm(self, n: int) -> None:
        for _ in range(max(1, n)):  # the first call traces (and with XLA compiles) the step
            self.model.train_on_batch(self.x, self.y)

    def time(self, steps: int) -> dict:
        import math

        c0, start = time.process_time(), time.perf_counter()
        loss = None
        for _ in range(steps):
            loss = self.model.train_on_batch(self.x, self.y)  # numpy: the step has finished
        seconds, cpu = time.perf_counter() - start, time.process_time() - c0
        n = steps * self.batch_size
        return {"images_per_second": n / seconds, "cpu_ms_per_image": 1000.0 * cpu / n, "seconds": seconds,
                "finite_loss": bool(math.isfinite(float(loss)))}


def _check(steps, batch_size, warmup):
    from ..errors import InputError

    if steps < 1 or batch_size < 1 or warmup < 0:
        raise InputError("steps and batch_size must be >= 1 and warmup >= 0.")


def measure_training_details(
    architecture: str,
    input_size=(256, 256),
    batch_size: int = 16,
    steps: int = 10,
    width: float = 1.0,
    warmup: int = 2,
    policy: str = "float32",
    jit_compile: bool = False,
    model_options: dict | None = None,
) -> dict:
    """Like `measure_training_throughput`, returning a dict: images_per_second and
    cpu_ms_per_image (this process's CPU time over the timed steps; on a shared machine
    it varies less with other load than wall time does). `policy` is a Keras dtype policy
    (float32, mixed_float16, mixed_bfloat16), set only while the model is built."""
    _check(steps, batch_size, warmup)
    step = _Step(architecture, input_size, batch_size, width, policy, jit_compile, model_options)
    step.warm(warmup)
    return step.time(steps)


def compare_training(
    architecture: str,
    input_size=(256, 256),
    batch_size: int = 16,
    steps: int = 5,
    width: float = 1.0,
    warmup: int = 2,
    policies=("float32", "mixed_bfloat16"),
    jit=(False, True),
    rounds: int = 3,
    model_options: dict | None = None,
) -> list[dict]:
    """Training-step throughput of every (policy, XLA) pair, interleaved over `rounds`
    rounds in one process; each row keeps its best round (the least disturbed by other
    load) and the ratio to the first pair's. A pair that does not run here (bf16 + XLA on
    a CPU) gets a row with its "error" instead."""
    _check(steps, batch_size, warmup)
    from .._tf import tf

    variants, failed = [], []
    for p in policies:
        for j in jit:
            v = _Step(architecture, input_size, batch_size, width, p, j, model_options)
            try:
                v.warm(warmup)
            except (tf().errors.OpError, ValueError) as e:  # e.g. bf16 + XLA on a CPU
                lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
                why = [ln for ln in lines if "precision" in ln] or lines or [type(e).__name__]
                failed.append({"policy": p, "jit_compile": j, "error": why[0][:300]})
                continue
            variants.append(v)
    best: list[dict | None] = [None] * len(variants)
    for _ in range(max(1, rounds)):
        for i, v in enumerate(variants):
            r = v.time(steps)
            if best[i] is None or r["images_per_second"] > best[i]["images_per_second"]:
                best[i] = r
    base = best[0]["images_per_second"] if best else float("nan")
    rows = [
        {"policy": v.policy, "jit_compile": v.jit_compile, **b, "vs_first": b["images_per_second"] / base}
        for v, b in zip(variants, best)
    ]
    return rows + failed


_POLICY_NAMES = {"off": "float32", "float32": "float32", "float16": "mixed_float16", "bfloat16": "mixed_bfloat16"}


def _policies(text: str | None, gpu: bool) -> tuple[str, ...]:
    from ..errors import InputError

    if not text:
        return ("float32", "mixed_float16" if gpu else "mixed_bfloat16")
    out = []
    for item in text.split(","):
        key = item.strip().lower()
        if key not in _POLICY_NAMES:
            raise InputError(f"Unknown precision '{item}'. Choose from: off, float16, bfloat16.")
        out.append(_POLICY_NAMES[key])
    return tuple(out)


def _jits(text: str | None) -> tuple[bool, ...]:
    from ..errors import InputError

    if not text:
        return (False, True)
    out = []
    for item in text.split(","):
        key = item.strip().lower()
        if key not in ("on", "off"):
            raise InputError(f"Unknown --jit-compile value '{item}'. Choose from: on, off.")
        out.append(key == "on")
    return tuple(out)


def main(argv=None) -> int:
    from ..errors import EdgemattingError
    from ..models import parse_model_options
    from ..models.registry import DEFAULT_ARCHITECTURE, architecture_names

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=DEFAULT_ARCHITECTURE, choices=architecture_names())
    p.add_argument("--input-size", default="256")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--steps", type=int, default=10, help="timed steps (per round with --compare)")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--model-option", action="append", default=None, metavar="KEY=VALUE")
    p.add_argument("--pipeline-batches", type=int, default=0,
                   help="also time the synthetic input pipeline alone over this many batches")
    p.add_argument("--mixed-precision", default=None, metavar="off|float16|bfloat16[,...]",
                   help="precision(s) of the step (a comma list with --compare; default off, "
                   "or off,bfloat16 / off,float16 on a GPU with --compare)")
    p.add_argument("--jit-compile", default=None, metavar="off|on[,...]",
                   help="XLA for the step (a comma list with --compare; default off, or off,on with --compare)")
    p.add_argument("--compare", action="store_true", help="time every precision x XLA pair in one run")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds with --compare (best kept)")
    p.add_argument("--json", action="store_true", help="print JSON only")
    a = p.parse_args(argv)
    try:
        return _main(a, parse_model_options)
    except EdgemattingError as e:
        import sys

        print(f"error: {e}", file=sys.stderr)
        return e.exit_code


def _main(a, parse_model_options) -> int:
    from .._tf import tf
    from ..errors import InputError

    options = parse_model_options(a.model_option)
    gpu = bool(tf().config.list_physical_devices("GPU"))
    out = {"model": a.model, "input_size": a.input_size, "batch_size": a.batch_size, "width": a.width,
           "model_options": options, "device": "GPU" if gpu else "CPU", "cpus": _cpus()}
    if a.pipeline_batches:
        # first: the pool's worker processes are best started before the model runs
        from ..data.pipeline import DataConfig, pipeline_throughput
        from ..models import parse_size

        cfg = DataConfig(source="synthetic", input_size=parse_size(a.input_size), batch_size=a.batch_size)
        out["pipeline"] = pipeline_throughput(cfg, a.pipeline_batches, details=True)
    if a.compare:
        rows = compare_training(a.model, a.input_size, a.batch_size, a.steps, a.width,
                                policies=_policies(a.mixed_precision, gpu), jit=_jits(a.jit_compile),
                                rounds=a.rounds, model_options=options)
        out["train"] = rows
    else:
        policies, jits = _policies(a.mixed_precision or "off", gpu), _jits(a.jit_compile or "off")
        if len(policies) != 1 or len(jits) != 1:
            raise InputError("Several --mixed-precision / --jit-compile values need --compare.")
        d = measure_training_details(a.model, a.input_size, a.batch_size, a.steps, a.width,
                                     policy=policies[0], jit_compile=jits[0], model_options=options)
        out["train"] = [{"policy": policies[0], "jit_compile": jits[0], **d, "vs_first": 1.0}]
        out["train_images_per_second"] = round(d["images_per_second"], 2)
        out["train_cpu_ms_per_image"] = round(d["cpu_ms_per_image"], 1)
    if a.json:
        print(json.dumps(out, indent=2, default=str))
    else:
        print(format_table(out))
    return 0


def _cpus() -> int:
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def format_table(out: dict) -> str:
    """Markdown table: the pipeline alone and each training step, images/s side by side."""
    opts = "".join(f", {k}={v}" for k, v in out.get("model_options", {}).items())
    lines = [
        f"{out['model']}{opts}, {out['input_size']} px, batch {out['batch_size']}, width {out['width']}, "
        f"{out['device']} ({out['cpus']} cores)",
        "",
        "| what | images/s | CPU ms/image | vs first step |",
        "|---|---|---|---|",
    ]
    pipe = out.get("pipeline")
    if pipe:
        lines.append(f"| input pipeline alone (synthetic, augmented) | {pipe['images_per_second']:.1f} | "
                     f"{pipe['cpu_ms_per_image']:.1f} | |")
    for r in out["train"]:
        xla = " + XLA" if r["jit_compile"] else ""
        if "error" in r:
            lines.append(f"| training step, {r['policy']}{xla} | fails: {r['error'][:120]} | | |")
            continue
        lines.append(f"| training step, {r['policy']}{xla} | {r['images_per_second']:.1f} | "
                     f"{r['cpu_ms_per_image']:.1f} | {r['vs_first']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
