"""The one export test helper: convert with the library API the CLI uses, verify with the
tolerance table, and check the sidecar against the metadata embedded in the file.

Used by every converter test (TFLite, ONNX, Core ML)::

    artifact, report = assert_export_matches(tiny_fast_scnn_dir, "tflite", "int8", tmp_path)
"""
from __future__ import annotations

from pathlib import Path

# Calibration kept small so the suite stays fast (the tolerance table is unchanged).
TEST_CALIB_SAMPLES = 8
TEST_VERIFY_SAMPLES = 4


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


def spread_model(model, seed=0):
    """Make an untrained model's output confident and varied, in place (returns it).

    An untrained model outputs ~0.5 everywhere, which makes any parity check vacuous. This
    gives the BatchNorm layers random affine parameters, sets their statistics from one
    batch (unit-scale activations, as in a trained net), centres the final logits and
    scales them x3 (a trained segmenter is confident), so alphas span 0..1.
    """
    import numpy as np

    from edgematting._tf import keras

    L = keras().layers
    rng = np.random.default_rng(seed)
    x = ((rng.integers(0, 256, (8,) + tuple(model.input_shape[1:])) - 127.5) / 127.5).astype("float32")
    bns = [lyr for lyr in model.layers if isinstance(lyr, L.BatchNormalization)]
    for lyr in bns:
        g, b, mm, mv = lyr.get_weights()
        lyr.set_weights([rng.uniform(0.7, 1.3, g.shape).astype("float32"),
                         rng.normal(0, 0.2, b.shape).astype("float32"), mm, mv])
        lyr.momentum = 0.0
    model(x, training=True)  # momentum 0: moving statistics := this batch's statistics
    for lyr in bns:
        lyr.momentum = 0.99
    last = [lyr for lyr in model.layers if isinstance(lyr, L.Conv2D) and lyr.use_bias and lyr.filters == 1][-1]
    y = np.clip(model.predict(x, verbose=0), 1e-6, 1 - 1e-6)
    k, b = last.get_weights()
    # centre the logits and make the model confident (x3), as a trained segmenter is
    last.set_weights([k * 3.0, (b - np.median(np.log(y / (1 - y)))) * 3.0])
    return model
