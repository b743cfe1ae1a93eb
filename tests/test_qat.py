"""Quantization-aware training: the policy table, fine-tuning, and the full-int8 TFLite result.

Tiny 64x64 width-0.25 models from conftest, 2 fine-tuning steps of batch 2: these check
plumbing, the int8 graph and that it reproduces the QAT Keras model (on the confident models:
on an untrained ~0.5 model that check would be vacuous), not accuracy (see
`bench.qat_report` for that).
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from edgematting.errors import ConversionError

ARCH_FIXTURES = {"fast-scnn": "confident_fast_scnn_dir", "mattingnet": "confident_mattingnet_dir"}


def _load(request, arch):
    from edgematting.modelio import load_model_dir

    return load_model_dir(request.getfixturevalue(ARCH_FIXTURES[arch]))


# -- policy ---------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", sorted(ARCH_FIXTURES))
def test_policy_covers_every_layer(request, arch):
    from edgematting.quantization.policy import POLICY, TREATMENTS, describe_policy

    model, _ = _load(request, arch)
    rows = describe_policy(model)
    assert len(rows) == len(model.layers)
    classes = {type(l).__name__ for l in model.layers}
    assert classes <= set(POLICY)
    for name, cls, treatment, reason in rows:
        assert treatment in TREATMENTS and len(reason) > 20, (name, cls)
    by_class = {cls: treatment for _, cls, treatment, _ in rows}
    assert by_class["Conv2D"] == "quantize" and by_class["BatchNormalization"] == "fold"
    assert by_class["UpSampling2D"] == "float"


def test_unknown_layer_class_names_the_layer():
    from edgematting._tf import keras
    from edgematting.quantization.policy import annotate, describe_policy

    k = keras()
    inp = k.layers.Input((16, 16, 3))
    x = k.layers.Conv2D(4, 3, padding="same", name="c")(inp)
    x = k.layers.LayerNormalization(name="odd_norm")(x)
    model = k.Model(inp, x)
    for fn in (describe_policy, annotate):
        with pytest.raises(ConversionError) as e:
            fn(model)
        msg = str(e.value)
        assert "odd_norm" in msg and "LayerNormalization" in msg and "POLICY" in msg


def test_policy_reasons_match_tfmot_registry():
    """The table's claims about tfmot 0.8.1's default 8-bit registry hold."""
    from edgematting._tf import keras
    from edgematting.quantization.policy import POLICY

    k = keras()
    import tensorflow_model_optimization as tfmot

    reg = tfmot.quantization.keras.default_8bit.Default8BitQuantizeRegistry()
    L = k.layers
    samples = {
        "Conv2D": L.Conv2D(2, 1), "DepthwiseConv2D": L.DepthwiseConv2D(3), "ReLU": L.ReLU(),
        "Activation": L.Activation("sigmoid"), "Add": L.Add(), "Concatenate": L.Concatenate(),
        "AveragePooling2D": L.AveragePooling2D(), "UpSampling2D": L.UpSampling2D(interpolation="bilinear"),
        "Resizing": L.Resizing(8, 8), "BatchNormalization": L.BatchNormalization(),
        "Rescaling": L.Rescaling(1.25, -0.125),  # the alpha calibration's map (edgematting.alpha_calibration)
    }
    for cls, layer in samples.items():
        if POLICY[cls].treatment == "quantize":
            assert reg.supports(layer), cls
    assert reg.supports(samples["UpSampling2D"])  # listed by tfmot; we keep it float on purpose
    assert not reg.supports(samples["Resizing"])  # not in the registry at all
    assert not reg.supports(samples["Rescaling"])  # nor is this
    assert reg.supports(L.ReLU(max_value=1.0))  # the calibration's clip: quantized as any ReLU
    assert not reg.supports(samples["BatchNormalization"])  # handled by the fold transforms


# -- fine-tuning and conversion ---------------------------------------------------------------------
def _convert_int8(qat_model, spec, n_calib=4):
    """The standard tfmot QAT -> TFLite flow (what converters.tflite does for int8-qat)."""
    from edgematting._tf import tf as _tf
    from edgematting.calibration import calibration_images

    tf = _tf()
    x = spec.normalize(calibration_images(spec, "synthetic", n_calib)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(qat_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return conv.convert()


def _interpreter(data: bytes):
    # Reference kernels, no XNNPACK delegate: op details stay visible per op.
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=data,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    return it


def _run(it, x):
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for i in range(len(x)):
        it.set_tensor(inp["index"], x[i : i + 1])
        it.invoke()
        ys.append(np.array(it.get_tensor(out["index"])))
    return np.concatenate(ys)


@pytest.mark.parametrize(
    "arch",
    # QAT fine-tuning + conversion takes about 2 minutes (Fast-SCNN) to several (MattingNet)
    # on 2 cores: both run with `pytest -m slow`; the policy tests above run by default.
    [pytest.param(a, marks=pytest.mark.slow) for a in sorted(ARCH_FIXTURES)],
)
def test_qat_finetune_converts_to_full_int8(request, arch):
    from edgematting.converters.base import ExportConfig
    from edgematting.quantization.qat import qat_finetune

    model, spec = _load(request, arch)
    w0 = [w.copy() for w in model.get_weights()]
    cfg = ExportConfig(target="tflite", precision="int8-qat", tflite={"qat": {"steps": 2, "batch": 2}})
    qat = qat_finetune(model, spec, cfg, progress=False)
    # The input model is untouched; the QAT model has fake-quant wrappers and was trained.
    assert all(np.array_equal(a, b) for a, b in zip(w0, model.get_weights()))
    assert any(type(l).__name__ == "QuantizeWrapperV2" for l in qat.layers)
    assert qat.optimizer.iterations.numpy() == 2
    # Activation ranges were initialized from the float model, not left at tfmot's [-6, 6].
    relu_max = [float(v.numpy()) for l in qat.layers for v in l.weights
                if v.name.endswith("output_max:0") and "relu" in l.name]
    assert relu_max and any(abs(m - 6.0) > 1e-3 for m in relu_max)

    it = _interpreter(_convert_int8(qat, spec))
    tensors = {d["index"]: d for d in it.get_tensor_details()}
    ops = it._get_ops_details()
    names = Counter(o["op_name"] for o in ops)
    assert names["CONV_2D"] > 0 and names["DEPTHWISE_CONV_2D"] > 0
    n_conv = sum(1 for l in model.layers if type(l).__name__ in ("Conv2D", "DepthwiseConv2D"))
    assert names["CONV_2D"] + names["DEPTHWISE_CONV_2D"] == n_conv  # dilated dw folded back, none split
    float_ops = []
    for o in ops:
        dts = {np.dtype(tensors[i]["dtype"]).name for i in o["inputs"] if i >= 0}
        if o["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            data_in, weights = o["inputs"][0], o["inputs"][1]
            assert np.dtype(tensors[data_in]["dtype"]) == np.int8, o
            assert np.dtype(tensors[weights]["dtype"]) == np.int8, o
        if "float32" in dts and o["op_name"] != "QUANTIZE":
            float_ops.append(o["op_name"])
    # Float only at the I/O boundary: QUANTIZE (float input -> int8) and DEQUANTIZE (output).
    assert float_ops == [], float_ops
    assert names["QUANTIZE"] >= 1 and names["DEQUANTIZE"] >= 1

    # int8 TFLite reproduces the QAT Keras model, within the int8-qat row of the tolerance
    # table (QAT Keras simulates the same rounding; the converter's resize/add
    # requantization and float accumulation order differ slightly).
    from edgematting.calibration import verification_images
    from edgematting.verify import compare, tolerance_for

    x = spec.normalize(verification_images(spec, None, 4)).astype(np.float32)
    y_keras = np.asarray(qat(x, training=False))
    y_tfl = _run(it, x)
    tol = tolerance_for("tflite", "int8-qat")
    m = compare(y_keras, y_tfl, 0.5, tol.iou_band)
    print(f"\n{arch} int8 TFLite vs QAT Keras: {m}")
    assert m["iou_checked"] >= tol.min_iou and m["mean_abs"] <= tol.mean_abs, m
