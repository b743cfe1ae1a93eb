"""Core ML conversion: each precision/option converted from the confident tiny models
(conftest: trained a few steps, so their outputs are confident and varied; a parity check
on an untrained ~0.5 model would be vacuous) and computed by the MIL reference interpreter
(on Linux; Core ML itself on macOS) against Keras. Inputs are the synthetic portraits
verify.py compares on: whole pixel values, so image-input models see exactly the same input.
"""
import json
import os

import numpy as np
import pytest

pytest.importorskip("coremltools")

from edgematting.converters import coreml as C  # noqa: E402
from edgematting.converters.base import ExportConfig  # noqa: E402
from edgematting.runners.coreml import read_embedded_metadata as read_coreml_metadata  # noqa: E402
from edgematting.errors import DependencyError, InputError, UnsupportedError  # noqa: E402
from edgematting.verify import tolerance_for  # noqa: E402
from export_helpers import assert_confident, assert_export_matches, output_stats  # noqa: E402

# Bounds come from verify.TOLERANCES, the table `convert` itself checks against (the
# coreml rows: fp32, fp16, int8). Mask IoU is computed only on pixels whose Keras output is
# at least the row's `iou_band` from the threshold: a pixel nearer than the error a
# precision may make can flip on another CPU (oneDNN picks kernels by instruction set, so
# float32 accumulation order differs between machines; on a 2-core AMD EPYC the fp32
# program agreed with Keras to 1.6e-5, yet 0.13% of an untrained model's mask flipped).
#
# Measured on the confident models (Fast-SCNN / MattingNet, 4 verification images):
# fp32 max 1.4e-6 / 2.4e-6; fp16 mean 3.3e-4 / 4.7e-4; int8 (8-bit weights, fp16 compute)
# mean 6.2e-4 / 8.6e-4; 6-bit uniform palettization mean 3.6e-3 (Fast-SCNN), checked
# against the int8 row (no finer row exists for palettized weights); the 8-bit image
# output adds its 1/255 steps: mean 1.1e-3 / 1.2e-3 against the fp16 row.
# (These were random "spread" models before, whose fp16 weight rounding alone moved the
# output by mean 2.6e-3, so they needed private bounds up to 20x looser than the table.)


@pytest.fixture(scope="module")
def confident_models(confident_fast_scnn_dir, confident_mattingnet_dir):
    """arch -> (Keras model, spec, model dir) of the shared confident models."""
    from edgematting.modelio import load_model_dir

    out = {}
    for arch, d in (("fast-scnn", confident_fast_scnn_dir), ("mattingnet", confident_mattingnet_dir)):
        model, spec = load_model_dir(d)
        out[arch] = (model, spec, d)
    return out


def _inputs(spec, n=4):
    from edgematting.calibration import verification_images

    return spec.normalize(verification_images(spec, None, n)).astype(np.float32)


def _compare(ref, out, tol):
    """verify.compare with the row's band, and the failed checks of verify.check."""
    from edgematting.verify import check, compare

    m = compare(ref, out, 0.5, tol.iou_band)
    return m, check(m, tol)[1]


CASES = {
    "fp32": (dict(precision="fp32"), "fp32", None),
    "fp16": (dict(precision="fp16"), "fp16", None),
    "int8": (dict(precision="int8"), "int8", "constexpr_affine_dequantize"),
    "pal6": (dict(precision="fp16", coreml={"palettize": 6, "palettize_mode": "uniform"}), "int8",
             "constexpr_lut_to_dense"),
    "image_in": (dict(precision="fp32", input_type="uint8"), "fp32", None),
    "image_in_out_fp16": (dict(precision="fp16", input_type="uint8", coreml={"alpha_image": True}), "fp16", None),
    "int8_ios18": (dict(precision="int8", coreml={"deployment_target": "iOS18"}), "int8", "constexpr_blockwise_shift_scale"),
}
MATRIX = [("fast-scnn", c) for c in CASES] + [
    ("mattingnet", c) for c in ("fp32", "fp16", "int8", "image_in_out_fp16")
]
#: run with `pytest -m slow` (each ~25 s on 2 cores); fp32 and int8 cover MattingNet's graph
#: (fast-scnn image_in is covered by image_in_out_fp16, int8_ios18 by int8 on another opset)
#: (fast-scnn fp16: the fp16 program is pal6's too; image_in_out_fp16: image in/out is
#: test_vision_shaped_fp32_passes_its_own_verification's at fp32)
SLOW_CASES = {("mattingnet", "fp16"), ("mattingnet", "image_in_out_fp16"), ("mattingnet", "int8"),
              ("fast-scnn", "image_in"), ("fast-scnn", "int8_ios18"), ("fast-scnn", "fp16"),
              ("fast-scnn", "image_in_out_fp16")}


@pytest.mark.parametrize("arch,case", [
    pytest.param(a, c, id=f"{a}-{c}", marks=[pytest.mark.slow] if (a, c) in SLOW_CASES else []) for a, c in MATRIX])
def test_convert_and_interpret_matches_keras(confident_models, tmp_path, arch, case):
    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = confident_models[arch]
    kw, tol_key, constexpr = CASES[case]
    config = ExportConfig(target="coreml", **kw)
    out = tmp_path / f"{arch}_{case}.mlpackage"
    md = C.convert(model, spec, config, out)
    assert out.is_dir() and (out / "Manifest.json").exists()
    assert [p.name for p in tmp_path.iterdir()] == [out.name]  # no temp dirs left

    runner = CoreMLRunner(out, engine="interpreter")
    assert runner.engine.startswith("edgematting MIL reference interpreter (numpy), coremltools ")
    ops = runner._interp.op_types
    if constexpr:
        assert constexpr in ops, ops  # weights really are compressed in the program
    if config.precision == "fp16" or config.precision == "int8":
        assert "cast" in ops  # fp16 compute: the program casts in and out of fp16
    x = _inputs(spec)
    ref = model.predict(x, verbose=0)
    y = runner.run(x)
    assert y.shape == ref.shape and y.dtype == np.float32
    assert_confident(output_stats(ref), f"{arch} on these inputs")
    tol = tolerance_for("coreml", tol_key)
    if config.coreml.alpha_image:  # an 8-bit image output: compared in its own step
        tol = tol.for_output_step(1 / 255)
    m, failures = _compare(ref, y, tol)
    print(f"\n{arch} {case}: max_abs={m['max_abs']:.3g} mean_abs={m['mean_abs']:.3g} "
          f"iou_checked={m['iou_checked']:.4f} ops={ops}")
    assert not failures, failures

    emb = read_coreml_metadata(out)
    assert emb == md
    assert emb["precision"] == config.precision and emb["target"] == "coreml"
    assert emb["coreml"]["deployment_target"] == ("iOS16" if constexpr and config.coreml.deployment_target == "iOS15"
                                                  else config.coreml.deployment_target)
    desc = C.read_model_description(out)
    assert list(desc["inputs"]) == ["image"] and list(desc["outputs"]) == ["alpha"]
    assert desc["inputs"]["image"]["type"] == ("imageType" if config.input_type == "uint8" else "multiArrayType")
    assert desc["outputs"]["alpha"]["type"] == ("imageType" if config.coreml.alpha_image else "multiArrayType")
    assert desc["user_defined"]["edgematting.model_name"] == spec.name
    assert json.loads(desc["user_defined"]["edgematting.input.mean"]) == list(spec.mean)


def test_image_input_scale_bias_in_program(confident_models, tmp_path):
    """ImageType scale/bias become mul/add ops of the program with 1/std and -mean/std."""
    from edgematting.runners.mil_interpreter import load_program

    model, spec, _ = confident_models["fast-scnn"]
    out = tmp_path / "img.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml", input_type="uint8"), out)
    prog, _ = load_program(out)
    ops = [op for op in prog.functions["main"].operations if op.op_type != "const"]
    assert ops[0].op_type == "mul" and np.isclose(float(ops[0].inputs["y"].val), 1 / spec.std[0])
    assert ops[1].op_type == "add"
    np.testing.assert_allclose(np.asarray(ops[1].inputs["y"].val).reshape(-1),
                               -np.asarray(spec.mean) / np.asarray(spec.std), rtol=1e-6)
    assert tuple(prog.functions["main"].inputs["image"].shape) == (1, 3) + tuple(spec.input_size)


def test_author_license_and_descriptions(confident_models, tmp_path):
    model, spec, _ = confident_models["fast-scnn"]
    config = ExportConfig(target="coreml", author="A. Person", license="MIT")
    out = tmp_path / "m.mlpackage"
    md = C.convert(model, spec, config, out)
    assert md["model_name"] == spec.name and md["input"]["mean"] == list(spec.mean)
    desc = C.read_model_description(out)
    assert desc["author"] == "A. Person" and desc["license"] == "MIT" and desc["short_description"]
    assert desc["inputs"]["image"]["description"] and desc["outputs"]["alpha"]["description"]
    assert read_coreml_metadata(out) == md


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_save_leaves_nothing(confident_models, tmp_path, monkeypatch, exc):
    import coremltools as ct

    model, spec, _ = confident_models["fast-scnn"]

    def boom(self, path):
        os.makedirs(os.path.join(path, "Data"), exist_ok=True)  # a partial package...
        raise exc

    monkeypatch.setattr(ct.models.MLModel, "save", boom)
    out = tmp_path / "x.mlpackage"
    with pytest.raises(type(exc)):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16"), out)
    assert list(tmp_path.iterdir()) == []


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_failed_save_keeps_previous_artifact(confident_models, tmp_path, monkeypatch):
    import coremltools as ct

    model, spec, _ = confident_models["fast-scnn"]
    out = tmp_path / "x.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml"), out)
    before = read_coreml_metadata(out)

    def boom(self, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ct.models.MLModel, "save", boom)
    with pytest.raises(RuntimeError):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16"), out)
    assert read_coreml_metadata(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.mlpackage"]


def test_option_errors(confident_models, tmp_path):
    model, spec, _ = confident_models["fast-scnn"]
    # option checks happen when the config is made, before any work
    with pytest.raises(UnsupportedError, match="alternatives"):
        ExportConfig(target="coreml", precision="int8", coreml={"palettize": 4})
    with pytest.raises(UnsupportedError, match="ML programs"):
        ExportConfig(target="coreml", coreml={"deployment_target": "iOS14"})
    with pytest.raises(InputError, match="Valid"):
        ExportConfig(target="coreml", coreml={"deployment_target": "iOS99"})
    with pytest.raises(InputError, match=".mlpackage"):
        C.convert(model, spec, ExportConfig(target="coreml"), tmp_path / "d.mlmodel")
    assert list(tmp_path.iterdir()) == []


def test_kmeans_palettization_needs_sklearn(confident_models, tmp_path, monkeypatch):
    import sys

    model, spec, _ = confident_models["fast-scnn"]
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    with pytest.raises(DependencyError, match="scikit-learn"):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16", coreml={"palettize": 6}),
                  tmp_path / "p.mlpackage")
    assert list(tmp_path.iterdir()) == []


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_kmeans_palettization(confident_models, tmp_path):
    pytest.importorskip("sklearn")
    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = confident_models["fast-scnn"]
    out = tmp_path / "k.mlpackage"
    # 8-bit k-means (256 centroids per tensor), checked against the int8 row as the
    # uniform 6-bit case of the matrix is.
    C.convert(model, spec, ExportConfig(target="coreml", precision="fp16", coreml={"palettize": 8}), out)
    runner = CoreMLRunner(out, engine="interpreter")
    assert "constexpr_lut_to_dense" in runner._interp.op_types
    x = _inputs(spec)
    m, failures = _compare(model.predict(x, verbose=0), runner.run(x), tolerance_for("coreml", "int8"))
    assert not failures, m


def test_runner_via_load_runner_and_batch(confident_models, tmp_path):
    from edgematting.runners import load_runner

    model, spec, _ = confident_models["fast-scnn"]
    out = tmp_path / "r.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml", input_type="uint8", coreml={"alpha_image": True}), out)
    r = load_runner(out)
    x = _inputs(spec, n=3)
    y = r.run(x)
    assert y.shape == (3,) + tuple(spec.input_size) + (1,)
    raw = r.run_raw(np.round(x * 127.5 + 127.5).astype(np.uint8))
    assert raw.dtype == np.uint8
    # image output: 8-bit levels, dequantized with the metadata's scale 1/255
    np.testing.assert_array_equal(raw.astype(np.float32) * np.float32(1 / 255), y)


def test_end_to_end_convert_model_verifies(confident_models, tmp_path):
    """Through the shared convert_model, verified with verify.py's tolerance table."""
    _, _, model_dir = confident_models["fast-scnn"]
    _, report = assert_export_matches(model_dir, "coreml", "fp32", tmp_path)
    assert "MIL reference interpreter" in report.engine or "Core ML" in report.engine


@pytest.mark.parametrize("mutation", [None, "mean_off_by_2"])
def test_vision_shaped_fp32_passes_its_own_verification(confident_models, tmp_path, monkeypatch, mutation):
    """What Vision takes (image in, 8-bit grayscale image out) at fp32 verifies through
    convert_model with the fp32 row compared in the output's step (it always failed at
    max abs 0.00196 = half a step against a float bound); a bias 2 pixel values off fails."""
    from edgematting.converters import convert_model
    from edgematting.errors import ParityError

    _, _, model_dir = confident_models["fast-scnn"]
    if mutation:
        good = C._image_scale_bias
        monkeypatch.setattr(C, "_image_scale_bias",
                            lambda s: (lambda sc, b, f: (sc, [v - 2.0 * sc for v in b], f))(*good(s)))
    config = ExportConfig(target="coreml", input_type="uint8", coreml={"alpha_image": True}, verify_samples=4)
    if mutation:
        with pytest.raises(ParityError, match="max_abs"):
            convert_model(model_dir, config, out_dir=tmp_path, progress=False)
        assert not list(tmp_path.glob("*.mlpackage"))
        return
    art = convert_model(model_dir, config, out_dir=tmp_path, progress=False)
    rep = art.verification
    assert rep.passed and 0 < rep.max_abs <= 1e-3 + 0.5 / 255 + 1e-6, rep.summary()
    assert rep.tolerances["max_abs"] == pytest.approx(1e-3 + 0.5 / 255)
    assert "own step" in rep.tolerances["reason"]
    side = art.metadata
    assert side["output"]["dtype"] == "uint8" and side["coreml"]["input"]["type"] == "image"
    desc = C.read_model_description(art.path)
    assert desc["user_defined"]["com.apple.coreml.model.preview.type"] == "imageSegmenter"


# bgr_layout with `pytest -m slow`: the same check; the TFLite and ONNX suites run a BGR mutation by default
@pytest.mark.parametrize("mutation", ["mean_off_by_2", pytest.param("bgr_layout", marks=pytest.mark.slow)])
def test_wrong_input_mapping_fails_parity(confident_models, tmp_path, monkeypatch, mutation):
    """The fp32 row is loose enough for another CPU's accumulation order but not for a real
    mapping mistake: a bias 2 pixel values off, or RGB declared as BGR."""
    import coremltools as ct

    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = confident_models["fast-scnn"]
    if mutation == "mean_off_by_2":
        good = C._image_scale_bias
        monkeypatch.setattr(C, "_image_scale_bias",
                            lambda s: (lambda sc, b, f: (sc, [v - 2.0 * sc for v in b], f))(*good(s)))
    else:
        real = ct.ImageType

        def bgr(*a, **kw):
            if kw.get("color_layout") == ct.colorlayout.RGB:
                kw["color_layout"] = ct.colorlayout.BGR
            return real(*a, **kw)

        monkeypatch.setattr(ct, "ImageType", bgr)
    out = tmp_path / "wrong.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml", input_type="uint8"), out)
    x = _inputs(spec)
    m, failures = _compare(model.predict(x, verbose=0), CoreMLRunner(out, engine="interpreter").run(x),
                           tolerance_for("coreml", "fp32"))
    assert any(f.startswith("alpha: max_abs") for f in failures), m
