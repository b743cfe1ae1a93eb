// The web demo's JavaScript core (src/imageops.js, src/contract.js) against golden vectors
// made by the Python reference: the Android golden vectors (tests/android_golden.py,
// write_golden_vectors: model input (a prior-frame model's previous alpha included), camera
// streams through a prior-frame model, alpha, guided filter, composites, blur, the comic effect
// and its parts with their parameters, sidecar validation) and the comic-effect and NCHW vectors written by tests/test_web_demo.py.
// Every stage must match bit for bit, as the Java core does. The few Android stages that are
// not the page's job are listed in NOT_IN_JS, with the reason, and reported as skipped; any
// other stage this file does not know fails.
//
//   EDGEMATTING_GOLDEN_DIR=/path/to/goldens node --test web_demo/test/golden.test.mjs
//
// tests/test_web_demo.py writes the vectors and runs this.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';

import * as C from '../src/contract.js';
import * as I from '../src/imageops.js';

const DIR = process.env.EDGEMATTING_GOLDEN_DIR;
const TYPES = { float32: Float32Array, uint8: Uint8Array, int8: Int8Array };

function load(ref) {
  const buf = fs.readFileSync(path.join(DIR, ref.file));
  const T = TYPES[ref.dtype];
  // copy: the file buffer may not be aligned for the typed array
  return new T(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
}

function rgbToRgba(rgb) {
  const n = rgb.length / 3;
  const out = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    out[i * 4] = rgb[i * 3];
    out[i * 4 + 1] = rgb[i * 3 + 1];
    out[i * 4 + 2] = rgb[i * 3 + 2];
    out[i * 4 + 3] = 255;
  }
  return out;
}

function dropAlpha(rgba) {
  const n = rgba.length / 4;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) for (let k = 0; k < 3; k++) out[i * 3 + k] = rgba[i * 4 + k];
  return out;
}

/** Exact equality, with the first differing element in the message. */
function assertSame(actual, expected, what) {
  assert.equal(actual.length, expected.length, `${what}: ${actual.length} values, expected ${expected.length}`);
  let bad = 0;
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(Number(actual[i]), Number(expected[i]))) {
      bad++;
      if (first < 0) first = i;
    }
  }
  assert.equal(bad, 0, `${what}: ${bad} of ${expected.length} values differ; first at ${first}: ${actual[first]} != ${expected[first]}`);
}

function manifest(name) {
  const p = path.join(DIR || '', name);
  return DIR && fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, 'utf8')) : null;
}

const android = manifest('manifest.json');
const web = manifest('web_manifest.json');

test('golden vectors are present', () => {
  assert.ok(DIR, 'set EDGEMATTING_GOLDEN_DIR (tests/test_web_demo.py writes the vectors)');
  assert.ok(android, `no manifest.json in ${DIR}`);
});

// The comic-effect and NCHW vectors come from tests/test_web_demo.py (write_comic_goldens); run
// with the Android goldens alone, they are reported as skipped (test_web_demo.py counts skips).
if (!web) {
  test('web vectors (web_manifest.json)', { skip: `no web_manifest.json in ${DIR}: tests/test_web_demo.py write_comic_goldens writes it` }, () => {});
}

/**
 * Android golden stages that the page deliberately does not reproduce in JavaScript, and why.
 * They are reported as skipped (with the reason), not passed; a stage neither run below nor
 * listed here fails the test.
 */
const NOT_IN_JS = Object.freeze({
  orient: 'EXIF orientation is applied by the browser itself while decoding: the page decodes photos with '
    + "createImageBitmap(file, {imageOrientation: 'from-image'}), and tests/test_web_demo.py checks in Chromium "
    + 'that a JPEG with EXIF orientation 6 comes out upright',
  decode: 'bounded decode (power-of-two sample size, bounded size) is the Android photo decoder\'s job; the page '
    + 'decodes the whole photo and downscales large ones itself (app.js LIMITS: model input from a copy of at most '
    + '1024 px, effects at most 1280 px, at most 16 MP kept)',
  tensor_check: "the model's tensors are checked against the sidecar by the page's own runtime check "
    + '(runtimes.js contractMismatches: dtype and shape as LiteRT.js / onnxruntime-web report them; tested in '
    + 'headless Chromium by tests/test_web_demo.py). The quantization half of check_tensor cannot be repeated there: '
    + 'neither runtime reports a tensor\'s scale and zero point (LiteRT.js 2.5.3 TensorDetails: name, index, dtype, shape)',
});

// one skipped test per such stage, naming its cases
for (const [stage, why] of Object.entries(NOT_IN_JS)) {
  const names = (android?.cases ?? []).filter((c) => c.stage === stage).map((c) => c.name);
  if (names.length) test(`${stage}: ${names.length} cases (${names.join(', ')})`, { skip: `not run in JS: ${why}` }, () => {});
}

for (const c of android?.cases ?? []) {
  if (Object.hasOwn(NOT_IN_JS, c.stage)) continue;
  test(`${c.stage}: ${c.name}`, () => {
    if (c.stage === 'prior_sequence') { // a camera stream through a prior-frame model (the page's camera loop)
      const m = C.validateMetadata(c.metadata);
      assert.ok(m.prior, `${c.name}: not a prior-frame model`);
      const stream = new C.PriorStream();
      c.frames.forEach((fr, t) => {
        const [fh, fw] = fr.photo.shape;
        if (fr.reset) stream.reset();
        const x = stream.input(rgbToRgba(load(fr.photo)), fw, fh, m);
        assert.equal(stream.fedPrior, !fr.zeros, `frame ${t}: ${fr.zeros ? 'zeros expected' : "the previous frame's alpha expected"}`);
        assert.equal(x.constructor, TYPES[fr.expected.dtype], 'input tensor type');
        assertSame(x, load(fr.expected), `frame ${t} input`);
        stream.update(load(fr.raw), m);
      });
      return;
    }
    const expected = load(c.expected);
    if (c.stage === 'comic_quantize') { // a float image (a smoothed photo), with the levels
      assertSame(I.quantizeLevels(load(c.image), c.params.levels), expected, 'quantization');
      return;
    }
    if (c.stage === 'comic_outline') {
      const [ih, iw] = c.image.shape;
      assertSame(I.outlineStrength(load(c.image), ih, iw, c.params.low, c.params.high), expected, 'outline strength');
      return;
    }
    assert.ok(c.photo, `stage ${c.stage} case ${c.name} has no photo: unknown to this test`);
    const [h, w] = c.photo.shape;
    const photo = rgbToRgba(load(c.photo));
    if (c.stage === 'input') {
      // a prior-frame model's previous alpha, when the case gives one (else zeros)
      const x = C.modelInput(photo, w, h, C.validateMetadata(c.metadata), c.prior ? load(c.prior) : null);
      assert.equal(x.constructor, TYPES[c.expected.dtype], 'input tensor type');
      assertSame(x, expected, 'model input');
    } else if (c.stage === 'alpha') {
      const m = C.validateMetadata(c.metadata);
      assertSame(C.outputToAlpha(load(c.raw), m, w, h), expected, 'alpha');
    } else if (c.stage === 'composite') {
      const alpha = load(c.alpha);
      const bg = c.background;
      let out;
      if (bg.type === 'cutout') {
        out = I.rgbaCutout(photo, 4, alpha, w, h);
        assertSame(out, expected, 'cut-out');
        return;
      }
      if (bg.type === 'color') {
        out = I.composite(photo, 4, alpha, w, h, bg.rgb);
      } else if (bg.type === 'image') {
        const [bh, bw] = bg.image.shape;
        const img = Float32Array.from(load(bg.image));
        const resized = bh === h && bw === w ? img : I.resizeBilinear(img, bh, bw, 3, h, w);
        out = I.composite(photo, 4, alpha, w, h, resized);
      } else if (bg.type === 'blur') {
        const r = bg.radius ?? I.defaultBlurRadius(h, w);
        out = I.composite(photo, 4, alpha, w, h, I.boxBlur(I.rgbaToRgb(photo, w, h), h, w, 3, r));
      } else {
        assert.fail(`unknown background ${bg.type}`);
      }
      assertSame(dropAlpha(out), expected, 'composite');
    } else if (c.stage === 'blur') {
      assertSame(I.boxBlur(I.rgbaToRgb(photo, w, h), h, w, 3, c.radius), expected, 'blur');
    } else if (c.stage === 'guided') {
      const m = C.validateMetadata(c.metadata);
      // radius/eps null: the sidecar's own postprocess.guided_filter
      const guided = c.radius === null ? m.guidedFilter : { radius: c.radius, eps: c.eps };
      assert.ok(guided, `${c.name}: the sidecar has no postprocess.guided_filter`);
      assertSame(C.outputToAlpha(load(c.raw), m, w, h, { guided, guide: photo, guideStride: 4 }), expected, 'guided alpha');
      // the same from RGB floats (stride 3)
      const rgb = I.rgbaToRgb(photo, w, h);
      assertSame(C.outputToAlpha(load(c.raw), m, w, h, { guided, guide: rgb, guideStride: 3 }), expected, 'guided alpha (RGB guide)');
    } else if (c.stage === 'comic') {
      assertSame(dropAlpha(I.comic(photo, load(c.alpha), w, h)), expected, 'comic');
    } else if (c.stage === 'comic_style') {
      assertSame(I.comicStyle(I.rgbaToRgb(photo, w, h), h, w), expected, 'comic style');
    } else if (c.stage === 'comic_smooth') {
      const k = c.params;
      assertSame(I.edgePreservingSmooth(I.rgbaToRgb(photo, w, h), h, w, k.radius, k.passes, k.sigma_range, k.sigma_space),
        expected, 'edge-preserving smoothing');
    } else {
      assert.fail(`unknown stage ${c.stage}`);
    }
  });
}

for (const mf of android?.metadata_files ?? []) {
  test(`sidecar ${mf.file}`, () => {
    const text = fs.readFileSync(path.join(DIR, mf.file), 'utf8');
    let meta;
    try {
      meta = JSON.parse(text);
    } catch {
      assert.equal(mf.key, '(json)', `${mf.file} is not JSON but was expected to parse`);
      return;
    }
    // As in edgematting.contract (and unlike the Android app), NCHW (onnx --nchw) is valid here.
    const validHere = mf.valid || mf.key === 'input.layout';
    if (validHere) {
      C.validateMetadata(meta);
    } else {
      assert.throws(() => C.validateMetadata(meta), (e) => e instanceof C.MetadataError && e.key === mf.key,
        `${mf.file} must be rejected naming '${mf.key}'`);
    }
  });
}

for (const c of web?.cases ?? []) {
  test(`${c.stage}: ${c.name}`, () => {
    const [h, w] = c.photo.shape;
    const rgbBytes = load(c.photo);
    const rgb = Float32Array.from(rgbBytes);
    const expected = load(c.expected);
    if (c.stage === 'input') {
      assertSame(C.modelInput(rgbToRgba(rgbBytes), w, h, C.validateMetadata(c.metadata)), expected, 'model input');
    } else if (c.stage === 'smooth') {
      assertSame(I.edgePreservingSmooth(rgb, h, w), expected, 'edge-preserving smoothing');
    } else if (c.stage === 'outline') {
      assertSame(I.outlineStrength(rgb, h, w), expected, 'outline strength');
    } else if (c.stage === 'quantize') {
      assertSame(I.quantizeLevels(rgb), expected, 'quantization');
    } else if (c.stage === 'comic_style') {
      assertSame(I.comicStyle(rgb, h, w), expected, 'comic style');
    } else if (c.stage === 'comic') {
      const out = I.comic(rgbToRgba(rgbBytes), load(c.alpha), w, h);
      assertSame(dropAlpha(out), expected, 'comic');
    } else {
      assert.fail(`unknown stage ${c.stage}`);
    }
  });
}
