"""The OpenCV path of the photo pipeline (`edgematting.imageops_cv`) stays within its stated
bounds of the definition (`edgematting.imageops`) on random and on edge-case inputs, and the
check that says so fails when the path is wrong (a shifted resize, swapped weights).

The bounds (module docstring of `imageops_cv`): model input <= 1/4 pixel level, alpha at photo
size <= 1/255 (bilinear and the guided filter), composite, 8-bit alpha and cut-out alpha <= 1
level, the composite equal bit for bit to the definition's for the same alpha, strips equal to
the whole frame."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgematting import imageops
from edgematting import imageops_cv as cvops
from edgematting import imageops_fast as fast
from edgematting.errors import InputError

pytest.importorskip("cv2")

PHOTO_SIZES = [(800, 600), (37, 53), (1, 1), (2, 300), (301, 2), (64, 64)]
MODEL_SIZES = [(256, 256), (64, 48), (1, 1), (7, 513)]


def _photos(hw, rng):
    """Random RGB and RGBA photos, and the hardest structured ones for a resize: a 0/255
    checkerboard (the largest step between neighbours), stripes, flat white."""
    h, w = hw
    yy, xx = np.mgrid[:h, :w]
    board = (((yy + xx) % 2) * 255).astype(np.uint8)
    return [
        rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        rng.integers(0, 256, (h, w, 4), dtype=np.uint8),  # RGBA photo: the 4th channel is ignored
        np.repeat(board[..., None], 3, axis=-1),
        np.stack([board, 255 - board, ((xx % 3) * 127).astype(np.uint8)], -1),
        np.full((h, w, 3), 255, np.uint8),
    ]


def _alphas(lr, rng):
    """Model outputs: random (out of [0, 1] too: clipped after the resize), confident (0/1
    steps), exactly 0, exactly 1, exactly 0.5 (every composite value a .5 tie)."""
    h, w = lr
    step = (np.arange(w)[None, :] > w // 2).astype(np.float32).repeat(h, 0)
    return [(rng.random(lr) * 1.4 - 0.2).astype(np.float32), step, np.zeros(lr, np.float32),
            np.ones(lr, np.float32), np.full(lr, 0.5, np.float32)]


@pytest.mark.parametrize("photo_hw", PHOTO_SIZES)
def test_the_opencv_path_is_within_its_bounds(photo_hw):
    rng = np.random.default_rng(sum(photo_hw))
    photos = _photos(photo_hw, rng)
    worst = {}
    for lr in MODEL_SIZES:
        for i, alpha_lr in enumerate(_alphas(lr, rng)):
            photo = photos[i % len(photos)]
            # the composites over "blur" and an image (the definition's blur is slow) once per photo and alpha
            r = cvops.measure_bounds(photo, alpha_lr, backgrounds=None if lr == MODEL_SIZES[0] else ())
            assert not r["failures"], (photo_hw, lr, i, r)
            for k in ("model_pixels", "alpha", "composite"):
                worst[k] = max(worst.get(k, 0), r[k])
        for photo in photos:  # every structured photo through the model-input resize
            px = cvops.model_pixels(photo, *lr)
            assert px.dtype == np.float32 and px.shape == lr + (3,)
            assert np.abs(px - imageops.resize_bilinear(photo[..., :3], *lr)).max() < cvops.PIXEL_BOUND
    print(photo_hw, worst)


def test_composite_is_the_definitions_bytes_for_the_same_alpha():
    """Over an integer colour the composite is exact for the same alpha, at the hard-alpha
    threshold (every photo/colour byte pair), at exactly 0.5 and when most pixels are soft;
    a colour with fractions and "blur" (OpenCV's box blur: the definition's values on these
    inputs) too; an image of another size (resized by OpenCV) within one level."""
    t = fast.HARD
    near = [np.nextafter(t, np.float32(0)), t, np.nextafter(t, np.float32(1)), np.float32(0.5)]
    one = np.float32(1.0) - t
    near += [np.nextafter(one, np.float32(0)), one, np.nextafter(one, np.float32(1)), np.float32(0), np.float32(1)]
    photo = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1).reshape(256, 1, 3).repeat(len(near), axis=1)
    alpha = np.tile(np.asarray(near, np.float32), (256, 1))  # mostly soft: every pixel blended
    mostly_hard = np.where(np.arange(256)[:, None] % 8 == 0, alpha, np.float32(1.0))  # the gathered soft pixels
    for b in range(0, 256, 3):
        bg = (b, 255 - b, b // 2)
        for a in (alpha, mostly_hard):
            np.testing.assert_array_equal(cvops.composite(photo, a, bg), imageops.composite(photo, a, bg))
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    a = rng.random((40, 30)).astype(np.float32)
    fg = rng.integers(0, 256, rgb.shape, dtype=np.uint8)
    for f in (None, fg):
        for bg in [(1.5, 2.25, 3), "blur", (0, 255, 0)]:
            np.testing.assert_array_equal(cvops.composite(rgb, a, bg, foreground=f),
                                          imageops.composite(rgb, a, bg, foreground=f))
        for bg in [rng.integers(0, 256, (9, 7, 3), dtype=np.uint8), rng.integers(0, 256, (97, 61, 4), dtype=np.uint8)]:
            d = cvops.composite(rgb, a, bg, foreground=f).astype(int) - imageops.composite(rgb, a, bg, foreground=f)
            assert np.abs(d).max() <= cvops.COMPOSITE_BOUND
    for hw in [(1, 1), (3, 5), (2, 300), (301, 2), (37, 53)]:  # the blur itself, every radius's edge cases
        photo = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
        for radius in (0, 1, 2, 7, 40):
            np.testing.assert_array_equal(cvops.box_blur(photo, radius), imageops.box_blur(photo.astype(np.float32),
                                                                                            radius))


def test_strips_are_the_whole_frame_in_both_modes(monkeypatch):
    """Small photos are resized whole, large ones a strip at a time (vertical pass at the
    model's width, then rows): any rows are those of the whole frame, and both are within
    the bound. A large photo is made by lowering WHOLE_PIXELS; the composite over strips
    too (lowering STRIP_PIXELS)."""
    rng = np.random.default_rng(5)
    lr = (rng.random((33, 17)) * 1.2 - 0.1).astype(np.float32)
    hw = (97, 61)
    ref = imageops.alpha_to_photo(lr, hw)
    whole = cvops.alpha_to_photo(lr, hw)
    monkeypatch.setattr(cvops, "WHOLE_PIXELS", 0)
    monkeypatch.setattr(fast, "STRIP_PIXELS", 3 * hw[1])
    rows = cvops.AlphaRows(lr, hw)
    assert rows._whole is None
    strips = rows.full()
    for a in (whole, strips):
        assert np.abs(a - ref).max() <= cvops.ALPHA_BOUND and a.min() >= 0 and a.max() <= 1
    np.testing.assert_array_equal(np.concatenate([rows.rows(y, min(y + 2, hw[0])) for y in range(0, hw[0], 2)]),
                                  strips)
    np.testing.assert_array_equal(rows.rows_at([96, 0, 50]), strips[[96, 0, 50]])
    np.testing.assert_array_equal(rows.rows(96, 97), strips[96:])  # a strip of one row
    cvops.set_threads(2)  # OpenCV splits rows among its threads: the same numbers
    try:
        np.testing.assert_array_equal(cvops.AlphaRows(lr, hw).full(), strips)
    finally:
        cvops.set_threads(1)
    rgb = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
    for a in (ref, np.full(hw, 0.5, np.float32)):
        np.testing.assert_array_equal(cvops.composite(rgb, a, (9, 8, 7)), imageops.composite(rgb, a, (9, 8, 7)))
        np.testing.assert_array_equal(np.asarray(cvops.composite(rgb, a, (9, 8, 7), as_image=True)),
                                      imageops.composite(rgb, a, (9, 8, 7)))


def test_a_wrong_path_fails_the_bound_check(monkeypatch):
    """The check is only as good as what it catches: a resize shifted by one output pixel
    fails the model-input and alpha bounds, a composite with swapped weights (1 - a on the
    photo) fails the composite's."""
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    lr = rng.random((32, 24)).astype(np.float32)
    assert not cvops.measure_bounds(photo, lr)["failures"]
    resize = cvops._resize

    def shifted(x, out_h, out_w, dst=None):
        out = resize(x, out_h, out_w)
        out = np.roll(out, 1, axis=1)  # half-pixel-centre convention broken: one pixel to the right
        if dst is not None:
            np.copyto(dst.reshape(out.shape), out)
            return dst
        return out

    monkeypatch.setattr(cvops, "_resize", shifted)
    fails = " ".join(cvops.measure_bounds(photo, lr)["failures"])
    assert "model_pixels" in fails and "alpha" in fails and "guided" in fails
    monkeypatch.setattr(cvops, "_resize", resize)
    blend = cvops._blend_chunk

    def swapped(a4, f4, bg4, out):
        blend(np.float32(1.0) - a4, f4, bg4, out)

    monkeypatch.setattr(cvops, "_blend_chunk", swapped)
    fails = " ".join(cvops.measure_bounds(photo, lr)["failures"])
    assert "composite" in fails
    monkeypatch.undo()
    import cv2

    def reflected_blur(img, radius, passes=3):  # OpenCV's default border (reflect 101), not the clamped edge
        x = np.asarray(img, np.float32)
        for _ in range(passes):
            x = cv2.blur(x, (2 * radius + 1, 2 * radius + 1))
        return x

    monkeypatch.setattr(cvops, "box_blur", reflected_blur)
    fails = cvops.measure_bounds(photo, lr)["failures"]
    assert [f for f in fails if f.startswith("composite_backgrounds")] == fails and fails, fails


def test_the_runner_runs_the_opencv_path_by_default_and_exact_on_request(monkeypatch):
    import cv2

    from edgematting import runners
    from edgematting.contract import model_input
    from edgematting.modelio import ModelSpec

    spec = ModelSpec(architecture="fast-scnn", config={}, input_size=(16, 12))
    lr = np.random.default_rng(2).random((1, 16, 12, 1)).astype(np.float32)
    rgb = np.random.default_rng(3).integers(0, 256, (50, 40, 3), dtype=np.uint8)
    monkeypatch.delenv(cvops.ENV, raising=False)
    pm = runners.open(lambda x: np.repeat(lr, len(x), 0), spec=spec, num_threads=2)
    assert pm.ops.name == "opencv" and cv2.getNumThreads() == 2
    x = pm.inputs([rgb])
    assert np.abs(x - model_input(rgb, pm.contract)).max() < cvops.PIXEL_BOUND / 127.5 + 1e-6
    a = pm.predict_photo(rgb)
    assert np.abs(a - imageops.alpha_to_photo(lr[0], (50, 40))).max() <= cvops.ALPHA_BOUND
    exact = runners.open(lambda x: np.repeat(lr, len(x), 0), spec=spec, pipeline="exact")
    np.testing.assert_array_equal(exact.inputs([rgb]), model_input(rgb, exact.contract))
    np.testing.assert_array_equal(exact.predict_photo(rgb), imageops.alpha_to_photo(lr[0], (50, 40)))
    gf = imageops.GuidedFilter()  # predict's default upsampling: OpenCV within the bound, exact bit for bit
    ref = imageops.guided_upsample(lr[0], rgb, gf.radius, gf.eps)
    assert np.abs(pm.predict_photo(rgb, gf) - ref).max() <= cvops.GUIDED_BOUND
    assert isinstance(pm.ops.alpha_rows(lr[0], rgb, gf), cvops.GuidedRows)
    np.testing.assert_array_equal(exact.predict_photo(rgb, gf), ref)
    monkeypatch.setenv(cvops.ENV, "exact")
    assert runners.open(lambda x: x, spec=spec).ops.name == "exact"
    with pytest.raises(InputError, match="opencv or exact"):
        runners.open(lambda x: x, spec=spec, pipeline="fastest")
    monkeypatch.setenv(cvops.ENV, "gpu")
    with pytest.raises(InputError, match="EDGEMATTING_PIPELINE"):
        cvops.get_ops()


# -- the guided filter ---------------------------------------------------------------------
GUIDED_PHOTOS = [(1, 1), (3, 5), (2, 300), (301, 2), (37, 53), (4, 12001), (800, 600)]
#: (radius, eps): the default, the smallest eps this path takes (the most sensitive), a wide one
GUIDED_PARAMS = [(2, 1e-4), (1, cvops.GUIDED_EPS_MIN), (8, 1e-2)]


def _guided_photos(hw, rng):
    """Random RGB and RGBA photos, a 0/255 checkerboard, and a smooth ramp with a little noise:
    a small variance of the guide everywhere, where ``a = cov / (var + eps)`` is most
    sensitive to rounding."""
    h, w = hw
    ramp = np.linspace(0, 255, w)[None, :, None] + rng.normal(0, 1.5, (h, w, 3))
    return _photos(hw, rng)[:3] + [np.clip(ramp, 0, 255).astype(np.uint8)]


def _strips_and_rows_equal(rows, full):
    h = full.shape[0]
    np.testing.assert_array_equal(np.concatenate([rows.rows(y, min(y + 3, h)) for y in range(0, h, 3)]), full)
    np.testing.assert_array_equal(rows.rows_at(np.arange(h)[::-1]), full[::-1])


@pytest.mark.parametrize("photo_hw", GUIDED_PHOTOS)
def test_the_guided_filter_is_within_its_bound(photo_hw):
    """`GuidedRows` (``--upsample guided`` on the OpenCV path) against
    `imageops.guided_upsample` on random, structured and low-variance photos, confident,
    random and out-of-range mattes, tiny, odd, very wide photos and model sizes: within
    `GUIDED_BOUND`, in [0, 1], strips and any rows equal to the whole frame."""
    rng = np.random.default_rng(sum(photo_hw) + 11)
    photos = _guided_photos(photo_hw, rng)
    worst = 0.0
    for lr in [(256, 256), (1, 1), (7, 5), (64, 48)]:
        alphas = _alphas(lr, rng)[:2]  # random (also outside [0, 1]) and a 0/1 step
        for i, (radius, eps) in enumerate(GUIDED_PARAMS):
            for j, alpha_lr in enumerate(alphas):
                photo = photos[(i + j) % len(photos)]
                gf = imageops.GuidedFilter(radius, eps)
                rows = cvops.alpha_rows(alpha_lr, photo, gf)
                assert isinstance(rows, cvops.GuidedRows) and rows.shape == photo_hw
                full = rows.full()
                assert full.dtype == np.float32 and full.shape == photo_hw
                ref = imageops.guided_upsample(alpha_lr, photo, radius, eps)
                err = float(np.abs(full.astype(np.float64) - ref).max())
                assert err <= cvops.GUIDED_BOUND, (photo_hw, lr, radius, eps, j, err)
                assert full.min() >= 0.0 and full.max() <= 1.0
                _strips_and_rows_equal(rows, full)
                np.testing.assert_array_equal(cvops.upsample_alpha(alpha_lr[None, ..., None], photo, gf), full)
                worst = max(worst, err)
    print(photo_hw, "guided worst", worst)


def test_guided_box_means_are_the_definitions():
    """The model-resolution box means keep `imageops.box_mean`'s border rule (the window
    clipped to the image, divided by its in-image pixels) and its values."""
    rng = np.random.default_rng(4)
    for hw in [(1, 1), (3, 5), (9, 1), (64, 48)]:
        planes = [rng.random(hw).astype(np.float32) for _ in range(3)]
        for r in (1, 2, 7):
            got = cvops.box_means(np.stack(planes, -1), r)
            for k, p in enumerate(planes):
                np.testing.assert_array_equal(got[..., k], imageops.box_mean(p, r))
            np.testing.assert_array_equal(cvops.box_means(planes[0], r).reshape(hw), imageops.box_mean(planes[0], r))


def test_guided_strip_mode_is_the_whole_frame(monkeypatch):
    """A photo above `WHOLE_PIXELS` (made so by lowering it) runs the vertical pass at the
    model's width and each strip across: strips, single rows and any rows are the whole
    frame's, within the bound, with 1 and 2 OpenCV threads alike."""
    rng = np.random.default_rng(6)
    lr = (rng.random((33, 17)) * 1.2 - 0.1).astype(np.float32)
    hw = (97, 61)
    photo = _guided_photos(hw, rng)[-1]
    gf = imageops.GuidedFilter()
    ref = imageops.guided_upsample(lr, photo, gf.radius, gf.eps)
    whole = cvops.upsample_alpha(lr, photo, gf)
    monkeypatch.setattr(cvops, "WHOLE_PIXELS", 0)
    monkeypatch.setattr(fast, "STRIP_PIXELS", 3 * hw[1])
    rows = cvops.alpha_rows(lr, photo, gf)
    assert rows._whole is None
    strips = rows.full()
    for a in (whole, strips):
        assert np.abs(a - ref).max() <= cvops.GUIDED_BOUND and a.min() >= 0 and a.max() <= 1
    _strips_and_rows_equal(rows, strips)
    np.testing.assert_array_equal(rows.rows(96, 97), strips[96:])  # a strip of one row
    np.testing.assert_array_equal(rows.rows_at([5]), strips[5:6])
    cvops.set_threads(2)
    try:
        np.testing.assert_array_equal(cvops.alpha_rows(lr, photo, gf).full(), strips)
    finally:
        cvops.set_threads(1)


def test_guided_below_the_smallest_eps_runs_the_exact_path():
    rng = np.random.default_rng(7)
    photo = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    lr = rng.random((16, 12)).astype(np.float32)
    gf = imageops.GuidedFilter(1, cvops.GUIDED_EPS_MIN / 10)
    rows = cvops.alpha_rows(lr, photo, gf)
    assert isinstance(rows, fast.AlphaRows)
    np.testing.assert_array_equal(rows.full(), imageops.guided_upsample(lr, photo, gf.radius, gf.eps))
    np.testing.assert_array_equal(cvops.upsample_alpha(lr, photo, gf), rows.full())
    with pytest.raises(ValueError, match="eps"):
        cvops.alpha_rows(lr, photo, SimpleNamespace(radius=1, eps=0.0))


def test_a_wrong_guided_filter_fails_the_bound_check(monkeypatch):
    """The guided bound check catches a box mean with another border rule (reflected
    borders, or zero padding divided by the full window) and a guide with R and B swapped."""
    import cv2

    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (120, 90, 3), dtype=np.uint8)
    lr = rng.random((32, 24)).astype(np.float32)
    assert not cvops.measure_bounds(photo, lr)["failures"]

    def reflected(planes, radius):
        k = 2 * int(radius) + 1
        return cv2.blur(np.ascontiguousarray(planes, np.float32), (k, k))  # BORDER_REFLECT_101

    def zero_padded(planes, radius):
        k = 2 * int(radius) + 1
        return cv2.boxFilter(np.ascontiguousarray(planes, np.float32), -1, (k, k), borderType=cv2.BORDER_CONSTANT)

    for wrong in (reflected, zero_padded):
        monkeypatch.setattr(cvops, "box_means", wrong)
        r = cvops.measure_bounds(photo, lr)
        assert any(f.startswith("guided") for f in r["failures"]), (wrong.__name__, r)
    monkeypatch.undo()
    luma = cvops._luma
    monkeypatch.setattr(cvops, "_luma", lambda rgb, dst: luma(np.ascontiguousarray(rgb[..., ::-1]), dst))
    r = cvops.measure_bounds(photo, lr)
    assert any(f.startswith("guided") for f in r["failures"]) and r["alpha"] <= cvops.ALPHA_BOUND, r
