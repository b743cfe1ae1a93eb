"""The photo pipeline as a user meets it: phone photos (EXIF, grayscale, RGBA), converted
artifacts in predict/evaluate, the fast paths proven equal to the definitions, NaN models,
stale staging folders, sidecar updates and what the command line prints."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgematting.contract import sidecar_path
from PIL import Image

from edgematting import imageops
from edgematting import imageops_fast as fast
from edgematting.cli import main
from edgematting.errors import EdgemattingWarning, InputError, NonFiniteError
from edgematting.modelio import ModelSpec

H, W = 80, 96


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    return Path(write_synthetic_folder(tmp_path_factory.mktemp("synth") / "data", n=4, size=(H, W), seed=9))


def _bits(a):
    a = np.asarray(a)
    return a.view(np.uint32) if a.dtype == np.float32 else a


# -- fast paths == definitions -------------------------------------------------------------------
@pytest.mark.parametrize("photo_hw", [(800, 600), (37, 53), (1, 1), (2, 300), (64, 64)])
def test_fast_paths_equal_the_definition_bit_for_bit(photo_hw):
    rng = np.random.default_rng(sum(photo_hw))
    rgb = rng.integers(0, 256, photo_hw + (3,), dtype=np.uint8)
    rgba = rng.integers(0, 256, photo_hw + (4,), dtype=np.uint8)
    for out_hw in [(256, 256), (64, 48), (1, 1), (513, 7)]:
        for img in (rgb, rgba, rgb[..., 0], rgb.astype(np.float32) * np.float32(0.7), rgb[::-1, ::2]):
            np.testing.assert_array_equal(_bits(fast.resize_bilinear(img, *out_hw)),
                                          _bits(imageops.resize_bilinear(img, *out_hw)))
    for lr_shape in [(64, 48), (1, 1), (256, 256)]:
        lr = (rng.random(lr_shape) * 1.4 - 0.2).astype(np.float32)  # out of range too: clipped
        ref = imageops.alpha_to_photo(lr, photo_hw)
        a = fast.alpha_to_photo(lr, photo_hw)
        np.testing.assert_array_equal(_bits(a), _bits(ref))
        np.testing.assert_array_equal(fast.alpha_to_uint8(a), imageops.round_to_uint8(ref * 255.0))
        np.testing.assert_array_equal(fast.rgba_cutout(rgb, a), imageops.rgba_cutout(rgb, ref))
        confident = np.where(ref > 0.5, 1 - 1e-5 * rng.random(ref.shape), 1e-4 * rng.random(ref.shape))
        confident = confident.astype(np.float32)
        confident[::5] = ref[::5]  # soft rows
        bg_img = rng.integers(0, 256, (10, 20, 3), dtype=np.uint8)
        for alpha in (ref, confident, np.zeros_like(ref), np.ones_like(ref)):
            for bg in [(0, 0, 0), (0, 255, 0), (255, 255, 255), (1.5, 2.25, 3), "blur", bg_img]:
                np.testing.assert_array_equal(fast.composite(rgb, alpha, bg), imageops.composite(rgb, alpha, bg))
        fg = rng.integers(0, 256, rgb.shape, dtype=np.uint8)  # estimated foreground colours (refine)
        for bg in [(0, 255, 0), "blur", bg_img]:
            np.testing.assert_array_equal(fast.composite(rgb, ref, bg, foreground=fg),
                                          imageops.composite(rgb, ref, bg, foreground=fg))
        np.testing.assert_array_equal(_bits(fast.guided_upsample(lr, rgb, 1, 1e-4)),
                                      _bits(imageops.guided_upsample(lr, rgb, 1, 1e-4)))


def test_composite_hard_threshold_is_exact_at_its_edges():
    """The fast composite takes alpha <= 2**-9 (>= 1 - 2**-9) over an integer colour as exactly
    the background (the photo). Check it against the definition for every (photo, colour)
    byte pair at the threshold and at its float neighbours on both sides."""
    t = fast.HARD
    near = [np.nextafter(t, np.float32(0)), t, np.nextafter(t, np.float32(1))]
    one = np.float32(1.0) - t
    near += [np.nextafter(one, np.float32(0)), one, np.nextafter(one, np.float32(1)), np.float32(0), np.float32(1)]
    f = np.arange(256, dtype=np.uint8)
    photo = np.repeat(f[:, None], 3, axis=1).reshape(256, 1, 3).repeat(len(near), axis=1)
    alpha = np.tile(np.asarray(near, np.float32), (256, 1))
    for b in range(256):
        bg = (b, 255 - b, b // 2)
        np.testing.assert_array_equal(fast.composite(photo, alpha, bg), imageops.composite(photo, alpha, bg))


@pytest.mark.parametrize("pipeline", ["exact", "opencv"])
def test_fast_paths_of_the_runtime_match_the_contract(tiny_artifacts, pipeline):
    """The runtime's stages == contract.model_input / output_to_alpha (definition): bit for
    bit on the exact path, within `imageops_cv`'s bounds on the OpenCV one (the default)."""
    from edgematting import imageops_cv, runners
    from edgematting.contract import model_input, output_to_alpha, read_sidecar

    rgb = np.random.default_rng(0).integers(0, 256, (120, 90, 3), dtype=np.uint8)
    for key in ("tflite_fp32", "tflite_int8"):
        meta = read_sidecar(tiny_artifacts[key])
        model = runners.open(tiny_artifacts[key], pipeline=pipeline)
        x = model.inputs([rgb])
        raw = np.random.default_rng(1).random((1, 64, 64, 1)).astype(np.float32)
        if meta["output"]["dtype"] != "float32":
            raw = (raw * 255).astype(np.uint8 if meta["output"]["dtype"] == "uint8" else np.int8)
        model.run_raw = lambda _x, raw=raw: raw  # the stages after the model, on a known output
        a, ref = model.predict_photo(rgb), output_to_alpha(raw, meta, (120, 90))
        if pipeline == "exact":
            np.testing.assert_array_equal(x, model_input(rgb, meta))
            np.testing.assert_array_equal(_bits(a), _bits(ref))
        else:  # float input: (pixel - 127.5) / 127.5, so the pixel bound over 127.5
            assert np.abs(x - model_input(rgb, meta)).max() < imageops_cv.PIXEL_BOUND / 127.5 + 1e-6
            assert np.abs(a - ref).max() <= imageops_cv.ALPHA_BOUND


def test_pipeline_benchmark_runs(capsys):
    from edgematting.bench.pipeline import measure, to_markdown

    r = measure(None, runs=1, sizes={"tiny": (60, 40), "big": (90, 120)}, threads=(1, 2), definition_max_pixels=5000)
    assert r["sizes"]["big"]["composite over a colour"]["definition"] is None  # above the limit: not timed
    assert r["sizes"]["big"]["composite over a colour"]["opencv"]["1"] > 0
    row = r["sizes"]["tiny"]
    assert {"photo -> model input", "output -> alpha at photo size", "composite over a colour"} <= set(row)
    assert all((v["definition"] is None or v["definition"] > 0) and v["fast"] > 0 for v in row.values())
    assert all(v["opencv"]["1"] > 0 and v["opencv"]["2"] > 0 for v in row.values())
    assert r["bounds"]["tiny"]["within"]
    assert "| tiny | composite over a colour |" in to_markdown(r)
    # the guided filter (predict's default) has its stage, its strips row and its own overhead row
    from edgematting import imageops_cv
    from edgematting.bench.pipeline import GUIDED_STAGE, OVERHEAD, OVERHEAD_GUIDED, OVERHEAD_GUIDED_ROW, OVERHEAD_ROW

    assert {GUIDED_STAGE, OVERHEAD_GUIDED_ROW, OVERHEAD_ROW} <= set(row) and GUIDED_STAGE in OVERHEAD_GUIDED
    assert row[GUIDED_STAGE]["definition"] > 0 and r["bounds"]["tiny"]["guided"] <= imageops_cv.GUIDED_BOUND
    for total, parts in ((OVERHEAD_ROW, OVERHEAD), (OVERHEAD_GUIDED_ROW, OVERHEAD_GUIDED)):
        for t in ("1", "2"):
            assert row[total]["opencv"][t] == pytest.approx(sum(row[s]["opencv"][t] for s in parts), abs=2e-3)
    md = to_markdown(r)
    assert f"| tiny | {GUIDED_STAGE} |" in md and "overhead per photo (guided upsampling)" in md
    assert "guided alpha" in md


# -- phone photos: EXIF, grayscale, RGBA ---------------------------------------------------------
def _stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for an upright picture, given the EXIF orientation it writes."""
    for k in range(4):
        for mirror in (False, True):
            st = np.ascontiguousarray(np.rot90(upright[:, ::-1] if mirror else upright, k))
            if np.array_equal(imageops.apply_exif_orientation(st, orientation), upright):
                return st
    raise AssertionError(orientation)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_read_image_turns_every_exif_orientation_upright(tmp_path, orientation):
    from edgematting.data.io import read_image

    up = np.random.default_rng(orientation).integers(0, 256, (8, 6, 3), dtype=np.uint8)
    stored = _stored_for(up, orientation)
    ex = Image.Exif()
    ex[0x0112] = orientation
    p = tmp_path / "photo.png"  # lossless, so pixels compare exactly
    Image.fromarray(stored).save(p, exif=ex)
    np.testing.assert_array_equal(read_image(p), up)
    np.testing.assert_array_equal(read_image(p, exif=False), stored)


def _left_half_person():
    """A stand-in model that is sensitive to orientation: alpha = the photo's brightness."""
    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(16, 16))

    def fn(x):
        return (x.mean(axis=-1, keepdims=True) * 0.5 + 0.5).clip(0, 1)

    return fn, spec


def test_predict_reads_a_sideways_phone_photo_upright(tmp_path):
    from edgematting.predict import predict_images

    up = np.zeros((80, 60, 3), np.uint8)
    up[:40] = 255  # bright top half: the "person" is at the top when upright
    ex = Image.Exif()
    ex[0x0112] = 6
    Image.fromarray(_stored_for(up, 6)).save(tmp_path / "phone.png", exif=ex)
    Image.fromarray(up).save(tmp_path / "upright.png")
    fn, spec = _left_half_person()
    (a,) = predict_images(fn, [tmp_path / "phone.png"], tmp_path / "o1", output="alpha", spec=spec, progress=False)
    (b,) = predict_images(fn, [tmp_path / "upright.png"], tmp_path / "o2", output="alpha", spec=spec, progress=False)
    got, want = np.asarray(Image.open(a)), np.asarray(Image.open(b))
    assert got.shape == (80, 60)  # upright size, not the stored 60x80
    np.testing.assert_array_equal(got, want)
    assert got[:30].mean() > 200 and got[50:].mean() < 150


def test_dataset_pairs_match_the_upright_photo(tmp_path):
    from edgematting.data.folder import load_sample, scan_folder

    up = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    matte = np.zeros((40, 30), np.uint8)
    matte[:20] = 255
    d = tmp_path / "data"
    (d / "image").mkdir(parents=True)
    (d / "alpha").mkdir()
    ex = Image.Exif()
    ex[0x0112] = 8
    Image.fromarray(_stored_for(up, 8)).save(d / "image" / "a.png", exif=ex)
    Image.fromarray(matte).save(d / "alpha" / "a.png")  # drawn on the upright photo: fine
    (s,) = scan_folder(d)
    sample = load_sample(s)
    np.testing.assert_array_equal(sample["image"], up)
    assert sample["alpha"].shape == (40, 30)
    # an RGBA photo (AISegment style) turns its own alpha upright with it
    rgba = np.concatenate([up, matte[..., None]], -1)
    e = tmp_path / "rgba"
    (e / "image").mkdir(parents=True)
    ex6 = Image.Exif()
    ex6[0x0112] = 6
    Image.fromarray(_stored_for(rgba, 6)).save(e / "image" / "b.png", exif=ex6)
    (s,) = scan_folder(e)
    sample = load_sample(s)
    np.testing.assert_array_equal(sample["image"], up)
    np.testing.assert_array_equal(sample["alpha"], matte / np.float32(255.0))


def test_grayscale_photos_are_used_with_a_note_and_rgba_alpha_losing_to_alpha_dir_warns(tmp_path):
    from edgematting.data.folder import scan_folder
    from edgematting.data.io import read_image

    d = tmp_path / "data"
    (d / "image").mkdir(parents=True)
    (d / "alpha").mkdir()
    grey = np.random.default_rng(0).integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(grey).save(d / "image" / "g.png")
    rgba = np.zeros((20, 30, 4), np.uint8)
    rgba[..., 3] = 128
    Image.fromarray(rgba).save(d / "image" / "r.png")
    for n in ("g", "r"):
        Image.fromarray(np.zeros((20, 30), np.uint8)).save(d / "alpha" / f"{n}.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        samples = scan_folder(d)
    assert [s.image.name for s in samples] == ["g.png", "r.png"]
    text = "\n".join(str(w.message) for w in caught if issubclass(w.category, EdgemattingWarning))
    assert "grayscale" in text and "g.png" in text
    assert "own alpha channel" in text and "r.png" in text and "ignored" in text
    with pytest.warns(EdgemattingWarning, match="grayscale"):
        img = read_image(d / "image" / "g.png")
    np.testing.assert_array_equal(img, np.repeat(grey[..., None], 3, axis=2))


# -- predict --skip-bad ------------------------------------------------------------------------
def test_predict_skip_bad_cuts_out_the_others(synth_dir, tmp_path, capsys):
    fn_dir = tmp_path / "photos"
    shutil.copytree(synth_dir / "image", fn_dir)
    first = sorted(fn_dir.iterdir())[0]
    data = first.read_bytes()
    (fn_dir / "b_truncated.png").write_bytes(data[: len(data) // 2])
    (fn_dir / "c_junk.jpg").write_bytes(b"not a photo")
    from edgematting.predict import predict_images

    fn, spec = _left_half_person()
    skipped: list = []
    with pytest.warns(EdgemattingWarning, match="b_truncated"):
        out = predict_images(fn, [fn_dir], tmp_path / "out", output="alpha", spec=spec, progress=False,
                             skip_bad=True, skipped=skipped)
    assert len(out) == 4 and {p.name for p, _ in skipped} == {"b_truncated.png", "c_junk.jpg"}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in out)


# -- artifacts in predict / evaluate -------------------------------------------------------------
# On the confident Fast-SCNN (conftest), not the tiny untrained one: that outputs ~0.5
# everywhere and agrees with Keras under a wrong mean or channel order. Each artifact runs
# through predict and evaluate on photos of another size than the model's input, and its
# alphas (at photo size) are checked against the Keras model's with the artifact's row of
# verify.TOLERANCES; the same check must fail once the artifact is run with a wrong mean or
# channel order in its contract. (Measured: fp32 max abs ~2e-6, int8 mean abs 0.008 and
# checked IoU 0.991; with the mutations, checked IoU 0.42 (mean 0) and 0.71 (BGR).)
ARTIFACT_KEYS = ["tflite_fp32", "tflite_int8", "onnx_fp32", "coreml_fp32"]
#: Deliberate mistakes in the contract the artifact is run with (its sidecar's "input").
CONTRACT_MUTATIONS = {
    "mean_0": lambda inp: inp.update(mean=[0.0, 0.0, 0.0]),  # pixel / std instead of (pixel - 127.5) / std
    "bgr": lambda inp: inp.update(channel_order=inp["channel_order"].replace("RGB", "BGR")),
}


@pytest.fixture(scope="module")
def confident_artifacts(confident_fast_scnn_dir, tmp_path_factory):
    """The confident Fast-SCNN converted to each of ARTIFACT_KEYS. Not verified at conversion:
    the tests below are the comparison (and must be able to fail on their own)."""
    from edgematting.converters import ExportConfig, convert

    from export_helpers import TEST_CALIB_SAMPLES

    out = tmp_path_factory.mktemp("confident_artifacts") / "export"
    configs = [ExportConfig(target=t, precision=p, calib_samples=TEST_CALIB_SAMPLES, verify=False)
               for t, p in (k.split("_") for k in ARTIFACT_KEYS)]
    run = convert(confident_fast_scnn_dir, configs, out, progress=False)
    run.raise_for_failures()
    return {f"{a.target}_{a.precision}": a.path for a in run.artifacts}


@pytest.fixture(scope="module")
def keras_reference(confident_fast_scnn_dir, synth_dir):
    """The Keras model on synth_dir: photos, spec, alphas (N, H, W, 1) at photo size, and
    its evaluate report. Asserts the alphas are confident: else agreement proves little."""
    from edgematting.data.io import list_images, read_image
    from edgematting.evaluation.evaluate import evaluate_model
    from edgematting.predict import load_predictor, predict_alphas

    from export_helpers import assert_confident, output_stats

    photos = [read_image(p) for p in list_images(synth_dir / "image")]
    keras_model, spec = load_predictor(confident_fast_scnn_dir)
    ref = np.stack(predict_alphas(keras_model, spec, photos))[..., None]
    assert_confident(output_stats(ref), "the confident Fast-SCNN on synth_dir")
    report = evaluate_model(keras_model, synth_dir, progress=False, out=False)
    return {"photos": photos, "spec": spec, "alpha": ref, "evaluate": report}


def _agreement(art, ref: dict):
    """The artifact's alphas through predict vs the Keras model's: (its alphas, metrics,
    failure lines, tolerance) with verify.compare / check and the artifact's own tolerance."""
    from edgematting.predict import load_predictor, predict_alphas
    from edgematting.verify import check, compare, tolerance_for

    model, aspec = load_predictor(art)
    assert aspec.input_size == ref["spec"].input_size
    tol = tolerance_for(model.kind, model.metadata["precision"])
    got = np.stack(predict_alphas(model, aspec, ref["photos"]))[..., None]
    metrics = compare(ref["alpha"], got, ref["spec"].threshold, tol.iou_band)
    return got, metrics, check(metrics, tol)[1], tol


@pytest.mark.parametrize("key", ARTIFACT_KEYS)
def test_predict_and_evaluate_on_an_artifact_agree_with_keras(key, confident_artifacts, keras_reference, synth_dir,
                                                               tmp_path):
    from edgematting.evaluation.evaluate import evaluate_model
    from edgematting.verify import tolerance_for

    art = confident_artifacts[key]
    got, metrics, failures, tol = _agreement(art, keras_reference)
    print(f"\n{key}: {metrics}")
    assert tol == tolerance_for(*key.split("_"))  # the artifact is what its key says
    assert not failures, (failures, metrics)
    out = tmp_path / "cut"
    assert main(["predict", str(art), str(synth_dir / "image"), "--out", str(out), "--output", "alpha",
                 "--upsample", "bilinear"]) == 0
    written = sorted(out.iterdir())
    assert len(written) == len(keras_reference["photos"])
    for w, a in zip(written, got):
        np.testing.assert_array_equal(np.asarray(Image.open(w)), fast.alpha_to_uint8(a[..., 0]))
    res = evaluate_model(art, synth_dir, progress=False, out=tmp_path / "e.json")
    assert res["artifact"] == str(art) and res["images"] == len(written) and res["engine"]
    rep = json.loads((tmp_path / "e.json").read_text())
    assert abs(rep["mean"]["mad"] - keras_reference["evaluate"]["mean"]["mad"]) <= (tol.max_abs or tol.mean_abs)


@pytest.mark.parametrize("key", ARTIFACT_KEYS)
def test_a_wrong_mean_or_channel_order_fails_that_agreement(key, confident_artifacts, keras_reference, monkeypatch):
    """The check above can fail: the artifact opened with a contract whose mean is 0
    (instead of 127.5), or whose channel order is swapped, the Keras side untouched."""
    import copy

    from edgematting import runners

    real = runners.from_runner
    for mutation, mutate in CONTRACT_MUTATIONS.items():
        def wrong_contract(runner, kind, path=None, metadata=None, mutate=mutate):
            meta = copy.deepcopy(metadata if metadata is not None else runner.metadata)
            mutate(meta["input"])
            return real(runner, kind, path, meta)

        monkeypatch.setattr(runners, "from_runner", wrong_contract)
        _, metrics, failures, tol = _agreement(confident_artifacts[key], keras_reference)
        print(f"\n{key} {mutation}: {metrics}")
        assert failures, f"{key}: a contract with {mutation} went unnoticed: {metrics}, bounds {tol}"
        assert metrics["iou_checked"] < tol.min_iou, (mutation, metrics)  # the masks disagree, at every precision


def test_evaluate_reports_are_named_by_data_set(tiny_fast_scnn_dir, synth_dir, tmp_path):
    from edgematting.evaluation.evaluate import evaluate_model

    model = Path(shutil.copytree(tiny_fast_scnn_dir, tmp_path / "m"))
    other = Path(shutil.copytree(synth_dir, tmp_path / "other"))
    a = evaluate_model(model, synth_dir, progress=False, limit=1)
    b = evaluate_model(model, other, progress=False, limit=1)
    assert a["json"] != b["json"] and Path(a["json"]).exists() and Path(b["json"]).exists()
    assert json.loads(Path(a["json"]).read_text())["data"] == str(synth_dir)


# -- NaN ------------------------------------------------------------------------------------------
def test_nan_model_names_its_first_bad_layer(tiny_fast_scnn_dir, tmp_path):
    from edgematting.finite import check_keras_model
    from edgematting.modelio import load_model_dir
    from edgematting.predict import predict_images

    model, spec = load_model_dir(tiny_fast_scnn_dir)
    last = [ly for ly in model.layers if getattr(ly, "kernel", None) is not None][-1]
    w = [np.array(v) for v in last.get_weights()]
    w[0].reshape(-1)[3] = np.inf
    last.set_weights(w)
    with pytest.raises(NonFiniteError) as e:
        check_keras_model(model, spec)
    assert e.value.layer and last.name in e.value.layer and e.value.exit_code == 9
    photo = tmp_path / "p.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(photo)

    with pytest.raises(NonFiniteError, match="non-finite"):
        predict_images(lambda x: np.full(x.shape[:3] + (1,), np.nan, np.float32), [photo], tmp_path / "o",
                       spec=spec, progress=False)
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


# -- staging, sidecars -----------------------------------------------------------------------------
def test_stale_staging_folders_of_dead_processes_are_removed(tmp_path):
    from edgematting.converters import STAGING_PREFIX, _remove_stale_staging

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # a pid whose process is gone
    dead = tmp_path / f"{STAGING_PREFIX}{proc.pid}-abc"
    live = tmp_path / f"{STAGING_PREFIX}{os.getpid()}-def"
    for d in (dead, live):
        d.mkdir()
        (d / "half.tflite").write_bytes(b"x")
    _remove_stale_staging(tmp_path)
    assert not dead.exists() and live.exists()


def test_verify_sidecar_update_never_makes_it_inconsistent(tiny_artifacts, tiny_fast_scnn_dir, tmp_path):
    from edgematting.converters import read_embedded_metadata
    from edgematting.verify import record_verification, verify_artifact

    src = tiny_artifacts["tflite_fp32"]
    art = tmp_path / src.name
    shutil.copy(src, art)
    shutil.copy(sidecar_path(src), sidecar_path(art))
    report = verify_artifact(art, tiny_fast_scnn_dir, n=2)
    side = record_verification(art, report)
    meta = json.loads(side.read_text())
    assert {k: v for k, v in meta.items() if k not in ("conversion", "verification")} == read_embedded_metadata(art)
    assert meta["verification"]["n"] == 2 and "conversion" in meta
    # the int8 file copied over it: refused, the sidecar left as it was
    shutil.copy(tiny_artifacts["tflite_int8"], art)
    before = side.read_bytes()
    with pytest.raises(InputError, match="does not describe"):
        record_verification(art, report)
    assert side.read_bytes() == before


# -- what the command line prints -----------------------------------------------------------------
def test_native_log_noise_is_recognised():
    from edgematting.cli._console import is_noise

    assert is_noise("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR")
    assert is_noise("I0000 00:00:1796180887.757298    9101 port.cc:153] oneDNN custom operations are on.")
    assert is_noise("E0000 00:00:1796180898.515756    9101 cuda_platform.cc:52] failed call to cuInit: INTERNAL")
    assert is_noise("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.")
    assert not is_noise("error: something the user must see")
    assert not is_noise("E0000 00:00:1796180898.515756    9101 model.cc:1] a real TensorFlow error")


def test_help_prints_no_native_noise():
    r = subprocess.run([sys.executable, "-m", "edgematting", "convert", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "oneDNN" not in r.stderr and "absl" not in r.stderr


def test_help_says_each_default_once_and_never_none():
    """Every command's --help: no "(default: None)" / "(default: False)" noise, and no default
    said twice (an option whose help says its default gets no second one)."""
    import argparse

    from edgematting.cli import build_parser

    subs = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    problems = []
    for name, parser in subs.choices.items():
        text = " ".join(parser.format_help().split())
        if "(default: None)" in text or "(default: False)" in text:
            problems.append(f"{name}: None/False default shown")
        for action in parser._actions:
            h = " ".join((action.help or "").split())
            if h and "default" in h.lower() and f"{h} (default:" in text:
                problems.append(f"{name} {action.option_strings}: default said twice")
    assert not problems, problems


def test_tables_are_markdown_when_not_a_terminal_and_hints_are_quoted():
    import io

    from rich.console import Console
    from rich.table import Table

    from edgematting.cli._console import next_hint, show_table

    t = Table(title="bench")
    for c in ("artifact", "ms t1"):
        t.add_column(c, justify="right" if c != "artifact" else "left")
    t.add_row("[green]fast-scnn_int8_uint8.tflite[/]", "2.9")
    buf = io.StringIO()
    show_table(t, Console(file=buf, width=80, force_terminal=False))
    text = buf.getvalue()
    assert "| artifact | ms t1 |" in text and "| fast-scnn_int8_uint8.tflite | 2.9 |" in text
    assert "…" not in text and "[green]" not in text
    narrow = io.StringIO()
    show_table(t, Console(file=narrow, width=20, force_terminal=True))
    assert "| fast-scnn_int8_uint8.tflite | 2.9 |" in narrow.getvalue()
    assert next_hint("edgematting", "bench", "/my runs/fs") == "next: edgematting bench '/my runs/fs'"


def test_nan_in_a_tflite_artifact_names_the_first_bad_op(tiny_fast_scnn_dir, tmp_path):
    """An artifact made from a NaN model behind convert's back: predict still says so, and
    names the op (LiteRT, every tensor kept) where the NaN starts."""
    from edgematting.contract import write_sidecar
    from edgematting.converters import ExportConfig, read_embedded_metadata, target_module
    from edgematting.modelio import load_model_dir
    from edgematting.predict import predict_images

    model, spec = load_model_dir(tiny_fast_scnn_dir)
    last = [ly for ly in model.layers if getattr(ly, "kernel", None) is not None][-1]
    w = [np.array(v) for v in last.get_weights()]
    w[0][...] = np.nan
    last.set_weights(w)
    art = tmp_path / "nan_fp32.tflite"
    target_module("tflite").convert(model, spec, ExportConfig(target="tflite", precision="fp32", verify=False), art)
    write_sidecar(art, read_embedded_metadata(art))
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(photo)
    with pytest.raises(NonFiniteError) as e:
        predict_images(art, [photo], tmp_path / "o", progress=False)
    assert e.value.layer and e.value.layer.startswith("op ")
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_verbose_is_accepted_before_or_after_the_command():
    from edgematting.cli import build_parser

    p = build_parser()
    assert p.parse_args(["--verbose", "summary"]).verbose and p.parse_args(["summary", "--verbose"]).verbose
    assert not p.parse_args(["summary"]).verbose
