"""Run a Core ML ML program (``.mlpackage``).

On macOS, where coremltools' native binding (``libcoremlpython``) loads, Core ML itself
computes the output (``MLModel.predict``). Everywhere else the package's program --
the exact ops and weights on disk -- is computed by the numpy reference interpreter
(:mod:`edgematting.runners.mil_interpreter`). ``runner.engine`` says which one did.

Like every runner, ``run`` takes normalized float NHWC input and returns (N, H, W, 1)
float32 alpha, through the artifact contract (`edgematting.contract`) and ``run_raw``:

* image input (``ct.ImageType``): the normalized input is turned back into the pixels a
  camera buffer would hold, ``round_to_uint8(x * std + mean)`` (mean/std from the
  embedded metadata), and those pixels are fed -- on macOS as a PIL image, in the
  interpreter as the (1, 3, H, W) float pixel tensor that Core ML builds from a pixel
  buffer, in the channel order the ImageType declares (RGB, or BGR reversed). The image's scale/bias are ops of the program itself (coremltools puts them
  there for ML programs), so they are applied by the program, not by this runner.
* grayscale image output: Core ML writes the program's 0..255 float output into an
  8-bit buffer; the interpreter path does the same with ``round_to_uint8`` (Core ML's
  own rounding mode is not documented: a difference of 1/255 is possible), and the
  contract dequantizes it with the metadata's scale 1/255.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np

from ..errors import InputError, UnsupportedOpError
from ..formats import METADATA_KEY
from ..imageops import round_to_uint8
from .base import Runner

ENGINE_COREML = "Core ML (macOS MLModel.predict)"


def interpreter_engine_name() -> str:
    import coremltools as ct

    return f"edgematting MIL reference interpreter (numpy), coremltools {ct.__version__} program"


def coreml_native_available() -> bool:
    """True on macOS when coremltools' native Core ML binding loads."""
    if platform.system() != "Darwin":
        return False
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except Exception:  # noqa: BLE001
        return False
    return True


def _unreadable(path: Path, e: BaseException) -> InputError:
    first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
    return InputError(f"Core ML cannot load {path} ({first}): is the .mlpackage complete, with its "
                      "Data/com.apple.CoreML/weights? Copy the whole folder, or convert it again with "
                      "`edgematting convert`.")


def read_embedded_metadata(path) -> dict:
    """The edgematting metadata embedded in a saved .mlpackage (works on Linux)."""
    import coremltools as ct

    p = Path(path)
    if not p.exists():
        raise InputError(f"Core ML package not found: {p}")
    spec = ct.utils.load_spec(str(p))
    ud = dict(spec.description.metadata.userDefined)
    if METADATA_KEY not in ud:
        raise InputError(f"{p} carries no '{METADATA_KEY}' metadata (not written by edgematting?).")
    return json.loads(ud[METADATA_KEY])


class CoreMLRunner(Runner):
    """``CoreMLRunner(path, engine="auto"|"coreml"|"interpreter")``."""

    def __init__(self, path: str | os.PathLike, engine: str = "auto", **_runtime_options):
        # _runtime_options (num_threads, ...) are for other runtimes; Core ML picks its own.
        import coremltools as ct

        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"Core ML package not found: {self.path}")
        try:
            self.spec = ct.utils.load_spec(str(self.path))
        except Exception as e:  # noqa: BLE001 - coremltools raises RuntimeError/Exception for a broken package
            raise _unreadable(self.path, e) from e
        desc = self.spec.description
        if len(desc.input) != 1 or len(desc.output) != 1:
            raise InputError(f"{self.path}: expected one input and one output, found "
                             f"{len(desc.input)} and {len(desc.output)}.")
        self.input_name = desc.input[0].name
        self.output_name = desc.output[0].name
        self.image_input = desc.input[0].type.WhichOneof("Type") == "imageType"
        self.image_output = desc.output[0].type.WhichOneof("Type") == "imageType"
        # Core ML fills the program's (1, 3, H, W) pixel tensor from an RGB pixel buffer in
        # the channel order the ImageType declares; the interpreter path must do the same.
        self.bgr_input = self.image_input and (
            desc.input[0].type.imageType.colorSpace
            == ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Value("BGR"))
        ud = dict(desc.metadata.userDefined)
        self.metadata = json.loads(ud[METADATA_KEY]) if METADATA_KEY in ud else {}

        if engine == "auto":
            engine = "coreml" if coreml_native_available() else "interpreter"
        if engine == "coreml":
            self._model = ct.models.MLModel(str(self.path))
            self._interp = None
            self.engine = ENGINE_COREML
        elif engine == "interpreter":
            from .mil_interpreter import MILInterpreter

            self._model = None
            try:
                self._interp = MILInterpreter.from_mlpackage(self.path)
            except UnsupportedOpError:
                raise
            except Exception as e:  # noqa: BLE001 - missing or damaged weight files
                raise _unreadable(self.path, e) from e
            self.engine = interpreter_engine_name()
            self._prog_in = self._interp.input_names[0]
            self._prog_out = self._interp.output_names[0]
        else:
            raise InputError(f"engine must be 'auto', 'coreml' or 'interpreter', not {engine!r}")

    # -- one sample ---------------------------------------------------------------------
    def _predict_one(self, x1: np.ndarray) -> np.ndarray:
        """x1: (H, W, 3) -- uint8 pixels for image input, else float -> (H, W, 1) raw output
        (uint8 for an image output, float32 otherwise)."""
        if self._interp is None:
            from PIL import Image

            feed = Image.fromarray(np.asarray(x1, np.uint8), "RGB") if self.image_input else \
                np.asarray(x1, np.float32)[None]
            y = self._model.predict({self.input_name: feed})[self.output_name]
            if self.image_output:
                return np.asarray(y, np.uint8).reshape(x1.shape[0], x1.shape[1], 1)
            return np.asarray(y, np.float32).reshape(x1.shape[0], x1.shape[1], 1)
        if self.image_input:  # Core ML's pixel tensor: (1, 3, H, W) float pixel values
            px = np.asarray(x1, np.float32)
            feed = (px[..., ::-1] if self.bgr_input else px).transpose(2, 0, 1)[None]
        else:
            feed = np.asarray(x1, np.float32)[None]
        y = self._interp.run({self._prog_in: feed})[self._prog_out]
        y = np.asarray(y, np.float32)
        if y.ndim == 4 and y.shape[1] == 1 and y.shape[-1] != 1:  # NCHW -> NHWC
            y = y.transpose(0, 2, 3, 1)
        y = y.reshape(x1.shape[0], x1.shape[1], 1)
        return round_to_uint8(y) if self.image_output else y

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """Native input (uint8 pixels (N,H,W,3) for an image input, else normalized float)
        -> native output stacked NHWC (uint8 for an image output)."""
        x = np.asarray(x)
        if x.ndim == 3:
            x = x[None]
        if self.image_input and x.dtype != np.uint8:
            raise InputError("run_raw on an image-input Core ML model takes uint8 pixels (N, H, W, 3).")
        return np.stack([self._predict_one(xi) for xi in x])


def describe(path) -> dict:
    """What a client (Vision, Xcode) sees in the package: feature types, the specification
    version (the deployment target), author/licence/description, the user-defined keys."""
    import coremltools as ct

    p = Path(path)
    try:
        spec = ct.utils.load_spec(str(p))
    except Exception as e:  # noqa: BLE001 - coremltools raises RuntimeError/Exception for a broken package
        raise _unreadable(p, e) from e
    d = spec.description

    def feature(f):
        kind = f.type.WhichOneof("Type")
        out = {"name": f.name, "type": "image" if kind == "imageType" else "multiarray" if kind == "multiArrayType"
               else kind, "doc": f.shortDescription}
        if kind == "imageType":
            cs = ct.proto.FeatureTypes_pb2.ImageFeatureType.ColorSpace.Name(f.type.imageType.colorSpace)
            out.update(shape=[int(f.type.imageType.height), int(f.type.imageType.width)], color=cs)
        elif kind == "multiArrayType":
            out.update(shape=[int(v) for v in f.type.multiArrayType.shape],
                       dtype=ct.proto.FeatureTypes_pb2.ArrayFeatureType.ArrayDataType.Name(
                           f.type.multiArrayType.dataType).lower())
        return out

    ud = dict(d.metadata.userDefined)
    return {"inputs": [feature(f) for f in d.input], "outputs": [feature(f) for f in d.output],
            "specification_version": int(spec.specificationVersion),
            "author": d.metadata.author, "license": d.metadata.license, "description": d.metadata.shortDescription,
            "metadata_entries": sorted(k for k in ud if not k.startswith(METADATA_KEY + ".")),
            "preview": ud.get("com.apple.coreml.model.preview.type")}
