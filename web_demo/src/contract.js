// The model contract, read only from the sidecar (<artifact>.json written by
// `edgematting convert`): JavaScript twin of edgematting/contract.py's validate_metadata,
// model_input (with a prior-frame model's previous alpha), quantize, dequantize and
// output_to_alpha (which the Android app's Java core also reproduces). Bit-exact with
// Python; test/golden.test.mjs checks it against the Android golden vectors
// (tests/android_golden.py, prior-frame streams included) and NCHW vectors. Like contract.py and
// unlike the Android app, NCHW input (onnx --nchw) is accepted: onnxruntime-web runs it.

import { alphaToPhoto, guidedUpsample, resizeBilinear, rgbaToRgb, roundToUint8 } from './imageops.js';

const f = Math.fround;

/**
 * input.channel_order of a prior-frame model (edgematting.prior.PRIOR_ORDER): RGB, then the
 * alpha this model output for the previous frame. Not "RGBA" (a bitmap whose 4th byte the
 * model ignores).
 */
export const PRIOR_ORDER = 'RGB+prior';
export const CHANNEL_ORDERS = ['RGB', 'BGR', 'RGBA', 'BGRA', PRIOR_ORDER];
export const KNOWN_MEANINGS = ['person_probability', 'alpha_matte'];
export const QRANGE = { uint8: [0, 255], int8: [-128, 127] };
const DTYPES = ['float32', 'uint8', 'int8'];

/** A sidecar the demo cannot use; `key` is the offending key as a dotted path. */
export class MetadataError extends Error {
  constructor(key, problem) {
    super(`model metadata key '${key}': ${problem} (re-export the model with \`edgematting convert\`, which writes a valid sidecar)`);
    this.name = 'MetadataError';
    this.key = key;
  }
}

const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
const repr = (v) => (v === undefined ? 'nothing' : JSON.stringify(v));

function int(d, key, prefix, positive = false) {
  if (!(key in d)) throw new MetadataError(prefix + key, 'missing');
  const v = d[key];
  if (!isNum(v) || v !== Math.floor(v) || Math.abs(v) > 1e9) throw new MetadataError(prefix + key, `must be an integer, got ${repr(v)}`);
  if (positive && v <= 0) throw new MetadataError(prefix + key, `must be positive, got ${v}`);
  return v;
}

function str(d, key, prefix) {
  if (!(key in d)) throw new MetadataError(prefix + key, 'missing');
  if (typeof d[key] !== 'string') throw new MetadataError(prefix + key, `must be a string, got ${repr(d[key])}`);
  return d[key];
}

/** {"scale": s, "zero_point": z} or [s, z] -> {scale (float32), zeroPoint}; null -> null. */
export function quantParams(q, key = 'quantization', dtype = 'int8') {
  if (q === null || q === undefined) return null;
  let s, z;
  if (Array.isArray(q) && q.length === 2) {
    [s, z] = q;
  } else if (typeof q === 'object' && !Array.isArray(q)) {
    for (const k of ['scale', 'zero_point']) if (!(k in q)) throw new MetadataError(`${key}.${k}`, 'missing');
    s = q.scale;
    z = q.zero_point;
  } else {
    throw new MetadataError(key, `must be {"scale": s, "zero_point": z} or [s, z], got ${repr(q)}`);
  }
  if (typeof s !== 'number') throw new MetadataError(`${key}.scale`, `must be a number, got ${repr(s)}`);
  const s32 = f(s);
  if (!(Number.isFinite(s32) && s32 > 0)) throw new MetadataError(`${key}.scale`, `must be a positive finite number, got ${repr(s)}`);
  if (!isNum(z) || z !== Math.floor(z)) throw new MetadataError(`${key}.zero_point`, `must be an integer, got ${repr(z)}`);
  const [lo, hi] = QRANGE[dtype] || [-(2 ** 31), 2 ** 31 - 1];
  if (z < lo || z > hi) throw new MetadataError(`${key}.zero_point`, `${z} is outside the ${dtype} range`);
  return { scale: s32, zeroPoint: z };
}

/**
 * Check a sidecar object as contract.validate_metadata does; return the normalized contract:
 * {height, width, channels, channelOrder, prior, layout, dtype, normalizationInModel, mean,
 *  std, inputQuant, outputDtype, outputQuant, meaning, range, threshold, guidedFilter, target,
 *  precision}. guidedFilter is the sidecar's postprocess.guided_filter ({radius, eps}) or null;
 * prior is true for a prior-frame model ("RGB+prior": channel 4 is the previous frame's alpha).
 */
export function validateMetadata(meta) {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new MetadataError('(root)', 'metadata must be a JSON object');
  if (meta.format !== undefined && meta.format !== null && meta.format !== 'edgematting-artifact') {
    throw new MetadataError('format', `expected "edgematting-artifact", got ${repr(meta.format)}`);
  }
  if (!('format_version' in meta)) throw new MetadataError('format_version', 'missing');
  if (meta.format_version !== 1) throw new MetadataError('format_version', `unsupported version ${repr(meta.format_version)}; the demo reads version 1`);
  if (!('input' in meta)) throw new MetadataError('input', 'missing');
  const inp = meta.input;
  if (inp === null || typeof inp !== 'object' || Array.isArray(inp)) throw new MetadataError('input', `must be an object, got ${repr(inp)}`);
  const c = {
    height: int(inp, 'height', 'input.', true),
    width: int(inp, 'width', 'input.', true),
    channels: int(inp, 'channels', 'input.'),
  };
  if (c.channels !== 3 && c.channels !== 4) throw new MetadataError('input.channels', `must be 3 or 4, got ${c.channels}`);
  let order = str(inp, 'channel_order', 'input.').toUpperCase();
  c.prior = order === PRIOR_ORDER.toUpperCase();
  if (c.prior) {
    order = PRIOR_ORDER;
    if (c.channels !== 4) throw new MetadataError('input.channels', `"${PRIOR_ORDER}" (RGB + the previous frame's alpha) needs 4 channels, got ${c.channels}`);
  } else if (!CHANNEL_ORDERS.includes(order)) {
    throw new MetadataError('input.channel_order', `unknown order "${order}"; expected one of ${JSON.stringify(CHANNEL_ORDERS)}`);
  }
  if (!c.prior && order.length !== c.channels) throw new MetadataError('input.channel_order', `"${order}" does not match input.channels=${c.channels}`);
  c.channelOrder = order;
  const layout = inp.layout ?? 'NHWC';
  if (layout !== 'NHWC' && layout !== 'NCHW') throw new MetadataError('input.layout', `must be NHWC or NCHW, got ${repr(inp.layout)}`);
  c.layout = layout;
  const dtype = str(inp, 'dtype', 'input.');
  if (!DTYPES.includes(dtype)) throw new MetadataError('input.dtype', `unknown dtype "${dtype}"; expected float32, uint8 or int8`);
  c.dtype = dtype;
  if (!('normalization_in_model' in inp)) throw new MetadataError('input.normalization_in_model', 'missing');
  if (typeof inp.normalization_in_model !== 'boolean') throw new MetadataError('input.normalization_in_model', `must be true or false, got ${repr(inp.normalization_in_model)}`);
  c.normalizationInModel = inp.normalization_in_model;
  if (!c.normalizationInModel) {
    for (const [key, nonzero] of [['mean', false], ['std', true]]) {
      if (!(key in inp)) throw new MetadataError(`input.${key}`, 'missing');
      const v = inp[key];
      if (!Array.isArray(v) || v.length !== 3 || !v.every((e) => typeof e === 'number')) throw new MetadataError(`input.${key}`, `must be a list of 3 numbers, got ${repr(v)}`);
      const v32 = v.map(f);
      if (!v32.every(Number.isFinite) || (nonzero && v32.some((e) => e === 0))) {
        throw new MetadataError(`input.${key}`, `must hold finite${nonzero ? ', non-zero' : ''} numbers, got ${repr(v)}`);
      }
      c[key] = v32;
    }
  } else {
    c.mean = [0, 0, 0];
    c.std = [1, 1, 1];
  }
  const qRequired = dtype === 'int8' || (dtype === 'uint8' && !c.normalizationInModel);
  if ((inp.quantization === null || inp.quantization === undefined) && qRequired) {
    throw new MetadataError('input.quantization', `missing; a ${dtype} tensor needs {"scale", "zero_point"}`);
  }
  c.inputQuant = dtype === 'float32' ? null : quantParams(inp.quantization, 'input.quantization', dtype);

  if (!('output' in meta)) throw new MetadataError('output', 'missing');
  const out = meta.output;
  if (out === null || typeof out !== 'object' || Array.isArray(out)) throw new MetadataError('output', `must be an object, got ${repr(out)}`);
  for (const k of ['height', 'width']) {
    const v = int(out, k, 'output.', true);
    if (v !== c[k]) throw new MetadataError(`output.${k}`, `${v} does not match input.${k}=${c[k]}`);
  }
  const ch = int(out, 'channels', 'output.');
  if (ch !== 1) throw new MetadataError('output.channels', `must be 1 (one alpha/probability map), got ${ch}`);
  const odt = str(out, 'dtype', 'output.');
  if (!DTYPES.includes(odt)) throw new MetadataError('output.dtype', `unknown dtype "${odt}"; expected float32, uint8 or int8`);
  c.outputDtype = odt;
  if (odt !== 'float32' && (out.quantization === null || out.quantization === undefined)) {
    throw new MetadataError('output.quantization', `missing; a ${odt} tensor needs {"scale", "zero_point"}`);
  }
  c.outputQuant = odt === 'float32' ? null : quantParams(out.quantization, 'output.quantization', odt);
  const meaning = str(out, 'meaning', 'output.');
  if (!KNOWN_MEANINGS.includes(meaning)) throw new MetadataError('output.meaning', `unknown meaning "${meaning}"; expected one of ${JSON.stringify(KNOWN_MEANINGS)}`);
  c.meaning = meaning;
  const rng = out.range;
  if (rng === null || rng === undefined) {
    c.range = [0, 1];
  } else {
    if (!Array.isArray(rng) || rng.length !== 2 || !rng.every(isNum)) throw new MetadataError('output.range', `must be [low, high], got ${repr(rng)}`);
    const lo = f(rng[0]), hi = f(rng[1]);
    if (!(hi > lo && Number.isFinite(f(hi - lo)))) throw new MetadataError('output.range', `high must be greater than low, got ${repr(rng)}`);
    c.range = [rng[0], rng[1]];
  }
  c.threshold = isNum(out.threshold) ? out.threshold : 0.5;
  c.guidedFilter = guidedFilter(meta.postprocess);
  c.target = meta.target;
  c.precision = meta.precision;
  return c;
}

/**
 * contract._guided_filter: the optional `postprocess` section,
 * {"guided_filter": {"radius": r, "eps": e}}, asks for the guided-filter upsampling of the
 * alpha. Absent or null: none (older sidecars stay valid). Unknown keys inside are ignored.
 * Returns {radius, eps} (eps as written; it is rounded to float32 where it is used) or null.
 */
function guidedFilter(post) {
  if (post === null || post === undefined) return null;
  if (typeof post !== 'object' || Array.isArray(post)) throw new MetadataError('postprocess', `must be an object, got ${repr(post)}`);
  const gf = post.guided_filter;
  if (gf === null || gf === undefined) return null;
  if (typeof gf !== 'object' || Array.isArray(gf)) {
    throw new MetadataError('postprocess.guided_filter', `must be {"radius": r, "eps": e}, got ${repr(gf)}`);
  }
  const radius = int(gf, 'radius', 'postprocess.guided_filter.', true);
  if (!('eps' in gf)) throw new MetadataError('postprocess.guided_filter.eps', 'missing');
  const eps = gf.eps;
  const e32 = typeof eps === 'number' ? f(eps) : NaN; // as numpy's float32(eps) and the Java core's (float) eps
  if (!(Number.isFinite(e32) && e32 > 0)) throw new MetadataError('postprocess.guided_filter.eps', `must be a positive number, got ${repr(eps)}`);
  return { radius, eps };
}

/** contract.quantize for one value: clip(floor(x / scale + 0.5) + zero_point). */
export function quantize(x, q, dtype) {
  const [lo, hi] = QRANGE[dtype];
  const v = Math.floor(f(f(x / q.scale) + 0.5)) + q.zeroPoint;
  return v < lo ? lo : v > hi ? hi : v;
}

/** contract.dequantize for one value: (q - zero_point) * scale. */
export function dequantize(v, q) {
  return f(f(v - q.zeroPoint) * q.scale);
}

/** Bytes per element of a tensor dtype. */
const TYPED = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array };

/**
 * contract._prior_channel for one value: a previous alpha clipped to [0, 1], on the pixel
 * scale (floor(p * 255 + 0.5)) when the normalization is in the model (its input is pixels
 * 0..255: raw uint8, or uint8/int8 quantized with scale 1), else the alpha itself.
 */
export function priorValue(p, c) {
  const v = Math.min(Math.max(p, 0), 1);
  return c.normalizationInModel ? roundToUint8(f(v * 255)) : v;
}

/**
 * contract.model_input: a photo (RGBA bytes, w x h) -> the model's input tensor as a typed
 * array of the sidecar's dtype, in its layout (NHWC, or NCHW for onnx --nchw), batch 1.
 * A prior-frame model (c.prior) takes `prior` as its 4th channel: the previous frame's alpha
 * at model size (height*width floats, e.g. from a PriorStream); null: zeros (a first frame,
 * a single photo). A prior for a model without that channel is a TypeError.
 */
export function modelInput(rgba, w, h, c, prior = null) {
  const px = resizeBilinear(rgbaToRgb(rgba, w, h), h, w, 3, c.height, c.width);
  const n = c.height * c.width;
  const ch = c.channels;
  const bgr = c.channelOrder.startsWith('BGR');
  if (prior !== null && !c.prior) throw new TypeError(`a previous alpha was given, but the model takes ${c.channelOrder}, not ${PRIOR_ORDER}`);
  if (prior !== null && prior.length !== n) throw new RangeError(`the prior (previous frame's alpha) has ${prior.length} values; the model takes ${c.height}x${c.width} = ${n}`);
  const real = new Float32Array(n * ch);
  const rawPixels = c.dtype === 'uint8' && c.inputQuant === null;
  const fill = c.normalizationInModel ? 255 : 0;
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) {
      const src = bgr ? 2 - k : k;
      const v = px[i * 3 + src];
      real[i * ch + k] = rawPixels || c.normalizationInModel ? v : f(f(v - c.mean[src]) / c.std[src]);
    }
    if (ch === 4) real[i * ch + 3] = c.prior ? (prior === null ? 0 : priorValue(prior[i], c)) : fill;
  }
  let out;
  if (c.dtype === 'float32') {
    out = real;
  } else if (rawPixels) {
    out = new Uint8Array(real.length);
    for (let i = 0; i < real.length; i++) out[i] = roundToUint8(real[i]);
  } else {
    out = new TYPED[c.dtype](real.length);
    for (let i = 0; i < real.length; i++) out[i] = quantize(real[i], c.inputQuant, c.dtype);
  }
  return c.layout === 'NCHW' ? toNchw(out, c.height, c.width, ch) : out;
}

function toNchw(a, h, w, ch) {
  const out = new a.constructor(a.length);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < ch; k++) out[k * h * w + i] = a[i * ch + k];
  return out;
}

/**
 * A camera stream through a prior-frame model (the twin of the Android core's
 * FrameProcessor.prepareFrame and of edgematting.video): each frame's input holds the alpha
 * the model output for the previous frame, clip(decode_output(raw), 0, 1) at model size;
 * zeros on the first frame, after reset() (a new stream, another model), after a frame of
 * another size, and when the previous frame's output never came (update() not called).
 * For any other model, input() is modelInput().
 */
export class PriorStream {
  constructor() {
    this.prior = null; // the previous frame's alpha at model size, or null
    this.w = 0;
    this.h = 0;
    this.fedPrior = false; // the last input() was given a previous alpha (not zeros)
  }

  reset() {
    this.prior = null;
  }

  /** The input tensor for this frame (RGBA bytes, w x h). */
  input(rgba, w, h, c) {
    if (w !== this.w || h !== this.h) {
      this.reset(); // a new resolution: the previous alpha is of another picture
      this.w = w;
      this.h = h;
    }
    const p = c.prior ? this.prior : null;
    this.prior = null; // consumed: this frame's update() is the next prior
    this.fedPrior = p !== null;
    return modelInput(rgba, w, h, c, p);
  }

  /** The model's raw output for the frame just given: the next frame's prior. */
  update(raw, c) {
    if (!c.prior) return;
    const a = modelAlpha(raw, c);
    for (let i = 0; i < a.length; i++) a[i] = Math.min(Math.max(a[i], 0), 1);
    this.prior = a;
  }
}

/** The model input's shape in its layout, batch 1. */
export function inputShape(c) {
  return c.layout === 'NCHW' ? [1, c.channels, c.height, c.width] : [1, c.height, c.width, c.channels];
}

/** contract.decode_output: raw output (typed array) -> model-size alpha (float32). */
export function modelAlpha(raw, c) {
  const n = c.height * c.width;
  if (raw.length !== n) throw new RangeError(`the model returned ${raw.length} values; the sidecar's output is ${c.height}x${c.width}x1 = ${n}`);
  const a = new Float32Array(n);
  if (c.outputDtype === 'float32') a.set(raw);
  else for (let i = 0; i < n; i++) a[i] = dequantize(raw[i], c.outputQuant);
  const [lo, hi] = c.range;
  if (lo !== 0 || hi !== 1) {
    const lo32 = f(lo), span = f(f(hi) - lo32);
    for (let i = 0; i < n; i++) a[i] = f(f(a[i] - lo32) / span);
  }
  return a;
}

/**
 * contract.output_to_alpha: raw output -> alpha at photo size, clipped to [0, 1]. Plain
 * bilinear upsampling unless `guided` ({radius, eps}: the contract's guidedFilter, or the
 * user's choice) is given: then imageops.guided_upsample, guided by `guide`, the photo itself
 * (photoW x photoH pixels of `guideStride` values: 4 for RGBA bytes, 3 for RGB floats).
 */
export function outputToAlpha(raw, c, photoW, photoH, { guided = null, guide = null, guideStride = 4 } = {}) {
  const a = modelAlpha(raw, c);
  if (guided === null || guided === undefined) return alphaToPhoto(a, c.height, c.width, photoW, photoH);
  if (!guide) throw new TypeError('outputToAlpha(..., {guided}) needs the photo as guide');
  return guidedUpsample(a, c.height, c.width, guide, guideStride, photoW, photoH, guided.radius, guided.eps);
}
