"""ONNX converter: tf2onnx, then optional fp16 or onnxruntime int8 quantization.

============  ================================================================
fp32          tf2onnx.convert.from_keras (opset `config.onnx.opset`, default 17)
fp16          onnxruntime.transformers.float16.convert_float_to_float16,
              keep_io_types=True (I/O stays float32; onnxconverter_common is not
              a dependency, the same converter ships with onnxruntime)
dynamic       weight-only int8: per-channel symmetric int8 weights dequantized in the
              graph (DequantizeLinear), float32 activations (`_weight_only_int8`
              says why not onnxruntime's quantize_dynamic)
int8          onnxruntime.quantization.quantize_static, QDQ, int8 activations and
              per-channel 7-bit weights (reduce_range: exact on x86 CPUs without
              VNNI, where 8-bit weights saturate), MinMax calibration on the same
              `calibration_images` as TFLite
============  ================================================================

Options (`config.onnx`): NCHW input (`nchw`, tf2onnx ``inputs_as_nchw``), dynamic batch
axis (`dynamic_batch`; else batch 1). uint8 and 4-channel inputs use the shared Keras
wrapper (`wrappers.wrap_model`). Metadata: ``metadata_props[formats.METADATA_KEY]`` = JSON. The
result passes ``onnx.checker.check_model``. Intermediate files live in a temporary
directory outside the output folder; the artifact is written atomically.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path


from .. import atomic
from ..errors import ConversionError, InputError
from ..contract import artifact_metadata, encode_pixels
from ..formats import METADATA_KEY
from .base import ExportConfig



def filename_parts(config: ExportConfig) -> list[str]:
    """What tells this config's file apart from the default file of the same precision."""
    return ["nchw"] if config.onnx.nchw else []


def check_config(config: ExportConfig) -> None:
    """Combination checks, before any work: the option dataclass checks everything here."""


def _to_onnx(model, spec, config: ExportConfig):
    import tf2onnx

    from edgematting._tf import tf as _tf

    from .wrappers import wrap_model

    tf = _tf()
    km = wrap_model(model, spec, config.input_type, config.channels, pixels_dtype="uint8")
    h, w = spec.input_size
    dtype = tf.uint8 if config.input_type == "uint8" else tf.float32
    batch = None if config.onnx.dynamic_batch else 1
    sig = (tf.TensorSpec((batch, h, w, int(km.input_shape[-1])), dtype, name=spec.input_name),)
    try:
        proto, _ = tf2onnx.convert.from_keras(
            km, input_signature=sig, opset=int(config.onnx.opset),
            inputs_as_nchw=[spec.input_name] if config.onnx.nchw else None,
        )
    except KeyboardInterrupt:
        raise
    except Exception as e:
        raise ConversionError(f"tf2onnx failed: {str(e).strip()[:2000]}") from e
    _rename_io(proto, spec)
    _fix_resize_scales(proto)
    return proto


def _fix_resize_scales(proto) -> None:
    """Make every constant Resize scale produce the size TensorFlow produced.

    For a non-integer factor (e.g. 3 -> 10 pixels, at input sizes that are multiples of 16
    but not of 32) tf2onnx writes the scale as float32(10/3); onnxruntime computes
    floor(3 * 3.3333333) = 9 and the graph fails to load. The scale is nudged up by ULPs
    until floor(size * scale) reaches the intended size, which changes no sampling position
    beyond float rounding.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper

    inferred = onnx.shape_inference.infer_shapes(proto)
    shapes = {}
    for v in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = v.type.tensor_type.shape.dim
        shapes[v.name] = [d.dim_value if d.HasField("dim_value") else 0 for d in dims]
    inits = {i.name: i for i in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type != "Resize" or len(node.input) < 3 or node.input[2] not in inits:
            continue
        in_shape = shapes.get(node.input[0])
        sc = numpy_helper.to_array(inits[node.input[2]]).astype(np.float32).copy()
        if not in_shape or sc.size != len(in_shape):
            continue
        changed = False
        for ax in range(len(in_shape)):
            size = in_shape[ax]
            if size <= 0 or sc[ax] == 1.0:
                continue
            target = int(round(size * float(sc[ax])))  # not the inferred shape: it used the bad scale
            s = sc[ax]
            while np.floor(np.float64(size) * np.float64(s)) < target:
                s = np.nextafter(s, np.float32(np.inf), dtype=np.float32)
                changed = True
            sc[ax] = s
        if changed:
            inits[node.input[2]].CopyFrom(numpy_helper.from_array(sc, node.input[2]))


def _rename_io(proto, spec):
    """Name the graph's input/output `spec.input_name`/`spec.output_name` (tf2onnx may
    append ':0' or use the Keras layer name)."""
    g = proto.graph
    ren = {}
    if len(g.input) == 1 and g.input[0].name != spec.input_name:
        ren[g.input[0].name] = spec.input_name
    if len(g.output) == 1 and g.output[0].name != spec.output_name:
        ren[g.output[0].name] = spec.output_name
    if not ren:
        return
    for vi in list(g.input) + list(g.output):
        vi.name = ren.get(vi.name, vi.name)
    for node in g.node:
        for i, n in enumerate(node.input):
            if n in ren:
                node.input[i] = ren[n]
        for i, n in enumerate(node.output):
            if n in ren:
                node.output[i] = ren[n]


class _Reader:
    """onnxruntime CalibrationDataReader over the shared calibration images."""

    def __init__(self, spec, config: ExportConfig, input_name: str):
        from edgematting.calibration import calibration_images, calibration_priors

        px = calibration_images(spec, config.calib, config.calib_samples)
        # the fp32 graph's own input: pixels (uint8) or normalized float (+ a prior-frame
        # model's simulated priors), in its layout
        x = encode_pixels(px, artifact_metadata(spec, config, "calibration"),
                          prior=calibration_priors(spec, len(px)))
        self._items = iter([{input_name: x[i : i + 1]} for i in range(len(x))])

    def get_next(self):
        return next(self._items, None)

    def rewind(self):  # pragma: no cover - not used by MinMax
        pass


def _quantize(proto, spec, config: ExportConfig, tmp: Path):
    import onnx

    src = tmp / "fp32.onnx"
    onnx.save(proto, str(src))
    pre = tmp / "pre.onnx"
    dst = tmp / "q.onnx"
    with _quiet_root_logger():
        return _quantize_files(src, pre, dst, proto, spec, config)


@contextlib.contextmanager
def _quiet_root_logger():
    """onnxruntime's quantizer logs per-tensor notes on the root logger ("Axis 1 is
    out-of-range for weight ... with rank 1" for every BatchNorm vector): they would bury
    the result. Kept with `edgematting --verbose`."""
    root = logging.getLogger()
    old = root.level
    if os.environ.get("EDGEMATTING_VERBOSE") != "1":
        root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(old)


def _quantize_files(src: Path, pre: Path, dst: Path, proto, spec, config: ExportConfig):
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
    except Exception:  # pre-processing is an optimisation; quantize the raw graph if it fails
        pre = src
    try:
        if config.precision == "dynamic":
            return _weight_only_int8(onnx.load(str(pre)))
        else:
            reader = _Reader(spec, config, proto.graph.input[0].name)
            quantize_static(
                str(pre), str(dst), reader,
                quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
                per_channel=True,
                # 7-bit weights: on x86 CPUs without VNNI (AVX2, AVX-512 before VNNI)
                # onnxruntime multiplies u8 x s8 pairs with saturating 16-bit sums, and full
                # 8-bit weights overflow them. Measured on an AMD EPYC (AVX2) on a trained
                # tiny Fast-SCNN: mean error 0.0225, IoU 0.966 with 8-bit weights; 0.0088,
                # 0.992 with 7-bit. On MattingNet the 7-bit weights cost 0.0004.
                reduce_range=True,
                calibrate_method=CalibrationMethod.MinMax,
            )
    except (KeyboardInterrupt, InputError):
        raise
    except Exception as e:
        raise ConversionError(f"onnxruntime {config.precision} quantization failed: {e}") from e
    return onnx.load(str(dst))


def _weight_only_int8(proto):
    """int8 weights, float compute: every Conv/ConvTranspose/Gemm/MatMul weight initializer
    becomes per-output-channel symmetric int8 (scale = max|w| / 127) feeding a
    DequantizeLinear node; activations stay float32.

    Why not onnxruntime's `quantize_dynamic`: it also quantizes every activation to uint8,
    per tensor, with a range taken per call, and that is coarse for a CNN (measured on two
    trained tiny Fast-SCNNs: mean error 0.035 and 0.074, mask IoU 0.945 and 0.910; TFLite's
    dynamic range mode 0.002). Weight-only int8 gives the same 4x smaller weights at
    near-float accuracy, like TFLite `dynamic`.
    """
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    consumers: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            consumers[name] = consumers.get(name, 0) + 1
    new_nodes, quantized = [], 0
    for node in graph.node:
        w_index = 1 if node.op_type in ("Conv", "ConvTranspose", "MatMul", "Gemm") else None
        name = node.input[w_index] if w_index is not None and len(node.input) > w_index else None
        init = inits.get(name) if name else None
        if init is None or consumers.get(name, 0) != 1 or init.data_type != onnx.TensorProto.FLOAT:
            new_nodes.append(node)
            continue
        w = numpy_helper.to_array(init).astype(np.float32)
        if w.ndim < 2 or w.size < 16:
            new_nodes.append(node)
            continue
        # the output-channel axis: 0 for Conv (O, I, kh, kw); 1 for ConvTranspose (I, O, ...)
        # and for MatMul/Gemm weights (K, N) (Gemm with transB: 0)
        axis = 0
        if node.op_type in ("ConvTranspose", "MatMul"):
            axis = 1
        elif node.op_type == "Gemm":
            axis = 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
        other = tuple(i for i in range(w.ndim) if i != axis)
        scale = (np.abs(w).max(axis=other) / np.float32(127.0)).astype(np.float32)
        scale[scale == 0] = np.float32(1.0)
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(init)
        graph.initializer.extend([
            numpy_helper.from_array(q, name + "_int8"),
            numpy_helper.from_array(scale, name + "_scale"),
            numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "_zero_point"),
        ])
        new_nodes.append(helper.make_node("DequantizeLinear", [name + "_int8", name + "_scale", name + "_zero_point"],
                                          [name], name=name + "_dequantize", axis=axis))
        new_nodes.append(node)
        quantized += 1
    if not quantized:
        raise ConversionError("no float weight to quantize in the ONNX graph")
    del graph.node[:]
    graph.node.extend(new_nodes)
    return proto


def convert_proto(model, spec, config: ExportConfig):
    """Keras model -> ONNX ModelProto at `config.precision` (no metadata yet)."""
    proto = _to_onnx(model, spec, config)
    if config.precision == "fp32":
        return proto
    if config.precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        try:
            half = convert_float_to_float16(proto, keep_io_types=True)
        except Exception as e:
            raise ConversionError(f"fp16 conversion failed: {e}") from e
        _toposort(half.graph)  # the I/O casts are appended at the end of the node list
        return half
    if config.precision in ("dynamic", "int8"):
        with tempfile.TemporaryDirectory(prefix="edgematting-onnx-") as d:
            return _quantize(proto, spec, config, Path(d))
    raise ConversionError(f"ONNX has no '{config.precision}' path")  # REGISTRY prevents this


def _toposort(graph) -> None:
    """Reorder graph.node topologically in place (ONNX requires it; the fp16 converter
    appends its input casts after the nodes that read them)."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    available.add("")
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(n in available for n in node.input):
                ordered.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ConversionError(
                "fp16 graph has a cycle or a dangling input: "
                + ", ".join(f"{n.name}<-{list(n.input)}" for n in rest[:3]))
        pending = rest
    nodes = [type(n)() for n in ordered]
    for dst, src in zip(nodes, ordered):
        dst.CopyFrom(src)
    del graph.node[:]
    graph.node.extend(nodes)


def _io_dtype(proto, value_info) -> str:
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(value_info.type.tensor_type.elem_type).name


#: The name a dynamic batch dimension gets (tf2onnx calls it e.g. "unk__497").
BATCH_DIM = "batch"


def package(proto, spec, meta: dict, author: str = "", license: str = "") -> None:
    """What a reader of the file sees, whichever quantizer touched it last: our producer
    name and version, only the opset domains its nodes use, a dynamic batch dimension
    named `BATCH_DIM`, doc strings on the model, its input and its output, and the
    contract under `formats.METADATA_KEY`."""
    from .. import __version__

    proto.producer_name, proto.producer_version = METADATA_KEY, __version__
    used = {n.domain or "" for n in proto.graph.node}
    keep = [o for o in proto.opset_import if (o.domain or "") in used | {""}]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
    g = proto.graph
    renamed = {}
    for vi in list(g.input) + list(g.output):
        d0 = vi.type.tensor_type.shape.dim[0] if vi.type.tensor_type.shape.dim else None
        if d0 is not None and not d0.HasField("dim_value"):
            if d0.dim_param and d0.dim_param != BATCH_DIM:
                renamed[d0.dim_param] = BATCH_DIM
            d0.dim_param = BATCH_DIM
    for vi in g.value_info:  # the same symbol inside the graph
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param in renamed:
                d.dim_param = renamed[d.dim_param]
    inp, out = meta["input"], meta["output"]
    pixels = ("raw RGB(A) camera bytes 0..255, normalization inside the model" if inp["normalization_in_model"]
              else f"RGB pixels normalized as (pixel - {inp['mean']}) / {inp['std']}")
    layout = "N, C, H, W" if inp["layout"] == "NCHW" else "N, H, W, C"
    g.input[0].doc_string = (f"{inp['height']}x{inp['width']} {inp['channel_order']} image ({layout}), {inp['dtype']}: "
                             f"{pixels}.")
    g.output[0].doc_string = (f"{out['meaning'].replace('_', ' ')} in {out['range']} at {out['height']}x"
                              f"{out['width']} ({'N, H, W, 1'}); threshold {out['threshold']} for a mask.")
    proto.doc_string = (f"{spec.name} ({spec.architecture}), {meta['precision']}: portrait segmentation by "
                        f"edgematting {__version__}. The contract (pre- and post-processing) is the JSON in "
                        f"metadata_props['{METADATA_KEY}'].")
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta, sort_keys=True)
    for key, value in (("author", author), ("license", license)):
        if value:
            e = proto.metadata_props.add()
            e.key, e.value = key, value


def convert(model, spec, config: ExportConfig, out_path: Path) -> dict:
    import onnx

    proto = convert_proto(model, spec, config)
    meta = artifact_metadata(
        spec, config, Path(out_path).name,
        input_dtype=_io_dtype(proto, proto.graph.input[0]),
        output_dtype=_io_dtype(proto, proto.graph.output[0]),
    )
    meta["onnx"] = {"opset": int(config.onnx.opset), "dynamic_batch": bool(config.onnx.dynamic_batch)}
    package(proto, spec, meta, author=config.author, license=config.license)
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise ConversionError(f"onnx.checker rejected the {config.precision} model: {e}") from e
    atomic.write_bytes(out_path, proto.SerializeToString())
    return meta
