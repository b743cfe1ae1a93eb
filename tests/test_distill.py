"""Distillation: every kind of teacher labels photos, the cache survives kill -9, teacher
mattes stay aligned with their photos through augmentation, and `train --teacher` trains."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgematting.errors import DependencyError, InputError

SIZE = (32, 32)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """An unlabelled folder of 6 synthetic photos (80x64, not the model size)."""
    from edgematting.data.synthetic import write_synthetic_folder

    root = tmp_path_factory.mktemp("photos")
    write_synthetic_folder(root, n=6, size=(80, 64), seed=5)
    return root / "image"


def _confident(model_dir, out):
    """Save a copy of `model_dir` whose output varies: random BatchNorm affine parameters with
    statistics from one batch, and a centred, sharpened last layer (an untrained model says
    ~0.5 everywhere)."""
    from edgematting._tf import keras
    from edgematting.modelio import load_model_dir, save_model_dir

    k = keras()
    model, spec = load_model_dir(model_dir)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, *spec.input_size, 3)).astype(np.float32)
    for lyr in model.layers:
        if isinstance(lyr, k.layers.BatchNormalization):
            g, b, mm, mv = lyr.get_weights()
            lyr.set_weights([rng.uniform(0.7, 1.3, g.shape).astype("float32"),
                             rng.normal(0, 0.2, b.shape).astype("float32"), mm, mv])
            lyr.momentum = 0.0
    model(x, training=True)
    last = [lyr for lyr in model.layers if isinstance(lyr, k.layers.Conv2D) and lyr.filters == 1][-1]
    y = np.clip(model.predict(x, verbose=0), 1e-6, 1 - 1e-6)
    kern, b = last.get_weights()
    last.set_weights([kern * 3.0, (b - np.median(np.log(y / (1 - y)))) * 3.0])
    assert model.predict(x, verbose=0).std() > 0.1
    return save_model_dir(model, spec, out)


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    """A tiny Fast-SCNN model directory whose output varies across the photo."""
    from edgematting._tf import keras
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model

    keras().utils.set_random_seed(3)
    cfg = architecture_config("fast-scnn", input_size=SIZE, width=0.25)
    d = save_model_dir(build_model("fast-scnn", **cfg), ModelSpec("fast-scnn", cfg, SIZE),
                       tmp_path_factory.mktemp("teacher0"))
    return _confident(d, tmp_path_factory.mktemp("teacher"))


def _foreign_onnx(path: Path, nchw: bool, two_class: bool) -> Path:
    """A foreign ONNX model (no edgematting metadata): [0,1] input, a red-channel map out."""
    import onnx
    from onnx import TensorProto, helper

    h, w = SIZE
    shape = [1, 3, h, w] if nchw else [1, h, w, 3]
    nodes, inits = [], []
    # person score = 4 * (R - 0.5): logits of "red means person"
    axis = 1 if nchw else 3
    inits.append(helper.make_tensor("starts", TensorProto.INT64, [1], [0]))
    inits.append(helper.make_tensor("ends", TensorProto.INT64, [1], [1]))
    inits.append(helper.make_tensor("axes", TensorProto.INT64, [1], [axis]))
    inits.append(helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]))
    inits.append(helper.make_tensor("four", TensorProto.FLOAT, [], [4.0]))
    nodes.append(helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["r"]))
    nodes.append(helper.make_node("Sub", ["r", "half"], ["c"]))
    nodes.append(helper.make_node("Mul", ["c", "four"], ["logit"]))
    if two_class:
        inits.append(helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]))
        nodes.append(helper.make_node("Mul", ["logit", "zero"], ["bg"]))
        # softmax([0, l])[1] = sigmoid(l): class 1 = person
        nodes.append(helper.make_node("Concat", ["bg", "logit"], ["y"], axis=axis))
        out_shape = [1, 2, h, w] if nchw else [1, h, w, 2]
    else:
        nodes.append(helper.make_node("Identity", ["logit"], ["y"]))
        out_shape = [1, 1, h, w] if nchw else [1, h, w, 1]
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.save(model, str(path))
    return path


def _red_logit_alpha(rgb):
    """What the foreign teacher computes, at photo size (for the test's expectation)."""
    from edgematting import imageops

    px = imageops.resize_bilinear(rgb, *SIZE)
    a = 1.0 / (1.0 + np.exp(-4.0 * (px[..., 0] / 255.0 - 0.5)))
    return imageops.alpha_to_photo(a.astype(np.float32), rgb.shape[:2])


# -- each teacher kind -------------------------------------------------------------------------
def test_model_dir_teacher(teacher_dir, photos):
    from edgematting import imageops
    from edgematting.data.io import read_image
    from edgematting.modelio import load_model_dir
    from edgematting.teacher import resolve_teacher

    t = resolve_teacher(str(teacher_dir))
    rgb = read_image(sorted(photos.iterdir())[0])
    a = t.predict_photo(rgb)
    model, spec = load_model_dir(teacher_dir)
    want = imageops.alpha_to_photo(np.asarray(model(imageops.to_model_input(rgb, spec.input_size))), rgb.shape[:2])
    assert a.shape == rgb.shape[:2] and t.kind == "model-dir"
    np.testing.assert_allclose(a, want, atol=1e-6)
    assert a.std() > 0  # soft values, not a constant


def test_artifact_teacher_runs_through_its_contract(teacher_dir, photos, tmp_path, monkeypatch):
    from edgematting.contract import model_input, output_to_alpha
    from edgematting.converters import ExportConfig, convert_model
    from edgematting.data.io import read_image
    from edgematting.runners import load_runner
    from edgematting.teacher import resolve_teacher

    art = convert_model(teacher_dir, ExportConfig(target="tflite", precision="int8", input_type="uint8",
                                                  calib_samples=4, verify=False), tmp_path, progress=False)
    t = resolve_teacher(str(art.path))
    rgb = read_image(sorted(photos.iterdir())[1])
    r = load_runner(art.path)
    want = np.clip(output_to_alpha(r.run_raw(model_input(rgb, r.contract)), r.contract, rgb.shape[:2]), 0, 1)
    assert t.kind == "artifact"
    # the default photo pipeline (OpenCV) is within its stated bound of the definition ...
    from edgematting import imageops_cv

    np.testing.assert_allclose(t.predict_photo(rgb), want, rtol=0, atol=imageops_cv.ALPHA_BOUND)
    # ... and the exact pipeline is the definition, bit for bit
    monkeypatch.setenv(imageops_cv.ENV, "exact")
    np.testing.assert_array_equal(resolve_teacher(str(art.path)).predict_photo(rgb), want)


@pytest.mark.parametrize("nchw,two_class", [(False, False), (True, True)])
def test_foreign_onnx_teacher_reads_layout_and_needs_its_flags(photos, tmp_path, nchw, two_class):
    from edgematting.data.io import read_image
    from edgematting.teacher import TeacherOptions, resolve_teacher

    path = _foreign_onnx(tmp_path / "foreign.onnx", nchw, two_class)
    with pytest.raises(InputError, match="--teacher-input"):
        resolve_teacher(str(path))
    with pytest.raises(InputError, match="--teacher-output"):
        resolve_teacher(str(path), TeacherOptions(input="0,1"))
    out = "2class:1" if two_class else "logits"
    t = resolve_teacher(str(path), TeacherOptions(input="0,1", output=out))
    rgb = read_image(sorted(photos.iterdir())[2])
    np.testing.assert_allclose(t.predict_photo(rgb), _red_logit_alpha(rgb), atol=1e-5)
    # a wrong output kind is an error naming the fix, not a silent wrong matte
    if two_class:
        with pytest.raises(InputError, match="2class:K"):
            resolve_teacher(str(path), TeacherOptions(input="0,1", output="probability")).predict_photo(rgb)


def test_foreign_tflite_teacher(photos, tmp_path):
    """A .tflite without our metadata (as MediaPipe's): [0,1] input, probability output."""
    from edgematting._tf import keras, tf
    from edgematting.data.io import read_image
    from edgematting.teacher import TeacherOptions, resolve_teacher

    k = keras()
    inp = k.Input((*SIZE, 3), batch_size=1)
    out = k.layers.Lambda(lambda x: x[..., :1])(inp)  # probability = red channel in [0, 1]
    path = tmp_path / "foreign.tflite"
    path.write_bytes(tf().lite.TFLiteConverter.from_keras_model(k.Model(inp, out)).convert())
    t = resolve_teacher(str(path), TeacherOptions(input="0,1", output="probability"))
    rgb = read_image(sorted(photos.iterdir())[3])
    from edgematting import imageops

    want = imageops.alpha_to_photo(imageops.resize_bilinear(rgb, *SIZE)[..., 0] / np.float32(255.0), rgb.shape[:2])
    np.testing.assert_allclose(t.predict_photo(rgb), want, atol=1e-6)


def test_mediapipe_teacher(photos, tmp_path, monkeypatch):
    from edgematting.peer import cached_mediapipe
    from edgematting.teacher import resolve_teacher

    if cached_mediapipe("square") is None:
        monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "empty"))
        with pytest.raises(DependencyError, match="peer fetch"):
            resolve_teacher("mediapipe")
        pytest.skip("MediaPipe's model is not cached here (`edgematting peer fetch`); checked the error instead")
    from edgematting.data.io import read_image

    t = resolve_teacher("mediapipe")
    a = t.predict_photo(read_image(sorted(photos.iterdir())[0]))
    assert t.kind == "mediapipe" and 0.0 <= a.min() and a.max() <= 1.0


def test_unknown_teacher_is_one_line_error(tmp_path):
    from edgematting.teacher import resolve_teacher

    with pytest.raises(InputError, match="not found"):
        resolve_teacher(str(tmp_path / "nope"))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(InputError):
        resolve_teacher(str(tmp_path / "x.txt"))


# -- the cache ---------------------------------------------------------------------------------
_CACHE_SCRIPT = """
import sys
from pathlib import Path
from edgematting.teacher import cache_teacher_mattes, list_photos, resolve_teacher
t = resolve_teacher(sys.argv[1])
photos = list_photos(sys.argv[2])
folder, pairs, bad = cache_teacher_mattes(t, photos, sys.argv[3], root=Path(sys.argv[2]), progress=False)
print(len(pairs))
"""


def test_cache_survives_kill_and_resumes(teacher_dir, photos, tmp_path):
    from edgematting.teacher import cache_teacher_mattes, list_photos, resolve_teacher

    cache = tmp_path / "cache"
    env = {**os.environ, "EDGEMATTING_CRASH_AFTER_TEACHER_MATTES": "2"}
    r = subprocess.run([sys.executable, "-c", _CACHE_SCRIPT, str(teacher_dir), str(photos), str(cache)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 9, r.stderr[-2000:]  # died as if killed, after 2 mattes
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    done = sorted(p.name for p in folder.glob("*.png"))
    assert len(done) == 2 and not list(folder.glob(".*"))  # two whole files, no temporaries
    before = {n: (folder / n).stat().st_mtime_ns for n in done}

    t = resolve_teacher(str(teacher_dir))
    calls = []
    real = t._predict
    t._predict = lambda rgb: (calls.append(1), real(rgb))[1]
    folder2, pairs, bad = cache_teacher_mattes(t, list_photos(photos), cache, root=photos, progress=False)
    assert folder2 == folder and len(pairs) == 6 and not bad
    assert len(calls) == 4  # only the missing ones were computed
    assert all((folder / n).stat().st_mtime_ns == m for n, m in before.items())  # kept, not redone
    ident = json.loads((folder / "teacher.json").read_text())
    assert ident["kind"] == "model-dir" and ident["sha256"]
    # the cached matte is the teacher's soft matte at the photo's resolution, 8-bit
    from edgematting.data.io import read_alpha, read_image

    ph, m = pairs[0]
    rgb = read_image(ph)
    got = read_alpha(m)
    assert got.shape == rgb.shape[:2]
    np.testing.assert_allclose(got, np.round(real(rgb) * 255) / 255, atol=1 / 255 + 1e-6)
    assert len(np.unique(got)) > 2  # soft, not thresholded


def test_a_different_teacher_gets_its_own_cache(teacher_dir, photos, tmp_path):
    from edgematting.teacher import TeacherOptions, cache_teacher_mattes, list_photos, resolve_teacher

    a = resolve_teacher(str(teacher_dir))
    b = resolve_teacher(str(_foreign_onnx(tmp_path / "f.onnx", False, False)), TeacherOptions(input="0,1", output="logits"))
    fa, _, _ = cache_teacher_mattes(a, list_photos(photos)[:2], tmp_path / "c", root=photos, progress=False)
    fb, _, _ = cache_teacher_mattes(b, list_photos(photos)[:2], tmp_path / "c", root=photos, progress=False)
    assert fa != fb


# -- alignment through augmentation ------------------------------------------------------------
def test_teacher_mattes_stay_aligned_through_geometric_augmentation(tmp_path):
    """Photos whose green channel *is* the teacher's matte (x 255): after the training
    pipeline's flips, rotations and zooms, x and y must still agree pixel for pixel."""
    from edgematting.data.augment import AugmentConfig
    from edgematting.data.io import write_png
    from edgematting.data.pipeline import DataConfig, make_datasets

    rng = np.random.default_rng(0)
    pairs = []
    for i in range(8):
        img = rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8)
        yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]]
        img[..., 1] = ((xx * 7 + yy * 3 + i * 11) % 256).astype(np.uint8)  # structure, not noise
        write_png(tmp_path / f"p{i}.png", img)
        write_png(tmp_path / f"m{i}.png", img[..., 1].copy())
        pairs.append((str(tmp_path / f"p{i}.png"), str(tmp_path / f"m{i}.png")))
    aug = AugmentConfig(hflip=True, vflip=True, rotate_deg=25.0, scale=(0.8, 1.25), affine_prob=1.0, brightness=0.0,
                        brightness_element=0.0, occlusion_prob=0.0, blur_prob=0.0, gamma=(1.0, 1.0))
    cfg = DataConfig(source=None, teacher_pairs=pairs, teacher_weight=0.5, input_size=SIZE, batch_size=4,
                     augment=aug, val_ratio=0.25, seed=1)
    train, val, info = make_datasets(cfg, mean=(0.0,) * 3, std=(1.0,) * 3)
    assert info["teacher_pairs"] == 8 and info["n_val"] == 2
    originals = [np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(m), np.int64) for _, m in pairs]
    moved = 0
    for epoch in range(2):
        for x, y, w in train:
            g = np.round(x.numpy()[..., 1]).astype(np.int64)
            a = np.round(y.numpy()[..., 0] * 255).astype(np.int64)
            np.testing.assert_array_equal(g, a)  # pixel-exact: image and matte moved together
            np.testing.assert_array_equal(w.numpy(), np.float32(0.5))  # the teacher samples' loss weight
            moved += sum(not any(np.array_equal(ai, o) for o in originals) for ai in a)
    assert moved > 4  # the geometry really changed (else the check above would be vacuous)
    vx, vy = next(iter(val))  # validation: teacher agreement, no weights
    assert vx.shape[0] == 2 and vy.shape[-1] == 7


# -- train --teacher ------------------------------------------------------------------------------
@pytest.mark.slow  # 60 s; training on teacher labels runs by default in test_train_starts_over_a_folder_left_by_a_killed_labelling
def test_train_with_teacher_only_and_mixed(teacher_dir, photos, tmp_path):
    from edgematting.data.synthetic import write_synthetic_folder
    from edgematting.modelio import load_model_dir
    from edgematting.training import TrainConfig, train

    common = dict(model="fast-scnn", input_size=SIZE, width=0.25, epochs=1, batch_size=2, steps_per_epoch=2)
    # progressive: both stages read the one cache of teacher mattes (made at the photos' size)
    r = train(TrainConfig(data=None, teacher=str(teacher_dir), unlabelled=str(photos), out=str(tmp_path / "a"),
                          **{**common, "input_size": 64}, progressive="32:1"), progress=False)
    model, spec = load_model_dir(r.out_dir)
    assert spec.training["teacher"]["spec"] == str(teacher_dir) and spec.training["unlabelled"] == str(photos)
    assert tuple(spec.input_size) == (64, 64) and spec.training["progressive"]["size"] == [32, 32]
    assert (tmp_path / "a" / "teacher").is_dir() and not (tmp_path / "a" / "progressive" / "teacher").exists()
    labelled = write_synthetic_folder(tmp_path / "labelled", n=4, size=(48, 48), seed=9)
    r2 = train(TrainConfig(data=str(labelled), teacher=str(teacher_dir), unlabelled=str(photos), distill_weight=0.3,
                           out=str(tmp_path / "b"), **common), progress=False)
    _, spec2 = load_model_dir(r2.out_dir)
    assert spec2.training["data"] == str(labelled) and spec2.training["teacher"]["distill_weight"] == 0.3
    assert np.isfinite(r2.history["loss"][-1])


def test_train_starts_over_a_folder_left_by_a_killed_labelling(teacher_dir, photos, tmp_path):
    """kill -9 while the teacher labels photos leaves only OUT/teacher/: the next run (with or
    without --resume) starts there and reuses the cached mattes."""
    from edgematting.teacher import cache_teacher_mattes, list_photos, resolve_teacher
    from edgematting.training import TrainConfig, train

    out = tmp_path / "run"
    cache_teacher_mattes(resolve_teacher(str(teacher_dir)), list_photos(photos)[:3], out / "teacher", root=photos,
                         progress=False)
    r = train(TrainConfig(model="fast-scnn", data=None, teacher=str(teacher_dir), unlabelled=str(photos),
                          input_size=SIZE, width=0.25, epochs=1, batch_size=2, steps_per_epoch=1, out=str(out),
                          resume=True), progress=False)
    assert r.epochs_completed == 1 and (out / "model.keras").exists()


def test_cli_errors(teacher_dir, photos, tmp_path):
    from edgematting.cli import main

    assert main(["train", "--out", str(tmp_path / "a"), "--teacher", str(teacher_dir)]) == 2
    assert main(["train", "--out", str(tmp_path / "b"), "--unlabelled", str(photos)]) == 2
    assert main(["train", "--out", str(tmp_path / "c"), "--teacher", str(teacher_dir), "--unlabelled",
                 str(photos), "--data", "synthetic"]) == 2
    assert main(["train", "--out", str(tmp_path / "d"), "--teacher", str(teacher_dir), "--unlabelled",
                 str(photos), "--distill-weight", "0"]) == 2
    onnx_path = _foreign_onnx(tmp_path / "f.onnx", False, False)
    assert main(["train", "--out", str(tmp_path / "e"), "--teacher", str(onnx_path), "--unlabelled", str(photos),
                 "--input-size", "32", "--width", "0.25", "--epochs", "1"]) == 2
    assert not (tmp_path / "e" / "model.keras").exists()


def test_evaluate_reports_agreement_with_the_teacher(teacher_dir, photos):
    from edgematting.evaluation.evaluate import evaluate_model
    from edgematting.teacher import resolve_teacher

    t = resolve_teacher(str(teacher_dir))
    # the teacher against itself agrees perfectly; on photos without mattes only agreement is reported
    r = evaluate_model(teacher_dir, photos, teacher=t, out=False, progress=False)
    assert r["mean"]["teacher_iou"] == pytest.approx(1.0) and r["mean"]["teacher_boundary_f"] == pytest.approx(1.0)
    assert "iou" not in r["mean"] and r["teacher"]["kind"] == "model-dir"
    # with ground truth, both
    r2 = evaluate_model(teacher_dir, photos.parent, teacher=t, out=False, progress=False)
    assert {"iou", "teacher_iou"} <= set(r2["mean"])


def test_soft_edge_target_replaces_only_the_band_of_binary_labels():
    from edgematting.data.folder import soft_edge_target
    from edgematting.evaluation.metrics import unknown_band

    label = np.zeros((60, 40), np.float32)
    label[15:45, 10:30] = 1.0
    teacher = np.full((60, 40), 0.3, np.float32)
    out = soft_edge_target(label, teacher)
    band = unknown_band(label)
    assert band.any() and not band.all()
    np.testing.assert_array_equal(out[band], np.float32(0.3))
    np.testing.assert_array_equal(out[~band], label[~band])
    soft = label.copy()
    soft[20, 20] = 0.5  # an already soft label is kept
    np.testing.assert_array_equal(soft_edge_target(soft, teacher), soft)


# slow: run with `pytest -m slow` (the default suite must stay under 15 minutes on 2 cores)
@pytest.mark.slow
def test_train_with_teacher_edges(teacher_dir, tmp_path):
    from edgematting.data.synthetic import write_synthetic_folder
    from edgematting.modelio import load_model_dir
    from edgematting.training import TrainConfig, train

    labelled = write_synthetic_folder(tmp_path / "labelled", n=4, size=(48, 48), seed=9)
    r = train(TrainConfig(model="mattingnet", data=str(labelled), teacher=str(teacher_dir), teacher_edges=True,
                          input_size=SIZE, width=0.25, epochs=1, batch_size=2, steps_per_epoch=1,
                          out=str(tmp_path / "run")), progress=False)
    _, spec = load_model_dir(r.out_dir)
    assert spec.training["teacher"]["edges"] is True and r.metric_name == "val_edge_score"
    assert len(list((tmp_path / "run" / "teacher").rglob("*.png"))) == 4  # the teacher labelled --data's photos
    with pytest.raises(InputError, match="--teacher-edges"):
        TrainConfig(model="fast-scnn", data="synthetic", teacher=str(teacher_dir), teacher_edges=True)
