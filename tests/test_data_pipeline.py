"""The pooled synthetic training pipeline and its TF-side augmentation (augment_tf)."""
import numpy as np
import pytest

from edgematting.data.augment import AugmentConfig
from edgematting.data.pipeline import DataConfig, build_synthetic_pool, make_datasets
from edgematting.data.synthetic import SyntheticPortraits

SIZE = (64, 64)
NO_AUG = dict(hflip=False, rotate_deg=0.0, scale=(1.0, 1.0), occlusion_prob=0.0, blur_prob=0.0,
              gamma=(1.0, 1.0), brightness=0.0, brightness_element=0.0)


def _cfg(tmp_path, **kw):
    base = dict(source="synthetic", input_size=SIZE, batch_size=8, n_synthetic_train=16, n_synthetic_val=4,
                seed=3, synthetic_pool=16, pool_cache_dir=str(tmp_path / "cache"), augment=AugmentConfig())
    return DataConfig(**dict(base, **kw))


def _elements(cfg, batches=1):
    """Un-normalized (image, alpha, fg, bg) from the first training batches, as numpy."""
    train, _, _ = make_datasets(cfg)
    out = []
    for x, y in train.take(batches):
        x, y = x.numpy(), y.numpy()
        out.append((x * 127.5 + 127.5, y[..., 0], y[..., 1:4] * 255.0, y[..., 4:7] * 255.0))
    return [np.concatenate(v) for v in zip(*out)]


def test_pool_matches_generator_and_cache_round_trip(tmp_path):
    cfg = _cfg(tmp_path)
    pool, info = build_synthetic_pool(cfg)
    assert info["source"] == "generated" and info["n"] == 16
    assert pool["image"].shape == (16, *SIZE, 3) and pool["alpha"].shape == (16, *SIZE)
    assert all(a.dtype == np.uint8 for a in pool.values())
    s = SyntheticPortraits(SIZE, seed=3).sample(5)
    np.testing.assert_array_equal(pool["image"][5], s["image"])
    np.testing.assert_array_equal(pool["fg"][5], s["fg"])
    np.testing.assert_array_equal(pool["alpha"][5], np.round(s["alpha"] * 255).astype(np.uint8))
    again, info2 = build_synthetic_pool(cfg)
    assert info2["source"] == "cache" and info2["path"] == info["path"]
    for k in pool:
        np.testing.assert_array_equal(again[k], pool[k])
    # another seed is another pool (another cache file); parallel generation gives the same
    other, info3 = build_synthetic_pool(_cfg(tmp_path, seed=4), workers=2)
    assert info3["source"] == "generated" and info3["path"] != info["path"]
    assert not np.array_equal(other["image"], pool["image"])
    np.testing.assert_array_equal(other["bg"][9], SyntheticPortraits(SIZE, seed=4).sample(9)["bg"])
    # a damaged cache file is regenerated
    with open(info["path"], "wb") as f:
        f.write(b"not an npz")
    with pytest.warns(UserWarning, match="unreadable"):
        third, info4 = build_synthetic_pool(cfg)
    assert info4["source"] == "generated"
    np.testing.assert_array_equal(third["alpha"], pool["alpha"])


def test_elements_shapes_ranges_and_composition(tmp_path):
    # everything on, rotation and composition always: image must still be the composite
    cfg = _cfg(tmp_path, composite_prob=1.0,
               augment=AugmentConfig(affine_prob=1.0, rotate_deg=20.0, blur_prob=0.0, occlusion_prob=0.5))
    train, val, info = make_datasets(cfg)
    assert info["n_train"] == 16 and info["steps_per_epoch"] == 2 and info["pool"]["n"] == 16
    x, y = next(iter(train))
    assert x.dtype.name == "float32" and y.dtype.name == "float32"
    assert x.shape == (8, *SIZE, 3) and y.shape == (8, *SIZE, 7)
    x, y = x.numpy(), y.numpy()
    assert -1.0 <= x.min() and x.max() <= 1.0 and 0.0 <= y.min() and y.max() <= 1.0
    image, a, fg, bg = x * 127.5 + 127.5, y[..., :1], y[..., 1:4] * 255, y[..., 4:7] * 255
    comp = a * fg + (1 - a) * bg
    assert np.abs(image - comp).max() <= 2.0 + 1e-3
    # 8-bit values: integers and alpha in multiples of 1/255
    np.testing.assert_allclose(image, np.round(image), atol=1e-3)
    np.testing.assert_allclose(a * 255, np.round(a * 255), atol=1e-3)
    assert (a == 0).any() and (a == 1).any()
    vx, vy = next(iter(val))
    assert vx.shape == (4, *SIZE, 3) and vy.shape == (4, *SIZE, 7)


def test_blur_only_touches_the_image(tmp_path):
    cfg = _cfg(tmp_path, augment=AugmentConfig(**dict(NO_AUG, blur_prob=1.0)))
    image, a, fg, bg = _elements(cfg, 2)
    comp = np.floor(bg + (fg - bg) * a[..., None] + 0.5)
    diff = np.abs(image - comp).reshape(len(image), -1).max(1)
    assert (diff > 2).any()  # blurred away from the exact composite ...
    pool, _ = build_synthetic_pool(cfg)
    pool_alpha = pool["alpha"].astype(np.float32) / 255
    for k in range(len(a)):  # ... while alpha stays an untouched pool matte
        assert any(np.array_equal(a[k], pa) for pa in pool_alpha)


def test_hflip_only_gives_mirrored_pool_samples(tmp_path):
    cfg = _cfg(tmp_path, augment=AugmentConfig(**dict(NO_AUG, hflip=True)))
    image, a, fg, bg = _elements(cfg, 2)
    pool, _ = build_synthetic_pool(cfg)
    flips = 0
    for k in range(len(image)):
        found = None
        for i in range(len(pool["image"])):
            for flipped in (False, True):
                ref = {n: (v[i][:, ::-1] if flipped else v[i]).astype(np.float32) for n, v in pool.items()}
                if np.array_equal(image[k], ref["image"]) and np.array_equal(np.round(a[k] * 255), ref["alpha"]):
                    np.testing.assert_array_equal(fg[k], ref["fg"])
                    np.testing.assert_array_equal(bg[k], ref["bg"])
                    found = flipped
        assert found is not None, f"element {k} is not a (mirrored) pool sample"
        flips += found
    assert 0 < flips < len(image)  # both branches taken in 16 draws


def test_same_seed_same_batches_and_epochs_differ(tmp_path):
    cfg = _cfg(tmp_path, composite_prob=0.5)
    t1, _, _ = make_datasets(cfg)
    t2, _, _ = make_datasets(cfg)
    b1, b2 = next(iter(t1)), next(iter(t2))
    np.testing.assert_array_equal(b1[0].numpy(), b2[0].numpy())
    np.testing.assert_array_equal(b1[1].numpy(), b2[1].numpy())
    again = next(iter(t1))  # a new epoch draws new keys
    assert not np.array_equal(again[1].numpy(), b1[1].numpy())
    t3, _, _ = make_datasets(_cfg(tmp_path, composite_prob=0.5, seed=5))
    assert not np.array_equal(next(iter(t3))[1].numpy(), b1[1].numpy())


def test_occlusion_clears_alpha_inside_the_patch(tmp_path):
    # occlusion only: alpha is the (maybe mirrored-free) pool matte except inside one rectangle
    cfg = _cfg(tmp_path, augment=AugmentConfig(**dict(NO_AUG, occlusion_prob=1.0)))
    image, a, fg, bg = _elements(cfg, 2)
    pool, _ = build_synthetic_pool(cfg)
    a8 = np.round(a * 255)
    for k in range(len(a)):
        i = int(np.argmin([np.abs(fg[k] - p).sum() for p in pool["fg"].astype(np.float32)]))
        np.testing.assert_array_equal(fg[k], pool["fg"][i])  # fg untouched
        changed = (bg[k] != pool["bg"][i]).any(-1)
        changed |= a8[k] != pool["alpha"][i]
        rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
        assert rows.size and cols.size
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        assert (a8[k][box] == 0).all()  # the occluder hides the person
        np.testing.assert_array_equal(image[k][box], bg[k][box])  # ... and is what you see
        outside = np.ones(a8[k].shape, bool)
        outside[box] = False
        np.testing.assert_array_equal(a8[k][outside], pool["alpha"][i][outside])
        # patch at least 8% of each side (reference: int(U(0.08, 0.35) * size) + 1)
        assert rows.size <= int(0.35 * SIZE[0]) + 1 and cols.size <= int(0.35 * SIZE[1]) + 1


def test_median3_and_blurs_match_references():
    from edgematting._tf import tf
    from edgematting.data import augment_tf

    T = tf()
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (20, 17, 3)).astype(np.float32)
    got = augment_tf.median3(T.constant(x)).numpy()
    xp = np.pad(x, ((1, 1), (1, 1), (0, 0)), mode="symmetric")
    want = np.median(np.stack([xp[dy:dy + 20, dx:dx + 17] for dy in range(3) for dx in range(3)]), 0)
    np.testing.assert_array_equal(got, want)
    # box blur radius 1 = 3x3 mean; both blurs keep a constant image constant
    got = augment_tf.box_blur(T.constant(x), 1.0, 1.5).numpy()
    want = np.mean(np.stack([xp[dy:dy + 20, dx:dx + 17] for dy in range(3) for dx in range(3)]), 0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    flat = np.full((9, 9, 3), 77.0, np.float32)
    np.testing.assert_allclose(augment_tf.gaussian_blur(T.constant(flat), 1.3, 1.5).numpy(), flat, atol=1e-3)


def test_pool_zero_keeps_the_numpy_path(tmp_path):
    cfg = _cfg(tmp_path, synthetic_pool=0)
    train, _, info = make_datasets(cfg)
    assert "pool" not in info
    x, y = next(iter(train))
    assert x.shape == (8, *SIZE, 3) and y.shape == (8, *SIZE, 7)
    assert not (tmp_path / "cache").exists()


def test_composition_uses_another_samples_background(tmp_path):
    cfg = _cfg(tmp_path, composite_prob=1.0, augment=AugmentConfig(**NO_AUG))
    image, a, fg, bg = _elements(cfg, 2)
    pool, _ = build_synthetic_pool(cfg)
    pf, pb = pool["fg"].astype(np.float32), pool["bg"].astype(np.float32)
    for k in range(len(image)):
        i = [n for n in range(len(pf)) if np.array_equal(fg[k], pf[n])]
        j = [n for n in range(len(pb)) if np.array_equal(bg[k], pb[n])]
        assert i and j and i[0] != j[0]
        np.testing.assert_array_equal(image[k], np.floor(bg[k] + (fg[k] - bg[k]) * a[k][..., None] + 0.5))
