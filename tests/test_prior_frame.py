"""A prior-frame model (issue 27): the previous frame's alpha as a 4th input channel.

Builds with 4 inputs, simulated priors (empty share, shift bounds, determinism), the
training pipeline's 4th channel, the contract ("RGB+prior"), export + verification on every
target with realistic priors, runners and predict_video feeding the previous alpha, and the
refusal of an RGBA wrap.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from edgematting.errors import UnsupportedError
from edgematting.prior import PRIOR_ORDER, PriorChannelError, PriorSimConfig, sample_priors

SIZE = (64, 64)


def _square_masks(n=64, size=SIZE):
    a = np.zeros((n,) + size, np.float32)
    a[:, 16:48, 20:44] = 1.0
    return a


# -- model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["fast-scnn", "mattingnet"])
def test_prior_model_takes_four_channels(arch):
    from edgematting.modelio import ModelSpec
    from edgematting.models import architecture_config, build_model

    cfg = architecture_config(arch, SIZE, 0.25, prior=True)
    model = build_model(arch, **cfg)
    assert model.input_shape == (None, 64, 64, 4) and model.output_shape == (None, 64, 64, 1)
    spec = ModelSpec(architecture=arch, config=cfg, input_size=SIZE)
    assert spec.channels == 4 and spec.channel_order == PRIOR_ORDER
    plain = architecture_config(arch, SIZE, 0.25)
    assert build_model(arch, **plain).input_shape[-1] == 3
    assert ModelSpec(architecture=arch, config=plain, input_size=SIZE).channel_order == "RGB"


# -- simulated priors ----------------------------------------------------------------------
def test_simulated_priors_empty_share_and_determinism():
    a = _square_masks(200)
    p = sample_priors(a, seed=5)
    assert p.shape == (200, 64, 64, 1) and p.min() >= 0 and p.max() <= 1
    empty = (p.reshape(200, -1).max(axis=1) == 0).mean()
    assert 0.15 <= empty <= 0.35, empty  # PriorSimConfig.p_empty = 0.25
    np.testing.assert_array_equal(p, sample_priors(a, seed=5))
    assert not np.array_equal(p, sample_priors(a, seed=6))
    none_empty = sample_priors(a, seed=5, cfg=PriorSimConfig(p_empty=0.0))
    assert (none_empty.reshape(200, -1).max(axis=1) > 0).all()


def test_simulated_priors_shift_and_scale_bounds():
    """Shift only (no morphology, blur, noise or emptiness): the square's centre moves by at
    most max_shift of the size, and the prior is not always the truth itself."""
    a = _square_masks(100)
    cfg = PriorSimConfig(p_empty=0.0, max_shift=0.05, scale_range=(1.0, 1.0), p_morph=0.0, p_blur=0.0, p_noise=0.0)
    p = sample_priors(a, seed=1, cfg=cfg)[..., 0]
    ys, xs = np.mgrid[0:64, 0:64]
    cy = (p * ys).sum(axis=(1, 2)) / p.sum(axis=(1, 2))
    cx = (p * xs).sum(axis=(1, 2)) / p.sum(axis=(1, 2))
    assert np.abs(cy - 31.5).max() <= 0.05 * 64 + 0.5 and np.abs(cx - 31.5).max() <= 0.05 * 64 + 0.5
    assert np.abs(cx - 31.5).max() > 1.0  # it does shift
    # scale only: the area changes by at most the scale range squared
    cfg = PriorSimConfig(p_empty=0.0, max_shift=0.0, scale_range=(0.9, 1.1), p_morph=0.0, p_blur=0.0, p_noise=0.0)
    area = sample_priors(a, seed=2, cfg=cfg).sum(axis=(1, 2, 3)) / a[0].sum()
    assert 0.9**2 - 0.03 <= area.min() and area.max() <= 1.1**2 + 0.03 and area.std() > 0.01


# -- simulated priors v2 (docs/experiments.md, "Prior v2") ---------------------------------
def _only(**on):
    """A config with every knob off (no empty, shift, scale, morphology, blur, noise) but `on`."""
    from edgematting.prior import PriorSimConfig

    off = dict(p_empty=0.0, max_shift=0.0, scale_range=(1.0, 1.0), p_morph=0.0, p_blur=0.0, p_noise=0.0)
    return PriorSimConfig(**{**off, **on})


def test_prior_sim_records_load_and_presets():
    from edgematting.errors import InputError
    from edgematting.prior import PRESETS, PriorSimConfig, default_sim, simulation

    v1_record = {"p_empty": 0.25, "max_shift": 0.05, "scale_range": [0.92, 1.08], "p_morph": 0.5,
                 "p_blur": 0.4, "p_noise": 0.3, "noise_std": 0.08}  # what the first runs' knobs were
    assert PriorSimConfig.from_dict(v1_record) == PRESETS["v1"] == PriorSimConfig()
    v2 = PRESETS["v2"]
    assert PriorSimConfig.from_dict(v2.to_dict()) == v2 == PriorSimConfig.from_dict("v2")
    assert v2.p_empty > PRESETS["v1"].p_empty and v2.p_fast > 0 and v2.fast_shift >= 0.15
    with pytest.raises(InputError, match="no field 'shift'"):
        PriorSimConfig.from_dict({"shift": 0.2})
    with pytest.raises(InputError, match="p_blobs"):
        PriorSimConfig(p_blobs=1.5)
    with pytest.raises(InputError, match="Known: v1, v2"):
        PriorSimConfig.from_dict("v9")
    assert default_sim() == PRESETS["v1"]
    with simulation("v2") as sim:
        assert sim == v2 and default_sim() == v2
    assert default_sim() == PRESETS["v1"]


def test_v2_priors_empty_share_and_determinism():
    from edgematting.prior import PRESETS

    a = np.zeros((300, 32, 32), np.float32)
    a[:, 8:32, 10:22] = 1.0
    p = sample_priors(a, seed=8, cfg=PRESETS["v2"])
    assert p.shape == (300, 32, 32, 1) and p.min() >= 0 and p.max() <= 1
    empty = (p.reshape(300, -1).max(axis=1) == 0).mean()
    assert abs(empty - PRESETS["v2"].p_empty) < 0.08, empty
    np.testing.assert_array_equal(p, sample_priors(a, seed=8, cfg=PRESETS["v2"]))
    assert not np.array_equal(p, sample_priors(a, seed=9, cfg=PRESETS["v2"]))


def test_v2_knobs_leave_the_v1_random_stream_alone():
    """A v1 config with a v2 knob on at a vanishing rate gives v1's priors exactly: the v2
    knobs draw their own random numbers, so recorded v1 priors stay reproducible."""
    from dataclasses import replace

    from edgematting.prior import PRESETS

    a = _square_masks(64)
    v1 = sample_priors(a, seed=4, cfg=PRESETS["v1"])
    np.testing.assert_array_equal(v1, sample_priors(a, seed=4, cfg=replace(PRESETS["v1"], p_swap=1e-9)))


def test_v2_fast_moves_shift_and_scale_further():
    a = _square_masks(200)
    p = sample_priors(a, seed=1, cfg=_only(p_fast=1.0, fast_shift=0.18, fast_scale_range=(1.0, 1.0)))[..., 0]
    ys, xs = np.mgrid[0:64, 0:64]
    cy = (p * ys).sum(axis=(1, 2)) / p.sum(axis=(1, 2))
    cx = (p * xs).sum(axis=(1, 2)) / p.sum(axis=(1, 2))
    shift = np.maximum(np.abs(cx - 31.5), np.abs(cy - 31.5))
    assert shift.max() <= 0.18 * 64 + 0.5
    assert (shift > 0.05 * 64 + 1).mean() > 0.5  # most moves are beyond v1's 5%
    area = sample_priors(a, seed=2, cfg=_only(p_fast=1.0, fast_shift=0.0, fast_scale_range=(0.8, 1.25)))
    area = area.sum(axis=(1, 2, 3)) / a[0].sum()
    assert 0.8**2 - 0.03 <= area.min() and area.max() <= 1.25**2 + 0.03
    assert area.min() < 0.8 and area.max() > 1.25  # both ways, beyond v1's range


def test_v2_false_blobs_and_missing_parts():
    a = _square_masks(200)
    blobs = sample_priors(a, seed=3, cfg=_only(p_blobs=1.0))
    assert (blobs >= a[..., None] - 1e-6).all()  # blobs only add
    false = (blobs[..., 0] * (1 - a) > 0.5).sum(axis=(1, 2))
    assert (false > 5).mean() > 0.9, (false > 5).mean()
    big = np.zeros((200, 64, 64), np.float32)
    big[:, 6:64, 6:58] = 1.0  # a figure filling most of the frame: the holes land on it
    holes = sample_priors(big, seed=3, cfg=_only(p_holes=1.0))
    assert (holes <= big[..., None] + 1e-6).all()  # holes only take away
    missing = ((big - holes[..., 0]) > 0.5).sum(axis=(1, 2))
    assert (missing > 5).mean() > 0.8, (missing > 5).mean()
    assert np.array_equal(sample_priors(a, seed=3, cfg=_only(p_blobs=0.0)), a[..., None])  # off: the truth


def test_v2_soft_and_swapped_priors():
    a = _square_masks(100)
    soft = sample_priors(a, seed=5, cfg=_only(p_soft=1.0, soft_contrast=(0.2, 0.7)))[..., 0]
    assert soft.max() <= 0.5 + 0.5 * 0.7 + 1e-6 and soft.min() >= 0
    inside = (soft * a).sum(axis=(1, 2)) / a.sum(axis=(1, 2))
    outside = (soft * (1 - a)).sum(axis=(1, 2)) / (1 - a).sum(axis=(1, 2))
    assert (inside > outside + 0.05).all()  # low contrast, still the figure's shape
    rng = np.random.default_rng(0)
    b = np.zeros((8, 64, 64), np.float32)
    for i in range(8):  # a different figure per sample
        y, x = rng.integers(0, 40, 2)
        b[i, y:y + 20, x:x + 20] = 1.0
    swapped = sample_priors(b, seed=6, cfg=_only(p_swap=1.0))[..., 0]
    np.testing.assert_array_equal(swapped, np.roll(b, 1, axis=0))  # another sample's shape


def test_bench_driver_refuses_a_bad_prior_sim(capsys):
    from edgematting.bench import prior_frame

    with pytest.raises(SystemExit) as e:
        prior_frame.main(["--prior-sim", "v9", "--out", "unused"])
    assert e.value.code == 2 and "Known: v1, v2" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        prior_frame.main(["--stop-after-epochs", "30", "--epochs", "24", "--out", "unused"])


def test_training_pipeline_feeds_a_prior_channel():
    from edgematting.data.augment import AugmentConfig
    from edgematting.data.pipeline import DataConfig, make_datasets

    cfg = DataConfig(input_size=SIZE, batch_size=4, n_synthetic_train=8, n_synthetic_val=4, synthetic_pool=8,
                     pool_cache_dir="", augment=AugmentConfig(enabled=False), prior=True)
    train, val, _ = make_datasets(cfg)
    x, y = next(iter(train))
    assert x.shape == (4, 64, 64, 4) and y.shape == (4, 64, 64, 7)
    prior = x.numpy()[..., 3]
    assert prior.min() >= 0 and prior.max() <= 1
    v1 = [b[0].numpy()[..., 3] for b in val]
    v2 = [b[0].numpy()[..., 3] for b in val]
    np.testing.assert_array_equal(v1[0], v2[0])  # validation priors: the same every epoch


# -- a trained prior model -----------------------------------------------------------------
def _train_prior_model(out_dir, steps=120):
    """A tiny prior Fast-SCNN trained a few steps on synthetic portraits + simulated priors
    (confident, and its output depends on the prior)."""
    from edgematting._tf import keras
    from edgematting.calibration import calibration_images
    from edgematting.data.synthetic import SyntheticPortraits
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model

    from export_helpers import fit_confident

    keras().utils.set_random_seed(1234)
    config = architecture_config("fast-scnn", SIZE, 0.25, prior=True)
    spec = ModelSpec(architecture="fast-scnn", config=config, input_size=SIZE)
    model = build_model("fast-scnn", **config)
    n = 32
    rgb = spec.normalize(calibration_images(spec, "synthetic", n, seed=2024)).astype(np.float32)
    gen = SyntheticPortraits(size=SIZE, seed=2024)
    y = np.stack([gen.sample(i)["alpha"] for i in range(n)])[..., None].astype(np.float32)
    x = np.concatenate([rgb, sample_priors(y, seed=3)], axis=-1)
    fit_confident(model, x, y, steps, batch=8, seed=0)
    fresh = build_model("fast-scnn", **config)
    fresh.set_weights(model.get_weights())
    return save_model_dir(fresh, spec, out_dir)


@pytest.fixture(scope="module")
def prior_model_dir(tmp_path_factory):
    return _train_prior_model(tmp_path_factory.mktemp("prior_model"))


def test_prior_model_output_depends_on_the_prior(prior_model_dir):
    from edgematting.runners import open as open_runner

    r = open_runner(prior_model_dir)
    assert r.takes_prior
    from edgematting.data.synthetic import SyntheticPortraits

    s = SyntheticPortraits(size=SIZE, seed=77).sample(0)
    zero = r.predict_photo(s["image"])
    given = r.predict_photo(s["image"], prior=s["alpha"])
    assert np.abs(zero - given).mean() > 1e-3


def test_export_and_verify_prior_model_on_every_target(prior_model_dir, tmp_path):
    """TFLite fp32 and int8 (calibrated with priors), ONNX fp32 and Core ML fp32 (reference
    interpreter) all pass verification on realistic priors, and every contract says RGB+prior."""
    from edgematting.calibration import verification_priors
    from edgematting.contract import validate_metadata
    from edgematting.converters import ExportConfig, convert
    from edgematting.modelio import load_spec
    from edgematting.runners import open as open_runner

    spec = load_spec(prior_model_dir)
    priors = verification_priors(spec, 8)
    assert priors.shape == (8, 64, 64, 1)
    assert 0 < (priors.reshape(8, -1).max(axis=1) == 0).sum() < 8 or priors.max() > 0.9  # mattes, not noise
    # tflite int8 with uint8 input: LiteRT reports the pixel input as scale 1, zero point 0,
    # and the prior byte must still be round(prior * 255) (it was fed as round(prior): IoU 0.66)
    configs = [ExportConfig(target=t, precision=p, input_type=i, calib_samples=16, verify_samples=8)
               for t, p, i in (("tflite", "fp32", "float"), ("tflite", "int8", "float"), ("tflite", "int8", "uint8"),
                               ("onnx", "fp32", "float"), ("coreml", "fp32", "float"))]
    run = convert(prior_model_dir, configs, tmp_path / "export", progress=False)
    run.raise_for_failures()
    assert len(run.artifacts) == 5
    for art in run.artifacts:
        side = json.loads(art.sidecar.read_text())
        assert side["verification"]["passed"] is True, (art.target, art.precision, side["verification"])
        inp = side["input"]
        assert inp["channels"] == 4 and inp["channel_order"] == PRIOR_ORDER, art.path
        assert inp["prior"]["range"] == [0.0, 1.0] and "zeros" in inp["prior"]["first_frame"]
        assert validate_metadata(side)["prior"] is True
        r = open_runner(art.path)
        assert r.takes_prior
        x = r.inputs([np.zeros((80, 70, 3), np.uint8)], [np.ones((64, 64))])
        assert x.shape == (1, 64, 64, 4)
    # the Android app feeds the prior on its camera screen (the Java core's golden vectors cover it)
    from edgematting.android_assets import android_assets

    tfl = next(a.path for a in run.artifacts if a.target == "tflite" and a.path.name.endswith("_uint8.tflite"))
    index = android_assets([tfl], tmp_path / "assets", role="camera")
    assert index["models"]["camera"]["file"] == tfl.name
    assert json.loads((tmp_path / "assets" / (tfl.name + ".json")).read_text())["input"]["channel_order"] == PRIOR_ORDER


def test_rgba_wrap_of_a_prior_model_is_refused(prior_model_dir, tmp_path):
    from edgematting.converters import ExportConfig, convert_model

    with pytest.raises(PriorChannelError, match="prior-frame") as e:
        convert_model(prior_model_dir, ExportConfig(target="tflite", precision="fp32", channels=4, verify=False),
                      out_dir=tmp_path, progress=False)
    assert isinstance(e.value, UnsupportedError)
    assert not list(tmp_path.iterdir())


def test_plain_rgba_and_prior_contracts_differ():
    from edgematting.contract import MetadataError, encode_pixels, validate_metadata

    base = {"format_version": 1,
            "input": {"height": 4, "width": 4, "channels": 4, "channel_order": "RGBA", "layout": "NHWC",
                      "dtype": "float32", "mean": [127.5] * 3, "std": [127.5] * 3, "normalization_in_model": False},
            "output": {"height": 4, "width": 4, "channels": 1, "dtype": "float32", "meaning": "alpha_matte"}}
    rgba = validate_metadata(base)
    assert rgba["prior"] is False
    px = np.full((1, 4, 4, 3), 255, np.uint8)
    assert (encode_pixels(px, rgba)[..., 3] == 0).all()
    prior_meta = json.loads(json.dumps(base))
    prior_meta["input"]["channel_order"] = "RGB+prior"
    c = validate_metadata(prior_meta)
    assert c["prior"] is True and c["channel_order"] == PRIOR_ORDER
    p = np.full((1, 4, 4, 1), 0.25, np.float32)
    np.testing.assert_array_equal(encode_pixels(px, c, prior=p)[..., 3], 0.25)
    assert (encode_pixels(px, c)[..., 3] == 0).all()  # no prior: zeros (a first frame)
    prior_meta["input"]["channels"] = 3
    with pytest.raises(MetadataError, match="input.channels"):
        validate_metadata(prior_meta)


# -- video -----------------------------------------------------------------------------------
def test_predict_video_feeds_the_previous_alpha(tmp_path):
    """A model whose alpha is 0.5 + 0.5 * prior: frames get 0.5, 0.75, 0.875, ... only if each
    frame is fed the previous frame's output (zeros on the first)."""
    from PIL import Image

    from edgematting.data.clip import synthetic_clip, write_clip
    from edgematting.modelio import ModelSpec
    from edgematting.models import architecture_config
    from edgematting.video import predict_video

    frames, _ = synthetic_clip(5, SIZE, seed=3, motion="still", background="static")
    src = write_clip(tmp_path / "still.mp4", frames, fps=25)
    seen = []

    def model(x):
        x = np.asarray(x)
        assert x.shape[-1] == 4
        seen.append(float(x[..., 3].mean()))
        return (0.5 + 0.5 * x[..., 3:4]).astype(np.float32)

    spec = ModelSpec(architecture="fast-scnn", config=architecture_config("fast-scnn", SIZE, 0.25, prior=True),
                     input_size=SIZE)
    out = tmp_path / "frames"
    predict_video(model, src, f"{out}/", output="alpha", spec=spec, progress=False, batch_size=4)
    want = [0.0, 0.5, 0.75, 0.875, 0.9375]
    np.testing.assert_allclose(seen, want, atol=1e-6)
    mattes = [np.asarray(Image.open(p), np.float32).mean() / 255 for p in sorted(out.glob("*_alpha.png"))]
    np.testing.assert_allclose(mattes, [0.5 + 0.5 * w for w in want], atol=1 / 255)


# -- warm start from a 3-channel model (docs/experiments.md, "Prior v3") -------------------
def _saved(arch, tmp_path, name, width=0.25, prior=False):
    from edgematting._tf import keras
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model

    keras().utils.set_random_seed(7)
    cfg = architecture_config(arch, SIZE, width, prior=prior)
    model = build_model(arch, **cfg)
    # moving statistics away from 0/1, so that batch norm is not the identity
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            rng = np.random.default_rng(len(layer.name))
            layer.set_weights([g, b, rng.normal(0, 0.1, m.shape).astype(m.dtype),
                               rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)])
    save_model_dir(model, ModelSpec(architecture=arch, config=cfg, input_size=SIZE), tmp_path / name)
    return model, tmp_path / name


@pytest.mark.parametrize("arch", ["fast-scnn", "mattingnet"])
def test_prior_model_warm_started_from_a_three_channel_model_is_that_model(arch, tmp_path):
    """--init-weights of a 3-channel model into a prior model: the RGB kernel slices copied,
    the prior's zero, so that whatever the prior, the output is the 3-channel model's."""
    from edgematting.models import architecture_config, build_model
    from edgematting.training import load_init_weights

    src, src_dir = _saved(arch, tmp_path, "rgb")
    dst = build_model(arch, **architecture_config(arch, SIZE, 0.25, prior=True))
    fresh = [w.copy() for w in dst.get_weights()]
    rep = load_init_weights(dst, src_dir)
    assert rep.skipped == [] and len(rep.loaded) == sum(1 for layer in dst.layers if layer.weights)
    first = {"fast-scnn": "ltd_conv1_conv", "mattingnet": "stem_conv"}[arch]
    names = [n for n, _ in rep.widened]
    assert first in names and (arch != "mattingnet" or "refine_conv1_conv" in names), rep.widened
    assert "widened " + first in rep.format() and "zeros for the prior channel" in rep.format()
    for name in names:  # RGB (and other) slices copied, the prior's zero
        k_src, k_dst = src.get_layer(name).get_weights()[0], dst.get_layer(name).get_weights()[0]
        np.testing.assert_array_equal(k_dst[:, :, 3], 0.0)
        np.testing.assert_array_equal(np.delete(k_dst, 3, axis=2), k_src)
    assert not all(np.array_equal(a, b) for a, b in zip(fresh, dst.get_weights()))

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, *SIZE, 3)).astype(np.float32)
    want = src(x, training=False).numpy()
    zero = dst(np.concatenate([x, np.zeros((2, *SIZE, 1), np.float32)], -1), training=False).numpy()
    some = dst(np.concatenate([x, rng.uniform(size=(2, *SIZE, 1)).astype(np.float32)], -1), training=False).numpy()
    np.testing.assert_allclose(zero, want, rtol=0, atol=1e-6)  # another conv kernel: float rounding only
    np.testing.assert_array_equal(some, zero)  # the prior has no say at all
    assert np.abs(want).max() > 1e-3 and want.std() > 1e-4  # not a constant output


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores);
# the widening itself stays in the default suite
@pytest.mark.slow
def test_init_weights_other_shape_mismatches_still_refused(tmp_path):
    """Only a 3-channel model into a prior model is bridged: another width, a prior model into
    a 3-channel one, and a 3-channel model into a 3-channel model of another width are not."""
    from edgematting.errors import InputError
    from edgematting.models import architecture_config, build_model
    from edgematting.training import load_init_weights

    _, rgb_wide = _saved("fast-scnn", tmp_path, "rgb-wide", width=0.5)
    prior_src, prior_dir = _saved("fast-scnn", tmp_path, "prior", prior=True)
    with pytest.raises(InputError, match="other shapes"):  # prior model from a wider 3-channel one
        load_init_weights(build_model("fast-scnn", **architecture_config("fast-scnn", SIZE, 0.25, prior=True)),
                          rgb_wide)
    plain = build_model("fast-scnn", **architecture_config("fast-scnn", SIZE, 0.25))
    rep = load_init_weights(plain, prior_dir)  # 4 -> 3 channels: skipped, reported as before
    assert rep.widened == [] and [n for n, _ in rep.skipped] == ["ltd_conv1_conv"]
    assert rep.skipped[0][1].startswith("shape mismatch: model [(3, 3, 3, 8)] vs source [(3, 3, 4, 8)]")
    same = build_model("fast-scnn", **architecture_config("fast-scnn", SIZE, 0.25, prior=True))
    rep = load_init_weights(same, prior_dir)  # prior model from a prior model: nothing to widen
    assert rep.widened == [] and rep.skipped == []
    for a, b in zip(prior_src.get_weights(), same.get_weights()):
        np.testing.assert_array_equal(a, b)
