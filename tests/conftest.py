"""Shared test set-up. Tiny-model fixtures live here (see the models section below)."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist every worker is one process per core: TensorFlow's own intra-op pool
# would put two threads per worker on each core, and they spin-wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# Keep caches (synthetic pools, peer models) out of the user's ~/.cache during tests.
if "EDGEMATTING_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["EDGEMATTING_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgematting-test-cache-")


# --- models ------------------------------------------------------------------------------
# Tiny, seeded, untrained models saved as model directories (model.keras + model.json), built
# once per test session. Their output is ~0.5 everywhere, so they serve tests of plumbing
# (shapes, files, options, errors). Tests that compare numbers (every converter parity test,
# verify, bench) use the *confident* models further below.
import pytest  # noqa: E402

TINY_INPUT_SIZE = (64, 64)
TINY_WIDTH = 0.25


def _save_tiny_model(architecture, out_dir):
    from edgematting._tf import keras
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model

    keras().utils.set_random_seed(1234)
    config = architecture_config(architecture, input_size=TINY_INPUT_SIZE, width=TINY_WIDTH)
    model = build_model(architecture, **config)
    spec = ModelSpec(architecture=architecture, config=config, input_size=TINY_INPUT_SIZE)
    return save_model_dir(model, spec, out_dir)


@pytest.fixture(scope="session")
def tiny_fast_scnn_dir(tmp_path_factory):
    """Path of a saved Fast-SCNN model dir, input 64x64, width 0.25 (random weights)."""
    return _save_tiny_model("fast-scnn", tmp_path_factory.mktemp("tiny_fast_scnn"))


@pytest.fixture(scope="session")
def tiny_mattingnet_dir(tmp_path_factory):
    """Path of a saved MattingNet model dir, input 64x64, width 0.25 (random weights)."""
    return _save_tiny_model("mattingnet", tmp_path_factory.mktemp("tiny_mattingnet"))


@pytest.fixture(scope="session", params=["fast-scnn", "mattingnet"])
def tiny_model_dir(request):
    """Each tiny model dir in turn (parametrized over both architectures)."""
    name = "tiny_fast_scnn_dir" if request.param == "fast-scnn" else "tiny_mattingnet_dir"
    return request.getfixturevalue(name)


@pytest.fixture(scope="session")
def tiny_artifacts(tiny_fast_scnn_dir, tmp_path_factory):
    """The tiny Fast-SCNN converted and verified to tflite fp32/int8, onnx fp32 and coreml fp32
    (once per session): {"tflite_fp32": path, ...}."""
    from edgematting.converters import ExportConfig, convert

    from export_helpers import TEST_CALIB_SAMPLES, TEST_VERIFY_SAMPLES

    out = tmp_path_factory.mktemp("tiny_artifacts") / "export"
    configs = [ExportConfig(target=t, precision=p, calib_samples=TEST_CALIB_SAMPLES, verify_samples=TEST_VERIFY_SAMPLES)
               for t, p in (("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("coreml", "fp32"))]
    run = convert(tiny_fast_scnn_dir, configs, out, progress=False)
    run.raise_for_failures()
    return {f"{a.target}_{a.precision}": a.path for a in run.artifacts}


# --- confident models ---------------------------------------------------------------------
# An untrained model outputs ~0.5 everywhere (std ~1e-5 for Fast-SCNN): a parity check on it
# passes with a wrong mean, std or channel order. These are the same tiny architectures
# trained for a few steps on synthetic portraits, so, like a real segmenter, they are
# confident (most pixels near 0 or 1), vary within and between images, have a few percent
# of pixels near the threshold (edges, hair), and are smooth functions of their input.
# (Random weights spread and scaled up, the other way to get confident outputs, make a
# chaotic net: rounding its weights to fp16 moved the output by mean 3e-3 (Fast-SCNN) and
# 1.3e-2 (MattingNet), above the fp16 rows of verify.TOLERANCES; after these steps, 2e-4.)
#
# Recipe (all seeded): 32 synthetic 64x64 portraits (seed CONFIDENT_TRAIN_SEED, neither the
# calibration nor the verification seed); CONFIDENT_STEPS steps of binary cross-entropy
# against their alpha, batch 8, SGD lr 0.3 momentum 0.9 (Adam converges about as fast but
# its graph takes twice as long to trace, and tracing is most of the cost); then the
# BatchNorm moving statistics are set from one pass over the training images (momentum 0),
# so inference mode computes what was trained instead of lagging moving averages. The
# trained weights go into a freshly built, uncompiled model. The fixture then asserts that
# the saved model is confident (`export_helpers.assert_confident`) on the images verify
# compares on. Cost: about 8 (Fast-SCNN) and 20 (MattingNet) CPU seconds, paid once per
# test run: pytest-xdist workers share the saved models (built under a file lock).


def _shared_model_dir(tmp_path_factory, architecture):
    """Build the confident model once per test run, shared by pytest-xdist workers."""
    import fcntl

    from edgematting.modelio import SPEC_FILE

    from export_helpers import assert_confident, confident_stats, train_confident

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, common to every worker
    out = root / f"confident_{architecture}"
    with open(root / f"confident_{architecture}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not (out / SPEC_FILE).is_file():  # model.json is written last
            cpu = train_confident(architecture, out)
            print(f"\nconfident {architecture}: trained in {cpu:.1f} CPU s")
    stats = confident_stats(out)
    print(f"\nconfident {architecture}: {stats}")
    assert_confident(stats, f"the confident {architecture} fixture")
    return out


@pytest.fixture(scope="session")
def confident_fast_scnn_dir(tmp_path_factory):
    """Saved Fast-SCNN model dir, 64x64, width 0.25, trained a few steps: confident output.
    Shared: never write into it (copy it first, as test_convert_cli does)."""
    return _shared_model_dir(tmp_path_factory, "fast-scnn")


@pytest.fixture(scope="session")
def confident_mattingnet_dir(tmp_path_factory):
    """Saved MattingNet model dir, 64x64, width 0.25, trained a few steps: confident output.
    Shared: never write into it."""
    return _shared_model_dir(tmp_path_factory, "mattingnet")


@pytest.fixture(scope="session")
def folder_trained_fast_scnn(tmp_path_factory):
    """(model dir, photo folder): a Fast-SCNN (32x32, width 0.25) trained with default options
    on a folder of 6 photos, as a user with their own labelled photos trains: `convert` and
    `verify` default to those photos for calibration and verification. Built once per test
    run (shared by pytest-xdist workers under a file lock); never write into it: copy the
    model dir (`export_helpers.copy_model_dir`) before converting."""
    import fcntl

    from edgematting.modelio import SPEC_FILE

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent
    out, photos = root / "folder_trained_fast_scnn", root / "folder_trained_photos"
    with open(root / "folder_trained_fast_scnn.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / SPEC_FILE).is_file():  # model.json is written last
            from edgematting.data.synthetic import write_synthetic_folder
            from edgematting.training import TrainConfig, train

            if not (photos / "image").is_dir():
                write_synthetic_folder(photos, n=6, size=(48, 40), seed=3)
            train(TrainConfig(model="fast-scnn", data=str(photos), input_size=32, width=0.25, epochs=1,
                              batch_size=2, steps_per_epoch=2, out=str(out)), progress=False)
    return out, photos


@pytest.fixture(scope="session", params=["fast-scnn", "mattingnet"])
def confident_model_dir(request):
    """Each confident model dir in turn (parametrized over both architectures)."""
    name = "confident_fast_scnn_dir" if request.param == "fast-scnn" else "confident_mattingnet_dir"
    return request.getfixturevalue(name)
