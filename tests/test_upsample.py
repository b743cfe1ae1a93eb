"""The edge-aware (guided filter) upsampling option in predict, evaluate, convert and bench."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting import imageops
from edgematting.cli import main
from edgematting.errors import InputError


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from edgematting.data.synthetic import write_synthetic_folder

    return Path(write_synthetic_folder(tmp_path_factory.mktemp("up") / "data", n=2, size=(96, 80), seed=4))


def test_parse_upsample():
    from edgematting.imageops import parse_upsample

    assert parse_upsample("bilinear") is None and parse_upsample(None) is None
    g = parse_upsample("guided", 2, 1e-3)
    assert (g.radius, g.eps) == (2, 1e-3)
    assert parse_upsample("guided") == imageops.GuidedFilter()
    for bad in (("nearest", None, None), ("guided", 0, None), ("guided", None, -1.0), ("bilinear", 2, None)):
        with pytest.raises(InputError):
            parse_upsample(*bad)


@pytest.fixture(scope="module")
def varied_model(tiny_fast_scnn_dir, tmp_path_factory):
    """The tiny model made confident (an untrained one says ~0.5 everywhere, where guided and
    bilinear upsampling agree)."""
    from test_distill import _confident

    return _confident(tiny_fast_scnn_dir, tmp_path_factory.mktemp("varied"))


def test_predict_guided_is_the_reference_filter(varied_model, photos, tmp_path):
    tiny_fast_scnn_dir = varied_model
    from edgematting.data.io import read_image
    from edgematting.modelio import load_model_dir

    img = sorted((photos / "image").iterdir())[0]
    assert main(["predict", str(tiny_fast_scnn_dir), str(img), "--out", str(tmp_path / "g"), "--output", "alpha",
                 "--upsample", "guided", "--guided-radius", "2", "--guided-eps", "0.01"]) == 0
    assert main(["predict", str(tiny_fast_scnn_dir), str(img), "--out", str(tmp_path / "b"), "--output", "alpha"]) == 0
    got = np.asarray(Image.open(tmp_path / "g" / f"{img.stem}_alpha.png"))
    plain = np.asarray(Image.open(tmp_path / "b" / f"{img.stem}_alpha.png"))
    model, spec = load_model_dir(tiny_fast_scnn_dir)
    rgb = read_image(img)
    y = np.asarray(model.predict_on_batch(imageops.to_model_input(rgb, spec.input_size)))[0, :, :, 0]
    want = imageops.round_to_uint8(imageops.guided_upsample(y, rgb, 2, 0.01) * np.float32(255.0))
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # Keras batch vs single-image rounding
    assert not np.array_equal(got, plain)
    assert main(["predict", str(tiny_fast_scnn_dir), str(img), "--out", str(tmp_path / "x"), "--upsample", "cubic"]) == 2


def test_evaluate_records_the_upsampling(tiny_fast_scnn_dir, photos, tmp_path):
    model = shutil.copytree(tiny_fast_scnn_dir, tmp_path / "m")
    assert main(["evaluate", str(model), "--data", str(photos), "--out", str(tmp_path / "e.json")]) == 0
    report = json.loads((tmp_path / "e.json").read_text())
    assert report["upsample"] == {"guided_filter": {"radius": 2, "eps": 1e-4}}  # the default
    assert main(["evaluate", str(model), "--data", str(photos), "--upsample", "bilinear", "--out",
                 str(tmp_path / "b.json")]) == 0
    assert json.loads((tmp_path / "b.json").read_text())["upsample"] == "bilinear"


def test_the_demos_share_pythons_defaults():
    """The guided filter's defaults are written in Java and JS too: they must not drift."""
    import re

    repo = Path(__file__).resolve().parents[1]
    java = (repo / "android_demo/core/src/main/java/dev/edgematting/core/GuidedFilter.java").read_text()
    js = (repo / "web_demo/src/imageops.js").read_text()
    d = imageops.GuidedFilter()
    assert int(re.search(r"DEFAULT_RADIUS = (\d+);", java).group(1)) == d.radius
    assert float(re.search(r"DEFAULT_EPS = ([\d.e-]+);", java).group(1)) == d.eps
    m = re.search(r"GUIDED_DEFAULTS = Object.freeze\(\{ radius: (\d+), eps: ([\d.e-]+) \}\)", js)
    assert (int(m.group(1)), float(m.group(2))) == (d.radius, d.eps)


def test_convert_writes_the_apps_postprocess(tiny_fast_scnn_dir, tmp_path):
    from edgematting.contract import read_sidecar, validate_metadata
    from edgematting.converters import read_embedded_metadata

    model = shutil.copytree(tiny_fast_scnn_dir, tmp_path / "m")
    assert main(["convert", str(model), "--upsample", "guided", "--guided-radius", "2", "--no-verify"]) == 0
    art = model / "export" / "fast-scnn_fp32.tflite"
    side = read_sidecar(art)
    assert side["postprocess"] == {"guided_filter": {"radius": 2, "eps": 1e-4}}
    assert read_embedded_metadata(art)["postprocess"] == side["postprocess"]
    assert validate_metadata(side)["guided_filter"] == imageops.GuidedFilter(2, 1e-4)
    # the bench's app-side pipeline follows the sidecar, as the apps do
    from edgematting import runners
    from edgematting.bench.measure import _end_to_end

    from edgematting import imageops_cv as cvops

    rgb = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    for pipeline in ("exact", "opencv"):  # bit for bit the definition; the default, within its bounds of it
        model = runners.open(art, pipeline=pipeline)
        raw = model.run_raw(model.inputs([rgb]))
        want = imageops.guided_upsample(np.asarray(raw)[0, :, :, 0], rgb, 2, 1e-4)
        got = model.predict_photo(rgb, model.contract["guided_filter"])
        end = np.asarray(_end_to_end(model, rgb)).astype(int) - imageops.composite(rgb, want, (0, 0, 0))
        if pipeline == "exact":
            np.testing.assert_array_equal(got, want)
            assert not end.any()
        else:
            assert np.abs(got - want).max() <= cvops.GUIDED_BOUND and np.abs(end).max() <= cvops.COMPOSITE_BOUND


@pytest.mark.parametrize("hw,photo_hw", [((16, 16), (37, 23)), ((64, 48), (100, 70)), ((8, 8), (8, 8)),
                                         ((20, 30), (5, 7)), ((4, 1), (9, 1))])
def test_alpha_rows_are_the_whole_upsampling_bit_for_bit(hw, photo_hw):
    """The strip path's alpha (`imageops_fast.AlphaRows`): any rows, bilinear or guided,
    equal the same rows of the definitions on the whole frame."""
    from edgematting import imageops_fast as fast

    rng = np.random.default_rng(sum(hw) + sum(photo_hw))
    a = rng.random(hw, dtype=np.float32) * 1.4 - 0.2
    photo = rng.integers(0, 256, (*photo_hw, 3), dtype=np.uint8)
    H = photo_hw[0]
    for guided, want in ((None, imageops.alpha_to_photo(a, photo_hw)),
                         (imageops.GuidedFilter(2, 1e-3), imageops.guided_upsample(a, photo, 2, 1e-3))):
        rows = fast.AlphaRows(a, photo, guided)
        for n in (1, 2, 5):
            got = np.concatenate([rows.rows(y0, y1) for y0, y1 in fast.strips(H, n)])
            assert got.dtype == np.float32 and np.array_equal(got, want)
        idx = rng.permutation(H)[: max(1, H // 3)]
        assert np.array_equal(rows.rows_at(idx), want[idx])
    assert np.array_equal(fast.guided_upsample(a, photo, 2, 1e-3), imageops.guided_upsample(a, photo, 2, 1e-3))
    assert np.array_equal(fast.alpha_to_photo(a, photo_hw), imageops.alpha_to_photo(a, photo_hw))
