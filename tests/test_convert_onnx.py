"""ONNX conversion of both confident tiny models: every precision, NCHW, uint8/4 channels,
and deliberate input-mapping mistakes that verification must catch."""
from __future__ import annotations

import numpy as np
import pytest

from export_helpers import (CONFIDENT_FIXTURE, arch_precision_cases, assert_export_matches, mutation_params,
                            assert_mutation_fails_parity)

PRECISIONS = ["fp32", "fp16", "dynamic", "int8"]  # all ONNX precisions in REGISTRY


def test_registry_matches_test_list():
    from edgematting.converters import REGISTRY

    assert set(REGISTRY["onnx"].precisions) == set(PRECISIONS)


# MattingNet's other precisions run with `pytest -m slow` (each ~15 s on 2 cores; int8 45-73 s).
@pytest.mark.parametrize("arch,precision", arch_precision_cases(
    PRECISIONS, slow=[("mattingnet", "fp16"), ("mattingnet", "dynamic"), ("mattingnet", "int8")]))
def test_onnx_precisions(arch, precision, request, tmp_path):
    confident_model_dir = request.getfixturevalue(CONFIDENT_FIXTURE[arch])
    art, report = assert_export_matches(confident_model_dir, "onnx", precision, tmp_path)
    import onnx

    m = onnx.load(str(art.path))
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == 17 or any(o.version == 17 for o in m.opset_import)
    assert m.graph.input[0].name == "image" and m.graph.output[0].name == "alpha"
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp16 keeps fp32 I/O
    # packaging a reader sees: our producer, only the opset domains the nodes use, a readable
    # batch dimension, doc strings
    from edgematting import __version__

    assert (m.producer_name, m.producer_version) == ("edgematting", __version__)
    used = {n.domain or "" for n in m.graph.node} | {""}
    assert {o.domain or "" for o in m.opset_import} <= used, [o.domain for o in m.opset_import]
    assert dims[0].dim_param == "batch" and m.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert "normalized" in m.graph.input[0].doc_string and m.graph.output[0].doc_string and m.doc_string
    if precision == "int8":
        assert any(n.op_type == "QuantizeLinear" for n in m.graph.node)
    if precision == "dynamic":  # weight-only: int8 weights, no activation is quantized
        ops = {n.op_type for n in m.graph.node}
        assert "DequantizeLinear" in ops and not ops & {"QuantizeLinear", "DynamicQuantizeLinear", "ConvInteger"}
        assert any(t.data_type == onnx.TensorProto.INT8 for t in m.graph.initializer)
        assert not any(t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 4 and t.dims[2] > 1
                       for t in m.graph.initializer), "a conv kernel was left in float32"
    if precision == "fp16":
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)


def test_onnx_nchw_fixed_batch(confident_fast_scnn_dir, tmp_path):
    art, _ = assert_export_matches(confident_fast_scnn_dir, "onnx", "fp32", tmp_path,
                                   onnx={"nchw": True, "dynamic_batch": False, "opset": 15})
    import onnx

    m = onnx.load(str(art.path))
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]
    assert art.metadata["input"]["layout"] == "NCHW"
    assert any(o.version == 15 for o in m.opset_import)


def test_onnx_author_and_license(confident_fast_scnn_dir, tmp_path):
    """`convert --author/--license` land in metadata_props beside the contract."""
    import onnx

    from edgematting.converters import ExportConfig, convert_model

    config = ExportConfig(target="onnx", verify=False, author="A. Person", license="MIT")
    art = convert_model(confident_fast_scnn_dir, config, out_dir=tmp_path, progress=False)
    props = {p.key: p.value for p in onnx.load(str(art.path)).metadata_props}
    assert props["author"] == "A. Person" and props["license"] == "MIT" and "edgematting" in props


def test_onnx_uint8_4ch_int8_io(confident_fast_scnn_dir, tmp_path):
    """RGBA camera bytes in: uint8, 4 channels, alpha filled with 255 by the runner.
    (Parity: the test below.)"""
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.runners import load_runner

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="onnx", precision="int8", input_type="uint8",
                        channels=4, calib_samples=8, verify=False), out_dir=tmp_path, progress=False)
    r = load_runner(art.path)
    assert r.input.type == "tensor(uint8)"
    from edgematting.contract import encode_normalized

    x = np.zeros((2, 64, 64, 3), np.float32)
    native = encode_normalized(x, r.contract)  # what the runner feeds: pixels 127/128 + alpha 255
    assert native.shape == (2, 64, 64, 4) and native.dtype == np.uint8
    assert (native[..., 3] == 255).all() and (native[..., :3] == 128).all()


def test_onnx_uint8_4ch_int8_parity(confident_fast_scnn_dir, tmp_path):
    """The alpha byte must not set the quantized input's range (it once did: IoU 0.78)."""
    assert_export_matches(confident_fast_scnn_dir, "onnx", "int8", tmp_path, input_type="uint8", channels=4)


def test_onnx_non_integer_resize_sizes(confident_fast_scnn_dir, tmp_path):
    """80x80 is a multiple of 16 but not 32: the 1/32 branch (3 px) resizes to 10 px.

    tf2onnx writes that scale as float32(10/3) and onnxruntime then computes 9 pixels and
    refuses the graph; the converter must nudge the scale so the shapes match TensorFlow's.
    The 80x80 model carries the confident 64x64 model's weights (Fast-SCNN's weights do not
    depend on the input size), so the parity check sees a confident output.
    """
    from edgematting.models import architecture_config, build_model
    from edgematting.modelio import ModelSpec, load_model_dir, save_model_dir

    trained, _ = load_model_dir(confident_fast_scnn_dir)
    config = architecture_config("fast-scnn", (80, 80), 0.25)
    model = build_model("fast-scnn", **config)
    model.set_weights(trained.get_weights())
    spec = ModelSpec(architecture="fast-scnn", config=config, input_size=(80, 80))
    model_dir = save_model_dir(model, spec, tmp_path / "m80")
    assert_export_matches(model_dir, "onnx", "fp32", tmp_path)


@pytest.mark.parametrize("case", mutation_params())
def test_wrong_input_mapping_fails_parity(confident_fast_scnn_dir, tmp_path, monkeypatch, case):
    """A wrong mean, std or channel order, in the graph or in what the runner feeds, fails
    verification: the parity tests above would catch such a converter bug."""
    report = assert_mutation_fails_parity(confident_fast_scnn_dir, "onnx", case, tmp_path, monkeypatch)
    if case[3] == "fp32":
        assert any(f.startswith("alpha: max_abs") for f in report.failures), report.failures
