"""The one export test helper: convert with the library API the CLI uses, verify with the
tolerance table, and check the sidecar against the metadata embedded in the file.

Used by every converter test (TFLite, ONNX, Core ML)::

    artifact, report = assert_export_matches(confident_fast_scnn_dir, "tflite", "int8", tmp_path)

A parity check means something only on a model whose output is not flat: every model
given to `assert_export_matches` must pass `assert_confident` on the images verification
compares on (conftest's `confident_*_dir` fixtures do).
"""
from __future__ import annotations

from pathlib import Path

# Calibration kept small so the suite stays fast (the tolerance table is unchanged). On the
# confident models, 8 calibration images and 4 verification images left the int8 rows'
# IoU bound (0.98) without margin: TFLite int8 MattingNet 0.974 (fails), Fast-SCNN 0.983.
# With 16 and 8 (measured on both models, TFLite and ONNX, float and uint8 input) the
# checked IoU is 0.986 to 0.993; with the library's default 64 calibration images, 0.99.
TEST_CALIB_SAMPLES = 16
TEST_VERIFY_SAMPLES = 8


# What "confident" means for a test model, on the verification images: a wrong input
# mapping has to move the output for a parity check to see it. Trained segmenters output
# mostly near-0/near-1 alphas with a thin band of edge pixels near the threshold.
CONFIDENT = {
    "min_std": 0.2,  # over all pixels of all verification images
    "min_image_std": 0.1,  # every single image has a foreground and a background
    "min_sure": 0.5,  # share of pixels < 0.1 or > 0.9
    "min_each_side": 0.05,  # share of pixels < 0.1, and share > 0.9: both classes present
    "near_band": 0.1,  # |alpha - 0.5| < near_band counts as near the threshold...
    "near_range": (0.005, 0.25),  # ...and such pixels exist (edges) but are not the bulk
}


# The confident-model recipe (see conftest): seeded, neither the calibration nor the
# verification seed.
CONFIDENT_TRAIN_SEED = 2024
CONFIDENT_TRAIN_IMAGES = 32
CONFIDENT_STEPS = 200
CONFIDENT_BATCH = 8


def fit_confident(model, x, y, steps: int, batch: int, seed: int) -> None:
    """The confident recipe's fit: `steps` of SGD (lr 0.3, momentum 0.9) on binary cross-entropy
    over random batches of (x, y), then the BatchNormalization statistics set to these
    images' own (one pass with momentum 0), so the saved model is as sure at inference as
    in training."""
    import numpy as np

    from edgematting._tf import keras, tf

    k, T = keras(), tf()
    opt = k.optimizers.SGD(0.3, momentum=0.9)
    bce = k.losses.BinaryCrossentropy()

    @T.function
    def step(xb, yb):
        with T.GradientTape() as tape:
            loss = bce(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    rng = np.random.default_rng(seed)
    for _ in range(steps):
        idx = rng.choice(len(x), batch, replace=False)
        step(x[idx], y[idx])
    bns = [lyr for lyr in model.layers if isinstance(lyr, k.layers.BatchNormalization)]
    momenta = [lyr.momentum for lyr in bns]
    for lyr in bns:
        lyr.momentum = 0.0
    model(x, training=True)  # momentum 0: moving statistics := these images' statistics
    for lyr, m in zip(bns, momenta):
        lyr.momentum = m


def train_confident(architecture, out_dir, input_size=(64, 64), width=0.25, **options):
    """Train a tiny model the confident way (recipe in conftest) and save it to `out_dir`;
    `options` are architecture options (e.g. head="fused"). Returns the CPU seconds taken."""
    import time

    import numpy as np

    from edgematting._tf import keras
    from edgematting.calibration import calibration_images
    from edgematting.data.synthetic import SyntheticPortraits
    from edgematting.modelio import ModelSpec, save_model_dir
    from edgematting.models import architecture_config, build_model

    t0 = time.process_time()
    keras().utils.set_random_seed(1234)
    config = architecture_config(architecture, input_size=input_size, width=width, **options)
    spec = ModelSpec(architecture=architecture, config=config, input_size=tuple(input_size))
    model = build_model(architecture, **config)
    n = CONFIDENT_TRAIN_IMAGES
    x = spec.normalize(calibration_images(spec, "synthetic", n, seed=CONFIDENT_TRAIN_SEED)).astype(np.float32)
    gen = SyntheticPortraits(size=tuple(input_size), seed=CONFIDENT_TRAIN_SEED)
    y = np.stack([gen.sample(i)["alpha"] for i in range(n)])[..., None].astype(np.float32)
    fit_confident(model, x, y, CONFIDENT_STEPS, CONFIDENT_BATCH, CONFIDENT_TRAIN_SEED)
    fresh = build_model(architecture, **config)
    fresh.set_weights(model.get_weights())
    save_model_dir(fresh, spec, out_dir)
    return time.process_time() - t0


def output_stats(y) -> dict:
    """Summary of model outputs (N, H, W, 1) in 0..1."""
    import numpy as np

    y = np.asarray(y, np.float64)
    flat = y.reshape(-1)
    per_image = y.reshape(len(y), -1).std(axis=1)
    return {
        "mean": round(float(flat.mean()), 4),
        "std": round(float(flat.std()), 4),
        "min_image_std": round(float(per_image.min()), 4),
        "low": round(float((flat < 0.1).mean()), 4),
        "high": round(float((flat > 0.9).mean()), 4),
        "near": round(float((np.abs(flat - 0.5) < CONFIDENT["near_band"]).mean()), 4),
    }


_STATS_CACHE: dict = {}


def confident_stats(model_dir) -> dict:
    """`output_stats` of the Keras model in `model_dir` on the images verification compares
    on (`calibration.verification_images`, TEST_VERIFY_SAMPLES of them). Cached per file."""
    from edgematting.calibration import verification_images
    from edgematting.modelio import MODEL_FILE
    from edgematting.runners.keras import KerasRunner

    p = Path(model_dir).resolve()
    key = (str(p), (p / MODEL_FILE).stat().st_mtime_ns)
    if key not in _STATS_CACHE:
        runner = KerasRunner(p)
        x = runner.spec.normalize(verification_images(runner.spec, None, TEST_VERIFY_SAMPLES))
        _STATS_CACHE[key] = output_stats(runner.run(x))
    return _STATS_CACHE[key]


def assert_confident(stats: dict, what="model") -> None:
    """Fail loudly when a test model's output is too flat for parity checks to mean anything."""
    c = CONFIDENT
    lo, hi = c["near_range"]
    problems = [
        f"std {stats['std']} < {c['min_std']}" * (stats["std"] < c["min_std"]),
        f"an image with std {stats['min_image_std']} < {c['min_image_std']}" * (stats["min_image_std"] < c["min_image_std"]),
        f"only {stats['low'] + stats['high']:.3f} of pixels < 0.1 or > 0.9" * (stats["low"] + stats["high"] < c["min_sure"]),
        f"one class missing (low {stats['low']}, high {stats['high']})"
        * (min(stats["low"], stats["high"]) < c["min_each_side"]),
        f"near-threshold share {stats['near']} outside {c['near_range']}" * (not lo <= stats["near"] <= hi),
    ]
    problems = [p for p in problems if p]
    assert not problems, (f"{what} is not confident enough for parity tests to mean anything: "
                          + "; ".join(problems) + f" ({stats})")


def sidecar_without_extras(sidecar: dict) -> dict:
    from edgematting.converters import SIDECAR_ONLY_KEYS

    return {k: v for k, v in sidecar.items() if k not in SIDECAR_ONLY_KEYS}


def read_embedded_metadata(path) -> dict:
    """Per-target reader: `<target module>.read_embedded_metadata` (tflite flatbuffer
    metadata, onnx metadata_props, coreml user-defined metadata)."""
    from edgematting.converters import read_embedded_metadata as read

    return read(path)


def assert_export_matches(model_dir, target: str, precision: str, tmp_path, **config_overrides):
    """Convert `model_dir` to (target, precision), verify, and assert that it passed, that
    the sidecar exists and equals the embedded metadata. Returns (Artifact, VerificationReport).

    `model_dir` must be confident (`assert_confident`): on a flat model this proves nothing."""
    import json

    from edgematting.converters import ExportConfig, convert_model
    from edgematting.verify import tolerance_for

    assert_confident(confident_stats(model_dir), model_dir)
    kw = {"calib_samples": TEST_CALIB_SAMPLES, "verify_samples": TEST_VERIFY_SAMPLES, "verify": True}
    kw.update(config_overrides)
    config = ExportConfig(target=target, precision=precision, **kw)
    out = Path(tmp_path) / "export"
    artifact = convert_model(model_dir, config, out_dir=out, progress=False)
    report = artifact.verification
    assert report is not None, "conversion did not verify"
    assert report.passed, report.failures
    assert report.tolerances == tolerance_for(target, precision).to_dict()
    assert report.engine, "the report must say which engine computed the numbers"
    assert artifact.path.exists() and artifact.path.parent == out
    assert artifact.sidecar.is_file(), f"no sidecar {artifact.sidecar}"
    sidecar = json.loads(artifact.sidecar.read_text())
    assert sidecar["verification"]["passed"] is True
    assert sidecar["verification"]["max_abs"] == report.max_abs
    embedded = read_embedded_metadata(artifact.path)
    assert embedded == sidecar_without_extras(sidecar)
    assert embedded["target"] == target and embedded["precision"] == precision
    assert embedded["file"] == artifact.path.name
    assert embedded["input"]["channels"] == config.channels
    # nothing else left in the output folder (no staging folder, no temp file)
    leftovers = {p.name for p in out.iterdir()} - {artifact.path.name, artifact.sidecar.name}
    assert not leftovers, leftovers
    return artifact, report


# --- deliberate input-mapping mistakes ------------------------------------------------------
# Each converter test module runs these against its target to show that its parity check
# can fail: a wrong mean, std or channel order in the graph the converter builds (the
# uint8/4-channel wrapper, `converters.wrappers.wrap_model`, which every target calls at
# conversion time), or in what the runner feeds the artifact (`contract.encode_normalized`, which every
# runner calls to turn normalized floats into the artifact's own input).
#
# (where, mutation, input_type, precision). fp32 rows bound the worst pixel at 1e-4, so
# even a mean 2 pixel values off fails them; the int8 row (mean 0.02, IoU 0.98) cannot see
# a mean off by 2 (it moves the confident models' output by mean ~0.013), so the uint8
# camera path at int8 is checked with a channel swap, which the IoU bound catches.
MUTATIONS = [
    ("wrapper", "mean_off_by_2", "uint8", "fp32"),
    ("wrapper", "std_off_by_2pc", "uint8", "fp32"),
    ("wrapper", "bgr", "float", "fp32"),
    ("wrapper", "bgr", "uint8", "int8"),
    ("runner", "mean_off_by_2", "float", "fp32"),
    ("runner", "bgr", "uint8", "fp32"),
]
#: run with `pytest -m slow` (about 6 s each per target; the default suite must stay under 15
#: minutes): each is another instance of a default case (the smallest error, std 2% off, an
#: int8 BGR file and a runner feeding BGR stay in the default suite).
SLOW_MUTATIONS = {("wrapper", "mean_off_by_2", "uint8", "fp32"), ("wrapper", "bgr", "float", "fp32"),
                  ("runner", "mean_off_by_2", "float", "fp32")}


def mutation_params():
    """`MUTATIONS` as pytest params with their ids, `SLOW_MUTATIONS` marked slow."""
    import pytest

    return [pytest.param(m, id="-".join(m), marks=[pytest.mark.slow] if m in SLOW_MUTATIONS else [])
            for m in MUTATIONS]


def _channel_reversed(model):
    """`model` behind a fixed 1x1 conv that feeds it BGR instead of RGB."""
    import numpy as np

    from edgematting._tf import keras

    k = keras()
    inp = k.Input(model.input_shape[1:], dtype=model.input.dtype)
    conv = k.layers.Conv2D(3, 1, use_bias=False, name="mutation_bgr")
    x = conv(inp)
    conv.set_weights([np.eye(3, dtype=np.float32)[::-1].reshape(1, 1, 3, 3)])
    return k.Model(inp, model(x), name=model.name)


def break_input_mapping(monkeypatch, where: str, mutation: str) -> None:
    """Monkeypatch one deliberate input-mapping mistake into the converters or runners."""
    import dataclasses

    import numpy as np

    from edgematting.converters import wrappers

    if where == "wrapper":
        real = wrappers.wrap_model

        def wrong(model, spec, *args, **kwargs):
            if mutation == "mean_off_by_2":
                spec = dataclasses.replace(spec, mean=tuple(m + 2.0 for m in spec.mean))
            elif mutation == "std_off_by_2pc":
                spec = dataclasses.replace(spec, std=tuple(s * 1.02 for s in spec.std))
            elif mutation == "bgr":
                model = _channel_reversed(model)
            else:
                raise ValueError(mutation)
            return real(model, spec, *args, **kwargs)

        monkeypatch.setattr(wrappers, "wrap_model", wrong)
    elif where == "runner":
        from edgematting import contract

        real_encode = contract.encode_normalized

        def wrong_encode(x, meta_or_contract, **kwargs):
            c = contract._contract(meta_or_contract)
            x = np.array(x, np.float32)
            if mutation == "mean_off_by_2":  # 2 pixel values, in normalized units
                std = c["model_std"] if c["normalization_in_model"] else c["std"]
                x[..., :3] -= np.float32(2.0) / np.asarray(std, np.float32)
            elif mutation == "bgr":
                x = np.ascontiguousarray(x[..., 2::-1])
            else:
                raise ValueError(mutation)
            return real_encode(x, meta_or_contract, **kwargs)

        monkeypatch.setattr(contract, "encode_normalized", wrong_encode)
    else:
        raise ValueError(where)


def assert_mutation_fails_parity(model_dir, target: str, case, tmp_path, monkeypatch):
    """Convert with one deliberate input-mapping mistake patched in: the conversion's own
    verification (verify.TOLERANCES) must raise ParityError and publish nothing."""
    import pytest

    from edgematting.converters import ExportConfig, convert_model
    from edgematting.errors import ParityError
    from edgematting.verify import tolerance_for

    where, mutation, input_type, precision = case
    assert_confident(confident_stats(model_dir), model_dir)
    break_input_mapping(monkeypatch, where, mutation)
    config = ExportConfig(target=target, precision=precision, input_type=input_type,
                          calib_samples=TEST_CALIB_SAMPLES, verify_samples=TEST_VERIFY_SAMPLES)
    out = Path(tmp_path) / "export"
    with pytest.raises(ParityError) as e:
        convert_model(model_dir, config, out_dir=out, progress=False)
    report = e.value.report
    assert report is not None and not report.passed and e.value.failures
    assert report.tolerances == tolerance_for(target, precision).to_dict()
    assert not out.exists() or not any(out.iterdir()), "a failed verification must publish nothing"
    print(f"\n{target} {'-'.join(case)}: {report.summary()}")
    return report


# --- (architecture, precision) matrices -----------------------------------------------------
#: The shared confident model fixture of each architecture (conftest).
CONFIDENT_FIXTURE = {"fast-scnn": "confident_fast_scnn_dir", "mattingnet": "confident_mattingnet_dir"}


def arch_precision_cases(precisions, slow=()):
    """pytest params (arch, precision) for every architecture x precision; the pairs in `slow`
    are marked slow (run with `pytest -m slow`) to keep the default suite short."""
    import pytest

    return [pytest.param(a, p, id=f"{a}-{p}", marks=[pytest.mark.slow] if (a, p) in slow else [])
            for a in CONFIDENT_FIXTURE for p in precisions]


def copy_model_dir(src, dst):
    """A writable copy of a shared model dir: its model.keras and model.json (what `convert`,
    `verify` and the runners read), nothing of the run that made it."""
    import shutil
    from pathlib import Path

    from edgematting.modelio import SPEC_FILE

    dst = Path(dst)
    dst.mkdir(parents=True)
    for name in ("model.keras", SPEC_FILE):
        shutil.copy2(Path(src) / name, dst / name)
    return dst
