"""LiteRT (ai-edge-litert) runner for .tflite artifacts.

The artifact contract (input mapping, quantization, output dequantization) comes from the
metadata embedded in the flatbuffer, and is checked against the interpreter's own tensor
details when the runner is built: a file whose input/output dtype or quantization differs
from its metadata is refused (MetadataError) instead of giving a wrong matte. Models have
a static batch of 1, so batches are run one sample at a time.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..contract import MetadataError
from ..errors import InputError
from ..formats import METADATA_KEY
from .base import Runner


def _s(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else v


def read_embedded_metadata(path) -> dict:
    """The "edgematting" JSON embedded in a .tflite file (InputError if absent)."""
    from tensorflow.lite.python import schema_py_generated as schema_fb

    p = Path(path)
    if not p.is_file():
        raise InputError(f"TFLite file not found: {p}")
    buf = bytearray(p.read_bytes())
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise InputError(f"{p} is not a TFLite flatbuffer (no TFL3 identifier); the file is damaged "
                         "or of another format. Convert it again with `edgematting convert`.")
    try:
        m = schema_fb.Model.GetRootAsModel(buf, 0)
        for i in range(m.MetadataLength()):
            md = m.Metadata(i)
            if _s(md.Name()) == METADATA_KEY:
                raw = m.Buffers(md.Buffer()).DataAsNumpy()
                return json.loads(bytes(np.asarray(raw, np.uint8)).decode())
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is a damaged TFLite file ({type(e).__name__}: {e}).") from e
    raise InputError(f"{p} has no '{METADATA_KEY}' metadata; was it written by edgematting?")


def check_tensor(detail: dict, c: dict, side: str) -> None:
    """MetadataError unless the interpreter's tensor `detail` has the dtype and
    quantization that the contract `c` gives for `side` ("input" | "output")."""
    dtype = np.dtype(detail["dtype"]).name
    want = c["dtype"] if side == "input" else c["output_dtype"]
    if dtype != want:
        raise MetadataError(f"{side}.dtype", f"says {want} but the model's {side} tensor is {dtype}")
    scale, zp = detail["quantization"]
    q = c["input_quant"] if side == "input" else c["output_quant"]
    if q is None:
        if scale and dtype != "float32" and not (side == "input" and c["normalization_in_model"]
                                                 and abs(scale - 1.0) < 1e-6 and zp == 0):
            raise MetadataError(f"{side}.quantization", f"is missing but the model's {side} tensor has "
                                f"scale {scale:g}, zero point {zp}")
        return
    if not scale or abs(float(q[0]) - scale) > 1e-6 * max(1.0, scale) or int(q[1]) != int(zp):
        raise MetadataError(f"{side}.quantization", f"says scale {float(q[0]):g}, zero point {q[1]} but the "
                            f"model's {side} tensor has scale {scale:g}, zero point {zp}")


class TFLiteRunner(Runner):
    def __init__(self, path, num_threads: int = 1, metadata: dict | None = None):
        from importlib.metadata import version

        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"TFLite file not found: {self.path}")
        self.metadata = metadata if metadata is not None else read_embedded_metadata(self.path)
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=int(num_threads))
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as e:
            raise InputError(f"LiteRT cannot load {self.path}: {str(e).strip()[:300]}") from e
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        check_tensor(self.input, self.contract, "input")
        check_tensor(self.output, self.contract, "output")
        c = self.contract
        want = [(1, c["height"], c["width"], c["channels"]), (1, c["height"], c["width"], 1)]
        for side, detail, shape in (("input", self.input, want[0]), ("output", self.output, want[1])):
            have = tuple(int(v) for v in detail["shape"])
            if c["layout"] == "NHWC" and len(have) == 4 and have != shape:
                raise MetadataError(f"{side}.height", f"says {shape[1]}x{shape[2]}x{shape[3]} but the model's {side} "
                                    f"tensor is {have[1]}x{have[2]}x{have[3]}")
        self.engine = f"ai-edge-litert {version('ai-edge-litert')} (CPU, {int(num_threads)} thread(s))"

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        """One native input (1, H, W, C) of the artifact's dtype -> raw output tensor."""
        it = self.interpreter
        it.set_tensor(self.input["index"], np.ascontiguousarray(x))
        it.invoke()
        return it.get_tensor(self.output["index"])


def describe(path) -> dict:
    """What a client sees in the file: tensors, signatures, the metadata entries present."""
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.python import schema_py_generated as schema_fb

    p = Path(path)
    buf = bytearray(p.read_bytes())
    if len(buf) < 8 or bytes(buf[4:8]) != b"TFL3":
        raise InputError(f"{p} is not a TFLite flatbuffer (no TFL3 identifier); the file is damaged or of another "
                         "format.")
    try:
        m = schema_fb.Model.GetRootAsModel(buf, 0)
        names = [_s(m.Metadata(i).Name()) for i in range(m.MetadataLength())]
    except (struct.error, IndexError, ValueError, UnicodeDecodeError) as e:
        raise InputError(f"{p} is a damaged TFLite file ({type(e).__name__}: {e}).") from e
    try:
        it = Interpreter(model_path=str(p))
    except (RuntimeError, ValueError) as e:
        raise InputError(f"LiteRT cannot load {p}: {str(e).strip()[:300]}") from e

    def tensor(d):
        scale, zp = d["quantization"]
        return {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "quantization": {"scale": float(scale), "zero_point": int(zp)} if scale else None}

    return {"inputs": [tensor(d) for d in it.get_input_details()],
            "outputs": [tensor(d) for d in it.get_output_details()],
            "signatures": sorted(it.get_signature_list()),
            "metadata_entries": names,
            "standard_metadata": "TFLITE_METADATA" in names}
