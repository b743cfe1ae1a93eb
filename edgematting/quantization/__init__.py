"""Quantization-aware training (tfmot) for full-integer int8 export.

* `policy`  -- the declarative table of which layer classes QAT quantizes, folds or keeps
  float, with the reason for each; `annotate`, `quantize_model`, `describe_policy`.
* `qat`     -- `qat_finetune(model, spec, config)`: the QAT model the TFLite converter turns
  into full int8 (``precision="int8-qat"``).

How much of the int8 drop QAT recovers is measured by `edgematting.bench.qat_report`.

Nothing here imports TensorFlow at import time.
"""
from __future__ import annotations

__all__ = ["POLICY", "annotate", "describe_policy", "quantize_model", "qat_finetune"]


def __getattr__(name):
    if name in ("POLICY", "annotate", "describe_policy", "quantize_model"):
        from . import policy

        return getattr(policy, name)
    if name == "qat_finetune":
        from .qat import qat_finetune

        return qat_finetune
    raise AttributeError(name)
