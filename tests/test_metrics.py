"""Metrics against values worked out by hand on tiny arrays (see the comments)."""
import math

import numpy as np
import pytest

from edgematting.evaluation import metrics as M


def A(rows):
    return np.asarray(rows, dtype=np.float64)


# -- IoU ---------------------------------------------------------------------------------
def test_iou_hand_example():
    pred = A([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    gt = A([[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    # intersection {(0,0),(1,0)} = 2; union {(0,0),(0,1),(1,0),(1,1)} = 4
    assert M.iou(pred, gt) == pytest.approx(2 / 4)


def test_iou_threshold_is_inclusive():
    gt = A([[1, 1], [0, 0]])
    assert M.iou(A([[0.5, 0.5], [0, 0]]), gt) == 1.0  # 0.5 >= 0.5 is foreground
    assert M.iou(A([[0.5, 0.49], [0, 0]]), gt) == pytest.approx(1 / 2)
    assert M.iou(A([[0.7, 0.7], [0, 0]]), gt, threshold=0.8) == 0.0


def test_iou_edge_cases():
    m = A([[0, 1, 1], [0, 1, 0], [0, 0, 0]])
    assert M.iou(m, m) == 1.0
    assert M.iou(np.zeros((3, 3)), np.zeros((3, 3))) == 1.0  # both empty
    assert M.iou(m, 1 - m) == 0.0  # disjoint
    assert M.iou(np.zeros((3, 3)), m) == 0.0


# -- boundary F --------------------------------------------------------------------------
def test_boundary_f_identical_is_one():
    m = np.zeros((8, 8))
    m[2:6, 3:7] = 1
    assert M.boundary_f(m, m) == 1.0
    assert M.boundary_f(np.zeros((8, 8)), np.zeros((8, 8))) == 1.0


def test_boundary_f_shift_beyond_and_within_tolerance():
    gt = np.zeros((8, 8))
    gt[:, :4] = 1  # boundary: column 3 (the image edge is not a boundary)
    pred = np.zeros((8, 8))
    pred[:, :6] = 1  # boundary: column 5, 2 px away
    assert M.boundary_f(pred, gt, tolerance_px=1) == 0.0
    assert M.boundary_f(pred, gt, tolerance_px=2) == 1.0
    assert M.boundary_f(pred, gt) < 1.0  # default tolerance on 8x8: ceil(0.008*11.3) = 1


def test_boundary_precision_recall_hand_example():
    gt = np.zeros((8, 8))
    gt[:, :4] = 1  # gt boundary: (r, 3), r = 0..7 -> 8 pixels
    pred = np.zeros((8, 8))
    pred[:4, :4] = 1
    pred[4:, :7] = 1
    # pred boundary: (0..3, 3), (4, 4), (4, 5), (4, 6), (5..7, 6) -> 10 pixels.
    # within 1 px of gt boundary: (0..3, 3) at 0, (4, 4) at 1 -> precision 5/10.
    # gt pixels within 1 px of pred boundary: (0..3, 3), (4, 3) [(4,4) at 1];
    # (5, 3) is sqrt(2) from (4, 4) -> recall 5/8.
    p, r, f = M.boundary_precision_recall(pred, gt, tolerance_px=1)
    assert p == pytest.approx(5 / 10)
    assert r == pytest.approx(5 / 8)
    assert f == pytest.approx(2 * 0.5 * 0.625 / (0.5 + 0.625))
    assert M.boundary_f(pred, gt, tolerance_px=1) == pytest.approx(f)


def test_boundary_f_one_side_empty():
    gt = np.zeros((6, 6))
    gt[1:4, 1:4] = 1
    assert M.boundary_f(np.zeros((6, 6)), gt) == 0.0
    assert M.boundary_f(gt, np.zeros((6, 6))) == 0.0


# -- SAD / MSE / MAD ---------------------------------------------------------------------
PRED = A([[0.2, 0.4], [0.6, 0.8]])
GT = A([[0.0, 1.0], [0.0, 1.0]])
# |diff| = 0.2, 0.6, 0.6, 0.2


def test_sad_mse_mad_whole_image():
    assert M.sad(PRED, GT) == pytest.approx((0.2 + 0.6 + 0.6 + 0.2) / 1000)
    assert M.mse(PRED, GT) == pytest.approx((0.04 + 0.36 + 0.36 + 0.04) / 4)
    assert M.mad(PRED, GT) == pytest.approx((0.2 + 0.6 + 0.6 + 0.2) / 4)


def test_sad_mse_mad_in_region():
    region = np.array([[True, True], [False, False]])
    assert M.sad(PRED, GT, region) == pytest.approx((0.2 + 0.6) / 1000)
    assert M.mse(PRED, GT, region) == pytest.approx((0.04 + 0.36) / 2)
    assert M.mad(PRED, GT, region) == pytest.approx((0.2 + 0.6) / 2)
    one = np.array([[True, False], [False, False]])
    assert M.mse(PRED, GT, one) == pytest.approx(0.04)
    empty = np.zeros((2, 2), bool)
    assert M.sad(PRED, GT, empty) == 0.0
    assert math.isnan(M.mse(PRED, GT, empty))
    assert math.isnan(M.mad(PRED, GT, empty))


def test_identical_gives_zero_errors():
    a = A([[0, 0.3, 1], [0.5, 1, 1], [0, 0.1, 0.9]])
    for f in (M.sad, M.mse, M.mad, M.grad, M.conn):
        assert f(a, a) == 0.0, f.__name__


def test_shape_mismatch_raises():
    with pytest.raises(ValueError):
        M.sad(np.zeros((2, 2)), np.zeros((2, 3)))
    # (H, W, 1) is accepted
    assert M.sad(np.zeros((2, 2, 1)), np.ones((2, 2))) == pytest.approx(4 / 1000)


# -- Grad --------------------------------------------------------------------------------
def _dim_kernel_response_to_unit_ramp(sigma=1.4):
    """gx of a ramp I = x with the DIM kernel, by explicit sums (gaussgradient.m):

    halfsize = ceil(sigma*sqrt(-2*log(sqrt(2*pi)*sigma*0.01))) = 4 for sigma 1.4;
    hx(i, j) = G(i) * dG(j) / ||hx||_F; convolution gives
    gx = sum_ij hx(i, j) * (x - j) = -sum_ij hx(i, j) * j for I = x.
    """
    half = 4
    g = [math.exp(-(u * u) / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi)) for u in range(-half, half + 1)]
    dg = [-u * gu / (sigma * sigma) for u, gu in zip(range(-half, half + 1), g)]
    norm = math.sqrt(sum(a * a for a in g) * sum(b * b for b in dg))
    total = 0.0
    for gi in g:
        for j, dgj in zip(range(-half, half + 1), dg):
            total += gi * dgj / norm * (0 - j)  # value at x - j, evaluated at x = 0
    return total


def test_grad_kernel_size():
    assert math.ceil(1.4 * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * 1.4 * 0.01))) == 4
    assert M.gauss_gradient_kernel(1.4).shape == (9, 9)


def test_grad_linear_ramp_vs_constant():
    # 12x12, ramp along x with slope 0.05; constant along y (so gy = 0 everywhere and
    # the replicated top/bottom edges change nothing). Columns 4..7 are >= 4 px (the
    # kernel half-size) from the left/right edges, so there |grad| = 0.05 * k exactly.
    x = np.arange(12, dtype=np.float64)
    ramp = np.tile(0.05 * x, (12, 1))
    const = np.full((12, 12), 0.3)  # constant: zero gradient
    k = _dim_kernel_response_to_unit_ramp()
    assert k > 0
    region = np.zeros((12, 12), bool)
    region[:, 4:8] = True  # 48 pixels
    expected = 48 * (0.05 * k) ** 2 / 1000
    assert M.grad(ramp, const, region) == pytest.approx(expected, rel=1e-9)
    assert M.grad(const, ramp, region) == pytest.approx(expected, rel=1e-9)
    # doubling the slope quadruples the error
    assert M.grad(2 * ramp, const, region) == pytest.approx(4 * expected, rel=1e-9)
    # a constant offset does not change the gradient
    assert M.grad(ramp + 0.2, ramp, region) == pytest.approx(0.0, abs=1e-15)


# -- Conn --------------------------------------------------------------------------------
def test_conn_hand_example():
    gt = A([[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    pred = A([[1, 0.6, 0], [1, 1, 0], [0, 0, 0.7]])
    # t = 0.1..0.6: intersection = the 2x2 block (omega). t = 0.7..1.0: {(0,0),(1,0),(1,1)}.
    # l: outside the block -> 0 (gone at t=0.1); (0,1) -> 0.6 (gone at 0.7); rest -> 1.
    # pred d: (2,2) 0.7 -> phi 0.3; all others d = 0 -> phi 1.
    # gt d: (0,1) 1 - 0.6 = 0.4 -> phi 0.6; all others phi 1.
    # |phi_p - phi_g|: (0,1) 0.4, (2,2) 0.7 -> 1.1 / 1000
    assert M.conn(pred, gt) == pytest.approx(1.1 / 1000)
    region = np.zeros((3, 3), bool)
    region[0, 1] = True
    assert M.conn(pred, gt, region) == pytest.approx(0.4 / 1000)


def test_conn_uses_largest_component_only():
    gt = A([[1, 1, 0, 1]])
    pred = A([[1, 1, 0, 0.9]])
    # the intersection has components {(0,0),(0,1)} and {(0,3)}: only the larger counts,
    # so (0,3) gets l = 0 already at t = 0.1. pred d = 0.9 -> phi 0.1; gt d = 1 -> phi 0.
    # error 0.1. (Were every component kept, l(0,3) = 0.9 and both phi would be 1.)
    assert M.conn(pred, gt) == pytest.approx(0.1 / 1000)


def test_conn_bad_step():
    with pytest.raises(ValueError):
        M.conn(np.zeros((2, 2)), np.zeros((2, 2)), step=0.3)


# -- unknown band ------------------------------------------------------------------------
def _square_gt():
    gt = np.zeros((8, 8))
    gt[2:6, 2:6] = 1
    return gt


def test_unknown_band_width_1():
    band = M.unknown_band(_square_gt(), width=1)
    # 3x3 dilation of the square (rows/cols 1..6, 36 px) minus its 3x3 erosion
    # (rows/cols 3..4, 4 px); the width-1 disk band adds nothing beyond that.
    expected = np.zeros((8, 8), bool)
    expected[1:7, 1:7] = True
    expected[3:5, 3:5] = False
    assert band.sum() == 32
    np.testing.assert_array_equal(band, expected)


def test_unknown_band_width_2():
    band = M.unknown_band(_square_gt(), width=2)
    # everything in rows/cols 1..6 (the square's centre is 2 px from the background)
    # plus the straight 2-px-away segments in row 0, row 7, col 0, col 7 (4 px each);
    # (0, 1) is sqrt(5) > 2 from the square.
    assert band.sum() == 36 + 16
    assert band[0, 2] and not band[0, 1] and band[1, 1] and band[3, 3]


def test_unknown_band_soft_pixels_and_empty():
    gt = np.zeros((5, 5))
    gt[2, 2] = 0.3  # soft pixel, below 0.5: only the 3x3 dilation of gt > 0
    assert M.unknown_band(gt, width=3).sum() == 9
    assert M.unknown_band(np.zeros((5, 5))).sum() == 0
    assert M.unknown_band(np.ones((5, 5))).sum() == 0  # image border is no contour


def test_default_band_width():
    assert M.default_band_width((64, 64)) == 3
    assert M.default_band_width((600, 800)) == 10  # 1% of a 1000-px diagonal


# -- evaluate_alpha ----------------------------------------------------------------------
def test_evaluate_alpha_keys_and_values():
    gt = _square_gt()
    pred = gt.copy()
    pred[2, 2] = 0.4  # one pixel wrong by 0.6, inside the band
    out = M.evaluate_alpha(pred, gt)
    assert set(M.METRIC_KEYS) <= set(out)
    assert out["sad"] == pytest.approx(0.6 / 1000)
    assert out["sad_unknown"] == pytest.approx(0.6 / 1000)
    assert out["mse"] == pytest.approx(0.36 / 64)
    assert out["mse_unknown"] == pytest.approx(0.36 / out["unknown_pixels"])
    assert out["iou"] == pytest.approx(15 / 16)
    assert out["grad"] == pytest.approx(M.grad(pred, gt))
    assert out["conn"] == pytest.approx(M.conn(pred, gt))
    perfect = M.evaluate_alpha(gt, gt)
    assert perfect["iou"] == 1.0 and perfect["boundary_f"] == 1.0
    assert out["unknown_pixels"] == 64  # the band covers the 8x8 image: nothing is away from the edge
    assert out["sad_away"] == 0.0 and math.isnan(out["mse_away"])  # as over any empty region
    assert all(perfect[k] == 0.0 for k in M.METRIC_KEYS if k not in M.HIGHER_IS_BETTER | M.UNRANKED | {"mse_away"})
    assert perfect["components_pred"] == perfect["components_true"] == 1


# -- near / away from the edge, stray regions (issue 26) -----------------------------------
def _disc(shape, cy, cx, r):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float64)


def test_haze_over_the_background_is_soft_error_away_from_the_edge():
    gt = _disc((60, 80), 30, 40, 15)
    pred = np.where(gt == 0, 0.1, gt)  # the truth plus a 0.1 haze over the background
    band = M.unknown_band(gt)
    hazed_away = np.count_nonzero((gt == 0) & ~band)
    out = M.evaluate_alpha(pred, gt)
    assert out["sad_away"] == pytest.approx(0.1 * hazed_away / 1000, rel=1e-12)
    assert out["sad_away_wrong"] == 0.0
    assert out["sad_away_soft"] == pytest.approx(out["sad_away"], rel=1e-12)
    assert out["mse_away"] == pytest.approx(0.01 * hazed_away / np.count_nonzero(~band), rel=1e-12)
    assert out["sad"] == pytest.approx(out["sad_unknown"] + out["sad_away"], rel=1e-12)
    # a haze is no region: one component each, nothing false or missed
    assert (out["components_pred"], out["components_true"]) == (1, 1)
    assert out["false_regions"] == out["missed_regions"] == 0
    assert out["false_region_area"] == out["missed_region_area"] == 0.0


def test_a_blob_away_from_the_person_is_a_false_region_and_wrong_error():
    gt = _disc((60, 80), 30, 25, 12)
    pred = gt.copy()
    pred[5:13, 60:70] = 0.9  # an 8x10 blob far from the person (and from the band)
    band = M.unknown_band(gt)
    assert not band[5:13, 60:70].any()
    out = M.evaluate_alpha(pred, gt)
    assert (out["components_pred"], out["components_true"]) == (2, 1)
    assert out["false_regions"] == 1 and out["false_region_pixels"] == 80
    assert out["false_region_area"] == pytest.approx(80 / (60 * 80))
    assert out["missed_regions"] == 0 and out["missed_region_pixels"] == 0
    assert out["sad_away_wrong"] == pytest.approx(80 * 0.9 / 1000, rel=1e-12)
    assert out["sad_away_soft"] == 0.0 and out["sad_unknown"] == 0.0
    # a blob that overlaps the person is part of it, not a false region
    pred[20:26, 30:45] = 1.0
    assert M.stray_regions(pred, gt)["false_regions"] == 1


def test_a_missed_second_person_is_a_missed_region():
    first, second = _disc((60, 80), 30, 20, 10), _disc((60, 80), 30, 60, 8)
    gt = np.maximum(first, second)
    out = M.stray_regions(first, gt)
    assert (out["components_pred"], out["components_true"]) == (1, 2)
    assert out["missed_regions"] == 1 and out["missed_region_pixels"] == int(second.sum())
    assert out["missed_region_area"] == pytest.approx(second.sum() / gt.size)
    assert out["false_regions"] == 0
    # 8-connected: two squares touching at a corner are one component
    corner = np.zeros((6, 6))
    corner[1:3, 1:3] = corner[3:5, 3:5] = 1
    assert M.stray_regions(corner, corner)["components_pred"] == 1


def _stray_whole_image(p, g):
    from scipy import ndimage

    def lone(a, b):
        labels, n = ndimage.label(a, structure=np.ones((3, 3), bool))
        hit = np.zeros(n + 1, bool)
        hit[labels[b]] = True
        size = np.bincount(labels.ravel(), minlength=n + 1)
        return n, int((~hit[1:]).sum()), int(size[1:][~hit[1:]].sum())

    pm, gm = p >= 0.5, g >= 0.5
    (n_p, n_f, px_f), (n_g, n_m, px_m) = lone(pm, gm), lone(gm, pm)
    return {"components_pred": n_p, "false_regions": n_f, "false_region_pixels": px_f,
            "components_true": n_g, "missed_regions": n_m, "missed_region_pixels": px_m}


@pytest.mark.parametrize("rows", [1, 2, 3, 7])
def test_stray_regions_in_strips_are_the_whole_image_ones(monkeypatch, rows):
    """Components cut by strip boundaries (straight, diagonal, U-shaped) are joined again."""
    rng = np.random.default_rng(rows)
    h, w = 23, 17
    cases = [((rng.random((h, w)) > q).astype(np.float32), (rng.random((h, w)) > 0.6).astype(np.float32))
             for q in (0.4, 0.5, 0.7)]
    u = np.zeros((h, w))
    u[2:20, 2:4] = u[2:20, 10:12] = u[18:20, 2:12] = 1  # a U: one component, two arms in early strips
    diag = np.eye(h, w)  # one diagonal line: joined only through corners
    cases += [(u, diag), (diag, u), (np.zeros((h, w)), u), (u, np.zeros((h, w)))]
    monkeypatch.setattr(M, "STRIP_PIXELS", rows * w)
    for p, g in cases:
        got = M.stray_regions(p, g)
        want = _stray_whole_image(p, g)
        assert {k: got[k] for k in want} == want
        assert got["false_region_area"] == want["false_region_pixels"] / p.size
    assert M.stray_regions(diag, diag)["components_pred"] == 1
    assert M.stray_regions(u, u)["components_pred"] == 1


def test_away_sums_in_strips_are_the_whole_image_ones(monkeypatch):
    rng = np.random.default_rng(5)
    gt = _disc((40, 30), 20, 15, 9)
    pred = np.clip(gt + rng.normal(0, 0.4, gt.shape), 0, 1)
    whole = M.evaluate_alpha(pred, gt)
    monkeypatch.setattr(M, "STRIP_PIXELS", 2 * 30)
    strips = M.evaluate_alpha(pred, gt)
    band = M.unknown_band(gt)
    err = np.abs(pred - gt)
    wrong = ~band & ((pred >= 0.5) != (gt >= 0.5))
    assert whole["sad_away_wrong"] > 0 and whole["sad_away_soft"] > 0
    assert whole["sad_away_wrong"] == pytest.approx(err[wrong].sum() / 1000, rel=1e-12)
    assert whole["sad_away_soft"] == pytest.approx(err[~band & ~wrong].sum() / 1000, rel=1e-12)
    for k in M.METRIC_KEYS:
        assert strips[k] == pytest.approx(whole[k], rel=1e-12, abs=1e-15), k
