"""TFLite conversion of both confident tiny models: every precision, uint8 pixels, 4
channels, and deliberate input-mapping mistakes that verification must catch."""
from __future__ import annotations

import numpy as np
import pytest

from export_helpers import (CONFIDENT_FIXTURE, arch_precision_cases, assert_export_matches, mutation_params,
                            assert_mutation_fails_parity)

# Explicit list: every TFLite precision except int8-qat (needs QAT fine-tuning; tested in
# test_qat.py) for both tiny models.
PRECISIONS = ["fp32", "fp16", "dynamic", "int8", "int16x8"]


# MattingNet's other precisions run with `pytest -m slow` (each ~15 s on 2 cores).
@pytest.mark.parametrize("arch,precision", arch_precision_cases(
    PRECISIONS, slow=[("mattingnet", "fp16"), ("mattingnet", "dynamic"), ("mattingnet", "int16x8")]))
def test_tflite_precisions(arch, precision, request, tmp_path):
    confident_model_dir = request.getfixturevalue(CONFIDENT_FIXTURE[arch])
    art, _ = assert_export_matches(confident_model_dir, "tflite", precision, tmp_path)
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(art.path))
    inp = it.get_input_details()[0]
    assert list(inp["shape"]) == [1, 64, 64, 3]  # static batch 1
    assert inp["dtype"] == np.float32


def test_tflite_int16x8_refusal_is_typed(tiny_mattingnet_dir, tmp_path):
    """LiteRT's int16x8 DEPTHWISE_CONV_2D refuses the *untrained* MattingNet
    ("no_integer_overflow_from_quantization": with zero-mean/unit-variance BatchNorm a
    weight/activation scale ratio overflows the fixed-point multiplier; the trained
    confident models convert, above). The converter must say so with a typed error and
    write nothing."""
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.errors import ConversionError

    with pytest.raises(ConversionError, match="int16x8"):
        convert_model(tiny_mattingnet_dir, ExportConfig(target="tflite", precision="int16x8", calib_samples=8),
                      out_dir=tmp_path / "export", progress=False)
    assert not (tmp_path / "export").exists()


def test_tflite_int8_uint8_input_is_raw_bytes(confident_fast_scnn_dir, tmp_path):
    art, _ = assert_export_matches(confident_fast_scnn_dir, "tflite", "int8", tmp_path, input_type="uint8")
    from edgematting.runners import load_runner

    runner = load_runner(art.path)
    d = runner.input
    assert d["dtype"] == np.uint8
    scale, zp = d["quantization"]
    assert scale == pytest.approx(1.0, abs=1e-7) and zp == 0
    assert art.metadata["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert art.metadata["input"]["normalization_in_model"] is True
    # the runner feeds the exact pixel bytes: normalize pixels, runner recovers them
    px = np.random.default_rng(0).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    from edgematting.modelio import load_spec

    from edgematting.contract import encode_normalized

    native = encode_normalized(load_spec(confident_fast_scnn_dir).normalize(px), runner.contract)
    assert native.dtype == np.uint8 and np.array_equal(native, px)
    # and run_raw on those bytes equals run() on the normalized input
    raw = runner.run_raw(px)
    s, z = runner.output["quantization"]
    np.testing.assert_allclose((raw.astype(np.float32) - z) * s, runner.run(load_spec(confident_fast_scnn_dir).normalize(px)))


def test_tflite_4_channels(confident_mattingnet_dir, tmp_path):
    art, _ = assert_export_matches(confident_mattingnet_dir, "tflite", "fp32", tmp_path, channels=4)
    from edgematting.runners import load_runner

    runner = load_runner(art.path)
    assert list(runner.input["shape"]) == [1, 64, 64, 4]
    assert art.metadata["input"]["channel_order"] == "RGBA"
    # the alpha channel is ignored
    x = np.random.default_rng(1).uniform(-1, 1, (1, 64, 64, 4)).astype(np.float32)
    y1 = runner.run_raw(x)
    x[..., 3] = 123.0
    np.testing.assert_array_equal(runner.run_raw(x), y1)


def test_tflite_uint8_4ch_int8_io(confident_fast_scnn_dir, tmp_path):
    """The RGBA camera-bytes input: uint8, 4 channels, scale 1 / zero point 0. (Parity of
    this artifact: the test below.)"""
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.runners import load_runner

    art = convert_model(confident_fast_scnn_dir, ExportConfig(target="tflite", precision="int8", input_type="uint8",
                        channels=4, calib_samples=8, verify=False), out_dir=tmp_path, progress=False)
    d = load_runner(art.path).input
    assert list(d["shape"]) == [1, 64, 64, 4] and d["dtype"] == np.uint8
    assert d["quantization"] == (1.0, 0)


def test_tflite_uint8_4ch_int8_parity(confident_fast_scnn_dir, tmp_path):
    """The alpha byte must not set the quantized input's range (it once did: IoU 0.78)."""
    assert_export_matches(confident_fast_scnn_dir, "tflite", "int8", tmp_path, input_type="uint8", channels=4)


def test_read_tflite_metadata_roundtrip(tmp_path):
    """embed_metadata keeps the model runnable and replaces (not duplicates) the entry."""
    from edgematting.converters.tflite import embed_metadata
    from edgematting.runners.tflite import read_embedded_metadata
    from edgematting._tf import keras, tf

    k = keras()
    inp = k.Input((4, 4, 3), batch_size=1)
    m = k.Model(inp, k.layers.Conv2D(1, 1)(inp))
    data = tf().lite.TFLiteConverter.from_keras_model(m).convert()
    once = embed_metadata(data, {"a": 1})
    twice = embed_metadata(once, {"a": 2})
    p = tmp_path / "m.tflite"
    p.write_bytes(twice)
    assert read_embedded_metadata(p) == {"a": 2}
    from tensorflow.lite.python import schema_py_generated as schema_fb

    model = schema_fb.Model.GetRootAsModel(bytearray(twice), 0)
    names = [model.Metadata(i).Name() for i in range(model.MetadataLength())]
    assert names.count(b"edgematting") == 1
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=twice)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ones((1, 4, 4, 3), np.float32))
    it.invoke()


@pytest.mark.parametrize("case", mutation_params())
def test_wrong_input_mapping_fails_parity(confident_fast_scnn_dir, tmp_path, monkeypatch, case):
    """A wrong mean, std or channel order, in the graph or in what the runner feeds, fails
    verification: the parity tests above would catch such a converter bug."""
    report = assert_mutation_fails_parity(confident_fast_scnn_dir, "tflite", case, tmp_path, monkeypatch)
    if case[3] == "fp32":
        assert any(f.startswith("alpha: max_abs") for f in report.failures), report.failures
