"""The architecture registry: the built-in entries, name lookup, and that a third
architecture is one builder module plus one entry (it then trains and saves like the others).
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from edgematting.errors import InputError
from edgematting.models import registry as R

REPO = Path(__file__).resolve().parents[1]


def test_builtin_entries_keep_what_each_architecture_was():
    # The facts that used to be hard-coded in models/, training/, modelio and android.
    fs, mn = R.get_architecture("fast-scnn"), R.get_architecture("mattingnet")
    assert R.architecture_names() == ("fast-scnn", "mattingnet")
    assert (fs.best_metric, fs.best_mode, mn.best_metric, mn.best_mode) == ("iou", "max", "edge_score", "max")
    assert (fs.metrics, mn.metrics) == (("iou", "mae", "band_mae", "boundary_f"), ("mae", "sad", "iou", "band_mae", "boundary_f", "edge_score"))
    assert (fs.output_meaning, mn.output_meaning) == ("person_probability", "alpha_matte")
    assert (fs.task, mn.task) == ("segmentation", "matting")
    assert (fs.android_role, mn.android_role) == ("camera", "photo")
    assert fs.loss_description == "segmentation (bce+dice+boundary)"
    assert mn.loss_description == ("matting (alpha L1+composition+gradient+unknown-band L1+BCE+boundary BCE; "
                                   "the same on the coarse 1/2-res logits)")
    assert (fs.coarse_output, mn.coarse_output) == (None, "coarse_up")  # what deep supervision reads
    assert fs.load_module().NAME == "fast-scnn" and mn.load_module().NAME == "mattingnet"

    from edgematting.training import losses as L

    assert (fs.loss_factory(), fs.loss_weights_class()) == (L.segmentation_loss_fn, L.SegmentationLossWeights)
    assert (mn.loss_factory(), mn.loss_weights_class()) == (L.matting_loss_fn, L.MattingLossWeights)
    assert set(R.METRICS) == set(L._metric_classes())  # every name an entry may list is built


@pytest.mark.parametrize("text", ["fast-scnn", "Fast_SCNN", " fastscnn ", "FASTSCNN"])
def test_names_and_aliases(text):
    assert R.get_architecture(text).name == "fast-scnn"
    assert R.get_architecture("matting_net").name == "mattingnet"
    assert R.find_architecture("unet") is None


def test_unknown_name_lists_choices_and_suggests():
    with pytest.raises(InputError) as e:
        R.get_architecture("mattingnt")
    assert str(e.value) == (
        "Unknown architecture 'mattingnt'. Choose one of: fast-scnn, mattingnet. Did you mean 'mattingnet'?"
    )
    with pytest.raises(InputError, match="^Unknown model 'unet'. Choose one of: fast-scnn, mattingnet.$"):
        R.get_architecture("unet", what="model")


def test_bad_entries_are_refused():
    fs = R.get_architecture("fast-scnn")
    for bad in (
        dict(best_metric="sad"),  # not among its metrics
        dict(metrics=("iou", "psnr")),
        dict(best_mode="up"),
        dict(output_meaning="depth"),
        dict(android_role="video"),
        dict(loss="segmentation_loss_fn"),
        dict(name="Fast_SCNN"),
    ):
        with pytest.raises(ValueError):
            replace(fs, **bad)
    with pytest.raises(ValueError, match="already registered: fast-scnn"):
        R.register_architecture(replace(fs, aliases=()))
    with pytest.raises(ValueError, match="fastscnn"):
        R.register_architecture(replace(fs, name="other-net"))
    assert R.architecture_names() == ("fast-scnn", "mattingnet")


def test_importing_models_loads_no_builder_training_or_tensorflow():
    code = (
        "import sys, edgematting.models, edgematting.models.registry as r; "
        "r.get_architecture('mattingnet').android_role; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf_keras') "
        "or m.startswith('edgematting.training') or m in ('edgematting.models.fast_scnn', "
        "'edgematting.models.mattingnet')]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# -- a third architecture: one module + one entry ---------------------------------------------
TINY_NET = '''
"""A third architecture for the registry test: two convs and a sigmoid."""
from edgematting._tf import keras
from edgematting.errors import InputError

NAME = "tiny-net"
DEFAULT_OPTIONS = {"filters": 8}


def check_options(merged):
    if not 4 <= int(merged["filters"]) <= 32:
        raise InputError("filters must be in 4..32.")
    merged["filters"] = int(merged["filters"])
    return merged


def build(input_size, width=1.0, filters=8):
    k = keras()
    L = k.layers
    inp = L.Input(shape=(*input_size, 3), dtype="float32", name="image")
    x = L.Conv2D(max(4, int(filters * width)), 3, padding="same", name="body_conv")(inp)
    x = L.ReLU(name="body_relu")(x)
    x = L.Conv2D(1, 3, padding="same", name="head_conv")(x)
    out = L.Activation("sigmoid", dtype="float32", name="alpha")(x)
    return k.Model(inp, out, name="tiny_net")
'''


@pytest.fixture
def tiny_net(tmp_path, monkeypatch):
    """Register 'tiny-net' from a module written to tmp_path; unregister it afterwards."""
    module = f"registry_test_tiny_net_{tmp_path.name.replace('-', '_')}"
    src = tmp_path / "src"
    src.mkdir()
    (src / f"{module}.py").write_text(textwrap.dedent(TINY_NET))
    monkeypatch.syspath_prepend(str(src))
    spec = R.ArchitectureSpec(
        name="tiny-net",
        aliases=("tinynet",),
        description="a two-layer test network",
        module=module,
        # Chosen unlike a fallback would be: segmentation meaning with the matting loss.
        loss="edgematting.training.losses:matting_loss_fn",
        loss_weights="edgematting.training.losses:MattingLossWeights",
        loss_description="matting (test)",
        metrics=("sad", "iou"),
        best_metric="sad",
        best_mode="min",
        output_meaning="person_probability",
        android_role="photo",
    )
    R.register_architecture(spec)
    try:
        yield spec
    finally:
        R.unregister_architecture(spec.name)
        sys.modules.pop(module, None)
    assert "tiny-net" not in R.architecture_names()


def test_third_architecture_is_one_module_plus_one_entry(tiny_net, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMATTING_CACHE_DIR", str(tmp_path / "cache"))
    from edgematting.cli import build_parser
    from edgematting.modelio import load_model_dir
    from edgematting.models import architecture_config
    from edgematting.training import TrainConfig, train

    assert architecture_config("TinyNet", 32)["filters"] == 8  # alias, default options
    with pytest.raises(InputError, match="filters"):
        architecture_config("tiny-net", 32, filters=100)  # the module's own check
    with pytest.raises(InputError, match="Valid options: filters"):
        architecture_config("tiny-net", 32, refine_channels=16)
    assert build_parser().parse_args(["train", "--model", "tiny-net", "--out", "x"]).model == "tiny-net"

    out = tmp_path / "run"
    cfg = TrainConfig(
        model="tiny-net", data="synthetic", out=str(out), input_size=32, epochs=1,
        steps_per_epoch=1, batch_size=2, n_synthetic_val=2, synthetic_pool=4,
        model_options={"filters": 4}, loss_weights={"gradient": 0.5},
    )
    r = train(cfg, progress=False)
    assert r.epochs_completed == 1 and r.optimizer_iterations == 1
    assert r.metric_name == "val_sad" and r.best_epoch == 1
    assert {"loss", "sad", "iou", "val_sad", "val_iou"} <= set(r.history)

    model, spec = load_model_dir(out)
    assert spec.architecture == "tiny-net" and spec.config["filters"] == 4
    assert spec.output_meaning == "person_probability"
    assert json.loads((out / "model.json").read_text())["output_meaning"] == "person_probability"
    assert spec.training["loss"] == "matting (test)"
    assert spec.training["best_metric"]["name"] == "val_sad"
    assert model.get_layer("body_conv").filters == 4
