"""Core ML: a Keras model -> ML program (``.mlpackage``), with coremltools.

    convert(model, spec, config, out_path) -> dict   (the metadata that was embedded)

What the options do (``ExportConfig``):

* ``coreml.deployment_target`` "iOS15".."iOS18": the minimum deployment target (ML programs need
  iOS15). Compressed weights (``precision="int8"`` or ``coreml.palettize``) are stored
  with ``constexpr_*`` ops that exist from iOS16 on, so for those the program is built
  for ``max(deployment_target, iOS16)`` -- coremltools would otherwise bump it on its own --
  and the effective target is logged and recorded (``metadata["coreml"]``).
* ``precision``: "fp32" -> ``compute_precision=FLOAT32``; "fp16" -> FLOAT16; "int8" ->
  8-bit linear symmetric per-channel weight quantization
  (``coremltools.optimize.coreml.linear_quantize_weights``) with fp16 compute.
* ``coreml.palettize`` 2/4/6/8: k-means palettization of the weights
  (``palettize_weights``, ``OpPalettizerConfig(nbits, mode="kmeans")``; k-means needs
  scikit-learn). ``coreml.palettize_mode`` "uniform" uses coremltools' uniform LUT
  instead. Not combined with "int8". ``coreml.weight_threshold`` sets the smallest weight
  (elements) that is compressed (coremltools' default: 2048).
* ``input_type`` "uint8" -> ``ct.ImageType`` RGB input named "image": iOS code passes a
  ``CVPixelBuffer`` directly; the training normalization is the image's scale/bias
  (``scale = 1/std``, ``bias = -mean/std``; Core ML has one scale for all channels, so
  a per-channel std is folded into the graph instead). "float" -> float32
  ``ct.TensorType`` (1, H, W, 3), normalized as model.json says.
* ``coreml.alpha_image`` -> the output "alpha" is a GRAYSCALE ``ct.ImageType``
  (8-bit, 0..255: the graph multiplies alpha by 255 and lays it out (1, 1, H, W)).
  coremltools allows 8-bit grayscale image outputs for every ML program target; only
  GRAYSCALE_FLOAT16 needs iOS16 (not used).
* For Apple's Vision (``VNCoreMLRequest`` feeding camera frames) and Xcode's preview, export
  ``--input uint8 --alpha-image``: an RGB ``ImageType`` input with the contract's scale/bias
  and an 8-bit grayscale image output; image-input models carry the ``imageSegmenter``
  preview metadata. A raised deployment target is recorded (``metadata["coreml"]``) and
  printed by ``convert``.
* Float inputs/outputs stay float32 on every target (coremltools would make them fp16
  for iOS16+ fp16 programs); the metadata's dtypes say so.

Metadata (``edgematting.contract.artifact_metadata``) is embedded as ``user_defined_metadata[formats.METADATA_KEY]`` (JSON) plus
flat ``edgematting.*`` keys, and read back with `runners.coreml.read_embedded_metadata`.

The package is written atomically: built in a temporary directory beside ``out_path``
and renamed into place; nothing partial is left behind on any error or interrupt.
"""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import ConversionError, DependencyError, InputError, UnsupportedError
from ..formats import COREML_TARGETS, METADATA_KEY, parse_coreml_target
from ..prior import PriorChannelError, is_prior_spec, model_channels

log = logging.getLogger("edgematting.converters.coreml")

#: first target with constexpr (compressed-weight) ops.
COMPRESSION_MIN_TARGET = "iOS16"


def _coremltools():
    try:
        import coremltools as ct
    except ImportError as e:  # pragma: no cover - coremltools is a dependency
        raise DependencyError("Core ML export needs coremltools: pip install coremltools==9.0") from e
    return ct


def _ct_target(ct, name: str):
    return getattr(ct.target, name)


def effective_target(config) -> str:
    requested = parse_coreml_target(config.coreml.deployment_target)
    compressed = config.precision == "int8" or bool(config.coreml.palettize)
    if compressed and COREML_TARGETS.index(requested) < COREML_TARGETS.index(COMPRESSION_MIN_TARGET):
        return COMPRESSION_MIN_TARGET
    return requested


def filename_parts(config) -> list[str]:
    """What tells this config's file apart from the default file of the same precision."""
    return [f"pal{config.coreml.palettize}"] if config.coreml.palettize else []


def check_config(config) -> None:
    """Combination checks, before any work (UnsupportedError / InputError)."""
    if config.coreml.palettize and config.precision == "int8":
        raise UnsupportedError(
            "Palettization and int8 linear quantization are alternatives for Core ML weights: "
            "use --precision fp16 (or fp32) with --palettize, or --precision int8 alone."
        )


def _image_scale_bias(spec):
    """(scale, bias list, per-channel std?) for ct.ImageType from model.json."""
    mean = [float(m) for m in spec.mean]
    std = [float(s) for s in spec.std]
    if len(set(std)) == 1:
        return 1.0 / std[0], [-m / std[0] for m in mean], False
    return 1.0, [0.0, 0.0, 0.0], True


def _wrap(model, spec, config, fold_normalization: bool):
    """The Keras graph that is converted: the model, plus (only when asked) the
    per-channel normalization an ImageType cannot express and the alpha-image tail."""
    if not fold_normalization and not config.coreml.alpha_image:
        return model
    import numpy as np

    from .._tf import keras

    k = keras()
    L = k.layers
    h, w = spec.input_size
    inp = L.Input(shape=(h, w, model_channels(spec)), dtype="float32", name=spec.input_name)
    x = inp
    if fold_normalization:
        std = np.asarray(spec.std, np.float32)
        mean = np.asarray(spec.mean, np.float32)
        x = L.Rescaling(scale=1.0 / std, offset=-mean / std, name="normalize")(x)
    y = model(x)
    if config.coreml.alpha_image:
        y = L.Rescaling(255.0, name="alpha_to_255")(y)
        y = L.Permute((3, 1, 2), name="alpha_nchw")(y)  # (1, 1, H, W): Core ML image layout
    return k.Model(inp, y, name=f"{model.name}_coreml")


def _metadata(spec, config, out_path: Path) -> dict[str, Any]:
    from ..contract import artifact_metadata

    return json.loads(json.dumps(artifact_metadata(spec, config, out_path.name)))  # surely JSON


def _flat_metadata(md: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key in ("format", "format_version", "model_name", "model_version", "architecture", "target",
                "precision", "edgematting_version", "created"):
        if key in md:
            out[f"{METADATA_KEY}.{key}"] = str(md[key])
    inp, outp = md.get("input", {}), md.get("output", {})
    for key in ("name", "height", "width", "channels", "channel_order", "layout", "dtype",
                "normalization_in_model"):
        if key in inp:
            out[f"{METADATA_KEY}.input.{key}"] = str(inp[key])
    for key in ("mean", "std", "prior"):
        if key in inp:
            out[f"{METADATA_KEY}.input.{key}"] = json.dumps(inp[key])
    for key in ("name", "meaning", "dtype", "threshold"):
        if key in outp:
            out[f"{METADATA_KEY}.output.{key}"] = str(outp[key])
    if "range" in outp:
        out[f"{METADATA_KEY}.output.range"] = json.dumps(outp["range"])
    return out


def _compress(ct, mlmodel, config):
    import coremltools.optimize.coreml as cto

    threshold = config.coreml.weight_threshold
    kw = {} if threshold is None else {"weight_threshold": int(threshold)}
    if config.precision == "int8":
        op_cfg = cto.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8", **kw)
        return cto.linear_quantize_weights(mlmodel, config=cto.OptimizationConfig(global_config=op_cfg)), (
            "int8 linear symmetric, per channel"
        )
    if config.coreml.palettize:
        mode = config.coreml.palettize_mode
        if mode == "kmeans":
            try:
                import sklearn  # noqa: F401
            except ImportError as e:
                raise DependencyError(
                    "k-means palettization (--palettize) needs scikit-learn: pip install scikit-learn"
                ) from e
        op_cfg = cto.OpPalettizerConfig(nbits=int(config.coreml.palettize), mode=mode, **kw)
        return cto.palettize_weights(mlmodel, config=cto.OptimizationConfig(global_config=op_cfg)), (
            f"{int(config.coreml.palettize)}-bit palettization ({mode})"
        )
    return mlmodel, None


def _save_atomic(mlmodel, out_path: Path) -> None:
    from .. import atomic

    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.", suffix=".part", dir=out_path.parent))
    try:
        staged = tmp_dir / out_path.name
        mlmodel.save(str(staged))
        if not (staged / "Manifest.json").exists():
            raise ConversionError(f"coremltools did not write a complete package at {staged}")
        atomic.publish_dir(staged, out_path)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def convert(model, spec, config, out_path) -> dict[str, Any]:
    """Convert `model` (tf-keras, NHWC float input) to an ML program at `out_path`."""
    from ..models.registry import OUTPUT_MEANINGS

    check_config(config)
    ct = _coremltools()
    import numpy as np

    out_path = Path(out_path)
    if out_path.suffix != ".mlpackage":
        raise InputError(f"A Core ML ML program is a .mlpackage; got output path {out_path}.")
    requested = parse_coreml_target(config.coreml.deployment_target)
    target = effective_target(config)
    if target != requested:
        log.info(  # `convert` prints it as a note; the sidecar records both
            "Core ML: compressed weights need %s or later; building for %s instead of the requested %s.",
            COMPRESSION_MIN_TARGET, target, requested,
        )
    h, w = spec.input_size
    image_in = config.input_type == "uint8"
    if image_in and is_prior_spec(spec):
        raise PriorChannelError(
            "A Core ML ImageType input is an RGB image: it cannot carry a prior-frame model's 4th channel "
            "(the previous frame's alpha). Convert it with --input float (a (1, H, W, 4) multiarray).")
    scale, bias, fold = _image_scale_bias(spec) if image_in else (None, None, False)
    graph = _wrap(model, spec, config, fold_normalization=fold)
    if image_in:
        inputs = [ct.ImageType(name=spec.input_name, shape=(1, h, w, 3), scale=scale, bias=bias,
                               color_layout=ct.colorlayout.RGB)]
    else:
        inputs = [ct.TensorType(name=spec.input_name, shape=(1, h, w, model_channels(spec)), dtype=np.float32)]
    if config.coreml.alpha_image:
        outputs = [ct.ImageType(color_layout=ct.colorlayout.GRAYSCALE)]
    else:
        outputs = [ct.TensorType(dtype=np.float32)]
    compute = ct.precision.FLOAT32 if config.precision == "fp32" else ct.precision.FLOAT16

    try:
        mlmodel = ct.convert(
            graph,
            source="tensorflow",
            convert_to="mlprogram",
            minimum_deployment_target=_ct_target(ct, target),
            inputs=inputs,
            outputs=outputs,
            compute_precision=compute,
            skip_model_load=True,
        )
    except (ValueError, TypeError, NotImplementedError, RuntimeError, AssertionError) as e:
        raise ConversionError(f"coremltools could not convert the model: {e}") from e

    # Name the output as model.json says ("alpha"); the TF graph calls it "Identity".
    mspec = mlmodel.get_spec()
    old_name = mspec.description.output[0].name
    if old_name != spec.output_name:
        ct.utils.rename_feature(mspec, old_name, spec.output_name)
        mlmodel = ct.models.MLModel(mspec, weights_dir=mlmodel.weights_dir, skip_model_load=True)

    mlmodel, compression = _compress(ct, mlmodel, config)

    md = _metadata(spec, config, out_path)
    if config.coreml.alpha_image:
        md["output"]["dtype"] = "uint8"
        md["output"]["quantization"] = {"scale": 1.0 / 255.0, "zero_point": 0}
    if not image_in:
        md["input"]["dtype"] = "float32"
    md["output"].setdefault("dtype", "float32")
    md["coreml"] = {
        "model_type": "mlprogram",
        "deployment_target": target,
        "requested_target": requested,
        "specification_version": int(mlmodel.get_spec().specificationVersion),
        "compute_precision": "fp32" if config.precision == "fp32" else "fp16",
        "weight_compression": compression,
        "input": (
            {"type": "image", "color_layout": "RGB", "scale": scale, "bias": bias,
             "normalization_folded_in_graph": fold}
            if image_in else {"type": "multiarray", "shape": [1, h, w, 3], "dtype": "float32"}
        ),
        "output": (
            {"type": "image", "color_layout": "GRAYSCALE", "shape": [1, 1, h, w], "values": "alpha*255"}
            if config.coreml.alpha_image else {"type": "multiarray", "shape": [1, h, w, 1], "dtype": "float32"}
        ),
    }

    mlmodel.author = config.author or "edgematting"
    mlmodel.license = config.license or ""
    mlmodel.short_description = (
        f"{spec.name} ({spec.architecture}) v{spec.version}: portrait "
        f"{OUTPUT_MEANINGS.get(spec.output_meaning, 'matting')}, "
        f"{h}x{w}, {config.precision}" + (f", {compression}" if compression else "")
    )
    mlmodel.version = str(spec.version)
    mean, std = list(spec.mean), list(spec.std)
    if image_in:
        mlmodel.input_description[spec.input_name] = (
            f"RGB image {w}x{h} (pixel buffer); normalized in the model as (pixel - {mean}) / {std}"
        )
    else:
        mlmodel.input_description[spec.input_name] = (
            f"float32 (1, {h}, {w}, 3) NHWC RGB, normalized: (pixel - {mean}) / {std}"
        )
    meaning = spec.output_meaning.replace("_", " ")
    mlmodel.output_description[spec.output_name] = (
        f"grayscale image {w}x{h}: {meaning} x 255" if config.coreml.alpha_image
        else f"float32 (1, {h}, {w}, 1): {meaning} in [0, 1]"
    )
    if image_in:  # Xcode previews a segmentation model that takes an image (coremltools' preview types)
        mlmodel.user_defined_metadata["com.apple.coreml.model.preview.type"] = "imageSegmenter"
        mlmodel.user_defined_metadata["com.apple.coreml.model.preview.params"] = json.dumps(
            {"labels": ["background", "person"], "colors": ["#00000000", "#00FF00FF"]})
    mlmodel.user_defined_metadata[METADATA_KEY] = json.dumps(md, sort_keys=False)
    for k, v in _flat_metadata(md).items():
        mlmodel.user_defined_metadata[k] = v

    _save_atomic(mlmodel, out_path)
    return md


def read_model_description(path) -> dict[str, Any]:
    """Author, licence, descriptions, I/O types and all user-defined metadata of a package."""
    ct = _coremltools()
    spec = ct.utils.load_spec(str(Path(path)))
    d = spec.description
    return {
        "author": d.metadata.author,
        "license": d.metadata.license,
        "short_description": d.metadata.shortDescription,
        "version": d.metadata.versionString,
        "user_defined": dict(d.metadata.userDefined),
        "inputs": {i.name: {"description": i.shortDescription, "type": i.type.WhichOneof("Type")} for i in d.input},
        "outputs": {o.name: {"description": o.shortDescription, "type": o.type.WhichOneof("Type")} for o in d.output},
        "specification_version": int(spec.specificationVersion),
    }
