"""Where and in which precision a run computes: logical CPU devices, the `tf.distribute`
strategy, the chief worker, and the Keras dtype policy + XLA switch (`ComputePolicy`).

``EDGEMATTING_LOGICAL_CPUS=N`` (for tests and debugging, not in --help) splits the CPU into
N logical devices before TensorFlow initializes them, so ``strategy="mirrored"`` can be
exercised on a CPU-only machine.

TensorFlow is imported inside functions: `edgematting --help` must not load it.
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass

from ..errors import InputError, UnsupportedError
from .config import JitCompile, MixedPrecision, Strategy, TrainConfig, parse_enum

LOGICAL_CPUS_ENV = "EDGEMATTING_LOGICAL_CPUS"


def configure_logical_cpus(n: int | None = None) -> bool:
    """Split CPU:0 into `n` logical devices (default: $EDGEMATTING_LOGICAL_CPUS).

    Must run before TensorFlow initializes its devices; returns False (with a warning)
    if that already happened in this process.
    """
    if n is None:
        raw = os.environ.get(LOGICAL_CPUS_ENV)
        if not raw:
            return False
        try:
            n = int(raw)
        except ValueError:
            raise InputError(f"{LOGICAL_CPUS_ENV} must be an integer, got {raw!r}.") from None
    if n < 2:
        return False
    from .._tf import tf

    t = tf()
    cpus = t.config.list_physical_devices("CPU")
    try:
        t.config.set_logical_device_configuration(
            cpus[0], [t.config.LogicalDeviceConfiguration() for _ in range(n)]
        )
    except RuntimeError:
        if len(t.config.list_logical_devices("CPU")) == n:
            return True
        print(
            f"warning: {LOGICAL_CPUS_ENV}={n} ignored: TensorFlow devices were already "
            "initialized in this process.",
            file=sys.stderr,
        )
        return False
    return True


def make_strategy(name: Strategy | str):
    """The `tf.distribute` strategy for `name` (default | mirrored | multiworker)."""
    from .._tf import tf

    t = tf()
    name = parse_enum(Strategy, name, "strategy")
    if name is Strategy.DEFAULT:
        return t.distribute.get_strategy()
    if name is Strategy.MIRRORED:
        gpus = t.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or t.config.list_logical_devices("CPU"))]
        # MirroredStrategy() alone would use only CPU:0 on a machine without GPUs.
        return t.distribute.MirroredStrategy(devices=devices)
    # MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG; without it, it runs
    # as a single worker over the local devices.
    return t.distribute.MultiWorkerMirroredStrategy()


@dataclass(frozen=True)
class ComputePolicy:
    """How a run computes, as `resolve_compute_policy` decided it (recorded in model.json's
    training). Not to be confused with `edgematting.converters.Precision`, the numeric
    precision of an exported model (fp32, fp16, int8...)."""

    policy: str  # Keras dtype policy of the training model: float32 | mixed_float16 | mixed_bfloat16
    jit_compile: bool
    device: str  # "GPU" or "CPU": what "auto" looked at

    def to_dict(self, cfg: TrainConfig) -> dict:
        return {
            "mixed_precision": {"requested": cfg.mixed_precision.value, "policy": self.policy},
            "jit_compile": {"requested": cfg.jit_compile.value, "enabled": self.jit_compile},
            "device": self.device,
        }


_POLICIES = {
    MixedPrecision.OFF: "float32",
    MixedPrecision.FLOAT16: "mixed_float16",
    MixedPrecision.BFLOAT16: "mixed_bfloat16",
}


def resolve_compute_policy(mixed_precision=MixedPrecision.AUTO, jit_compile=JitCompile.AUTO, gpu: bool | None = None) -> ComputePolicy:
    """Turn --mixed-precision / --jit-compile into a dtype policy and an XLA switch.

    ``auto`` means float16 + XLA with a GPU, and float32 without XLA on a CPU, because on a
    CPU neither helps: on a 2-core x86 CPU with native bfloat16 (TensorFlow reports
    AVX512_BF16), Fast-SCNN 256x256 batch 16, the bfloat16 step ran at 0.72-0.81x the float32
    images/s (41 vs 38-39 CPU-ms/image) and the XLA step at 0.05-0.07x (345-348
    CPU-ms/image), measured twice with ``python -m edgematting.training.throughput --compare``.
    Explicit values are used as given, on any device; float16 on a CPU only prints a
    warning (TensorFlow emulates it there and it is slow).
    """
    if gpu is None:
        from .._tf import tf

        gpu = bool(tf().config.list_physical_devices("GPU"))
    mp = parse_enum(MixedPrecision, mixed_precision, "--mixed-precision")
    jc = parse_enum(JitCompile, jit_compile, "--jit-compile")
    policy = ("mixed_float16" if gpu else "float32") if mp is MixedPrecision.AUTO else _POLICIES[mp]
    jit = gpu if jc is JitCompile.AUTO else jc is JitCompile.ON
    if policy == "mixed_bfloat16" and jit and not gpu:
        # TensorFlow's XLA CPU backend rejects the bf16 training step ("Seen floating point
        # types of different precisions in ReluGrad ... mixed precision is disallowed").
        raise UnsupportedError(
            "--mixed-precision bfloat16 with --jit-compile on does not compile on a CPU "
            "(TensorFlow's XLA CPU backend rejects mixed bf16/f32 gradients); use one of the two."
        )
    if policy == "mixed_float16" and not gpu:
        print("warning: --mixed-precision float16 on a CPU is emulated and slow; bfloat16 or off "
              "is what a CPU runs natively.", file=sys.stderr)
    return ComputePolicy(policy=policy, jit_compile=bool(jit), device="GPU" if gpu else "CPU")


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras' global dtype policy set to `name` inside the block, restored after it.

    Layers take the policy when they are built, so a model built inside keeps it; a model
    whose output layer declares ``dtype="float32"`` (every registered architecture's
    ``alpha`` does) returns float32 under a mixed policy, so losses and metrics stay float32.
    """
    from .._tf import keras

    mp = keras().mixed_precision
    old = mp.global_policy()
    mp.set_global_policy(name)
    try:
        yield
    finally:
        mp.set_global_policy(old)


def is_chief(strategy) -> bool:
    """Whether this process writes the run directory: the only worker, the "chief" task, or
    worker 0 of a cluster without a chief."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    spec = resolver.cluster_spec().as_dict()
    if resolver.task_type == "chief":
        return True
    return resolver.task_type == "worker" and resolver.task_id == 0 and "chief" not in spec
