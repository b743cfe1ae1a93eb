"""ONNX conversion of both tiny models: every precision, NCHW, uint8/4 channels."""
from __future__ import annotations

import numpy as np
import pytest

from export_helpers import assert_export_matches

PRECISIONS = ["fp32", "fp16", "dynamic", "int8"]  # all ONNX precisions in REGISTRY


def test_registry_matches_test_list():
    from edgematting.converters import REGISTRY

    assert set(REGISTRY["onnx"].precisions) == set(PRECISIONS)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_onnx_precisions(tiny_model_dir, precision, tmp_path):
    art, report = assert_export_matches(tiny_model_dir, "onnx", precision, tmp_path)
    import onnx

    m = onnx.load(str(art.path))
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == 17 or any(o.version == 17 for o in m.opset_import)
    assert m.graph.input[0].name == "image" and m.graph.output[0].name == "alpha"
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert m.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp16 keeps fp32 I/O
    if precision == "int8":
        assert any(n.op_type == "QuantizeLinear" for n in m.graph.node)
    if precision == "fp16":
        assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in m.graph.initializer)


def test_onnx_nchw_fixed_batch(tiny_fast_scnn_dir, tmp_path):
    art, _ = assert_export_matches(tiny_fast_scnn_dir, "onnx", "fp32", tmp_path,
                                   onnx={"nchw": True, "dynamic_batch": False, "opset": 15})
    import onnx

    m = onnx.load(str(art.path))
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 64, 64]
    assert art.metadata["input"]["layout"] == "NCHW"
    assert any(o.version == 15 for o in m.opset_import)


def test_onnx_uint8_4ch_int8(tiny_fast_scnn_dir, tmp_path):
    art, _ = assert_export_matches(tiny_fast_scnn_dir, "onnx", "int8", tmp_path, input_type="uint8", channels=4)
    from edgematting.runners import load_runner

    r = load_runner(art.path)
    assert r.input.type == "tensor(uint8)"
    from edgematting.contract import encode_normalized

    x = np.zeros((2, 64, 64, 3), np.float32)
    native = encode_normalized(x, r.contract)  # what the runner feeds: pixels 127/128 + alpha 255
    assert native.shape == (2, 64, 64, 4) and native.dtype == np.uint8
    assert (native[..., 3] == 255).all() and (native[..., :3] == 128).all()


def test_onnx_non_integer_resize_sizes(tmp_path):
    """80x80 is a multiple of 16 but not 32: the 1/32 branch (3 px) resizes to 10 px.

    tf2onnx writes that scale as float32(10/3) and onnxruntime then computes 9 pixels and
    refuses the graph; the converter must nudge the scale so the shapes match TensorFlow's.
    """
    from edgematting.models import architecture_config, build_model
    from edgematting.modelio import ModelSpec, save_model_dir

    model = build_model("fast-scnn", (80, 80), 0.25)
    spec = ModelSpec(architecture="fast-scnn", config=architecture_config("fast-scnn", (80, 80), 0.25),
                     input_size=(80, 80))
    model_dir = save_model_dir(model, spec, tmp_path / "m80")
    _, report = assert_export_matches(model_dir, "onnx", "fp32", tmp_path)
    assert report.max_abs <= 1e-5
