"""Core ML conversion: each precision/option converted from the tiny models and computed
by the MIL reference interpreter (on Linux; Core ML itself on macOS) against Keras.

The tiny fixture models are untrained: their output is ~0.5 everywhere (std ~1e-5),
which would make any parity check vacuous. `_spread` gives the BatchNorm layers random
affine parameters, sets their statistics from one batch (so activations are unit-scale,
as in a trained net), centres the final logits and scales them x3 (a trained segmenter
is confident: most alphas near 0 or 1), so alphas span 0..1. Inputs are whole pixel
values, as verify.py's are, so image-input models see exactly the same input.
"""
import json
import os

import numpy as np
import pytest

pytest.importorskip("coremltools")

from edgematting.converters import coreml as C  # noqa: E402
from edgematting.converters.base import ExportConfig  # noqa: E402
from edgematting.errors import DependencyError, InputError, UnsupportedError  # noqa: E402

# Test tolerances per case kind. The spread test models are random deep nets and very
# sensitive: rounding only their *weights* to fp16 in Keras already moves the output by
# mean 2.6e-3 / max 3.7e-2 (IoU 0.969), rounding only the input by mean 8.5e-4 (measured,
# Fast-SCNN). So fp16 bounds here sit at that noise floor, not at a trained model's.
#
# Mask IoU is computed only on pixels whose Keras output is at least `band` from the 0.5
# threshold (`_compare`). A pixel closer to the threshold than the error a precision is
# allowed to make may flip on another CPU: oneDNN picks kernels by instruction set, so
# float32 accumulation order (and the last bits of every output) differ between machines.
# On a 2-core AMD EPYC the fp32 program agreed with Keras to 1.6e-5, yet 0.13% of the mask
# flipped, because a few pixels sat within 1e-5 of 0.5. The fp32 band is the fp32 max_abs
# bound: a pixel outside it cannot flip without breaking that bound as well.
TOL = {
    # same float32 graph, float32 accumulation in another order: measured <= 3.3e-5
    "fp32": dict(max_abs=5e-4, mean_abs=1e-5, min_iou=0.999, band=5e-4),
    # fp16 weights and activations: measured mean 2.1e-3 (Fast-SCNN) .. 4e-3 (MattingNet)
    "fp16": dict(max_abs=0.15, mean_abs=8e-3, min_iou=0.95, band=0.01),
    # 8-bit per-channel weights + fp16 compute: measured mean 6.6e-3 .. 8.1e-3
    "int8": dict(mean_abs=0.02, min_iou=0.9, band=0.02),
    # 6-bit *uniform* LUT (no scikit-learn for k-means here): coarse, measured mean 3e-2 .. 5e-2
    "pal6": dict(mean_abs=0.08, min_iou=0.5, band=0.05),
}


from export_helpers import spread_model as _spread  # noqa: E402


@pytest.fixture(scope="module")
def spread_models(tiny_fast_scnn_dir, tiny_mattingnet_dir, tmp_path_factory):
    from edgematting.modelio import load_model_dir, save_model_dir

    out = {}
    for arch, d in (("fast-scnn", tiny_fast_scnn_dir), ("mattingnet", tiny_mattingnet_dir)):
        model, spec = load_model_dir(d)
        _spread(model)
        md = save_model_dir(model, spec, tmp_path_factory.mktemp(f"spread_{arch}"))
        out[arch] = (model, spec, md)
    return out


def _inputs(spec, n=4, seed=3):
    rng = np.random.default_rng(seed)
    px = rng.integers(0, 256, (n,) + tuple(spec.input_size) + (3,)).astype(np.float32)
    # smooth half of the batch (photo-like) so bilinear/avg-pool paths see structure
    px[n // 2:] = np.round(np.linspace(0, 255, spec.input_size[1], dtype=np.float32))[None, None, :, None]
    return spec.normalize(px).astype(np.float32)


def _compare(ref, out, band=0.0):
    """max/mean abs error and the mask IoU over pixels at least `band` from 0.5 (see TOL);
    `raw_iou` is the plain IoU, reported but not asserted."""
    d = np.abs(out - ref)
    a, b = ref > 0.5, out > 0.5
    keep = np.abs(ref - 0.5) >= band

    def iou(a, b):
        union = (a | b).sum()
        return float((a & b).sum() / union) if union else 1.0

    return dict(max_abs=float(d.max()), mean_abs=float(d.mean()), iou=iou(a & keep, b & keep),
                raw_iou=iou(a, b), band_fraction=float(1.0 - keep.mean()))


CASES = {
    "fp32": (dict(precision="fp32"), "fp32", None),
    "fp16": (dict(precision="fp16"), "fp16", None),
    "int8": (dict(precision="int8"), "int8", "constexpr_affine_dequantize"),
    "pal6": (dict(precision="fp16", coreml={"palettize": 6, "palettize_mode": "uniform"}), "pal6",
             "constexpr_lut_to_dense"),
    "image_in": (dict(precision="fp32", input_type="uint8"), "fp32", None),
    "image_in_out_fp16": (dict(precision="fp16", input_type="uint8", coreml={"alpha_image": True}), "fp16", None),
    "int8_ios18": (dict(precision="int8", coreml={"deployment_target": "iOS18"}), "int8", "constexpr_blockwise_shift_scale"),
}
MATRIX = [("fast-scnn", c) for c in CASES] + [
    ("mattingnet", c) for c in ("fp32", "fp16", "int8", "image_in_out_fp16")
]


@pytest.mark.parametrize("arch,case", MATRIX, ids=[f"{a}-{c}" for a, c in MATRIX])
def test_convert_and_interpret_matches_keras(spread_models, tmp_path, arch, case):
    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = spread_models[arch]
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
    m = _compare(ref, y, TOL[tol_key]["band"])
    print(f"\n{arch} {case}: max_abs={m['max_abs']:.3g} mean_abs={m['mean_abs']:.3g} iou={m['iou']:.4f} "
          f"ref std={ref.std():.3f} ops={ops}")
    tol = dict(TOL[tol_key])
    if tol_key == "fp16":
        # Self-calibrated floor: the same Keras model with its weights rounded to fp16.
        # An interpreter/converter bug (padding, layout, resize) lands far above 3x it.
        w0 = model.get_weights()
        try:
            model.set_weights([w.astype(np.float16).astype(np.float32) for w in w0])
            floor = _compare(ref, model.predict(x, verbose=0))
        finally:
            model.set_weights(w0)
        print(f"  fp16-weights floor: {floor}")
        tol["max_abs"] = max(tol["max_abs"], 3 * floor["max_abs"])
        tol["mean_abs"] = max(tol["mean_abs"], 3 * floor["mean_abs"])
    assert ref.std() > 0.05, "the test model's output is flat: parity would mean nothing"
    if "max_abs" in tol:
        assert m["max_abs"] <= tol["max_abs"], m
    assert m["mean_abs"] <= tol["mean_abs"], m
    assert m["iou"] >= tol["min_iou"], m

    emb = C.read_embedded_metadata(out)
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


def test_image_input_scale_bias_in_program(spread_models, tmp_path):
    """ImageType scale/bias become mul/add ops of the program with 1/std and -mean/std."""
    from edgematting.runners.mil_interpreter import load_program

    model, spec, _ = spread_models["fast-scnn"]
    out = tmp_path / "img.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml", input_type="uint8"), out)
    prog, _ = load_program(out)
    ops = [op for op in prog.functions["main"].operations if op.op_type != "const"]
    assert ops[0].op_type == "mul" and np.isclose(float(ops[0].inputs["y"].val), 1 / spec.std[0])
    assert ops[1].op_type == "add"
    np.testing.assert_allclose(np.asarray(ops[1].inputs["y"].val).reshape(-1),
                               -np.asarray(spec.mean) / np.asarray(spec.std), rtol=1e-6)
    assert tuple(prog.functions["main"].inputs["image"].shape) == (1, 3) + tuple(spec.input_size)


def test_author_license_and_descriptions(spread_models, tmp_path):
    model, spec, _ = spread_models["fast-scnn"]
    config = ExportConfig(target="coreml", coreml={"author": "A. Person", "license": "MIT"})
    out = tmp_path / "m.mlpackage"
    md = C.convert(model, spec, config, out)
    assert md["model_name"] == spec.name and md["input"]["mean"] == list(spec.mean)
    desc = C.read_model_description(out)
    assert desc["author"] == "A. Person" and desc["license"] == "MIT" and desc["short_description"]
    assert desc["inputs"]["image"]["description"] and desc["outputs"]["alpha"]["description"]
    assert C.read_embedded_metadata(out) == md


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_failed_save_leaves_nothing(spread_models, tmp_path, monkeypatch, exc):
    import coremltools as ct

    model, spec, _ = spread_models["fast-scnn"]

    def boom(self, path):
        os.makedirs(os.path.join(path, "Data"), exist_ok=True)  # a partial package...
        raise exc

    monkeypatch.setattr(ct.models.MLModel, "save", boom)
    out = tmp_path / "x.mlpackage"
    with pytest.raises(type(exc)):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16"), out)
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_previous_artifact(spread_models, tmp_path, monkeypatch):
    import coremltools as ct

    model, spec, _ = spread_models["fast-scnn"]
    out = tmp_path / "x.mlpackage"
    C.convert(model, spec, ExportConfig(target="coreml"), out)
    before = C.read_embedded_metadata(out)

    def boom(self, path):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ct.models.MLModel, "save", boom)
    with pytest.raises(RuntimeError):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16"), out)
    assert C.read_embedded_metadata(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.mlpackage"]


def test_option_errors(spread_models, tmp_path):
    model, spec, _ = spread_models["fast-scnn"]
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


def test_kmeans_palettization_needs_sklearn(spread_models, tmp_path, monkeypatch):
    import sys

    model, spec, _ = spread_models["fast-scnn"]
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    with pytest.raises(DependencyError, match="scikit-learn"):
        C.convert(model, spec, ExportConfig(target="coreml", precision="fp16", coreml={"palettize": 6}),
                  tmp_path / "p.mlpackage")
    assert list(tmp_path.iterdir()) == []


def test_kmeans_palettization(spread_models, tmp_path):
    pytest.importorskip("sklearn")
    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = spread_models["fast-scnn"]
    out = tmp_path / "k.mlpackage"
    # 8-bit k-means (256 centroids per tensor) is the palettization comparable to the int8
    # tolerance row; 6 bits exceeds it on these deliberately hypersensitive spread models.
    C.convert(model, spec, ExportConfig(target="coreml", precision="fp16", coreml={"palettize": 8}), out)
    runner = CoreMLRunner(out, engine="interpreter")
    assert "constexpr_lut_to_dense" in runner._interp.op_types
    x = _inputs(spec)
    m = _compare(model.predict(x, verbose=0), runner.run(x), TOL["int8"]["band"])
    assert m["mean_abs"] <= TOL["int8"]["mean_abs"] and m["iou"] >= TOL["int8"]["min_iou"], m


def test_runner_via_load_runner_and_batch(spread_models, tmp_path):
    from edgematting.runners import load_runner

    model, spec, _ = spread_models["fast-scnn"]
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


def test_end_to_end_convert_model_verifies(spread_models, tmp_path):
    """Through the shared convert_model, verified with verify.py's tolerance table
    (fp32: the table's fp16 row is tighter than these random test models allow)."""
    try:
        from export_helpers import assert_export_matches
    except ImportError:
        assert_export_matches = None
    _, _, model_dir = spread_models["fast-scnn"]
    if assert_export_matches is not None:
        assert_export_matches(model_dir, "coreml", "fp32", tmp_path)
        return
    from edgematting.converters import convert_model

    art = convert_model(model_dir, ExportConfig(target="coreml", precision="fp32", verify_samples=2),
                        out_dir=tmp_path, progress=False)
    assert art.path.is_dir() and art.verification.passed
    assert "MIL reference interpreter" in art.verification.engine or "Core ML" in art.verification.engine


@pytest.mark.parametrize("mutation", ["mean_off_by_2", "bgr_layout"])
def test_wrong_input_mapping_fails_parity(spread_models, tmp_path, monkeypatch, mutation):
    """The fp32 bounds above are loose enough for another CPU's accumulation order but not
    for a real mapping mistake: a bias 2 pixel values off, or RGB declared as BGR."""
    import coremltools as ct

    from edgematting.runners.coreml import CoreMLRunner

    model, spec, _ = spread_models["fast-scnn"]
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
    m = _compare(model.predict(x, verbose=0), CoreMLRunner(out, engine="interpreter").run(x), TOL["fp32"]["band"])
    tol = TOL["fp32"]
    assert not (m["max_abs"] <= tol["max_abs"] and m["mean_abs"] <= tol["mean_abs"] and m["iou"] >= tol["min_iou"]), m
