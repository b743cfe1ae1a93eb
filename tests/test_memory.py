"""Photos of any size within a memory budget: the strip path of predict / evaluate.

The photo-size stages (alpha upsampling, guided filter, refinement, foreground colours,
compositing, the cut-out, decoding, PNG writing) run a strip of rows at a time. These tests
make the strips tiny (a few rows) so that a small photo goes through many of them, and
check that every file written is byte for byte the one the whole-frame functions give.
Peak memory and speed per megapixel of 12-108 MP photos belong to the benchmark
(``python -m edgematting.bench.memory``), not to timed tests; one small subprocess check
here bounds the memory of a 24 MP photo.
"""
import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting import imageops
from edgematting import imageops_fast as fast
from edgematting import imageops_cv as cvops
from edgematting import refine as R
from edgematting.modelio import ModelSpec

H, W = 75, 58  # > the tiny strips below: many strips
MODEL = (16, 16)


@pytest.fixture(scope="module")
def portrait():
    from edgematting.data.synthetic import SyntheticPortraits

    return SyntheticPortraits(size=(H, W), seed=3).sample(0)


@pytest.fixture()
def tiny_strips(monkeypatch):
    """Strips of 2 rows, sub-strips of the foreground's full-resolution level of 40
    partial pixels, decoding strips of 3 rows, metrics strips of 2 rows."""
    from edgematting.data import io as data_io
    from edgematting.evaluation import metrics

    monkeypatch.setattr(fast, "STRIP_PIXELS", 2 * W)
    monkeypatch.setattr(R, "SPARSE_PIXELS", 40)
    monkeypatch.setattr(data_io, "STRIP_PIXELS", 3 * W)
    monkeypatch.setattr(metrics, "STRIP_PIXELS", 2 * W)


def _runner(portrait, unsure=False):
    """A callable model: the portrait's matte at model size (a confident model's alpha with
    soft edges), or ~0.5 everywhere (an untrained model's: every pixel partial)."""
    matte = imageops.resize_bilinear(portrait["alpha"], *MODEL)

    def fn(x):
        if unsure:
            return np.full(x.shape[:3] + (1,), 0.5, np.float32) + \
                np.linspace(0, 0.01, MODEL[0] * MODEL[1], dtype=np.float32).reshape(1, *MODEL, 1)
        return np.repeat(matte[None, :, :, None], len(x), axis=0)

    return fn, ModelSpec(architecture="mattingnet", config={}, input_size=MODEL)


def _whole_frame(fn, spec, photo_path, out_dir, output, background, guided, refine):
    """Today's photo loop on the whole frame: alpha at photo size (`predict_alphas`), then
    `refine.apply`, `render`, `write_pil_png` (the photo fits one default strip)."""
    from edgematting.data.io import read_image, write_pil_png
    from edgematting.predict import SUFFIX, parse_background, predict_alphas, render

    rgb = read_image(photo_path)
    (a,) = predict_alphas(fn, spec, [rgb], guided)
    target = Path(out_dir) / f"{Path(photo_path).stem}{SUFFIX[output]}.png"
    fg = None
    if refine is not None:
        a, fg = R.apply(rgb, a, refine, output, target.with_name(Path(photo_path).stem))
    bg = parse_background(background) if output == "composite" else None
    write_pil_png(target, render(output, rgb, a, bg, foreground=fg))


CASES = [
    ("rgba", None, None, None),
    ("rgba", None, "guided", R.RefineConfig()),  # the CLI's default: foreground estimation
    ("rgba", None, "guided", R.RefineConfig(refine="trimap", save_trimap=True)),
    ("rgba", None, None, R.RefineConfig(refine="trimap", max_side=40)),  # solved downscaled
    ("rgba", None, "guided", R.RefineConfig(max_side=32)),  # full-resolution sparse level
    ("alpha", None, "guided", R.RefineConfig(refine="trimap", max_side=40, save_trimap=True)),
    ("alpha", None, None, R.RefineConfig(foreground=False, save_trimap=True)),
    ("composite", "#204060", "guided", R.RefineConfig(max_side=32)),
    ("composite", "blur", None, None),
    ("composite", "blur", "guided", R.RefineConfig(refine="trimap", max_side=40)),
    ("composite", "bg", None, None),
]


@pytest.mark.parametrize("pipeline", ["opencv", "exact"])
@pytest.mark.parametrize("unsure", [False, True])
@pytest.mark.parametrize("output,background,upsample,refine", CASES)
def test_strips_write_the_whole_frame_files(portrait, tmp_path, monkeypatch, unsure, output, background, upsample,
                                            refine, pipeline):
    monkeypatch.setenv(cvops.ENV, pipeline)  # the whole frame and the strips both run it
    monkeypatch.setattr(cvops, "WHOLE_PIXELS", 0)  # the OpenCV alpha as for a large photo: by rows
    if refine is not None and refine.enabled:
        pytest.importorskip("pymatting")
    from edgematting.data.io import write_png
    from edgematting.predict import predict_images

    fn, spec = _runner(portrait, unsure)
    guided = imageops.GuidedFilter(2, 1e-3) if upsample else None
    photo = tmp_path / "p.jpg"
    Image.fromarray(portrait["image"]).save(photo, quality=90)
    if background == "bg":
        background = tmp_path / "room.png"
        write_png(background, np.random.default_rng(1).integers(0, 256, (31, 43, 3), dtype=np.uint8))
        background = str(background)
    _whole_frame(fn, spec, photo, tmp_path / "whole", output, background, guided, refine)

    from edgematting.data import io as data_io

    monkeypatch.setattr(fast, "STRIP_PIXELS", 2 * W)
    monkeypatch.setattr(R, "SPARSE_PIXELS", 40)
    monkeypatch.setattr(data_io, "STRIP_PIXELS", 3 * W)
    seen = []
    rows = fast.AlphaRows.rows_at
    monkeypatch.setattr(fast.AlphaRows, "rows_at", lambda self, idx: seen.append(len(idx)) or rows(self, idx))
    # the OpenCV path's rows (its default; bilinear and guided): rows() reads a slice, not rows_at
    for cls in (cvops.AlphaRows, cvops.GuidedRows):
        cv_rows, cv_rows_at = cls.rows, cls.rows_at
        monkeypatch.setattr(cls, "rows", lambda self, y0, y1, f=cv_rows: seen.append(y1 - y0) or f(self, y0, y1))
        monkeypatch.setattr(cls, "rows_at", lambda self, idx, f=cv_rows_at: seen.append(len(idx)) or f(self, idx))
    predict_images(fn, [photo], tmp_path / "strips", output=output, background=background, spec=spec,
                   progress=False, guided=guided, refine=refine)
    small = [n for n in seen if n <= 2 + 2 * (2 * R.Foreground.N_BIG + 1)]  # a strip (and the halo)
    assert len(small) > H // 2  # many strips
    if refine is None or refine.max_side < max(H, W) or not (refine.enabled or refine.save_trimap):
        assert len(small) == len(seen)  # only a photo within --refine-max-side is seen whole (its trimap)
    whole = sorted(os.listdir(tmp_path / "whole"))
    assert whole == sorted(os.listdir(tmp_path / "strips")) and whole
    for name in whole:
        assert (tmp_path / "whole" / name).read_bytes() == (tmp_path / "strips" / name).read_bytes(), name


def test_box_blur_and_background_rows_equal_the_whole(tiny_strips):
    rng = np.random.default_rng(0)
    for h, w, r in ((37, 23, 2), (9, 7, 3), (40, 3, 10), (1, 6, 2), (12, 12, 0)):
        photo = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        want = imageops.box_blur(photo.astype(np.float32), r)
        for rows in (1, 2, 5, 100):
            blur = fast.BoxBlurRows(photo, r)
            got = np.concatenate([blur.rows(y0, y1) for y0, y1 in fast.strips(h, rows)])
            assert got.dtype == np.float32 and np.array_equal(got, want), (h, w, r, rows)
        bg = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
        rows_of = fast.background_rows(bg, photo)
        got = np.concatenate([rows_of(y0, y1) for y0, y1 in fast.strips(h, 2)])
        assert np.array_equal(got, fast.resize_bilinear(bg, h, w))
    with pytest.raises(ValueError, match="in order"):
        fast.BoxBlurRows(photo, 2).rows(3, 5)


@pytest.mark.parametrize("orientation", range(0, 9))
@pytest.mark.parametrize("mode", ["RGB", "L", "P", "LA", "CMYK"])
def test_read_image_in_strips_is_the_whole_decode(tmp_path, monkeypatch, orientation, mode):
    from edgematting.data import io as data_io

    base = np.random.default_rng(orientation).integers(0, 256, (37, 23, 3), dtype=np.uint8)
    im = Image.fromarray(base).convert(mode)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    path = tmp_path / ("p.jpg" if mode == "CMYK" else "p.png")
    im.save(path, exif=exif)
    with Image.open(path) as loaded:
        loaded.load()
        conv = loaded if loaded.mode == "RGB" else (
            loaded.convert("RGBA").convert("RGB") if loaded.mode in ("P", "PA", "LA") else loaded.convert("RGB"))
        want = np.asarray(data_io.upright(conv, orientation if orientation else 1))
    for strip in (1, 23, 50, 10**6):
        monkeypatch.setattr(data_io, "STRIP_PIXELS", strip)
        got = data_io.read_image(path, note_grayscale=False)
        assert got.dtype == np.uint8 and got.flags.c_contiguous and np.array_equal(got, want), strip


def test_png_is_written_straight_to_disk_with_the_same_bytes(tmp_path):
    from edgematting.data.io import write_pil_png

    im = Image.fromarray(np.random.default_rng(0).integers(0, 256, (70, 50, 4), dtype=np.uint8), "RGBA")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=1)  # what it wrote through memory before
    write_pil_png(tmp_path / "x.png", im)
    assert (tmp_path / "x.png").read_bytes() == buf.getvalue()
    assert os.listdir(tmp_path) == ["x.png"]  # no temporary left


def test_evaluate_in_strips_reports_the_same_metrics(tmp_path, portrait, monkeypatch):
    pytest.importorskip("pymatting")
    from edgematting.data.synthetic import write_synthetic_folder
    from edgematting.evaluation import metrics
    from edgematting.evaluation.evaluate import evaluate_model

    data = write_synthetic_folder(tmp_path / "d", n=2, size=(H, W), seed=4)
    fn, spec = _runner(portrait)
    kw = dict(spec=spec, progress=False, out=False, guided=imageops.GuidedFilter(),
              refine=R.RefineConfig(refine="trimap", max_side=40))
    whole = evaluate_model(fn, data, **kw)
    monkeypatch.setattr(fast, "STRIP_PIXELS", 2 * W)
    monkeypatch.setattr(metrics, "STRIP_PIXELS", 2 * W)
    strips = evaluate_model(fn, data, **kw)
    for a, b in zip(whole["per_image"], strips["per_image"]):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], str) or (isinstance(a[k], float) and np.isnan(a[k])):
                assert str(a[k]) == str(b[k]), k
            else:
                assert a[k] == pytest.approx(b[k], rel=1e-12, abs=1e-15), k  # float64 sums, another order


_CHILD = textwrap.dedent("""
    import json, sys, numpy as np
    from PIL import Image
    from edgematting import imageops
    from edgematting.modelio import ModelSpec
    from edgematting.predict import predict_images
    from edgematting.refine import RefineConfig

    def vm(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    path, out = sys.argv[1], sys.argv[2]
    yy, xx = np.mgrid[0:256, 0:256]  # a confident model's matte: a figure with a 1-pixel soft edge
    matte = np.clip(24 - np.hypot(yy - 150, (xx - 128) * 1.3), 0, 1).astype(np.float32)
    spec = ModelSpec(architecture="mattingnet", config={}, input_size=(256, 256))
    fn = lambda x: np.repeat(matte[None, :, :, None], len(x), axis=0)
    before = vm("VmRSS")
    predict_images(fn, [path], out, spec=spec, progress=False, guided=imageops.GuidedFilter(),
                   refine=RefineConfig())
    print(json.dumps({"before": before, "peak": vm("VmHWM")}))
""")


def test_a_24mp_photo_stays_within_the_budget(tmp_path):
    """predict (the CLI's defaults: guided filter, foreground estimation, rgba) on a 24 MP
    photo adds at most the uint8 photo and cut-out (7 bytes a pixel: 168 MB) and 256 MiB of
    working memory (320 MiB in all, measured); before the strips it added over 1.5 GB."""
    if not Path("/proc/self/status").is_file():
        pytest.skip("needs /proc (Linux)")
    h, w = 6000, 4000
    Image.new("RGB", (w, h), (120, 90, 60)).save(tmp_path / "big.jpg", quality=90)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    r = subprocess.run([sys.executable, "-c", _CHILD, str(tmp_path / "big.jpg"), str(tmp_path / "out")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads(r.stdout.strip().splitlines()[-1])
    grew = m["peak"] - m["before"]
    assert grew < 7 * h * w + 256 * 2**20, f"peak grew by {grew / 2**20:.0f} MiB"
    assert (tmp_path / "out" / "big_cutout.png").is_file()


def test_metrics_in_strips_are_the_whole_image_metrics(monkeypatch, portrait):
    """evaluate_alpha a strip of rows at a time (2 rows here) gives the whole-image values:
    masks and counts exactly, float64 sums up to their order of addition; the connectivity's
    components are joined across strips, ties going to the first in row-major order."""
    from scipy import ndimage

    from edgematting.bands import unknown_band
    from edgematting.evaluation import metrics as M

    rng = np.random.default_rng(0)
    gt = portrait["alpha"].astype(np.float32)
    coarse = imageops.alpha_to_photo(imageops.resize_bilinear(gt, 12, 12), gt.shape)
    noisy = np.clip(gt + rng.normal(0, 0.2, gt.shape).astype(np.float32), 0, 1)  # many small components
    specks = (rng.random((33, 44)) > 0.5).astype(np.float32)  # equally large components: ties
    cases = [(coarse, gt), (noisy, gt), (rng.random((33, 44)).astype(np.float32), specks)]
    monkeypatch.setattr(M, "STRIP_PIXELS", 2 * W)
    for p, g in cases:
        p64, g64 = p.astype(np.float64), g.astype(np.float64)
        band = unknown_band(g)
        np.testing.assert_array_equal(M._unknown_band(g), band)
        out = M.evaluate_alpha(p, g)
        err = np.abs(p64 - g64)
        gm = (M.gradient_magnitude(p64) - M.gradient_magnitude(g64)) ** 2
        cm = M._conn_error_map(p64, g64)
        pb, gb = M._boundary(p64 >= 0.5), M._boundary(g64 >= 0.5)
        tol = M.default_tolerance(p.shape)
        prec = np.count_nonzero(ndimage.distance_transform_edt(~gb)[pb] <= tol) / pb.sum()
        rec = np.count_nonzero(ndimage.distance_transform_edt(~pb)[gb] <= tol) / gb.sum()
        want = {"sad": err.sum() / 1000, "mse": (err**2).mean(), "mad": err.mean(), "grad": gm.sum() / 1000,
                "conn": cm.sum() / 1000, "sad_unknown": err[band].sum() / 1000, "mse_unknown": (err[band] ** 2).mean(),
                "grad_unknown": gm[band].sum() / 1000, "conn_unknown": cm[band].sum() / 1000,
                "iou": np.count_nonzero((p64 >= 0.5) & (g64 >= 0.5)) / np.count_nonzero((p64 >= 0.5) | (g64 >= 0.5)),
                "boundary_f": 2 * prec * rec / (prec + rec), "unknown_pixels": int(band.sum())}
        for k, v in want.items():
            assert out[k] == pytest.approx(v, rel=1e-12, abs=1e-15), k
