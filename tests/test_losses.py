"""Losses and metrics on small hand-made tensors."""
import numpy as np
import pytest

from edgematting.errors import InputError
from edgematting.training import losses as L

# 6x6 mask: a 4x4 person square at rows/cols 1..4.
MASK6 = np.zeros((6, 6), np.float32)
MASK6[1:5, 1:5] = 1.0

# Hand-computed 3x3 morphological gradient (dilation - erosion) of MASK6:
# the dilation covers the whole 6x6 image; the erosion keeps only the 2x2 centre
# (the only pixels whose whole 3x3 neighbourhood is inside the square).
BAND3 = np.ones((6, 6), np.float32)
BAND3[2:4, 2:4] = 0.0
# With 5x5 and 9x9 boxes no pixel survives erosion and all are reached by dilation,
# so those bands cover the whole 6x6 image: weight = band3 + 1 + 1.
WEIGHTS_3_5_9 = BAND3 + 2.0


def _y_true(alpha, fg=None, bg=None):
    """Stack (B,H,W) alpha with (B,H,W,3) fg/bg into (B,H,W,7)."""
    alpha = np.asarray(alpha, np.float32)
    if alpha.ndim == 2:
        alpha = alpha[None]
    b, h, w = alpha.shape
    rng = np.random.default_rng(0)
    fg = rng.uniform(size=(b, h, w, 3)).astype(np.float32) if fg is None else fg
    bg = rng.uniform(size=(b, h, w, 3)).astype(np.float32) if bg is None else bg
    return np.concatenate([alpha[..., None], fg, bg], axis=-1).astype(np.float32)


def _np(t):
    return np.asarray(t)


def test_edge_band_matches_hand_computed_band():
    band = _np(L.edge_band(MASK6[None, :, :, None], 3))[0, :, :, 0]
    np.testing.assert_array_equal(band, BAND3)


def test_boundary_weights_larger_on_edge_than_inside():
    w = _np(L.boundary_weights(MASK6[None, :, :, None], (3, 5, 9)))[0, :, :, 0]
    np.testing.assert_array_equal(w, WEIGHTS_3_5_9)
    edge = w[1, 1:5]  # top edge row of the square
    inside = w[2:4, 2:4]
    assert edge.min() > inside.max()


def test_boundary_loss_is_bce_weighted_by_band():
    y = _y_true(MASK6)
    pred = np.full((1, 6, 6, 1), 0.7, np.float32)
    pred[0, 2:4, 2:4, 0] = 0.2  # wrong in the interior only
    p = pred[0, :, :, 0]
    bce = -(MASK6 * np.log(p) + (1 - MASK6) * np.log(1 - p))
    expected = (WEIGHTS_3_5_9 * bce).sum() / WEIGHTS_3_5_9.sum()
    got = _np(L.boundary_loss(y, pred))
    assert got.shape == (1,)
    np.testing.assert_allclose(got[0], expected, rtol=1e-5)
    # The interior error is down-weighted relative to plain BCE (weight 2 vs 3 on edges).
    assert got[0] < (WEIGHTS_3_5_9.max() * bce).sum() / (WEIGHTS_3_5_9.max() * 36)


def test_boundary_loss_zero_without_edges():
    y = _y_true(np.ones((6, 6), np.float32))
    pred = np.full((1, 6, 6, 1), 0.3, np.float32)
    assert float(_np(L.boundary_loss(y, pred))[0]) == 0.0


@pytest.mark.parametrize("fn", [L.bce_loss, L.dice_loss, L.boundary_loss])
def test_segmentation_terms_near_zero_for_perfect_prediction(fn):
    y = _y_true(np.stack([MASK6, 1 - MASK6]))
    perfect = y[..., 0:1]
    wrong = 1.0 - perfect
    good = _np(fn(y, perfect))
    bad = _np(fn(y, wrong))
    assert good.shape == (2,)
    assert np.all(good < 1e-3), good
    assert np.all(bad > 0.5), bad


def test_dice_hand_value():
    y = _y_true(MASK6)
    pred = np.zeros((1, 6, 6, 1), np.float32)
    pred[0, 1:5, 1:3, 0] = 1.0  # half of the square
    # dice = (2*8 + 1) / (16 + 8 + 1)
    np.testing.assert_allclose(_np(L.dice_loss(y, pred))[0], 1 - 17 / 25, rtol=1e-6)


def test_segmentation_loss_combines_weighted_terms():
    y = _y_true(MASK6)
    pred = np.full((1, 6, 6, 1), 0.6, np.float32)
    w = L.SegmentationLossWeights(bce=2.0, dice=0.5, boundary=3.0)
    total = _np(L.segmentation_loss_fn(w)(y, pred))
    parts = (
        2.0 * _np(L.bce_loss(y, pred))
        + 0.5 * _np(L.dice_loss(y, pred))
        + 3.0 * _np(L.boundary_loss(y, pred))
    )
    np.testing.assert_allclose(total, parts, rtol=1e-6)
    assert _np(L.segmentation_loss_fn()(y, y[..., 0:1]))[0] < 1e-3


def _soft_alpha():
    a = np.zeros((6, 6), np.float32)
    a[1:5, 1:5] = 1.0
    a[1:5, 4] = 0.5  # a soft edge column
    return a


def test_matting_terms_zero_for_perfect_prediction():
    y = _y_true(_soft_alpha())
    perfect = y[..., 0:1]
    for fn in (L.alpha_l1_loss, L.composition_loss, L.gradient_loss):
        assert float(_np(fn(y, perfect))[0]) < 1e-6, fn.__name__
    assert float(_np(L.matting_loss_fn()(y, perfect))[0]) < 1e-6


def test_alpha_l1_hand_value():
    y = _y_true(_soft_alpha())
    pred = y[..., 0:1] + 0.0
    pred[0, 0, 0, 0] = 0.9  # one pixel off by 0.9
    np.testing.assert_allclose(_np(L.alpha_l1_loss(y, pred))[0], 0.9 / 36, rtol=1e-6)


def test_composition_zero_when_fg_equals_bg_positive_otherwise():
    alpha = _soft_alpha()
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(1, 6, 6, 3)).astype(np.float32)
    wrong = np.full((1, 6, 6, 1), 0.25, np.float32)
    # Folder data without fg/bg: the pipeline sets F = B = image.
    unknown = _y_true(alpha, fg=image, bg=image)
    assert float(_np(L.composition_loss(unknown, wrong))[0]) < 1e-7
    known = _y_true(alpha, fg=np.ones_like(image), bg=np.zeros_like(image))
    # With F=1, B=0 the composite is alpha itself: the term equals mean |a - a_pred| * 3/3.
    expected = np.abs(alpha - 0.25).mean()
    np.testing.assert_allclose(_np(L.composition_loss(known, wrong))[0], expected, rtol=1e-6)
    assert expected > 0.1


def test_gradient_loss_sees_edges_not_offsets():
    y = _y_true(_soft_alpha())
    a = y[..., 0:1]
    # A uniform offset leaves Sobel gradients unchanged (reflect padding), a blur does not.
    assert float(_np(L.gradient_loss(y, a + 0.05))[0]) < 1e-6
    flat = np.full_like(a, a.mean())
    assert float(_np(L.gradient_loss(y, flat))[0]) > 0.1


def test_losses_differentiable():
    from edgematting._tf import tf

    t = tf()
    y = _y_true(np.stack([MASK6, _soft_alpha()]))
    logits = t.Variable(np.zeros((2, 6, 6, 1), np.float32))
    for fn in (L.segmentation_loss_fn(), L.matting_loss_fn()):
        with t.GradientTape() as tape:
            loss = t.reduce_mean(fn(y, t.sigmoid(logits)))
        g = tape.gradient(loss, logits)
        assert g is not None and np.isfinite(g.numpy()).all() and np.abs(g.numpy()).sum() > 0


def test_metrics_iou_and_mae():
    ms = {m.name: m for m in L.make_metrics("fast-scnn")}
    y = _y_true(MASK6)
    pred = np.zeros((1, 6, 6, 1), np.float32)
    pred[0, 1:5, 1:3, 0] = 0.9  # half the square, above threshold
    pred[0, 0, 0, 0] = 0.4  # below threshold: background for IoU
    ms["iou"].update_state(y, pred)
    ms["mae"].update_state(y, pred)
    np.testing.assert_allclose(float(ms["iou"].result()), 8 / 16, rtol=1e-6)
    expected_mae = (8 * 0.1 + 8 * 1.0 + 0.4) / 36
    np.testing.assert_allclose(float(ms["mae"].result()), expected_mae, rtol=1e-5)
    sad = L.make_metrics("mattingnet")[1]
    assert sad.name == "sad"
    sad.update_state(y, pred)
    np.testing.assert_allclose(float(sad.result()), expected_mae * 36 / 1000, rtol=1e-5)


def test_bad_weights_and_architecture_raise_input_error():
    with pytest.raises(InputError):
        L.SegmentationLossWeights(bce=-1)
    with pytest.raises(InputError):
        L.SegmentationLossWeights(boundary_kernels=(4,))
    with pytest.raises(InputError):
        L.loss_for("unet")
    assert callable(L.loss_for("mattingnet", {"gradient": 0.0}))


def test_unknown_band_and_band_mae_by_hand():
    """A hard 6x6 square in a 12x12 image: the band is the ring of k=3 around its edge
    (dilation - erosion), plus any soft pixel; band MAE averages the error there only."""
    alpha = np.zeros((12, 12), np.float32)
    alpha[3:9, 3:9] = 1.0
    alpha[0, 11] = 0.3  # one soft pixel far from the square (below 0.5: no contour): in the band too
    band = L.unknown_band(alpha[None, :, :, None], kernel_size=3).numpy()[0, :, :, 0]
    ring = np.zeros((12, 12), bool)
    ring[2:10, 2:10] = True
    ring[4:8, 4:8] = False  # dilated 8x8 minus eroded 4x4
    want = ring.copy()
    want[0, 11] = True
    np.testing.assert_array_equal(band.astype(bool), want)

    pred = alpha.copy()
    pred[3, 3] = 0.0  # an error on the edge (in the band)
    pred[5, 5] = 0.25  # an interior error (inside the default 7-px band of this small square)
    m = {x.name: x for x in L.make_metrics("mattingnet")}["band_mae"]
    y = _y_true(alpha)
    m.update_state(y, pred[None, :, :, None])
    b7 = L.unknown_band(alpha[None, :, :, None]).numpy()[0, :, :, 0]
    err = np.abs(pred - alpha)
    np.testing.assert_allclose(float(m.result()), (err * b7).sum() / b7.sum(), rtol=1e-6)
    # the loss term is the same average, per image
    np.testing.assert_allclose(float(L.band_l1_loss(y, pred[None, :, :, None])[0]), (err * b7).sum() / b7.sum(),
                               rtol=1e-6)
    # an error only in the interior, outside the band, costs the band term nothing
    inner = np.ones((16, 16), np.float32)
    inner[:, :4] = 0.0
    p2 = inner.copy()
    p2[8, 12] = 0.5  # 8 px from the edge at column 4
    assert float(L.band_l1_loss(_y_true(inner), p2[None, :, :, None])[0]) == 0.0
    assert float(L.alpha_l1_loss(_y_true(inner), p2[None, :, :, None])[0]) > 0.0


# -- boundary F in the graph and MattingNet's edge criterion ---------------------------------
def _blob_masks(rng, n, h, w):
    """Pairs (gt, pred) of person-like masks: a disc, and the disc moved, shrunk, grown or
    speckled, at sizes whose default tolerance differs (1..3 px); a few empty cases."""
    yy, xx = np.mgrid[:h, :w]
    pairs = []
    for i in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7) * h, rng.uniform(0.3, 0.7) * w, rng.uniform(0.15, 0.35) * min(h, w)
        g = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r).astype(np.float32)
        dy, dx, dr = rng.integers(-4, 5), rng.integers(-4, 5), rng.uniform(-3, 3)
        p = ((yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 < (r + dr) ** 2).astype(np.float32)
        p = np.where(rng.uniform(size=(h, w)) < 0.02, 1.0 - p, p)  # speckle: stray boundary pixels
        pairs.append((g, p * rng.uniform(0.5, 1.0)))  # soft values: thresholded at 0.5
    z = np.zeros((h, w), np.float32)
    pairs += [(z, z), (z, pairs[0][1]), (pairs[0][0], z)]  # both empty -> 1; one empty -> 0
    return pairs


@pytest.mark.parametrize("h,w", [(40, 56), (128, 96), (256, 256)])
def test_boundary_f_in_the_graph_equals_evaluations(h, w):
    """The Keras metric checkpoints are picked by is the DAVIS boundary F `edgematting
    evaluate` reports: same boundary, same tolerance disc, same empty cases."""
    from edgematting.evaluation import metrics as M

    pairs = _blob_masks(np.random.default_rng(h), 12, h, w)
    gt = np.stack([g for g, _ in pairs])[..., None]
    pred = np.stack([p for _, p in pairs])[..., None]
    got = _np(L.boundary_f_per_image(gt, pred))
    want = np.array([M.boundary_f(p, g) for g, p in pairs])
    assert 0.0 < want[:12].min() < 0.99 and want[:12].max() < 1.0  # non-trivial cases, not all 0 or 1
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert tuple(want[12:]) == (1.0, 0.0, 0.0)

    m = {x.name: x for x in L.make_metrics("mattingnet")}["boundary_f"]
    m.update_state(_y_true(gt[:6, ..., 0]), pred[:6])  # accumulated over batches, per image
    m.update_state(_y_true(gt[6:, ..., 0]), pred[6:])
    np.testing.assert_allclose(float(m.result()), want.mean(), atol=1e-6)


def test_edge_score_is_boundary_f_times_band_accuracy():
    pairs = _blob_masks(np.random.default_rng(3), 4, 64, 64)
    gt = np.stack([g for g, _ in pairs[:4]])
    pred = np.stack([p for _, p in pairs[:4]])[..., None]
    ms = {x.name: x for x in L.make_metrics("mattingnet")}
    for name in ("boundary_f", "band_mae", "edge_score"):
        ms[name].update_state(_y_true(gt), pred)
    f, band, score = (float(ms[n].result()) for n in ("boundary_f", "band_mae", "edge_score"))
    assert 0 < band < 1 and 0 < f < 1
    np.testing.assert_allclose(score, f * (1.0 - band), rtol=1e-6)
    ms["edge_score"].reset_state()
    ms["edge_score"].update_state(_y_true(gt), gt[..., None])
    assert float(ms["edge_score"].result()) == pytest.approx(1.0)  # exact matte: F 1, band error 0


def test_matting_loss_corrects_a_confidently_wrong_region():
    """A pixel predicted 0.999 where the matte is 0: the L1 terms' gradient through the
    sigmoid is ~p(1-p) = 0.001 of BCE's (p - a), so without the BCE terms a mask wrong by a
    whole region is unlearned slowly. The BCE terms keep the soft optimum (p = alpha)."""
    from edgematting._tf import tf

    t = tf()
    alpha = np.zeros((16, 16), np.float32)
    alpha[:, 8:] = 1.0
    alpha[:, 7] = 0.4  # a soft column at the edge
    y = _y_true(alpha)

    def grad_at(weights, logits):
        z = t.Variable(logits)
        with t.GradientTape() as tape:
            loss = t.reduce_sum(L.matting_loss_fn(weights)(y, t.sigmoid(z)))
        return tape.gradient(loss, z).numpy()[0, :, :, 0]

    wrong = np.where(alpha[None, :, :, None] > 0.5, 7.0, -7.0).astype(np.float32)
    wrong[0, 2, 2, 0] = 7.0  # confidently person in the background, far from the edge
    l1_only = grad_at(L.MattingLossWeights(bce=0.0, boundary=0.0), wrong)[2, 2]
    full = grad_at(L.MattingLossWeights(), wrong)[2, 2]
    assert full > 100 * l1_only > 0

    # at the exact soft matte the BCE terms are at their minimum: zero gradient from them
    exact = np.log(np.clip(alpha, 1e-6, 1 - 1e-6) / np.clip(1 - alpha, 1e-6, 1))[None, :, :, None].astype(np.float32)
    g = grad_at(L.MattingLossWeights(alpha=0, composition=0, gradient=0, band=0), exact)
    assert np.abs(g).max() < 1e-4
    with pytest.raises(InputError, match="boundary_kernels"):
        L.MattingLossWeights(boundary_kernels=(2,))


def test_loss_weight_flag_reaches_the_loss(tmp_path, capsys):
    """`train --loss-weight TERM=W` sets one term's weight; unknown terms and bad values are
    one-line errors (exit 2) naming the terms."""
    from edgematting.cli import build_parser, main
    from edgematting.cli.cmd_train import config_from_args

    base = ["train", "--model", "mattingnet", "--out", str(tmp_path / "r"), "--epochs", "1"]
    args = build_parser().parse_args(base + ["--loss-weight", "bce=0", "--loss-weight", "boundary_kernels=3,5"])
    cfg = config_from_args(args)
    assert cfg.loss_weights == {"bce": 0, "boundary_kernels": "3,5"}
    y = _y_true(np.stack([MASK6, _soft_alpha()]))
    pred = np.full((2, 6, 6, 1), 0.3, np.float32)
    w = L.MattingLossWeights(bce=0, boundary_kernels=(3, 5))
    want = (L.alpha_l1_loss(y, pred) + L.composition_loss(y, pred) + L.gradient_loss(y, pred) + L.band_l1_loss(y, pred)
            + L.boundary_loss(y, pred, (3, 5)) - L.boundary_loss(y, y[..., :1], (3, 5)))
    np.testing.assert_allclose(_np(L.loss_for("mattingnet", cfg.loss_weights)(y, pred)), _np(want), rtol=1e-5)
    assert w.boundary_kernels == (3, 5)
    for bad, msg in (("dice=1", "mattingnet has no loss term 'dice'. Its terms: alpha, "),
                     ("bce=abc", "must be a number"), ("bce=-1", "must be >= 0"), ("bce", "use KEY=VALUE")):
        assert main(base + ["--loss-weight", bad]) == 2
        err = capsys.readouterr().err
        assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r").exists()  # nothing written for a bad flag


def test_deep_supervision_adds_the_coarse_channels_loss_and_metrics_read_channel_0():
    """A [alpha, coarse] prediction costs loss(alpha) + coarse x loss(coarse); the metrics
    judge channel 0 only, so logs and the best checkpoint mean the exported output."""
    y = _y_true(np.stack([MASK6, _soft_alpha()]))
    rng = np.random.default_rng(3)
    main = rng.uniform(0.05, 0.95, (2, 6, 6, 1)).astype(np.float32)
    coarse = rng.uniform(0.05, 0.95, (2, 6, 6, 1)).astype(np.float32)
    both = np.concatenate([main, coarse], -1)
    one = L.loss_for("mattingnet", {"coarse_hard": 0.0})
    assert L.MattingLossWeights().coarse == 1.0  # on by default
    np.testing.assert_allclose(_np(one(y, both)), _np(one(y, main)) + _np(one(y, coarse)), rtol=1e-5)
    want = _np(one(y, main)) + 0.5 * _np(one(y, coarse))
    np.testing.assert_allclose(_np(L.loss_for("mattingnet", {"coarse": 0.5, "coarse_hard": 0.0})(y, both)), want,
                               rtol=1e-5)
    np.testing.assert_allclose(_np(L.loss_for("mattingnet", {"coarse": 0})(y, both)), _np(one(y, main)), rtol=1e-6)
    assert L.MattingLossWeights().coarse_hard == 1.0 and L.MattingLossWeights().hard == 0.0  # OHEM: coarse only
    assert _np(one(y, coarse)).mean() != pytest.approx(_np(one(y, main)).mean())  # the two differ
    for name in ("iou", "mae", "band_mae", "boundary_f", "edge_score"):
        a, b = (L._metric_classes()[name]() for _ in range(2))
        a.update_state(y, both)
        b.update_state(y, main)
        assert float(a.result()) == pytest.approx(float(b.result()), abs=1e-6), name


def test_deeply_supervised_training_model_shares_layers_and_keeps_the_model_single_output():
    from edgematting._tf import keras
    from edgematting.models import architecture_config, build_model
    from edgematting.models.registry import get_architecture
    from edgematting.training.loop import deeply_supervised

    spec = get_architecture("mattingnet")
    model = build_model("mattingnet", **architecture_config("mattingnet", (32, 32), 0.25))
    assert deeply_supervised(model, spec, {"coarse": 0.0}) is model
    assert deeply_supervised(model, get_architecture("fast-scnn"), {"coarse": 1.0}) is model
    fit = deeply_supervised(model, spec, {"coarse": 1.0})
    assert len(fit.weights) == len(model.weights) and not fit.get_layer("coarse_alpha").weights
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    out = fit.predict(x, verbose=0)
    coarse_logits = keras().Model(model.input, model.get_layer(spec.coarse_output).output).predict(x, verbose=0)
    assert out.shape == (2, 32, 32, 2)
    np.testing.assert_allclose(out[..., :1], model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(out[..., 1:], 1 / (1 + np.exp(-coarse_logits)), atol=1e-5)


def test_hard_term_averages_the_hardest_pixels_and_amplifies_a_small_wrong_region():
    """OHEM: `hardest_mean` is the mean of each image's top HARD_FRACTION pixel losses; a
    wrong 2x2 patch (1.6% of a 16x16 image) gets ~1/HARD_FRACTION of the whole-image BCE's
    gradient from the `hard` term, and the term is 0 for the exact matte."""
    from edgematting._tf import tf

    t = tf()
    rng = np.random.default_rng(5)
    x = rng.uniform(size=(3, 16, 16, 1)).astype(np.float32)
    k = int(np.ceil(L.HARD_FRACTION * 256))
    want = np.sort(x.reshape(3, -1), axis=1)[:, -k:].mean(axis=1)
    np.testing.assert_allclose(_np(L.hardest_mean(x)), want, rtol=1e-6)
    np.testing.assert_allclose(_np(L.hardest_mean(x, 1.0)), x.reshape(3, -1).mean(1), rtol=1e-6)

    alpha = np.zeros((16, 16), np.float32)
    alpha[:, 8:] = 1.0
    y = _y_true(alpha)
    logits = np.where(alpha[None, :, :, None] > 0.5, 4.0, -4.0).astype(np.float32)
    logits[0, 2:4, 2:4, 0] = 4.0  # a confidently wrong patch in the background

    def grad_at(weights):
        z = t.Variable(logits)
        with t.GradientTape() as tape:
            loss = t.reduce_sum(L.matting_loss_fn(weights)(y, t.sigmoid(z)))
        return tape.gradient(loss, z).numpy()[0, 2, 2, 0]

    off = dict(alpha=0, composition=0, gradient=0, band=0, boundary=0, coarse=0)
    g_bce = grad_at(L.MattingLossWeights(bce=1.0, hard=0.0, **off))
    g_hard = grad_at(L.MattingLossWeights(bce=0.0, hard=1.0, **off))
    assert g_hard == pytest.approx(g_bce * 256 / k, rel=1e-4)
    assert g_bce > 0
    pred = np.full((1, 16, 16, 1), 0.3, np.float32)
    with_hard = L.loss_for("mattingnet", {"hard": 2.0})(y, pred)
    without = L.loss_for("mattingnet", {"hard": 0.0})(y, pred)
    excess = L._pixel_bce(y[..., :1], pred) - L._pixel_bce(y[..., :1], y[..., :1])
    np.testing.assert_allclose(_np(with_hard), _np(without) + 2.0 * _np(L.hardest_mean(excess)), rtol=1e-5)
    assert _np(L.loss_for("mattingnet", {"hard": 1.0})(y, y[..., :1])) == pytest.approx(0.0, abs=1e-5)
    # coarse_hard: the same term on the coarse channel of a deeply supervised prediction only
    coarse = np.full((1, 16, 16, 1), 0.6, np.float32)
    both = np.concatenate([pred, coarse], -1)
    base = {"hard": 0.0, "coarse_hard": 0.0}
    c_excess = L._pixel_bce(y[..., :1], coarse) - L._pixel_bce(y[..., :1], y[..., :1])
    np.testing.assert_allclose(_np(L.loss_for("mattingnet", {**base, "coarse_hard": 3.0})(y, both)),
                               _np(L.loss_for("mattingnet", base)(y, both)) + 3.0 * _np(L.hardest_mean(c_excess)),
                               rtol=1e-5)
    np.testing.assert_allclose(_np(L.loss_for("mattingnet", {**base, "hard": 3.0})(y, both)),
                               _np(L.loss_for("mattingnet", base)(y, both)) + 3.0 * _np(L.hardest_mean(excess)),
                               rtol=1e-5)
    # Fast-SCNN's segmentation loss has the term too (plain BCE: its targets are masks)
    seg = L.loss_for("fast-scnn", {"hard": 2.0})(y, pred) - L.loss_for("fast-scnn", {"hard": 0.0})(y, pred)
    np.testing.assert_allclose(_np(seg), 2.0 * _np(L.hardest_mean(L._pixel_bce(y[..., :1], pred))), rtol=1e-5)


def test_loss_description_names_the_ohem_terms_that_are_on():
    """model.json's training.loss (`describe_loss`) names `hard` and `coarse_hard` with their
    weights whenever they act, and leaves them out when their weight is 0 (or, for
    `coarse_hard`, when there is no deep supervision for it to act on)."""
    from edgematting.models.registry import get_architecture

    seg, mat = (get_architecture(a).loss_description for a in ("fast-scnn", "mattingnet"))
    assert L.describe_loss("fast-scnn") == seg  # hard is 0 by default
    text = L.describe_loss("fast-scnn", {"hard": 0.5})
    assert text.startswith(seg) and "OHEM" in text and "hard=0.5" in text
    assert L.describe_loss("fast-scnn", L.SegmentationLossWeights(hard=2)).endswith("hard=2 on the output)")

    text = L.describe_loss("mattingnet")  # coarse_hard is 1 by default
    assert text.startswith(mat) and "OHEM" in text and "coarse_hard=1" in text and "hard=1 on the output" not in text
    text = L.describe_loss("mattingnet", {"hard": 0.25, "coarse_hard": 3})
    assert "hard=0.25 on the output" in text and "coarse_hard=3" in text
    assert L.describe_loss("mattingnet", {"coarse_hard": 0}) == mat
    assert L.describe_loss("mattingnet", {"coarse": 0}) == mat  # no coarse prediction is trained


# -- the fast morphology and Sobel of the loss: the same values as TensorFlow's ops ----------
@pytest.mark.parametrize("k", [1, 3, 5, 7, 9])
def test_box_max_is_max_pooling_bit_for_bit(k):
    """`_tf.box_max` (shifted maxima) replaced stride-1 max_pool2d, 40x slower on a CPU: the
    same values for soft and binary masks, odd sizes, several channels, windows past the edge."""
    from edgematting._tf import box_max, box_min, tf

    T = tf()
    rng = np.random.default_rng(k)
    for shape in [(2, 17, 11, 1), (1, 5, 3, 2), (3, 32, 32, 1)]:
        for x in (rng.normal(size=shape), rng.uniform(size=shape) > 0.5):
            x = T.constant(np.asarray(x, np.float32))
            want = T.nn.max_pool2d(x, k, 1, "SAME").numpy()
            np.testing.assert_array_equal(box_max(x, k).numpy(), want)
            np.testing.assert_array_equal(box_min(x, k).numpy(), -T.nn.max_pool2d(-x, k, 1, "SAME").numpy())
    with pytest.raises(ValueError, match="odd"):
        box_max(x, 4)


def test_sobel_gradients_are_tf_sobel_edges():
    from edgematting._tf import tf

    T = tf()
    rng = np.random.default_rng(3)
    for shape in [(2, 31, 17, 1), (1, 4, 5, 3)]:
        x = T.constant(rng.uniform(size=shape).astype(np.float32))
        got, want = L.sobel_gradients(x).numpy(), T.image.sobel_edges(x).numpy()
        assert got.shape == want.shape == shape + (2,)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
        assert np.abs(want).max() > 0.5  # not two zero maps
