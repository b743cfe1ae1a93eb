"""Video in, cut-out video out: synthetic clips, PyAV reading/writing, predict_video, the CLI,
temporal metrics and the smoothing baseline. Short clips (12 frames, 96x128) and the tiny
Fast-SCNN: these test plumbing (frames, timing, rotation, audio, errors), not quality; the
smoothing tests use a model with known noise instead."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgematting.cli import main
from edgematting.data.clip import synthetic_clip, write_clip
from edgematting.data.videoio import read_video
from edgematting.errors import EdgemattingWarning, InputError
from edgematting.evaluation.temporal import dtssd, flicker, temporal_metrics
from edgematting.video import SmoothConfig, TemporalSmoother, output_kind, predict_video, video_input

N, H, W = 12, 96, 128
FPS = 30


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """(path, frames, alphas): a 12-frame moving clip, stored rotated 90 degrees, with audio."""
    frames, alphas = synthetic_clip(N, (H, W), seed=3, motion="move", background="moving")
    path = write_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", frames, fps=FPS, audio=True, rotation=90)
    return path, frames, alphas


@pytest.fixture(scope="module")
def runner(tiny_fast_scnn_dir):
    """The tiny model opened once (loading it is most of a call's time)."""
    from edgematting.predict import load_predictor

    return load_predictor(tiny_fast_scnn_dir)[0]


def _stream(path):
    import av

    with av.open(str(path)) as c:
        v = c.streams.video[0]
        first = next(c.decode(v))
        return {"rate": v.average_rate, "time_base": v.time_base, "size": (first.height, first.width),
                "rotation": first.rotation, "audio": [s.codec_context.name for s in c.streams.audio],
                "audio_packets": sum(1 for p in c.demux(*c.streams.audio) if p.dts is not None) if c.streams.audio
                else 0}


# -- synthetic clips ---------------------------------------------------------------------
@pytest.mark.parametrize("motion", ["still", "move", "turn"])
def test_synthetic_clip(motion):
    frames, alphas = synthetic_clip(6, (H, W), seed=1, motion=motion, background="static")
    again, _ = synthetic_clip(6, (H, W), seed=1, motion=motion, background="static")
    assert len(frames) == len(alphas) == 6
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    assert alphas[0].shape == (H, W) and alphas[0].dtype == np.float32
    assert all(np.array_equal(a, b) for a, b in zip(frames, again))  # a function of its arguments
    for a in alphas:  # 8-bit mattes, with a person in the frame and soft edges
        assert np.allclose(a * 255, np.round(a * 255), atol=1e-3)
        assert 0.05 < a.mean() < 0.9 and ((a > 0) & (a < 1)).any()
    changed = [float(np.abs(alphas[t] - alphas[t - 1]).max()) for t in range(1, 6)]
    if motion == "still":
        assert max(changed) == 0 and all(np.array_equal(f, frames[0]) for f in frames)
    else:
        assert min(changed) > 0.5  # the figure moves every frame
        assert (alphas[-1][-1] > 0.99).any()  # the torso still reaches the bottom edge


def test_moving_background_pans():
    frames, alphas = synthetic_clip(4, (H, W), seed=1, motion="still", background="moving")
    assert all(np.array_equal(a, alphas[0]) for a in alphas)  # the person is still...
    bg = alphas[0] == 0
    assert np.abs(frames[1].astype(int) - frames[0])[bg].mean() > 1  # ...the background is not


def test_write_and_read_clip(clip):
    path, frames, _ = clip
    s = _stream(path)
    assert s["rate"] == FPS and s["rotation"] == 90 and s["size"] == (W, H)  # stored sideways
    assert s["audio"] == ["aac"] and s["audio_packets"] > 0
    back = read_video(path)  # upright again
    assert len(back) == N and back[0].shape == (H, W, 3)
    assert np.abs(back[5].astype(np.int16) - frames[5]).mean() < 8  # lossy, but the same picture


# -- temporal metrics on sequences with known answers -------------------------------------
def _square(t, size=20, n=40):
    a = np.zeros((n, n), np.float32)
    a[10:10 + size, t:t + size] = 1.0
    return a


def test_perfect_prediction_has_no_temporal_error():
    gts = [_square(t) for t in range(5)]
    m = temporal_metrics(gts, gts)
    assert m["flicker"] == 0 and m["dtssd"] == 0 and m["frames"] == 5


def test_flicker_where_nothing_moves():
    gts = [np.full((8, 8), 0.5, np.float32)] * 4
    preds = [np.full((8, 8), v, np.float32) for v in (0.2, 0.4, 0.2, 0.4)]
    assert flicker(preds, gts) == pytest.approx(0.2)
    assert dtssd(preds, gts) == pytest.approx(0.2)  # |d pred - 0| = 0.2 everywhere


def test_constant_error_is_not_temporal_error():
    gts = [_square(t) for t in range(5)]
    preds = [np.clip(g + 0.1, 0, 1) * 0.9 for g in gts]  # wrong, but wrong the same way in every frame
    assert flicker(preds, gts) == pytest.approx(0.0, abs=1e-7)
    m = temporal_metrics([g * 0.5 for g in gts], gts)  # follows the motion at half the amplitude
    # a one-pixel shift of a 20x20 square changes 2 x 20 pixels by 1 (out of 1600)
    assert m["dtssd"] == pytest.approx(np.sqrt(40 * 0.25 / 1600), rel=1e-6)
    assert m["static_fraction"] == pytest.approx(1 - 40 / 1600)


def test_frozen_prediction_misses_the_motion():
    gts = [_square(t) for t in range(4)]
    preds = [gts[0]] * 4  # never moves
    assert flicker(preds, gts) == 0  # no flicker...
    assert dtssd(preds, gts) == pytest.approx(np.sqrt(40 / 1600))  # ...but every change is missed


def test_flicker_ignores_pixels_that_changed():
    gts = [_square(0), _square(1)]
    noise = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    preds = [gts[0], np.where(gts[1] != gts[0], noise, gts[1])]  # wrong only where the truth moved
    assert flicker(preds, gts) == 0 and dtssd(preds, gts) > 0


def test_temporal_metrics_check_shapes():
    with pytest.raises(ValueError):
        temporal_metrics([np.zeros((4, 4))], [np.zeros((4, 5))])
    assert np.isnan(flicker([np.zeros((4, 4))], [np.zeros((4, 4))]))  # one frame: nothing to compare


# -- temporal smoothing --------------------------------------------------------------------
def _noisy(gt, rng, sd=0.08):
    return np.clip(gt + rng.normal(0, sd, gt.shape).astype(np.float32), 0, 1)


def test_smoothing_reduces_flicker_on_a_still_clip():
    frames, alphas = synthetic_clip(10, (64, 64), seed=4, motion="still", background="static")
    rng = np.random.default_rng(0)
    preds = [_noisy(a, rng) for a in alphas]
    sm = TemporalSmoother(SmoothConfig(weight=0.5))
    smoothed = [sm(p, f) for p, f in zip(preds, frames)]
    raw, low = flicker(preds, alphas), flicker(smoothed, alphas)
    assert low < 0.6 * raw, (raw, low)


def test_smoothing_does_not_lag_where_the_person_moves():
    frames, alphas = synthetic_clip(6, (64, 64), seed=4, motion="move", background="static")
    sm = TemporalSmoother(SmoothConfig(weight=0.5))
    out = [sm(a, f) for a, f in zip(alphas, frames)]
    for t in range(1, 6):
        changed = np.abs(alphas[t] - alphas[t - 1]) > 0.2
        assert np.array_equal(out[t][changed], alphas[t][changed])  # moving pixels keep this frame's alpha


def test_smooth_config_checks_its_values():
    with pytest.raises(InputError):
        SmoothConfig(weight=0)
    with pytest.raises(InputError):
        SmoothConfig(weight=1.5)


def test_predict_video_smooth_reduces_flicker(tmp_path, tiny_fast_scnn_dir):
    """End to end: a model whose alpha is the frame's own brightness plus fresh noise on every
    call, on a still clip: --smooth makes the written mattes flicker less."""
    from edgematting.modelio import load_spec

    frames, alphas = synthetic_clip(10, (H, W), seed=5, motion="still", background="static")
    src = write_clip(tmp_path / "still.mp4", frames, fps=FPS)
    rng = np.random.default_rng(1)

    def noisy_model(x):
        base = 1 / (1 + np.exp(-3 * x.mean(axis=-1, keepdims=True)))
        return np.clip(base + rng.normal(0, 0.1, base.shape), 0, 1).astype(np.float32)

    spec = load_spec(tiny_fast_scnn_dir)
    scores = {}
    for smooth in (None, 0.4):
        out = tmp_path / f"frames_{smooth}"
        predict_video(noisy_model, src, f"{out}/", output="alpha", spec=spec, progress=False, smooth=smooth)
        mattes = [np.asarray(Image.open(p), np.float32) / 255 for p in sorted(out.glob("*_alpha.png"))]
        assert len(mattes) == 10
        scores[smooth] = flicker(mattes, alphas)
    assert scores[0.4] < 0.6 * scores[None], scores


# -- predict_video -------------------------------------------------------------------------
def test_predict_video_mp4(clip, runner, tmp_path):
    path, _, _ = clip
    out = tmp_path / "cut.mp4"
    r = predict_video(runner, path, out, background="#00ff00", progress=False)
    assert r.frames == N and r.kind == "video" and r.output == "composite" and r.truncated is None
    assert r.codec == "libx264" and r.audio == ["aac"] and r.fps > 0
    src, got = _stream(path), _stream(out)
    assert got["rate"] == src["rate"] == FPS
    assert got["time_base"] == src["time_base"]
    assert got["rotation"] == 90 and got["size"] == src["size"]  # stored and shown like the input
    assert got["audio"] == ["aac"] and got["audio_packets"] == src["audio_packets"]  # copied packet for packet
    back = read_video(out)
    assert len(back) == N and back[0].shape == (H, W, 3)
    assert not list(tmp_path.glob(".*"))  # no temporary left behind


def test_predict_video_frames_folder(clip, runner, tmp_path):
    path, _, _ = clip
    r = predict_video(runner, path, f"{tmp_path / 'frames'}/", progress=False)
    files = sorted((tmp_path / "frames").glob("*.png"))
    assert r.kind == "frames" and r.output == "rgba" and r.frames == N
    assert [p.name for p in files[:2]] == ["clip_000000_cutout.png", "clip_000001_cutout.png"] and len(files) == N
    im = Image.open(files[0])
    assert im.mode == "RGBA" and im.size == (W, H)  # upright


def test_predict_video_is_the_photo_pipeline(clip, runner, tmp_path):
    """A frame's alpha PNG is what predict_images writes for that frame as a photo."""
    from edgematting.predict import predict_images

    path, _, _ = clip
    predict_video(runner, path, tmp_path / "v", output="alpha", progress=False)
    frame = read_video(path)[3]
    Image.fromarray(frame).save(tmp_path / "f3.png")
    predict_images(runner, [tmp_path / "f3.png"], tmp_path / "p", output="alpha", progress=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "v" / "clip_000003_alpha.png")),
                          np.asarray(Image.open(tmp_path / "p" / "f3_alpha.png")))


def _truncate(src: Path, dst: Path, fraction: float) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_truncated_video_keeps_the_frames_decoded(runner, tmp_path, suffix):
    """mp4 with its index at the front (the index promises 24 frames), mkv (its header gives the
    duration): cut off, each is cut out up to where its data ends, with a one-line warning."""
    frames, _ = synthetic_clip(24, (H, W), seed=6, motion="move")
    full = write_clip(tmp_path / f"full{suffix}", frames, fps=FPS, audio=True)
    bad = _truncate(full, tmp_path / f"cut_short{suffix}", 0.6)
    out = tmp_path / "out.mp4"
    with pytest.warns(EdgemattingWarning, match=r"after \d+ of 2[45] frames.*truncated; wrote the \d+ frames decoded"):
        r = predict_video(runner, bad, out, progress=False)
    assert 0 < r.frames < 24 and r.truncated
    assert len(read_video(out)) == r.frames  # a complete, valid video of what was there


def test_truncated_video_without_index_is_one_line_error(tiny_fast_scnn_dir, tmp_path, capsys):
    frames, _ = synthetic_clip(12, (H, W), seed=6, motion="move")
    full = write_clip(tmp_path / "full.mp4", frames, fps=FPS, faststart=False)  # index at the end, as a camera
    bad = _truncate(full, tmp_path / "cut_short.mp4", 0.6)
    code = main(["predict", str(tiny_fast_scnn_dir), str(bad), "--out", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "is not a readable video" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out.mp4").exists() and not list(tmp_path.glob(".out.mp4*"))


def test_audio_the_container_cannot_hold_is_dropped_with_a_warning(runner, tmp_path):
    """Opus copies into .mkv and .mp4, but .mov turns it down at the header: the video is
    written without it, and a one-line warning says so."""
    frames, _ = synthetic_clip(6, (H, W), seed=7, motion="move")
    src = write_clip(tmp_path / "opus.mkv", frames, fps=FPS, audio=True, audio_codec="libopus")
    assert _stream(src)["audio"] == ["opus"]
    with pytest.warns(EdgemattingWarning, match=r"\.mov cannot hold opus audio"):
        r = predict_video(runner, src, tmp_path / "o.mov", progress=False)
    assert r.audio == [] and r.dropped_audio == ["opus"] and r.frames == 6
    assert _stream(tmp_path / "o.mov")["audio"] == [] and len(read_video(tmp_path / "o.mov")) == 6
    r = predict_video(runner, src, tmp_path / "o.mkv", progress=False)
    assert r.audio == ["opus"] and _stream(tmp_path / "o.mkv")["audio_packets"] == _stream(src)["audio_packets"]


def test_not_a_video_is_input_error(runner, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputError, match="not a readable video"):
        predict_video(runner, bad, tmp_path / "out.mp4", progress=False)
    with pytest.raises(InputError, match="not found"):
        predict_video(runner, tmp_path / "missing.mp4", tmp_path / "out.mp4", progress=False)


def test_output_checks(clip, runner, tmp_path):
    path, _, _ = clip
    with pytest.raises(InputError, match="no alpha channel"):
        predict_video(runner, path, tmp_path / "o.mp4", output="rgba", progress=False)
    with pytest.raises(InputError, match="cannot write .webm"):
        predict_video(runner, path, tmp_path / "o.webm", progress=False)
    with pytest.raises(InputError, match="--background only applies"):
        predict_video(runner, path, tmp_path / "o.mp4", output="alpha", background="blur", progress=False)
    with pytest.raises(InputError, match="input video itself"):
        predict_video(runner, path, path, progress=False)
    assert output_kind("x/") == "frames" and output_kind("x.MKV") == "video" and output_kind(tmp_path) == "frames"
    with pytest.raises(InputError):
        output_kind("x.png")
    assert video_input(["a.jpg", "dir"]) is None and video_input(["a.MOV"]) == Path("a.MOV")
    with pytest.raises(InputError, match="one video at a time"):
        video_input(["a.mp4", "b.jpg"])


# -- the CLI -------------------------------------------------------------------------------
def test_cli_predict_video(clip, tiny_fast_scnn_dir, tmp_path, capsys):
    path, _, _ = clip
    out = tmp_path / "cut.mkv"
    code = main(["predict", str(tiny_fast_scnn_dir), str(path), "--out", str(out), "--background", "blur",
                 "--smooth", "--upsample", "bilinear"])
    printed = capsys.readouterr().out
    assert code == 0 and f"wrote {out}: {N} frames at 30 fps" in printed and "audio copied (aac)" in printed
    assert _stream(out)["rate"] == FPS and len(read_video(out)) == N


@pytest.mark.parametrize("extra, message", [
    (["--output", "rgba"], "no alpha channel"),
    (["--grid", "g.png"], "--grid applies to photos"),
])
def test_cli_video_rejects_what_it_cannot_do(clip, tiny_fast_scnn_dir, tmp_path, capsys, extra, message):
    path, _, _ = clip
    code = main(["predict", str(tiny_fast_scnn_dir), str(path), "--out", str(tmp_path / "o.mp4"), *extra])
    assert code == 2 and message in capsys.readouterr().err


def test_cli_smooth_is_for_videos(tiny_fast_scnn_dir, tmp_path, capsys):
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "p.png")
    code = main(["predict", str(tiny_fast_scnn_dir), str(tmp_path / "p.png"), "--out", str(tmp_path / "o"),
                 "--smooth"])
    assert code == 2 and "--smooth applies to a video" in capsys.readouterr().err
