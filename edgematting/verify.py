"""Does a converted artifact reproduce the Keras model? One table of tolerances, one report.

`verify_artifact` runs the artifact (through `runners.load_runner`, so Core ML artifacts
go to `runners.coreml.CoreMLRunner`) and the Keras model on the same N inputs and
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

from .contract import target_of
from .errors import InputError, ParityError


@dataclass(frozen=True)
class Tolerance:
    max_abs: float | None = None  # largest |artifact - keras| over all pixels
    mean_abs: float | None = None  # mean |artifact - keras|
    min_iou: float | None = None  # IoU of the two masks thresholded at `threshold`
    min_psnr: float | None = None  # dB, peak = 1 (output range 0..1)
    reason: str = ""
    # IoU is checked on pixels whose Keras output is at least `iou_band` away from the
    # threshold: a pixel closer than that may flip under an error this precision is
    # allowed to make. (Untrained models sit at ~0.5 everywhere; without the band one
    # 1/256 output step would flip the whole mask.) The plain IoU is reported too.
    iou_band: float = 0.0

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


# THE tolerance table, keyed by (target, precision). Every entry says why it is what it is.
# Mask IoU is computed on thresholded outputs; pixels whose Keras output sits right at the
# threshold may flip under any rounding, so IoU is only demanded where errors are larger
# than float noise. Tests and the convert command read only this table.
# Only float32 rows bound the worst pixel. Below fp32 the worst-pixel error is reported but
# not bounded: on a soft alpha matte one edge pixel can move by 0.2-0.7 (measured on the
# quickstart MattingNet: dynamic 0.24, int8 0.66) while mean error and mask IoU show the
# matte is faithful; the mean and IoU bounds follow the suggested starting points.
# fp32 rows check IoU outside a band as wide as their max_abs bound: float accumulation order
# differs between CPUs (oneDNN picks kernels by instruction set), so a pixel within 1e-5 of
# the threshold may flip on one machine and not on another, while max_abs stays ~1e-5.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("tflite", "fp32"): Tolerance(
        max_abs=1e-4, min_iou=0.999, iou_band=1e-4,
        reason="same float32 graph; only op fusion/reordering differs (measured ~1e-7)"),
    ("onnx", "fp32"): Tolerance(
        max_abs=1e-4, min_iou=0.999, iou_band=1e-4,
        reason="same float32 graph via tf2onnx; measured ~1e-7"),
    ("coreml", "fp32"): Tolerance(
        max_abs=1e-3, min_iou=0.995, iou_band=1e-3,
        reason="float32 ML program; Core ML may reorder reductions and use its own "
               "bilinear kernels, so allow more than the bit-faithful targets"),
    ("tflite", "fp16"): Tolerance(
        mean_abs=2e-3, min_iou=0.995,
        iou_band=0.005,
        reason="only weights are rounded to fp16 (compute stays fp32): ~1e-3 relative "
               "weight error"),
    ("onnx", "fp16"): Tolerance(
        mean_abs=2e-3, min_iou=0.995,
        iou_band=0.005,
        reason="fp16 weights and activations (11-bit mantissa), I/O kept fp32"),
    ("coreml", "fp16"): Tolerance(
        mean_abs=2e-3, min_iou=0.995,
        iou_band=0.005,
        reason="fp16 compute throughout the ML program"),
    ("tflite", "dynamic"): Tolerance(
        mean_abs=1e-2, min_iou=0.98, iou_band=0.02,
        reason="int8 weights; activations quantized per batch on the fly: between fp16 "
               "and full int8"),
    ("onnx", "dynamic"): Tolerance(
        mean_abs=1e-2, min_iou=0.98, iou_band=0.02,
        reason="per-channel int8 weights dequantized in the graph, float32 compute "
               "(measured mean 2.5e-3 on the trained tiny models)"),
    ("tflite", "int8"): Tolerance(
        mean_abs=0.02, min_iou=0.98, iou_band=0.02,
        reason="8-bit activations calibrated on few images: small mean error, no bound "
               "on the worst pixel; the output itself is 1/256-quantized"),
    ("tflite", "int8-qat"): Tolerance(
        mean_abs=0.03, min_iou=0.97, iou_band=0.03,
        reason="QAT fine-tunes the weights, so it is compared to the pre-QAT Keras model "
               "and differs by the fine-tuning as well as by quantization"),
    ("onnx", "int8"): Tolerance(
        mean_abs=0.02, min_iou=0.98, iou_band=0.02,
        reason="static QDQ int8, per-channel 7-bit weights, MinMax calibration"),
    ("coreml", "int8"): Tolerance(
        mean_abs=0.02, min_iou=0.98, iou_band=0.02,
        reason="8-bit linear weight quantization with fp16 compute"),
    ("tflite", "int16x8"): Tolerance(
        mean_abs=5e-3, min_iou=0.99, iou_band=0.01,
        reason="int16 activations (65536 levels) x int8 weights: weight rounding dominates; "
               "between int8 and fp16"),
}


def tolerance_for(target: str, precision: str) -> Tolerance:
    try:
        return TOLERANCES[(target, precision)]
    except KeyError:
        raise InputError(
            f"No verification tolerance for {target}/{precision}; add one to "
            "edgematting.verify.TOLERANCES (with the reason)."
        ) from None


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

    from .calibration import verification_images
    from .runners import load_runner
    from .runners.keras import KerasRunner

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
        ref_runner = KerasRunner(model_dir)
    else:
        ref_runner = KerasRunner(model=model, spec=spec)
    spec = ref_runner.spec
    n = int(n)
    if n < 1:
        raise InputError("-n/--verify-samples must be at least 1.")
    runner = load_runner(artifact, **(runner_kwargs or {}))
    meta = getattr(runner, "metadata", None) or {}
    check_sidecar(artifact, meta)
    target = meta.get("target") or target_of(artifact)
    precision = meta.get("precision", "fp32")
    if meta.get("input"):
        h, w = meta["input"].get("height"), meta["input"].get("width")
        if (h, w) != tuple(spec.input_size):
            raise InputError(
                f"{artifact} takes {h}x{w} input but the model in {ref_runner.metadata.get('model_name')} "
                f"takes {spec.input_size[0]}x{spec.input_size[1]}: pass the --model it was converted from."
            )
    tol = tolerance or tolerance_for(target, precision)
    from .calibration import default_source

    data = default_source(spec, data)  # unset: the model's training photos, else synthetic
    pixels = verification_images(spec, data, n)
    x = spec.normalize(pixels).astype(np.float32)
    ref = ref_runner.run(x)
    from .finite import check_output

    check_output(ref, model=ref_runner.model, x=x, what=f"The Keras model {spec.name}")
    out = runner.run(x)
    if not np.all(np.isfinite(out)):
        from .contract import encode_normalized

        from .finite import CONVERTER

        check_output(out, artifact=artifact, native=encode_normalized(x[:1], runner.contract),
                     what=f"{artifact.name}", hint=CONVERTER)
    threshold = float((meta.get("output") or {}).get("threshold", spec.threshold))
    metrics = compare(ref, out, threshold, tol.iou_band)
    checks, failures = check(metrics, tol)
    report = VerificationReport(
        artifact=str(artifact), target=target, precision=precision,
        engine=getattr(runner, "engine", type(runner).__name__),
        reference=ref_runner.engine, n=len(x), data=str(data),
        threshold=threshold, tolerances=tol.to_dict(), checks=checks, failures=failures,
        seconds=round(time.perf_counter() - t0, 3), **metrics,
    )
    if failures and raise_on_failure:
        raise ParityError(
            f"{artifact.name} does not reproduce the Keras model ({target} {precision}, "
            f"{report.engine}, {report.n} images):", failures=failures, report=report)
    return report


def check_sidecar(artifact: str | os.PathLike, embedded: dict) -> None:
    """InputError when the artifact's sidecar describes another file than the metadata
    embedded in it (e.g. an int8 file copied over the fp32 name). No sidecar: nothing to check."""
    from .contract import SIDECAR_ONLY_KEYS, read_sidecar, sidecar_path

    side = read_sidecar(artifact, required=False)
    if side is None or not embedded:
        return
    side = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS}
    if side == embedded:
        return
    diffs = []
    for key in ("target", "precision", "model_name", "file"):
        if side.get(key) != embedded.get(key):
            diffs.append(f"{key} {side.get(key)!r} in the sidecar, {embedded.get(key)!r} in the file")
    for part in ("input", "output"):
        a, b = side.get(part) or {}, embedded.get(part) or {}
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                diffs.append(f"{part}.{key} {a.get(key)!r} in the sidecar, {b.get(key)!r} in the file")
    if not diffs:
        diffs = ["other keys differ"]
    raise InputError(
        f"{sidecar_path(artifact)} does not describe {Path(artifact).name}: " + "; ".join(diffs[:4])
        + ". The file was replaced or renamed after conversion; convert it again with `edgematting convert`."
    )


def record_verification(artifact: str | os.PathLike, report: VerificationReport, embedded: dict | None = None) -> Path | None:
    """Store `report` in the artifact's sidecar; None when it has none.

    The sidecar is rewritten only as ``embedded metadata + conversion + this verification``,
    and only after checking again (`check_sidecar`) that it describes the file: a sidecar
    that belongs to another file (an int8 file copied over the fp32 name) is an InputError
    and is left as it was, so the update can never make a sidecar inconsistent."""
    from . import atomic
    from .contract import SIDECAR_ONLY_KEYS, read_sidecar, sidecar_path

    side = read_sidecar(artifact, required=False)
    if side is None:
        return None
    if embedded is None:
        from .converters import read_embedded_metadata

        embedded = read_embedded_metadata(artifact)
    check_sidecar(artifact, embedded)
    if report.artifact and Path(report.artifact).resolve() != Path(artifact).resolve():
        raise InputError(f"The report is of {report.artifact}, not of {artifact}; the sidecar was not changed.")
    meta = {k: v for k, v in side.items() if k not in SIDECAR_ONLY_KEYS} if not embedded else dict(embedded)
    if "conversion" in side:
        meta["conversion"] = side["conversion"]
    meta["verification"] = report.to_dict()
    atomic.write_json(sidecar_path(artifact), meta)
    return sidecar_path(artifact)
