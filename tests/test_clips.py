"""Clip folders (`evaluation.clips`): making, reading, and evaluating on video clips with a
true matte per frame (per-frame metrics and flicker / dtSSD), and `bench --video`."""
import json
from pathlib import Path

import numpy as np
import pytest

from edgematting.errors import DataError
from edgematting.evaluation.clips import CLIP_KEYS, clip_frames, evaluate_clips, make_clips, scan_clips
from edgematting.modelio import ModelSpec

SIZE = (64, 48)  # frame (height, width) = the stub models' input size: the upsampling is the identity
FRAMES = 6


@pytest.fixture(scope="module")
def clips_dir(tmp_path_factory):
    # clip 0: still figure, static background (the smoothing's case); clip 1: the figure moves
    return make_clips(tmp_path_factory.mktemp("clips") / "clips", n=2, frames=FRAMES, size=SIZE)


def _truth(clips_dir):
    return [g for c in scan_clips(clips_dir) for _, g in clip_frames(c)]


class Replay:
    """A "model" that returns the given mattes in order, one per frame it is called on
    (plus noise of this standard deviation, fresh each frame)."""

    def __init__(self, alphas, noise=0.0):
        self.alphas, self.noise, self.i = alphas, noise, 0
        self.rng = np.random.default_rng(0)

    def __call__(self, x):
        n = len(x)
        out = np.stack(self.alphas[self.i:self.i + n])[..., None].astype(np.float32)
        self.i += n
        if self.noise:
            out = np.clip(out + self.rng.normal(0, self.noise, out.shape).astype(np.float32), 0, 1)
        return out


SPEC = ModelSpec(architecture="fast-scnn", config={}, input_size=SIZE)


def test_clip_folder_reads_back(clips_dir):
    clips = scan_clips(clips_dir)
    assert [c.name for c in clips] == ["000_still_static", "001_move_static"]
    assert all(c.is_video and len(c.alphas) == FRAMES for c in clips)
    frames = list(clip_frames(clips[1]))
    assert len(frames) == FRAMES
    rgb, gt = frames[0]
    assert rgb.shape == (*SIZE, 3) and rgb.dtype == np.uint8 and gt.shape == SIZE and gt.dtype == np.float32
    assert 0 < gt.mean() < 1 and not np.array_equal(frames[0][1], frames[1][1])  # a person, and it moves
    manifest = json.loads((clips_dir / "clips.json").read_text())
    assert [c["motion"] for c in manifest["clips"]] == ["still", "move"]


def test_clip_folder_errors(clips_dir, tmp_path):
    import shutil

    with pytest.raises(DataError, match="not found"):
        scan_clips(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(clips_dir, bad)
    (bad / "000_still_static" / "alpha" / "000005.png").unlink()  # a frame without its matte
    (clip,) = [c for c in scan_clips(bad) if c.name == "000_still_static"]
    with pytest.raises(DataError, match="more frames than"):
        list(clip_frames(clip))
    shutil.rmtree(bad / "001_move_static")  # a video without mattes
    with pytest.raises(DataError, match="no 001_move_static/alpha"):
        scan_clips(bad)


def test_evaluate_clips_truth_and_noise(clips_dir, tmp_path):
    truth = _truth(clips_dir)
    out = tmp_path / "eval.json"
    res = evaluate_clips(Replay(truth), clips_dir, spec=SPEC, smooth=True, out=out, batch_size=4, progress=False)
    for v in ("none", "smooth"):
        m = res["variants"][v]["mean"]
        assert m["iou"] == 1.0 and m["boundary_f"] == 1.0 and m["flicker"] == 0.0
        # none: exact up to float32 rounding; smooth: a slight lag where a sub-threshold motion moved the matte
        tol = 1e-6 if v == "none" else 1e-2
        assert m["sad"] == pytest.approx(0.0, abs=tol) and m["dtssd"] == pytest.approx(0.0, abs=tol)
    rep = json.loads(out.read_text())
    assert rep["format"] == "edgematting-eval-clips" and rep["clips"] == 2 and rep["frames"] == 2 * FRAMES
    assert set(rep["variants"]) == {"none", "smooth"} and rep["smooth"] == {"weight": 0.5, "motion": 0.04}
    for v in rep["variants"].values():
        assert set(CLIP_KEYS) <= set(v["mean"])
        assert [r["clip"] for r in v["per_clip"]] == ["000_still_static", "001_move_static"]
        assert all(set(CLIP_KEYS) | {"frames", "static_fraction"} <= set(r) for r in v["per_clip"])

    noisy = evaluate_clips(Replay(truth, noise=0.1), clips_dir, spec=SPEC, smooth=0.5, out=False, batch_size=4,
                           progress=False)
    none, smooth = (noisy["variants"][v] for v in ("none", "smooth"))
    assert none["mean"]["flicker"] > 0.05 and none["mean"]["dtssd"] > 0.05 and none["mean"]["sad"] > 0.01
    # on the still clip the smoothing averages the noise away; it never changes the first frame
    assert smooth["per_clip"][0]["flicker"] < 0.8 * none["per_clip"][0]["flicker"]


def test_cli_clips_make_and_evaluate(tiny_fast_scnn_dir, tmp_path, capsys):
    from edgematting.cli import main

    d = tmp_path / "c"
    assert main(["clips", "make", str(d), "--n", "1", "--frames", "3", "--size", "48x64"]) == 0
    assert [c.name for c in scan_clips(d)] == ["000_still_static"]
    out = tmp_path / "r.json"
    assert main(["evaluate", str(tiny_fast_scnn_dir), "--clips", str(d), "--smooth", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "flicker" in text and "smooth" in text
    rep = json.loads(out.read_text())
    assert rep["frames"] == 3 and set(rep["variants"]) == {"none", "smooth"}
    assert main(["evaluate", str(tiny_fast_scnn_dir), "--data", str(d), "--smooth"]) == 2  # --smooth needs --clips


def test_bench_video_module(tiny_fast_scnn_dir, tmp_path, capsys):
    from edgematting.bench import video

    out = tmp_path / "v.json"
    assert video.main([str(tiny_fast_scnn_dir), "--frames", "6", "--size", "160x96", "--upsample", "bilinear",
                       "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "frames/s" in text and "decode ms" in text and "encode ms" in text
    rep = json.loads(out.read_text())
    assert [r["threads"] for r in rep["rows"]] == [1, 2]
    for r in rep["rows"]:
        assert r["frames"] == 6 and r["fps"] > 0 and all(r[s] >= 0 for s in video.STAGES)


@pytest.mark.slow
def test_cli_bench_video_720p(tiny_fast_scnn_dir, tmp_path, capsys):
    from edgematting.cli import main

    assert main(["bench", str(tiny_fast_scnn_dir), "--video", "--out", str(tmp_path / "b")]) == 0
    text = capsys.readouterr().out
    assert "1280x720, 60 frames" in text and text.count("\n| ") >= 3  # header + a row per thread count (1, 2)
    rep = json.loads((tmp_path / "b" / "video.json").read_text())
    assert [r["threads"] for r in rep["rows"]] == [1, 2] and all(r["frames"] == 60 for r in rep["rows"])


def test_evaluate_clips_feeds_a_prior_frame_model_its_previous_alpha(clips_dir):
    """As `predict_video`: frame by frame, each fed the previous output, zeros at each clip's start."""
    from edgematting.models import architecture_config

    seen = []

    def model(x):
        x = np.asarray(x)
        assert x.shape[0] == 1 and x.shape[-1] == 4
        seen.append(float(x[..., 3].mean()))
        return (0.5 + 0.5 * x[..., 3:4]).astype(np.float32)

    spec = ModelSpec(architecture="fast-scnn", config=architecture_config("fast-scnn", SIZE, 0.25, prior=True),
                     input_size=SIZE)
    evaluate_clips(model, clips_dir, spec=spec, out=False, batch_size=4, progress=False)
    want = [1 - 0.5 ** i for i in range(FRAMES)]  # 0, 0.5, 0.75, ...
    np.testing.assert_allclose(seen, want * 2, atol=1e-6)
