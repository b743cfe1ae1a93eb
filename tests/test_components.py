"""keep_person_components (`predict --keep-largest`) on alphas built so the answer is known."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting.components import keep_person_components
from edgematting.evaluation.metrics import stray_regions


def _alpha():
    """80x100: a person (30x30 square, alpha 1, a 0.3 fringe 1 px wide around it), a second
    person of 60% its area (18x30), a 3x3 blob at 0.9 with a 0.2 fringe, all apart."""
    a = np.zeros((80, 100), np.float32)
    a[9:41, 9:41] = 0.3
    a[10:40, 10:40] = 1.0  # 900 px
    a[45:75, 60:78] = 1.0  # 540 px: 0.6 of the person
    a[4:9, 84:89] = 0.2
    a[5:8, 85:88] = 0.9  # 9 px: 0.01 of the person
    return a


def test_a_small_blob_and_its_fringe_go_the_people_stay():
    a = _alpha()
    before = a.copy()
    out = keep_person_components(a, 0.05)
    want = a.copy()
    want[4:9, 84:89] = 0  # the blob and its soft fringe
    np.testing.assert_array_equal(out, want)  # everything else bit for bit
    np.testing.assert_array_equal(a, before)  # the input is not written to
    assert out.dtype == a.dtype
    # the metrics see one false region fewer
    truth = a.copy()
    truth[4:9, 84:89] = 0
    assert stray_regions(a, truth)["false_regions"] == 1
    assert stray_regions(out, truth)["false_regions"] == 0
    # a fraction above the second person's 0.6 drops it too; 0 keeps everything
    assert keep_person_components(a, 0.7)[45:75, 60:78].max() == 0
    assert keep_person_components(a, 0.0) is a


def test_soft_pixels_go_with_their_nearest_region():
    a = np.zeros((1, 30), np.float32)
    a[0, :10] = 1.0  # the person
    a[0, 10:26] = 0.2  # a haze between them: columns 10..17 nearer the person, 18..25 the blob
    a[0, 26:27] = 0.8  # a 1-px blob (0.1 of the person)
    out = keep_person_components(a, 0.5)
    np.testing.assert_array_equal(out[0, :18], a[0, :18])
    assert not out[0, 18:].any()


def test_shapes_and_nothing_to_drop():
    a = _alpha()
    out = keep_person_components(a[..., None], 0.05)  # a model's HxWx1 output
    assert out.shape == (80, 100, 1) and out[4:9, 84:89].max() == 0
    one = np.zeros((10, 10), np.float32)
    one[2:5, 2:5] = 1
    assert keep_person_components(one) is one  # one region: the array itself
    empty = np.full((10, 10), 0.2, np.float32)
    assert keep_person_components(empty) is empty  # nothing >= 0.5
    for bad in (-0.1, 1.5, "x", True):
        with pytest.raises(ValueError, match="fraction of the largest"):
            keep_person_components(a, bad)
    with pytest.raises(ValueError, match="HxW"):
        keep_person_components(np.zeros((2, 3, 4)))


def test_predict_keep_largest_writes_the_alpha_without_the_blob(tmp_path):
    from edgematting.modelio import ModelSpec
    from edgematting.predict import predict_images

    photo = tmp_path / "p.png"
    Image.fromarray(np.full((80, 100, 3), 128, np.uint8)).save(photo)
    low = _alpha()  # the model's output at its own size = the photo's: no resize
    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(80, 100))

    def fn(x):
        return np.repeat(low[None, :, :, None], len(x), axis=0)

    plain = predict_images(fn, [photo], tmp_path / "plain", output="alpha", spec=spec, progress=False)
    kept = predict_images(fn, [photo], tmp_path / "kept", output="alpha", spec=spec, progress=False,
                          keep_largest=0.05)
    a = np.asarray(Image.open(plain[0]), np.float32) / 255
    b = np.asarray(Image.open(kept[0]), np.float32) / 255
    assert a[5:8, 85:88].min() > 0.8 and b[4:9, 84:89].max() == 0
    np.testing.assert_array_equal(a[:, :80], b[:, :80])  # the people untouched


def test_cli_flags(tmp_path, capsys):
    from edgematting.cli import main

    out = tmp_path / "out"
    argv = ["predict", str(tmp_path / "no-model"), str(tmp_path / "p.png"), "--out", str(out)]
    assert main(argv + ["--min-region-fraction", "0.1"]) == 2
    assert "--min-region-fraction applies to --keep-largest" in capsys.readouterr().err
    assert main(argv + ["--keep-largest", "--min-region-fraction", "1.5"]) == 2
    assert "fraction of the largest region in [0, 1]" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "no-model"), "--data", str(tmp_path), "--min-region-fraction", "0.1"]) == 2
    assert "--min-region-fraction applies to --keep-largest" in capsys.readouterr().err
    assert not out.exists() and not Path(tmp_path / "no-model").exists()


def test_evaluate_keep_largest_removes_the_false_region(tmp_path):
    """The lever and its measure together: the blob is one false region, gone with keep_largest."""
    from edgematting.evaluation.evaluate import evaluate_model, report_table
    from edgematting.modelio import ModelSpec

    data = tmp_path / "data"
    (data / "image").mkdir(parents=True)
    (data / "alpha").mkdir()
    truth = _alpha()
    truth[4:9, 84:89] = 0
    Image.fromarray(np.full((80, 100, 3), 128, np.uint8)).save(data / "image" / "a.png")
    Image.fromarray(np.round(truth * 255).astype(np.uint8)).save(data / "alpha" / "a.png")
    low = _alpha()
    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(80, 100))

    def fn(x):
        return np.repeat(low[None, :, :, None], len(x), axis=0)

    plain = evaluate_model(fn, data, spec=spec, out=False, progress=False)
    kept = evaluate_model(fn, data, spec=spec, out=False, progress=False, keep_largest=0.05)
    assert plain["mean"]["false_regions"] == 1 and plain["per_image"][0]["false_region_pixels"] == 9
    assert plain["mean"]["sad_away_wrong"] > 0
    assert kept["mean"]["false_regions"] == 0 and kept["mean"]["sad_away_wrong"] == 0
    assert (plain["keep_largest"], kept["keep_largest"]) == (None, 0.05)
    assert "--keep-largest" in report_table(kept).title and "--keep-largest" not in report_table(plain).title
