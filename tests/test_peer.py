"""Peer model fetching/extraction and running, on a tiny stand-in wheel (no network)."""
import zipfile

import numpy as np
import pytest

from edgematting import peer as peer_mod
from edgematting.errors import DependencyError, InputError


@pytest.fixture(scope="module")
def tiny_probability_tflite(tmp_path_factory):
    """A 32x32 float model with MediaPipe's contract: [0,1] RGB in, mean of channels out."""
    from edgematting._tf import keras, tf

    k = keras()
    inp = k.Input((32, 32, 3), batch_size=1)
    out = k.layers.Conv2D(1, 1, use_bias=False, kernel_initializer=k.initializers.Constant(1 / 3))(inp)
    model = k.Model(inp, out)
    data = tf().lite.TFLiteConverter.from_keras_model(model).convert()
    p = tmp_path_factory.mktemp("peer") / "tiny.tflite"
    p.write_bytes(data)
    return p


def _fake_wheel(path, tflite_bytes, members=peer_mod.MEDIAPIPE_FILES.values()):
    with zipfile.ZipFile(path, "w") as z:
        for m in members:
            z.writestr(m, tflite_bytes)
        z.writestr("mediapipe/__init__.py", "")
    return path


def test_fetch_extracts_both_variants_into_cache(tmp_path, monkeypatch, tiny_probability_tflite):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))
    assert peer_mod.resolve_peer("mediapipe") is None  # absent, not faked
    wheel = _fake_wheel(tmp_path / "mediapipe-0.10.21-cp311.whl", tiny_probability_tflite.read_bytes())
    out = peer_mod.fetch_mediapipe(wheel=wheel)
    assert set(out) == {"square", "landscape"}
    assert out["square"].read_bytes() == tiny_probability_tflite.read_bytes()
    assert (out["square"].parent / "LICENSE-NOTE.txt").exists()
    peer = peer_mod.resolve_peer("mediapipe")
    assert peer is not None and peer.path == out["square"]


def test_a_damaged_cache_is_not_trusted(tmp_path, monkeypatch, tiny_probability_tflite):
    """A cached model that is not the file fetch wrote (truncated, replaced) is absent, not used."""
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))
    out = peer_mod.fetch_mediapipe(wheel=_fake_wheel(tmp_path / "w.whl", tiny_probability_tflite.read_bytes()))
    assert peer_mod.cached_mediapipe("square") == out["square"]
    data = out["square"].read_bytes()
    out["square"].write_bytes(data[: len(data) // 2])
    assert peer_mod.cached_mediapipe("square") is None and peer_mod.resolve_peer("mediapipe") is None
    out["square"].write_bytes(data)
    (out["square"].parent / peer_mod.MANIFEST).unlink()  # a cache from before the manifest, or half-written
    assert peer_mod.cached_mediapipe("square") is None


def test_fetch_rejects_wheel_without_model(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))
    wheel = _fake_wheel(tmp_path / "w.whl", b"x", members=["mediapipe/other.txt"])
    with pytest.raises(DependencyError, match="selfie_segmentation"):
        peer_mod.fetch_mediapipe(wheel=wheel)
    assert not list((tmp_path / "cache").rglob("*.tflite"))
    (tmp_path / "not_a_zip.whl").write_bytes(b"nope")
    with pytest.raises(InputError):
        peer_mod.fetch_mediapipe(wheel=tmp_path / "not_a_zip.whl")


def test_resolve_peer_path_errors(tmp_path):
    with pytest.raises(InputError):
        peer_mod.resolve_peer(str(tmp_path / "missing.tflite"))
    with pytest.raises(InputError):
        peer_mod.resolve_peer(str(tmp_path / "model.onnx"))


def test_peer_runner_applies_its_own_contract(tiny_probability_tflite):
    runner = peer_mod.PeerModel("tiny", tiny_probability_tflite).open()
    assert runner.spec.input_size == (32, 32) and runner.kind == "foreign"
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (48, 40, 3), dtype=np.uint8)
    prob = runner.predict_photo(photo)
    assert prob.shape == (48, 40)
    from edgematting.imageops import alpha_to_photo, resize_bilinear

    # The model averages channels of the [0,1]-scaled input: recompute that in numpy.
    expected = alpha_to_photo(resize_bilinear(photo, 32, 32).mean(-1) / 255.0, (48, 40))
    np.testing.assert_allclose(prob, expected, atol=1e-5)
