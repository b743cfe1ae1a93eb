"""The Android demo: its plain-Java core against the Python pipeline, and `android-assets`.

The JVM part compiles `android_demo/core` (main + JUnit tests) with `javac` and runs JUnit 4
on golden vectors written by `tests/android_golden.py` (`write_golden_vectors`). It needs a JDK
and Debian's `junit4` package (CI installs both in `.ci/run`); without them it is skipped.
"""
from __future__ import annotations

import filecmp
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import android_golden
from edgematting import android_assets, contract, imageops
from edgematting.cli import main as cli_main

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "android_demo" / "core"
JUNIT_JARS = [Path("/usr/share/java/junit4.jar")]
HAMCREST_JARS = [Path("/usr/share/java/hamcrest-core.jar"), Path("/usr/share/java/hamcrest.jar")]
TEST_CLASSES = ["dev.edgematting.core.GoldenVectorsTest", "dev.edgematting.core.ModelMetadataTest",
                "dev.edgematting.core.JsonTest", "dev.edgematting.core.FrameProcessorTest"]
# Every stage the goldens exercise; a stage missing from the JUnit output is a failure.
EXPECTED_STAGES = {"input_float32", "input_uint8", "input_int8", "alpha_float32", "alpha_uint8", "alpha_int8",
                   "composite_color", "composite_image", "composite_blur", "cutout", "blur", "guided",
                   "comic", "comic_style", "comic_smooth", "comic_quantize", "comic_outline",
                   "orient", "decode", "tensor_check",
                   "prior_sequence_float32", "prior_sequence_uint8", "prior_sequence_int8"}
INT_STAGES = {"input_uint8", "input_int8", "composite_color", "composite_image", "composite_blur", "cutout",
              "comic", "orient", "decode", "tensor_check", "prior_sequence_uint8", "prior_sequence_int8"}


# -- golden generation -----------------------------------------------------------------
def test_golden_generation_is_deterministic(tmp_path):
    a = android_golden.write_golden_vectors(tmp_path / "a", seed=0).parent
    b = android_golden.write_golden_vectors(tmp_path / "b", seed=0).parent
    c = android_golden.write_golden_vectors(tmp_path / "c", seed=1).parent
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    match, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    assert not mismatch and not errors and len(match) == len(names)
    assert (a / "photo_37x53.bin").read_bytes() != (c / "photo_37x53.bin").read_bytes()


def test_goldens_cover_every_stage_and_variant(tmp_path):
    manifest = json.loads(android_golden.write_golden_vectors(tmp_path).read_text())
    cases = manifest["cases"]
    inputs = [c for c in cases if c["stage"] == "input"]
    combos = {(c["metadata"]["input"]["dtype"], c["metadata"]["input"]["channels"],
               c["metadata"]["input"]["channel_order"]) for c in inputs}
    for want in [("float32", 3, "RGB"), ("float32", 4, "RGBA"), ("uint8", 3, "RGB"), ("uint8", 4, "RGBA"),
                 ("float32", 3, "BGR"), ("uint8", 4, "BGRA"), ("int8", 3, "RGB")]:
        assert want in combos, want
    assert {c["metadata"]["output"]["dtype"] for c in cases if c["stage"] == "alpha"} == {"float32", "uint8", "int8"}
    assert {c["background"]["type"] for c in cases if c["stage"] == "composite"} == {"color", "image", "blur", "cutout"}
    # expected arrays really are the imageops results for the float RGB case
    case = next(c for c in inputs if c["name"] == "float_rgb")
    photo = np.fromfile(tmp_path / case["photo"]["file"], np.uint8).reshape(case["photo"]["shape"])
    got = np.fromfile(tmp_path / case["expected"]["file"], "<f4").reshape(case["expected"]["shape"])
    np.testing.assert_array_equal(got, imageops.to_model_input(photo, (32, 32))[0])


def test_goldens_cover_the_prior_channel(tmp_path):
    """Prior-frame ("RGB+prior") input cases for float32, uint8 and int8 tensors, with a given
    previous alpha and with none (zeros), and camera streams whose frames carry the previous
    frame's alpha: the expected values are the contract's own, checked here against hand-made
    ones so that a wrong encoding in both Python and Java cannot pass."""
    manifest = json.loads(android_golden.write_golden_vectors(tmp_path).read_text())
    read = {"float32": "<f4", "uint8": "u1", "int8": "i1"}

    def arr(ref):
        return np.fromfile(tmp_path / ref["file"], read[ref["dtype"]]).reshape(ref["shape"])

    prior = [c for c in manifest["cases"] if c["stage"] == "input" and c["metadata"]["input"]["channel_order"] == "RGB+prior"]
    dtypes = {(c["metadata"]["input"]["dtype"], "prior" in c and c["prior"] is not None) for c in prior}
    assert dtypes >= {("float32", True), ("float32", False), ("uint8", True), ("uint8", False), ("int8", True)}, dtypes
    for c in prior:
        x = arr(c["expected"])
        assert x.shape[-1] == 4 and c["metadata"]["input"]["prior"]["range"] == [0.0, 1.0], c["name"]
        inp = c["metadata"]["input"]
        # float32 arithmetic, as the contract's (the halves (k + 0.5) / 255 round up only there)
        p = np.zeros(x.shape[:-1], np.float32) if c.get("prior") is None else np.clip(arr(c["prior"]), 0, 1)
        if inp["normalization_in_model"]:  # pixels: the prior as a byte, half up
            want = np.floor(p * np.float32(255) + np.float32(0.5))
            q = inp["quantization"]
            if q is not None:
                s, z = (q["scale"], q["zero_point"]) if isinstance(q, dict) else q
                assert s == 1.0
                want = want + z
        elif inp["dtype"] == "float32":
            want = p
        else:
            s, z = (inp["quantization"]["scale"], inp["quantization"]["zero_point"]) if isinstance(inp["quantization"], dict) \
                else inp["quantization"]
            want = np.clip(np.floor(p / np.float32(s) + np.float32(0.5)) + z, *contract.QRANGE[inp["dtype"]])
        np.testing.assert_allclose(x[..., 3], want, rtol=0, atol=1e-6 if x.dtype == np.float32 else 0, err_msg=c["name"])
    # the real TFLite uint8 sidecar (scale 1, zero point 0) is among them
    assert any(c["metadata"]["input"]["quantization"] == {"scale": 1.0, "zero_point": 0} and c.get("prior") for c in prior)

    seqs = [c for c in manifest["cases"] if c["stage"] == "prior_sequence"]
    assert {c["metadata"]["input"]["dtype"] for c in seqs} == {"float32", "uint8", "int8"}
    for c in seqs:
        meta = contract.validate_metadata(c["metadata"])
        frames = c["frames"]
        assert frames[0]["zeros"] and not all(f["zeros"] for f in frames[1:])
        for prev, cur in zip(frames, frames[1:]):
            if cur["zeros"]:
                continue
            # the second frame's input holds the first's alpha: clip(decode(raw), 0, 1), encoded
            a = np.clip(contract.decode_output(arr(prev["raw"])[None, ..., None], meta)[0], 0, 1)
            photo = arr(cur["photo"])
            np.testing.assert_array_equal(arr(cur["expected"]), contract.model_input(photo, c["metadata"], prior=a)[0])
            assert not np.array_equal(arr(cur["expected"]), contract.model_input(photo, c["metadata"])[0])
    assert any(f["reset"] for c in seqs for f in c["frames"]), "a reset mid-stream"
    assert any(not f["reset"] and f["zeros"] and i > 0 for c in seqs for i, f in enumerate(c["frames"])), "a size change"


def test_comic_goldens_cover_sizes_alphas_and_parameters(tmp_path):
    """The comic cases the Java core must reproduce: several photo sizes (a one-row strip for the
    clamped edges), soft alphas, and each parameter of the parts away from its default."""
    manifest = json.loads(android_golden.write_golden_vectors(tmp_path).read_text())
    cases = [c for c in manifest["cases"] if c["stage"].startswith("comic")]
    comic = [c for c in cases if c["stage"] == "comic"]
    sizes = {tuple(c["photo"]["shape"][:2]) for c in comic}
    assert len(sizes) >= 4 and any(h == 1 for h, _ in sizes), sizes
    for c in comic:
        alpha = np.fromfile(tmp_path / c["alpha"]["file"], "<f4")
        assert ((alpha > 0.01) & (alpha < 0.99)).any() and alpha.min() >= 0 and alpha.max() <= 1, c["name"]
        photo = np.fromfile(tmp_path / c["photo"]["file"], np.uint8)
        out = np.fromfile(tmp_path / c["expected"]["file"], np.uint8)
        assert (out != photo).mean() > 0.2, f"{c['name']}: the effect changed little"
    defaults = {"radius": imageops.COMIC_RADIUS, "passes": imageops.COMIC_PASSES, "sigma_range": imageops.COMIC_SIGMA_RANGE,
                "sigma_space": imageops.COMIC_SIGMA_SPACE, "levels": imageops.COMIC_LEVELS,
                "low": imageops.COMIC_EDGE_LOW, "high": imageops.COMIC_EDGE_HIGH}
    params = [c["params"] for c in cases if "params" in c]
    for key, default in defaults.items():
        values = {p[key] for p in params if key in p}
        assert default in values and len(values) >= 2, (key, values)


def test_python_validator_names_the_same_keys_as_java_expects(tmp_path):
    manifest = json.loads(android_golden.write_golden_vectors(tmp_path).read_text())
    for f in manifest["metadata_files"]:
        text = (tmp_path / f["file"]).read_text()
        if f["valid"]:
            contract.validate_metadata(json.loads(text), layouts=android_assets.LAYOUTS)
        elif f["key"] == "(json)":
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
        else:
            with pytest.raises(contract.MetadataError) as e:
                contract.validate_metadata(json.loads(text), layouts=android_assets.LAYOUTS)
            assert e.value.key == f["key"], f["file"]
            assert f"'{f['key']}'" in str(e.value)


def test_converter_schema_is_accepted():
    meta = android_golden._schema_metadata()
    assert meta is not None, "converters.base.artifact_metadata could not build a sidecar"
    c = contract.validate_metadata(meta)
    assert (c["channels"], c["channel_order"], c["dtype"]) == (4, "RGBA", "uint8")


# -- the Python definitions the Java core mirrors -------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(orientation):
    """imageops.EXIF_ORIENTATIONS means what the EXIF tag means: PIL's exif_transpose agrees."""
    import io

    from PIL import Image, ImageOps

    img = android_golden._gradient(5, 7)
    pim = Image.fromarray(img)
    exif = pim.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    pim.save(buf, "PNG", exif=exif.tobytes())
    buf.seek(0)
    want = np.asarray(ImageOps.exif_transpose(Image.open(buf)))
    np.testing.assert_array_equal(imageops.apply_exif_orientation(img, orientation), want)


def test_exif_undefined_orientation_keeps_the_image():
    img = android_golden._gradient(5, 7)
    for o in (0, 9, -1):
        np.testing.assert_array_equal(imageops.apply_exif_orientation(img, o), img)


@pytest.mark.parametrize("h,w,max_side", android_golden.DECODE_SIZES)
def test_bounded_decode_sizes(h, w, max_side):
    s = imageops.decode_sample_size(h, w, max_side)
    assert s & (s - 1) == 0, "a power of two"
    assert -(-max(h, w) // s) <= max_side, "decoded long side (rounded up) within the bound"
    assert s == 1 or -(-max(h, w) // (s // 2)) > max_side, "the smallest such power of two"
    bh, bw = imageops.bounded_size(h, w, max_side)
    if max(h, w) <= max_side:
        assert (bh, bw) == (h, w)
    else:
        assert max(bh, bw) == max_side and min(bh, bw) >= 1
        for side, got in ((h, bh), (w, bw)):  # aspect kept: each side rounded to the nearest pixel (at least 1)
            assert got == max(1, got) and (got == 1 or abs(got - side * max_side / max(h, w)) <= 0.5)
    with pytest.raises(ValueError):
        imageops.decode_sample_size(0, w, max_side)


def test_box_mean_is_the_clipped_window_mean():
    rng = np.random.default_rng(3)
    x = rng.random((9, 6)).astype(np.float32)
    for r in (1, 2, 7):
        want = np.array([[x[max(0, i - r):i + r + 1, max(0, j - r):j + r + 1].mean() for j in range(6)] for i in range(9)])
        np.testing.assert_allclose(imageops.box_mean(x, r), want, rtol=0, atol=2e-7)


def test_guided_filter_parameters_are_checked():
    assert imageops.GuidedFilter() == imageops.GuidedFilter(2, 1e-4)
    for bad in [(0, 1e-3), (1.5, 1e-3), (True, 1e-3), (2, 0.0), (2, -1e-3), (2, float("nan")), (2, 1e-60), (2, "x")]:
        with pytest.raises(ValueError):
            imageops.GuidedFilter(*bad)


def test_output_to_alpha_default_unchanged_and_guided_on_request():
    rng = np.random.default_rng(0)
    meta = android_golden._metadata(24, 40)
    raw = rng.random((1, 24, 40, 1)).astype(np.float32)
    photo = rng.integers(0, 256, (50, 30, 3), dtype=np.uint8)
    plain = contract.output_to_alpha(raw, meta, (50, 30))
    np.testing.assert_array_equal(plain, imageops.alpha_to_photo(raw[0], (50, 30)))
    np.testing.assert_array_equal(contract.output_to_alpha(raw, meta, (50, 30), guide=photo), plain)  # guide alone: plain
    gf = imageops.GuidedFilter(2, 1e-3)
    guided = contract.output_to_alpha(raw, meta, (50, 30), guide=photo, guided=gf)
    np.testing.assert_array_equal(guided, imageops.guided_upsample(raw[0, :, :, 0], photo, 2, 1e-3))
    assert guided.dtype == np.float32 and guided.shape == (50, 30) and 0 <= guided.min() and guided.max() <= 1
    assert np.abs(guided - plain).max() > 0.01
    with pytest.raises(ValueError):
        contract.output_to_alpha(raw, meta, (50, 30), guided=gf)
    with pytest.raises(ValueError):
        contract.output_to_alpha(raw, meta, (50, 30), guide=photo[:40], guided=gf)


def test_guided_filter_follows_the_photos_edges():
    """A blurry low-resolution matte of a sharp-edged figure: the guided filter's edges at
    photo resolution are closer to the figure's than plain bilinear upsampling's."""
    photo = android_golden._portrait(128, 96)
    truth = (photo[..., 0] == 200).astype(np.float32)
    soft = imageops.box_blur(imageops.resize_bilinear(truth, 32, 24), 1, 2)
    band = imageops.box_blur(truth, 3, 1)
    band = (band > 0.01) & (band < 0.99)
    plain = np.abs(imageops.alpha_to_photo(soft, (128, 96)) - truth)[band].mean()
    guided = np.abs(imageops.guided_upsample(soft, photo, 1, 1e-4) - truth)[band].mean()
    assert guided < 0.8 * plain, (guided, plain)


def test_sidecar_postprocess_is_optional_and_validated():
    meta = android_golden._metadata(32, 32)
    assert contract.validate_metadata(meta)["guided_filter"] is None
    meta["postprocess"] = {"guided_filter": {"radius": 3, "eps": 0.01}}
    assert contract.validate_metadata(meta)["guided_filter"] == imageops.GuidedFilter(3, 0.01)


def test_quantize_rounds_half_up_and_clips():
    x = np.array([-1000.0, -0.26, -0.25, 0.0, 0.24, 0.25, 1000.0], np.float32)
    q = contract.quantize(x, 0.5, 3, "int8")
    np.testing.assert_array_equal(q, np.array([-128, 2, 3, 3, 3, 4, 127], np.int8))
    assert contract.quantize(np.float32(300.0), 1.0, 0, "uint8") == 255


def test_dequantize_known_values_and_round_trip():
    """Hand-computed values (not the function's own formula), and the property a
    quantize/dequantize pair must have: within half a step of the input, inside the range."""
    q = np.array([-128, 2, 3, 4, 127], np.int8)
    d = contract.dequantize(q, 0.5, 3)
    assert d.dtype == np.float32
    np.testing.assert_array_equal(d, [-65.5, -0.5, 0.0, 0.5, 62.0])
    # a uint8 alpha output with TFLite's usual scale 1/256, zero point 0
    np.testing.assert_array_equal(contract.dequantize(np.array([0, 128, 255], np.uint8), 1 / 256, 0),
                                  [0.0, 0.5, 0.99609375])
    x = np.linspace(-60.0, 60.0, 1001, dtype=np.float32)
    back = contract.dequantize(contract.quantize(x, 0.5, 3, "int8"), 0.5, 3)
    assert np.abs(back - x).max() <= 0.25 + 1e-6


# -- the Java core on the JVM --------------------------------------------------------------
def _jars():
    junit = next((j for j in JUNIT_JARS if j.is_file()), None)
    hamcrest = next((j for j in HAMCREST_JARS if j.is_file()), None)
    return junit, hamcrest


@pytest.fixture(scope="module")
def junit_run(tmp_path_factory):
    javac, java = shutil.which("javac"), shutil.which("java")
    junit, hamcrest = _jars()
    if not (javac and java):
        pytest.skip("no JDK (javac/java) on PATH; CI installs openjdk-17-jdk-headless")
    if not (junit and hamcrest):
        pytest.skip("no JUnit 4 jars in /usr/share/java; CI installs Debian's junit4 package")
    tmp = tmp_path_factory.mktemp("android_core")
    golden = android_golden.write_golden_vectors(tmp / "golden").parent
    classes = tmp / "classes"
    sources = sorted(str(p) for p in (CORE / "src").rglob("*.java"))
    cp = os.pathsep.join(map(str, (junit, hamcrest)))
    comp = subprocess.run([javac, "--release", "17", "-Xlint:all", "-Werror", "-encoding", "UTF-8",
                           "-d", str(classes), "-cp", cp] + sources, capture_output=True, text=True, timeout=600)
    assert comp.returncode == 0, f"javac failed:\n{comp.stdout}\n{comp.stderr}"
    run = subprocess.run([java, "-Xmx256m", f"-Dgolden.dir={golden}", "-cp", os.pathsep.join([str(classes), cp]),
                          "org.junit.runner.JUnitCore"] + TEST_CLASSES, capture_output=True, text=True, timeout=600)
    return run, json.loads((golden / "manifest.json").read_text())


def test_java_core_matches_python_goldens(junit_run):
    run, manifest = junit_run
    out = run.stdout + run.stderr
    assert run.returncode == 0, f"JUnit failed:\n{out}"
    m = re.search(r"^OK \((\d+) tests\)", run.stdout, re.M)
    assert m and int(m.group(1)) >= 18, out
    stages = {}
    for s, n, d, tol in re.findall(r"^\.*GOLDEN stage=(\S+) cases=(\d+) max_abs_diff=(\S+) tolerance=(\S+)$", run.stdout, re.M):
        stages[s] = (int(n), float(d), float(tol))
    assert set(stages) == EXPECTED_STAGES, out
    n_cases = sum(n for n, _, _ in stages.values())
    assert n_cases == len(manifest["cases"])
    for s, (n, d, tol) in stages.items():
        bound = android_golden.INT_TOLERANCE if s in INT_STAGES else android_golden.FLOAT_TOLERANCE
        assert tol == bound, (s, tol)
        assert d <= bound, f"stage {s}: Java vs Python max abs diff {d} > {bound}"
    print("\n".join(f"{s}: cases={n} max_abs_diff={d:g}" for s, (n, d, _) in sorted(stages.items())))


def test_java_frames_after_the_first_allocate_nothing(junit_run):
    """FrameProcessorTest measured the bytes each camera frame after the first allocated in
    the core (HotSpot's per-thread counter): zero, but for the JIT's own one-off lazy
    linking in at most 6 of 40 frames."""
    run, _ = junit_run
    lines = re.findall(r"FRAME_ALLOCATION model=(\S+) first_frame_bytes=(\d+) second_frame_bytes=(-?\d+) frames=(\d+) "
                       r"zero_frames=(\d+) total_bytes=(-?\d+)", run.stdout)
    assert len(lines) == 3, run.stdout + run.stderr  # float, uint8 and a prior-frame model's stream
    for model, first, second, frames, zero, total in lines:
        assert int(first) > 0, "the first frame allocates the buffers"
        assert int(zero) >= int(frames) - 6, f"{model}: only {zero} of {frames} frames allocated nothing"
        assert int(total) <= 4096, f"{model}: {total} bytes over {frames} frames"
    print("\n".join(f"{m}: first frame {f} bytes, second {s}, {z}/{n} later frames 0 bytes, {t} bytes in all"
                     for m, f, s, n, z, t in lines))


def test_java_rejects_the_bad_metadata_files(junit_run):
    run, manifest = junit_run
    m = re.search(r"^\.*GOLDEN_METADATA good=(\d+) bad=(\d+)$", run.stdout, re.M)
    assert m, run.stdout + run.stderr
    files = manifest["metadata_files"]
    assert int(m.group(1)) == sum(f["valid"] for f in files)
    assert int(m.group(2)) == sum(not f["valid"] for f in files)


# -- the Gradle wrapper ----------------------------------------------------------------------
#: sha256 of the official wrapper jar of each Gradle version the properties may ask for, as
#: Gradle publishes them (https://gradle.org/release-checksums/); 8.10 to 8.13 share one jar.
WRAPPER_JAR_SHA256 = {v: "2db75c40782f5e8ba1fc278a5574bab070adccb2d21ca5a6e5ed840888448046"
                      for v in ("8.10", "8.10.1", "8.10.2", "8.11", "8.11.1", "8.12", "8.12.1", "8.13")}


def test_gradle_wrapper_matches_its_properties():
    """The committed wrapper jar is Gradle's published jar for the version the properties ask
    for (not an older build, as the 4.4.1 jar beside 8.7 properties was), it runs the wrapper's
    main class, and the distribution download is pinned by its checksum."""
    import hashlib
    import zipfile

    root = Path(__file__).resolve().parent.parent / "android_demo"
    props = dict(line.split("=", 1) for line in (root / "gradle/wrapper/gradle-wrapper.properties").read_text()
                 .splitlines() if "=" in line and not line.startswith("#"))
    m = re.search(r"gradle-([\d.]+)-(bin|all)\.zip$", props["distributionUrl"])
    assert m, props["distributionUrl"]
    version = m.group(1)
    assert re.fullmatch(r"[0-9a-f]{64}", props.get("distributionSha256Sum", "")), "the download is not pinned"
    jar = root / "gradle/wrapper/gradle-wrapper.jar"
    assert version in WRAPPER_JAR_SHA256, f"no published wrapper checksum recorded for Gradle {version}"
    assert hashlib.sha256(jar.read_bytes()).hexdigest() == WRAPPER_JAR_SHA256[version], \
        f"gradle-wrapper.jar is not Gradle's wrapper for {version}"
    with zipfile.ZipFile(jar) as z:
        assert "org/gradle/wrapper/GradleWrapperMain.class" in z.namelist()
        manifest = z.read("META-INF/MANIFEST.MF").decode()
        old = re.search(r"Implementation-Version: *(\S+)", manifest)
        assert old is None or old.group(1) == version, f"the jar says Gradle {old.group(1)}"
    gradlew = (root / "gradlew").read_text()
    assert "org.gradle.wrapper.GradleWrapperMain" in gradlew and "gradle/wrapper/gradle-wrapper.jar" in gradlew


def test_app_falls_back_to_the_cpu_when_the_gpu_delegate_cannot_load():
    """A GPU delegate whose native library is missing throws UnsatisfiedLinkError, a
    LinkageError that `catch (e: Exception)` does not catch: the screen stayed at "Loading
    model...". The Kotlin sources are not compiled here (no Android SDK), so this reads them:
    the GPU path (CompatibilityList and GpuDelegate) catches LinkageError and falls back to the
    CPU with the reason in the backend note, and a load can only end Ready or Failed."""
    src = Path(__file__).resolve().parent.parent / "android_demo/app/src/main/java/dev/edgematting/demo"
    engine = (src / "SegmentationEngine.kt").read_text()
    gpu = engine[engine.index("CompatibilityList()"):engine.index("Runtime.getRuntime().availableProcessors()")]
    assert gpu.count("catch (e: LinkageError)") >= 2, "CompatibilityList() and GpuDelegate() must both be covered"
    assert gpu.count("gpuFailed = true") >= 3
    assert 'if (gpuFailed) ", GPU delegate failed"' in engine
    vm = (src / "EngineViewModel.kt").read_text()
    load = vm[vm.index("fun startLoading()"):vm.index("protected open fun onEngineReady")]
    for caught in ("ModelLoadException", "Exception", "LinkageError"):
        block = load[load.index(f"catch (e: {caught})"):]
        assert "EngineState.Failed" in block[:400], caught


def test_camera_screen_feeds_the_prior_and_the_photo_screen_zeros():
    """The Kotlin sources are not compiled here (no Android SDK), so this reads them: camera
    frames go through FrameProcessor.prepareFrame (a prior-frame model gets the previous
    frame's alpha; JUnit and the goldens test that path), a new stream (camera bound again,
    another orientation) resets it, and the photo screen goes through prepare (zeros)."""
    src = Path(__file__).resolve().parent.parent / "android_demo/app/src/main/java/dev/edgematting/demo"
    engine = (src / "SegmentationEngine.kt").read_text()
    assert "if (stream) processor.prepareFrame(argb, width, height) else processor.prepare(argb, width, height)" in engine
    assert "stream: Boolean = false" in engine, "a photo (the default) must not get a previous alpha"
    vm = (src / "CameraViewModel.kt").read_text()
    draw = vm[vm.index("private fun drawFrame"):vm.index("private var lastOrientation")]
    assert "eng.alpha(frame, fw, fh, stream = true)" in draw
    assert draw.index("eng.processor.resetStream()") < draw.index("eng.alpha(frame")
    assert "model.startStream()" in (src / "CameraActivity.kt").read_text()
    photo = (src / "PhotoViewModel.kt").read_text()
    assert "eng.alpha(p.argb, p.width, p.height)" in photo and "stream = true" not in photo


def test_one_guided_filter_default_everywhere():
    """imageops.GuidedFilter() is the one place the defaults are decided: the Java core, the
    web page and every README that names them say the same radius and eps."""
    root = Path(__file__).resolve().parent.parent
    d = imageops.GuidedFilter()
    java = (root / "android_demo/core/src/main/java/dev/edgematting/core/GuidedFilter.java").read_text()
    assert re.search(rf"DEFAULT_RADIUS = {d.radius};", java) and "DEFAULT_EPS = 1e-4;" in java and d.eps == 1e-4
    js = (root / "web_demo/src/imageops.js").read_text()
    assert f"GUIDED_DEFAULTS = Object.freeze({{ radius: {d.radius}, eps: 1e-4 }})" in js
    said = 0
    for doc in ["README.md", "android_demo/README.md", "web_demo/README.md", *map(str, (root / "docs").glob("*.md"))]:
        text = (root / doc).read_text()
        for m in re.finditer(r"default[^.]{0,120}?radius (\d+)(?:,| and) eps (\S+?)[),.]", text, re.S):
            said += 1
            assert (int(m.group(1)), float(m.group(2))) == (d.radius, d.eps), f"{doc}: {m.group(0)!r}"
    assert said >= 2


# -- android-assets -----------------------------------------------------------------------
def _artifact(folder: Path, name: str, meta: dict | None, payload: bytes = b"TFL3fake") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_bytes(payload)
    if meta is not None:
        (folder / (name + ".json")).write_text(json.dumps(meta))
    return p


def _real_copy(src: Path, folder: Path, name: str | None = None) -> Path:
    """A converted artifact and its sidecar, copied (under `name`) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    dst = folder / (name or src.name)
    shutil.copy(src, dst)
    shutil.copy(src.with_name(src.name + ".json"), dst.with_name(dst.name + ".json"))
    return dst


def test_android_assets_copies_and_indexes(tmp_path, capsys, tiny_artifacts):
    cam = tiny_artifacts["tflite_int8"]  # a Fast-SCNN: the camera role by default
    photo = tiny_artifacts["tflite_fp32"]
    assets = tmp_path / "assets"
    assert cli_main(["android-assets", str(cam), "--assets", str(assets)]) == 0
    assert cli_main(["android-assets", str(photo), "--assets", str(assets), "--role", "photo"]) == 0
    index = json.loads((assets / "models.json").read_text())
    assert index["models"]["camera"]["file"] == cam.name
    assert index["models"]["camera"]["metadata"] == cam.name + ".json"
    assert index["models"]["photo"]["file"] == photo.name
    assert (assets / cam.name).read_bytes() == cam.read_bytes()
    assert (assets / photo.name).read_bytes() == photo.read_bytes()
    assert json.loads((assets / (photo.name + ".json")).read_text())["precision"] == "fp32"
    assert not list(assets.glob(".*.part"))
    assert "models.json" in capsys.readouterr().out

    # a later run replaces one role and keeps the other; the replaced model leaves the assets
    other = _real_copy(cam, tmp_path / "exp2", "other.tflite")
    assert cli_main(["android-assets", str(other), "--assets", str(assets), "--role", "camera"]) == 0
    index = json.loads((assets / "models.json").read_text())
    assert index["models"]["camera"]["file"] == "other.tflite"
    assert index["models"]["photo"]["file"] == photo.name
    assert sorted(p.name for p in assets.iterdir()) == sorted(
        ["models.json", "other.tflite", "other.tflite.json", photo.name, photo.name + ".json"])


@pytest.mark.parametrize("case", ["random_bytes", "another_models_sidecar", "size_lies"])
def test_android_assets_refuses_a_file_its_sidecar_does_not_describe(tmp_path, case, capsys, tiny_artifacts):
    """Files the app would load and then run wrongly (or crash on) are refused before copying."""
    good = tiny_artifacts["tflite_fp32"]
    bad = _real_copy(tiny_artifacts["tflite_int8"], tmp_path / "exp")
    side = bad.with_name(bad.name + ".json")
    meta = json.loads(side.read_text())
    if case == "random_bytes":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, np.uint8).tobytes())
    elif case == "another_models_sidecar":
        shutil.copy(good.with_name(good.name + ".json"), side)
    else:  # the sidecar (and the file's own metadata) say 32x32; the model takes 64x64
        from edgematting.converters.tflite import embed_metadata

        for part in ("input", "output"):
            meta[part]["height"] = meta[part]["width"] = 32
        side.write_text(json.dumps(meta))
        bad.write_bytes(embed_metadata(bad.read_bytes(), {k: v for k, v in meta.items()
                                                          if k not in ("conversion", "verification")}))
    assets = tmp_path / "assets"
    rc = cli_main(["android-assets", str(bad), "--assets", str(assets), "--role", "camera"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: "), err
    assert {"random_bytes": "not a TFLite flatbuffer", "another_models_sidecar": "does not describe",
            "size_lies": "input.height"}[case] in err, err
    assert not assets.exists() or not any(assets.iterdir()), "something was written"


@pytest.mark.parametrize("case", ["onnx_sidecar", "no_sidecar", "bad_dtype", "not_tflite", "same_role"])
def test_android_assets_rejects_and_writes_nothing(tmp_path, case, capsys):
    good = _artifact(tmp_path / "exp", "good.tflite", android_golden._metadata(32, 32, architecture="mattingnet"))
    if case == "onnx_sidecar":
        meta = android_golden._metadata(32, 32)
        meta["target"] = "onnx"
        bad = _artifact(tmp_path / "exp", "bad.tflite", meta)
    elif case == "no_sidecar":
        bad = _artifact(tmp_path / "exp", "bad.tflite", None)
    elif case == "bad_dtype":
        meta = android_golden._metadata(32, 32)
        meta["input"]["dtype"] = "float64"
        bad = _artifact(tmp_path / "exp", "bad.tflite", meta)
    elif case == "not_tflite":
        bad = _artifact(tmp_path / "exp", "bad.onnx", android_golden._metadata(32, 32))
    else:
        bad = _artifact(tmp_path / "exp", "bad.tflite", android_golden._metadata(32, 32, architecture="mattingnet"))
    assets = tmp_path / "assets"
    rc = cli_main(["android-assets", str(good), str(bad), "--assets", str(assets)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    if case in ("onnx_sidecar", "bad_dtype"):
        assert ("'target'" if case == "onnx_sidecar" else "'input.dtype'") in err
    assert not assets.exists() or not any(assets.iterdir()), "something was written"


def test_android_assets_role_needs_one_artifact(tmp_path):
    a = _artifact(tmp_path, "a.tflite", android_golden._metadata(32, 32))
    b = _artifact(tmp_path, "b.tflite", android_golden._metadata(32, 32, architecture="mattingnet"))
    assert cli_main(["android-assets", str(a), str(b), "--assets", str(tmp_path / "as"), "--role", "camera"]) == 2
    assert not (tmp_path / "as").exists()
