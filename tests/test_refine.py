"""Trimap, alpha-matting refinement and foreground colour estimation (edgematting.refine).

Photos are tiny (64x64 synthetic portraits); the tests that need pymatting skip without the
`refine` extra, and the timing benchmark (600x800 and 12 MP) is marked slow.
"""
import sys
import time

import numpy as np
import pytest
from PIL import Image

from edgematting import imageops
from edgematting import refine as R
from edgematting.cli import main
from edgematting.errors import DependencyError, InputError

METHODS = [m.value for m in R.RefineMethod]


@pytest.fixture(scope="module")
def sample():
    from edgematting.data.synthetic import SyntheticPortraits

    return SyntheticPortraits(size=(64, 64), seed=10001).sample(0)


def _coarse(alpha, side=16):
    """What a low-resolution model gives: the matte at side x side, enlarged bilinearly."""
    return imageops.alpha_to_photo(imageops.resize_bilinear(alpha, side, side), alpha.shape)


# -- trimap geometry ---------------------------------------------------------------------
def test_trimap_geometry_on_a_known_mask():
    a = np.zeros((100, 100), np.float32)
    a[30:70, 30:70] = 1.0  # a hard square: contour between rows/cols 29|30 and 69|70
    band = 0.05
    w = R.band_pixels(a.shape, band)
    assert w == round(0.05 * np.hypot(100, 100)) == 7
    t = R.make_trimap(a, band)
    assert t.dtype == np.uint8 and set(np.unique(t)) == {0, 128, 255}
    col = t[:, 50]
    # outside: rows 23..29 are within 7 px of the square, row 22 is not
    assert (col[:23] == 0).all() and (col[23:30] == 128).all()
    # inside: rows 30..36 are within 7 px of the background, 37..62 are not
    assert (col[30:37] == 128).all() and (col[37:63] == 255).all() and (col[63:77] == 128).all()
    assert (col[77:] == 0).all()
    # the band's corners are round (Euclidean distance): (23, 23) is 9.9 px from the square's
    # corner (30, 30), though 7 px away along either axis; (26, 26) is 5.7 px away
    assert t[23, 50] == 128 and t[23, 23] == 0 and t[24, 24] == 0 and t[26, 26] == 128


def test_trimap_band_scales_with_the_photo_and_soft_pixels_are_unknown():
    a = np.zeros((100, 100), np.float32)
    a[30:70, 30:70] = 1.0
    a[5, 90] = 0.3  # a lone semi-transparent strand, far from the contour
    t1 = R.make_trimap(a, 0.05)
    assert t1[5, 90] == 128 and t1[5, 80] == 0
    big = np.kron(a, np.ones((3, 3), np.float32))  # the same picture at 300x300
    t3 = R.make_trimap(big, 0.05)
    assert R.band_pixels(big.shape, 0.05) == 21  # 3x (rounded from 21.2)
    frac1 = (t1 == 128).mean()
    frac3 = (t3 == 128).mean()
    assert abs(frac1 - frac3) < 0.01  # same share of the picture at either size


def test_trimap_border_and_uniform_masks():
    a = np.zeros((40, 40), np.float32)
    a[20:, :] = 1.0  # a person cut off by the bottom and side edges
    t = R.make_trimap(a, 0.05)
    assert (t[-1, 10:30] == 255).all()  # no band along the frame
    assert (t[:, 0] != 255).sum() > 0 and t[39, 0] == 255
    assert (R.make_trimap(np.ones((8, 8)), 0.1) == 255).all()
    assert (R.make_trimap(np.zeros((8, 8)), 0.1) == 0).all()


def test_photo_trimap_at_bounded_resolution_is_the_small_trimap_enlarged():
    a = np.zeros((200, 100), np.float32)
    a[60:140, 30:70] = 1.0
    cfg = R.RefineConfig(refine="trimap", band=0.05, max_side=50)
    t = R.photo_trimap(a, cfg)
    assert t.shape == (200, 100) and set(np.unique(t)) == {0, 128, 255}
    assert R.solve_size(a.shape, 50) == (50, 25)
    # the band is still ~5% of the diagonal at full size
    assert 8 <= (t[:, 50] == 128).sum() / 2 / 2 <= 14  # two crossings, two sides: ~11 px each


# -- config and flags --------------------------------------------------------------------
def test_config_validates():
    c = R.RefineConfig(refine="trimap", method="knn")
    assert c.enabled and c.method is R.RefineMethod.KNN
    assert not R.RefineConfig().enabled and R.RefineConfig().foreground
    for bad in ({"method": "cf"}, {"refine": "yes"}, {"band": 0}, {"band": 0.5}, {"band": True},
                {"max_side": 8}, {"max_side": 100.0}):
        with pytest.raises(ValueError):
            R.RefineConfig(**bad)


@pytest.mark.parametrize("argv, words", [
    (["--trimap-band", "0"], "--trimap-band"),
    (["--refine", "trimap", "--trimap-band", "0.7"], "--trimap-band"),
    (["--refine", "trimap", "--refine-max-side", "10"], "--refine-max-side"),
    (["--refine-method", "knn"], "--refine trimap"),
    (["--trimap-band", "0.03"], "--refine trimap"),
    (["--output", "alpha", "--refine-max-side", "512"], "--refine trimap"),
    (["--output", "alpha", "--no-foreground-estimation"], "--output alpha"),
])
def test_bad_flags_are_input_errors(tmp_path, capsys, argv, words):
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    rc = main(["predict", str(tmp_path / "no-model"), str(photo), "--out", str(tmp_path / "o"), *argv])
    assert rc == InputError.exit_code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_unknown_choice_is_a_usage_error(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", "m", "--data", str(tmp_path), "--refine-method", "cf"])
    assert e.value.code == 2


def test_save_trimap_takes_band_without_refine():
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--output", default="rgba")
    R.add_refine_arguments(p)
    cfg = R.refine_config_from_args(p.parse_args(["--save-trimap", "--trimap-band", "0.03"]))
    assert cfg.save_trimap and not cfg.enabled and cfg.band == 0.03 and cfg.foreground
    assert not R.refine_config_from_args(p.parse_args(["--no-foreground-estimation"])).foreground
    # --refine-max-side also bounds foreground estimation, so it is taken on its own
    assert R.refine_config_from_args(p.parse_args(["--refine-max-side", "512"])).max_side == 512
    with pytest.raises(InputError):
        R.refine_config_from_args(p.parse_args(["--refine-max-side", "512", "--no-foreground-estimation"]))


# -- missing extra -----------------------------------------------------------------------
def test_missing_pymatting_is_dependency_error(monkeypatch, sample):
    monkeypatch.setitem(sys.modules, "pymatting", None)  # import pymatting -> ImportError
    with pytest.raises(DependencyError, match=r"edgematting\[refine\]"):
        R.refine_alpha(sample["image"], _coarse(sample["alpha"]), R.RefineConfig(refine="trimap"))
    # the default path (foreground estimation, trimap only) never needs it
    R.estimate_foreground(sample["image"], sample["alpha"])
    R.photo_trimap(sample["alpha"], R.RefineConfig())


def test_missing_extra_exits_7_before_anything_is_written(tiny_fast_scnn_dir, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "pymatting" else real(n, *a))
    photo = tmp_path / "p.png"
    Image.new("RGB", (8, 8)).save(photo)
    rc = main(["predict", str(tiny_fast_scnn_dir), str(photo), "--out", str(tmp_path / "o"), "--refine", "trimap"])
    assert rc == DependencyError.exit_code == 7
    assert "pip install 'edgematting[refine]'" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


# -- refinement --------------------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("max_side", [1024, 40])  # solved at the photo's size / downscaled
def test_refinement_never_changes_definite_regions(sample, method, max_side):
    pytest.importorskip("pymatting")
    rgb, coarse = sample["image"], _coarse(sample["alpha"])
    cfg = R.RefineConfig(refine="trimap", method=method, band=0.04, max_side=max_side)
    out, tri = R.refine_alpha(rgb, coarse, cfg, return_trimap=True)
    assert out.shape == coarse.shape and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    np.testing.assert_array_equal(tri, R.photo_trimap(coarse, cfg))
    known = tri != R.TRIMAP_UNKNOWN
    assert known.any() and (~known).any()
    np.testing.assert_array_equal(out[known], coarse[known])  # bit for bit
    assert not np.array_equal(out[~known], coarse[~known])  # and the band did get solved


def test_closed_form_refinement_improves_a_coarse_alpha(sample):
    pytest.importorskip("pymatting")
    from edgematting.evaluation.metrics import sad, unknown_band

    gt = sample["alpha"]
    coarse = _coarse(gt)
    out = R.refine_alpha(sample["image"], coarse, R.RefineConfig(refine="trimap", band=0.04))
    band = unknown_band(gt)
    assert sad(out, gt, band) < 0.8 * sad(coarse, gt, band)


def test_refine_without_unknown_pixels_is_the_identity():
    a = np.ones((16, 16), np.float32)
    out = R.refine_alpha(np.zeros((16, 16, 3), np.uint8), a, R.RefineConfig(refine="trimap"))
    np.testing.assert_array_equal(out, a)  # no band, nothing to solve, pymatting not needed


# -- foreground colours ------------------------------------------------------------------
@pytest.mark.parametrize("max_side", [1024, 32])  # every level dense / full resolution sparse
def test_foreground_estimation_leaves_opaque_pixels_and_lowers_colour_error(sample, max_side):
    rgb, a, fg_true = sample["image"], sample["alpha"], sample["fg"]
    f = R.estimate_foreground(rgb, a, R.RefineConfig(max_side=max_side))
    assert f.dtype == np.uint8 and f.shape == rgb.shape
    a8 = imageops.round_to_uint8(a * 255)
    opaque, clear = a8 == 255, a8 == 0
    assert opaque.any() and clear.any()
    np.testing.assert_array_equal(f[opaque], rgb[opaque])  # alpha = 1: unchanged
    np.testing.assert_array_equal(f[clear], rgb[clear])  # invisible: left alone
    soft = (a > 0.05) & (a < 0.95)
    err_photo = np.abs(rgb[soft].astype(float) - fg_true[soft]).mean()
    err_est = np.abs(f[soft].astype(float) - fg_true[soft]).mean()
    assert err_est < 0.5 * err_photo
    np.testing.assert_array_equal(R.estimate_foreground(rgb, a, R.RefineConfig(foreground=False)), rgb)


def test_foreground_ml_matches_pymatting(sample):
    pm = pytest.importorskip("pymatting")
    img = sample["image"].astype(np.float32) / 255
    a = sample["alpha"]
    ours, _ = R.estimate_foreground_ml(img, a)
    theirs = pm.estimate_foreground_ml(img, a)
    soft = (a > 0) & (a < 1)
    # ours is a Jacobi sweep, pymatting's an in-place (Gauss-Seidel-like) one: close, not equal
    assert np.abs(ours - theirs)[soft].mean() < 0.02


def test_composite_with_estimated_foreground_keeps_the_photo_blur(sample):
    rgb, a = sample["image"], sample["alpha"]
    f = R.estimate_foreground(rgb, a)
    out = imageops.composite(rgb, a, "blur", foreground=f)
    bg = imageops.box_blur(rgb.astype(np.float32), imageops.default_blur_radius(64, 64))
    np.testing.assert_array_equal(out, imageops.round_to_uint8(a[..., None] * f + (1 - a[..., None]) * bg))


# -- predict / evaluate ------------------------------------------------------------------
def _split_runner():
    from edgematting.modelio import ModelSpec

    def fn(x):
        y = np.zeros(x.shape[:3] + (1,), np.float32)
        y[:, 4:12, 5:11] = 1.0
        return y

    return fn, ModelSpec(architecture="mattingnet", config={}, input_size=(16, 16))


def test_predict_rgba_with_refinement_and_trimap(tmp_path, sample):
    from edgematting.data.io import write_png
    from edgematting.predict import predict_images

    pytest.importorskip("pymatting")
    fn, spec = _split_runner()
    write_png(tmp_path / "p.png", sample["image"])
    cfg = R.RefineConfig(refine="trimap", band=0.05, save_trimap=True)
    (cut,) = predict_images(fn, [tmp_path / "p.png"], tmp_path / "o", output="rgba", spec=spec, progress=False,
                            refine=cfg)
    tri = np.asarray(Image.open(tmp_path / "o" / "p_trimap.png"))
    assert tri.shape == (64, 64) and set(np.unique(tri)) <= {0, 128, 255}
    rgba = np.asarray(Image.open(cut))
    model_alpha = imageops.alpha_to_photo(fn(np.zeros((1, 16, 16, 3)))[0], (64, 64))
    a, f = R.apply(sample["image"], model_alpha, cfg, "rgba")
    np.testing.assert_array_equal(rgba[..., 3], imageops.round_to_uint8(a * 255))
    np.testing.assert_array_equal(rgba[..., :3], f)
    known = tri != 128
    np.testing.assert_array_equal(rgba[..., 3][known], imageops.round_to_uint8(model_alpha * 255)[known])


def test_evaluate_reports_refinement(tmp_path):
    from edgematting.data.synthetic import write_synthetic_folder
    from edgematting.evaluation.evaluate import evaluate_model

    pytest.importorskip("pymatting")
    data = write_synthetic_folder(tmp_path / "d", n=2, size=(48, 48), seed=4)
    fn, spec = _split_runner()
    plain = evaluate_model(fn, data, spec=spec, progress=False, out=False)
    ref = evaluate_model(fn, data, spec=spec, progress=False, out=False,
                         refine=R.RefineConfig(refine="trimap", band=0.05))
    assert plain["refine"] == "none"
    assert ref["refine"]["method"] == "closed-form" and ref["refine"]["band"] == 0.05
    assert ref["mean"]["sad_unknown"] != plain["mean"]["sad_unknown"]


# -- timing ------------------------------------------------------------------------------
@pytest.mark.slow
def test_benchmark_600x800_and_12mp():
    """Prints one benchmark line: seconds per photo for trimap refinement (closed-form,
    default settings) and foreground estimation, at 600x800 and 3000x4000 (12 MP)."""
    pytest.importorskip("pymatting")
    from edgematting.data.synthetic import SyntheticPortraits

    s = SyntheticPortraits(size=(300, 400), seed=10002).sample(1)
    cfg = R.RefineConfig(refine="trimap")
    R.refine_alpha(s["image"], _coarse(s["alpha"], 64), cfg)  # warm-up (numba cache load)
    parts = []
    for h, w in ((800, 600), (4000, 3000)):
        rgb = np.asarray(Image.fromarray(s["image"]).resize((w, h), Image.BILINEAR))
        gt = imageops.resize_bilinear(s["alpha"], h, w)
        coarse = _coarse(gt, 256)
        t0 = time.perf_counter()
        a = R.refine_alpha(rgb, coarse, cfg)
        t1 = time.perf_counter()
        R.estimate_foreground(rgb, a)
        t2 = time.perf_counter()
        parts.append(f"{w}x{h}: refine {t1 - t0:.2f} s + foreground {t2 - t1:.2f} s")
        assert t2 - t0 < 120
    print("\nbenchmark refine (closed-form, band 0.02, max side 1024): " + "; ".join(parts))
