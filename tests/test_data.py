"""Data: synthetic portraits, folder datasets and their checks, augmentation, tf.data pipelines."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting.data import (
    AugmentConfig,
    DataConfig,
    SyntheticPortraits,
    augment,
    list_images,
    load_sample,
    make_datasets,
    read_alpha,
    read_image,
    recomposite,
    scan_folder,
    write_png,
    write_synthetic_folder,
)
from edgematting.errors import DataError

SIZE = (96, 96)


@pytest.fixture(scope="module")
def gen():
    return SyntheticPortraits(size=SIZE, seed=3)


@pytest.fixture(scope="module")
def samples(gen):
    return [gen.sample(i) for i in range(24)]


# -- synthetic ----------------------------------------------------------------------------
def test_synthetic_is_deterministic_in_seed_and_index(gen, samples):
    again = SyntheticPortraits(size=SIZE, seed=3).sample(5)
    for k in ("image", "alpha", "fg", "bg"):
        np.testing.assert_array_equal(again[k], samples[5][k])
    assert not np.array_equal(samples[5]["image"], samples[6]["image"])
    other_seed = SyntheticPortraits(size=SIZE, seed=4).sample(5)
    assert not np.array_equal(other_seed["alpha"], samples[5]["alpha"])


def test_synthetic_types_and_ranges(samples):
    s = samples[0]
    assert s["image"].shape == (*SIZE, 3) and s["image"].dtype == np.uint8
    assert s["fg"].shape == (*SIZE, 3) and s["fg"].dtype == np.uint8
    assert s["bg"].shape == (*SIZE, 3) and s["bg"].dtype == np.uint8
    assert s["alpha"].shape == SIZE and s["alpha"].dtype == np.float32
    for s in samples:
        assert 0.0 <= s["alpha"].min() and s["alpha"].max() <= 1.0


def test_synthetic_alpha_has_background_foreground_and_soft_edges(samples):
    for s in samples:
        a = s["alpha"]
        assert (a == 0).any() and (a == 1).any()
        frac = (a > 0.02) & (a < 0.98)
        assert frac.sum() >= 20  # anti-aliased edges, hair strands, fringe


def test_synthetic_image_is_the_composite(samples):
    for s in samples:
        a = s["alpha"][..., None]
        comp = s["fg"].astype(np.float64) * a + s["bg"].astype(np.float64) * (1 - a)
        diff = np.abs(s["image"].astype(np.float64) - np.floor(comp + 0.5))
        assert diff.max() <= 1.0


def test_synthetic_is_varied(samples):
    fracs = np.array([s["alpha"].mean() for s in samples])
    assert fracs.max() - fracs.min() > 0.2  # scale / position vary
    touching_side = sum(
        bool(s["alpha"][:, 0].max() > 0.5 or s["alpha"][:, -1].max() > 0.5) for s in samples)
    assert touching_side >= 3  # some figures are cropped at the left/right edge
    assert all(s["alpha"][-1].max() > 0.5 for s in samples)  # torso leaves the bottom
    means = np.array([s["image"].reshape(-1, 3).mean(0) for s in samples])
    assert means.std(0).min() > 10  # colours vary


def test_synthetic_background_is_not_trivially_separable(samples):
    """Distractors in person colours: a colour threshold cannot give the matte."""
    ious = []
    for s in samples:
        fg_mask = s["alpha"] > 0.5
        img = s["image"].astype(np.float32)
        mean_fg = img[fg_mask].mean(0)
        dist = np.linalg.norm(img - mean_fg, axis=-1)
        pred = dist < np.median(dist[fg_mask])
        ious.append((pred & fg_mask).sum() / max((pred | fg_mask).sum(), 1))
    assert np.mean(ious) < 0.7


def test_synthetic_with_background_folder(tmp_path):
    bgs = tmp_path / "bgs"
    write_png(bgs / "a.png", np.full((50, 70, 3), (10, 200, 30), np.uint8))
    gen = SyntheticPortraits(size=(64, 64), seed=0, backgrounds_dir=bgs)
    got = [gen.sample(i) for i in range(12)]
    # roughly half the backgrounds come from the photo (pure green, up to grain / blur / cast)
    greenish = [s for s in got if abs(float(s["bg"][..., 1].mean()) - 200) < 40 and s["bg"][..., 0].mean() < 60]
    assert 1 <= len(greenish) <= 11
    with pytest.raises(DataError, match="No .jpg/.png backgrounds"):
        SyntheticPortraits(size=(64, 64), backgrounds_dir=tmp_path / "empty_does_not_exist")


# -- io and folders ---------------------------------------------------------------------
@pytest.mark.parametrize("rgba", [False, True])
def test_write_synthetic_folder_round_trip(tmp_path, rgba):
    out = write_synthetic_folder(tmp_path / "ds", 5, size=(64, 64), seed=1, rgba=rgba)
    found = scan_folder(out)
    assert [s.image.name for s in found] == [f"{i:04d}.png" for i in range(5)]
    assert all(s.alpha_from_rgba == rgba for s in found)
    ref = SyntheticPortraits(size=(64, 64), seed=1)
    for i, s in enumerate(found):
        got, want = load_sample(s), ref.sample(i)
        np.testing.assert_array_equal(got["image"], want["image"])
        np.testing.assert_allclose(got["alpha"], want["alpha"], atol=1e-6)
        assert got["fg"] is got["image"] and got["bg"] is got["image"]


def test_read_alpha_formats(tmp_path):
    a = np.array([[0, 1], [1, 0]], np.uint8)
    write_png(tmp_path / "01.png", a)
    write_png(tmp_path / "0255.png", a * 255)
    write_png(tmp_path / "soft.png", np.array([[0, 128], [255, 64]], np.uint8))
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = [[255, 0], [51, 255]]
    write_png(tmp_path / "rgba.png", rgba)
    np.testing.assert_array_equal(read_alpha(tmp_path / "01.png"), a.astype(np.float32))
    np.testing.assert_array_equal(read_alpha(tmp_path / "0255.png"), a.astype(np.float32))
    np.testing.assert_allclose(read_alpha(tmp_path / "soft.png"), [[0, 128 / 255], [1, 64 / 255]], atol=1e-6)
    np.testing.assert_allclose(read_alpha(tmp_path / "rgba.png"), [[1, 0], [0.2, 1]], atol=1e-6)
    assert read_image(tmp_path / "rgba.png").shape == (2, 2, 3)
    assert [p.name for p in list_images(tmp_path)] == ["01.png", "0255.png", "rgba.png", "soft.png"]


def _broken_folder(root: Path) -> dict[str, str]:
    """A dataset with one of each problem; returns {file name: expected reason fragment}."""
    write_synthetic_folder(root, 8, size=(64, 64), seed=2)
    img, alp = root / "image", root / "alpha"
    (alp / "0000.png").unlink()  # image without matte
    (img / "0001.png").unlink()  # matte without image
    write_png(alp / "0002.png", np.zeros((32, 64), np.uint8))  # size mismatch
    data = (img / "0003.png").read_bytes()
    (img / "0003.png").write_bytes(data[: len(data) // 2])  # truncated
    write_png(img / "0004.png", np.zeros((64, 64), np.uint8))  # grayscale: usable, with a note
    Image.fromarray(np.zeros((64, 64), np.uint16) + 300).save(img / "0005.png")  # 16-bit
    return {"0000.png": "no matte", "0001.png": "matte without an image", "0002.png": "size",
            "0003.png": "truncated", "0005.png": "16-bit"}


def test_scan_folder_lists_every_bad_file_in_one_error(tmp_path):
    expected = _broken_folder(tmp_path / "ds")
    with pytest.raises(DataError) as e:
        scan_folder(tmp_path / "ds")
    bad = {Path(p).name: why for p, why in e.value.bad_files}
    assert set(bad) == set(expected)
    for name, fragment in expected.items():
        assert fragment in bad[name], (name, bad[name])
        assert name in str(e.value)
    assert "skip" in str(e.value)  # says what to do next
    assert e.value.exit_code == 3


def test_scan_folder_skip_bad(tmp_path):
    _broken_folder(tmp_path / "ds")
    with pytest.warns(UserWarning, match="Skipping 5 bad file"):
        good = scan_folder(tmp_path / "ds", skip_bad=True)
    assert [s.image.name for s in good] == ["0004.png", "0006.png", "0007.png"]  # grayscale 0004 used as RGB


def test_scan_folder_empty_and_missing(tmp_path):
    (tmp_path / "e" / "image").mkdir(parents=True)
    with pytest.raises(DataError, match="No .jpg/.png images"):
        scan_folder(tmp_path / "e")
    with pytest.raises(DataError, match="No image/ folder"):
        scan_folder(tmp_path)
    with pytest.raises(DataError, match="not found"):
        scan_folder(tmp_path / "nope")


def test_scan_folder_rgba_mode_rejects_images_without_alpha(tmp_path):
    root = write_synthetic_folder(tmp_path / "ds", 3, size=(32, 32), rgba=True)
    write_png(root / "image" / "0003.png", np.zeros((32, 32, 3), np.uint8))
    Image.new("RGB", (32, 32)).save(root / "image" / "0004.jpg")
    with pytest.raises(DataError) as e:
        scan_folder(root)
    assert sorted(Path(p).name for p, _ in e.value.bad_files) == ["0003.png", "0004.jpg"]


def test_scan_folder_skip_bad_with_nothing_left(tmp_path):
    root = tmp_path / "ds"
    write_png(root / "image" / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_png(root / "alpha" / "a.png", np.zeros((8, 4), np.uint8))  # size mismatch
    with pytest.warns(UserWarning), pytest.raises(DataError, match="No usable"):
        scan_folder(root, skip_bad=True)


def test_scan_folder_reports_broken_links(tmp_path):
    """A dangling symlink among the images or mattes is a problem named in the DataError,
    not a pair silently dropped (nor a second, misleading "no matte" line for its pair)."""
    root = write_synthetic_folder(tmp_path / "ds", 4, size=(32, 32), seed=1)
    img, alp = Path(root) / "image", Path(root) / "alpha"
    (img / "0001.png").unlink()
    (img / "0001.png").symlink_to(tmp_path / "gone" / "0001.png")  # photo link, its matte present
    (alp / "0002.png").unlink()
    (alp / "0002.png").symlink_to(tmp_path / "gone" / "0002.png")  # matte link, its photo present
    with pytest.raises(DataError) as e:
        scan_folder(root)
    assert e.value.exit_code == 3
    assert sorted((Path(p).relative_to(root).as_posix(), why.split(":")[0]) for p, why in e.value.bad_files) == [
        ("alpha/0002.png", "broken link"), ("image/0001.png", "broken link")]
    assert "gone" in str(e.value)  # the missing target is named
    with pytest.warns(UserWarning, match="Skipping 2 bad file"):
        good = scan_folder(root, skip_bad=True)
    assert [s.image.name for s in good] == ["0000.png", "0003.png"]
    # a folder of nothing but broken links: the links named, not "no images"
    solo = tmp_path / "solo" / "image"
    solo.mkdir(parents=True)
    (solo / "a.png").symlink_to(tmp_path / "gone" / "a.png")
    with pytest.raises(DataError, match="broken link"):
        scan_folder(solo.parent)


# -- augmentation --------------------------------------------------------------------------
def _off(**kw):
    base = dict(hflip=False, vflip=False, rotate_deg=0.0, scale=(1.0, 1.0), brightness=0.0,
                brightness_element=0.0, occlusion_prob=0.0, blur_prob=0.0, gamma=(1.0, 1.0))
    base.update(kw)
    return AugmentConfig(**base)


def test_augment_hflip_flips_everything(samples):
    s = samples[1]
    flipped = None
    for seed in range(10):
        out = augment(s, np.random.default_rng(seed), _off(hflip=True))
        if not np.array_equal(out["image"], s["image"]):
            flipped = out
            break
    assert flipped is not None
    for k in ("image", "alpha", "fg", "bg"):
        np.testing.assert_array_equal(flipped[k], np.fliplr(s[k]))


def test_augment_disabled_is_identity(samples):
    s = samples[2]
    out = augment(s, np.random.default_rng(0), AugmentConfig(enabled=False))
    for k in ("image", "alpha", "fg", "bg"):
        np.testing.assert_array_equal(out[k], s[k])


def test_augment_rotation_keeps_image_and_alpha_aligned():
    h = w = 96
    yy, xx = np.mgrid[:h, :w]
    mask = ((xx - 40) ** 2 / 18**2 + (yy - 50) ** 2 / 30**2) < 1
    img = np.where(mask[..., None], 250, 10).astype(np.uint8).repeat(3, -1)
    s = {"image": img, "alpha": mask.astype(np.float32), "fg": img, "bg": img}
    cfg = _off(rotate_deg=30.0, scale=(0.8, 1.2), affine_prob=1.0)
    for seed in range(4):
        out = augment(s, np.random.default_rng(seed), cfg)
        assert not np.array_equal(out["alpha"], s["alpha"])
        bright = out["image"][..., 0] > 130
        agree = ((out["alpha"] > 0.5) == bright).mean()
        assert agree > 0.995
        assert out["alpha"].dtype == np.float32 and out["image"].dtype == np.uint8


def test_augment_photometric_keeps_composition(samples):
    s = samples[3]
    cfg = _off(brightness=0.15, brightness_element=0.03)
    out = augment(s, np.random.default_rng(1), cfg)
    assert not np.array_equal(out["image"], s["image"])
    np.testing.assert_array_equal(out["alpha"], s["alpha"])
    a = out["alpha"][..., None]
    comp = out["fg"] * a + out["bg"].astype(np.float32) * (1 - a)
    # additive changes commute with compositing; clipping at 0/255 and rounding cost a little
    assert np.abs(out["image"] - comp).mean() < 1.5


def test_augment_occlusion_hides_the_person(samples):
    s = samples[4]
    out = None
    for seed in range(20):
        o = augment(s, np.random.default_rng(seed), _off(occlusion_prob=1.0))
        if o["alpha"].sum() < s["alpha"].sum() - 5:
            out = o
            break
    assert out is not None
    a = out["alpha"][..., None]
    comp = np.floor(out["fg"] * a + out["bg"].astype(np.float32) * (1 - a) + 0.5)
    assert np.abs(out["image"] - comp).max() <= 1


def test_augment_full_config_runs_on_folder_style_sample(samples):
    s = dict(samples[5])
    s["fg"] = s["bg"] = s["image"]
    cfg = AugmentConfig(vflip=True, occlusion_prob=0.5, blur_prob=0.5)
    for seed in range(6):
        out = augment(s, np.random.default_rng(seed), cfg)
        assert out["image"].shape == s["image"].shape and out["alpha"].shape == s["alpha"].shape
        assert 0 <= out["alpha"].min() and out["alpha"].max() <= 1


def test_recomposite_formula(samples):
    s = samples[6]
    new_bg = np.zeros((40, 50, 3), np.uint8)
    new_bg[..., 2] = 255
    out = recomposite(s, new_bg)
    a = s["alpha"][..., None]
    want = np.floor(s["fg"] * a + np.array([0, 0, 255], np.float32) * (1 - a) + 0.5)
    np.testing.assert_array_equal(out["image"], want.astype(np.uint8))
    assert out["bg"].shape == s["image"].shape
    np.testing.assert_array_equal(out["alpha"], s["alpha"])


# -- tf.data pipelines -------------------------------------------------------------------
def _check_batch(x, y, bs, size):
    x, y = x.numpy(), y.numpy()
    assert x.dtype == np.float32 and y.dtype == np.float32
    assert x.shape == (bs, *size, 3) and y.shape == (bs, *size, 7)
    assert -1.0 <= x.min() and x.max() <= 1.0
    assert 0.0 <= y.min() and y.max() <= 1.0
    assert (y[..., 0] == 0).any() and (y[..., 0] == 1).any()
    return x, y


def test_make_datasets_synthetic():
    cfg = DataConfig(source="synthetic", input_size=(64, 64), batch_size=4, n_synthetic_train=12,
                     n_synthetic_val=6, seed=1, composite_prob=0.5)
    train, val, info = make_datasets(cfg)
    assert info["n_train"] == 12 and info["n_val"] == 6 and info["steps_per_epoch"] == 3
    batches = list(train)
    assert len(batches) == 3
    x, y = _check_batch(*batches[0], 4, (64, 64))
    # the input is the normalized image: fg/bg targets reproduce it away from augmentation blur
    vb = list(val)
    assert [b[0].shape[0] for b in vb] == [4, 2]
    vx, vy = _check_batch(*vb[0], 4, (64, 64))
    img = vx * 127.5 + 127.5
    a = vy[..., :1]
    comp = (vy[..., 1:4] * a + vy[..., 4:7] * (1 - a)) * 255
    assert np.abs(img - comp).max() <= 1.01
    # val is deterministic; train draws new samples each epoch
    vb2 = list(val)
    np.testing.assert_array_equal(vb[0][0].numpy(), vb2[0][0].numpy())
    _, val_again, _ = make_datasets(cfg)
    np.testing.assert_array_equal(next(iter(val_again))[1].numpy(), vb[0][1].numpy())
    epoch2 = list(train)
    assert not np.array_equal(epoch2[0][1].numpy(), batches[0][1].numpy())


def test_make_datasets_folder(tmp_path):
    root = write_synthetic_folder(tmp_path / "ds", 10, size=(80, 60), seed=5)
    cfg = DataConfig(source=str(root), input_size=(64, 48), batch_size=4, val_ratio=0.2, seed=0)
    train, val, info = make_datasets(cfg, mean=(127.5,) * 3, std=(127.5,) * 3)
    assert info["n_train"] == 8 and info["n_val"] == 2 and info["steps_per_epoch"] == 2
    tb = list(train)
    assert len(tb) == 2
    _check_batch(*tb[0], 4, (64, 48))
    vb = list(val)
    assert len(vb) == 1
    vx, vy = _check_batch(*vb[0], 2, (64, 48))
    # folder fg and bg are the photo itself
    np.testing.assert_allclose(vy[..., 1:4], vy[..., 4:7])
    np.testing.assert_allclose(vx * 127.5 + 127.5, vy[..., 1:4] * 255, atol=1e-3)
    np.testing.assert_array_equal(list(val)[0][1].numpy(), vy)


def test_make_datasets_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        make_datasets(DataConfig(source=str(tmp_path / "missing")))
    root = tmp_path / "ds"
    _broken_folder(root)
    with pytest.raises(DataError) as e:
        make_datasets(DataConfig(source=str(root), input_size=(32, 32)))
    assert len(e.value.bad_files) == 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, info = make_datasets(DataConfig(source=str(root), input_size=(32, 32), skip_bad=True,
                                              batch_size=1, val_ratio=0.5))
    assert info["n_train"] + info["n_val"] == 3
