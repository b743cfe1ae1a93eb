"""Shared test set-up. Tiny-model fixtures live here (see the models section below)."""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")

# Keep caches (synthetic pools, peer models) out of the user's ~/.cache during tests.
if "EDGEMATTING_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["EDGEMATTING_CACHE_DIR"] = tempfile.mkdtemp(prefix="edgematting-test-cache-")


# --- models ------------------------------------------------------------------------------
# Tiny, seeded, untrained models saved as model directories (model.keras + model.json), built
# once per test session. Converter, evaluation and bench tests use these.
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
