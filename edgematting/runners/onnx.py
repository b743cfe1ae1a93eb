"""onnxruntime (CPU execution provider) runner for .onnx artifacts.

The artifact contract comes from the model's ``metadata_props[METADATA_KEY]`` (`edgematting.formats`) and is
checked against the session's input/output element types when the runner is built.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..formats import METADATA_KEY
from .base import Runner

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(double)": "float64",
}


class OnnxRunner(Runner):
    def __init__(self, path, threads: int = 1, num_threads: int | None = None, metadata: dict | None = None):
        import onnxruntime as ort

        from ..contract import MetadataError

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"ONNX file not found: {self.path}")
        n = int(num_threads if num_threads is not None else threads)
        so = ort.SessionOptions()
        so.intra_op_num_threads = n
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidProtobuf types
            raise InputError(f"onnxruntime cannot load {self.path}: {str(e).strip()[:300]}. Is it a damaged "
                             "file? Convert it again with `edgematting convert`.") from e
        if metadata is None:
            raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
            if raw is None:
                raise InputError(f"{self.path} has no '{METADATA_KEY}' metadata; was it written by edgematting?")
            metadata = json.loads(raw)
        self.metadata = metadata
        self.input = self.session.get_inputs()[0]
        self.output = self.session.get_outputs()[0]
        for side, tensor, want in (("input", self.input, self.contract["dtype"]),
                                   ("output", self.output, self.contract["output_dtype"])):
            have = _ORT_TYPES.get(tensor.type, tensor.type)
            if have != want:
                raise MetadataError(f"{side}.dtype", f"says {want} but the model's {side} tensor is {have}")
        shape = self.input.shape
        self.batch_one = bool(shape) and isinstance(shape[0], int) and shape[0] == 1
        self.engine = f"onnxruntime {ort.__version__} CPU ({n} thread(s))"

    def run_raw(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.output.name], {self.input.name: x})[0]


def read_embedded_metadata(path) -> dict:
    """The "edgematting" JSON in an .onnx file's metadata_props (InputError if absent)."""
    import onnx

    p = Path(path)
    if not p.is_file():
        raise InputError(f"ONNX file not found: {p}")
    m = onnx.load(str(p), load_external_data=False)
    for prop in m.metadata_props:
        if prop.key == METADATA_KEY:
            return json.loads(prop.value)
    raise InputError(f"{p} has no '{METADATA_KEY}' metadata; was it written by edgematting?")


def describe(path) -> dict:
    """What a client sees in the file: tensors (symbolic dimensions by name), producer,
    opset domains, the metadata_props keys."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def tensor(vi):
        t = vi.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim]
        return {"name": vi.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "doc": vi.doc_string}

    return {"inputs": [tensor(v) for v in m.graph.input], "outputs": [tensor(v) for v in m.graph.output],
            "producer": f"{m.producer_name} {m.producer_version}".strip(),
            "opsets": {(o.domain or "ai.onnx"): int(o.version) for o in m.opset_import},
            "metadata_entries": [p.key for p in m.metadata_props], "doc": m.doc_string}
