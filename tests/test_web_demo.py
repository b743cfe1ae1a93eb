"""The web demo (web_demo/): the browser as a fourth verified runtime.

* `edgematting web-demo`: typed one-line errors, and what its server serves (and refuses).
* The page's JavaScript core (src/imageops.js, src/contract.js) against Python golden
  vectors under Node: the Android goldens (tests/android_golden.py: model input, alpha,
  guided filter, composites, blur, comic effect, sidecar validation; not the stages that are
  not the page's job, JS_SKIPPED_STAGES) plus comic-effect and NCHW vectors written here.
  Bit-exact, as the Java core is.
* The page itself in headless Chromium (Debian's `chromium`, driven by `playwright-core`
  from npm; no browser download): a fixed photo is cut out with .tflite fp32 and int8
  artifacts on LiteRT.js and an .onnx fp32 artifact on onnxruntime-web, and the alpha
  computed in the browser must match the Python runner's alpha for the same artifact within
  `edgematting.verify.tolerance_for(target, precision)`. "Refine edges" (guided filter) must
  be on for a sidecar that asks for it and equal `contract.output_to_alpha(guided=...)` bit for
  bit on the model's own output; a JPEG with EXIF orientation 6 must be decoded upright. The
  comic effect must match `imageops.comic` within COMIC_TOLERANCE; the downloaded cut-out PNG must equal
  `imageops.rgba_cutout`; a screenshot with the cut-out must not be blank; and every bad
  input (not an image, huge photo, unrunnable model, mismatched or invalid sidecar, camera
  refused) must be reported on the page, a refused int8-I/O model naming the served file to
  use instead. The page must be cross-origin isolated (the server's COOP/COEP headers), run
  both runtimes on THREADS wasm threads, report the first call and the steady state (median
  and p90 of 20 runs after 3 warm-ups) for each model, which the test prints and writes to
  ``bench/browser.json`` (`edgematting.web_demo.write_browser_bench`); a normal load-and-run
  must log no console error.
* MediaPipe Tasks for web (@mediapipe/tasks-vision), the third runtime, on the same page: its
  ImageSegmenter's confidence mask for the fp32 and the int8 uint8-input .tflite must match
  the Python runner's alpha on the same model-size image within `mediapipe_tolerance`, with
  the same timing figures; a 4-channel file must be refused with the sidecar's reason
  (``clients.mediapipe_tasks``) and the served file to use instead, without trying.
* Nothing is loaded from anywhere but the page's own 127.0.0.1 server: the driver records and
  aborts any other request, and a probe request at the end shows that it would be seen.

The model is a tiny Fast-SCNN made confident and varied (as `_spread` in
test_convert_coreml.py): an untrained one outputs ~0.5 everywhere and would pass with a
wrong mean or channel order. Skipped, with the reason, only where Node, the npm packages
(`npm ci --prefix web_demo`) or Chromium are missing; `.ci/run` installs all three.
"""
from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from edgematting.contract import sidecar_path

import android_golden
from edgematting import contract, imageops, web_demo
from edgematting.cli import main as cli_main
from edgematting.verify import check, compare, tolerance_for

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "web_demo"
PHOTO = WEB / "test" / "fixtures" / "portrait.png"
CHROMIUM = os.environ.get("EDGEMATTING_CHROMIUM", "/usr/bin/chromium")
NODE = shutil.which("node")

#: Comic effect, browser vs `imageops.comic`: at most 1 uint8 level on at least 99.9% of the
#: values, and no value off by more than one colour step (51) anywhere. The JavaScript twin
#: rounds every float32 operation as numpy does and uses only correctly rounded operations
#: (+ - * / floor sqrt), so it is bit-exact in practice (the Node golden test demands it);
#: the bound leaves room for a future browser engine that fuses multiply-adds.
COMIC_TOLERANCE = {"max_level_diff": 1, "min_fraction": 0.999, "max_abs": 51}

#: wasm threads the page runs its models on in the Chromium test (?threads=): more than one,
#: so that a page that is not cross-origin isolated (no SharedArrayBuffer) shows.
THREADS = 2

#: (artifact key, target, precision, ExportConfig extras)
PARITY_CASES = [
    ("tflite-fp32", "tflite", "fp32", {}),
    ("tflite-int8", "tflite", "int8", {"calib_samples": 16}),
    ("onnx-fp32", "onnx", "fp32", {}),
    # the camera variant: raw uint8 pixels in (normalization folded in), uint8 alpha out
    ("tflite-int8-uint8", "tflite", "int8", {"calib_samples": 16, "input_type": "uint8"}),
]


#: The .tflite files run on MediaPipe Tasks too: (artifact key, tolerance of its confidence
#: mask vs `runners.open(path).predict_photo` on the same model-size image).
#: MediaPipe normalizes a float input itself from the file's standard metadata, as
#: pixel * (1/std) - mean/std (we: (pixel - mean) / std): up to one float32 rounding per input
#: value, which the float body does not amplify, so fp32 takes verify's fp32 row (max abs 1e-4;
#: measured 2e-5 mean 2e-6, IoU 1: wasm XNNPack vs native). The uint8-input int8 file gets
#: the same bytes on both sides (normalization in the graph) and runs the same int8 kernels:
#: at most one output step (1/256) on a rounding tie (measured: identical). The int8 file with
#: float I/O is not compared here: its input quantization (scale 1/127.5) puts every
#: normalized pixel on a rounding tie, so MediaPipe's rounding moves most inputs by one int8
#: level (about one int8 step of difference; tests/test_clients.py measures it natively).
MEDIAPIPE_CASES = ["tflite-fp32", "tflite-int8-uint8"]


def mediapipe_tolerance(key: str):
    from edgematting.formats import Tolerance

    if key == "tflite-fp32":
        return tolerance_for("tflite", "fp32")
    return Tolerance(max_abs=1 / 256 + 1e-6, mean_abs=1e-4, min_iou=0.999,
                     reason="same bytes in, same int8 kernels: at most one output step on a tie")


def _missing_npm() -> list[str]:
    return [p for p, f in web_demo.VENDOR.items() if not (WEB / "node_modules" / p / f).is_file()] + \
        ([] if (WEB / "node_modules" / "playwright-core" / "package.json").is_file() else ["playwright-core"])


def _need_node():
    if NODE is None:
        pytest.skip("node is not installed (the web demo's JavaScript tests need Node 20+; .ci/run installs it)")


def _need_npm():
    _need_node()
    missing = _missing_npm()
    if missing:
        pytest.skip(f"web_demo npm packages missing ({', '.join(missing)}): run `npm ci --prefix web_demo`")


def _need_chromium():
    _need_npm()
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium not found at {CHROMIUM} (Debian: `apt-get install chromium`; .ci/run installs it)")


# --------------------------------------------------------------------------------------
# the command and its server (no browser)
# --------------------------------------------------------------------------------------
def _fake_artifact(folder: Path, name: str, meta: dict | str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    a = folder / name
    a.write_bytes(b"not really a model")
    if meta is not None:
        sidecar_path(a).write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return a


def assert_one_line_error(capsys, rc: int, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == code, err
    assert err.startswith("error: ") and "Traceback" not in err and "\n" not in err, err
    for n in needles:
        assert n in err, err
    return err


def test_cli_bad_inputs_are_typed_one_line_errors(tmp_path, capsys):
    rc = cli_main(["web-demo", str(tmp_path / "nope")])
    assert_one_line_error(capsys, rc, 2, "Not found")
    (tmp_path / "empty").mkdir()
    rc = cli_main(["web-demo", str(tmp_path / "empty")])
    assert_one_line_error(capsys, rc, 2, "No .tflite or .onnx artifacts", "edgematting convert")
    ml = tmp_path / "m.mlpackage"
    ml.mkdir()
    rc = cli_main(["web-demo", str(ml)])
    assert_one_line_error(capsys, rc, 2, "Core ML")
    lonely = _fake_artifact(tmp_path / "a", "x.tflite")
    rc = cli_main(["web-demo", str(lonely)])
    assert_one_line_error(capsys, rc, 2, "No metadata sidecar", "x.tflite.json")
    broken = _fake_artifact(tmp_path / "b", "y.onnx", '{"format_version": 1,')
    rc = cli_main(["web-demo", str(broken)])
    assert_one_line_error(capsys, rc, 2, "not a readable JSON sidecar")
    rc = cli_main(["web-demo", str(_fake_artifact(tmp_path / "c", "z.tflite", {})), "--port", "70000"])
    assert_one_line_error(capsys, rc, 2, "--port")


def _web_dir_without_packages(tmp_path, monkeypatch) -> Path:
    web = tmp_path / "web_demo"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html>")
    monkeypatch.setattr(web_demo, "WEB_DIR", web)
    return web


def test_cli_without_npm_says_what_to_run_with_an_absolute_path(tmp_path, capsys, monkeypatch):
    web = _web_dir_without_packages(tmp_path, monkeypatch)
    monkeypatch.setattr(web_demo.shutil, "which", lambda name: None)
    art = _fake_artifact(tmp_path / "m", "m.tflite", {})  # artifacts are checked first, then packages
    monkeypatch.chdir(tmp_path / "m")
    rc = cli_main(["web-demo", str(art)])
    assert_one_line_error(capsys, rc, 7, "npm is not on PATH", f"npm ci --prefix {web.resolve()}")


def _fake_npm(folder: Path, script: str) -> Path:
    """An `npm` on PATH that logs its arguments and runs `script` (sh)."""
    folder.mkdir()
    npm = folder / "npm"
    npm.write_text(f'#!/bin/sh\necho "$@" >> "{folder}/calls"\n{script}\n')
    npm.chmod(0o755)
    return folder


def test_cli_installs_missing_npm_packages_itself(tmp_path, capsys, monkeypatch):
    web = _web_dir_without_packages(tmp_path, monkeypatch)
    # installs what the page needs, as `npm ci` would
    made = " && ".join(f'mkdir -p "$(dirname "$3/node_modules/{p}/{f}")" && touch "$3/node_modules/{p}/{f}"'
                       for p, f in web_demo.VENDOR.items())
    bin_dir = _fake_npm(tmp_path / "bin", made)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    lines = []
    web_demo.ensure_npm_packages(echo=lines.append)
    assert (bin_dir / "calls").read_text().split() == ["ci", "--prefix", str(web.resolve()), "--no-audit", "--no-fund"]
    assert lines == [f"installing the web demo's npm packages (once): npm ci --prefix {web.resolve()} --no-audit --no-fund"]
    assert web_demo.missing_npm_packages() == []
    web_demo.ensure_npm_packages(echo=lines.append)  # nothing to do now
    assert len(lines) == 1 and len((bin_dir / "calls").read_text().splitlines()) == 1


def test_cli_failing_npm_ci_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    web = _web_dir_without_packages(tmp_path, monkeypatch)
    bin_dir = _fake_npm(tmp_path / "bin", 'echo "npm error code ENOTFOUND" >&2; echo "npm error syscall getaddrinfo" >&2; '
                                          'echo "npm error network request to https://registry.npmjs.org failed" >&2; exit 1')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    rc = cli_main(["web-demo", str(_fake_artifact(tmp_path / "m", "m.tflite", {}))])
    err = assert_one_line_error(capsys, rc, 7, f"npm ci --prefix {web.resolve()}",
                                "ENOTFOUND: network request to https://registry.npmjs.org failed")
    assert "web_demo --no-audit" in err


def _headers(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return dict(r.headers)
    except urllib.error.HTTPError as e:
        return dict(e.headers)


def _get(url: str):
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read()
    except urllib.error.HTTPError as e:
        return e.code, None, b""


def test_server_serves_page_runtimes_and_chosen_artifacts_only(tmp_path):
    _need_npm()
    a = _fake_artifact(tmp_path / "export", "fast-scnn_fp32.tflite", {"architecture": "fast-scnn", "precision": "fp32"})
    secret = tmp_path / "secret.txt"
    secret.write_text("no")
    arts = web_demo.resolve_artifacts([tmp_path])  # a model dir: its export/ folder
    assert arts == [a]
    srv = web_demo.DemoServer(arts, port=0).start()
    try:
        u = srv.url
        assert u.startswith("http://127.0.0.1:")
        st, ct, body = _get(u)
        assert st == 200 and b"importmap" in body
        st, ct, body = _get(u + "models/index.json")
        index = json.loads(body)
        assert [m["name"] for m in index["models"]] == ["fast-scnn_fp32.tflite"]
        assert index["models"][0]["kind"] == "tflite" and index["models"][0]["sidecar"] == "models/fast-scnn_fp32.tflite.json"
        assert _get(u + "models/fast-scnn_fp32.tflite")[2] == b"not really a model"
        st, ct, _ = _get(u + "vendor/@litertjs/core/wasm/litert_wasm_internal.wasm")
        assert st == 200 and ct == "application/wasm"
        st, ct, _ = _get(u + "vendor/onnxruntime-web/dist/ort.wasm.min.mjs")
        assert st == 200 and ct == "text/javascript"
        # MediaPipe Tasks: its bundle and wasm from node_modules (no CDN), wasm as application/wasm
        st, ct, _ = _get(u + "vendor/@mediapipe/tasks-vision/vision_bundle.mjs")
        assert st == 200 and ct == "text/javascript"
        for f in ("vision_wasm_internal.wasm", "vision_wasm_nosimd_internal.wasm"):
            st, ct, body = _get(u + f"vendor/@mediapipe/tasks-vision/wasm/{f}")
            assert st == 200 and ct == "application/wasm" and body[:4] == b"\0asm", (f, st, ct)
        # cross-origin isolated: COOP + COEP on the page, CORP on everything the page and its
        # wasm workers load (the threaded builds' scripts included)
        for path in ["", "src/app.js", "models/index.json", "models/fast-scnn_fp32.tflite",
                     "vendor/@litertjs/core/wasm/litert_wasm_threaded_internal.js",
                     "vendor/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
                     "vendor/@mediapipe/tasks-vision/wasm/vision_wasm_internal.js",
                     "vendor/@mediapipe/tasks-vision/wasm/vision_wasm_internal.wasm", "nope.js"]:
            headers = _headers(u + path)
            for k, v in web_demo.ISOLATION_HEADERS.items():
                assert headers.get(k) == v, (path, k, headers.get(k))
        assert index["models"][0]["input_dtype"] is None  # this fake sidecar has no input section
        assert index["models"][0]["mediapipe"] is None  # nor a clients section (MediaPipe's verdict)
        for bad in ["models/secret.txt", "vendor/playwright-core/package.json", "node_modules/onnxruntime-web/package.json",
                    "src/../../README.md", "%2e%2e/README.md", "test/drive.mjs", "vendor/../package.json"]:
            assert _get(u + bad)[0] == 404, bad
    finally:
        srv.stop()


# --------------------------------------------------------------------------------------
# the JavaScript core against Python golden vectors (Node only)
# --------------------------------------------------------------------------------------
def _array_ref(out: Path, name: str, a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    (out / f"{name}.bin").write_bytes(a.astype(a.dtype.newbyteorder("<")).tobytes())
    return {"file": f"{name}.bin", "dtype": str(a.dtype), "shape": list(a.shape)}


def write_comic_goldens(out: Path) -> Path:
    """Comic-effect stages on a synthetic portrait and on noise -> web_manifest.json."""
    from edgematting.data.synthetic import SyntheticPortraits

    rng = np.random.default_rng(5)
    s = SyntheticPortraits(size=(48, 36), seed=3).sample(0)
    cases = []
    for name, rgb, alpha in [
        ("portrait_48x36", s["image"], s["alpha"].astype(np.float32)),
        ("noise_17x23", rng.integers(0, 256, (17, 23, 3), dtype=np.uint8),
         np.clip(rng.uniform(-0.1, 1.1, (17, 23)), 0, 1).astype(np.float32)),
    ]:
        photo = _array_ref(out, name, rgb)
        for stage, fn in [("smooth", imageops.edge_preserving_smooth), ("outline", imageops.outline_strength),
                          ("quantize", imageops.quantize_levels), ("comic_style", imageops.comic_style)]:
            cases.append({"stage": stage, "name": name, "photo": photo,
                          "expected": _array_ref(out, f"{stage}_{name}", fn(rgb))})
        cases.append({"stage": "comic", "name": name, "photo": photo, "alpha": _array_ref(out, f"alpha_{name}", alpha),
                      "expected": _array_ref(out, f"comic_{name}", imageops.comic(rgb, alpha))})
    # NCHW input (onnx --nchw): the Android app rejects it, the page accepts it
    meta = android_golden._metadata(24, 40, mean=android_golden.IMAGENET_MEAN, std=android_golden.IMAGENET_STD)
    meta["input"]["layout"] = "NCHW"
    meta["target"] = "onnx"
    cases.append({"stage": "input", "name": "nchw_float_imagenet", "photo": _array_ref(out, "photo_nchw", s["image"]),
                  "metadata": meta, "expected": _array_ref(out, "in_nchw", contract.model_input(s["image"], meta)[0])})
    path = out / "web_manifest.json"
    path.write_text(json.dumps({"format": "edgematting-web-golden", "format_version": 1, "cases": cases}, indent=1))
    return path


#: Android golden stages the JS golden test lists as deliberately not run in JavaScript (its
#: NOT_IN_JS, each with the reason): the browser orients photos itself while decoding, bounded
#: decode is the Android decoder's job, and the page checks tensors with its own runtime check.
JS_SKIPPED_STAGES = {"orient", "decode", "tensor_check"}


def test_js_core_matches_python_golden_vectors(tmp_path):
    _need_node()
    android_golden.write_golden_vectors(tmp_path)
    write_comic_goldens(tmp_path)
    r = subprocess.run([NODE, "--test", str(WEB / "test" / "golden.test.mjs")], capture_output=True, text=True,
                       env={**os.environ, "EDGEMATTING_GOLDEN_DIR": str(tmp_path)}, timeout=120)
    tail = "\n".join((r.stdout + r.stderr).strip().splitlines()[-12:])
    assert r.returncode == 0, tail
    assert "# fail 0" in r.stdout, tail
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    web = json.loads((tmp_path / "web_manifest.json").read_text())
    run_here = [c for c in manifest["cases"] if c["stage"] not in JS_SKIPPED_STAGES]
    assert {c["stage"] for c in run_here} >= {"input", "alpha", "guided", "composite", "blur"}
    n = 1 + len(run_here) + len(manifest["metadata_files"]) + len(web["cases"])
    assert f"# pass {n}" in r.stdout, tail  # every case ran
    skipped = set(re.findall(r"^ok \d+ - (\w+): \d+ cases .*# SKIP not run in JS: ", r.stdout, re.M))
    assert skipped == JS_SKIPPED_STAGES and f"# skipped {len(JS_SKIPPED_STAGES)}" in r.stdout, tail


def test_js_golden_test_fails_on_an_unknown_stage(tmp_path):
    """A stage the JS test neither runs nor lists as not run in JS fails it (it is not skipped)."""
    _need_node()
    path = android_golden.write_golden_vectors(tmp_path)
    write_comic_goldens(tmp_path)
    manifest = json.loads(path.read_text())
    manifest["cases"].append({"stage": "sharpen", "name": "new_stage", "photo": manifest["cases"][0]["photo"],
                              "expected": manifest["cases"][0]["photo"]})
    path.write_text(json.dumps(manifest))
    r = subprocess.run([NODE, "--test", str(WEB / "test" / "golden.test.mjs")], capture_output=True, text=True,
                       env={**os.environ, "EDGEMATTING_GOLDEN_DIR": str(tmp_path)}, timeout=120)
    assert r.returncode != 0 and "# fail 1" in r.stdout, r.stdout[-2000:]
    assert re.search(r"^not ok \d+ - sharpen: new_stage", r.stdout, re.M), r.stdout[-2000:]


# --------------------------------------------------------------------------------------
# the page in headless Chromium
# --------------------------------------------------------------------------------------
def _spread(model, centre_on: np.ndarray, seed=0):
    """Confident, varied outputs from a random tiny model (as test_convert_coreml._spread):
    random BatchNorm affines with statistics from one batch, then logits x3, centred on the
    test photo `centre_on` (a model input) so that about half of it is person."""
    from edgematting._tf import keras

    L = keras().layers
    rng = np.random.default_rng(seed)
    x = ((rng.integers(0, 256, (8,) + tuple(model.input_shape[1:])) - 127.5) / 127.5).astype("float32")
    bns = [lyr for lyr in model.layers if isinstance(lyr, L.BatchNormalization)]
    for lyr in bns:
        g, b, mm, mv = lyr.get_weights()
        lyr.set_weights([rng.uniform(0.7, 1.3, g.shape).astype("float32"),
                         rng.normal(0, 0.2, b.shape).astype("float32"), mm, mv])
        lyr.momentum = 0.0
    model(x, training=True)
    for lyr in bns:
        lyr.momentum = 0.99
    last = [lyr for lyr in model.layers if isinstance(lyr, L.Conv2D) and lyr.use_bias and lyr.filters == 1][-1]
    y = np.clip(model.predict(centre_on, verbose=0), 1e-6, 1 - 1e-6)
    k, b = last.get_weights()
    last.set_weights([k * 3.0, (b - np.median(np.log(y / (1 - y)))) * 3.0])
    return model


def _read_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _b64(s: str, dtype, shape) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype=dtype).reshape(shape)


@pytest.fixture(scope="module")
def page_run(request, tmp_path_factory):
    """Make the artifacts and bad inputs, serve them, drive the page once; return what it saw."""
    _need_chromium()  # before building the model
    tiny_fast_scnn_dir = request.getfixturevalue("tiny_fast_scnn_dir")
    from PIL import Image

    from edgematting.converters import convert_model
    from edgematting.converters.base import ExportConfig
    from edgematting.modelio import load_model_dir, save_model_dir

    tmp = tmp_path_factory.mktemp("web_demo")
    model, spec = load_model_dir(tiny_fast_scnn_dir)
    h, w = spec.input_size
    x_photo = imageops.to_model_input(_read_rgb(PHOTO), (h, w), spec.mean, spec.std)
    md = save_model_dir(_spread(model, x_photo), spec, tmp / "model")
    export = tmp / "export"
    arts = {}
    for key, target, precision, extra in PARITY_CASES:
        cfg = ExportConfig(target=target, precision=precision, verify=False, **extra)
        arts[key] = convert_model(md, cfg, out_dir=export, progress=False).path
    # a model LiteRT.js cannot run: int8 input/output tensors (it has float32/int32/uint8 only)
    int8io = convert_model(md, ExportConfig(target="tflite", precision="int8", tflite={"io": "int8"}, calib_samples=16,
                                            verify=False), out_dir=export, progress=False).path
    # a file MediaPipe Tasks refuses (sidecar clients.mediapipe_tasks: 4-channel input); LiteRT.js runs it
    four = convert_model(md, ExportConfig(target="tflite", precision="fp32", channels=4, verify=False),
                         out_dir=export, progress=False).path
    bad = tmp / "bad"
    bad.mkdir()
    # a valid sidecar of another model beside the fp32 model: the tensors disagree
    mismatch = bad / "mismatch_fp32.tflite"
    shutil.copy(arts["tflite-fp32"], mismatch)
    shutil.copy(sidecar_path(int8io), bad / "mismatch_fp32.tflite.json")
    # a sidecar that breaks the contract
    invalid = bad / "badmeta_fp32.tflite"
    shutil.copy(arts["tflite-fp32"], invalid)
    meta = json.loads(sidecar_path(arts["tflite-fp32"]).read_text())
    meta["input"]["dtype"] = "float64"
    (bad / "badmeta_fp32.tflite.json").write_text(json.dumps(meta))
    not_image = tmp / "holiday.jpg"
    not_image.write_text("these are my holiday notes, not a photo\n")
    huge = tmp / "huge.png"
    Image.open(PHOTO).convert("RGB").resize((3000, 2000), Image.BILINEAR).save(huge, compress_level=1)
    # the fp32 model with a sidecar that asks for the guided filter
    guided = bad / "guided_fp32.tflite"
    shutil.copy(arts["tflite-fp32"], guided)
    meta = json.loads(sidecar_path(arts["tflite-fp32"]).read_text())
    meta["postprocess"] = {"guided_filter": GUIDED_SIDECAR}
    (bad / "guided_fp32.tflite.json").write_text(json.dumps(meta))
    # a photo stored sideways, with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    sideways = tmp / "sideways.jpg"
    _sideways_jpeg(sideways)

    served = [*arts.values(), int8io, four, mismatch, invalid, guided]
    srv = web_demo.DemoServer(served, port=0).start()
    url = srv.url
    shots = tmp / "shots"
    shots.mkdir()

    def wait(*states, ms=60000):
        return {"do": "wait", "states": list(states), "timeout_ms": ms}

    def save_text(sel, key):
        return {"do": "text", "selector": sel, "save": key}

    def save_eval(expr, key):
        return {"do": "eval", "expr": expr, "save": key}

    steps = [{"do": "goto", "url": f"{url}?model={arts['tflite-fp32'].name}&threads={THREADS}"}, wait("ready", "error"),
             save_eval("crossOriginIsolated", "isolated"), save_eval("navigator.hardwareConcurrency", "cores"),
             save_eval("window.edgemattingDemo.threading()", "threading"),
             # without it the page runs one thread and the thread control is disabled: stop here, saying so
             {"do": "expect", "expr": "crossOriginIsolated",
              "message": "the page is not cross-origin isolated (crossOriginIsolated is false): no wasm threads"},
             {"do": "files", "selector": "#photo-input", "paths": [str(PHOTO)]}, wait("done", "error")]
    for key in arts:
        if key != "tflite-fp32":
            steps += [{"do": "select", "selector": "#model", "value": arts[key].name}, wait("done", "error")]
        steps += [save_text("#message", f"{key}.message"), save_text("#stats", f"{key}.stats"),
                  save_eval("window.edgemattingDemo.alphaBase64()", f"{key}.alpha"),
                  save_eval("window.edgemattingDemo.timing()", f"{key}.timing")]
    steps += [  # another thread count: the model is opened again with it and measured again
        {"do": "select", "selector": "#model", "value": arts["tflite-int8"].name}, wait("done", "error"),
        {"do": "select", "selector": "#threads", "value": "1"}, wait("done", "error"),
        save_text("#stats", "one_thread.stats"), save_eval("window.edgemattingDemo.timing()", "one_thread.timing"),
        {"do": "select", "selector": "#threads", "value": str(THREADS)}, wait("done", "error"),
    ]
    # MediaPipe Tasks: the runtime control, the same photo, then a file it refuses, back to LiteRT.js
    steps += [{"do": "select", "selector": "#model", "value": arts["tflite-fp32"].name}, wait("done", "error"),
              {"do": "select", "selector": "#runtime", "value": "mediapipe"}, wait("done", "error")]
    for i, key in enumerate(MEDIAPIPE_CASES):
        k = f"mediapipe-{key}"
        if i:
            steps += [{"do": "select", "selector": "#model", "value": arts[key].name}, wait("done", "error")]
        steps += [save_text("#message", f"{k}.message"), save_text("#stats", f"{k}.stats"),
                  save_eval("window.edgemattingDemo.alphaBase64()", f"{k}.alpha"),
                  save_eval("window.edgemattingDemo.rawBase64()", f"{k}.raw"),
                  save_eval("window.edgemattingDemo.inputImageBase64()", f"{k}.input"),
                  save_eval("window.edgemattingDemo.timing()", f"{k}.timing")]
    steps += [
        {"do": "select", "selector": "#model", "value": four.name}, wait("done", "error"),
        save_text("#message", "mediapipe_4ch.message"), save_eval("document.body.dataset.state", "mediapipe_4ch.state"),
        {"do": "select", "selector": "#runtime", "value": "litert"}, wait("done", "error"),
        save_text("#message", "litert_4ch.message"), save_text("#stats", "litert_4ch.stats"),
    ]
    steps += [  # "Refine edges": on by default when the sidecar asks for it, the user's choice kept after that
        {"do": "select", "selector": "#model", "value": guided.name}, wait("done", "error"),
        save_eval("document.getElementById('guided').checked", "guided_sidecar.checked"),
        save_eval("window.edgemattingDemo.alphaBase64()", "guided_sidecar.alpha"),
        save_eval("window.edgemattingDemo.rawBase64()", "guided_sidecar.raw"),
        save_text("#stats", "guided_sidecar.stats"),
        # clicks, not check/uncheck: a box in the wrong state then fails a check below, not by a timeout
        {"do": "click", "selector": "#guided"}, wait("done", "error"),
        save_eval("window.edgemattingDemo.alphaBase64()", "guided_off.alpha"),
        save_text("#stats", "guided_off.stats"),
        {"do": "select", "selector": "#model", "value": arts["tflite-fp32"].name}, wait("done", "error"),
        save_eval("document.getElementById('guided').checked", "guided_kept_off.checked"),
        {"do": "click", "selector": "#guided"}, wait("done", "error"),
        save_eval("window.edgemattingDemo.alphaBase64()", "guided_default.alpha"),
        save_eval("window.edgemattingDemo.rawBase64()", "guided_default.raw"),
        save_text("#stats", "guided_default.stats"),
        {"do": "click", "selector": "#guided"}, wait("done", "error"),
    ]
    steps += [  # cut-out (fp32 tflite): download, screenshot
        {"do": "select", "selector": "#model", "value": arts["tflite-fp32"].name}, wait("done", "error"),
        save_eval("window.edgemattingDemo.alphaBase64()", "cutout.alpha"),
        {"do": "download", "selector": "#download", "path": str(tmp / "cutout.png"), "save": "cutout.filename"},
        {"do": "screenshot", "path": str(shots / "cutout.png")},
        save_eval("JSON.stringify(document.getElementById('result').getBoundingClientRect())", "cutout.rect"),
        # comic effect over the original scene
        {"do": "check", "selector": "#bg-photo"}, wait("done", "error"),
        {"do": "check", "selector": "#comic"}, wait("done", "error"),
        save_eval("window.edgemattingDemo.outputBase64()", "comic.output"),
        save_eval("window.edgemattingDemo.alphaBase64()", "comic.alpha"),
        {"do": "screenshot", "path": str(shots / "comic.png")},
        {"do": "uncheck", "selector": "#comic"}, wait("done", "error"),
        {"do": "check", "selector": "#bg-transparent"}, wait("done", "error"),
        # bad inputs, each reported on the page (a runtime may log errors on the console meanwhile)
        {"do": "phase", "name": "bad input"},
        {"do": "files", "selector": "#photo-input", "paths": [str(not_image)]}, wait("done", "error"),
        save_text("#message", "not_image.message"), save_eval("document.body.dataset.state", "not_image.state"),
        {"do": "files", "selector": "#photo-input", "paths": [str(huge)]}, wait("done", "error", ms=90000),
        save_text("#message", "huge.message"), save_text("#notes", "huge.notes"),
        save_eval("[document.getElementById('result').width, document.getElementById('result').height]", "huge.canvas"),
        # a photo dropped on the page
        save_eval("document.body.dataset.state = 'pending'", "_"), save_eval(DROP_PHOTO_JS, "_"), wait("done", "error"),
        save_eval("[document.getElementById('result').width, document.getElementById('result').height]", "drop.canvas"),
        save_text("#message", "drop.message"),
        # a photo with EXIF orientation 6: the browser decodes it upright
        {"do": "files", "selector": "#photo-input", "paths": [str(sideways)]}, wait("done", "error"),
        save_eval("window.edgemattingDemo.photoSize()", "exif.size"),
        save_eval("window.edgemattingDemo.photoBase64()", "exif.photo"),
        save_text("#message", "exif.message"),
        {"do": "files", "selector": "#photo-input", "paths": [str(PHOTO)]}, wait("done", "error"),
        {"do": "select", "selector": "#model", "value": int8io.name}, wait("done", "error"),
        save_text("#message", "unrunnable.message"),
        {"do": "select", "selector": "#model", "value": mismatch.name}, wait("done", "error"),
        save_text("#message", "mismatch.message"),
        {"do": "select", "selector": "#model", "value": invalid.name}, wait("done", "error"),
        save_text("#message", "invalid.message"),
        {"do": "screenshot", "path": str(shots / "error.png")},
        # camera: refused (no permission granted), then allowed (Chromium's fake camera)
        {"do": "goto", "url": url}, wait("ready", "error"),
        {"do": "click", "selector": "#camera"}, wait("live", "error", ms=20000),
        save_text("#message", "camera_refused.message"),
        {"do": "phase", "name": "normal"},
        {"do": "goto", "url": url, "permissions": ["camera"]}, wait("ready", "error"),
        save_eval("document.getElementById('threads').value", "default_threads"),
        {"do": "click", "selector": "#camera"}, wait("live", "error", ms=20000),
        {"do": "sleep", "ms": 1500}, save_text("#stats", "camera.stats"), save_text("#message", "camera.message"),
        {"do": "click", "selector": "#camera"},
        # last: a request to another host, which the driver must see (and abort), so that
        # check_local_only is seen to catch one
        {"do": "phase", "name": "outside probe"},
        save_eval(f"fetch({OUTSIDE_PROBE!r}).then(() => 'loaded', () => 'blocked')", "probe.fetch"),
    ]
    plan = tmp / "plan.json"
    result_path = tmp / "result.json"
    plan.write_text(json.dumps({"executable": CHROMIUM, "steps": steps}))
    try:
        r = subprocess.run([NODE, str(WEB / "test" / "drive.mjs"), str(plan), str(result_path)],
                           capture_output=True, text=True, timeout=240)
    finally:
        srv.stop()
    if not result_path.is_file():
        pytest.fail(f"the browser driver wrote nothing (exit {r.returncode}): {(r.stdout + r.stderr)[-3000:]}")
    res = json.loads(result_path.read_text())
    assert "error" not in res, f"{res.get('error')} (page state {res.get('state')}, message {res.get('message')!r}); " \
                               f"console: {res['console'][-5:]}; page errors: {res['pageErrors']}"
    timings = {key: res["saved"][f"{key}.timing"] for key in arts}
    timings["tflite-int8 (1 thread)"] = res["saved"]["one_thread.timing"]
    for key in MEDIAPIPE_CASES:
        timings[f"{key} (MediaPipe Tasks)"] = res["saved"][f"mediapipe-{key}.timing"]
    bench_json = _write_browser_bench(timings, arts, tmp / "model" / "bench" / web_demo.BROWSER_BENCH_FILE)
    return {"saved": res["saved"], "result": res, "artifacts": arts, "tmp": tmp, "shots": shots, "url": url,
            "sideways": sideways, "bench_json": bench_json, "four": four}


def _write_browser_bench(timings: dict, arts: dict, path: Path) -> Path:
    """The page's figures, one row per artifact and thread count, where `bench` finds them
    (MODEL_DIR/bench/browser.json); a copy also at $EDGEMATTING_BROWSER_BENCH_JSON if set."""
    rows = []
    for key, t in timings.items():
        if not t:
            continue
        meta = contract.read_sidecar(arts[key.split(" ")[0]])
        rows.append({"artifact": t["model"], "precision": meta.get("precision"), "target": meta.get("target"),
                     "input": f"{meta['input']['height']}x{meta['input']['width']}", "input_dtype": meta["input"]["dtype"],
                     "threads": t["threads"], "runtime": t.get("runtime"),
                     "browser": {"first_ms": round(t["first"], 3), "median_ms": round(t["median"], 3),
                                 "p90_ms": round(t["p90"], 3), "runs": t["runs"],
                                 "warmups": t["warmups"], "threads": t["threads"], "backend": t["backend"],
                                 "cross_origin_isolated": t["crossOriginIsolated"]}})
    extra = {"note": "tiny 64x64 test model (tests/test_web_demo.py); figures of real models: web_demo/test/latency.py"}
    files = [Path(a) for a in arts.values() if isinstance(a, (str, Path))]  # fingerprints: bench can use the rows
    web_demo.write_browser_bench(rows, path, source="tests/test_web_demo.py", extra=extra, artifacts=files)
    if os.environ.get("EDGEMATTING_BROWSER_BENCH_JSON"):
        web_demo.write_browser_bench(rows, Path(os.environ["EDGEMATTING_BROWSER_BENCH_JSON"]), source="tests/test_web_demo.py",
                                     extra=extra, artifacts=files)
    return path


#: A request to another host, made by the page at the end of the run (check_local_only).
OUTSIDE_PROBE = "https://cdn.jsdelivr.net/npm/@mediapipe/tasks-vision/package.json"

#: postprocess.guided_filter of the test sidecar that asks for it (not the defaults, so that the
#: page is seen to use the sidecar's parameters)
GUIDED_SIDECAR = {"radius": 2, "eps": 1e-3}


def _sideways_jpeg(path: Path) -> None:
    """A 40x30 JPEG of four coloured quadrants stored sideways: EXIF orientation 6."""
    from PIL import Image

    img = np.zeros((30, 40, 3), np.uint8)
    img[:15, :20], img[:15, 20:], img[15:, :20], img[15:, 20:] = (230, 30, 30), (30, 200, 40), (40, 40, 220), (240, 230, 30)
    im = Image.fromarray(img)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(path, "JPEG", quality=95, exif=exif.tobytes())


#: Drops a 40x30 PNG made in the page onto it, as a person dragging a file would.
DROP_PHOTO_JS = """(async () => {
  const cv = document.createElement('canvas'); cv.width = 40; cv.height = 30;
  const ctx = cv.getContext('2d'); ctx.fillStyle = '#c33'; ctx.fillRect(0, 0, 40, 30);
  const blob = await new Promise((r) => cv.toBlob(r, 'image/png'));
  const dt = new DataTransfer(); dt.items.add(new File([blob], 'dropped.png', {type: 'image/png'}));
  document.getElementById('stage').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
  return true; })()"""


def _python_alpha(artifact: Path, photo: np.ndarray) -> tuple[np.ndarray, dict]:
    """The Python runner on the same photo through the same pipeline (contract.model_input,
    run_raw, contract.output_to_alpha), contract from the same sidecar."""
    from edgematting.runners import load_runner

    meta = contract.read_sidecar(artifact)
    runner = load_runner(artifact, num_threads=1)
    raw = runner.run_raw(contract.model_input(photo, meta))
    return contract.output_to_alpha(raw, meta, photo.shape[:2]), meta


def check_alpha_parity(page_run, key, target, precision):
    saved = page_run["saved"]
    photo = _read_rgb(PHOTO)
    h, w = photo.shape[:2]
    assert saved[f"{key}.message"] == "", saved[f"{key}.message"]
    runtime = "LiteRT.js" if target == "tflite" else "onnxruntime-web"
    assert runtime in saved[f"{key}.stats"] and "wasm" in saved[f"{key}.stats"], saved[f"{key}.stats"]
    assert "first call" in saved[f"{key}.stats"] and "p90 per frame" in saved[f"{key}.stats"], saved[f"{key}.stats"]
    browser = _b64(saved[f"{key}.alpha"], np.float32, (h, w))
    ref, meta = _python_alpha(page_run["artifacts"][key], photo)
    # the parity check means something only if the model is confident and varied here
    assert (ref < 0.2).mean() > 0.1 and (ref > 0.8).mean() > 0.1, "fixture model outputs are not varied enough"
    tol = tolerance_for(target, precision)
    m = compare(ref[None, ..., None], browser[None, ..., None], meta["output"]["threshold"], tol.iou_band)
    checks, failures = check(m, tol)
    print(f"\n{key}: max abs {m['max_abs']:.2e}, mean abs {m['mean_abs']:.2e}, IoU {m['iou_checked']:.4f} "
          f"(tolerance {tol.to_dict()})")
    assert not failures, failures


def check_mediapipe_parity(page_run, key):
    """MediaPipe Tasks' ImageSegmenter on the page: given the model-size image (the photo
    through the contract's bilinear resize, rounded to bytes: `imageops.round_to_uint8(
    imageops.resize_bilinear(photo, h, w))`, checked here byte for byte), its confidence mask
    at model resolution matches `runners.open(path).predict_photo` of that image within
    `mediapipe_tolerance(key)`; the alpha on the page is that mask upsampled as the other
    runtimes' (`imageops.alpha_to_photo`, bit for bit); the same timing figures are shown."""
    from edgematting import runners

    s = page_run["saved"]
    k = f"mediapipe-{key}"
    assert s[f"{k}.message"] == "", s[f"{k}.message"]
    stats = s[f"{k}.stats"]
    assert "MediaPipe Tasks 0.10.35" in stats and "ImageSegmenter" in stats and "1 thread" in stats, stats
    assert "first call" in stats and "p90 per frame" in stats, stats
    art = page_run["artifacts"][key]
    meta = contract.read_sidecar(art)
    mh, mw = meta["input"]["height"], meta["input"]["width"]
    photo = _read_rgb(PHOTO)
    h, w = photo.shape[:2]
    image = imageops.round_to_uint8(imageops.resize_bilinear(photo, mh, mw))
    fed = _b64(s[f"{k}.input"], np.uint8, (mh, mw, 4))
    np.testing.assert_array_equal(fed[..., :3], image)
    assert (fed[..., 3] == 255).all()
    mask = _b64(s[f"{k}.raw"], np.float32, (mh, mw))
    ref = runners.open(art).predict_photo(image)
    assert ref.shape == (mh, mw)
    assert (ref < 0.2).mean() > 0.1 and (ref > 0.8).mean() > 0.1, "fixture model outputs are not varied enough"
    tol = mediapipe_tolerance(key)
    m = compare(ref[None, ..., None], mask[None, ..., None], meta["output"]["threshold"], tol.iou_band)
    checks, failures = check(m, tol)
    print(f"\n{k} (model resolution {mh}x{mw}): max abs {m['max_abs']:.2e}, mean abs {m['mean_abs']:.2e}, "
          f"IoU {m['iou_checked']:.4f} (tolerance {tol.to_dict()})")
    assert not failures, failures
    np.testing.assert_array_equal(_b64(s[f"{k}.alpha"], np.float32, (h, w)), imageops.alpha_to_photo(mask, (h, w)))


def check_mediapipe_refusal(page_run):
    """A file MediaPipe Tasks cannot take (4-channel input): the page shows the sidecar's
    reason (clients.mediapipe_tasks) instead of trying, and names the served file to use
    instead; LiteRT.js, chosen in the runtime control, runs the same file."""
    s = page_run["saved"]
    four = page_run["four"]
    verdict = contract.read_sidecar(four)["clients"]["mediapipe_tasks"]
    assert verdict.startswith("unsupported: "), verdict
    msg = s["mediapipe_4ch.message"]
    assert s["mediapipe_4ch.state"] == "error", s["mediapipe_4ch.state"]
    assert f"MediaPipe Tasks 0.10.35 cannot take {four.name} (its sidecar, clients.mediapipe_tasks): " in msg, msg
    assert verdict.removeprefix("unsupported: ") in msg, msg
    assert f"Choose {page_run['artifacts']['tflite-fp32'].name}" in msg and "(served here) instead" in msg, msg
    assert s["litert_4ch.message"] == "" and "LiteRT.js" in s["litert_4ch.stats"], (s["litert_4ch.message"], s["litert_4ch.stats"])


def check_comic(page_run):
    saved = page_run["saved"]
    photo = _read_rgb(PHOTO)
    h, w = photo.shape[:2]
    alpha = _b64(saved["comic.alpha"], np.float32, (h, w))
    browser = _b64(saved["comic.output"], np.uint8, (h, w, 4))
    assert (browser[..., 3] == 255).all()
    ref = imageops.comic(photo, alpha)
    d = np.abs(browser[..., :3].astype(int) - ref.astype(int))
    within = float((d <= COMIC_TOLERANCE["max_level_diff"]).mean())
    print(f"\ncomic: {float((d == 0).mean()):.4%} of values identical, {within:.4%} within "
          f"{COMIC_TOLERANCE['max_level_diff']} level, max diff {int(d.max())}")
    assert within >= COMIC_TOLERANCE["min_fraction"] and d.max() <= COMIC_TOLERANCE["max_abs"], (within, d.max())
    # and the effect did something to the person
    person = alpha > 0.9
    assert (np.abs(ref.astype(int) - photo.astype(int)).max(-1)[person] > 8).mean() > 0.3


def check_guided_filter(page_run):
    """The page's "Refine edges": on by default for a sidecar with postprocess.guided_filter
    (its radius and eps), bit-exact with contract.output_to_alpha(guided=...) on the model's
    own output; off gives the plain alpha; the user's choice then holds for the next model,
    and on with a sidecar that asks for nothing uses imageops.GuidedFilter's defaults."""
    s = page_run["saved"]
    photo = _read_rgb(PHOTO)
    h, w = photo.shape[:2]
    meta = contract.read_sidecar(page_run["artifacts"]["tflite-fp32"])
    mh, mw = meta["output"]["height"], meta["output"]["width"]
    assert s["guided_sidecar.checked"] is True, "Refine edges must be on when the sidecar asks for the guided filter"
    raw = _b64(s["guided_sidecar.raw"], np.float32, (1, mh, mw, 1))
    want = contract.output_to_alpha(raw, meta, (h, w), guide=photo, guided=imageops.GuidedFilter(**GUIDED_SIDECAR))
    got = _b64(s["guided_sidecar.alpha"], np.float32, (h, w))
    np.testing.assert_array_equal(got, want)
    plain = contract.output_to_alpha(raw, meta, (h, w))
    assert np.abs(want - plain).max() > 0.01, "the guided filter changed nothing on this photo"
    assert "guided-filter edges (radius 2, eps 0.001)" in s["guided_sidecar.stats"], s["guided_sidecar.stats"]
    np.testing.assert_array_equal(_b64(s["guided_off.alpha"], np.float32, (h, w)), plain)
    assert "bilinear edges" in s["guided_off.stats"], s["guided_off.stats"]
    assert s["guided_kept_off.checked"] is False, "the user's choice must hold for the next model"
    raw = _b64(s["guided_default.raw"], np.float32, (1, mh, mw, 1))
    want = contract.output_to_alpha(raw, meta, (h, w), guide=photo, guided=imageops.GuidedFilter())
    np.testing.assert_array_equal(_b64(s["guided_default.alpha"], np.float32, (h, w)), want)
    g = imageops.GuidedFilter()  # the page's defaults are Python's (tests/test_upsample.py checks the source)
    assert f"guided-filter edges (radius {g.radius}, eps {g.eps:g})" in s["guided_default.stats"], \
        s["guided_default.stats"]


def check_exif_orientation(page_run):
    """The browser applies EXIF orientation itself while decoding (the page asks for
    imageOrientation 'from-image'): a photo stored sideways with orientation 6 is upright on
    the page, as PIL's exif_transpose (and imageops.apply_exif_orientation) turns it."""
    from PIL import Image, ImageOps

    s = page_run["saved"]
    assert s["exif.message"] == "", s["exif.message"]
    with Image.open(page_run["sideways"]) as im:
        want = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    assert want.shape == (40, 30, 3)
    assert s["exif.size"] == [30, 40], f"decoded {s['exif.size']} (w, h): not turned upright"
    got = _b64(s["exif.photo"], np.uint8, (40, 30, 4))[..., :3].astype(int)
    # JPEG decoders differ by a few levels; the quadrants' centres are 230 levels apart when misplaced
    for y, x in [(7, 7), (7, 22), (32, 7), (32, 22)]:
        assert np.abs(got[y, x] - want[y, x]).max() <= 12, (y, x, got[y, x], want[y, x])


def check_cutout_download_and_screenshot(page_run):
    from PIL import Image

    saved = page_run["saved"]
    photo = _read_rgb(PHOTO)
    h, w = photo.shape[:2]
    alpha = _b64(saved["cutout.alpha"], np.float32, (h, w))
    assert saved["cutout.filename"] == "portrait-transparent.png"
    with Image.open(page_run["tmp"] / "cutout.png") as im:
        assert im.mode == "RGBA" and im.size == (w, h)
        png = np.asarray(im)
    np.testing.assert_array_equal(png, imageops.rgba_cutout(photo, alpha))
    # the screenshot shows the cut-out: the canvas region is not blank
    rect = json.loads(saved["cutout.rect"])
    assert rect["width"] > 50 and rect["height"] > 50
    with Image.open(page_run["shots"] / "cutout.png") as shot:
        region = np.asarray(shot.convert("RGB"))[int(rect["top"]):int(rect["bottom"]), int(rect["left"]):int(rect["right"])]
    colours = len(np.unique(region.reshape(-1, 3), axis=0))
    assert region.std() > 10 and colours > 200, (region.std(), colours)


def check_bad_input_reported_on_the_page(page_run):
    s = page_run["saved"]
    assert s["not_image.state"] == "error"
    assert "“holiday.jpg” is not an image this browser can open" in s["not_image.message"], s["not_image.message"]
    # a huge photo: downscaled for inference, the cut-out kept at full size
    assert s["huge.message"] == "", s["huge.message"]
    assert s["huge.canvas"] == [3000, 2000]
    assert "the model sees a 1024×683 downscaled copy; the cut-out keeps the full 3000×2000" in s["huge.notes"], s["huge.notes"]
    # a model the runtime cannot run: the runtime's reason, and the served files to use instead
    msg = s["unrunnable.message"]
    assert "LiteRT.js 2.5.3 cannot run fast-scnn_int8_ioint8.tflite" in msg and "INT8" in msg, msg
    assert ("LiteRT.js has no int8 input or output tensors: choose fast-scnn_int8.tflite or "
            "fast-scnn_int8_uint8.tflite (served here) instead.") in msg, msg
    msg = s["mismatch.message"]
    assert "mismatch_fp32.tflite.json does not match mismatch_fp32.tflite" in msg, msg
    assert "the sidecar says input int8 [1, 64, 64, 3], the model takes float32 [1, 64, 64, 3]" in msg, msg
    msg = s["invalid.message"]
    assert "badmeta_fp32.tflite.json: model metadata key 'input.dtype'" in msg, msg
    assert "Camera permission was refused" in s["camera_refused.message"], s["camera_refused.message"]
    assert s["drop.canvas"] == [40, 30] and s["drop.message"] == "", (s["drop.canvas"], s["drop.message"])


def check_camera(page_run):
    s = page_run["saved"]
    assert s["camera.message"] == "", s["camera.message"]
    assert "LiteRT.js" in s["camera.stats"] and "frames/s" in s["camera.stats"], s["camera.stats"]


def check_cross_origin_isolated(page_run):
    """The server's COOP/COEP headers make the page cross-origin isolated, so both runtimes
    may use wasm threads."""
    s = page_run["saved"]
    assert s["isolated"] is True, "the page is not cross-origin isolated (crossOriginIsolated is false): no wasm threads"
    assert s["threading"]["isolated"] is True and s["threading"]["chosen"] == min(THREADS, s["cores"]), s["threading"]
    # the control's default without ?threads=: min(4, cores)
    assert s["default_threads"] == str(min(4, s["cores"])), (s["default_threads"], s["cores"])


def _js_fixed(x: float, digits: int) -> str:
    """JavaScript's ``x.toFixed(digits)``: the exact binary value rounded, ties away from zero
    (Python's format rounds ties to even: 0.625 -> "0.62" where the page shows "0.63")."""
    from decimal import ROUND_HALF_UP, Decimal

    return str(Decimal(x).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def check_steady_state_figures(page_run):
    """For each model the page reports the first call and the steady state (median, p90 of
    20 runs after 3 warm-ups) on THREADS threads; the test prints them and writes them to
    bench/browser.json. A new thread count re-opens and re-measures the model."""
    s = page_run["saved"]
    want = min(THREADS, s["cores"])
    assert want > 1, f"this machine's browser has {s['cores']} core(s): no thread count > 1 to test"
    print(f"\nbrowser steady state, tiny 64x64 test model, cross-origin isolated: {s['isolated']} "
          f"({s['cores']} cores; written to {page_run['bench_json']})")
    problems = []
    for key in [k for k, *_ in PARITY_CASES] + ["one_thread"] + [f"mediapipe-{k}" for k in MEDIAPIPE_CASES]:
        t = s[f"{key}.timing"]
        threads = 1 if key == "one_thread" or key.startswith("mediapipe-") else want  # MediaPipe's wasm: one thread
        print(f"  {t['model']:<32} {t['threads']} thread(s): first call {t['first']:7.2f} ms, steady median "
              f"{t['median']:6.2f} ms, p90 {t['p90']:6.2f} ms ({t['runs']} runs after {t['warmups']} warm-ups) · {t['backend']}")
        if t["threads"] != threads or f"{threads} thread{'s' if threads > 1 else ''}" not in t["backend"]:
            problems.append(f"{key}: {t['threads']} thread(s) ({t['backend']}), expected {threads}")
        if not (t["runs"] == 20 and t["warmups"] == 3 and 0 < t["median"] <= t["p90"] and t["first"] > 0):
            problems.append(f"{key}: figures {t}")
        stats = s["one_thread.stats" if key == "one_thread" else f"{key}.stats"]
        if f"{_js_fixed(t['median'], 2)} ms median" not in stats and f"{_js_fixed(t['median'], 1)} ms median" not in stats:
            problems.append(f"{key}: the page does not show the steady state it measured: {stats!r}")
    assert not problems, problems
    doc = json.loads(page_run["bench_json"].read_text())
    assert doc["format"] == web_demo.BROWSER_BENCH_FORMAT and len(doc["rows"]) == len(PARITY_CASES) + 1 + len(MEDIAPIPE_CASES)
    assert all(r["browser"]["cross_origin_isolated"] for r in doc["rows"])


def check_no_console_errors(page_run):
    """A normal load-and-run logs no error on the console (LiteRT's wasm used to print its
    INFO lines with console.error); only the bad-input steps may."""
    errors = [c["text"][:300] for c in page_run["result"]["console"] if c["phase"] == "normal" and c["type"] == "error"]
    assert errors == [], errors


def check_local_only(page_run):
    """Everything the page (and its workers) loads comes from its own 127.0.0.1 server: the
    runtimes' scripts and wasm included, no CDN, no telemetry. The driver records (and aborts)
    any request to another host; the probe at the end shows that such a request is seen."""
    from urllib.parse import urlsplit

    res = page_run["result"]
    assert res["pageErrors"] == [], res["pageErrors"]
    probe = "{0.scheme}://{0.netloc}".format(urlsplit(OUTSIDE_PROBE))
    outside = [o for o in res["outside"] if o["phase"] != "outside probe"]
    assert outside == [], f"the page loaded from outside 127.0.0.1: {outside}"
    origins = set(res["origins"]) - {probe}
    want = page_run["url"].rstrip("/")
    assert origins and origins <= {want}, origins
    # the detector works: the probe's request was seen and stopped
    assert res["saved"]["probe.fetch"] == "blocked", res["saved"]["probe.fetch"]
    assert [o["url"] for o in res["outside"] if o["phase"] == "outside probe"] == [OUTSIDE_PROBE], res["outside"]


def test_page_in_headless_chromium(page_run):
    """One browser run (the fixture), every check on it; all failures are reported together.

    One test rather than several on a module fixture: under `pytest -n 2` tests of one module
    may land on both workers, and each would build the model and drive the browser again."""
    checks = [(f"alpha parity {key}", check_alpha_parity, (key, target, precision))
              for key, target, precision, _ in PARITY_CASES]
    checks += [(f"MediaPipe Tasks parity {key}", check_mediapipe_parity, (key,)) for key in MEDIAPIPE_CASES]
    checks += [("MediaPipe Tasks refusal", check_mediapipe_refusal, ())]
    checks += [("guided filter", check_guided_filter, ()), ("EXIF orientation", check_exif_orientation, ()),
               ("comic effect", check_comic, ()), ("cut-out download and screenshot", check_cutout_download_and_screenshot, ()),
               ("bad input on the page", check_bad_input_reported_on_the_page, ()), ("camera", check_camera, ()),
               ("cross-origin isolated", check_cross_origin_isolated, ()),
               ("steady-state figures", check_steady_state_figures, ()),
               ("no console errors", check_no_console_errors, ()),
               ("everything from the local server", check_local_only, ())]
    failures = []
    for name, fn, args in checks:
        try:
            fn(page_run, *args)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)


# --------------------------------------------------------------------------------------
# a prior-frame model ("RGB+prior") on the page's camera
# --------------------------------------------------------------------------------------
#: The page's camera stats line for a prior-frame model: "prior: the previous frame's alpha (N of M frames)".
PRIOR_STATS = re.compile(r"prior: the previous frame's alpha \((\d+) of (\d+) frames\)")
#: The 4th channel of the page's last model input tensor (NHWC float32): [min, max].
PRIOR_CHANNEL_JS = ("(() => { const x = window.edgemattingDemo.state.input; let lo = Infinity, hi = -Infinity; "
                    "for (let i = 3; i < x.length; i += 4) { lo = Math.min(lo, x[i]); hi = Math.max(hi, x[i]); } "
                    "return [x.length, lo, hi]; })()")


@pytest.mark.slow
def test_camera_feeds_a_prior_frame_model_the_previous_alpha(tmp_path):
    """In headless Chromium with its fake camera, a prior-frame model's camera frames after the
    first are given the previous frame's alpha (the stats count them: all but the first), its
    last input's 4th channel is that alpha (in [0, 1], not zeros), and a photo then gets zeros.
    The model is a tiny untrained prior Fast-SCNN (outputs about 0.5: a prior far from zero);
    the numbers themselves are the golden test's (PriorStream, bit for bit)."""
    _need_chromium()
    from edgematting._tf import keras
    from edgematting.converters import convert_model
    from edgematting.converters.base import ExportConfig
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model
    from edgematting.prior import PRIOR_ORDER

    keras().utils.set_random_seed(27)
    config = architecture_config("fast-scnn", input_size=(64, 64), width=0.25, prior=True)
    spec = ModelSpec(architecture="fast-scnn", config=config, input_size=(64, 64))
    md = save_model_dir(build_model("fast-scnn", **config), spec, tmp_path / "model")
    art = convert_model(md, ExportConfig(target="tflite", precision="fp32", verify=False), out_dir=tmp_path / "export",
                        progress=False).path
    assert json.loads(sidecar_path(art).read_text())["input"]["channel_order"] == PRIOR_ORDER

    def wait(*states, ms=60000):
        return {"do": "wait", "states": list(states), "timeout_ms": ms}

    srv = web_demo.DemoServer([art], port=0).start()
    url = f"{srv.url}?model={art.name}&threads=1"
    steps = [
        {"do": "goto", "url": url, "permissions": ["camera"]}, wait("ready", "error"),
        {"do": "click", "selector": "#camera"}, wait("live", "error", ms=20000),
        {"do": "sleep", "ms": 2500},
        {"do": "text", "selector": "#stats", "save": "camera.stats"},
        {"do": "text", "selector": "#message", "save": "camera.message"},
        {"do": "eval", "expr": PRIOR_CHANNEL_JS, "save": "camera.prior"},
        {"do": "click", "selector": "#camera"},
        {"do": "sleep", "ms": 300},
        {"do": "files", "selector": "#photo-input", "paths": [str(PHOTO)]}, wait("done", "error"),
        {"do": "text", "selector": "#stats", "save": "photo.stats"},
        {"do": "text", "selector": "#message", "save": "photo.message"},
        {"do": "eval", "expr": PRIOR_CHANNEL_JS, "save": "photo.prior"},
    ]
    plan, result_path = tmp_path / "plan.json", tmp_path / "result.json"
    plan.write_text(json.dumps({"executable": CHROMIUM, "steps": steps}))
    try:
        r = subprocess.run([NODE, str(WEB / "test" / "drive.mjs"), str(plan), str(result_path)],
                           capture_output=True, text=True, timeout=180)
    finally:
        srv.stop()
    if not result_path.is_file():
        pytest.fail(f"the browser driver wrote nothing (exit {r.returncode}): {(r.stdout + r.stderr)[-3000:]}")
    res = json.loads(result_path.read_text())
    assert "error" not in res, f"{res.get('error')} (message {res.get('message')!r}); console: {res['console'][-5:]}"
    s = res["saved"]
    assert s["camera.message"] == "" and s["photo.message"] == "", (s["camera.message"], s["photo.message"])
    m = PRIOR_STATS.search(s["camera.stats"])
    assert m, s["camera.stats"]
    fed, frames = int(m.group(1)), int(m.group(2))
    assert frames >= 2 and fed == frames - 1, s["camera.stats"]  # all but the first frame of the stream
    n, lo, hi = s["camera.prior"]
    assert n == 64 * 64 * 4 and 0.0 <= lo and 0.05 < hi <= 1.0, s["camera.prior"]
    assert "prior: zeros (a single photo)" in s["photo.stats"], s["photo.stats"]
    assert s["photo.prior"][1:] == [0, 0], s["photo.prior"]
    errors = [c["text"][:300] for c in res["console"] if c["type"] == "error"]
    assert not errors and not res["pageErrors"], (errors, res["pageErrors"])
