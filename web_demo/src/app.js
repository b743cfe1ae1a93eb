// The page: choose a model (served by `edgematting web-demo`, or opened from disk with its
// sidecar), open/drop a photo or start the camera, cut the person out over a background,
// optionally with guided-filter edges and in comic style, download the PNG. Every problem is
// shown on the page.
//
// The pixel work is src/imageops.js and src/contract.js (bit-exact twins of the Python
// reference); the runtimes are behind src/runtimes.js.

import * as C from './contract.js';
import * as I from './imageops.js';
import { encodePng } from './png.js';
import { RUNTIMES, THREADING, VERSIONS, contractMismatches, kindOf, openEngine, ortThreadsFixed } from './runtimes.js';

/** Size limits. A photo whose longer side exceeds inferMaxSide is downscaled (by the
 *  browser, with smoothing) before the model input is made from it: sampling a huge photo
 *  straight down to the model size would alias. The cut-out stays at full size. */
export const LIMITS = Object.freeze({
  inferMaxSide: 1024, // model input made from a copy at most this large
  effectsMaxSide: 1280, // blur background and comic computed at most this large, then scaled up
  maxPixels: 16e6, // larger photos are downscaled to this for the cut-out too (memory)
  maxSide: 16384, // the browser's canvas limit
});

/** The steady-state figure the page reports for each model: `runs` timed inferences on the
 *  photo's model input after `warmups` untimed ones (the first call, timed on its own, is
 *  reported beside it: it includes the runtime's one-off set-up). */
export const STEADY = Object.freeze({ warmups: 3, runs: 20 });

const $ = (id) => document.getElementById(id);
const state = {
  models: [], // served: [{name, url, sidecar, kind, ...}]
  model: null, // {name, kind, contract, engine, sidecarName}
  photo: null, // {name, w, h, rgba, proxy: {w, h, rgba} | null, effects: {...} | null, notes: []}
  alpha: null, // Float32Array, photo size
  raw: null, // the model's raw output for the current photo (to redo the alpha when "Refine edges" changes)
  guidedChoice: null, // "Refine edges" as the user set it; null: the sidecar's choice (as the Android app)
  tfliteRuntime: 'litert', // the runtime chosen for .tflite models: 'litert' | 'mediapipe' (?runtime= too)
  input: null, // what the engine was last given: the model input tensor, or MediaPipe's model-size ImageData
  inferenceMs: null, // the last inference
  timing: null, // for the loaded model: {first, median, p90, runs, warmups} (ms), filled by the first photo
  cache: {}, // per photo: rgb, comic, blur, bgImage
  bgImage: null, // {w, h, rgb}
  output: null, // the RGBA bytes on screen
  camera: null, // {stream, times, frames, t0, priors: C.PriorStream, priorFrames}
  busy: false,
};

// ---------------------------------------------------------------------------------------
// messages
// ---------------------------------------------------------------------------------------
function setState(s, text) {
  document.body.dataset.state = s;
  if (text !== undefined) {
    const m = $('message');
    m.textContent = text;
    m.className = text ? 'info' : '';
  }
}

/** Show a problem on the page (never only in the console). */
function fail(text) {
  const m = $('message');
  m.textContent = text;
  m.className = 'error';
  document.body.dataset.state = 'error';
  return null;
}

function setNotes(lines) {
  $('notes').textContent = lines.join(' ');
}

function fmtMs(ms) {
  return `${ms < 10 ? ms.toFixed(2) : ms.toFixed(1)} ms`;
}

function fmtMb(bytes) {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function showStats() {
  const m = state.model;
  if (!m) {
    $('stats').textContent = '';
    return;
  }
  let s = `${m.engine.backend}`;
  const t = state.timing;
  if (t?.first != null) s += ` · first call ${fmtMs(t.first)}`;
  if (t?.median != null) {
    s += ` · steady state ${fmtMs(t.median)} median, ${fmtMs(t.p90)} p90 per frame (${t.runs} runs after ${t.warmups} warm-ups)`;
  } else if (state.inferenceMs !== null && !state.camera) {
    s += ` · inference ${fmtMs(state.inferenceMs)} per frame`;
  }
  const g = guidedFilter();
  s += g ? ` · guided-filter edges (radius ${g.radius}, eps ${g.eps})` : ' · bilinear edges';
  const cam = state.camera;
  if (m.contract.prior) { // a prior-frame model: what its 4th channel was given
    s += cam ? ` · prior: the previous frame's alpha (${cam.priorFrames} of ${cam.frames} frames)` : ' · prior: zeros (a single photo)';
  }
  if (cam && cam.times.length) {
    const sorted = [...cam.times].sort((a, b) => a - b);
    const fps = cam.frames / ((performance.now() - cam.t0) / 1000);
    s += ` (median ${sorted[sorted.length >> 1].toFixed(1)} ms over ${sorted.length} frames, ${fps.toFixed(1)} frames/s)`;
  }
  $('stats').textContent = s;
}

window.addEventListener('error', (e) => {
  if (e.target === window || !e.target?.tagName) fail(`Unexpected error: ${e.message}`);
});
window.addEventListener('unhandledrejection', (e) => {
  fail(`Unexpected error: ${e.reason?.message ?? e.reason}`);
});

// ---------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------
async function loadIndex() {
  let index;
  try {
    const r = await fetch('models/index.json', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    index = await r.json();
  } catch (e) {
    return fail(`No model list from the server (${e.message}). Start the page with \`edgematting web-demo MODEL_DIR\`, or open a model and its .json with "Open model…".`);
  }
  state.models = index.models ?? [];
  const sel = $('model');
  sel.replaceChildren();
  for (const m of state.models) {
    const o = document.createElement('option');
    o.value = m.name;
    o.textContent = `${m.name} (${m.kind}, ${m.precision ?? '?'}, ${fmtMb(m.bytes)})`;
    sel.append(o);
  }
  if (!state.models.length) {
    setState('idle', 'The server offers no models: open a .tflite or .onnx file and its .json sidecar with "Open model…".');
    return null;
  }
  const wanted = new URLSearchParams(location.search).get('model');
  const entry = state.models.find((m) => m.name === wanted) ?? state.models[0];
  sel.value = entry.name;
  return loadServedModel(entry);
}

async function loadServedModel(entry) {
  setState('loading', `Loading ${entry.name}…`);
  let bytes, sidecarText;
  try {
    const [mr, sr] = await Promise.all([fetch(entry.url), fetch(entry.sidecar)]);
    if (!mr.ok) throw new Error(`${entry.url}: HTTP ${mr.status}`);
    if (!sr.ok) throw new Error(`${entry.sidecar}: HTTP ${sr.status}`);
    [bytes, sidecarText] = await Promise.all([mr.arrayBuffer(), sr.text()]);
  } catch (e) {
    return dropModel(`Could not download ${entry.name}: ${e.message}`);
  }
  return useModel(entry.name, entry.kind, bytes, sidecarText, `${entry.name}.json`);
}

function dropModel(message) {
  state.model?.engine.close();
  state.model = null;
  state.inferenceMs = null;
  state.timing = null;
  state.alpha = null;
  state.raw = null;
  state.input = null;
  showStats();
  if (state.photo && !state.photo.live) showPhotoOnly(state.photo); // no stale cut-out of another model
  return fail(message);
}

/** Validate the sidecar, open the runtime, check that they agree, then use the model. */
async function useModel(name, kind, bytes, sidecarText, sidecarName) {
  stopCamera();
  setState('loading', `Loading ${name}…`);
  let meta;
  try {
    meta = JSON.parse(sidecarText);
  } catch (e) {
    return dropModel(`${sidecarName} is not valid JSON (${e.message}). Use the sidecar that \`edgematting convert\` wrote next to ${name}.`);
  }
  let contract;
  try {
    contract = C.validateMetadata(meta);
  } catch (e) {
    if (e instanceof C.MetadataError) return dropModel(`${sidecarName}: ${e.message}`);
    throw e;
  }
  if (meta.target && meta.target !== kind) {
    return dropModel(`${sidecarName} describes a ${meta.target} artifact (${meta.file ?? '?'}), but ${name} is a ${kind} model: the sidecar does not match the model.`);
  }
  const runtime = runtimeFor(kind);
  showRuntimes(kind, runtime);
  if (runtime === 'mediapipe') {
    // the converter records whether MediaPipe Tasks takes the file (sidecar clients.mediapipe_tasks)
    const verdict = meta.clients?.mediapipe_tasks;
    if (typeof verdict === 'string' && verdict.startsWith('unsupported')) {
      const reason = verdict.replace(/^unsupported:\s*/, '').replace(/\.\s*$/, '');
      return dropModel(`MediaPipe Tasks ${VERSIONS.mediapipe} cannot take ${name} (its sidecar, clients.mediapipe_tasks): ${reason}.`
        + mediapipeInsteadOf(name, contract, meta));
    }
  }
  let engine;
  const threads = chosenThreads();
  try {
    engine = await openEngine(kind, bytes, name, { threads, runtime });
  } catch (e) {
    const instead = runtime === 'mediapipe' ? mediapipeInsteadOf(name, contract, meta) : insteadOf(name, kind, contract, meta.precision);
    return dropModel(`${e.message}${instead}`);
  }
  const problems = contractMismatches(engine, contract, C.inputShape(contract));
  if (problems.length) {
    engine.close();
    const other = meta.file && meta.file !== name ? ` (it was written for ${meta.file})` : '';
    return dropModel(`${sidecarName} does not match ${name}${other}: ${problems.join('; ')}. Use the .json that \`edgematting convert\` wrote next to this model.`);
  }
  state.model?.engine.close();
  // MediaPipe returns the confidence as float32 whatever the output tensor (it dequantizes a uint8 one)
  const outContract = engine.takes === 'image' ? { ...contract, outputDtype: 'float32', outputQuant: null } : contract;
  state.model = { name, kind, contract, outContract, engine, sidecarName, meta };
  state.inferenceMs = null;
  state.timing = null;
  threadNote(engine, threads);
  state.raw = null; // the old model's output; the alpha on screen is redone below
  // "Refine edges": on when the sidecar asks for it (postprocess.guided_filter), until the user decides
  if (state.guidedChoice === null) $('guided').checked = contract.guidedFilter !== null;
  showStats();
  setState('ready', '');
  if (state.photo && !state.photo.live) await processPhoto();
  return state.model;
}

/**
 * A refused model that has a variant the runtime takes: the sentence naming it. LiteRT.js
 * has no int8 tensors, so a .tflite with int8 input or output (`--tflite-io int8`) cannot
 * run; the same model with float I/O (or uint8 I/O for --input uint8) can: a file served
 * here, else the name `edgematting convert` gives it without --tflite-io int8.
 */
function insteadOf(name, kind, c, precision) {
  if (kind !== 'tflite' || (c.dtype !== 'int8' && c.outputDtype !== 'int8')) return '';
  const why = ' LiteRT.js has no int8 input or output tensors';
  const self = state.models.find((m) => m.name === name);
  const runnable = (t) => t === 'float32' || t === 'uint8';
  const served = state.models.filter((m) => m.kind === 'tflite' && m.name !== name && runnable(m.input_dtype)
    && runnable(m.output_dtype) && (!self || (m.architecture === self.architecture && m.precision === self.precision)));
  if (served.length) return `${why}: choose ${served.map((m) => m.name).join(' or ')} (served here) instead.`;
  const stem = name.replace(/_ioint8(?=[._])/, '');
  const file = stem !== name ? stem : 'the same model converted without --tflite-io int8';
  const uint8 = /_uint8[._]/.test(stem);
  const cmd = `edgematting convert MODEL_DIR --target tflite --precision ${precision ?? 'int8'}${uint8 ? ' --input uint8' : ''}`;
  return `${why}: use ${file} instead (the same model with ${uint8 ? 'uint8' : 'float'} I/O, written by \`${cmd}\`).`;
}

/**
 * A file MediaPipe Tasks refuses (its sidecar says why: 4-channel input, int8 I/O, BGR, a
 * per-channel normalization it cannot apply): the sentence naming the file to use instead.
 * A served .tflite of the same model that MediaPipe takes (same precision first), else the
 * name and `edgematting convert` command of the variant it takes.
 */
function mediapipeInsteadOf(name, c, meta) {
  const self = state.models.find((m) => m.name === name);
  const arch = self?.architecture ?? meta.architecture;
  const precision = meta.precision;
  const served = state.models.filter((m) => m.kind === 'tflite' && m.name !== name && m.mediapipe === 'supported'
    && (!arch || m.architecture === arch))
    .sort((a, b) => (b.precision === precision) - (a.precision === precision));
  const litert = c.dtype !== 'int8' && c.outputDtype !== 'int8' ? ' (LiteRT.js runs this file: choose it as the runtime)' : '';
  if (served.length) return ` Choose ${served.slice(0, 2).map((m) => m.name).join(' or ')} (served here) instead${litert}.`;
  // the variant `convert` writes without the option MediaPipe cannot take
  let stem = name.replace(/_4ch(?=[._])/, '').replace(/_ioint8(?=[._])/, '');
  let uint8 = /_uint8[._]/.test(stem);
  const perChannel = !c.normalizationInModel && (new Set(c.mean).size > 1 || new Set(c.std).size > 1);
  if (stem === name && perChannel && !c.channelOrder.startsWith('BGR')) {
    // a float input normalized per channel: with --input uint8 the normalization is in the graph
    stem = name.replace(/(_(?:fp32|fp16|dynamic|int8|int16x8))(?=[._])/, '$1_uint8');
    uint8 = true;
  }
  if (stem === name) return ` Export the model again for MediaPipe (see the reason above)${litert}.`;
  const cmd = `edgematting convert MODEL_DIR --target tflite --precision ${precision ?? 'fp32'}${uint8 ? ' --input uint8' : ''}`;
  return ` Use ${stem} instead (written by \`${cmd}\`)${litert}.`;
}

// ---------------------------------------------------------------------------------------
// runtimes
// ---------------------------------------------------------------------------------------
/** The runtime a model of `kind` runs on: for .tflite the one chosen (LiteRT.js or MediaPipe Tasks). */
function runtimeFor(kind) {
  return kind === 'tflite' ? state.tfliteRuntime : RUNTIMES[kind]?.[0]?.[0] ?? null;
}

/** The runtime control lists the runtimes of this kind of model; one only for .onnx (disabled). */
function showRuntimes(kind, chosen) {
  const sel = $('runtime');
  const list = RUNTIMES[kind] ?? [];
  const have = [...sel.options].map((o) => o.value).join();
  if (have !== list.map(([id]) => id).join()) {
    sel.replaceChildren(...list.map(([id, label]) => Object.assign(document.createElement('option'), { value: id, textContent: label })));
  }
  if (chosen) sel.value = chosen;
  sel.disabled = list.length < 2;
}

function setupRuntime() {
  const asked = new URLSearchParams(location.search).get('runtime');
  if (RUNTIMES.tflite.some(([id]) => id === asked)) state.tfliteRuntime = asked;
  showRuntimes('tflite', state.tfliteRuntime);
}

/** Another runtime for the .tflite on the page: the model is opened again on it (and measured again). */
async function runtimeChanged() {
  const v = $('runtime').value;
  if (RUNTIMES.tflite.some(([id]) => id === v)) state.tfliteRuntime = v;
  const current = $('model').value;
  const served = state.models.find((e) => e.name === current);
  if (served) await loadServedModel(served);
  else if (state.localModel && current.startsWith('file:')) await openModelFiles([state.localModel.modelFile, state.localModel.sidecar]);
}

// ---------------------------------------------------------------------------------------
// threads
// ---------------------------------------------------------------------------------------
/** The thread control: 1..cores when the page is cross-origin isolated (default min(4,
 *  cores), or ?threads=N), else 1 with the reason beside it. */
function setupThreads() {
  const sel = $('threads');
  for (let n = 1; n <= THREADING.max; n++) {
    const o = document.createElement('option');
    o.value = String(n);
    o.textContent = String(n);
    sel.append(o);
  }
  const asked = parseInt(new URLSearchParams(location.search).get('threads') ?? '', 10);
  let n = THREADING.default;
  let note = '';
  if (Number.isInteger(asked) && asked >= 1) {
    n = Math.min(asked, THREADING.max);
    if (n !== asked) note = `${asked} threads asked; at most ${THREADING.max} here.`;
  }
  sel.value = String(n);
  if (!THREADING.isolated) {
    sel.disabled = true;
    note = 'One thread: this page is not cross-origin isolated (no SharedArrayBuffer), so WebAssembly cannot ' +
      'use threads. Serve it with `edgematting web-demo`, which sends the COOP/COEP headers.';
  }
  $('threads-note').textContent = note;
}

function chosenThreads() {
  return parseInt($('threads').value, 10) || 1;
}

/** Says so beside the control when the runtime uses another thread count than the one chosen. */
function threadNote(engine, wanted) {
  if (!THREADING.isolated) return; // the note set up by setupThreads says why
  let note = '';
  if (engine.threads !== wanted) {
    note = engine.runtime === 'mediapipe'
      ? `MediaPipe Tasks runs ${engine.threads} thread: its wasm build is single-threaded.`
      : engine.kind === 'onnx'
        ? `onnxruntime-web runs ${engine.threads} thread(s): it keeps the count it started with; reload the page to use ${wanted}.`
        : `LiteRT.js runs ${engine.threads} thread(s): its threaded build needs relaxed SIMD, which this browser lacks.`;
  }
  $('threads-note').textContent = note;
}

/** A new thread count: the model is opened again with it (and measured again). */
async function threadsChanged() {
  const m = state.model;
  if (!m) return;
  const n = chosenThreads();
  if (m.engine.runtime === 'mediapipe') return threadNote(m.engine, n); // one thread whatever the count
  const served = state.models.find((e) => e.name === m.name);
  const fixed = ortThreadsFixed();
  if (m.kind === 'onnx' && fixed !== null && fixed !== n && served) {
    // onnxruntime-web reads its thread count once per page: reload with this model and count
    const u = new URL(location.href);
    u.searchParams.set('model', m.name);
    u.searchParams.set('threads', String(n));
    setState('loading', `Reloading the page for onnxruntime-web on ${n} thread(s)…`);
    location.assign(u.href);
    return;
  }
  if (served) await loadServedModel(served);
  else if (state.localModel) await openModelFiles([state.localModel.modelFile, state.localModel.sidecar]);
}

async function openModelFiles(files) {
  const list = [...files];
  const modelFile = list.find((f) => kindOf(f.name));
  const sidecar = list.find((f) => f.name.toLowerCase().endsWith('.json'));
  if (!modelFile) return fail(`Pick a .tflite or .onnx model (with its .json sidecar); got ${list.map((f) => f.name).join(', ')}.`);
  if (!sidecar) return fail(`Pick the sidecar too: ${modelFile.name}.json, written next to the model by \`edgematting convert\`. The demo reads the model contract only from it.`);
  const sel = $('model');
  let o = [...sel.options].find((x) => x.value === `file:${modelFile.name}`);
  if (!o) {
    o = document.createElement('option');
    o.value = `file:${modelFile.name}`;
    o.textContent = `${modelFile.name} (from disk)`;
    sel.append(o);
  }
  sel.value = o.value;
  state.localModel = { modelFile, sidecar };
  return useModel(modelFile.name, kindOf(modelFile.name), await modelFile.arrayBuffer(), await sidecar.text(), sidecar.name);
}

// ---------------------------------------------------------------------------------------
// photos
// ---------------------------------------------------------------------------------------
function readPixels(source, w, h) {
  const cv = document.createElement('canvas');
  cv.width = w;
  cv.height = h;
  const ctx = cv.getContext('2d', { willReadFrequently: true });
  if (!ctx) throw new Error(`the browser could not make a ${w}×${h} canvas`);
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(source, 0, 0, w, h);
  return ctx.getImageData(0, 0, w, h).data;
}

function fitWithin(w, h, maxSide, maxPixels = Infinity) {
  const s = Math.min(1, maxSide / Math.max(w, h), Math.sqrt(maxPixels / (w * h)));
  return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

/**
 * Decodes a photo upright: the browser applies its EXIF orientation ('from-image', the
 * default of current browsers, asked for explicitly; a browser that does not know the value
 * yet gets its own default). The Android app does this itself (core Orientation).
 */
async function decodeImage(file) {
  const opts = { colorSpaceConversion: 'none', premultiplyAlpha: 'none', imageOrientation: 'from-image' };
  try {
    try {
      return await createImageBitmap(file, opts);
    } catch (e) {
      if (!(e instanceof TypeError)) throw e; // an unknown imageOrientation value: TypeError
      const { imageOrientation, ...older } = opts;
      return await createImageBitmap(file, older);
    }
  } catch {
    const what = file.type || 'unknown type';
    throw new Error(`“${file.name}” is not an image this browser can open (${what}, ${file.size} bytes). Open a JPEG, PNG, WebP or GIF photo.`);
  }
}

async function openPhoto(file) {
  stopCamera();
  setState('busy', `Opening ${file.name}…`);
  let bitmap;
  try {
    bitmap = await decodeImage(file);
  } catch (e) {
    return fail(e.message);
  }
  const notes = [];
  const W = bitmap.width;
  const H = bitmap.height;
  let [w, h] = fitWithin(W, H, LIMITS.maxSide, LIMITS.maxPixels);
  let photo;
  try {
    if (w !== W || h !== H) {
      notes.push(`The photo is ${W}×${H} (${(W * H / 1e6).toFixed(0)} MP), more than this page keeps in memory: the cut-out is made at ${w}×${h}.`);
    }
    photo = { name: file.name, w, h, rgba: readPixels(bitmap, w, h), proxy: null, notes };
    if (Math.max(w, h) > LIMITS.inferMaxSide) {
      const [pw, ph] = fitWithin(w, h, LIMITS.inferMaxSide);
      photo.proxy = { w: pw, h: ph, rgba: readPixels(bitmap, pw, ph) };
      notes.push(`Large photo (${w}×${h}): the model sees a ${pw}×${ph} downscaled copy; the cut-out keeps the full ${w}×${h}.`);
    }
    if (Math.max(w, h) > LIMITS.effectsMaxSide) {
      const [ew, eh] = fitWithin(w, h, LIMITS.effectsMaxSide);
      photo.effects = { w: ew, h: eh, rgba: readPixels(bitmap, ew, eh) };
      notes.push(`Blur and comic effect are computed on a ${ew}×${eh} copy and scaled up.`);
    }
  } catch (e) {
    return fail(`Could not read the pixels of ${file.name} (${W}×${H}): ${e.message}. Try a smaller photo.`);
  } finally {
    bitmap.close();
  }
  state.photo = photo;
  state.cache = {};
  state.alpha = null;
  state.raw = null;
  setNotes(notes);
  return processPhoto();
}

/**
 * Model input from the photo (or its downscaled copy) -> inference -> alpha at photo size.
 * A camera frame of a prior-frame model is given the previous frame's alpha (the camera's
 * PriorStream), a photo zeros.
 */
async function infer(photo) {
  const m = state.model;
  const src = photo.proxy ?? photo;
  const c = m.contract;
  const priors = photo.live ? state.camera?.priors ?? null : null;
  const x = engineInput(m, src, priors);
  state.input = x;
  const t0 = performance.now();
  let raw;
  try {
    raw = await m.engine.run(x, C.inputShape(c));
  } catch (e) {
    throw new Error(`${m.engine.backend} failed while running ${m.name}: ${e.message}`);
  }
  state.inferenceMs = performance.now() - t0;
  if (!state.timing) state.timing = { first: state.inferenceMs, median: null, p90: null, runs: 0, warmups: 0 };
  state.raw = raw;
  priors?.update(raw, m.outContract); // the next camera frame's prior
  return alphaFor(raw, photo);
}

/**
 * What the engine is given for a photo: the model input tensor (LiteRT.js, onnxruntime-web),
 * or for MediaPipe Tasks, which normalizes the image itself, the model-size image that tensor
 * is made from: the photo resized with the contract's bilinear resize (the twin of
 * `imageops.resize_bilinear`), rounded to bytes (`round_to_uint8`), as ImageData. MediaPipe
 * then resizes nothing and returns its mask at model resolution, comparable with the others'.
 * `priors`: a camera stream's C.PriorStream (a prior-frame model's previous alpha); null for
 * a photo (zeros). MediaPipe never gets a prior-frame model (its sidecar verdict refuses
 * 4-channel input).
 */
function engineInput(m, src, priors = null) {
  const c = m.contract;
  if (m.engine.takes !== 'image') return priors ? priors.input(src.rgba, src.w, src.h, c) : C.modelInput(src.rgba, src.w, src.h, c);
  const px = I.resizeBilinear(I.rgbaToRgb(src.rgba, src.w, src.h), src.h, src.w, 3, c.height, c.width);
  const n = c.height * c.width;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < 3; k++) rgba[i * 4 + k] = I.roundToUint8(px[i * 3 + k]);
    rgba[i * 4 + 3] = 255;
  }
  return new ImageData(rgba, c.width, c.height);
}

/** The guided filter to upsample with ({radius, eps}: the sidecar's, else the defaults), or null for bilinear. */
function guidedFilter() {
  if (!state.model || !$('guided').checked) return null;
  return state.model.contract.guidedFilter ?? I.GUIDED_DEFAULTS;
}

/** contract.output_to_alpha: raw output -> alpha at the photo's size, guided by the photo itself when asked. */
function alphaFor(raw, photo) {
  const guided = guidedFilter();
  return C.outputToAlpha(raw, state.model.outContract, photo.w, photo.h, guided ? { guided, guide: photo.rgba, guideStride: 4 } : {});
}

/** "Refine edges" changed: redo the alpha of the photo on screen from the same model output (no new inference). */
async function refineChanged() {
  state.guidedChoice = $('guided').checked;
  showStats();
  const p = state.photo;
  if (!p || p.live || !state.model || !state.raw || !state.alpha) return; // the camera's next frame uses it
  setState('busy', 'Refining edges…');
  await new Promise((r) => setTimeout(r, 0));
  try {
    state.alpha = alphaFor(state.raw, p);
  } catch (e) {
    fail(e.message);
    return;
  }
  render();
  setState('done', '');
}

async function processPhoto() {
  const p = state.photo;
  if (!p) return null;
  if (!state.model) {
    showPhotoOnly(p);
    return fail('No model is loaded: choose one above (or fix the problem reported for it) to cut this photo out.');
  }
  setState('busy', `Cutting out ${p.name}…`);
  await new Promise((r) => setTimeout(r, 0)); // let the message paint
  try {
    state.alpha = await infer(p);
  } catch (e) {
    return fail(e.message);
  }
  render();
  showStats();
  if (state.timing && state.timing.median === null) {
    setState('busy', `Measuring ${state.model.name}: ${STEADY.warmups} warm-ups, then ${STEADY.runs} timed runs…`);
    await new Promise((r) => setTimeout(r, 0)); // let the cut-out and the message paint
    let t;
    try {
      t = await measure(STEADY.runs, STEADY.warmups);
    } catch (e) {
      return fail(e.message);
    }
    if (!t) return null; // another model took over (and reports its own state)
    Object.assign(state.timing, { median: t.median, p90: t.p90, runs: t.runs, warmups: t.warmups });
    showStats();
  }
  setState('done', '');
  return true;
}

function showPhotoOnly(p) {
  state.output = null;
  const cv = $('result');
  cv.width = p.w;
  cv.height = p.h;
  cv.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(p.rgba), p.w, p.h), 0, 0);
  cv.hidden = false;
  $('placeholder').hidden = true;
  $('download').disabled = true;
}

// ---------------------------------------------------------------------------------------
// compositing
// ---------------------------------------------------------------------------------------
function photoRgb(p) {
  return (state.cache.rgb ??= I.rgbaToRgb(p.rgba, p.w, p.h));
}

/** An effect computed at photo size, or on the effects copy and scaled up. */
function effect(p, fn) {
  if (!p.effects) return fn(photoRgb(p), p.w, p.h);
  const e = p.effects;
  return I.resizeBilinear(fn(I.rgbaToRgb(e.rgba, e.w, e.h), e.w, e.h), e.h, e.w, 3, p.h, p.w);
}

function comicForeground(p) {
  return (state.cache.comic ??= effect(p, (rgb, w, h) => I.comicStyle(rgb, h, w)));
}

function blurredBackground(p) {
  return (state.cache.blur ??= effect(p, (rgb, w, h) => I.boxBlur(rgb, h, w, 3, I.defaultBlurRadius(h, w))));
}

function imageBackground(p) {
  const b = state.bgImage;
  if (!b) return null;
  if (b.w === p.w && b.h === p.h) return b.rgb;
  return (state.cache.bgImage ??= I.resizeBilinear(b.rgb, b.h, b.w, 3, p.h, p.w));
}

function hexToRgb(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function background() {
  return document.querySelector('input[name="bg"]:checked')?.value ?? 'transparent';
}

/** The output RGBA for the current photo, alpha and options. */
function compose() {
  const p = state.photo;
  const a = state.alpha;
  const comic = $('comic').checked;
  const fg = comic ? comicForeground(p) : p.rgba;
  const stride = comic ? 3 : 4;
  switch (background()) {
    case 'colour':
      return I.composite(fg, stride, a, p.w, p.h, hexToRgb($('bg-colour-value').value));
    case 'blur':
      return I.composite(fg, stride, a, p.w, p.h, blurredBackground(p));
    case 'image': {
      const bg = imageBackground(p);
      if (bg) return I.composite(fg, stride, a, p.w, p.h, bg);
      setNotes([...p.notes ?? [], 'Choose a background image (click "image…" again); showing the cut-out until then.']);
      return I.rgbaCutout(fg, stride, a, p.w, p.h);
    }
    case 'photo':
      return I.composite(fg, stride, a, p.w, p.h, photoRgb(p));
    default:
      return I.rgbaCutout(fg, stride, a, p.w, p.h);
  }
}

function render() {
  const p = state.photo;
  if (!p || !state.alpha) return;
  const out = compose();
  state.output = out;
  const cv = $('result');
  if (cv.width !== p.w || cv.height !== p.h) {
    cv.width = p.w;
    cv.height = p.h;
  }
  cv.getContext('2d').putImageData(new ImageData(out, p.w, p.h), 0, 0);
  cv.hidden = false;
  $('placeholder').hidden = true;
  $('download').disabled = false;
}

async function rerender() {
  if (!state.photo || !state.alpha) return;
  setState('busy', 'Compositing…');
  await new Promise((r) => setTimeout(r, 0));
  render();
  setState('done', '');
}

async function download() {
  const p = state.photo;
  if (!p || !state.output) return fail('Nothing to download yet: open a photo first.');
  const blob = await encodePng(state.output, p.w, p.h);
  const a = document.createElement('a');
  const stem = (p.name || 'photo').replace(/\.[^.]*$/, '');
  a.download = `${stem}-${$('comic').checked ? 'comic-' : ''}${background()}.png`;
  a.href = URL.createObjectURL(blob);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// ---------------------------------------------------------------------------------------
// camera
// ---------------------------------------------------------------------------------------
function cameraProblem(e) {
  switch (e?.name) {
    case 'NotAllowedError':
    case 'PermissionDeniedError':
    case 'SecurityError':
      return 'Camera permission was refused. Allow the camera for this page in the browser\'s site settings and press Camera again, or open a photo instead.';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No camera was found. Connect one and press Camera again, or open a photo instead.';
    case 'NotReadableError':
    case 'AbortError':
      return 'The camera could not be started (it may be in use by another application). Close that application and press Camera again.';
    default:
      return `The camera could not be started: ${e?.name ?? 'error'}: ${e?.message ?? e}`;
  }
}

async function startCamera() {
  if (state.camera) return stopCamera();
  if (!state.model) return fail('No model is loaded: choose one above before starting the camera.');
  if (!navigator.mediaDevices?.getUserMedia) {
    return fail('This browser gives this page no camera access (a camera needs https or http://127.0.0.1). Open a photo instead.');
  }
  setState('busy', 'Starting the camera… (allow it if the browser asks)');
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    return fail(cameraProblem(e));
  }
  const video = $('video');
  video.srcObject = stream;
  try {
    await video.play();
  } catch (e) {
    stream.getTracks().forEach((t) => t.stop());
    return fail(cameraProblem(e));
  }
  // a new stream: a prior-frame model's first frame gets zeros
  state.camera = { stream, times: [], frames: 0, t0: performance.now(), priors: new C.PriorStream(), priorFrames: 0 };
  state.cache = {};
  setNotes([]);
  $('camera').textContent = 'Stop camera';
  setState('live', '');
  requestAnimationFrame(cameraFrame);
  return true;
}

async function cameraFrame() {
  const cam = state.camera;
  if (!cam) return;
  const video = $('video');
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (w && h && state.model) {
    const p = { name: 'camera', w, h, rgba: readPixels(video, w, h), proxy: null, notes: [], live: true };
    state.photo = p;
    state.cache = {};
    try {
      state.alpha = await infer(p);
    } catch (e) {
      stopCamera();
      return fail(e.message);
    }
    if (state.camera !== cam) return; // stopped meanwhile
    render();
    cam.times.push(state.inferenceMs);
    if (cam.times.length > 30) cam.times.shift();
    cam.frames++;
    if (cam.priors.fedPrior) cam.priorFrames++;
    showStats();
  }
  requestAnimationFrame(cameraFrame);
}

function stopCamera() {
  const cam = state.camera;
  if (!cam) return;
  state.camera = null;
  cam.stream.getTracks().forEach((t) => t.stop());
  $('video').srcObject = null;
  $('camera').textContent = 'Camera';
  if (document.body.dataset.state === 'live') setState('done', '');
}

// ---------------------------------------------------------------------------------------
// wiring
// ---------------------------------------------------------------------------------------
async function openBackgroundImage(file) {
  let bitmap;
  try {
    bitmap = await decodeImage(file);
  } catch (e) {
    return fail(e.message);
  }
  const [w, h] = fitWithin(bitmap.width, bitmap.height, LIMITS.effectsMaxSide);
  state.bgImage = { w, h, rgb: I.rgbaToRgb(readPixels(bitmap, w, h), w, h) };
  bitmap.close();
  delete state.cache.bgImage;
  $('bg-image').checked = true;
  if (state.photo) setNotes(state.photo.notes ?? []);
  return rerender();
}

function routeFiles(files) {
  const list = [...files];
  if (!list.length) return null;
  if (list.some((f) => kindOf(f.name) || f.name.toLowerCase().endsWith('.json'))) return openModelFiles(list);
  return openPhoto(list[0]);
}

function wire() {
  $('model').addEventListener('change', (e) => {
    const entry = state.models.find((m) => m.name === e.target.value);
    if (entry) loadServedModel(entry);
    else if (state.localModel) openModelFiles([state.localModel.modelFile, state.localModel.sidecar]);
  });
  $('model-files').addEventListener('change', (e) => {
    if (e.target.files.length) openModelFiles(e.target.files);
    e.target.value = '';
  });
  $('photo-input').addEventListener('change', (e) => {
    if (e.target.files.length) openPhoto(e.target.files[0]);
    e.target.value = '';
  });
  $('threads').addEventListener('change', () => threadsChanged());
  $('runtime').addEventListener('change', () => runtimeChanged());
  $('camera').addEventListener('click', () => startCamera());
  $('download').addEventListener('click', () => download());
  $('comic').addEventListener('change', () => rerender());
  $('guided').addEventListener('change', () => refineChanged());
  for (const r of document.querySelectorAll('input[name="bg"]')) {
    r.addEventListener('change', () => {
      if (r.value === 'image' && !state.bgImage) $('bg-image-input').click();
      else {
        if (state.photo) setNotes(state.photo.notes ?? []);
        rerender();
      }
    });
  }
  $('bg-image').addEventListener('click', () => {
    if (state.bgImage && $('bg-image').checked) $('bg-image-input').click();
  });
  $('bg-image-input').addEventListener('change', (e) => {
    if (e.target.files.length) openBackgroundImage(e.target.files[0]);
    e.target.value = '';
  });
  $('bg-colour-value').addEventListener('input', () => {
    $('bg-colour').checked = true;
    rerender();
  });
  const stage = $('stage');
  for (const ev of ['dragenter', 'dragover']) {
    document.addEventListener(ev, (e) => {
      e.preventDefault();
      stage.classList.add('dragging');
    });
  }
  document.addEventListener('dragleave', () => stage.classList.remove('dragging'));
  document.addEventListener('drop', (e) => {
    e.preventDefault();
    stage.classList.remove('dragging');
    routeFiles(e.dataTransfer?.files ?? []);
  });
}

function toBase64(typed) {
  const bytes = new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** Median and p90 (nearest rank) of a list of times. */
function summarize(times) {
  const t = [...times].sort((a, b) => a - b);
  const n = t.length;
  const median = n % 2 ? t[n >> 1] : (t[n / 2 - 1] + t[n / 2]) / 2;
  return { median, p90: t[Math.max(0, Math.ceil(0.9 * n) - 1)], min: t[0], max: t[n - 1] };
}

/** Steady-state inference time (ms) of the loaded model: `runs` timed runs on the current
 *  photo's model input after `warmups` untimed ones; null when another model is chosen meanwhile. */
async function measure(runs = STEADY.runs, warmups = STEADY.warmups) {
  const m = state.model;
  const p = state.photo;
  if (!m || !p) throw new Error('load a model and a photo first');
  const src = p.proxy ?? p;
  const x = engineInput(m, src);
  const shape = C.inputShape(m.contract);
  const times = [];
  for (let i = 0; i < warmups + runs; i++) {
    if (state.model !== m) return null; // another model was chosen meanwhile: its own figures follow
    const t0 = performance.now();
    try {
      await m.engine.run(x, shape);
    } catch (e) {
      if (state.model !== m) return null;
      throw new Error(`${m.engine.backend} failed while timing ${m.name}: ${e.message}`);
    }
    if (i >= warmups) times.push(performance.now() - t0);
  }
  return { ...summarize(times), runs, warmups, threads: m.engine.threads, backend: m.engine.backend };
}

/** For scripts: the steady-state figures of `frames` runs, with the page's first-call figure. */
async function bench(frames = STEADY.runs, warmup = STEADY.warmups) {
  const t = await measure(frames, warmup);
  if (!t) throw new Error('another model was chosen while timing');
  return { ...t, frames, first: state.timing?.first ?? null, crossOriginIsolated: THREADING.isolated };
}

// Hooks for the automated browser test (tests/test_web_demo.py drives the page with them
// and with its real controls); not needed to use the page.
window.edgemattingDemo = {
  state,
  LIMITS,
  alphaBase64: () => (state.alpha ? toBase64(state.alpha) : null),
  rawBase64: () => (state.raw ? toBase64(state.raw) : null),
  outputBase64: () => (state.output ? toBase64(state.output) : null),
  photoBase64: () => (state.photo ? toBase64(state.photo.rgba) : null),
  photoSize: () => (state.photo ? [state.photo.w, state.photo.h] : null),
  /** MediaPipe's last input image (RGBA bytes, model size), null for a tensor runtime. */
  inputImageBase64: () => (state.input instanceof ImageData ? toBase64(state.input.data) : null),
  /** The figures on the page for the loaded model: first call, steady median and p90 (ms). */
  timing: () => (state.model && state.timing ? {
    model: state.model.name, runtime: state.model.engine.runtime, backend: state.model.engine.backend,
    threads: state.model.engine.threads,
    crossOriginIsolated: THREADING.isolated, ...state.timing,
  } : null),
  threading: () => ({ ...THREADING, chosen: chosenThreads() }),
  bench,
};

setupThreads();
setupRuntime();
wire();
if (window.__pendingProblem) {
  fail(window.__pendingProblem);
} else {
  setState('starting', 'Loading the model list…');
  loadIndex();
}
