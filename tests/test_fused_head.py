"""Fast-SCNN's optional fused head (``head="fused"``, ``detail_stride`` 4 or 2): build,
options, params/FLOPs, that the default model is unchanged, and conversion parity on every
target (TFLite fp32/int8, ONNX fp32/int8, Core ML fp32).

The conversion cases run on a tiny fused model trained a few steps, as the shared confident
models are (an untrained model outputs ~0.5 everywhere and would pass any parity check).
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgematting.errors import InputError
from edgematting.models import (
    architecture_config,
    build_model,
    model_summary,
    parse_model_options,
)

from export_helpers import assert_export_matches
from test_models import ALLOWED_LAYERS

TINY = 0.25


def _images(n, h, w, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, h, w, 3)).astype(np.float32)


def test_default_is_the_plain_model_unchanged():
    """No option: the paper's model, layer for layer (names, order, parameter count)."""
    model = build_model("fast-scnn", (256, 256), 1.0)
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["cls_logits", "upsample", "alpha"]
    assert not [n for n in names if n.startswith("head_")]
    assert model_summary(model)["params"] == 1_150_833  # as before the option existed
    assert model_summary(model)["flops"] == 414_269_440
    cfg = architecture_config("fast-scnn", (64, 64), TINY)
    assert cfg["head"] == "plain" and cfg["detail_stride"] is None
    # A model.json written before the option existed still rebuilds the same model.
    old = {k: v for k, v in cfg.items() if k not in ("head", "detail_stride")}
    assert [layer.name for layer in build_model("fast-scnn", **old).layers] == [
        layer.name for layer in build_model("fast-scnn", **cfg).layers
    ]


@pytest.mark.parametrize("stride", [4, 2])
@pytest.mark.parametrize("size", [(64, 64), (64, 144)])
def test_fused_head_builds_at_detail_resolution(stride, size):
    h, w = size
    model = build_model("fast-scnn", size, TINY, head="fused", detail_stride=stride)
    names = [layer.name for layer in model.layers]
    assert "cls_logits" not in names
    assert names[-3:] == ["head_logits", "upsample", "alpha"]
    assert model.get_layer("head_logits").output_shape[1:3] == (h // stride, w // stride)
    up = model.get_layer("head_up")
    assert type(up).__name__ == "UpSampling2D" and tuple(up.size) == (8 // stride, 8 // stride)
    detail_source = "ltd_conv1_relu" if stride == 2 else "ltd_ds1_pw_relu"
    assert model.get_layer("head_detail_conv").input.name.startswith(detail_source)
    used = {type(layer).__name__ for layer in model.layers}
    assert used <= ALLOWED_LAYERS, used - ALLOWED_LAYERS
    assert len(set(names)) == len(names)
    assert names == [layer.name for layer in build_model("fast-scnn", size, TINY, head="fused",
                                                         detail_stride=stride).layers]
    y = model(_images(2, h, w), training=False).numpy()
    assert y.shape == (2, h, w, 1) and np.all(np.isfinite(y)) and 0 <= y.min() <= y.max() <= 1
    # The shared trunk keeps its names, so a plain model's weights initialize a fused one.
    plain = {layer.name for layer in build_model("fast-scnn", size, TINY).layers}
    assert plain - set(names) == {"cls_logits"}


def test_fused_head_params_and_flops():
    plain = model_summary(build_model("fast-scnn", (256, 256), 1.0))
    for stride in (4, 2):
        fused = model_summary(build_model("fast-scnn", (256, 256), 1.0, head="fused", detail_stride=stride))
        print(f"fused/{stride}: {fused['params']:,} params, {fused['flops'] / 1e9:.3f} GFLOPs "
              f"(plain {plain['params']:,}, {plain['flops'] / 1e9:.3f})")
        # a few thousand parameters; ~0.09 GFLOPs (+21%) at 256x256, both strides alike
        assert 0 < fused["params"] - plain["params"] < 0.02 * plain["params"]
        assert 1.15 * plain["flops"] < fused["flops"] < 1.3 * plain["flops"]


def test_options_validated_and_round_trip(tmp_path):
    cfg = architecture_config("fast-scnn", (64, 64), TINY, head="FUSED")
    assert cfg["head"] == "fused" and cfg["detail_stride"] == 4  # the fused default
    cfg = json.loads(json.dumps(architecture_config("fast-scnn", (64, 64), TINY, head="fused",
                                                    detail_stride="2")))
    assert cfg["detail_stride"] == 2
    assert build_model("fast-scnn", **cfg).get_layer("head_logits").output_shape[1:3] == (32, 32)
    with pytest.raises(InputError, match="head must be one of plain, fused"):
        build_model("fast-scnn", (64, 64), TINY, head="unet")
    with pytest.raises(InputError, match="detail_stride must be 4 or 2"):
        build_model("fast-scnn", (64, 64), TINY, head="fused", detail_stride=8)
    with pytest.raises(InputError, match="detail_stride must be 4 or 2"):
        build_model("fast-scnn", (64, 64), TINY, head="fused", detail_stride=True)
    with pytest.raises(InputError, match="add head=fused"):  # never ignored silently
        build_model("fast-scnn", (64, 64), TINY, detail_stride=2)
    # .keras round trip without custom objects
    from edgematting._tf import keras

    model = build_model("fast-scnn", (64, 48), TINY, head="fused", detail_stride=2)
    x = _images(2, 64, 48, seed=3)
    model.save(tmp_path / "m.keras")
    loaded = keras().models.load_model(tmp_path / "m.keras", compile=False)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), model(x, training=False).numpy())


def test_parse_model_options():
    assert parse_model_options(["head=fused", "detail_stride=2", "ppm_bins=[1, 2]"]) == {
        "head": "fused", "detail_stride": 2, "ppm_bins": [1, 2]}
    assert parse_model_options(None) == {}
    with pytest.raises(InputError, match="KEY=VALUE"):
        parse_model_options(["head"])
    with pytest.raises(InputError, match="twice"):
        parse_model_options(["head=fused", "head=plain"])


def test_cli_model_option(tmp_path, capsys):
    from edgematting.cli import main

    assert main(["summary", "--model", "fast-scnn", "--input-size", "64", "--width", str(TINY),
                 "--model-option", "head=fused", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    fused = model_summary(build_model("fast-scnn", (64, 64), TINY, head="fused"))
    assert out["params"] == fused["params"] and out["flops"] == fused["flops"]
    base = ["train", "--out", str(tmp_path / "r"), "--epochs", "1"]
    assert main(base + ["--model-option", "head=fusd"]) == 2
    assert "head must be one of" in capsys.readouterr().err
    assert main(base + ["--model-option", "detail_stride=2"]) == 2
    assert "add head=fused" in capsys.readouterr().err
    assert main(base + ["--model-option", "dilation=2"]) == 2
    assert "Valid options" in capsys.readouterr().err
    from edgematting.cli.cmd_train import config_from_args
    from edgematting.cli import build_parser

    args = build_parser().parse_args(base + ["--model-option", "head=fused", "--model-option", "detail_stride=2"])
    assert config_from_args(args).model_options == {"head": "fused", "detail_stride": 2}


# -- conversion parity ---------------------------------------------------------------------
# stride 2 (a second trained model and five conversions) runs with `pytest -m slow`
@pytest.fixture(scope="module", params=[4, pytest.param(2, marks=pytest.mark.slow)], ids=["stride4", "stride2"])
def fused_model_dir(request, tmp_path_factory):
    """Tiny fused Fast-SCNN (64x64, width 0.25) trained the way the shared confident models
    are (`export_helpers.train_confident`): confident and varied output, so parity means
    something at every precision (an untrained model outputs ~0.5 everywhere)."""
    from export_helpers import assert_confident, confident_stats, train_confident

    out = tmp_path_factory.mktemp(f"fused_stride{request.param}")
    train_confident("fast-scnn", out, head="fused", detail_stride=request.param)
    assert_confident(confident_stats(out), f"the fused stride-{request.param} model")
    return out


# Every (target, precision) the issue asks the fused head to convert to, on the trained model.
# Trained at 256 px for issue 8's comparison (300 steps), both fused heads verify at full int8
# against the standard tolerance table on 8 held-out photos: stride 4 TFLite mean 6.0e-3 /
# IoU 0.991, ONNX 5.6e-3 / 0.992; stride 2 4.5e-3 / 0.994 and 4.3e-3 / 0.993; the plain head
# 4.2e-3 / 0.994 and 4.1e-3 / 0.994.
CASES = [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8"), ("coreml", "fp32")]


#: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores): the
#: default keeps TFLite fp32/int8 and ONNX int8 (the ONNX fp32 graph is the int8 one before
#: quantization); the fused head on Core ML runs only with -m slow.
SLOW_CASES = {("onnx", "fp32"), ("coreml", "fp32")}


@pytest.mark.parametrize("target,precision", [
    pytest.param(t, p, id=f"{t}-{p}", marks=[pytest.mark.slow] if (t, p) in SLOW_CASES else []) for t, p in CASES])
def test_fused_head_converts_and_verifies(fused_model_dir, target, precision, tmp_path):
    if target == "coreml":
        pytest.importorskip("coremltools")
    _, report = assert_export_matches(fused_model_dir, target, precision, tmp_path)
    assert report.n >= 1


def test_detail_branch_reaches_the_output(fused_model_dir):
    """The parity above covers the fused path: zeroing the detail branch changes alpha."""
    from edgematting.modelio import load_model_dir

    model, _ = load_model_dir(fused_model_dir)
    x = _images(2, 64, 64, seed=9)
    ref = model(x, training=False).numpy()
    layer = model.get_layer("head_detail_conv")
    layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
    assert float(np.abs(model(x, training=False).numpy() - ref).max()) > 0.05
