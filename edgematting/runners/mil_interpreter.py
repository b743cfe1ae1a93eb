"""A reference interpreter, in numpy, for the Core ML ML programs that edgematting produces.

Core ML itself (``MLModel.predict``) only runs on macOS. Everywhere else the converted
``.mlpackage`` is loaded back into a MIL program with its weights (coremltools'
``milproto.load``: the exact operations and constants that were written to disk, fp16
casts and compressed weights included) and this module computes its outputs, op by op,
following the MIL op specification (``coremltools/converters/mil/mil/ops/defs``).

Design
------
* The program's ``main`` function is walked in order with an environment
  ``name -> np.ndarray``. Arrays are NCHW, exactly as the program has them.
* ``const`` ops provide their stored value. Compressed weights are *decompressed here*
  from their stored parts (``constexpr_affine_dequantize``, ``constexpr_lut_to_dense``
  in its iOS16 (packed indices + ``shape``) and iOS18 (per-group LUT) forms,
  ``constexpr_blockwise_shift_scale``, ``constexpr_cast``) -- never taken from
  coremltools' own materialised value -- so a wrongly packed weight is caught.
* Every op is computed in float32 (accumulations in float32) and its result is then
  stored in the dtype the program declares for that output: a value the program types
  as fp16 is rounded to float16 (``astype(np.float16)``, round-to-nearest-even) after
  every op, so fp16 programs carry fp16 values from cast to cast, as on the device.
  Apple's fp16 kernels (GPU/Neural Engine) may accumulate in fp16 or in a different
  order, so small deviations from Core ML itself are expected; what this checks is that
  the program coremltools wrote computes the model.
* An op the interpreter does not implement is refused when the program is loaded, with
  :class:`edgematting.errors.UnsupportedOpError` naming it -- never skipped. So are
  attribute values it does not implement (e.g. ``avg_pool(ceil_mode=True)``).

Image inputs/outputs: in an ML program, ``ct.ImageType`` scale/bias become ordinary
``mul``/``add`` ops at the start of the program (checked with coremltools 9.0), and
the program's input is the (1, 3, H, W) float pixel tensor Core ML builds from the pixel
buffer; a grayscale image output is the program's (1, 1, H, W) float output, which Core
ML writes into an 8-bit buffer. :mod:`edgematting.runners.coreml` does those two
conversions; this module only runs the program.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import UnsupportedOpError

_F32 = np.float32

#: op type -> implementation; filled by the @_op decorator below.
_OPS: dict[str, Callable] = {}


def _op(*names):
    def deco(fn):
        for n in names:
            _OPS[n] = fn
        return fn

    return deco


def supported_ops() -> list[str]:
    """The op types this interpreter implements (plus ``const``)."""
    return sorted(set(_OPS) | {"const"})


# --- loading ------------------------------------------------------------------------
def weights_dir(mlpackage: str | os.PathLike) -> Path:
    return Path(mlpackage) / "Data" / "com.apple.CoreML" / "weights"


def load_program(mlpackage: str | os.PathLike):
    """Return (MIL Program, Model spec) of a saved ``.mlpackage``, weights included."""
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load

    path = Path(mlpackage)
    spec = ct.utils.load_spec(str(path))
    if spec.WhichOneof("Type") != "mlProgram":
        raise UnsupportedOpError(
            f"model type '{spec.WhichOneof('Type')}'", where=str(path) + " (only ML programs are interpreted)"
        )
    prog = load(spec, spec.specificationVersion, str(weights_dir(path)))
    return prog, spec


# --- helpers ------------------------------------------------------------------------
def _dtype_of(var):
    """numpy dtype the program declares for a Var (fp16 -> float16, ...)."""
    from coremltools.converters.mil.mil import types

    t = var.dtype
    if t is None:
        return None
    try:
        return np.dtype(types.nptype_from_builtin(t))
    except Exception:  # noqa: BLE001 - exotic types (sub-byte ints) are never op outputs here
        return None


def _store(result, out_var):
    """Round a float32 result to the declared output dtype (fp16 rounding happens here)."""
    dt = _dtype_of(out_var)
    arr = np.asarray(result)
    if dt is None or arr.dtype == dt:
        return arr
    return arr.astype(dt)


def _f32(x):
    return np.asarray(x).astype(_F32, copy=False)


def _scalar(v, default=None):
    if v is None:
        return default
    a = np.asarray(v)
    return a.item() if a.ndim == 0 else a


def _ints(v, n=None, default=1):
    if v is None:
        return [default] * n
    return [int(i) for i in np.asarray(v).reshape(-1)]


def _pads(pad_type, in_sizes, eff_kernel, strides, custom):
    """[(before, after)] per spatial dim, as MIL's pad_type defines it."""
    pad_type = str(pad_type)
    out = []
    for d, (n, k, s) in enumerate(zip(in_sizes, eff_kernel, strides)):
        if pad_type == "valid":
            out.append((0, 0))
        elif pad_type == "custom":
            out.append((int(custom[2 * d]), int(custom[2 * d + 1])))
        elif pad_type in ("same", "same_lower"):
            o = -(-n // s)
            total = max((o - 1) * s + k - n, 0)
            small = total // 2
            out.append((small, total - small) if pad_type == "same" else (total - small, small))
        else:
            raise UnsupportedOpError(f"pad_type={pad_type!r}")
    return out


def _taps(xp, kernel, strides, dilations, out_sizes):
    """Yield (tap index tuple, strided view) of padded NC+spatial input for each kernel tap."""
    import itertools

    for idx in itertools.product(*[range(k) for k in kernel]):
        sl = [slice(None), slice(None)]
        for i, s, d, o in zip(idx, strides, dilations, out_sizes):
            start = i * d
            sl.append(slice(start, start + s * (o - 1) + 1, s))
        yield idx, xp[tuple(sl)]


# --- ops ----------------------------------------------------------------------------
@_op("conv")
def _conv(op, a):
    x = _f32(a["x"])
    w = _f32(a["weight"])
    n, cin = x.shape[:2]
    spatial = x.shape[2:]
    nd = len(spatial)
    cout, cin_g = w.shape[:2]
    kernel = list(w.shape[2:])
    strides = _ints(a.get("strides"), nd)
    dil = _ints(a.get("dilations"), nd)
    groups = int(_scalar(a.get("groups"), 1))
    if cin_g * groups != cin:
        raise ValueError(f"conv {op.name}: weight {w.shape} does not fit input {x.shape} with groups={groups}")
    eff = [(k - 1) * d + 1 for k, d in zip(kernel, dil)]
    pads = _pads(_scalar(a.get("pad_type"), "valid"), spatial, eff, strides, _ints(a.get("pad"), 2 * nd, 0))
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out_sizes = [(p0 + sz + p1 - e) // s + 1 for sz, (p0, p1), e, s in zip(spatial, pads, eff, strides)]
    cout_g = cout // groups
    if cin_g == 1 and cout_g == 1:  # depthwise: one multiply-add per kernel tap
        out = np.zeros((n, cout) + tuple(out_sizes), _F32)
        for idx, view in _taps(xp, kernel, strides, dil, out_sizes):
            wt = w[(slice(None), 0) + idx].reshape((1, cout) + (1,) * nd)
            out += view * wt
    else:
        npix = int(np.prod(out_sizes))
        out = np.empty((n, cout, npix), _F32)
        for g in range(groups):
            xg = xp[:, g * cin_g:(g + 1) * cin_g]
            cols = np.stack([v.reshape(n, cin_g, npix) for _, v in _taps(xg, kernel, strides, dil, out_sizes)], axis=2)
            cols = cols.reshape(n, cin_g * int(np.prod(kernel)), npix)  # (c, tap) order = weight layout
            wg = w[g * cout_g:(g + 1) * cout_g].reshape(cout_g, -1)
            out[:, g * cout_g:(g + 1) * cout_g] = np.matmul(wg, cols)
        out = out.reshape((n, cout) + tuple(out_sizes))
    b = a.get("bias")
    if b is not None:
        out = out + _f32(b).reshape((1, cout) + (1,) * nd)
    return out


@_op("avg_pool", "max_pool")
def _pool(op, a):
    x = _f32(a["x"])
    spatial = x.shape[2:]
    nd = len(spatial)
    kernel = _ints(a["kernel_sizes"])
    strides = _ints(a.get("strides"), nd)
    if bool(_scalar(a.get("ceil_mode"), False)):
        raise UnsupportedOpError(f"{op.op_type}(ceil_mode=True)", where=op.name)
    pads = _pads(_scalar(a.get("pad_type"), "valid"), spatial, kernel, strides, _ints(a.get("pad"), 2 * nd, 0))
    out_sizes = [(p0 + sz + p1 - k) // s + 1 for sz, (p0, p1), k, s in zip(spatial, pads, kernel, strides)]
    ones = [1] * nd
    if op.op_type == "max_pool":
        xp = np.pad(x, [(0, 0), (0, 0)] + pads, constant_values=-np.inf)
        out = None
        for _, v in _taps(xp, kernel, strides, ones, out_sizes):
            out = v.copy() if out is None else np.maximum(out, v)
        return out
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    out = np.zeros(x.shape[:2] + tuple(out_sizes), _F32)
    for _, v in _taps(xp, kernel, strides, ones, out_sizes):
        out += v
    if bool(_scalar(a.get("exclude_padding_from_average"), False)) and any(p != (0, 0) for p in pads):
        mask = np.pad(np.ones((1, 1) + tuple(spatial), _F32), [(0, 0), (0, 0)] + pads)
        cnt = np.zeros((1, 1) + tuple(out_sizes), _F32)
        for _, v in _taps(mask, kernel, strides, ones, out_sizes):
            cnt += v
        return out / cnt
    return out / _F32(np.prod(kernel))


def _grid(n_in, n_out, mode):
    """Source coordinates of the n_out samples (MIL image_resizing definitions)."""
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            g = np.full(1, (n_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0)
        else:
            g = i * (n_in - 1) / (n_out - 1)
    elif mode == "DEFAULT":  # asymmetric: i * in/out
        g = i * n_in / n_out
    elif mode == "UNALIGN_CORNERS":  # half-pixel centres
        sp = n_in / n_out
        g = i * sp + 0.5 * sp - 0.5
    elif mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        g = 0.5 * delta + i * delta
    else:
        raise UnsupportedOpError(f"resize sampling_mode={mode!r}")
    return np.clip(g, 0, n_in - 1)


def _bilinear(x, out_h, out_w, mode):
    x = _f32(x)
    h, w = x.shape[-2:]
    out = x
    for axis, n_in, n_out in ((-2, h, out_h), (-1, w, out_w)):
        g = _grid(n_in, n_out, mode)
        i0 = np.floor(g).astype(np.int64)
        i1 = np.minimum(i0 + 1, n_in - 1)
        t = (g - i0).astype(_F32)
        shape = [1] * out.ndim
        shape[axis] = n_out
        t = t.reshape(shape)
        out = np.take(out, i0, axis=axis) * (_F32(1) - t) + np.take(out, i1, axis=axis) * t
    return out


@_op("upsample_bilinear")
def _upsample_bilinear(op, a):
    x = a["x"]
    sh = float(_scalar(a.get("scale_factor_height"), 1.0))
    sw = float(_scalar(a.get("scale_factor_width"), 1.0))
    align = bool(_scalar(a.get("align_corners"), True))
    half = a.get("half_pixel_centers")
    half = (not align) if half is None else bool(_scalar(half))
    oh, ow = int(np.floor(x.shape[-2] * sh)), int(np.floor(x.shape[-1] * sw))
    if align and half:
        raise UnsupportedOpError("upsample_bilinear(align_corners=True, half_pixel_centers=True)", where=op.name)
    mode = "STRICT_ALIGN_CORNERS" if align else ("UNALIGN_CORNERS" if half else "DEFAULT")
    return _bilinear(x, oh, ow, mode)


@_op("resize_bilinear")
def _resize_bilinear(op, a):
    x = a["x"]
    oh = int(_scalar(a.get("target_size_height"), 1))
    ow = int(_scalar(a.get("target_size_width"), 1))
    return _bilinear(x, oh, ow, str(_scalar(a.get("sampling_mode"), "DEFAULT")))


@_op("upsample_nearest_neighbor")
def _upsample_nn(op, a):
    x = _f32(a["x"])
    sh = float(_scalar(a.get("scale_factor_height"), 1))
    sw = float(_scalar(a.get("scale_factor_width"), 1))
    if sh != int(sh) or sw != int(sw):
        raise UnsupportedOpError("upsample_nearest_neighbor(non-integer scale)", where=op.name)
    return np.repeat(np.repeat(x, int(sh), axis=-2), int(sw), axis=-1)


@_op("concat")
def _concat(op, a):
    vals = [np.asarray(v) for v in a["values"]]
    axis = int(_scalar(a["axis"]))
    if bool(_scalar(a.get("interleave"), False)):
        ax = axis % vals[0].ndim
        st = np.stack(vals, axis=ax + 1)
        shape = list(vals[0].shape)
        shape[ax] = -1
        return st.reshape(shape)
    dt = np.result_type(*vals)
    return np.concatenate([v.astype(dt, copy=False) for v in vals], axis=axis)


def _binary(fn):
    def impl(op, a):
        x, y = np.asarray(a["x"]), np.asarray(a["y"])
        if np.issubdtype(x.dtype, np.floating) or np.issubdtype(y.dtype, np.floating):
            x, y = _f32(x), _f32(y)
        return fn(x, y)

    return impl


for _name, _fn in {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "real_div": np.divide,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
}.items():
    _OPS[_name] = _binary(_fn)


@_op("relu")
def _relu(op, a):
    return np.maximum(_f32(a["x"]), _F32(0))


@_op("relu6")
def _relu6(op, a):
    return np.clip(_f32(a["x"]), _F32(0), _F32(6))


@_op("clip")
def _clip(op, a):
    return np.clip(_f32(a["x"]), _F32(_scalar(a["alpha"])), _F32(_scalar(a["beta"])))


@_op("sigmoid")
def _sigmoid(op, a):
    x = _f32(a["x"])
    # numerically stable logistic in float32
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, _F32(1) / (_F32(1) + e), e / (_F32(1) + e)).astype(_F32)


@_op("tanh")
def _tanh(op, a):
    return np.tanh(_f32(a["x"]))


@_op("leaky_relu")
def _leaky_relu(op, a):
    x = _f32(a["x"])
    alpha = _F32(_scalar(a.get("alpha"), 0.01))
    return np.where(x >= 0, x, alpha * x)


@_op("identity")
def _identity(op, a):
    return np.asarray(a["x"])


@_op("cast")
def _cast(op, a):
    from coremltools.converters.mil.mil import types

    dt = str(_scalar(a["dtype"]))
    try:
        target = np.dtype(types.nptype_from_builtin(types.string_to_builtin(dt)))
    except Exception as e:  # noqa: BLE001
        raise UnsupportedOpError(f"cast(dtype={dt!r})", where=op.name) from e
    x = np.asarray(a["x"])
    if np.issubdtype(target, np.integer) and np.issubdtype(x.dtype, np.floating):
        x = np.trunc(x)  # MIL casts float -> int by truncation toward zero
    return x.astype(target)


@_op("transpose")
def _transpose(op, a):
    return np.transpose(np.asarray(a["x"]), _ints(a["perm"]))


@_op("reshape")
def _reshape(op, a):
    x = np.asarray(a["x"])
    shape = _ints(a["shape"])
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]  # iOS17: 0 copies the dim
    return x.reshape(shape)


@_op("squeeze")
def _squeeze(op, a):
    x = np.asarray(a["x"])
    axes = a.get("axes")
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(_ints(axes)))


@_op("expand_dims")
def _expand_dims(op, a):
    x = np.asarray(a["x"])
    for ax in sorted(_ints(a["axes"])):
        x = np.expand_dims(x, ax)
    return x


@_op("pad")
def _pad(op, a):
    x = np.asarray(a["x"])
    p = _ints(a["pad"])
    k = len(p) // 2
    pads = [(0, 0)] * (x.ndim - k) + [(p[2 * i], p[2 * i + 1]) for i in range(k)]
    mode = str(_scalar(a.get("mode"), "constant"))
    if mode == "constant":
        return np.pad(_f32(x), pads, constant_values=_F32(_scalar(a.get("constant_val"), 0.0)))
    if mode in ("reflect", "replicate"):
        return np.pad(_f32(x), pads, mode="reflect" if mode == "reflect" else "edge")
    raise UnsupportedOpError(f"pad(mode={mode!r})", where=op.name)


# --- compressed weights (constexpr ops) ----------------------------------------------
def _unpack_bits(packed, nbits, count):
    """Indices packed LSB-first into bytes (MIL constexpr_lut_to_dense, iOS16)."""
    bits = np.unpackbits(np.asarray(packed, np.uint8), bitorder="little")[: nbits * count]
    bits = bits.reshape(count, nbits).astype(np.uint32)
    return (bits << np.arange(nbits, dtype=np.uint32)).sum(axis=1)


@_op("constexpr_affine_dequantize")
def _affine_dequantize(op, a):
    q = np.asarray(a["quantized_data"]).astype(_F32)
    axis = int(_scalar(a["axis"])) % q.ndim
    shape = [1] * q.ndim
    scale, zp = _f32(a["scale"]), _f32(a["zero_point"])
    if scale.ndim == 1:
        shape[axis] = -1
        scale = scale.reshape(shape)
    if zp.ndim == 1:
        zp = zp.reshape([(-1 if i == axis else 1) for i in range(q.ndim)])
    return scale * (q - zp)


@_op("constexpr_blockwise_shift_scale")
def _blockwise_shift_scale(op, a):
    data = np.asarray(a["data"]).astype(_F32)
    scale = _f32(a["scale"])
    offset = a.get("offset")
    for ax in range(data.ndim):
        blk = data.shape[ax] // scale.shape[ax]
        if blk * scale.shape[ax] != data.shape[ax]:
            raise ValueError(f"{op.name}: scale shape {scale.shape} does not tile data {data.shape}")
        if blk > 1:
            scale = np.repeat(scale, blk, axis=ax)
            if offset is not None:
                offset = np.repeat(np.asarray(offset), blk, axis=ax)
    if offset is not None:
        data = data - _f32(offset)
    return scale * data


@_op("constexpr_lut_to_dense")
def _lut_to_dense(op, a):
    lut = np.asarray(a["lut"])
    idx = np.asarray(a["indices"])
    if "shape" in a and a["shape"] is not None:  # iOS16: 1-D LUT, indices bit-packed
        shape = _ints(a["shape"])
        nbits = int(np.log2(lut.size))
        flat = _unpack_bits(idx, nbits, int(np.prod(shape)))
        return lut[flat].reshape(shape)
    # iOS18: indices have the output shape; lut is [*groups, NUM_PALETTES, VECTOR_SIZE]
    if lut.shape[-1] != 1:
        raise UnsupportedOpError("constexpr_lut_to_dense(vector palettization)", where=op.name)
    idx = idx.astype(np.int64)
    grp = lut.shape[:-2]
    # the LUT that applies to element e is lut[e // block] along every axis
    sel = tuple(
        (np.arange(idx.shape[ax]) // (idx.shape[ax] // grp[ax])).reshape(
            [-1 if i == ax else 1 for i in range(idx.ndim)]
        )
        for ax in range(idx.ndim)
    )
    return lut[..., 0][sel + (idx,)]


@_op("constexpr_cast")
def _constexpr_cast(op, a):
    from coremltools.converters.mil.mil import types

    dt = str(_scalar(a["output_dtype"]))
    return np.asarray(a["source_val"]).astype(types.nptype_from_builtin(types.string_to_builtin(dt)))


# --- the interpreter ----------------------------------------------------------------
class MILInterpreter:
    """Run one function of a MIL program with numpy.

    ``MILInterpreter(prog)`` checks every op up front and raises UnsupportedOpError for
    the first one it does not implement; ``run({name: array})`` returns ``{name: array}``
    for the function's outputs.
    """

    def __init__(self, prog, function: str = "main", where: str = ""):
        self.prog = prog
        self.where = where or "MIL program"
        if function not in prog.functions:
            raise UnsupportedOpError(f"function '{function}'", where=self.where)
        self.func = prog.functions[function]
        self.ops = list(self.func.operations)
        for op in self.ops:
            if op.op_type != "const" and op.op_type not in _OPS:
                raise UnsupportedOpError(op.op_type, where=f"{self.where}, op '{op.name}'")
            if getattr(op, "blocks", None):
                raise UnsupportedOpError(f"{op.op_type} (nested blocks)", where=f"{self.where}, op '{op.name}'")

    @classmethod
    def from_mlpackage(cls, path: str | os.PathLike) -> "MILInterpreter":
        prog, spec = load_program(path)
        self = cls(prog, where=str(path))
        self.spec = spec
        return self

    @property
    def op_types(self) -> list[str]:
        return sorted({op.op_type for op in self.ops})

    @property
    def input_names(self) -> list[str]:
        return list(self.func.inputs)

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.func.outputs]

    def input_shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(s) for s in self.func.inputs[name].shape)

    def input_dtype(self, name: str):
        return _dtype_of(self.func.inputs[name])

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        env: dict[str, np.ndarray] = {}
        for name, var in self.func.inputs.items():
            if name not in feeds:
                raise ValueError(f"missing input '{name}' (program inputs: {self.input_names})")
            x = np.asarray(feeds[name])
            want = tuple(var.shape)
            if tuple(x.shape) != want:
                raise ValueError(f"input '{name}' has shape {x.shape}, the program takes {want}")
            env[name] = x.astype(_dtype_of(var) or x.dtype, copy=False)

        def value(v):
            if v.name in env:
                return env[v.name]
            if v.val is not None:  # pragma: no cover - every const has its own op
                return np.asarray(v.val)
            raise KeyError(f"value '{v.name}' used before it is computed")

        for op in self.ops:
            if op.op_type == "const":
                out = op.outputs[0]
                env[out.name] = np.asarray(out.val)
                continue
            args = {}
            for k, v in op.inputs.items():
                args[k] = [value(i) for i in v] if isinstance(v, (list, tuple)) else value(v)
            try:
                result = _OPS[op.op_type](op, args)
            except UnsupportedOpError as e:
                raise UnsupportedOpError(e.op_type, where=f"{self.where}, op '{op.name}'") from None
            results = result if isinstance(result, tuple) else (result,)
            for out_var, r in zip(op.outputs, results):
                r = _store(r, out_var)
                if out_var.shape is not None and not any(
                    not isinstance(s, (int, np.integer)) for s in out_var.shape
                ) and tuple(r.shape) != tuple(out_var.shape):
                    raise ValueError(
                        f"{op.op_type} '{op.name}' computed shape {r.shape}, program declares {out_var.shape}"
                    )
                env[out_var.name] = r
        return {v.name: env[v.name] for v in self.func.outputs}
