"""Alpha calibration (`edgematting.alpha_calibration`): a monotone map fitted on held-out
images, folded into the Keras model as stock layers.

Constructed cases with a known answer (a 0.1 haze away from the edge; a decisive output; a
map that would move the contour), the fold against the numpy map, conversion of a calibrated
model, `edgematting calibrate` and train's default.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from edgematting.alpha_calibration import (
    BOUNDARY_F_MARGIN,
    CLIP_LAYER,
    SAD_UNKNOWN_MARGIN,
    SCALE_LAYER,
    AlphaMap,
    current_map,
    fit_alpha_map,
    fold_alpha_map,
    strip_alpha_map,
)

S = 64


def _discs(n=4, seed=0):
    """n true mattes: a disc with a 1.5 px soft edge, as multiples of 1/255."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:S, :S]
    out = []
    for _ in range(n):
        d = np.hypot(x - rng.uniform(24, 40), y - rng.uniform(24, 40)) - rng.uniform(12, 18)
        out.append(np.round(np.clip(0.5 - d / 1.5, 0, 1) * 255) / 255)
    return np.stack(out).astype(np.float32)


# -- fitting: constructed cases ----------------------------------------------------------------
def test_a_haze_away_from_the_edge_is_mapped_away():
    """0.1 over the background, 0.9 inside (the truth stretched): the map is lo 0.1, hi 0.9, and
    the SAD away from the edge drops to ~0 with the edge untouched."""
    truth = _discs()
    pred = 0.1 + 0.8 * truth
    r = fit_alpha_map(pred, truth)
    assert r.amap.lo >= 0.1 and r.amap.hi <= 0.9
    assert (r.amap.lo, r.amap.hi) == pytest.approx((0.1, 0.9))
    assert r.before["sad_away"] > 0.3 and r.before["sad_away_soft"] == pytest.approx(r.before["sad_away"])
    assert r.after["sad_away"] < 1e-3 * r.before["sad_away"]
    assert r.after["sad"] < 1e-3 * r.before["sad"]
    assert r.after["sad_unknown"] <= r.before["sad_unknown"]
    assert r.after["boundary_f"] == pytest.approx(r.before["boundary_f"])
    rec = r.record()
    assert rec["lo"] == pytest.approx(0.1) and rec["layers"] == [SCALE_LAYER, CLIP_LAYER]
    json.dumps(rec)  # model.json takes it as it is


def test_a_decisive_output_keeps_the_identity():
    truth = _discs()
    for pred in (truth, (truth >= 0.5).astype(np.float32)):
        r = fit_alpha_map(pred, truth)
        assert r.amap.identity and (r.amap.lo, r.amap.hi) == (0.0, 1.0), r.reason
        assert r.after == r.before


def test_the_constraint_refuses_a_map_that_moves_the_contour():
    """A weak rim of the person (0.55, 2 px) and a stray blob on the background (0.62): the
    lowest SAD removes the blob and the rim with it (the contour moves 2 px inward, boundary F
    falls to 0); the constraint refuses that map and keeps the contour."""
    y, x = np.mgrid[:S, :S]
    g = ((np.abs(x - 24) < 14) & (np.abs(y - 32) < 20)).astype(np.float32)
    rim = (g > 0.5) & ~ndimage.binary_erosion(g > 0.5, iterations=2)
    p = np.where(g > 0.5, 0.9, 0.3).astype(np.float32)
    p[rim] = 0.55
    p[20:44, 48:62] = 0.62
    pred, truth = np.stack([p] * 3), np.stack([g] * 3)

    free = fit_alpha_map(pred, truth, boundary_f_margin=np.inf, sad_unknown_margin=np.inf, other_margin=np.inf)
    assert free.after["boundary_f"] < free.before["boundary_f"] - 0.5
    r = fit_alpha_map(pred, truth)
    assert not r.amap.identity
    assert r.after["boundary_f"] >= r.before["boundary_f"] - BOUNDARY_F_MARGIN
    assert r.after["iou"] >= r.before["iou"] - BOUNDARY_F_MARGIN
    assert r.after["sad_unknown"] <= r.before["sad_unknown"] * (1 + SAD_UNKNOWN_MARGIN) + 1e-6
    assert r.after["sad"] < r.before["sad"]
    assert r.refused and (r.refused[0]["lo"], r.refused[0]["hi"]) == (free.amap.lo, free.amap.hi)
    assert "boundary F" in r.refused[0]["why"]


def test_sad_alone_would_cut_a_calibrated_alpha_to_0_or_1_the_mse_guard_keeps_it():
    """An alpha that is a calibrated probability (0.2 where 20% of the truth is 1, 0.8 where
    80% is): the lowest SAD cuts it to 0/1, which raises the MSE; the guard (MSE not higher)
    keeps the identity. Edge constraints off, to isolate the guard."""
    rng = np.random.default_rng(1)
    pred = np.where(np.arange(S)[None, :, None] < S // 2, 0.2, 0.8) * np.ones((4, S, S))
    truth = (rng.random(pred.shape) < pred).astype(np.float32)
    off = dict(boundary_f_margin=np.inf, sad_unknown_margin=np.inf)
    cut = fit_alpha_map(pred, truth, other_margin=np.inf, **off)
    assert cut.amap.lo >= 0.2 and cut.amap.hi <= 0.8 and cut.after["mse"] > cut.before["mse"]
    kept = fit_alpha_map(pred, truth, **off)
    assert kept.amap.identity and kept.refused and kept.refused[0]["why"].startswith("mse")


def test_bad_maps_and_objectives_are_input_errors():
    from edgematting.errors import InputError

    with pytest.raises(InputError):
        AlphaMap(0.6, 0.4)
    with pytest.raises(InputError):
        fit_alpha_map(_discs(1), _discs(1), objective="l1")


# -- folding ------------------------------------------------------------------------------------
def test_the_fold_computes_the_numpy_map_and_round_trips(tiny_fast_scnn_dir, confident_fast_scnn_dir, tmp_path):
    from edgematting.modelio import MODEL_FILE, SPEC_FILE, ModelSpec, load_model_dir, save_model_dir

    model, spec = load_model_dir(confident_fast_scnn_dir)
    x = np.random.default_rng(5).uniform(-1, 1, (3, 64, 64, 3)).astype(np.float32)
    raw = model.predict(x, verbose=0)
    amap = AlphaMap(0.12, 0.86)
    folded = fold_alpha_map(model, amap)
    assert [type(layer).__name__ for layer in folded.layers[-2:]] == ["Rescaling", "ReLU"]
    assert folded.name == model.name  # model.json's architecture check reads it
    out = folded.predict(x, verbose=0)
    np.testing.assert_allclose(out, amap.apply(raw), atol=1e-6)
    assert out.min() == 0.0 and out.max() == 1.0

    spec.alpha_calibration = {"lo": amap.lo, "hi": amap.hi}
    d = save_model_dir(folded, spec, tmp_path / "cal")
    loaded, lspec = load_model_dir(d)  # stock layers only: no custom objects
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), out)
    assert current_map(loaded) == amap and lspec.alpha_calibration == {"lo": 0.12, "hi": 0.86}
    np.testing.assert_array_equal(strip_alpha_map(loaded).predict(x, verbose=0), raw)
    again = fold_alpha_map(loaded, AlphaMap(0.2, 0.8))  # a new map replaces the old one
    assert [layer.name for layer in again.layers].count(SCALE_LAYER) == 1 and current_map(again) == AlphaMap(0.2, 0.8)
    assert fold_alpha_map(model, AlphaMap()) is model  # the identity adds nothing

    # a model.json from before alpha calibration loads, uncalibrated
    old = json.loads((tiny_fast_scnn_dir / SPEC_FILE).read_text())
    old.pop("alpha_calibration", None)
    assert ModelSpec.from_dict(old).alpha_calibration is None
    assert (tiny_fast_scnn_dir / MODEL_FILE).is_file()


# -- a calibrated model converts and verifies ------------------------------------------------
@pytest.fixture(scope="module")
def calibrated_fast_scnn_dir(confident_fast_scnn_dir, tmp_path_factory):
    """The confident Fast-SCNN with lo 0.1, hi 0.9 folded in."""
    from edgematting.modelio import load_model_dir, save_model_dir

    model, spec = load_model_dir(confident_fast_scnn_dir)
    spec.alpha_calibration = {"lo": 0.1, "hi": 0.9}
    return save_model_dir(fold_alpha_map(model, AlphaMap(0.1, 0.9)), spec, tmp_path_factory.mktemp("calibrated"))


@pytest.mark.parametrize("target,precision", [("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32")])
def test_a_calibrated_model_converts_and_verifies(calibrated_fast_scnn_dir, target, precision, tmp_path):
    from export_helpers import assert_export_matches

    artifact, report = assert_export_matches(calibrated_fast_scnn_dir, target, precision, tmp_path)
    assert report.passed


# -- edgematting calibrate --------------------------------------------------------------------
def _fake_model_dir(out, haze: bool):
    """A 32x32 model that reads the matte off a photo that shows it (`_matte_photos`): its
    output is the true alpha (decisive, soft edge right), or that with a 0.1 haze,
    0.1 + 0.8 * alpha."""
    from edgematting._tf import keras
    from edgematting.modelio import ModelSpec, save_model_dir

    k = keras()
    L = k.layers
    inp = L.Input((32, 32, 3), name="image")
    conv = L.Conv2D(1, 1, name="read_matte")  # (x + 1) / 2 of the grey photo, x = (pixel - 127.5) / 127.5
    x = L.Activation("linear", dtype="float32", name="alpha")(conv(inp))
    if haze:
        x = L.Rescaling(0.8, 0.1, name="haze")(x)
    model = k.Model(inp, x, name="matte_reader")
    conv.set_weights([np.full((1, 1, 3, 1), 1 / 6, np.float32), np.full((1,), 0.5, np.float32)])
    spec = ModelSpec(architecture="matte-reader", config={}, input_size=(32, 32))
    return save_model_dir(model, spec, out)


def _matte_photos(out, n=6):
    """A labelled folder of synthetic mattes whose photos show the matte itself, in grey."""
    from edgematting.data.io import write_png
    from edgematting.data.synthetic import SyntheticPortraits
    from edgematting.imageops import round_to_uint8

    gen = SyntheticPortraits(size=(32, 32), seed=3)
    for i in range(n):
        a8 = round_to_uint8(gen.sample(i)["alpha"] * 255.0)
        write_png(out / "image" / f"{i}.png", np.repeat(a8[..., None], 3, -1))
        write_png(out / "alpha" / f"{i}.png", a8)
    return out


def test_calibrate_cli_folds_the_map_writes_atomically_and_refuses_foreign_folders(tmp_path, capsys):
    from edgematting.cli import main
    from edgematting.modelio import load_model_dir

    d = _fake_model_dir(tmp_path / "hazy", haze=True)
    data = _matte_photos(tmp_path / "held_out")
    assert main(["calibrate", str(d), "--data", str(data)]) == 0, capsys.readouterr().err
    text = capsys.readouterr().out
    assert "lo 0.10, hi 0.90" in text and "next: edgematting evaluate" in text
    model, spec = load_model_dir(d)
    rec = spec.alpha_calibration
    assert (rec["lo"], rec["hi"]) == pytest.approx((0.1, 0.9)) and rec["fitted_on"] == str(data)
    assert rec["after"]["sad_away"] < 0.01 * rec["before"]["sad_away"]
    assert current_map(model) == AlphaMap(0.1, 0.9)
    assert not [p.name for p in d.iterdir() if p.name.startswith(".")]  # no temporary left

    # refusals, before any work: a folder that is not ours, a missing data folder, no data
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["calibrate", str(d), "--data", "synthetic", "--out", str(foreign)]) == 2
    assert "not a model directory edgematting wrote" in capsys.readouterr().err
    assert (foreign / "notes.txt").read_text() == "mine" and len(list(foreign.iterdir())) == 1
    assert main(["calibrate", str(d), "--data", str(tmp_path / "nope")]) == 2
    assert main(["calibrate", str(d)]) == 2
    empty = tmp_path / "empty"
    (empty / "image").mkdir(parents=True)
    assert main(["calibrate", str(d), "--data", str(empty)]) == 3  # DataError: no pairs

    # --remove takes it out again; --out writes a copy and leaves MODEL alone
    before = (d / "model.keras").read_bytes()
    assert main(["calibrate", str(d), "--remove", "--out", str(tmp_path / "raw")]) == 0
    assert (d / "model.keras").read_bytes() == before
    raw, rspec = load_model_dir(tmp_path / "raw")
    assert current_map(raw).identity and rspec.alpha_calibration is None


def test_calibrating_a_decisive_model_leaves_its_model_file_alone(tmp_path):
    from edgematting.alpha_calibration import calibrate_model_dir
    from edgematting.modelio import load_model_dir

    d = _fake_model_dir(tmp_path / "decisive", haze=False)
    before = (d / "model.keras").read_bytes()
    dest, result = calibrate_model_dir(d, _matte_photos(tmp_path / "held_out"))
    assert dest == d and result.amap.identity, result.reason
    assert (d / "model.keras").read_bytes() == before
    _, spec = load_model_dir(d)
    assert spec.alpha_calibration["identity"] is True and spec.alpha_calibration["layers"] == []


# -- train calibrates at the end of a run by default -----------------------------------------
def test_train_calibrates_on_its_validation_split_by_default(tmp_path, monkeypatch, capsys):
    from edgematting.modelio import load_model_dir
    from edgematting.training import TrainConfig, train

    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))
    cfg = TrainConfig(out=str(tmp_path / "run"), input_size=32, width=0.25, batch_size=2, steps_per_epoch=2,
                      epochs=1, n_synthetic_val=4, synthetic_pool=8)
    assert cfg.calibrate_alpha is True
    r = train(cfg, progress=True)
    log = capsys.readouterr().out
    assert "alpha calibration on 4 validation images at 32x32" in log and "| sad_away |" in log
    model, spec = load_model_dir(tmp_path / "run")
    rec = spec.alpha_calibration
    assert rec is not None and rec == r.alpha_calibration and rec["images"] == 4
    assert set(rec["before"]) >= {"sad", "sad_unknown", "sad_away", "boundary_f"}
    assert current_map(model) == AlphaMap(rec["lo"], rec["hi"])

    # `edgematting calibrate RUN` fits on the same validation split: the same map
    from edgematting.cli import main

    assert main(["calibrate", str(tmp_path / "run"), "--out", str(tmp_path / "again")]) == 0
    again = load_model_dir(tmp_path / "again")[1].alpha_calibration
    assert (again["lo"], again["hi"], again["images"], again["before"]) == (rec["lo"], rec["hi"], 4, rec["before"])


def test_no_calibrate_alpha_flag(tmp_path):
    from edgematting.cli import build_parser
    from edgematting.cli.cmd_train import config_from_args

    parse = build_parser().parse_args
    assert config_from_args(parse(["train", "--out", str(tmp_path / "a")])).calibrate_alpha is True
    cfg = config_from_args(parse(["train", "--out", str(tmp_path / "b"), "--no-calibrate-alpha"]))
    assert cfg.calibrate_alpha is False
    assert cfg.to_dict()["calibrate_alpha"] is False
