"""TFLite (LiteRT) converter: fp32, fp16, dynamic, int8 (PTQ and QAT), int16x8.

The model is traced with a fixed batch-1 signature ``[1, H, W, C]`` (static shapes are
what mobile delegates want). Per precision:

============  ================================================================
fp32          plain conversion
fp16          Optimize.DEFAULT + supported_types=[float16] (weights fp16)
dynamic       Optimize.DEFAULT, no data (int8 weights, float activations)
int8          Optimize.DEFAULT + representative dataset + TFLITE_BUILTINS_INT8;
              I/O int8, uint8 or float around the int8 body (``tflite.io``);
              ``tflite.keep_float`` leaves named tensors in float
int8-qat      `quantization.qat.qat_finetune`, then as int8
int16x8       EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8, float I/O
============  ================================================================

uint8 input folds the normalization into the graph (`wrappers.wrap_model`). For
full-integer models the pixel input is calibrated over exactly [0, 255] (the calibration
set always contains one 0 and one 255 pixel), so the uint8 input quantization is
scale 1, zero point 0: an app feeds camera bytes unchanged. This is checked after
conversion and a ConversionError is raised if it does not hold.

Metadata is embedded in the flatbuffer's ``Model.metadata`` table under the name
`formats.METADATA_KEY` (a buffer with the JSON bytes); `runners.tflite.read_embedded_metadata`
reads it back.

Every file is also what an app's SDK expects as it is: the input and output tensors are
named as the contract says (``image``, ``alpha``), a ``serving_default`` SignatureDef maps
them, and standard TFLite Model Metadata (image segmenter: normalization, labels, ...) is
written by tflite-support's metadata writer (`tflite_metadata`). The sidecar's ``clients``
section says whether MediaPipe Tasks ImageSegmenter takes the file, or why not (printed too).
"""
from __future__ import annotations

import json
import os
import sys
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np

from .. import atomic
from ..errors import ConversionError, DependencyError, InputError, UnsupportedError
from ..contract import artifact_metadata, encode_pixels
from ..formats import FORMATS, METADATA_KEY, TFLITE_IO
from .base import ExportConfig



def io_type(config: ExportConfig) -> str:
    """The I/O dtype around a full-integer body ("float" for other precisions)."""
    io = config.tflite.io
    if not FORMATS["tflite"].precisions[config.precision].full_integer:
        if io not in (None, "float"):
            raise UnsupportedError(
                f"--tflite-io {io} needs a full-integer precision (int8, int8-qat); "
                f"'{config.precision}' keeps float I/O. Drop --tflite-io or use --precision int8."
            )
        return "float"
    if io is None:
        return "uint8" if (config.input_type == "uint8" and config.precision != "int16x8") else "float"
    if io not in TFLITE_IO:
        raise InputError(f"--tflite-io takes one of {', '.join(TFLITE_IO)}, not '{io}'.")
    if config.precision == "int16x8" and io != "float":
        raise UnsupportedError(
            "int16x8 models keep float I/O (int16 activations have no 8-bit I/O); "
            "drop --tflite-io or use --precision int8."
        )
    return io


def filename_parts(config: ExportConfig) -> list[str]:
    """What tells this config's file apart from the default file of the same precision."""
    parts = [f"io{config.tflite.io}"] if config.tflite.io is not None else []
    if config.tflite.keep_float:
        parts.append(f"keepfloat{len(config.tflite.keep_float)}")
    return parts


def check_config(config: ExportConfig) -> None:
    """Combination checks, before any work (UnsupportedError / InputError)."""
    io_type(config)
    if config.tflite.keep_float and config.precision not in ("int8", "int8-qat"):
        raise UnsupportedError("Keeping layers in float (keep_float) needs --precision int8.")


def _representative(spec, config: ExportConfig, pixels_input: bool):
    from ..calibration import calibration_images, calibration_priors

    px = calibration_images(spec, config.calib, config.calib_samples).copy()
    prior = calibration_priors(spec, len(px))  # None unless a prior-frame model
    if pixels_input:
        # Anchor the input range to exactly [0, 255] -> uint8 scale 1, zero point 0.
        px[0, 0, 0, :] = 0
        px[0, 0, 1, :] = 255
    # The float graph's input, before the converter adds input quantization.
    x = encode_pixels(px, artifact_metadata(spec, config, "calibration"), quantized=False, prior=prior)

    def gen():
        for i in range(len(x)):
            yield [x[i : i + 1]]

    return gen


def _qat_model(model, spec, config):
    from ..quantization.qat import qat_finetune

    return qat_finetune(model, spec, config)


def make_converter(model, spec, config: ExportConfig):
    """The configured `tf.lite.TFLiteConverter` for `config` and its representative dataset
    (None when the precision calibrates nothing). Also used by the int8 error report."""
    from edgematting._tf import tf as _tf

    from .wrappers import wrap_model

    tf = _tf()
    io = io_type(config)
    full_int = FORMATS["tflite"].precisions[config.precision].full_integer
    pixels_float = full_int  # full-integer: calibrate the 0..255 input range, I/O type set below
    if config.precision == "int8-qat":
        model = _qat_model(model, spec, config)
    keras_model = wrap_model(model, spec, config.input_type, config.channels,
                             pixels_dtype="float32" if pixels_float else "uint8")
    h, w = spec.input_size
    in_dtype = tf.uint8 if (config.input_type == "uint8" and not pixels_float) else tf.float32
    sig = tf.TensorSpec([1, h, w, int(keras_model.input_shape[-1])], in_dtype, name=spec.input_name)

    @tf.function(input_signature=[sig])
    def serve(x):
        return {spec.output_name: keras_model(x, training=False)}

    conc = serve.get_concrete_function()
    conv = tf.lite.TFLiteConverter.from_concrete_functions([conc], keras_model)
    # Freeze the concrete function directly instead of saving the Keras model as a
    # SavedModel first (which re-traces every layer: ~50 s vs ~2 s for a tiny model).
    conv.experimental_lower_to_saved_model = False
    p = config.precision
    if p == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif p == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rep = None
    if p in ("int8", "int8-qat"):
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep = _representative(spec, config, config.input_type == "uint8")
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        dt = {"int8": tf.int8, "uint8": tf.uint8, "float": tf.float32}[io]
        conv.inference_input_type = dt
        conv.inference_output_type = dt
    if p == "int16x8":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = rep = _representative(spec, config, config.input_type == "uint8")
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return conv, rep


def convert_bytes(model, spec, config: ExportConfig) -> tuple[bytes, dict]:
    """Convert `model` (the unwrapped Keras model) -> (flatbuffer bytes, io metadata)."""
    from edgematting._tf import tf as _tf

    tf = _tf()
    conv, rep = make_converter(model, spec, config)
    try:
        if config.tflite.keep_float:
            # Selective quantization: the named tensors stay float (QuantizationDebugger's
            # denylist), everything else is full-integer as above.
            opts = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=list(config.tflite.keep_float))
            dbg = tf.lite.experimental.QuantizationDebugger(
                converter=conv, debug_dataset=rep, debug_options=opts)
            data = dbg.get_nondebug_quantized_model()
        else:
            data = conv.convert()
    except (KeyboardInterrupt, InputError, DependencyError):
        raise
    except Exception as e:  # the converter raises many types (ConverterError, ValueError, ...)
        raise ConversionError(f"TFLite conversion ({config.precision}) failed: {str(e).strip()[:2000]}") from e
    return bytes(data), _io_details(data, config)


def _io_details(data: bytes, config: ExportConfig) -> dict:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=data)
    try:
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise ConversionError(
            f"The converted {config.precision} model does not load in LiteRT: {str(e).strip()[:500]}. "
            + ("int16x8 kernels reject layers whose weight/activation scales overflow the "
               "fixed-point multiplier (typical of untrained or badly conditioned layers); "
               "use --precision int8 or fp16." if config.precision == "int16x8" else "")
        ) from e
    inp = it.get_input_details()[0]
    out = it.get_output_details()[0]

    def quant(d):
        s, z = d["quantization"]
        return {"scale": float(s), "zero_point": int(z)} if s else None

    io = {
        "input_dtype": np.dtype(inp["dtype"]).name,
        "input_quant": quant(inp),
        "output_dtype": np.dtype(out["dtype"]).name,
        "output_quant": quant(out),
    }
    if config.input_type == "uint8" and io["input_dtype"] == "uint8":
        q = io["input_quant"]
        if q is not None and (abs(q["scale"] - 1.0) > 1e-6 or q["zero_point"] != 0):
            raise ConversionError(
                f"uint8 pixel input came out with scale {q['scale']}, zero point {q['zero_point']} "
                "(expected 1 and 0): the calibration did not span 0..255."
            )
    return io


# -- metadata in the flatbuffer ---------------------------------------------------------
SIGNATURE_KEY = "serving_default"


def _edit_model(data: bytes, edit) -> bytes:
    """Unpack the flatbuffer, `edit(ModelT)`, pack it again. Associated files packed after
    the flatbuffer (a zip, as the standard metadata writer appends them) are kept."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema_fb

    m = schema_fb.ModelT.InitFromObj(schema_fb.Model.GetRootAsModel(bytearray(data), 0))
    edit(m, schema_fb)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    out = bytes(b.Output())
    packed = _packed_files(data)
    if packed:
        buf = BytesIO(out)
        buf.seek(0, os.SEEK_END)
        with zipfile.ZipFile(buf, "a") as dst:
            for n, content in packed.items():
                dst.writestr(n, content)
        out = buf.getvalue()
    return out


def _packed_files(data: bytes) -> dict[str, bytes]:
    """The associated files zipped after the flatbuffer ({} when there are none)."""
    try:
        if not zipfile.is_zipfile(BytesIO(data)):
            return {}
        with zipfile.ZipFile(BytesIO(data)) as src:
            return {n: src.read(n) for n in src.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError):  # weights that merely look like a zip end record
        return {}


def embed_metadata(data: bytes, metadata: dict, name: str = METADATA_KEY) -> bytes:
    """Return the flatbuffer with `metadata` (JSON) in Model.metadata[name] (replacing one)."""
    payload = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)

    def edit(m, schema_fb):
        buf = schema_fb.BufferT()
        buf.data = payload
        m.buffers = list(m.buffers or [])
        m.buffers.append(buf)
        md = schema_fb.MetadataT()
        md.name = name
        md.buffer = len(m.buffers) - 1
        m.metadata = [x for x in (m.metadata or []) if _s(x.name) != name] + [md]

    return _edit_model(data, edit)


def name_io(data: bytes, input_name: str, output_name: str, signature_key: str = SIGNATURE_KEY) -> bytes:
    """Name the input and output tensors (the converter calls the output "Identity") and
    add one SignatureDef `signature_key` mapping `input_name` -> `output_name`."""

    def edit(m, schema_fb):
        if len(m.subgraphs or []) != 1:
            raise ConversionError(f"The converted model has {len(m.subgraphs or [])} subgraphs (expected 1).")
        sg = m.subgraphs[0]
        if len(sg.inputs) != 1 or len(sg.outputs) != 1:
            raise ConversionError(f"The converted model has {len(sg.inputs)} inputs and {len(sg.outputs)} "
                                  "outputs (expected 1 and 1).")
        sg.tensors[sg.inputs[0]].name = input_name
        sg.tensors[sg.outputs[0]].name = output_name

        def tensor_map(name, index):
            t = schema_fb.TensorMapT()
            t.name, t.tensorIndex = name, int(index)
            return t

        sig = schema_fb.SignatureDefT()
        sig.signatureKey = signature_key
        sig.subgraphIndex = 0
        sig.inputs = [tensor_map(input_name, sg.inputs[0])]
        sig.outputs = [tensor_map(output_name, sg.outputs[0])]
        m.signatureDefs = [sig]

    return _edit_model(data, edit)


def _s(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


def convert(model, spec, config: ExportConfig, out_path: Path) -> dict:
    """Convert, name the tensors, embed our metadata and the standard TFLite Model Metadata
    (`tflite_metadata`), check the result, write `out_path` atomically; return the metadata."""
    from . import tflite_metadata

    data, io_ = convert_bytes(model, spec, config)
    meta = artifact_metadata(spec, config, Path(out_path).name, **io_)
    meta["tflite"] = {"io": io_type(config), "batch": 1}
    if config.tflite.keep_float:
        meta["tflite"]["keep_float"] = list(config.tflite.keep_float)
    request = tflite_metadata.segmenter_request(meta, spec, config)
    meta["tflite"]["signature"] = SIGNATURE_KEY
    meta["tflite"]["model_metadata"] = {
        "writer": tflite_metadata.WRITER,
        "input_mean": request["input"]["mean"],
        "input_std": request["input"]["std"],
        "labels": request["output"]["labels"],
    }
    support = tflite_metadata.mediapipe_support(meta)
    meta["clients"] = {tflite_metadata.MEDIAPIPE: support}
    data = embed_metadata(name_io(data, spec.input_name, spec.output_name), meta)
    data, report = tflite_metadata.write_segmenter_metadata(data, request)
    _check_written(data, meta, report, request)
    atomic.write_bytes(out_path, data)
    if support != tflite_metadata.SUPPORTED:
        print(f"note: {Path(out_path).name}: MediaPipe Tasks ImageSegmenter cannot take this file: "
              f"{support.removeprefix('unsupported: ')}", file=sys.stderr)
    return meta


def _check_written(data: bytes, meta: dict, report: dict, request: dict) -> None:
    """The writer wrote the normalization and label file asked for, and the file it
    returned still loads in LiteRT with the same I/O, names its tensors and carries our
    metadata unchanged (ConversionError otherwise)."""
    import tempfile

    from ai_edge_litert.interpreter import Interpreter

    from ..runners.tflite import read_embedded_metadata
    from .tflite_metadata import LABELS_FILE

    try:
        tensor = report["metadata"]["subgraph_metadata"][0]["input_tensor_metadata"][0]
        norm = tensor["process_units"][0]["options"]
        wrote = ([float(v) for v in norm["mean"]], [float(v) for v in norm["std"]])
    except (KeyError, IndexError, TypeError) as e:
        raise ConversionError(f"The standard metadata has no input normalization ({type(e).__name__}: {e}).") from e
    if wrote != (request["input"]["mean"], request["input"]["std"]):
        raise ConversionError(f"The metadata writer wrote normalization {wrote}, not "
                              f"{(request['input']['mean'], request['input']['std'])}.")
    if LABELS_FILE not in _packed_files(data):
        raise ConversionError(f"The metadata writer did not pack {LABELS_FILE} into the file.")

    with tempfile.TemporaryDirectory(prefix="edgematting-tflite-") as d:
        p = Path(d) / "check.tflite"
        p.write_bytes(data)
        try:
            embedded = read_embedded_metadata(p)
        except InputError as e:
            raise ConversionError(f"After the standard metadata was written, our metadata is unreadable: {e}") from e
    if embedded != json.loads(json.dumps(meta)):
        raise ConversionError("After the standard metadata was written, the embedded edgematting metadata "
                              "differs from what was embedded.")
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    names = (inp["name"], out["name"])
    if names != (meta["input"]["name"], meta["output"]["name"]):
        raise ConversionError(f"The written file's tensors are named {names}, not "
                              f"{(meta['input']['name'], meta['output']['name'])}.")
    if np.dtype(inp["dtype"]).name != meta["input"]["dtype"] or np.dtype(out["dtype"]).name != meta["output"]["dtype"]:
        raise ConversionError("The written file's I/O dtypes differ from the converted model's.")
    if SIGNATURE_KEY not in it.get_signature_list():
        raise ConversionError(f"The written file has no '{SIGNATURE_KEY}' signature.")
