"""How much of the post-training int8 accuracy drop quantization-aware training recovers.

    from edgematting.bench.qat_report import qat_recovery
    r = qat_recovery("runs/fast_scnn", n=32, qat_steps=200)
    # {"iou_fp32": ..., "iou_ptq": ..., "iou_qat": ..., "ptq_drop": ..., "qat_drop": ...,
    #  "recovered_fraction": ...}

Mask IoU (`evaluation.metrics.iou`, alpha >= spec.threshold, mean over images) of three
models on the same images:

* ``fp32`` -- the Keras model;
* ``ptq``  -- TFLite full-integer int8, post-training calibrated (``precision="int8"``);
* ``qat``  -- TFLite full-integer int8 after `quantization.qat.qat_finetune` (``precision="int8-qat"``).

Reference: with ``data=None``, synthetic portraits (`calibration.VERIFY_SEED`, never used
for calibration or QAT) and their ground-truth alpha. With a folder, its images are
compared against the Keras model's own thresholded mask (no ground truth is read), so
``iou_fp32`` is 1.0 and each drop is simply 1 - IoU.

``ptq_drop = iou_fp32 - iou_ptq``, ``qat_drop = iou_fp32 - iou_qat``,
``recovered_fraction = (ptq_drop - qat_drop) / ptq_drop`` (1.0: QAT removes the whole
drop, 0: no better than PTQ, < 0: worse; None when PTQ lost nothing, nothing to recover).
Both artifacts are converted with the project's TFLite converter (`converters.convert_model`,
verification off: this report is the comparison) and run with `runners.tflite.TFLiteRunner`.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .. import atomic


def _eval_images(spec, data, n: int):
    """(x normalized (n,H,W,3), reference alpha (n,H,W) or None)."""
    from ..calibration import VERIFY_SEED, folder_images

    if data:
        px = folder_images(spec, data, n)
        return spec.normalize(px).astype(np.float32), None
    from ..data.synthetic import SyntheticPortraits

    gen = SyntheticPortraits(size=tuple(spec.input_size), seed=VERIFY_SEED)
    xs, gts = [], []
    for i in range(int(n)):
        s = gen.sample(i)
        xs.append(spec.normalize(s["image"][..., :3]))
        gts.append(s["alpha"])
    return np.stack(xs).astype(np.float32), np.stack(gts).astype(np.float32)


def mean_iou(pred: np.ndarray, ref: np.ndarray, threshold: float = 0.5) -> float:
    """Mean per-image mask IoU of alpha maps (N,H,W[,1]) thresholded at `threshold`."""
    from ..evaluation.metrics import evaluate_alpha, summarize

    pred = np.asarray(pred).reshape(len(pred), *np.asarray(pred).shape[1:3])
    ref = np.asarray(ref).reshape(len(ref), *np.asarray(ref).shape[1:3])
    rows = [evaluate_alpha(p, r, threshold=threshold, keys=("iou",)) for p, r in zip(pred, ref)]
    return summarize(rows, ("iou",))["iou"]


def _keras_predict(model, x, batch=8):
    return np.concatenate([np.asarray(model(x[i : i + batch], training=False))
                           for i in range(0, len(x), batch)])


def qat_recovery(model_dir, data: str | os.PathLike | None = None, n: int = 32, qat_steps: int = 200,
                 calib_samples: int = 64, out_dir=None, progress: bool = False, qat: dict | None = None) -> dict:
    """Measure IoU of fp32 / PTQ int8 / QAT int8 and the fraction of the PTQ drop QAT recovers."""
    from ..converters import convert_model
    from ..converters.base import ExportConfig
    from ..modelio import load_model_dir
    from ..runners.tflite import TFLiteRunner

    model, spec = load_model_dir(model_dir)
    x, gt = _eval_images(spec, str(data) if data else None, n)
    thr = float(spec.threshold)
    y_fp32 = _keras_predict(model, x)
    ref = gt if gt is not None else (y_fp32[..., 0] >= thr).astype(np.float32)

    out = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="qat_recovery_"))
    result: dict = {"model_dir": str(model_dir), "n": int(n), "reference": "ground truth" if gt is not None
                    else "keras fp32 mask", "data": str(data) if data else "synthetic", "qat_steps": int(qat_steps)}
    ious = {"fp32": mean_iou(y_fp32, ref, thr)}
    for key, precision in (("ptq", "int8"), ("qat", "int8-qat")):
        cfg = ExportConfig(target="tflite", precision=precision, calib_samples=calib_samples, verify=False,
                           tflite={"qat": {"steps": int(qat_steps), **(qat or {})}})
        t0 = time.perf_counter()
        art = convert_model(model_dir, cfg, out_dir=out / key, progress=progress, model=model, spec=spec)
        result[f"{key}_seconds"] = round(time.perf_counter() - t0, 1)
        result[f"{key}_path"] = str(art.path)
        ious[key] = mean_iou(TFLiteRunner(art.path).run(x), ref, thr)
    ptq_drop = ious["fp32"] - ious["ptq"]
    qat_drop = ious["fp32"] - ious["qat"]
    result.update(
        iou_fp32=ious["fp32"], iou_ptq=ious["ptq"], iou_qat=ious["qat"],
        ptq_drop=ptq_drop, qat_drop=qat_drop,
        recovered_fraction=(ptq_drop - qat_drop) / ptq_drop if ptq_drop > 1e-9 else None,
    )
    return result


def main(argv=None) -> int:  # python -m edgematting.bench.qat_report MODEL_DIR [--n N] [--qat-steps S]
    import argparse
    import json

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model_dir")
    p.add_argument("--data", default=None)
    p.add_argument("--n", type=int, default=32)
    p.add_argument("--qat-steps", type=int, default=200)
    p.add_argument("--calib-samples", type=int, default=64)
    p.add_argument("--out", default=None)
    p.add_argument("--json", default=None, help="also write the result here")
    a = p.parse_args(argv)
    r = qat_recovery(a.model_dir, a.data, a.n, a.qat_steps, a.calib_samples, a.out, progress=True)
    text = json.dumps(r, indent=2)
    print(text)
    if a.json:

        atomic.write_json(a.json, r)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
