"""evaluate / predict on a tiny model and a tiny synthetic folder (80x96 photos, 64x64 model).

Tests that compare numbers with the model's own output use the confident model (an
untrained one outputs ~0.5 everywhere, so a resize-back or metric mistake would not show)."""
import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting import imageops
from edgematting.cli import main
from edgematting.errors import DataError, InputError
from edgematting.evaluation.metrics import METRIC_KEYS
from edgematting.modelio import ModelSpec
from edgematting.runners.base import Runner

H, W = 80, 96  # photo size != model size, so alpha is resized back


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    return Path(write_synthetic_folder(tmp_path_factory.mktemp("synth") / "data", n=5, size=(H, W), seed=3))


@pytest.fixture()
def model_copy(confident_fast_scnn_dir, tmp_path):
    """A private copy, so writing MODEL/eval.json does not touch the shared fixture."""
    return Path(shutil.copytree(confident_fast_scnn_dir, tmp_path / "model"))


def _images(synth_dir):
    from edgematting.data.io import list_images

    return list_images(synth_dir / "image")


def _gts(synth_dir):
    from edgematting.data.io import list_images, read_alpha

    return [read_alpha(p) for p in list_images(synth_dir / "alpha")]


@functools.lru_cache(maxsize=4)
def _load(model_dir: str):
    from edgematting.modelio import load_model_dir

    return load_model_dir(model_dir)


def _keras_alpha(model_dir, photo):
    """Model output for one photo, resized back, computed directly with Keras."""
    model, spec = _load(str(model_dir))
    x = imageops.to_model_input(photo, spec.input_size, spec.mean, spec.std)
    y = np.asarray(model.predict_on_batch(x))
    assert y.shape == (1, 64, 64, 1)
    return imageops.alpha_to_photo(y, photo.shape[:2])


def _files(d: Path):
    return sorted(p.name for p in d.rglob("*") if p.is_file()) if d.exists() else []


# -- evaluate ----------------------------------------------------------------------------
def test_evaluate_model_report(model_copy, synth_dir):
    from edgematting.evaluation.evaluate import evaluate_model

    from edgematting.evaluation.evaluate import default_report_path

    res = evaluate_model(model_copy, synth_dir, progress=False)
    path = default_report_path(model_copy, synth_dir)  # default location, named by the data set
    assert path.parent == model_copy and path.name.startswith("eval-data-") and path.suffix == ".json"
    assert res["json"] == str(path)
    rep = json.loads(path.read_text())
    assert rep["images"] == 5 and len(rep["per_image"]) == 5
    assert set(METRIC_KEYS) <= set(rep["mean"])
    for row in rep["per_image"]:
        assert (row["height"], row["width"]) == (H, W)
        assert row["unknown_pixels"] > 0
    for k in METRIC_KEYS:
        vals = [rep["mean"][k]] + [row[k] for row in rep["per_image"]]
        assert all(v is not None and np.isfinite(v) for v in vals), k
        assert rep["mean"][k] == pytest.approx(np.mean([row[k] for row in rep["per_image"]]))
    # The first photo's metrics recomputed with plain numpy from the Keras output (whole
    # image, and over the report's unknown band), instead of range checks that cannot fail.
    from edgematting.data.io import read_image
    from edgematting.evaluation.metrics import unknown_band

    first = rep["per_image"][0]
    photo = read_image(first["image"])
    gt = _gts(synth_dir)[0].astype(np.float64)
    alpha = _keras_alpha(model_copy, photo).astype(np.float64).reshape(gt.shape)
    err = np.abs(alpha - gt)
    p, g = alpha >= 0.5, gt >= 0.5
    assert first["iou"] == pytest.approx(np.sum(p & g) / np.sum(p | g), abs=1e-3)  # a pixel may sit at 0.5
    assert 0.3 < first["iou"] < 1.0  # the confident model finds the figure, not perfectly
    assert first["sad"] == pytest.approx(err.sum() / 1000, rel=1e-4)
    assert first["mse"] == pytest.approx(np.mean(err**2), rel=1e-4)
    assert first["mad"] == pytest.approx(np.mean(err), rel=1e-4)
    band = unknown_band(gt)
    assert first["unknown_pixels"] == int(band.sum())
    assert first["sad_unknown"] == pytest.approx(err[band].sum() / 1000, rel=1e-4)
    assert first["mse_unknown"] == pytest.approx(np.mean(err[band] ** 2), rel=1e-4)
    # away from the edge (issue 26): the complement of the band, split at the 0.5 threshold
    assert first["sad_away"] == pytest.approx(err[~band].sum() / 1000, rel=1e-4)
    assert first["mse_away"] == pytest.approx(np.mean(err[~band] ** 2), rel=1e-4)
    wrong = ~band & (p != g)
    assert first["sad_away_wrong"] == pytest.approx(err[wrong].sum() / 1000, rel=1e-4, abs=1e-6)
    assert first["sad_away_soft"] == pytest.approx(err[~band & ~wrong].sum() / 1000, rel=1e-4)
    from scipy import ndimage

    n_true = ndimage.label(g, structure=np.ones((3, 3), bool))[1]
    assert first["components_true"] == n_true and first["components_pred"] >= 1
    for row in rep["per_image"]:
        assert row["false_region_area"] == pytest.approx(row["false_region_pixels"] / (H * W))
        assert row["missed_region_area"] == pytest.approx(row["missed_region_pixels"] / (H * W))
    assert rep["unranked"] == ["components_pred", "components_true"]


def test_evaluate_predictor_constant_predictions(synth_dir):
    from edgematting.evaluation.evaluate import evaluate_predictor

    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(32, 48))
    gts = _gts(synth_dir)
    calls = []

    def const(value):
        def fn(x):
            calls.append(x.shape)
            return np.full(x.shape[:3] + (1,), value, np.float32)

        return fn

    ones = evaluate_predictor(const(1.0), spec, synth_dir, progress=False, batch_size=2)
    assert calls == [(2, 32, 48, 3), (2, 32, 48, 3), (1, 32, 48, 3)]
    # all-foreground prediction: IoU = |gt >= 0.5| / (H * W); SAD = sum(1 - gt) / 1000
    exp_iou = [np.count_nonzero(g >= 0.5) / g.size for g in gts]
    assert [r["iou"] for r in ones["per_image"]] == pytest.approx(exp_iou)
    assert ones["mean"]["iou"] == pytest.approx(np.mean(exp_iou))
    assert ones["mean"]["sad"] == pytest.approx(np.mean([(1 - g.astype(np.float64)).sum() / 1000 for g in gts]))

    zeros = evaluate_predictor(const(0.0), spec, synth_dir, progress=False)
    assert all(np.count_nonzero(g >= 0.5) > 0 for g in gts)
    assert zeros["mean"]["iou"] == 0.0
    assert zeros["mean"]["mse"] == pytest.approx(np.mean([np.mean(g.astype(np.float64) ** 2) for g in gts]))

    class Half(Runner):  # the Runner interface works as well
        def run(self, x):
            return np.full(x.shape[:3] + (1,), 0.25, np.float32)

    half = evaluate_predictor(Half(), spec, synth_dir, progress=False, limit=2)
    assert half["images"] == 2
    assert half["mean"]["iou"] == 0.0  # 0.25 < 0.5: empty mask
    assert half["mean"]["mad"] == pytest.approx(np.mean([np.abs(0.25 - g.astype(np.float64)).mean() for g in gts[:2]]))


def test_evaluate_bad_inputs(model_copy, synth_dir, tmp_path):
    from edgematting.evaluation.evaluate import evaluate_model

    with pytest.raises(InputError):
        evaluate_model(tmp_path / "nope", synth_dir, progress=False)
    with pytest.raises(DataError):
        evaluate_model(model_copy, tmp_path / "no_data", progress=False)
    empty = tmp_path / "empty"
    (empty / "image").mkdir(parents=True)
    (empty / "alpha").mkdir()
    with pytest.raises(DataError):
        evaluate_model(model_copy, empty, progress=False)
    with pytest.raises(InputError):
        evaluate_model(model_copy, synth_dir, limit=0, progress=False)
    assert not list(model_copy.glob("eval*.json"))


def test_cli_evaluate(model_copy, synth_dir, tmp_path, capsys):
    out = tmp_path / "rep" / "e.json"
    assert main(["evaluate", str(model_copy), "--data", str(synth_dir), "--limit", "2", "--out", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert rep["images"] == 2
    printed = capsys.readouterr().out
    assert "iou" in printed and f"edgematting convert {model_copy}" in printed
    for words in ("near edge (unknown band)", "away from edge", "sad_away_wrong (error > 0.5", "components_pred / components_true",
                  "false_region_area", "missed_region_area"):
        assert words in printed, words
    assert {"sad_away", "sad_away_wrong", "sad_away_soft", "mse_away", "false_regions"} <= set(rep["mean"])
    assert main(["evaluate", str(tmp_path / "missing"), "--data", str(synth_dir)]) == 2
    empty = tmp_path / "empty"
    (empty / "image").mkdir(parents=True)
    (empty / "alpha").mkdir()
    assert main(["evaluate", str(model_copy), "--data", str(empty)]) == 3


# -- predict -----------------------------------------------------------------------------
def test_predict_rgba_and_alpha_match_model(confident_fast_scnn_dir, synth_dir, tmp_path):
    from edgematting.data.io import read_image
    from edgematting.predict import predict_images

    imgs = _images(synth_dir)[:3]
    out = predict_images(confident_fast_scnn_dir, imgs, tmp_path / "rgba", output="rgba", progress=False, batch_size=2)
    assert [p.name for p in out] == [f"{p.stem}_cutout.png" for p in imgs]
    mats = predict_images(confident_fast_scnn_dir, imgs, tmp_path / "alpha", output="alpha", progress=False)
    assert [p.name for p in mats] == [f"{p.stem}_alpha.png" for p in imgs]
    for src, rgba_path, alpha_path in zip(imgs, out, mats):
        photo = read_image(src)
        expected = imageops.round_to_uint8(255.0 * _keras_alpha(confident_fast_scnn_dir, photo))
        with Image.open(rgba_path) as im:
            assert im.mode == "RGBA" and im.size == (W, H)
            rgba = np.asarray(im)
        np.testing.assert_array_equal(rgba[..., :3], photo)
        # batch vs single-image inference may differ in the last float bit: allow 1 level
        assert np.abs(rgba[..., 3].astype(int) - expected).max() <= 1
        assert np.mean(rgba[..., 3] == expected) > 0.99
        assert expected.std() > 50  # a confident matte: resize-back or order mistakes would show
        with Image.open(alpha_path) as im:
            assert im.mode == "L" and im.size == (W, H)
            np.testing.assert_array_equal(np.asarray(im), rgba[..., 3])
    assert _files(tmp_path / "rgba") == sorted(p.name for p in out)  # no temp files left


def _split_runner():
    """Alpha 0 on the left half, 1 on the right half (model size 16x16)."""
    spec = ModelSpec(architecture="mattingnet", config={}, input_size=(16, 16))

    def fn(x):
        a = np.zeros(x.shape[:3] + (1,), np.float32)
        a[:, :, 8:] = 1.0
        return a

    return fn, spec


@pytest.mark.parametrize("pipeline", ["exact", "opencv"])
def test_predict_composite_colour_blur_and_image(synth_dir, tmp_path, monkeypatch, pipeline):
    """The definition's composite bytes (exact path), or within one level of them (the
    OpenCV path, the default: its alpha differs by ~1e-5, `imageops_cv`)."""
    from edgematting import imageops_cv
    from edgematting.data.io import read_image, write_png
    from edgematting.predict import predict_images

    monkeypatch.setenv(imageops_cv.ENV, pipeline)

    def assert_composite(got, want):
        if pipeline == "exact":
            np.testing.assert_array_equal(got, want)
        else:
            assert np.abs(got.astype(int) - want).max() <= imageops_cv.COMPOSITE_BOUND
            assert np.mean(got == want) > 0.99

    fn, spec = _split_runner()
    src = _images(synth_dir)[0]
    photo = read_image(src)
    alpha = imageops.alpha_to_photo(fn(np.zeros((1, 16, 16, 3)))[0], (H, W))
    zero, one = alpha == 0.0, alpha == 1.0
    assert zero.any() and one.any()

    (green,) = predict_images(fn, [src], tmp_path / "g", output="composite", background="#00ff00", spec=spec, progress=False)
    assert green.name == f"{src.stem}_composite.png"
    with Image.open(green) as im:
        assert im.mode == "RGB" and im.size == (W, H)
        comp = np.asarray(im)
    assert (comp[zero] == [0, 255, 0]).all()
    np.testing.assert_array_equal(comp[one], photo[one])
    assert_composite(comp, imageops.composite(photo, alpha, (0, 255, 0)))

    (same,) = predict_images(fn, [src], tmp_path / "g2", output="composite", background="0, 255,0", spec=spec, progress=False)
    np.testing.assert_array_equal(np.asarray(Image.open(same)), comp)

    (black,) = predict_images(fn, [src], tmp_path / "k", output="composite", spec=spec, progress=False)
    assert (np.asarray(Image.open(black))[zero] == 0).all()

    (blur,) = predict_images(fn, [src], tmp_path / "b", output="composite", background="blur", spec=spec, progress=False)
    b = np.asarray(Image.open(blur))
    assert_composite(b, imageops.composite(photo, alpha, "blur"))
    assert not np.array_equal(b[zero], photo[zero])  # the background really is blurred

    bg = np.zeros((40, 30, 3), np.uint8)
    bg[..., 2] = 200
    write_png(tmp_path / "bg.png", bg)
    (room,) = predict_images(fn, [src], tmp_path / "r", output="composite", background=tmp_path / "bg.png", spec=spec, progress=False)
    r = np.asarray(Image.open(room))
    assert (r[zero] == [0, 0, 200]).all()
    assert_composite(r, imageops.composite(photo, alpha, bg))


def test_predict_directory_names_and_grid(synth_dir, tmp_path):
    from edgematting.predict import predict_images

    fn, spec = _split_runner()
    other = tmp_path / "other"
    other.mkdir()
    first = _images(synth_dir)[0]
    shutil.copy(first, other / first.name)  # same stem as an image in the directory
    grid = tmp_path / "grid.png"
    out = predict_images(fn, [synth_dir / "image", other / first.name], tmp_path / "o", output="alpha",
                         spec=spec, grid=grid, progress=False)
    assert len(out) == 6
    assert out[0].name == f"{first.stem}_alpha.png" and out[-1].name == f"{first.stem}_2_alpha.png"
    assert len(set(out)) == 6 and all(p.exists() for p in out)
    with Image.open(grid) as im:
        assert im.format == "PNG" and im.size[0] > 100 and im.size[1] > 100


def _photos(synth_dir, d: Path) -> Path:
    shutil.copytree(synth_dir / "image", d)
    return d


def test_predict_each_file_once_into_a_file_of_its_own(synth_dir, tmp_path):
    """The paths returned are the files written: a file given twice is cut out once (with
    a note), and inputs whose names would meet (same stem; a stem that is another one's
    ``_2``; stems differing in case only, one file on macOS) never share an output."""
    from edgematting.errors import EdgemattingWarning
    from edgematting.predict import predict_images

    fn, spec = _split_runner()
    photos = _photos(synth_dir, tmp_path / "photos")
    first = sorted(photos.iterdir())[0]
    shutil.copy(first, photos / f"{first.stem}_2{first.suffix}")  # the name a repeat of `first` would get
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(first, other / first.name)  # same stem, another file
    shutil.copy(first, other / "Pic.png")
    shutil.copy(first, other / "pic.png")  # differs from the one above in case only
    inputs = [photos, photos / first.name, str(photos / ".." / "photos" / first.name), other]
    with pytest.warns(EdgemattingWarning, match=r"2 input\(s\) given more than once"):
        out = predict_images(fn, inputs, tmp_path / "o", output="alpha", spec=spec, progress=False)
    written = _files(tmp_path / "o")
    assert len(out) == len(set(out)) == len(written) == 5 + 1 + 3
    assert sorted(p.name for p in out) == written
    assert len({n.casefold() for n in written}) == len(written)
    names = {p.name for p in out}
    assert {f"{first.stem}_alpha.png", f"{first.stem}_2_alpha.png", f"{first.stem}_3_alpha.png"} <= names


def test_predict_never_takes_its_own_outputs_as_inputs(synth_dir, tmp_path):
    """--out inside (or equal to) the photo folder: a second run cuts out the photos again,
    not the first run's cut-outs, and says so in one line."""
    from edgematting.errors import EdgemattingWarning
    from edgematting.predict import predict_images

    fn, spec = _split_runner()
    photos = _photos(synth_dir, tmp_path / "photos")
    n = len(list(photos.iterdir()))
    first = predict_images(fn, [photos], photos, output="alpha", spec=spec, progress=False)
    assert len(first) == n
    with pytest.warns(EdgemattingWarning, match=rf"skipped {n} earlier output\(s\), not taken as inputs"):
        again = predict_images(fn, [photos], photos, output="alpha", spec=spec, progress=False)
    assert again == first and len(_files(photos)) == 2 * n
    photos = _photos(synth_dir, tmp_path / "photos2")
    cut = photos / "cut"
    grid = photos / "grid.png"
    before = predict_images(fn, [photos], cut, spec=spec, progress=False, grid=grid)
    with pytest.warns(EdgemattingWarning, match=rf"skipped {n + 1} earlier output\(s\).*--grid"):
        after = predict_images(fn, [photos, cut], cut, spec=spec, progress=False, grid=grid)
    assert after == before and len(_files(cut)) == len(before)  # neither cut/ nor the grid went in
    with pytest.raises(InputError, match="Nothing to cut out.*earlier predict run's output"):
        predict_images(fn, [cut], cut, spec=spec, progress=False)


def test_predict_broken_links_are_unreadable_photos(synth_dir, tmp_path):
    """A dangling symlink in a photo folder: an InputError naming it (nothing written), or
    with skip_bad one ``skipped N broken link(s)`` line; never dropped without a word."""
    from edgematting.errors import EdgemattingWarning
    from edgematting.predict import predict_images

    fn, spec = _split_runner()
    photos = _photos(synth_dir, tmp_path / "photos")
    n = len(list(photos.iterdir()))
    (photos / "dead.png").symlink_to(tmp_path / "gone.png")
    (photos / "loop.jpg").symlink_to(photos / "loop.jpg")
    with pytest.raises(InputError, match=r"dead\.png is a broken link: its target .*gone\.png.*--skip-bad"):
        predict_images(fn, [photos], tmp_path / "o", spec=spec, progress=False)
    with pytest.raises(InputError, match=r"dead\.png is a broken link"):  # given as a file, too
        predict_images(fn, [photos / "dead.png"], tmp_path / "o", spec=spec, progress=False)
    assert _files(tmp_path / "o") == []
    skipped = []
    with pytest.warns(EdgemattingWarning, match=r"skipped 2 broken link\(s\): dead\.png, loop\.jpg$"):
        out = predict_images(fn, [photos], tmp_path / "o", spec=spec, progress=False, skip_bad=True,
                             skipped=skipped)
    assert len(out) == n and sorted(p.name for p, _ in skipped) == ["dead.png", "loop.jpg"]


def test_predict_errors_write_nothing(tiny_fast_scnn_dir, synth_dir, tmp_path):
    from edgematting.predict import predict_images

    src = _images(synth_dir)[0]
    out = tmp_path / "out"
    for bad in ["#00ff0", "green-ish", "300,0,0", str(tmp_path / "missing.png")]:
        with pytest.raises(InputError, match="(?i)background"):
            predict_images(tiny_fast_scnn_dir, [src], out, output="composite", background=bad, progress=False)
    with pytest.raises(InputError, match="only applies"):
        predict_images(tiny_fast_scnn_dir, [src], out, output="rgba", background="#00ff00", progress=False)
    with pytest.raises(InputError, match="missing.jpg"):
        predict_images(tiny_fast_scnn_dir, [src, tmp_path / "missing.jpg"], out, progress=False)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="junk.png"):
        predict_images(tiny_fast_scnn_dir, [src, junk], out, progress=False)
    with pytest.raises(InputError, match="rgba"):
        predict_images(tiny_fast_scnn_dir, [src], out, output="rgb", progress=False)
    assert _files(out) == []

    # a PNG with a valid header that fails while decoding: found by the complete check
    # before anything is written (no half-finished run, no temp file)
    data = src.read_bytes()
    trunc = tmp_path / "trunc.png"
    trunc.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="trunc.png.*--skip-bad"):
        predict_images(tiny_fast_scnn_dir, [src, trunc], out, progress=False, batch_size=1)
    assert _files(out) == []


def test_cli_predict(tiny_fast_scnn_dir, synth_dir, tmp_path, capsys):
    src = _images(synth_dir)[0]
    out = tmp_path / "cli"
    assert main(["predict", str(tmp_path / "no_model"), str(src), "--out", str(out)]) == 2
    assert main(["predict", str(tiny_fast_scnn_dir), str(src), "--out", str(out), "--output", "composite",
                 "--background", "#gg0000"]) == 2
    assert "background" in capsys.readouterr().err.lower()
    assert _files(out) == []
    assert main(["predict", str(tiny_fast_scnn_dir), str(src), "--out", str(out), "--output", "composite",
                 "--background", "#00ff00"]) == 0
    assert str(out) in capsys.readouterr().out
    assert _files(out) == [f"{src.stem}_composite.png"]


def test_cli_predict_count_is_files_written(tiny_fast_scnn_dir, synth_dir, tmp_path, capsys):
    """`predict MODEL a.png a.png`: one file written, "1 file" said, the repeat noted."""
    import re

    src = _images(synth_dir)[0]
    out = tmp_path / "cli"
    capsys.readouterr()
    assert main(["predict", str(tiny_fast_scnn_dir), str(src), str(src), "--out", str(out),
                 "--output", "alpha"]) == 0
    cap = capsys.readouterr()
    assert _files(out) == [f"{src.stem}_alpha.png"]
    assert [int(n) for n in re.findall(r"(\d+) file\(s\)", cap.out)] == [1], cap.out
    assert re.search(r"warning: 1 input\(s\) given more than once, each cut out once: .*" + re.escape(src.name),
                     cap.err), cap.err
