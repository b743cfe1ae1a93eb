"""Client compatibility: every exported .tflite variant runs in MediaPipe Tasks
``ImageSegmenter`` (mediapipe 1.2.3, the Python package of the SDK apps use) as it is,
and its confidence mask matches our runner; the variants MediaPipe cannot take are
refused by the converter with the reason (sidecar ``clients``, printed note), and
MediaPipe refuses them for that reason.

MediaPipe and tflite-support live in the clients' virtualenv (`tflite_metadata.CLIENTS_VENV`,
created by .ci/run; their protobuf/absl-py pins conflict with tensorflow's). MediaPipe runs in
a subprocess there, so a native crash fails one test instead of killing the run.

Tolerance. Photos are at the model's own resolution (64x64), so MediaPipe resizes neither
the image in nor the mask out, and both sides run the same LiteRT kernels on the same file:

* every variant but one is compared with `EXACT` (mean abs <= 1e-4, mask IoU >= 0.999):
  uint8-input files get the same bytes on both sides; float-input files get the same
  normalized floats up to one float32 rounding (MediaPipe computes pixel * (1/std) - mean/std,
  we (pixel - mean) / std), which a float body does not amplify. Measured: 0 (uint8 input,
  int16x8) to 1e-7 (fp32, fp16, dynamic), IoU 1.
* int8 with float I/O is compared with the int8 row of `verify.TOLERANCES` (mean abs 0.02,
  IoU 0.98 outside a 0.02 band around the threshold): its input quantization has scale
  1/127.5, so every normalized pixel (p - 127.5) / 127.5 lands exactly on a rounding tie
  and that one float32 rounding moves most input pixels by one int8 level: an error of the
  size int8 itself is allowed. Measured on 8 photos: mean abs 0.008, IoU 0.980 (0.986
  outside the band), max abs 0.125. The test also checks
  that this is the whole difference: fed MediaPipe's arithmetic, our LiteRT run gives
  MediaPipe's mask to 1e-6. (Apps bundling int8 for MediaPipe should take the uint8-input
  file, which has no such ties: identical masks.)

`test_wrong_metadata_normalization_fails` shows the comparison can fail: the same fp32 file
with its metadata std halved (a converter bug) does not pass `EXACT`, nor even int8's row
(measured: mean abs 0.25, IoU 0.64).

Refused (the converter records the reason, MediaPipe 1.2.3 refuses with that error): 4-channel
input, int8 I/O, and a float input whose contract normalizes per channel; the same
per-channel model with uint8 input (normalization in the graph) is taken and matches exactly.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from export_helpers import TEST_CALIB_SAMPLES

N_PHOTOS = 8

#: (export options, expected MediaPipe verdict, model): verdict "supported" or a regex that
#: both the converter's recorded reason and MediaPipe's own error must match; model "" is the
#: confident Fast-SCNN, "per-channel" the same weights with a per-channel mean/std contract.
VARIANTS = {
    "fp32": ({"precision": "fp32"}, "supported", ""),
    "fp16": ({"precision": "fp16"}, "supported", ""),
    "dynamic": ({"precision": "dynamic"}, "supported", ""),
    "int8-float-io": ({"precision": "int8"}, "supported", ""),
    "int8-uint8": ({"precision": "int8", "input_type": "uint8"}, "supported", ""),
    "int16x8": ({"precision": "int16x8"}, "supported", ""),
    "fp32-uint8": ({"precision": "fp32", "input_type": "uint8"}, "supported", ""),
    "fp32-4ch": ({"precision": "fp32", "channels": 4}, r"only 1 or 3 mean and std values are supported", ""),
    "int8-int8-io": ({"precision": "int8", "input_type": "uint8", "tflite": {"io": "int8"}},
                     r"Requested one of these types: uint8/float32", ""),
    "fp32-per-channel-norm": ({"precision": "fp32"}, r"Per-channel image normalization is not available",
                              "per-channel"),
    "fp32-uint8-per-channel-norm": ({"precision": "fp32", "input_type": "uint8"}, "supported", "per-channel"),
}
PER_CHANNEL = {"mean": [123.0, 117.0, 104.0], "std": [58.0, 57.0, 57.5]}

EXACT = {"mean_abs": 1e-4, "min_iou": 0.999, "iou_band": 0.0,
         "reason": "same LiteRT kernels on the same file and input (up to one float32 rounding), no resize"}


def tolerance(name: str):
    from edgematting.formats import Tolerance
    from edgematting.verify import tolerance_for

    if name == "int8-float-io":
        return tolerance_for("tflite", "int8")
    return Tolerance(**EXACT)


# Runs in the clients venv: MediaPipe Tasks ImageSegmenter on each photo.
MEDIAPIPE_SCRIPT = r"""
import json, sys
from importlib.metadata import version
import numpy as np
import mediapipe as mp
from mediapipe.tasks.python import BaseOptions, vision

model, photos, out = sys.argv[1:4]
try:
    options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=model),
                                           output_confidence_masks=True, output_category_mask=True)
    with vision.ImageSegmenter.create_from_options(options) as segmenter:
        labels = list(segmenter.labels)
        confidence, category = [], []
        for rgb in np.load(photos):
            r = segmenter.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb)))
            # copies: the views point into the result's buffers, which the next call reuses
            confidence.append(np.stack([np.array(m.numpy_view(), np.float32).reshape(rgb.shape[:2])
                                        for m in r.confidence_masks]))
            category.append(np.array(r.category_mask.numpy_view()).reshape(rgb.shape[:2]))
except Exception as e:
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
    sys.exit(3)
np.savez(out, confidence=np.stack(confidence), category=np.stack(category))
print(json.dumps({"labels": labels, "mediapipe": version("mediapipe")}))
"""


@pytest.fixture(scope="module")
def clients_python():
    from edgematting.converters import tflite_metadata
    from edgematting.errors import ConversionError

    try:
        return tflite_metadata.clients_python()
    except ConversionError as e:  # every TFLite export needs it: fail, do not skip
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def per_channel_model_dir(confident_fast_scnn_dir, tmp_path_factory):
    """A copy of the confident model whose contract normalizes per channel (ImageNet-like)."""
    import shutil

    from edgematting.modelio import SPEC_FILE

    out = tmp_path_factory.mktemp("per_channel") / "model"
    shutil.copytree(confident_fast_scnn_dir, out)
    spec = json.loads((out / SPEC_FILE).read_text())
    spec.update(PER_CHANNEL)
    (out / SPEC_FILE).write_text(json.dumps(spec))
    return out


@pytest.fixture(scope="module")
def photos(confident_fast_scnn_dir, tmp_path_factory):
    """A few synthetic portraits at the model's own resolution (uint8 RGB), saved for the subprocess."""
    from edgematting.calibration import verification_images
    from edgematting.modelio import load_spec

    px = verification_images(load_spec(confident_fast_scnn_dir), "synthetic", N_PHOTOS)
    px = np.clip(np.round(px), 0, 255).astype(np.uint8)
    path = tmp_path_factory.mktemp("client_photos") / "photos.npy"
    np.save(path, px)
    return px, path


@pytest.fixture(scope="module")
def exported(request, tmp_path_factory):
    """variant -> (Artifact, what the conversion printed on stderr), each converted once."""
    import contextlib
    import io

    cache = {}

    def get(variant):
        if variant not in cache:
            options, _, model = VARIANTS[variant]
            model_dir = request.getfixturevalue("per_channel_model_dir" if model else "confident_fast_scnn_dir")
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                art = export(model_dir, tmp_path_factory.mktemp(variant) / "export", **options)
            cache[variant] = (art, err.getvalue())
        return cache[variant]

    return get


def export(model_dir, out_dir, **options):
    from edgematting.converters import ExportConfig, convert_model

    config = ExportConfig(target="tflite", calib_samples=TEST_CALIB_SAMPLES, verify=False, **options)
    return convert_model(model_dir, config, out_dir=out_dir, progress=False)


def run_mediapipe(python, model: Path, photos_path: Path, tmp_path) -> dict:
    """MediaPipe Tasks ImageSegmenter in a subprocess: {"labels", "confidence", "category"}
    or {"error"}; a crash (signal, no JSON) fails the test."""
    out = tmp_path / "mediapipe.npz"
    proc = subprocess.run([str(python), "-I", "-c", MEDIAPIPE_SCRIPT, str(model), str(photos_path), str(out)],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode in (0, 3) and lines, (
        f"MediaPipe crashed on {model.name} (exit {proc.returncode}): {proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    if proc.returncode == 0:
        with np.load(out) as z:
            result.update(confidence=z["confidence"], category=z["category"])
    return result


def checked(ours, theirs, tol, threshold: float = 0.5) -> tuple[dict, list[str]]:
    """`verify.compare` of our alphas and MediaPipe's masks (N, H, W), then `verify.check`
    against `tol`: (metrics, failure lines)."""
    from edgematting.verify import check, compare

    metrics = compare(ours[..., None], theirs[..., None], threshold=threshold, band=tol.iou_band)
    return metrics, check(metrics, tol)[1]


#: run with `pytest -m slow` (about 6 s each on 2 cores; the default suite must stay under 15
#: minutes): the same converter paths as a default variant with another precision or a second
#: refusal. Default: fp32, both int8 input types, a refused 4-channel file, per-channel folding.
SLOW_VARIANTS = {"fp16", "dynamic", "int16x8", "fp32-uint8", "int8-int8-io", "fp32-per-channel-norm"}


@pytest.mark.parametrize("variant", [pytest.param(v, marks=[pytest.mark.slow] if v in SLOW_VARIANTS else [])
                                     for v in VARIANTS])
def test_mediapipe_image_segmenter(variant, exported, photos, clients_python, tmp_path):
    from edgematting.converters import tflite_metadata
    from edgematting.runners.tflite import read_embedded_metadata

    _, expected, _ = VARIANTS[variant]
    px, photos_path = photos
    t0 = time.perf_counter()
    art, note = exported(variant)
    verdict = art.metadata["clients"][tflite_metadata.MEDIAPIPE]
    # our contract survived the standard metadata writer, and the sidecar says the same
    assert read_embedded_metadata(art.path)["clients"] == art.metadata["clients"]

    # the standard metadata, as tflite-support reads it back
    std = tflite_metadata.read_standard_metadata(art.path)
    md = std["metadata"]
    assert md is not None, std
    assert md["name"] == art.metadata["model_name"] and md["version"] == art.metadata["model_version"]
    assert md["author"] and md["description"]
    sub = md["subgraph_metadata"][0]
    inp, out = sub["input_tensor_metadata"][0], sub["output_tensor_metadata"][0]
    assert (inp["name"], out["name"]) == ("image", "alpha")
    norm = inp["process_units"][0]["options"]
    c = art.metadata["input"]
    if c["normalization_in_model"]:  # raw pixels in: identity normalization
        assert norm == {"mean": [0.0] * c["channels"], "std": [1.0] * c["channels"]}
    else:
        assert norm["mean"][:3] == c["mean"] and norm["std"][:3] == c["std"]
    assert std["associated_files"] == {tflite_metadata.LABELS_FILE: "person\n"}
    assert out["associated_files"][0]["type"] == "TENSOR_AXIS_LABELS"

    mp = run_mediapipe(clients_python, art.path, photos_path, tmp_path)
    if expected != "supported":
        # refused by the converter with the reason, printed too, and MediaPipe agrees
        assert verdict.startswith("unsupported: ") and re.search(expected, verdict), verdict
        assert f"note: {art.path.name}: MediaPipe Tasks ImageSegmenter cannot take this file" in note, note
        assert "error" in mp, f"MediaPipe took {art.path.name}, which the converter says it cannot: {verdict}"
        assert re.search(expected, mp["error"]), mp["error"]
        print(f"\n{variant}: refused ({mp['error']})  [{time.perf_counter() - t0:.1f} s]")
        return
    assert verdict == "supported" and "note:" not in note, (verdict, note)
    assert "error" not in mp, f"MediaPipe refused {art.path.name}: {mp['error']}"
    assert mp["labels"] == ["person"]
    assert mp["confidence"].shape == (N_PHOTOS, 1, *px.shape[1:3])  # one mask: the person confidence
    theirs = mp["confidence"][:, 0]
    # a one-channel segmenter's category mask: 0 (the first label) where confidence > 0.5
    np.testing.assert_array_equal(mp["category"] == 0, theirs > 0.5)  # (MediaPipe's own cutoff)

    from edgematting import runners

    runner = runners.open(art.path)
    ours = np.stack([runner.predict_photo(rgb) for rgb in px])
    tol = tolerance(variant)
    metrics, failures = checked(ours, theirs, tol, art.metadata["output"]["threshold"])
    print(f"\n{variant}: MediaPipe vs ours: mean abs {metrics['mean_abs']:.2e}, max abs {metrics['max_abs']:.2e}, "
          f"IoU {metrics['iou']:.4f} (checked {metrics['iou_checked']:.4f})  [{time.perf_counter() - t0:.1f} s]")
    assert not failures, failures

    if variant == "int8-float-io":
        # the whole difference is the normalization's float32 rounding at int8 rounding ties
        from edgematting.runners.tflite import TFLiteRunner

        raw = TFLiteRunner(art.path)
        mean, std = np.asarray(c["mean"], np.float32), np.asarray(c["std"], np.float32)
        x = px.astype(np.float32) * (np.float32(1) / std) + (-mean / std)
        as_mediapipe = np.stack([raw.run_raw(x[i : i + 1])[0, ..., 0] for i in range(len(x))])
        np.testing.assert_allclose(as_mediapipe, theirs, atol=1e-6)


def test_wrong_metadata_normalization_fails(confident_fast_scnn_dir, photos, clients_python, tmp_path, monkeypatch):
    """A converter that writes the wrong normalization into the standard metadata (std
    halved) makes MediaPipe's mask fail the comparison: the test above can fail."""
    from edgematting.converters import tflite_metadata

    real = tflite_metadata.segmenter_request

    def halved_std(meta, spec, config):
        req = real(meta, spec, config)
        req["input"]["std"] = [s / 2 for s in req["input"]["std"]]
        return req

    monkeypatch.setattr(tflite_metadata, "segmenter_request", halved_std)
    px, photos_path = photos
    art = export(confident_fast_scnn_dir, tmp_path / "export", precision="fp32")
    assert art.metadata["tflite"]["model_metadata"]["input_std"] == [63.75] * 3
    mp = run_mediapipe(clients_python, art.path, photos_path, tmp_path)
    assert "error" not in mp, mp
    from edgematting import runners

    runner = runners.open(art.path)
    ours = np.stack([runner.predict_photo(rgb) for rgb in px])
    for name in ("fp32", "int8-float-io"):
        metrics, failures = checked(ours, mp["confidence"][:, 0], tolerance(name))
        print(f"\nstd halved, {name} tolerance: mean abs {metrics['mean_abs']:.3f}, IoU {metrics['iou']:.3f}: {failures}")
        assert failures, f"a halved std in the metadata passed the {name} tolerance: {metrics}"


def test_reembedding_keeps_standard_metadata(exported, clients_python, tmp_path):
    """`embed_metadata` on a finished file (as tools that rewrite our JSON do) keeps the
    standard metadata and its packed label file, the tensor names and the signature."""
    from ai_edge_litert.interpreter import Interpreter

    from edgematting.converters import tflite_metadata
    from edgematting.converters.tflite import embed_metadata
    from edgematting.runners.tflite import read_embedded_metadata

    art, _ = exported("fp32")
    before = tflite_metadata.read_standard_metadata(art.path)
    again = tmp_path / "again.tflite"
    meta = dict(read_embedded_metadata(art.path), note="rewritten")
    again.write_bytes(embed_metadata(art.path.read_bytes(), meta))
    assert read_embedded_metadata(again) == meta
    assert tflite_metadata.read_standard_metadata(again) == before
    it = Interpreter(model_path=str(again))
    assert it.get_signature_list() == {"serving_default": {"inputs": ["image"], "outputs": ["alpha"]}}


def test_ci_installs_the_pinned_clients():
    """.ci/run creates the clients venv with exactly `CLIENTS_REQUIREMENTS`."""
    from edgematting.converters import tflite_metadata

    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert tflite_metadata.CLIENTS_VENV in ci
    pins = set(re.findall(r"\b[a-z][a-z0-9_.-]*==[0-9][0-9a-z.]*", ci.split(tflite_metadata.CLIENTS_VENV, 1)[1]))
    assert set(tflite_metadata.CLIENTS_REQUIREMENTS) <= pins, pins


def test_missing_clients_venv_is_a_conversion_error(monkeypatch, tmp_path):
    """Without the writer and with create=False, a ConversionError naming the fix."""
    from edgematting.converters import tflite_metadata
    from edgematting.errors import ConversionError

    monkeypatch.setenv(tflite_metadata.PYTHON_ENV, str(tmp_path / "no-python"))
    with pytest.raises(ConversionError, match=tflite_metadata.PYTHON_ENV):
        tflite_metadata.clients_python()
    monkeypatch.delenv(tflite_metadata.PYTHON_ENV)
    monkeypatch.setattr(tflite_metadata, "_repo_root", lambda: tmp_path)
    monkeypatch.setattr(tflite_metadata.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(ConversionError, match=re.escape(tflite_metadata.CLIENTS_REQUIREMENTS[0])):
        tflite_metadata.clients_python(create=False)


def test_default_venv_is_the_checkout_or_the_user_cache(monkeypatch, tmp_path):
    from edgematting.converters import tflite_metadata

    monkeypatch.setattr(tflite_metadata, "_repo_root", lambda: tmp_path / "site-packages")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert tflite_metadata.default_venv() == tmp_path / "cache" / "edgematting" / "venv-clients"
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "pyproject.toml").write_text("")
    monkeypatch.setattr(tflite_metadata, "_repo_root", lambda: tmp_path / "checkout")
    assert tflite_metadata.default_venv() == tmp_path / "checkout" / tflite_metadata.CLIENTS_VENV


def test_create_venv_publishes_only_a_complete_venv(monkeypatch, tmp_path):
    """A failed install (here: a package no index has) leaves no venv behind, so no later
    run trusts half of one; a successful one is renamed into place and found next time."""
    from edgematting.converters import tflite_metadata
    from edgematting.errors import ConversionError

    venv = tmp_path / "clients"
    with pytest.raises(ConversionError, match="by hand"):
        tflite_metadata.create_venv(venv, ("--no-index", "edgematting-no-such-package==0"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clients.lock"]

    python = tflite_metadata.create_venv(venv, ())
    assert python == venv / "bin" / "python" and python.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clients", "clients.lock"]
    out = subprocess.run([str(python), "-c", "import sys; print(sys.prefix)"], capture_output=True, text=True)
    assert Path(out.stdout.strip()) == venv  # the renamed venv knows where it is
    monkeypatch.setattr(tflite_metadata, "_repo_root", lambda: tmp_path / "none")
    monkeypatch.setattr(tflite_metadata.sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setattr(tflite_metadata, "default_venv", lambda: venv)
    monkeypatch.delenv(tflite_metadata.PYTHON_ENV, raising=False)
    assert tflite_metadata.clients_python(create=False) == python


def test_author_and_license_reach_the_standard_metadata(confident_fast_scnn_dir, clients_python, tmp_path):
    """`convert --author/--license` are written into the TFLite Model Metadata's own fields
    (the default author is edgematting, no licence)."""
    from edgematting.converters import tflite_metadata

    art = export(confident_fast_scnn_dir, tmp_path / "a", precision="fp32", author="A. Person", license="MIT")
    md = tflite_metadata.read_standard_metadata(art.path)["metadata"]
    assert (md["author"], md["license"]) == ("A. Person", "MIT")
    art = export(confident_fast_scnn_dir, tmp_path / "b", precision="fp32")
    md = tflite_metadata.read_standard_metadata(art.path)["metadata"]
    assert md["author"] == "edgematting" and "license" not in md


def test_model_trained_on_a_photo_folder_runs_in_mediapipe_with_defaults(clients_python, folder_trained_fast_scnn,
                                                                         tmp_path):
    """Issue 22, with default options on a model trained from a photo folder (not the
    synthetic fixtures): `convert` calibrates and verifies on the training photos, and both
    the default fp32 file and the camera int8 file run in MediaPipe with our runner's masks."""
    from edgematting import runners
    from edgematting.calibration import image_dir
    from edgematting.cli import main
    from edgematting.contract import read_sidecar
    from edgematting.data.io import list_images, read_image
    from edgematting.imageops import resize_bilinear

    from export_helpers import copy_model_dir

    trained, photos = folder_trained_fast_scnn
    copy_model_dir(trained, tmp_path / "m")
    for args in ([], ["--precision", "int8", "--input", "uint8", "--calib-samples", "4"]):
        assert main(["convert", str(tmp_path / "m"), "--verify-samples", "2", *args]) == 0
    px = np.stack([np.clip(np.round(resize_bilinear(read_image(p).astype(np.float32), 32, 32)), 0, 255)
                   .astype(np.uint8) for p in list_images(image_dir(photos))])
    np.save(tmp_path / "px.npy", px)
    for name in ("fast-scnn_fp32.tflite", "fast-scnn_int8_uint8.tflite"):
        art = tmp_path / "m" / "export" / name
        side = read_sidecar(art)
        assert side["verification"]["data"] == str(photos) and side["verification"]["passed"], side["verification"]
        assert side["clients"]["mediapipe_tasks"] == "supported"
        mp = run_mediapipe(clients_python, art, tmp_path / "px.npy", tmp_path)
        assert "error" not in mp, mp
        runner = runners.open(art)
        ours = np.stack([runner.predict_photo(rgb) for rgb in px])
        metrics, failures = checked(ours, mp["confidence"][:, 0], tolerance("fp32"))
        print(f"\n{name} (trained on a folder): MediaPipe vs ours mean abs {metrics['mean_abs']:.1e}")
        assert not failures, failures
