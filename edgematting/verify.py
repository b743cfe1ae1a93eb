"""Does a converted artifact reproduce the Keras model? One table of tolerances, one report.

`verify_artifact` runs the artifact (the runtime of `edgematting.runners`, driven by the
metadata embedded in the file; Core ML artifacts go to `runners.coreml.CoreMLRunner`)
and the Keras model on the same N inputs and
checks, per output: max and mean absolute error, PSNR and the IoU of the masks
thresholded at the metadata's threshold. Every check is evaluated and reported (a line
each, as Optimum's `validate_model_outputs`); failures are raised together once, as a
`ParityError` carrying the `VerificationReport`.

Both sides see identical data: inputs are uint8 pixels (from --data or synthetic),
normalized once; runners of uint8-input artifacts recover exactly those pixels.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, runners
from .calibration import default_source, verification_images
from .contract import SIDECAR_ONLY_KEYS, read_sidecar, sidecar_path
from .errors import InputError, ParityError
from .finite import CONVERTER
from .formats import TOLERANCES, Tolerance, target_of, tolerance_for
from .runners.photo import from_keras, from_runner

__all__ = ["TOLERANCES", "Tolerance", "tolerance_for", "VerificationReport", "compare", "check", "verify_artifact",
           "record_verification", "default_model_dir"]


@dataclass
class VerificationReport:
    artifact: str
    target: str
    precision: str
    engine: str
    reference: str
    n: int
    data: str
    max_abs: float
    mean_abs: float
    psnr: float
    iou: float
    iou_checked: float
    band_fraction: float
    threshold: float
    tolerances: dict[str, Any]
    checks: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["passed"] = self.passed
        for k in ("max_abs", "mean_abs", "psnr", "iou"):
            v = d[k]
            d[k] = None if (v is None or not math.isfinite(v)) else float(v)
        if not math.isfinite(self.psnr):
            d["psnr_note"] = "outputs identical (infinite PSNR)"
        return d

    def summary(self) -> str:
        status = "passed" if self.passed else "FAILED"
        psnr = "inf" if not math.isfinite(self.psnr) else f"{self.psnr:.1f}"
        return (f"{status}: max abs {self.max_abs:.2e}, mean abs {self.mean_abs:.2e}, "
                f"PSNR {psnr} dB, IoU {self.iou:.4f} (checked {self.iou_checked:.4f}, "
                f"{self.band_fraction:.0%} near threshold) ({self.n} images, {self.engine})")


def _iou(a, b) -> float:
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum()) / union


def compare(ref: np.ndarray, out: np.ndarray, threshold: float = 0.5, band: float = 0.0) -> dict[str, float]:
    """max/mean abs error, PSNR (peak 1) and mask IoU between two (N,H,W,1) outputs.

    iou: plain IoU of the thresholded masks; iou_checked: IoU over the pixels whose
    reference is at least `band` from the threshold (equal to iou when band is 0);
    band_fraction: the share of pixels left out."""
    ref = np.asarray(ref, np.float64)
    out = np.asarray(out, np.float64)
    if ref.shape != out.shape:
        raise ValueError(f"output shape {out.shape} differs from the Keras model's {ref.shape}")
    d = np.abs(out - ref)
    mse = float(np.mean(d**2))
    a, b = ref >= threshold, out >= threshold
    keep = np.abs(ref - threshold) >= band
    return {
        "max_abs": float(d.max()),
        "mean_abs": float(d.mean()),
        "psnr": float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse),
        "iou": _iou(a, b),
        "iou_checked": _iou(a & keep, b & keep),
        "band_fraction": float(1.0 - keep.mean()),
    }


def check(metrics: dict[str, float], tol: Tolerance) -> tuple[list[dict], list[str]]:
    """Evaluate every bound of `tol`; return (checks, failure lines)."""
    checks, failures = [], []
    for name, metric, bound, ok in (
        ("max_abs", metrics["max_abs"], tol.max_abs, lambda v, b: v <= b),
        ("mean_abs", metrics["mean_abs"], tol.mean_abs, lambda v, b: v <= b),
        ("iou", metrics.get("iou_checked", metrics["iou"]), tol.min_iou, lambda v, b: v >= b),
        ("psnr", metrics["psnr"], tol.min_psnr, lambda v, b: v >= b),
    ):
        if bound is None:
            continue
        passed = bool(ok(metric, bound))
        op = ">=" if name in ("iou", "psnr") else "<="
        checks.append({"check": name, "value": metric, "bound": bound, "op": op, "passed": passed})
        if not passed:
            failures.append(f"alpha: {name} {metric:.4g} is not {op} {bound:g} ({tol.reason})")
    return checks, failures


def default_model_dir(artifact: str | os.PathLike) -> Path | None:
    """MODEL_DIR when the artifact sits in MODEL_DIR/export/ (or MODEL_DIR/), else None."""
    p = Path(artifact).resolve()
    for cand in (p.parent.parent, p.parent):
        if (cand / "model.json").is_file():
            return cand
    return None


def verify_artifact(
    artifact: str | os.PathLike,
    model_dir: str | os.PathLike | None = None,
    *,
    model=None,
    spec=None,
    data: str | None = None,
    n: int = 8,
    tolerance: Tolerance | None = None,
    runner_kwargs: dict | None = None,
    raise_on_failure: bool = True,
) -> VerificationReport:
    """Compare `artifact` against the Keras model (given, or loaded from `model_dir`).

    Raises ParityError (with `.report`) listing every failed check, unless
    raise_on_failure is False.
    """
    import time

    t0 = time.perf_counter()
    artifact = Path(artifact)
    if not artifact.exists():
        raise InputError(f"Artifact not found: {artifact}")
    if model is None:
        if model_dir is None:
            model_dir = default_model_dir(artifact)
            if model_dir is None:
                raise InputError(
                    f"Cannot find the Keras model for {artifact} (looked for model.json in its "
                    "parent's parent). Pass --model MODEL_DIR."
                )
        ref = runners.open(model_dir)
    else:
        ref = from_keras(model, spec)
    spec = ref.spec
    n = int(n)
    if n < 1:
        raise InputError("-n/--verify-samples must be at least 1.")
    runner = runners.load_runner(artifact, **(runner_kwargs or {}))
    meta = getattr(runner, "metadata", None) or {}
    runners.check_sidecar(artifact, meta)
    target = meta.get("target") or target_of(artifact)
    precision = meta.get("precision", "fp32")
    if meta.get("input"):
        h, w = meta["input"].get("height"), meta["input"].get("width")
        if (h, w) != tuple(spec.input_size):
            raise InputError(
                f"{artifact} takes {h}x{w} input but the model {spec.name} "
                f"takes {spec.input_size[0]}x{spec.input_size[1]}: pass the --model it was converted from."
            )
    tol = tolerance or tolerance_for(target, precision)
    data = default_source(spec, data)  # unset: the model's training photos, else synthetic
    pixels = verification_images(spec, data, n)
    from .calibration import verification_priors
    from .prior import with_prior

    # a prior-frame model: simulated previous-frame alphas (a quarter of them empty), not noise
    x = with_prior(spec, spec.normalize(pixels).astype(np.float32), verification_priors(spec, len(pixels)))
    ref_out = ref.run_normalized(x)  # NonFiniteError naming the Keras layer
    art = from_runner(runner, target, artifact, meta)
    if art.contract["output_quant"] is not None:  # an integer (e.g. 8-bit image) output
        lo, hi = art.contract["range"]
        tol = tol.for_output_step(float(art.contract["output_quant"][0]) / (hi - lo))
    art.nonfinite_hint = CONVERTER  # the Keras model's outputs are finite
    out = art.run_normalized(x)
    threshold = float((meta.get("output") or {}).get("threshold", spec.threshold))
    metrics = compare(ref_out, out, threshold, tol.iou_band)
    checks, failures = check(metrics, tol)
    report = VerificationReport(
        artifact=str(artifact), target=target, precision=precision,
        engine=getattr(runner, "engine", type(runner).__name__),
        reference=ref.engine, n=len(x), data=str(data),
        threshold=threshold, tolerances=tol.to_dict(), checks=checks, failures=failures,
        seconds=round(time.perf_counter() - t0, 3), **metrics,
    )
    if failures and raise_on_failure:
        raise ParityError(
            f"{artifact.name} does not reproduce the Keras model ({target} {precision}, "
            f"{report.engine}, {report.n} images):", failures=failures, report=report)
    return report


def record_verification(artifact: str | os.PathLike, report: VerificationReport, embedded: dict | None = None) -> Path | None:
    """Store `report` in the artifact's sidecar; None when it has none.

    The sidecar is rewritten only as ``embedded metadata + conversion + this verification``,
    and only after checking again (`check_sidecar`) that it describes the file: a sidecar
    that belongs to another file (an int8 file copied over the fp32 name) is an InputError
    and is left as it was, so the update can never make a sidecar inconsistent."""
    side = read_sidecar(artifact, required=False)
    if side is None:
        return None
    if embedded is None:
        embedded = runners.read_embedded_metadata(artifact)
    runners.check_sidecar(artifact, embedded)
    if report.artifact and Path(report.artifact).resolve() != Path(artifact).resolve():
        raise InputError(f"The report is of {report.artifact}, not of {artifact}; the sidecar was not changed.")
    meta = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS} if not embedded else dict(embedded)
    if "conversion" in side:
        meta["conversion"] = side["conversion"]
    meta["verification"] = {**report.to_dict(), "sha256": atomic.digest(artifact)}
    atomic.write_json(sidecar_path(artifact), meta)
    return sidecar_path(artifact)
