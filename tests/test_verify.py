"""Verification: metrics, the tolerance table, failures collected and raised once."""
from __future__ import annotations

import math

import numpy as np
import pytest

from edgematting.errors import InputError, ParityError
from edgematting.verify import TOLERANCES, Tolerance, check, compare, tolerance_for


def test_every_registry_combination_has_a_reasoned_tolerance():
    from edgematting.converters import valid_combinations

    for target, precision in valid_combinations():
        tol = tolerance_for(target, precision)
        assert tol.reason, (target, precision)
        assert any(v is not None for v in (tol.max_abs, tol.mean_abs, tol.min_iou, tol.min_psnr))
    with pytest.raises(InputError):
        tolerance_for("tflite", "int3")


def test_compare_metrics():
    ref = np.zeros((1, 4, 4, 1), np.float32)
    ref[0, :2] = 1.0  # 8 pixels on
    out = ref.copy()
    out[0, 0, 0] = 0.0  # one pixel off, error 1
    out[0, 3, 3] = 0.25  # error .25, stays below threshold
    m = compare(ref, out, 0.5)
    assert m["max_abs"] == 1.0
    assert m["mean_abs"] == pytest.approx(1.25 / 16)
    assert m["iou"] == pytest.approx(7 / 8)
    assert m["psnr"] == pytest.approx(10 * math.log10(16 / (1 + 0.0625)))
    same = compare(ref, ref)
    assert same["iou"] == 1.0 and math.isinf(same["psnr"]) and same["max_abs"] == 0.0
    empty = compare(np.zeros_like(ref), np.zeros_like(ref))
    assert empty["iou"] == 1.0  # both masks empty: identical
    with pytest.raises(ValueError):
        compare(ref, ref[..., :2, :])


def test_check_collects_every_failure():
    metrics = {"max_abs": 0.5, "mean_abs": 0.1, "iou": 0.5, "psnr": 10.0}
    checks, failures = check(metrics, Tolerance(max_abs=0.1, mean_abs=0.01, min_iou=0.9, min_psnr=20, reason="r"))
    assert len(checks) == 4 and len(failures) == 4
    checks, failures = check(metrics, Tolerance(max_abs=1.0, reason="r"))
    assert len(checks) == 1 and failures == []


def test_verify_artifact_raises_once_with_report(confident_fast_scnn_dir, tmp_path):
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.verify import verify_artifact

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="tflite", verify=False), out_dir=tmp_path,
                        progress=False)
    ok = verify_artifact(art.path, confident_fast_scnn_dir, n=2)
    assert ok.passed and ok.n == 2 and "ai-edge-litert" in ok.engine
    assert ok.tolerances == TOLERANCES[("tflite", "fp32")].to_dict()
    d = ok.to_dict()
    assert d["passed"] is True and d["tolerances"] == ok.tolerances
    impossible = Tolerance(max_abs=-1, mean_abs=-1, min_iou=1.1, reason="impossible")
    with pytest.raises(ParityError) as e:
        verify_artifact(art.path, confident_fast_scnn_dir, n=2, tolerance=impossible)
    assert len(e.value.failures) == 3 and e.value.report is not None and not e.value.report.passed
    assert e.value.exit_code == 6
    with pytest.raises(InputError, match="--model"):
        verify_artifact(art.path, n=2)


@pytest.fixture(scope="module")
def fp32_tflite(confident_fast_scnn_dir, tmp_path_factory):
    """A correct fp32 TFLite artifact of the confident Fast-SCNN (not verified on export)."""
    from edgematting.converters import ExportConfig, convert_model

    return convert_model(confident_fast_scnn_dir, ExportConfig(target="tflite", verify=False),
                         out_dir=tmp_path_factory.mktemp("fp32_tflite"), progress=False).path


def test_verify_artifact_fails_against_another_model(fp32_tflite, tiny_fast_scnn_dir):
    """A correct artifact checked against a different model of the same architecture (the
    untrained one) fails: the verifier really compares the two outputs. Only max_abs can
    see it: the untrained reference sits within the fp32 band (1e-4) of the threshold
    everywhere, so the banded IoU check has no pixel left (a flat model proves nothing)."""
    from edgematting.verify import verify_artifact

    with pytest.raises(ParityError) as e:
        verify_artifact(fp32_tflite, tiny_fast_scnn_dir, n=2)
    rep = e.value.report
    failed = {c["check"] for c in rep.checks if not c["passed"]}
    assert failed == {"max_abs"} and rep.max_abs > 0.3, rep.checks
    assert rep.band_fraction > 0.99 and rep.iou_checked == 1.0


@pytest.mark.parametrize("mutation", ["mean_off_by_2", "bgr"])
def test_verify_artifact_fails_when_the_runner_feeds_the_wrong_input(fp32_tflite, confident_fast_scnn_dir,
                                                                      monkeypatch, mutation):
    """The artifact is correct; what the runner feeds it is not (a mean 2 pixel values off,
    or BGR): verify_artifact must fail, from max_abs and mask IoU alike."""
    from edgematting.verify import verify_artifact
    from export_helpers import break_input_mapping

    assert verify_artifact(fp32_tflite, confident_fast_scnn_dir, n=4).passed
    break_input_mapping(monkeypatch, "runner", mutation)
    rep = verify_artifact(fp32_tflite, confident_fast_scnn_dir, n=4, raise_on_failure=False)
    assert not rep.passed
    assert rep.max_abs > 100 * TOLERANCES[("tflite", "fp32")].max_abs, rep.summary()
    assert rep.iou_checked < TOLERANCES[("tflite", "fp32")].min_iou, rep.summary()


def test_verify_on_data_folder(confident_fast_scnn_dir, tmp_path):
    """--data: images of any size are read and resized to the model size; the very images
    the synthetic verifier uses, written as PNGs, give exactly the synthetic numbers."""
    from edgematting.calibration import verification_images
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.data.io import write_png
    from edgematting.data.synthetic import write_synthetic_folder
    from edgematting.modelio import load_spec
    from edgematting.verify import verify_artifact

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="onnx", verify=False), out_dir=tmp_path / "o",
                        progress=False)
    data = write_synthetic_folder(tmp_path / "portraits", n=3, size=(50, 70), seed=7)  # resized to 64x64
    rep = verify_artifact(art.path, confident_fast_scnn_dir, data=str(data), n=8)
    assert rep.n == 3 and rep.data == str(data) and rep.passed
    same = tmp_path / "same"
    same.mkdir()
    for i, img in enumerate(verification_images(load_spec(confident_fast_scnn_dir), None, 3)):
        write_png(same / f"{i}.png", img)
    from_folder = verify_artifact(art.path, confident_fast_scnn_dir, data=str(same), n=3)
    synthetic = verify_artifact(art.path, confident_fast_scnn_dir, n=3)
    for k in ("max_abs", "mean_abs", "iou", "iou_checked"):
        assert getattr(from_folder, k) == getattr(synthetic, k), k
    assert from_folder.max_abs != rep.max_abs  # other images, other numbers
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="No images"):
        verify_artifact(art.path, confident_fast_scnn_dir, data=str(empty))


def test_load_runner_dispatch(tmp_path, tiny_fast_scnn_dir):
    from edgematting.runners import load_runner, runner_kind
    from edgematting.runners.keras import KerasRunner

    assert runner_kind("a.tflite") == "tflite" and runner_kind("a.onnx") == "onnx"
    assert runner_kind("a.mlpackage") == "coreml"
    assert isinstance(load_runner(tiny_fast_scnn_dir), KerasRunner)
    with pytest.raises(InputError):
        load_runner(tmp_path / "missing.tflite")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(InputError):
        load_runner(tmp_path / "x.txt")


def test_calibration_images(tmp_path):
    from edgematting.calibration import calibration_images
    from edgematting.modelio import ModelSpec

    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(32, 48))
    a = calibration_images(spec, "synthetic", 3)
    assert a.shape == (3, 32, 48, 3) and a.dtype == np.uint8
    assert np.array_equal(a, calibration_images(spec, "synthetic", 3))  # seeded
    with pytest.raises(InputError, match=str(tmp_path)):
        calibration_images(spec, str(tmp_path), 3)
