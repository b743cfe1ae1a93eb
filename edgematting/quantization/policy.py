"""Which layers quantization-aware training (QAT) quantizes, and why: one declarative table.

``POLICY`` maps a Keras layer class name to a treatment and the reason for it, in the
manner of tfmot's ``Default8BitQuantizeRegistry`` (every exclusion has a comment). The
treatments:

* ``"quantize"`` -- annotated with ``quantize_annotate_layer(layer)`` (no QuantizeConfig:
  tfmot's default 8-bit registry decides which weights/outputs get fake-quant nodes).
* ``"fold"``     -- annotated like ``"quantize"``, but tfmot's layout transforms fold the
  layer into its producer (BatchNormalization after Conv2D/DepthwiseConv2D), so it gets
  no fake-quant of its own except the producer's output.
* ``"float"``    -- annotated with a no-op QuantizeConfig (:func:`float_quantize_config`),
  so the QAT graph keeps it in float. A no-op annotation rather than none: tfmot gives an
  *un*-annotated layer that feeds a single annotated layer an output fake-quant anyway
  (``requires_output_quantize`` in ``quantize_apply``).

"float" is only about the QAT *training* graph. The TFLite converter (``Optimize.DEFAULT``
+ representative dataset + ``TFLITE_BUILTINS_INT8``) still makes every op int8: the ranges
the QAT graph lacks are taken from calibration / propagated through same-scale ops.

Every claim about tfmot below was checked against tensorflow-model-optimization 0.8.1
(``default_8bit_quantize_registry.py``, ``default_8bit_transforms.py``,
``default_8bit_quantize_layout_transform.py``, ``quantize.py``).

A layer class missing from the table is an error (:class:`ConversionError`) naming the
layer: a new layer type needs a decision written down here, never a silent default.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConversionError

QUANTIZE = "quantize"
FOLD = "fold"
FLOAT = "float"
TREATMENTS = (QUANTIZE, FOLD, FLOAT)


@dataclass(frozen=True)
class Rule:
    treatment: str
    reason: str


POLICY: dict[str, Rule] = {
    "InputLayer": Rule(
        QUANTIZE,
        "Not wrapped itself: tfmot's InputLayerQuantize transform inserts a QuantizeLayer "
        "(AllValuesQuantizer, 8 bit asymmetric) after the input, which becomes the int8 "
        "input scale.",
    ),
    "Conv2D": Rule(
        QUANTIZE,
        "Default8BitConvQuantizeConfig: kernel fake-quantized per output channel, "
        "symmetric, narrow range (as TFLite int8 CONV_2D); output fake-quant goes after the "
        "folded BN/ReLU when one follows (Conv2DBatchNorm[ReLU]Quantize transforms).",
    ),
    "DepthwiseConv2D": Rule(
        QUANTIZE,
        "Default8BitConvQuantizeConfig on depthwise_kernel (per channel). Dilation is "
        "fine: the wrapper runs the layer's own call (SpaceToBatchND/BatchToSpaceND around "
        "the depthwise conv), and the TFLite converter folds those back into one dilated "
        "int8 DEPTHWISE_CONV_2D (checked by tests/test_qat.py on MattingNet).",
    ),
    "BatchNormalization": Rule(
        FOLD,
        "Not in the registry: the Conv2DBatchNorm[ReLU|Activation]Quantize transforms fold "
        "BN into the preceding Conv2D/DepthwiseConv2D (conv activation -> NoOp, BN/ReLU "
        "carry the output fake-quant), matching the converter's BN folding. A BN that does "
        "not follow a conv has no QuantizeConfig and quantize_apply raises.",
    ),
    "ReLU": Rule(
        QUANTIZE,
        "Registry: output quantized (covers ReLU6 = max_value 6). After Conv+BN or Add the "
        "transforms drop the producer's fake-quant so one range sits after the ReLU, as "
        "TFLite fuses the activation into the conv/add.",
    ),
    "Activation": Rule(
        QUANTIZE,
        "Default8BitActivationQuantizeConfig: relu/relu6 get an output fake-quant; sigmoid "
        "(our output) gets none because TFLite int8 LOGISTIC has a fixed output range "
        "(scale 1/256, zero point -128).",
    ),
    "Add": Rule(
        QUANTIZE,
        "Registry: output quantized (TFLite int8 ADD rescales each input to its own "
        "output scale). Add followed by ReLU: fake-quant only after the ReLU "
        "(LayerReLUQuantize).",
    ),
    "Concatenate": Rule(
        QUANTIZE,
        "Registry: output quantized; ConcatTransform* (2..6 inputs, when every input is "
        "annotated) removes the inputs' own output fake-quants so all inputs share the "
        "concat's range, as the TFLite int8 CONCATENATION prefers.",
    ),
    "AveragePooling2D": Rule(
        QUANTIZE,
        "Registry: output quantized (PPM / global-context pooling).",
    ),
    "UpSampling2D": Rule(
        FLOAT,
        "tfmot 0.8.1's registry does list UpSampling2D (output quantized), but its own TODO "
        "says bilinear gives larger QAT error: TFLite's int8 RESIZE_BILINEAR needs equal "
        "input/output quantization, so the converter inserts a requantize that QAT does not "
        "model. Kept float in the QAT graph, the converter gives the int8 resize its input's "
        "scale (bilinear output stays within the input range), adding no extra rounding "
        "step.",
    ),
    "Rescaling": Rule(
        FLOAT,
        "Not in tfmot 0.8.1's Default8BitQuantizeRegistry. It appears only as the alpha "
        "calibration's affine map after the output sigmoid (`alpha_calibration_scale`, no "
        "weights; edgematting.alpha_calibration): kept float in the QAT graph, the ReLU(max_value=1) "
        "after it carries the output fake-quant, and the converter quantizes its MUL/ADD from "
        "calibration ranges like any other op without a QAT range.",
    ),
    "Resizing": Rule(
        FLOAT,
        "Not in tfmot 0.8.1's Default8BitQuantizeRegistry at all (annotating it without a "
        "QuantizeConfig makes quantize_apply raise 'is not supported'). Bilinear, same "
        "reasoning as UpSampling2D: float in the QAT graph; the converter makes it an int8 "
        "RESIZE_BILINEAR with its input's scale.",
    ),
}


def rule_for(layer) -> Rule:
    """The policy rule for a layer; ConversionError naming it when its class is unknown."""
    cls = type(layer).__name__
    rule = POLICY.get(cls)
    if rule is None:
        raise ConversionError(
            f"Layer '{layer.name}' of class {cls} has no quantization-aware training policy. "
            "Add an entry for it to POLICY in edgematting/quantization/policy.py "
            f"(treatment one of {', '.join(TREATMENTS)}, with the reason), checking what "
            "tfmot's Default8BitQuantizeRegistry does with that class."
        )
    return rule


def describe_policy(model) -> list[tuple[str, str, str, str]]:
    """(layer_name, class, treatment, reason) for every layer of `model`, in order.

    Raises ConversionError for a layer class missing from POLICY.
    """
    rows = []
    for layer in model.layers:
        rule = rule_for(layer)
        rows.append((layer.name, type(layer).__name__, rule.treatment, rule.reason))
    return rows


def check_policy(model) -> None:
    """Raise ConversionError listing every layer whose class is not in POLICY."""
    unknown = [(l.name, type(l).__name__) for l in model.layers if type(l).__name__ not in POLICY]
    if unknown:
        listing = ", ".join(f"'{n}' ({c})" for n, c in unknown)
        raise ConversionError(
            f"Layers with no quantization-aware training policy: {listing}. Add their classes "
            "to POLICY in edgematting/quantization/policy.py with a treatment "
            f"({', '.join(TREATMENTS)}) and the reason."
        )


_FLOAT_CONFIG_CLASS = None


def float_quantize_config_class():
    """A tfmot QuantizeConfig that adds no quantizers (built lazily: tfmot is heavy)."""
    global _FLOAT_CONFIG_CLASS
    if _FLOAT_CONFIG_CLASS is None:
        from .._tf import tf

        tf()
        import tensorflow_model_optimization as tfmot

        class FloatQuantizeConfig(tfmot.quantization.keras.QuantizeConfig):
            """Keeps a layer float in the QAT graph (no weight/activation/output quantizers)."""

            def get_weights_and_quantizers(self, layer):
                return []

            def get_activations_and_quantizers(self, layer):
                return []

            def set_quantize_weights(self, layer, quantize_weights):
                pass

            def set_quantize_activations(self, layer, quantize_activations):
                pass

            def get_output_quantizers(self, layer):
                return []

            def get_config(self):
                return {}

        _FLOAT_CONFIG_CLASS = FloatQuantizeConfig
    return _FLOAT_CONFIG_CLASS


def float_quantize_config():
    return float_quantize_config_class()()


def quantize_scope():
    """tfmot's quantize_scope plus our FloatQuantizeConfig (to clone/load QAT models)."""
    from .._tf import tf

    tf()
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras.quantize_scope(
        {"FloatQuantizeConfig": float_quantize_config_class()}
    )


def annotate(model):
    """Clone `model` with every layer annotated as POLICY says (no weights are changed).

    Returns the annotated model (input to ``quantize_apply``); see :func:`quantize_model`.
    """
    from .._tf import keras

    check_policy(model)
    import tensorflow_model_optimization as tfmot

    annotate_layer = tfmot.quantization.keras.quantize_annotate_layer

    def clone(layer):
        rule = rule_for(layer)
        if rule.treatment == FLOAT:
            return annotate_layer(layer, quantize_config=float_quantize_config())
        return annotate_layer(layer)  # QUANTIZE and FOLD: tfmot's registry/transforms

    return keras().models.clone_model(model, clone_function=clone)


def quantize_model(model):
    """annotate + ``quantize_apply``: the QAT (fake-quant) model, weights copied from `model`."""
    import tensorflow_model_optimization as tfmot

    annotated = annotate(model)
    with quantize_scope():
        try:
            return tfmot.quantization.keras.quantize_apply(annotated)
        except (RuntimeError, ValueError) as e:
            raise ConversionError(
                f"tfmot could not build the quantization-aware model: {e}. Check the entry for "
                "that layer's class in POLICY (edgematting/quantization/policy.py)."
            ) from e
