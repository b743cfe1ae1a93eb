"""The one export test helper: convert with the library API the CLI uses, verify with the
tolerance table, and check the sidecar against the metadata embedded in the file.

Used by every converter test (TFLite, ONNX, Core ML)::

    artifact, report = assert_export_matches(confident_fast_scnn_dir, "tflite", "int8", tmp_path)

A parity check means something only on a model whose output is not flat: every model
given to `assert_export_matches` must pass `assert_confident` on the images verification
compares on (conftest's `confident_*_dir` fixtures do).
"""
from __future__ import annotations

from pathlib import Path

# Calibration kept small so the suite stays fast (the tolerance table is unchanged).
TEST_CALIB_SAMPLES = 8
TEST_VERIFY_SAMPLES = 4


# What "confident" means for a test model, on the verification images: a wrong input
# mapping has to move the output for a parity check to see it. Trained segmenters output
# mostly near-0/near-1 alphas with a thin band of edge pixels near the threshold.
CONFIDENT = {
    "min_std": 0.2,  # over all pixels of all verification images
    "min_image_std": 0.1,  # every single image has a foreground and a background
    "min_sure": 0.5,  # share of pixels < 0.1 or > 0.9
    "min_each_side": 0.05,  # share of pixels < 0.1, and share > 0.9: both classes present
    "near_band": 0.1,  # |alpha - 0.5| < near_band counts as near the threshold...
    "near_range": (0.005, 0.25),  # ...and such pixels exist (edges) but are not the bulk
}


def output_stats(y) -> dict:
    """Summary of model outputs (N, H, W, 1) in 0..1."""
    import numpy as np

    y = np.asarray(y, np.float64)
    flat = y.reshape(-1)
    per_image = y.reshape(len(y), -1).std(axis=1)
    return {
        "mean": round(float(flat.mean()), 4),
        "std": round(float(flat.std()), 4),
        "min_image_std": round(float(per_image.min()), 4),
        "low": round(float((flat < 0.1).mean()), 4),
        "high": round(float((flat > 0.9).mean()), 4),
        "near": round(float((np.abs(flat - 0.5) < CONFIDENT["near_band"]).mean()), 4),
    }


_STATS_CACHE: dict = {}


def confident_stats(model_dir) -> dict:
    """`output_stats` of the Keras model in `model_dir` on the images verification compares
    on (`calibration.verification_images`, TEST_VERIFY_SAMPLES * 2 of them). Cached per file."""
    from edgematting.calibration import verification_images
    from edgematting.modelio import MODEL_FILE
    from edgematting.runners.keras import KerasRunner

    p = Path(model_dir).resolve()
    key = (str(p), (p / MODEL_FILE).stat().st_mtime_ns)
    if key not in _STATS_CACHE:
        runner = KerasRunner(p)
        x = runner.spec.normalize(verification_images(runner.spec, None, 2 * TEST_VERIFY_SAMPLES))
        _STATS_CACHE[key] = output_stats(runner.run(x))
    return _STATS_CACHE[key]


def assert_confident(stats: dict, what="model") -> None:
    """Fail loudly when a test model's output is too flat for parity checks to mean anything."""
    c = CONFIDENT
    lo, hi = c["near_range"]
    problems = [
        f"std {stats['std']} < {c['min_std']}" * (stats["std"] < c["min_std"]),
        f"an image with std {stats['min_image_std']} < {c['min_image_std']}" * (stats["min_image_std"] < c["min_image_std"]),
        f"only {stats['low'] + stats['high']:.3f} of pixels < 0.1 or > 0.9" * (stats["low"] + stats["high"] < c["min_sure"]),
        f"one class missing (low {stats['low']}, high {stats['high']})"
        * (min(stats["low"], stats["high"]) < c["min_each_side"]),
        f"near-threshold share {stats['near']} outside {c['near_range']}" * (not lo <= stats["near"] <= hi),
    ]
    problems = [p for p in problems if p]
    assert not problems, (f"{what} is not confident enough for parity tests to mean anything: "
                          + "; ".join(problems) + f" ({stats})")


def sidecar_without_extras(sidecar: dict) -> dict:
    from edgematting.converters import SIDECAR_ONLY_KEYS

    return {k: v for k, v in sidecar.items() if k not in SIDECAR_ONLY_KEYS}


def read_embedded_metadata(path) -> dict:
    """Per-target reader: `<target module>.read_embedded_metadata` (tflite flatbuffer
    metadata, onnx metadata_props, coreml user-defined metadata)."""
    from edgematting.converters import read_embedded_metadata as read

    return read(path)


def assert_export_matches(model_dir, target: str, precision: str, tmp_path, **config_overrides):
    """Convert `model_dir` to (target, precision), verify, and assert that it passed, that
    the sidecar exists and equals the embedded metadata. Returns (Artifact, VerificationReport)."""
    import json

    from edgematting.converters import ExportConfig, convert_model
    from edgematting.verify import tolerance_for

    kw = {"calib_samples": TEST_CALIB_SAMPLES, "verify_samples": TEST_VERIFY_SAMPLES, "verify": True}
    kw.update(config_overrides)
    config = ExportConfig(target=target, precision=precision, **kw)
    out = Path(tmp_path) / "export"
    artifact = convert_model(model_dir, config, out_dir=out, progress=False)
    report = artifact.verification
    assert report is not None, "conversion did not verify"
    assert report.passed, report.failures
    assert report.tolerances == tolerance_for(target, precision).to_dict()
    assert report.engine, "the report must say which engine computed the numbers"
    assert artifact.path.exists() and artifact.path.parent == out
    assert artifact.sidecar.is_file(), f"no sidecar {artifact.sidecar}"
    sidecar = json.loads(artifact.sidecar.read_text())
    assert sidecar["verification"]["passed"] is True
    assert sidecar["verification"]["max_abs"] == report.max_abs
    embedded = read_embedded_metadata(artifact.path)
    assert embedded == sidecar_without_extras(sidecar)
    assert embedded["target"] == target and embedded["precision"] == precision
    assert embedded["file"] == artifact.path.name
    assert embedded["input"]["channels"] == config.channels
    # nothing else left in the output folder (no staging folder, no temp file)
    leftovers = {p.name for p in out.iterdir()} - {artifact.path.name, artifact.sidecar.name}
    assert not leftovers, leftovers
    return artifact, report
