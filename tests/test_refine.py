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


# -- the strip path: bit for bit the whole-frame definitions -------------------------------
def _whole_frame_refine_alpha(rgb, alpha, cfg):
    """`refine_alpha` as it was written on the whole frame (before the strips): the
    reference the strip path must reproduce bit for bit."""
    photo = np.asarray(rgb)[..., :3]
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    h, w = a.shape
    small = R.solve_size(a.shape, cfg.max_side)
    if small == (h, w):
        tri_s = tri_full = R.make_trimap(a, cfg.band)
    else:
        tri_s = R.make_trimap(R._resize(a, small[0], small[1], Image.BOX), cfg.band)
        tri_full = R._resize(tri_s, h, w, Image.NEAREST)
    unknown_full = tri_full == R.TRIMAP_UNKNOWN
    out = a.copy()
    if unknown_full.any() and not unknown_full.all():
        img_s = photo if small == (h, w) else R._resize(photo, small[0], small[1], Image.BOX)
        ys, xs = np.nonzero(tri_s == R.TRIMAP_UNKNOWN)
        y0, y1 = max(int(ys.min()) - R.CROP_MARGIN, 0), min(int(ys.max()) + R.CROP_MARGIN + 1, small[0])
        x0, x1 = max(int(xs.min()) - R.CROP_MARGIN, 0), min(int(xs.max()) + R.CROP_MARGIN + 1, small[1])
        crop_tri = tri_s[y0:y1, x0:x1]
        crop_alpha = None
        if (crop_tri != R.TRIMAP_UNKNOWN).any():
            crop_alpha = R._solve(cfg.method, img_s[y0:y1, x0:x1].astype(np.float64) / 255.0,
                                  crop_tri.astype(np.float64) / 255.0)
        if crop_alpha is not None:
            solved = np.zeros(small, np.float32)
            solved[y0:y1, x0:x1] = crop_alpha
            if small != (h, w):
                solved = R._resize(solved, h, w, Image.BILINEAR)
            out[unknown_full] = np.clip(solved[unknown_full], 0.0, 1.0)
    return out, tri_full


def _whole_frame_foreground(rgb, alpha, cfg):
    """`estimate_foreground` as it was written on the whole frame (before the strips)."""
    photo = np.asarray(rgb, np.uint8)[..., :3]
    a = np.clip(np.asarray(alpha, np.float32), 0.0, 1.0)
    partial = (a > R._CLEAR) & (a < R._OPAQUE)
    out = photo.copy()
    if not partial.any():
        return out
    F, B, left = R._ml_levels(photo, a, 1e-5, 10, 2, 32, 1.0, cfg.max_side)
    if left == 0:
        out[partial] = imageops.round_to_uint8(F[partial] * np.float32(255.0))
    else:
        ys, xs, Fp = _whole_frame_sparse_top(photo, a, F, B, 2 * left)
        out[ys, xs] = imageops.round_to_uint8(Fp * np.float32(255.0))
    return out


def _whole_frame_sparse_top(image, alpha, F_lo, B_lo, n_iter, regularization=1e-5, gradient_weight=1.0):
    """`_ml_sparse_top` as it was written on the whole frame (before the strips)."""
    h, w = alpha.shape
    hl, wl = F_lo.shape[:2]
    ys, xs = np.nonzero((alpha > R._CLEAR) & (alpha < R._OPAQUE))
    idx = ys * w + xs
    nb_y = [np.maximum(ys - 1, 0), np.minimum(ys + 1, h - 1), ys, ys]
    nb_x = [xs, xs, np.maximum(xs - 1, 0), np.minimum(xs + 1, w - 1)]
    ai = alpha[ys, xs]
    reg, gw = np.float32(regularization), np.float32(gradient_weight)
    one_minus = np.float32(1.0) - ai
    da, pos, fixed_f, fixed_b = [], [], [], []
    for ny, nx in zip(nb_y, nb_x):
        an = alpha[ny, nx]
        da.append((reg + gw * np.abs(ai - an))[:, None])
        k = np.minimum(np.searchsorted(idx, ny * w + nx), idx.size - 1)
        pos.append(np.where(idx[k] == ny * w + nx, k, -1))
        coarse = (np.minimum(ny * hl // h, hl - 1), np.minimum(nx * wl // w, wl - 1))
        photo = R._to01(image[ny, nx])
        fixed_f.append(np.where((an >= R._OPAQUE)[:, None], photo, F_lo[coarse]))
        fixed_b.append(np.where((an <= R._CLEAR)[:, None], photo, B_lo[coarse]))
    dsum = da[0] + da[1] + da[2] + da[3]
    a00 = ai[:, None] * ai[:, None] + dsum
    a11 = one_minus[:, None] * one_minus[:, None] + dsum
    a01 = (ai * one_minus)[:, None]
    inv_det = np.float32(1.0) / (a00 * a11 - a01 * a01)
    b00, b01, b11 = inv_det * a11, -inv_det * a01, inv_det * a00
    im = R._to01(image[ys, xs])
    fa, ba = ai[:, None] * im, one_minus[:, None] * im
    hl_idx = (np.minimum(ys * hl // h, hl - 1), np.minimum(xs * wl // w, wl - 1))
    F, B = F_lo[hl_idx].astype(np.float32), B_lo[hl_idx].astype(np.float32)
    for _ in range(n_iter):
        sf, sb = fa.copy(), ba.copy()
        for d, p, ff, fb in zip(da, pos, fixed_f, fixed_b):
            inside = (p >= 0)[:, None]
            sf += d * np.where(inside, F[p], ff)
            sb += d * np.where(inside, B[p], fb)
        F = np.clip(b00 * sf + b01 * sb, 0.0, 1.0)
        B = np.clip(b01 * sf + b11 * sb, 0.0, 1.0)
    return ys, xs, F


@pytest.mark.parametrize("strip_rows,sparse", [(None, None), (1, 1), (3, 40)])
@pytest.mark.parametrize("max_side", [1024, 40, 32])
def test_strips_are_the_whole_frame_bit_for_bit(monkeypatch, max_side, strip_rows, sparse):
    """refine_alpha, photo_trimap and estimate_foreground run a strip of rows at a time
    (tiny strips and sub-strips here: many of them); they equal the whole-frame definitions."""
    from edgematting import imageops_fast
    from edgematting.data.synthetic import SyntheticPortraits

    s = SyntheticPortraits(size=(96, 72), seed=3).sample(0)
    rgb, gt = s["image"], s["alpha"]
    if strip_rows:
        monkeypatch.setattr(imageops_fast, "STRIP_PIXELS", strip_rows * 72)
    if sparse:
        monkeypatch.setattr(R, "SPARSE_PIXELS", sparse)
    coarse = _coarse(gt)
    unsure = np.full(gt.shape, 0.5, np.float32) + np.linspace(0, 0.01, gt.size, dtype=np.float32).reshape(gt.shape)
    cfg = R.RefineConfig(refine="trimap", band=0.04, max_side=max_side)
    if importlib_util_find("pymatting"):
        a1, t1 = _whole_frame_refine_alpha(rgb, coarse, cfg)
        a2, t2 = R.refine_alpha(rgb, coarse, cfg, return_trimap=True)
        assert np.array_equal(a1, a2) and np.array_equal(t1, t2)
        alphas = (a1, gt, coarse, unsure)
    else:
        alphas = (gt, coarse, unsure)
    np.testing.assert_array_equal(R.photo_trimap(coarse, cfg), _whole_frame_refine_alpha_trimap(coarse, cfg))
    for a in alphas:
        np.testing.assert_array_equal(R.estimate_foreground(rgb, a, cfg), _whole_frame_foreground(rgb, a, cfg))


def _whole_frame_refine_alpha_trimap(alpha, cfg):
    a = np.asarray(alpha, np.float32)
    h, w = a.shape
    small = R.solve_size(a.shape, cfg.max_side)
    if small == (h, w):
        return R.make_trimap(a, cfg.band)
    return R._resize(R.make_trimap(R._resize(a, small[0], small[1], Image.BOX), cfg.band), h, w, Image.NEAREST)


def importlib_util_find(name):
    import importlib.util

    return importlib.util.find_spec(name) is not None


def test_pil_resizes_are_reproduced_a_strip_at_a_time():
    """The pieces the strips rest on: PIL's BOX reduction as its two passes (the horizontal
    one a strip at a time), its NEAREST mapping, its bilinear enlargement's vertical pass."""
    rng = np.random.default_rng(0)
    for hs, ws, h, w in ((5, 7, 13, 19), (32, 24, 100, 75), (40, 30, 41, 31), (3, 3, 1000, 999)):
        tri = (rng.integers(0, 3, (hs, ws)) * 127).astype(np.uint8)
        assert np.array_equal(tri[R._nearest_map(hs, h)][:, R._nearest_map(ws, w)], R._resize(tri, h, w, Image.NEAREST))
        solved = rng.random((hs, ws), dtype=np.float32) * 1.2 - 0.1
        mid = np.asarray(Image.fromarray(solved, "F").resize((w, hs), Image.BILINEAR))
        r = R.RefinedAlpha.__new__(R.RefinedAlpha)
        r.same, r._mid = False, mid
        r._vb, r._vk = R._pil_bilinear_coeffs(hs, h)
        assert np.array_equal(r._solved_rows(np.arange(h)), R._resize(solved, h, w, Image.BILINEAR))
    for h, w in ((100, 75), (333, 250), (37, 23)):
        a = rng.random((h, w), dtype=np.float32)
        photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        for small in ((40, 30), (16, 12)):
            assert np.array_equal(R._box_reduce(lambda y0, y1: a[y0:y1], h, w, small, 7),
                                  R._resize(a, small[0], small[1], Image.BOX))
            assert np.array_equal(R._box_reduce(lambda y0, y1: photo[y0:y1], h, w, small, 5),
                                  R._resize(photo, small[0], small[1], Image.BOX))
