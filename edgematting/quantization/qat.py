"""Quantization-aware fine-tuning (tfmot) for full-integer int8 TFLite export.

    qat = qat_finetune(model, spec, ExportConfig(precision="int8-qat", tflite={"qat": {"steps": 200}}))
    # -> a tf-keras model with fake-quant nodes; the TFLite converter (Optimize.DEFAULT +
    #    representative dataset + TFLITE_BUILTINS_INT8) turns it into a full-int8 model.

Steps:

1. ``policy.quantize_model``: annotate each layer per ``POLICY`` and ``quantize_apply``.
2. **Range initialization.** tfmot's ``MovingAverageQuantizer`` starts every activation
   range at [-6, 6] and moves it by an EMA with decay 0.999 and no first-batch
   initialization, so after 200 steps a range is still 82% its initial value (a ReLU
   output would keep ~40% of its int8 levels on negative values it never takes). The
   TFLite converter takes those ranges as they are. So before fine-tuning every
   activation range (``output_*``, ``post_activation_*``, ``pre_activation_*``, the input
   ``QuantizeLayer``) is set from the float model's min/max of the matching layer output
   on calibration images -- the same statistic TFLite's post-training calibration uses, so
   fine-tuning starts from the PTQ point and then trains the weights to fit it.
3. Fine-tune with the architecture's task loss (`training.losses.loss_for`) for
   ``config.tflite.qat.steps`` steps (default 200), Adam, ``lr`` (1e-4), batch
   ``qat.batch`` (8). BatchNormalization is frozen (inference mode, fixed
   gamma/beta/statistics, ``qat.freeze_bn``, default True): a few hundred
   small batches should not re-estimate the statistics the converter folds into the convs.
4. Return the QAT Keras model (its weights are still float; the converter quantizes them
   with the fake-quant ranges).

Data: ``data_source`` (or ``config.calib`` when it is a folder, else "synthetic") at the
model's input size. Synthetic data comes from `data.synthetic.SyntheticPortraits` (a seed
disjoint from calibration's and verification's); a folder goes through
`data.pipeline.make_datasets` (image + alpha pairs, the training pipeline's format).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DependencyError, InputError
from .policy import quantize_model

#: SyntheticPortraits seed of the QAT training images (calibration uses 1234, verify 4321).
QAT_SEED = 7919

_RANGE_SUFFIXES = ("output", "post_activation", "pre_activation", "quantize_layer")


# -- data ----------------------------------------------------------------------------------
def _synthetic_batches(spec, batch: int, seed: int = QAT_SEED):
    """Endless (x, y) batches: x normalized float (B,H,W,3), y (B,H,W,7) = [alpha, fg, bg]."""
    from ..data.synthetic import SyntheticPortraits

    gen = SyntheticPortraits(size=tuple(spec.input_size), seed=seed)
    i = 0
    while True:
        xs, ys = [], []
        for _ in range(batch):
            s = gen.sample(i)
            i += 1
            xs.append(spec.normalize(s["image"][..., :3]))
            ys.append(np.concatenate(
                [s["alpha"][..., None], s["fg"][..., :3] / 255.0, s["bg"][..., :3] / 255.0], axis=-1
            ).astype(np.float32))
        yield np.stack(xs).astype(np.float32), np.stack(ys)


def _folder_dataset(spec, folder: str, batch: int):
    try:
        from ..data.pipeline import DataConfig, make_datasets
    except ImportError as e:
        raise DependencyError(
            f"QAT on a folder needs edgematting.data.pipeline ({e}); use synthetic data."
        ) from e
    cfg = DataConfig(source=str(folder), input_size=tuple(spec.input_size), batch_size=batch)
    train_ds, _, _ = make_datasets(cfg, spec.mean, spec.std)
    return train_ds.repeat()


def qat_data(spec, source: str = "synthetic", batch: int = 8):
    """An endless iterable of (x, y) batches for fine-tuning (see module docstring)."""
    if str(source) == "synthetic":
        return _synthetic_batches(spec, batch)
    if not Path(source).is_dir():
        raise InputError(
            f"QAT data '{source}' is neither 'synthetic' nor a folder. Pass a folder of "
            "image + alpha pairs (as for `edgematting train --data`) or 'synthetic'."
        )
    return _folder_dataset(spec, source, batch)


def _range_images(spec, source: str, n: int) -> np.ndarray:
    from ..calibration import calibration_images

    return spec.normalize(calibration_images(spec, source, n)).astype(np.float32)


# -- range initialization --------------------------------------------------------------------
def layer_output_ranges(model, x: np.ndarray, batch: int = 8) -> dict[str, tuple[float, float]]:
    """Per layer name: (min, max) of its output over `x` (float model, inference mode)."""
    from .._tf import keras

    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]
    probe = keras().Model(model.inputs, [l.output for l in layers])
    lo = {l.name: np.inf for l in layers}
    hi = {l.name: -np.inf for l in layers}
    in_name = model.inputs[0].name.split(":")[0]
    lo[in_name], hi[in_name] = float(x.min()), float(x.max())
    for i in range(0, len(x), batch):
        outs = probe(x[i : i + batch], training=False)
        if not isinstance(outs, (list, tuple)):
            outs = [outs]
        for l, o in zip(layers, outs):
            o = np.asarray(o)
            lo[l.name] = min(lo[l.name], float(o.min()))
            hi[l.name] = max(hi[l.name], float(o.max()))
    return {k: (lo[k], hi[k]) for k in lo}


def init_quantizer_ranges(qat_model, float_model, x: np.ndarray) -> int:
    """Set each activation fake-quant range of `qat_model` from `float_model`'s outputs on x.

    Returns how many (min, max) pairs were set. A wrapper ``quant_<name>`` quantizes the
    output of layer ``<name>``; the input ``QuantizeLayer`` quantizes the model input.
    """
    ranges = layer_output_ranges(float_model, x)
    input_name = float_model.inputs[0].name.split(":")[0]
    n = 0
    for layer in qat_model.layers:
        cls = type(layer).__name__
        if cls == "QuantizeLayer":
            src = input_name
        elif hasattr(layer, "layer"):
            src = layer.layer.name
        else:
            continue
        if src not in ranges:
            continue
        lo, hi = ranges[src]
        lo, hi = min(lo, 0.0), max(hi, 0.0)  # fake-quant ranges always contain 0
        if hi - lo < 1e-6:
            hi = lo + 1e-6
        by_kind = {}
        for v in layer.weights:
            base = v.name.split("/")[-1].split(":")[0]
            for kind in _RANGE_SUFFIXES:
                for end, val in (("_min", lo), ("_max", hi)):
                    if base == kind + end:
                        by_kind.setdefault(kind, []).append((v, val))
        for pairs in by_kind.values():
            for v, val in pairs:
                v.assign(np.full(v.shape, val, np.float32))
            n += 1
    return n


def _freeze_batchnorm(qat_model) -> int:
    n = 0
    for layer in qat_model.layers:
        inner = getattr(layer, "layer", layer)
        if type(inner).__name__ in ("BatchNormalization", "SyncBatchNormalization"):
            inner.trainable = False  # tf-keras: a non-trainable BN runs in inference mode
            n += 1
    return n


# -- main entry --------------------------------------------------------------------------------
def qat_finetune(model, spec, config=None, steps: int | None = None, data_source: str | None = None,
                 progress: bool = True):
    """Quantization-aware fine-tuning of `model` -> the QAT (fake-quant) tf-keras model.

    `config` is an ExportConfig (or None): its ``tflite.qat`` (`converters.QATOptions`)
    sets steps, batch, learning rate, BatchNorm freezing and range samples;
    ``config.calib`` (a folder) is used as training data when `data_source` is not given.
    The input `model` is not modified.
    """
    from .._tf import keras, tf
    from ..formats import QATOptions

    tf()
    k = keras()
    opts = config.tflite.qat if config is not None else QATOptions()
    steps = int(steps if steps is not None else opts.steps)
    if steps < 0:
        raise InputError(f"qat_steps must be >= 0, got {steps}.")
    batch, lr = opts.batch, opts.lr
    calib = getattr(config, "calib", "synthetic") if config is not None else "synthetic"
    source = data_source or calib or "synthetic"
    range_source = source if source == "synthetic" or Path(source).is_dir() else "synthetic"

    from ..training.losses import loss_for

    qmodel = quantize_model(model)
    n_ranges = init_quantizer_ranges(
        qmodel, model, _range_images(spec, range_source, opts.range_samples)
    )
    if opts.freeze_bn:
        _freeze_batchnorm(qmodel)
    qmodel.compile(optimizer=k.optimizers.Adam(learning_rate=lr), loss=loss_for(spec.architecture))
    if steps > 0:
        data = qat_data(spec, source, batch)
        if isinstance(data, tf().data.Dataset):
            ds = data
        else:
            h, w = spec.input_size
            ds = tf().data.Dataset.from_generator(
                lambda: data,
                output_signature=(
                    tf().TensorSpec((None, h, w, 3), tf().float32),
                    tf().TensorSpec((None, h, w, 7), tf().float32),
                ),
            )
        qmodel.fit(ds, steps_per_epoch=steps, epochs=1, verbose=1 if progress else 0)
    qmodel._edgematting_qat = {"steps": steps, "batch": batch, "lr": lr, "data": str(source),
                               "ranges_initialized": n_ranges}
    return qmodel
