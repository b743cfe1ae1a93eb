"""The OpenCV path of the photo pipeline (`edgematting.imageops_cv`) stays within its stated
bounds of the definition (`edgematting.imageops`) on random and on edge-case inputs, and the
check that says so fails when the path is wrong (a shifted resize, swapped weights).

The bounds (module docstring of `imageops_cv`): model input <= 1/4 pixel level, alpha at photo
size <= 1/255, composite, 8-bit alpha and cut-out alpha <= 1 level, the composite equal bit
for bit to the definition's for the same alpha, strips equal to the whole frame."""
from __future__ import annotations

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
            r = cvops.measure_bounds(photo, alpha_lr)
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
    other backgrounds run the exact path."""
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
    for bg in [(1.5, 2.25, 3), "blur", rng.integers(0, 256, (9, 7, 3), dtype=np.uint8)]:
        np.testing.assert_array_equal(cvops.composite(rgb, a, bg), imageops.composite(rgb, a, bg))
    fg = rng.integers(0, 256, rgb.shape, dtype=np.uint8)
    np.testing.assert_array_equal(cvops.composite(rgb, a, (0, 255, 0), foreground=fg),
                                  imageops.composite(rgb, a, (0, 255, 0), foreground=fg))


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
    assert "model_pixels" in fails and "alpha" in fails
    monkeypatch.setattr(cvops, "_resize", resize)
    blend = cvops._blend_chunk

    def swapped(a4, f4, bg4, out):
        blend(np.float32(1.0) - a4, f4, bg4, out)

    monkeypatch.setattr(cvops, "_blend_chunk", swapped)
    fails = " ".join(cvops.measure_bounds(photo, lr)["failures"])
    assert "composite" in fails


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
    monkeypatch.setenv(cvops.ENV, "exact")
    assert runners.open(lambda x: x, spec=spec).ops.name == "exact"
    with pytest.raises(InputError, match="opencv or exact"):
        runners.open(lambda x: x, spec=spec, pipeline="fastest")
    monkeypatch.setenv(cvops.ENV, "gpu")
    with pytest.raises(InputError, match="EDGEMATTING_PIPELINE"):
        cvops.get_ops()
