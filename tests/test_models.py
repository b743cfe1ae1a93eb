"""Tests of the two architectures, their config round-trip and the FLOP counter.

Tiny models only (64 px, width 0.25) except the parameter-count check, which only builds.
"""
from __future__ import annotations

import numpy as np
import pytest

from edgematting.errors import InputError
from edgematting.models import (
    ARCHITECTURES,
    LITE_WIDTH,
    architecture_config,
    build_model,
    count_flops,
    custom_objects,
    model_summary,
    parse_size,
)

TINY = 0.25
ALLOWED_LAYERS = {
    "Conv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "ReLU",
    "Activation",
    "Add",
    "Concatenate",
    "AveragePooling2D",
    "UpSampling2D",
    "Resizing",
    "InputLayer",
}


def _keras():
    from edgematting._tf import keras

    return keras()


def _run(model, x):
    """Inference without Model.predict's tf.function tracing (much faster for tiny models)."""
    return model(x, training=False).numpy()


def _images(n, h, w, seed=0):
    return np.random.RandomState(seed).uniform(-1, 1, (n, h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize("size", [(64, 64), (64, 32), (96, 64)])
def test_build_shapes_and_range(arch, size):
    model = build_model(arch, input_size=size, width=TINY)
    h, w = size
    assert model.inputs[0].name.startswith("image")
    assert model.get_layer("image") is not None
    assert tuple(model.input_shape) == (None, h, w, 3)
    assert model.output_names == ["alpha"]
    assert tuple(model.output_shape) == (None, h, w, 1)
    assert model.layers[-1].name == "alpha"
    y = _run(model, _images(2, h, w))
    assert y.shape == (2, h, w, 1)
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y)) and y.min() >= 0.0 and y.max() <= 1.0
    # Not a constant map: the output depends on the pixels.
    assert float(y.std()) > 0.0


def test_non_integer_deep_branch_uses_resizing():
    # 144 = 9 x 16: the 1/32 branch is ceil(144 / 32) = 5, not 4.5, so fusion must resize.
    model = build_model("fast-scnn", input_size=(64, 144), width=TINY)
    types = {layer.name: type(layer).__name__ for layer in model.layers}
    assert types["ffm_up"] == "Resizing"
    assert model.get_layer("ffm_up").output_shape[1:3] == (8, 18)
    assert _run(model, _images(1, 64, 144)).shape == (1, 64, 144, 1)
    # MattingNet: 1/32 = 5 -> 1/16 = 9 in the first decoder step.
    mn = build_model("mattingnet", input_size=(64, 144), width=TINY)
    assert type(mn.get_layer("dec4_up")).__name__ == "Resizing"
    assert mn.get_layer("dec4_up").output_shape[1:3] == (4, 9)
    assert _run(mn, _images(1, 64, 144)).shape == (1, 64, 144, 1)


def test_fast_scnn_param_count_matches_paper():
    params = model_summary(build_model("fast-scnn", input_size=(256, 256), width=1.0))["params"]
    print(f"fast-scnn 256x256 width 1.0: {params:,} params")
    assert 900_000 <= params <= 1_300_000


def test_width_scales_params():
    full = model_summary(build_model("fast-scnn", (64, 64), 1.0))["params"]
    lite = model_summary(build_model("fast-scnn", (64, 64), LITE_WIDTH))["params"]
    assert lite < full / 2.5  # params scale ~ width^2


def test_mattingnet_heavier_than_fast_scnn():
    fs = model_summary(build_model("fast-scnn", (128, 128), 1.0))
    mn = model_summary(build_model("mattingnet", (128, 128), 1.0))
    assert mn["flops"] > fs["flops"]
    assert 1_500_000 <= mn["params"] <= 4_000_000
    assert fs["input_size"] == mn["input_size"] == (128, 128)


def test_flops_of_single_conv_is_hand_computed():
    k = _keras()
    inp = k.layers.Input((32, 32, 3), name="image")
    out = k.layers.Conv2D(8, 3, strides=2, padding="same", name="c")(inp)
    model = k.Model(inp, out)
    # 16 x 16 output positions x 8 filters x (3 x 3 x 3) MACs each, FLOPs = 2 x MACs.
    assert count_flops(model) == 2 * 16 * 16 * 8 * 3 * 3 * 3
    dw = k.layers.DepthwiseConv2D(3, padding="same", name="dw")(inp)
    model2 = k.Model(inp, dw)
    assert count_flops(model2) == 2 * 32 * 32 * 3 * 9
    s = model_summary(model)
    assert s["params"] == 3 * 3 * 3 * 8 + 8
    assert s["trainable_params"] == s["params"]
    assert s["input_size"] == (32, 32)
    assert s["layers"] == 2


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_flops_scale_with_pixels(arch):
    small = count_flops(build_model(arch, (64, 64), TINY))
    big = count_flops(build_model(arch, (128, 128), TINY))
    # Conv work is proportional to pixels (x4); pooled branches make it slightly less exact.
    assert 3.8 * small <= big <= 4.1 * small


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_only_allowed_layer_types(arch):
    model = build_model(arch, (96, 80), TINY)
    used = {type(layer).__name__ for layer in model.layers}
    assert used <= ALLOWED_LAYERS, used - ALLOWED_LAYERS
    for layer in model.layers:
        if type(layer).__name__ == "DepthwiseConv2D":
            # Keras (and TFLite) cannot combine stride > 1 with dilation > 1.
            assert max(layer.strides) == 1 or max(layer.dilation_rate) == 1
        if type(layer).__name__ == "UpSampling2D":
            assert layer.interpolation == "bilinear"
        if type(layer).__name__ == "Resizing":
            assert layer.interpolation == "bilinear"


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_layer_names_deterministic(arch):
    a = [layer.name for layer in build_model(arch, (64, 64), TINY).layers]
    b = [layer.name for layer in build_model(arch, (64, 64), TINY).layers]
    assert a == b
    assert len(set(a)) == len(a)
    # Readable "{block}_{part}" names, no Keras auto-numbering like "conv2d_17".
    for name in a:
        assert name in ("image", "alpha", "upsample") or "_" in name, name
        assert not name.split("_")[0] in {"conv2d", "batch", "re", "add", "concatenate"}, name


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_config_roundtrip_and_save_load(arch, tmp_path):
    k = _keras()
    k.utils.set_random_seed(7)
    model = build_model(arch, (64, 48), TINY)
    x = _images(2, 64, 48, seed=3)
    ref = _run(model, x)

    clone = k.Model.from_config(model.get_config(), custom_objects())
    assert [layer.name for layer in clone.layers] == [layer.name for layer in model.layers]
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(_run(clone, x), ref)

    path = tmp_path / "m.keras"
    model.save(path)
    loaded = k.models.load_model(path, custom_objects=custom_objects(), compile=False)
    np.testing.assert_array_equal(_run(loaded, x), ref)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_architecture_config_rebuilds(arch):
    import json

    cfg = architecture_config(arch, input_size=(96, 64), width=TINY)
    cfg = json.loads(json.dumps(cfg))  # what model.json stores
    assert cfg["input_size"] == [96, 64] and cfg["width"] == TINY
    m1 = build_model(arch, input_size=(96, 64), width=TINY)
    m2 = build_model(arch, **cfg)
    assert m2.count_params() == m1.count_params()
    assert [layer.name for layer in m2.layers] == [layer.name for layer in m1.layers]


def test_architecture_options_are_used_and_validated():
    # 128 px: the 1/32 features are 4x4, so bins 1 and 2 both fit (bins 3 and 6 would pool
    # 1x1 cells and are skipped as adding nothing).
    base = build_model("fast-scnn", (128, 128), TINY)
    assert {"ppm_pool1", "ppm_pool2"} <= {layer.name for layer in base.layers}
    fewer = build_model("fast-scnn", (128, 128), TINY, ppm_bins=[1])
    assert fewer.count_params() < base.count_params()
    assert "ppm_pool2" not in [layer.name for layer in fewer.layers]
    dil = build_model("fast-scnn", (64, 64), TINY, ffm_dilation=2)
    assert tuple(dil.get_layer("ffm_low_dw").dilation_rate) == (2, 2)
    with pytest.raises(InputError, match="Valid options"):
        build_model("fast-scnn", (64, 64), TINY, refine_channels=16)
    with pytest.raises(InputError, match="refine_channels"):
        build_model("mattingnet", (64, 64), TINY, refine_channels=3)


def test_unknown_architecture_suggests():
    with pytest.raises(InputError) as e:
        build_model("fast-scn", (64, 64))
    assert "fast-scnn" in str(e.value) and "mattingnet" in str(e.value)
    assert "Did you mean 'fast-scnn'" in str(e.value)
    with pytest.raises(InputError, match="Choose one of"):
        architecture_config("unet", (64, 64))


@pytest.mark.parametrize("size", [(64, 50), (20, 64), (16, 16), (0, 64), (64,), "abc", (64.5, 64), None])
def test_bad_input_size(size):
    with pytest.raises(InputError):
        build_model("fast-scnn", size, TINY)


def test_bad_width():
    with pytest.raises(InputError):
        build_model("mattingnet", (64, 64), 0.0)
    with pytest.raises(InputError):
        build_model("mattingnet", (64, 64), "wide")


@pytest.mark.parametrize(
    "text,expected",
    [("256", (256, 256)), ("256x144", (256, 144)), (" 512X288 ", (512, 288)), (128, (128, 128)), ((64, 32), (64, 32))],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "x", "256x", "256x144x3", "-64", "abc", "250", "256x150"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError):
        parse_size(text)


# MattingNet (~40 s on 2 cores) with `pytest -m slow`
@pytest.mark.parametrize("arch", [pytest.param(a, marks=[pytest.mark.slow] if a == "mattingnet" else [])
                                  for a in ARCHITECTURES])
def test_trains_two_steps(arch):
    k = _keras()
    k.utils.set_random_seed(0)
    model = build_model(arch, (32, 32), TINY)
    x = _images(4, 32, 32)
    y = (np.random.RandomState(1).uniform(size=(4, 32, 32, 1)) > 0.5).astype(np.float32)
    model.compile("adam", "binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    hist = model.fit(x, y, batch_size=2, epochs=1, steps_per_epoch=2, verbose=0)
    loss = hist.history["loss"][-1]
    assert np.isfinite(loss)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_format_summary_and_cli(capsys):
    from edgematting.cli import main
    from edgematting.models.summary import format_summary

    model = build_model("fast-scnn", (64, 64), TINY)
    text = format_summary(model)
    s = model_summary(model)
    assert f"{s['params']:,}" in text and "gfe" in text and "ppm" in text
    assert main(["summary", "--model", "fast-scnn", "--input-size", "64", "--width", str(TINY), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["params"] == s["params"] and out["flops"] == s["flops"] and out["input_size"] == [64, 64]
    assert main(["summary", "--model", "fast-scnn", "--input-size", "63"]) == InputError.exit_code
    assert main(["summary"]) == InputError.exit_code


def test_fixture_model_dirs_load(tiny_model_dir):
    from edgematting.modelio import load_model_dir
    from edgematting.cli import main

    model, spec = load_model_dir(tiny_model_dir)
    assert spec.input_size == (64, 64)
    rebuilt = build_model(spec.architecture, **spec.config)
    assert rebuilt.count_params() == model.count_params()
    y = _run(model, _images(1, 64, 64))
    assert y.shape == (1, 64, 64, 1)
    assert main(["summary", str(tiny_model_dir)]) == 0
