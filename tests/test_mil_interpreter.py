"""The numpy MIL interpreter, op by op, against references computed independently
(TensorFlow ops, or plain numpy loops written from the MIL op definitions)."""
import itertools

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402
from coremltools.converters.mil.mil import types  # noqa: E402

from edgematting.errors import UnsupportedOpError  # noqa: E402
from edgematting.runners.mil_interpreter import MILInterpreter, supported_ops  # noqa: E402

RNG = np.random.default_rng(7)


def run(prog, **feeds):
    out = MILInterpreter(prog).run(feeds)
    assert len(out) == 1
    return next(iter(out.values()))


def tf():
    from edgematting._tf import tf as _tf

    return _tf()


def naive_conv(x, w, b, strides, pads, dil, groups):
    """Direct-loop NCHW convolution: out[n,o,i,j] = b[o] + sum x_pad[..] * w[..]."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, [(0, 0), (0, 0), pads[0], pads[1]]).astype(np.float64)
    oh = (xp.shape[2] - (kh - 1) * dil[0] - 1) // strides[0] + 1
    ow = (xp.shape[3] - (kw - 1) * dil[1] - 1) // strides[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i, j in itertools.product(range(oh), range(ow)):
            patch = xp[:, g * cg:(g + 1) * cg,
                       i * strides[0]:i * strides[0] + (kh - 1) * dil[0] + 1:dil[0],
                       j * strides[1]:j * strides[1] + (kw - 1) * dil[1] + 1:dil[1]]
            out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out.astype(np.float32)


@pytest.mark.parametrize(
    "cin,cout,k,strides,dil,groups,pad_type,pad",
    [
        (3, 5, 3, (1, 1), (1, 1), 1, "valid", None),
        (3, 4, 3, (2, 2), (1, 1), 1, "custom", [1, 0, 2, 1]),
        (4, 6, 3, (1, 2), (1, 1), 2, "custom", [1, 1, 0, 2]),  # grouped
        (6, 6, 3, (1, 1), (2, 2), 6, "custom", [2, 2, 2, 2]),  # depthwise, dilated
        (6, 6, 3, (2, 2), (1, 1), 6, "valid", None),  # depthwise, strided
        (5, 7, 1, (1, 1), (1, 1), 1, "valid", None),  # pointwise
    ],
)
def test_conv_against_direct_loop(cin, cout, k, strides, dil, groups, pad_type, pad):
    x = RNG.normal(size=(2, cin, 9, 10)).astype(np.float32)
    w = RNG.normal(size=(cout, cin // groups, k, k)).astype(np.float32)
    b = RNG.normal(size=(cout,)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        kw = dict(pad=pad) if pad else {}
        return mb.conv(x=x_, weight=w, bias=b, strides=list(strides), dilations=list(dil), groups=groups,
                       pad_type=pad_type, **kw)

    pads = [(pad[0], pad[1]), (pad[2], pad[3])] if pad else [(0, 0), (0, 0)]
    np.testing.assert_allclose(run(prog, x_=x), naive_conv(x, w, b, strides, pads, dil, groups),
                               rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("strides,dil,depthwise", [((1, 1), (1, 1), False), ((2, 2), (1, 1), False),
                                                   ((1, 1), (2, 2), True), ((2, 2), (1, 1), True),
                                                   ((1, 1), (4, 4), True)])
def test_conv_same_padding_matches_tensorflow(strides, dil, depthwise):
    T = tf()
    c = 4
    x = RNG.normal(size=(1, c, 11, 12)).astype(np.float32)
    if depthwise:
        w = RNG.normal(size=(c, 1, 3, 3)).astype(np.float32)
        ref = T.nn.depthwise_conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 0, 1), strides=(1, *strides, 1),
                                    padding="SAME", dilations=dil).numpy().transpose(0, 3, 1, 2)
        groups = c
    else:
        w = RNG.normal(size=(6, c, 3, 3)).astype(np.float32)
        ref = T.nn.conv2d(x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), strides=strides, padding="SAME",
                          dilations=dil).numpy().transpose(0, 3, 1, 2)
        groups = 1

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.conv(x=x_, weight=w, strides=list(strides), dilations=list(dil), groups=groups, pad_type="same")

    np.testing.assert_allclose(run(prog, x_=x), ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("k,s,pad_type", [((2, 2), (2, 2), "valid"), ((3, 2), (3, 2), "valid"),
                                          ((3, 3), (1, 1), "same"), ((4, 4), (4, 4), "valid")])
def test_avg_pool_matches_tensorflow(k, s, pad_type):
    T = tf()
    x = RNG.normal(size=(1, 3, 12, 12)).astype(np.float32)
    ref = T.nn.avg_pool2d(x.transpose(0, 2, 3, 1), ksize=k, strides=s, padding=pad_type.upper())
    ref = ref.numpy().transpose(0, 3, 1, 2)  # TF's SAME average excludes the padding

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.avg_pool(x=x_, kernel_sizes=list(k), strides=list(s), pad_type=pad_type,
                           exclude_padding_from_average=True)

    np.testing.assert_allclose(run(prog, x_=x), ref, rtol=1e-5, atol=1e-6)


def test_avg_pool_ceil_mode_is_refused():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 2, 5, 5))])
    def prog(x_):
        return mb.avg_pool(x=x_, kernel_sizes=[2, 2], strides=[2, 2], pad_type="valid", ceil_mode=True)

    with pytest.raises(UnsupportedOpError, match="ceil_mode"):
        run(prog, x_=np.zeros((1, 2, 5, 5), np.float32))


@pytest.mark.parametrize("sh,sw,src", [(2, 2, (3, 4)), (4, 8, (2, 3)), (8, 8, (1, 1)), (2.0, 3.0, (5, 2))])
def test_upsample_bilinear_half_pixel_matches_tf_image_resize(sh, sw, src):
    T = tf()
    x = RNG.normal(size=(1, 2, *src)).astype(np.float32)
    oh, ow = int(src[0] * sh), int(src[1] * sw)
    ref = T.image.resize(x.transpose(0, 2, 3, 1), (oh, ow), method="bilinear").numpy().transpose(0, 3, 1, 2)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.upsample_bilinear(x=x_, scale_factor_height=float(sh), scale_factor_width=float(sw),
                                    align_corners=False)

    np.testing.assert_allclose(run(prog, x_=x), ref, rtol=1e-5, atol=1e-5)


def test_upsample_bilinear_align_corners_matches_tf():
    T = tf()
    x = RNG.normal(size=(1, 2, 3, 4)).astype(np.float32)
    ref = T.compat.v1.image.resize_bilinear(x.transpose(0, 2, 3, 1), (6, 8), align_corners=True)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.upsample_bilinear(x=x_, scale_factor_height=2.0, scale_factor_width=2.0, align_corners=True)

    np.testing.assert_allclose(run(prog, x_=x), ref.numpy().transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode,half,align", [("UNALIGN_CORNERS", True, False), ("DEFAULT", False, False),
                                             ("STRICT_ALIGN_CORNERS", False, True)])
def test_resize_bilinear_sampling_modes_match_tf(mode, half, align):
    T = tf()
    x = RNG.normal(size=(1, 3, 5, 7)).astype(np.float32)
    ref = T.raw_ops.ResizeBilinear(images=x.transpose(0, 2, 3, 1), size=[8, 11], align_corners=align,
                                   half_pixel_centers=half).numpy().transpose(0, 3, 1, 2)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.resize_bilinear(x=x_, target_size_height=8, target_size_width=11, sampling_mode=mode)

    np.testing.assert_allclose(run(prog, x_=x), ref, rtol=1e-5, atol=1e-5)


def test_resize_bilinear_offset_corners_formula():
    x = RNG.normal(size=(1, 1, 1, 4)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.resize_bilinear(x=x_, target_size_height=1, target_size_width=6, sampling_mode="OFFSET_CORNERS")

    delta = 3 / 6  # max(1, Xin-1) / Xout
    g = np.clip(0.5 * delta + np.arange(6) * delta, 0, 3)
    ref = np.interp(g, np.arange(4), x[0, 0, 0])
    np.testing.assert_allclose(run(prog, x_=x)[0, 0, 0], ref, rtol=1e-5, atol=1e-6)


def test_concat_and_interleave():
    a = RNG.normal(size=(1, 2, 3, 3)).astype(np.float32)
    b = RNG.normal(size=(1, 2, 3, 3)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=a.shape), mb.TensorSpec(shape=b.shape)])
    def p1(a_, b_):
        return mb.concat(values=[a_, b_], axis=1)

    @mb.program(input_specs=[mb.TensorSpec(shape=a.shape), mb.TensorSpec(shape=b.shape)])
    def p2(a_, b_):
        return mb.concat(values=[a_, b_], axis=1, interleave=True)

    np.testing.assert_array_equal(MILInterpreter(p1).run({"a_": a, "b_": b})[p1.functions["main"].outputs[0].name],
                                  np.concatenate([a, b], 1))
    inter = MILInterpreter(p2).run({"a_": a, "b_": b})[p2.functions["main"].outputs[0].name]
    np.testing.assert_array_equal(inter[:, 0::2], a)
    np.testing.assert_array_equal(inter[:, 1::2], b)


@pytest.mark.parametrize("name,fn", [("add", np.add), ("sub", np.subtract), ("mul", np.multiply),
                                     ("real_div", np.divide), ("maximum", np.maximum), ("minimum", np.minimum)])
def test_binary_ops_broadcast(name, fn):
    x = RNG.normal(size=(1, 3, 4, 4)).astype(np.float32)
    y = (RNG.uniform(0.5, 2, size=(1, 3, 1, 1))).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return getattr(mb, name)(x=x_, y=y)

    np.testing.assert_allclose(run(prog, x_=x), fn(x, y), rtol=1e-6)


@pytest.mark.parametrize("name,ref", [
    ("relu", lambda x: np.maximum(x, 0)),
    ("relu6", lambda x: np.minimum(np.maximum(x, 0), 6)),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x.astype(np.float64)))),
    ("tanh", np.tanh),
])
def test_activations(name, ref):
    x = (RNG.normal(size=(1, 2, 5, 5)) * 8).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return getattr(mb, name)(x=x_)

    np.testing.assert_allclose(run(prog, x_=x), ref(x), rtol=1e-6, atol=1e-7)


def test_clip():
    x = (RNG.normal(size=(1, 2, 5, 5)) * 8).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        return mb.clip(x=x_, alpha=-1.5, beta=2.25)

    np.testing.assert_array_equal(run(prog, x_=x), np.clip(x, -1.5, 2.25))


def test_cast_rounds_to_fp16_and_fp16_ops_stay_fp16():
    x = np.array([[1.0001, 2049.0, 1e-8, 70000.0, -3.14159265]], np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        h = mb.cast(x=x_, dtype="fp16")
        h = mb.mul(x=h, y=np.float16(3.0))  # an fp16 op: result rounded to fp16 again
        return mb.cast(x=h, dtype="fp32")

    out = run(prog, x_=x)
    expect = (x.astype(np.float16).astype(np.float32) * 3).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(out, expect)
    assert out[0, 0] != np.float32(1.0001 * 3)  # rounding visibly happened
    assert np.isinf(out[0, 3])  # 70000 overflows fp16, as on the device


def test_transpose_reshape_pad():
    x = RNG.normal(size=(1, 2, 3, 4)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)])
    def prog(x_):
        t = mb.transpose(x=x_, perm=[0, 2, 3, 1])
        r = mb.reshape(x=t, shape=[1, -1, 2])
        return mb.pad(x=r, pad=[1, 2, 0, 1], mode="constant", constant_val=0.5)

    ref = np.pad(x.transpose(0, 2, 3, 1).reshape(1, -1, 2), [(0, 0), (1, 2), (0, 1)], constant_values=0.5)
    np.testing.assert_array_equal(run(prog, x_=x), ref)


def _pack_lsb_first(idx, nbits):
    """Independent bit packer (MIL constexpr_lut_to_dense iOS16 layout), one bit at a time."""
    bits = []
    for v in idx.reshape(-1):
        bits.extend((int(v) >> b) & 1 for b in range(nbits))
    bits += [0] * (-len(bits) % 8)
    return np.array([sum(bits[i + b] << b for b in range(8)) for i in range(0, len(bits), 8)], np.uint8)


def test_constexpr_lut_to_dense_ios16_packed_6bit():
    shape = (4, 3, 3, 3)
    lut = RNG.normal(size=64).astype(np.float16)
    idx = RNG.integers(0, 64, size=shape)
    x = RNG.normal(size=(1, 3, 6, 6)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def prog(x_):
        w = mb.constexpr_lut_to_dense(indices=_pack_lsb_first(idx, 6), lut=lut, shape=np.array(shape, np.uint32))
        return mb.conv(x=x_, weight=mb.cast(x=w, dtype="fp32"), pad_type="valid")

    w = lut[idx].astype(np.float32)
    np.testing.assert_allclose(run(prog, x_=x), naive_conv(x, w, None, (1, 1), [(0, 0), (0, 0)], (1, 1), 1),
                               rtol=1e-5, atol=1e-4)


def test_constexpr_affine_dequantize_per_channel():
    q = RNG.integers(-127, 128, size=(5, 3, 1, 1)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, size=5).astype(np.float32)
    zp = RNG.integers(-3, 3, size=5).astype(np.int8)
    x = RNG.normal(size=(1, 3, 4, 4)).astype(np.float32)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape)], opset_version=ct.target.iOS16)
    def prog(x_):
        w = mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zp, scale=scale, axis=0)
        return mb.conv(x=x_, weight=w, pad_type="valid")

    w = scale.reshape(5, 1, 1, 1) * (q.astype(np.float32) - zp.reshape(5, 1, 1, 1))
    np.testing.assert_allclose(run(prog, x_=x), np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x), rtol=1e-5, atol=1e-5)


def test_constexpr_blockwise_shift_scale_ios18():
    data = RNG.integers(-127, 128, size=(4, 6, 1, 1)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, size=(4, 2, 1, 1)).astype(np.float16)  # blocks of 3 input channels
    x = RNG.normal(size=(1, 6, 3, 3)).astype(np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape, dtype=types.fp16)], opset_version=ct.target.iOS18)
    def prog(x_):
        w = mb.constexpr_blockwise_shift_scale(data=data, scale=scale)
        return mb.conv(x=x_, weight=w, pad_type="valid")

    w = np.repeat(scale.astype(np.float32), 3, axis=1) * data.astype(np.float32)
    ref = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x.astype(np.float32))
    out = run(prog, x_=x)
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.astype(np.float32), ref, rtol=2e-3, atol=2e-3)


def test_constexpr_lut_to_dense_ios18_grouped():
    idx = RNG.integers(0, 4, size=(4, 2, 1, 1)).astype(types.np_uint2_dtype)
    lut = RNG.normal(size=(2, 1, 1, 1, 4, 1)).astype(np.float16)  # one LUT per 2 output channels
    x = RNG.normal(size=(1, 2, 2, 2)).astype(np.float16)

    @mb.program(input_specs=[mb.TensorSpec(shape=x.shape, dtype=types.fp16)], opset_version=ct.target.iOS18)
    def prog(x_):
        w = mb.constexpr_lut_to_dense(indices=idx, lut=lut)
        return mb.conv(x=x_, weight=w, pad_type="valid")

    i = idx.astype(np.int64)
    w = np.empty(i.shape, np.float32)
    for o, c in itertools.product(range(4), range(2)):
        w[o, c, 0, 0] = lut[o // 2, 0, 0, 0, i[o, c, 0, 0], 0]
    ref = np.einsum("oc,nchw->nohw", w[:, :, 0, 0], x.astype(np.float32))
    np.testing.assert_allclose(run(prog, x_=x).astype(np.float32), ref, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("build", [
    lambda x: mb.topk(x=x, k=2)[0],
    lambda x: mb.gelu(x=x),
])
def test_unknown_op_is_a_clear_error(build):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])
    def prog(x_):
        return build(x_)

    name = [op.op_type for op in prog.functions["main"].operations if op.op_type != "const"][0]
    assert name not in supported_ops()
    with pytest.raises(UnsupportedOpError) as e:
        MILInterpreter(prog)
    assert e.value.op_type == name and f"'{name}'" in str(e.value)


def test_input_shape_is_checked():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 4))])
    def prog(x_):
        return mb.relu(x=x_)

    with pytest.raises(ValueError, match="shape"):
        run(prog, x_=np.zeros((1, 5), np.float32))
