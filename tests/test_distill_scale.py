"""Distillation at scale: labelling a large unlabelled folder survives interruption (only the
rest is labelled, nothing half-written or stale is trusted), shows progress, streams the
photos one at a time, and training on many labelled photos streams them from disk when they
do not fit the in-memory cache.

The teachers here are tiny: a Python function (the cache logic does not depend on what
computes the matte) and a foreign ONNX file for the teacher's identity."""
from __future__ import annotations

import json
import os
import weakref
from pathlib import Path

import numpy as np
import pytest

from edgematting.data.io import read_alpha, write_png


def _red(rgb):
    """A teacher that says "person" where the photo is red: its matte depends on the photo."""
    return rgb[..., 0].astype(np.float32) / 255.0


def _teacher(path: Path, calls: list | None = None, fail_at: int | None = None, exc=RuntimeError):
    """A Teacher over `_red` identified by the file `path`; records the photos it labels in
    `calls` and raises `exc` at call number `fail_at` (0-based)."""
    from edgematting.teacher import Teacher

    def predict(rgb):
        if calls is not None:
            if fail_at is not None and len(calls) == fail_at:
                raise exc("interrupted")
            calls.append(int(rgb[0, 0, 1]))  # each photo's id is in its first green pixel
        return _red(rgb)

    if not path.exists():
        path.write_bytes(b"teacher weights v1")
    return Teacher("tiny", "foreign", path, predict)


def _photos(root: Path, n: int, size=(30, 40)) -> list[Path]:
    rng = np.random.default_rng(n)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
        img[0, 0, 1] = i  # the id `_teacher` records
        write_png(root / f"p{i:03d}.png", img)
        out.append(root / f"p{i:03d}.png")
    return out


def _label(teacher, photos, cache, **kw):
    from edgematting.teacher import cache_teacher_mattes

    return cache_teacher_mattes(teacher, photos, cache, root=photos[0].parent, progress=kw.pop("progress", False),
                                **kw)


# -- interruption and resume ----------------------------------------------------------------------
@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_labelling_labels_only_the_rest(tmp_path, exc):
    photos = _photos(tmp_path / "photos", 8)
    cache = tmp_path / "cache"
    calls: list = []
    with pytest.raises(exc):
        _label(_teacher(tmp_path / "t.bin", calls, fail_at=3, exc=exc), photos, cache)
    assert calls == [0, 1, 2]
    (folder,) = [p for p in cache.iterdir() if p.is_dir()]
    assert len(list(folder.glob("*.png"))) == 3 and not list(folder.glob(".*"))  # whole files, no temporaries
    assert len((folder / "labels.jsonl").read_text().splitlines()) == 3

    again: list = []
    folder2, pairs, bad = _label(_teacher(tmp_path / "t.bin", again), photos, cache)
    assert folder2 == folder and again == [3, 4, 5, 6, 7] and not bad
    assert [p for p, _ in pairs] == photos  # in the photos' order
    for ph, m in pairs:
        from edgematting.data.io import read_image

        np.testing.assert_allclose(read_alpha(m), np.round(_red(read_image(ph)) * 255) / 255, atol=1e-6)
    third: list = []
    _label(_teacher(tmp_path / "t.bin", third), photos, cache)
    assert third == []  # all done: nothing is labelled twice


def test_a_matte_not_recorded_or_cut_short_is_never_trusted(tmp_path):
    photos = _photos(tmp_path / "photos", 6)
    cache = tmp_path / "cache"
    folder, pairs, _ = _label(_teacher(tmp_path / "t.bin", []), photos, cache)
    manifest = folder / "labels.jsonl"
    lines = manifest.read_text().splitlines()
    # photo 0: killed after its matte was written, before it was recorded
    rest = [ln for ln in lines if json.loads(ln)["matte"] != pairs[0][1].name]
    # and a line cut short by a kill at the end of the manifest
    manifest.write_text("\n".join(rest) + "\n" + lines[0][:25])
    # photo 1: a matte cut short (as a copy interrupted by hand would leave it)
    m1 = pairs[1][1]
    m1.write_bytes(m1.read_bytes()[:20])
    calls: list = []
    _, pairs2, _ = _label(_teacher(tmp_path / "t.bin", calls), photos, cache)
    assert sorted(calls) == [0, 1]
    assert read_alpha(pairs2[1][1]).shape == (30, 40)  # redone whole
    # the cut line was dropped (every line parses) and every photo has its matte recorded
    entries = [json.loads(ln) for ln in manifest.read_text().splitlines()]
    assert {e["matte"] for e in entries} == {m.name for _, m in pairs2}


def test_a_changed_photo_is_labelled_again_a_touched_one_is_not(tmp_path):
    from edgematting.data.io import read_image

    photos = _photos(tmp_path / "photos", 5)
    cache = tmp_path / "cache"
    _label(_teacher(tmp_path / "t.bin", []), photos, cache)
    # photo 2: new content, same name and size
    new = np.zeros((30, 40, 3), np.uint8)
    new[..., 0] = 200
    new[0, 0, 1] = 2
    write_png(photos[2], new)
    st = photos[2].stat()
    os.utime(photos[2], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    # photo 3: the same bytes, a new mtime (copied without -p): its matte is still good
    st = photos[3].stat()
    os.utime(photos[3], ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    calls: list = []
    _, pairs, _ = _label(_teacher(tmp_path / "t.bin", calls), photos, cache)
    assert calls == [2]
    np.testing.assert_allclose(read_alpha(pairs[2][1]), np.round(_red(read_image(photos[2])) * 255) / 255, atol=1e-6)
    calls2: list = []
    _label(_teacher(tmp_path / "t.bin", calls2), photos, cache)
    assert calls2 == []  # photo 3's new mtime was recorded: no hashing, no labelling next time


def test_a_changed_teacher_labels_everything_again(tmp_path):
    from edgematting.teacher import Teacher

    photos = _photos(tmp_path / "photos", 3)
    cache = tmp_path / "cache"
    f1, _, _ = _label(_teacher(tmp_path / "t.bin", []), photos, cache)
    (tmp_path / "t.bin").write_bytes(b"teacher weights v2")  # retrained in place
    calls: list = []
    f2, _, _ = _label(_teacher(tmp_path / "t.bin", calls), photos, cache)
    assert f2 != f1 and calls == [0, 1, 2]
    # a model directory is identified by its model.keras and model.json, not by the rest of
    # its run folder (checkpoints, exports, its own teacher cache)
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(b"weights")
    (run / "model.json").write_text("{}")
    key = Teacher("big", "model-dir", run, _red).key()
    (run / "export").mkdir()
    (run / "export" / "big.tflite").write_bytes(b"x")
    assert Teacher("big", "model-dir", run, _red).key() == key
    (run / "model.keras").write_bytes(b"weights, retrained")
    assert Teacher("big", "model-dir", run, _red).key() != key
    # an artifact is identified with its sidecar (its pre- and post-processing)
    art = tmp_path / "m.tflite"
    art.write_bytes(b"flatbuffer")
    (tmp_path / "m.tflite.json").write_text('{"input": {"mean": 0}}')
    key = Teacher("m", "artifact", art, _red).key()
    (tmp_path / "m.tflite.json").write_text('{"input": {"mean": 127}}')
    assert Teacher("m", "artifact", art, _red).key() != key


def test_a_foreign_onnx_teacher_changed_in_place_gets_a_new_cache(tmp_path):
    """The same with a real (tiny, foreign) ONNX teacher resolved from its file."""
    pytest.importorskip("onnxruntime")
    from test_distill import _foreign_onnx

    from edgematting.teacher import TeacherOptions, resolve_teacher

    photos = _photos(tmp_path / "photos", 2, size=(32, 32))
    path = _foreign_onnx(tmp_path / "t.onnx", False, False)
    opts = TeacherOptions(input="0,1", output="logits")
    f1, pairs, _ = _label(resolve_teacher(str(path), opts), photos, tmp_path / "cache")
    assert len(pairs) == 2
    _foreign_onnx(tmp_path / "t.onnx", True, True)  # another model at the same path
    f2, _, _ = _label(resolve_teacher(str(path), TeacherOptions(input="0,1", output="2class:1")), photos,
                      tmp_path / "cache")
    assert f2 != f1


# -- progress ---------------------------------------------------------------------------------------
def test_progress_on_a_terminal_and_in_a_log(tmp_path, monkeypatch, capsys):
    import sys

    from edgematting import console, teacher as teacher_mod

    photos = _photos(tmp_path / "photos", 4)
    # a log file (not a terminal): plain lines with count, rate and ETA, no bar
    monkeypatch.setattr(teacher_mod, "PROGRESS_EVERY_S", 0.0)
    _label(_teacher(tmp_path / "t.bin", []), photos, tmp_path / "a", progress=True)
    out = capsys.readouterr().out
    assert "0 of 4 photos already labelled" in out and "4 to label" in out
    assert "1/4 photos" in out and "photos/s, ETA" in out and "labelled 4 photos in" in out
    # quiet when asked
    _label(_teacher(tmp_path / "t.bin", []), photos, tmp_path / "b", progress=False)
    assert capsys.readouterr().out == ""
    # a terminal: the project's progress bar with a photos/s rate, and no plain lines
    bars = []

    class Bar(console.progress_bar):
        def __init__(self, *a, **kw):
            super().__init__(False, *a[1:], **kw)
            bars.append((a, kw))

    monkeypatch.setattr(console, "progress_bar", Bar)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    _label(_teacher(tmp_path / "t.bin", []), photos, tmp_path / "c", progress=True)
    assert bars == [((True, 4, "teacher tiny"), {"unit": "photos"})]
    assert "1/4 photos" not in capsys.readouterr().out


# -- bounded memory ---------------------------------------------------------------------------------
def test_labelling_streams_one_photo_at_a_time(tmp_path, monkeypatch):
    """No photo nor matte outlives its turn: at every step at most the current photo and the
    matte being written are alive (a labelling that gathered photos or labels first fails)."""
    from edgematting.data import io

    photos = _photos(tmp_path / "photos", 30)
    alive: list = []
    worst = []
    real_read, real_write = io.read_image, io.write_png

    def read(path, *a, **kw):
        worst.append(sum(r() is not None for r in alive))
        out = real_read(path, *a, **kw)
        alive.append(weakref.ref(out))
        return out

    def write(path, arr):
        alive.append(weakref.ref(arr))
        return real_write(path, arr)

    monkeypatch.setattr(io, "read_image", read)
    monkeypatch.setattr(io, "write_png", write)
    _, pairs, _ = _label(_teacher(tmp_path / "t.bin", []), photos, tmp_path / "cache")
    assert len(pairs) == 30 and len(worst) == 30 and len(alive) == 60
    assert max(worst) <= 1, worst


def test_training_on_a_folder_too_large_to_cache_streams_it(tmp_path, monkeypatch):
    """Past CACHE_BUDGET_BYTES the decoded samples are not kept: the first batch decodes a
    handful of photos, not the folder (a shuffle buffer of decoded samples would decode
    them all), and an epoch still sees every training photo exactly once."""
    from edgematting.data import pipeline
    from edgematting.data.augment import AugmentConfig
    from edgematting.data.pipeline import DataConfig, make_datasets

    n = 200
    photos = _photos(tmp_path / "photos", n, size=(24, 24))
    mattes = tmp_path / "mattes"
    mattes.mkdir()
    pairs = []
    for ph in photos:
        write_png(mattes / ph.name, np.full((24, 24), 128, np.uint8))
        pairs.append((str(ph), str(mattes / ph.name)))
    loaded: list = []
    real = pipeline.load_sample

    def load(s):
        loaded.append(str(s.image))
        return real(s)

    monkeypatch.setattr(pipeline, "load_sample", load)
    budget = pipeline.CACHE_BUDGET_BYTES

    def first_batch_and_epoch(budget):
        monkeypatch.setattr(pipeline, "CACHE_BUDGET_BYTES", budget)
        cfg = DataConfig(source=None, teacher_pairs=pairs, input_size=(16, 16), batch_size=4, val_ratio=0.1,
                         augment=AugmentConfig(enabled=False), seed=3)
        train, _, info = make_datasets(cfg)
        loaded.clear()
        it = iter(train)
        next(it)
        first = len(loaded)
        for _ in it:
            pass
        return first, list(loaded), info

    first, epoch, info = first_batch_and_epoch(0)
    assert info["n_train"] == 180
    assert first <= 40, first  # a few batches in flight, not the 180 photos
    assert len(epoch) == 180 and len(set(epoch)) == 180  # every photo once per epoch
    assert epoch != sorted(epoch)  # shuffled
    # the cached path (it fits) decodes the whole folder to fill its shuffle buffer: the
    # measure above can tell the two apart
    first_cached, _, _ = first_batch_and_epoch(budget)
    assert first_cached == 180
