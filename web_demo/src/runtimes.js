// The three browser runtimes behind one small interface:
//
//   const engine = await openEngine(kind, bytes, fileName, { threads, runtime })
//       // kind: 'tflite' | 'onnx'; runtime (RUNTIMES): 'litert' | 'mediapipe' for .tflite, 'ort' for .onnx
//   engine.inputs / engine.outputs: [{name, dtype, shape}] (null: the runtime does not say)
//   engine.takes: 'tensor' (run(typedArray, shape) -> typed array, the first output)
//              or 'image' (run(imageData) -> Float32Array, the confidence mask at the image's size)
//   engine.backend, engine.threads                            // shown on the page
//
// A .tflite can also run on MediaPipe Tasks for web (@mediapipe/tasks-vision), the SDK an app
// bundles: its ImageSegmenter takes an image (not a tensor), normalizes it as the file's
// standard TFLite Model Metadata says, and returns the confidence mask at the image's size.
// The page gives it the same model-size image the other runtimes' input is made from (app.js).
// Its wasm (vision_wasm_internal.*) is single-threaded.
//
// .tflite runs on LiteRT.js (@litertjs/core) and .onnx on onnxruntime-web, both on their
// WebAssembly CPU backend (XNNPack / MLAS, SIMD). `edgematting web-demo` serves the page
// cross-origin isolated (COOP + COEP), so both run on several wasm threads:
//   * LiteRT.js: `loadLiteRt(dir, {threads: true})` loads its threaded build
//     (litert_wasm_threaded_internal.*, which needs relaxed SIMD), and each model is
//     compiled with `cpuOptions: {numThreads}` (so the count can change per model);
//   * onnxruntime-web: `ort.env.wasm.numThreads`, read once when its wasm starts (a
//     different count later needs a page reload: `ortThreadsFixed()`).
// A page that is not cross-origin isolated runs both on one thread (`THREADING`).
// Their wasm files are served by `edgematting web-demo` from node_modules (/vendor/...),
// never a CDN.
//
// A model the runtime cannot load raises EngineError with the runtime's own reason (which
// names the op or tensor type it lacks) plus whatever it logged while trying.

export const VENDOR = new URL('../vendor/', import.meta.url).href;
export const VERSIONS = { litert: '2.5.3', ort: '1.30.0', mediapipe: '0.10.35' }; // as pinned in package.json

/** The runtimes each kind of model can run on: [id, name shown], the first the default. */
export const RUNTIMES = Object.freeze({
  tflite: [['litert', 'LiteRT.js'], ['mediapipe', 'MediaPipe Tasks']],
  onnx: [['ort', 'onnxruntime-web']],
});

/** What this page can do with threads: cross-origin isolated or not, the browser's core count,
 *  and the default thread count, min(4, cores) (1 when the page is not isolated). */
export const THREADING = (() => {
  const isolated = globalThis.crossOriginIsolated === true;
  const cores = Math.max(1, globalThis.navigator?.hardwareConcurrency || 1);
  return Object.freeze({ isolated, cores, max: isolated ? cores : 1, default: isolated ? Math.min(4, cores) : 1 });
})();

export class EngineError extends Error {
  constructor(message) {
    super(message);
    this.name = 'EngineError';
  }
}

/**
 * What LiteRT's wasm prints (its stdout and stderr: TFLite's INFO lines, and the reason for a
 * model it refuses). Emscripten writes both to console.error by default, so a normal run
 * would fill the console with "errors"; the page gives the module its own print/printErr
 * instead (below): the lines are kept here, for the message of a model LiteRT refuses, and
 * shown with console.debug (DevTools' "Verbose" level).
 */
const runtimeLog = [];

function logRuntime(line) {
  runtimeLog.push(String(line));
  if (runtimeLog.length > 200) runtimeLog.splice(0, runtimeLog.length - 200);
  console.debug(`[LiteRT] ${line}`);
}

/** Run `fn`, collecting what the runtime prints meanwhile (LiteRT's own lines and console.warn/error). */
async function capturingLogs(fn) {
  const logs = [];
  const start = runtimeLog.length;
  const saved = { error: console.error, warn: console.warn };
  const keep = (orig) => (...a) => {
    logs.push(a.map(String).join(' '));
    orig.apply(console, a);
  };
  console.error = keep(saved.error);
  console.warn = keep(saved.warn);
  const collect = () => [...runtimeLog.slice(Math.min(start, runtimeLog.length)), ...logs];
  try {
    return { value: await fn(), logs: collect() };
  } catch (e) {
    e.logs = collect();
    throw e;
  } finally {
    console.error = saved.error;
    console.warn = saved.warn;
  }
}

function reasonOf(e) {
  let msg = e && e.message ? e.message : String(e);
  // TFLite's INFO lines, and start-up notes about accelerators this page does not use
  // (NPU, WebGPU): keep the rest
  const noise = /^\s*INFO\b|NPU accelerator|WebGPU|GPU adapter/;
  const logged = (e && e.logs ? e.logs : []).filter((l) => l && !noise.test(l) && !msg.includes(l)).slice(-3);
  if (logged.length) msg += ` (runtime log: ${logged.join(' | ')})`;
  return msg;
}

let litertPromise = null;
let litertBuild = null; // 'threaded' | 'simd' | 'compat': which of LiteRT.js's wasm builds runs

async function startLiteRt(mod) {
  // the relaxed-SIMD builds need relaxed SIMD; the threaded one also SharedArrayBuffer (isolation)
  const relaxed = await mod.supportsFeature('relaxedSimd');
  const threads = THREADING.isolated && relaxed && (await mod.supportsFeature('threads'));
  // Emscripten's Module object: @litertjs/wasm-utils passes `self.Module` to the module
  // factory when it is set (and clears it); print/printErr replace its console.log/error
  // (and are proxied back from its pthread workers)
  globalThis.Module = { print: logRuntime, printErr: logRuntime };
  try {
    await mod.loadLiteRt(`${VENDOR}@litertjs/core/wasm/`, { threads });
  } finally {
    delete globalThis.Module;
  }
  litertBuild = threads ? 'threaded' : relaxed ? 'simd' : 'compat';
}

async function loadLiteRtModule() {
  const mod = await import('@litertjs/core');
  if (!litertPromise) litertPromise = startLiteRt(mod);
  await litertPromise;
  return mod;
}

/** LiteRT.js's build: its threaded build runs any count; the others one thread. */
function liteRtThreads(wanted) {
  return litertBuild === 'threaded' ? Math.max(1, Math.min(wanted, THREADING.cores)) : 1;
}

class LiteRtEngine {
  static async open(bytes, fileName, threads) {
    let mod;
    try {
      mod = await loadLiteRtModule();
    } catch (e) {
      litertPromise = null;
      throw new EngineError(`LiteRT.js ${VERSIONS.litert} did not start in this browser: ${reasonOf(e)}`);
    }
    const numThreads = liteRtThreads(threads);
    let model;
    try {
      ({ value: model } = await capturingLogs(() => mod.loadAndCompile(new Uint8Array(bytes), {
        accelerator: 'wasm', cpuOptions: { numThreads },
      })));
    } catch (e) {
      throw new EngineError(`LiteRT.js ${VERSIONS.litert} cannot run ${fileName}: ${reasonOf(e)}`);
    }
    const engine = new LiteRtEngine();
    engine.mod = mod;
    engine.model = model;
    const details = (list) => list.map((d) => ({ name: d.name, dtype: d.dtype, shape: Array.from(d.shape) }));
    engine.inputs = details(model.getInputDetails());
    engine.outputs = details(model.getOutputDetails());
    engine.threads = model.options?.cpuOptions?.numThreads ?? numThreads;
    const build = { threaded: 'relaxed SIMD, threads', simd: 'relaxed SIMD', compat: 'compat build' }[litertBuild];
    engine.backend = `LiteRT.js ${VERSIONS.litert} · wasm (XNNPack, ${build}, ${plural(engine.threads, 'thread')})`;
    engine.kind = 'tflite';
    engine.runtime = 'litert';
    engine.takes = 'tensor';
    return engine;
  }

  async run(data, shape) {
    const input = new this.mod.Tensor(data, shape);
    let outputs;
    try {
      outputs = await this.model.run(input);
    } finally {
      input.delete();
    }
    try {
      return await outputs[0].data();
    } finally {
      for (const t of outputs) t.delete();
    }
  }

  close() {
    this.model?.delete();
    this.model = null;
  }
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

let ortModule = null;
let ortThreads = null; // the count onnxruntime-web's wasm started with (fixed from then on)

async function loadOrt(threads) {
  if (!ortModule) {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = `${VENDOR}onnxruntime-web/dist/`;
    ort.env.wasm.numThreads = THREADING.isolated ? Math.max(1, Math.min(threads, THREADING.cores)) : 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    ortModule = ort;
  }
  return ortModule;
}

/** The thread count onnxruntime-web started with, or null before its first model: it reads
 *  `ort.env.wasm.numThreads` once, so another count needs a page reload. */
export function ortThreadsFixed() {
  return ortThreads;
}

class OrtEngine {
  static async open(bytes, fileName, threads) {
    let ort;
    try {
      ort = await loadOrt(threads);
    } catch (e) {
      throw new EngineError(`onnxruntime-web ${VERSIONS.ort} did not start in this browser: ${reasonOf(e)}`);
    }
    let session;
    try {
      ({ value: session } = await capturingLogs(() => ort.InferenceSession.create(new Uint8Array(bytes), {
        executionProviders: ['wasm'], graphOptimizationLevel: 'all',
      })));
    } catch (e) {
      throw new EngineError(`onnxruntime-web ${VERSIONS.ort} cannot run ${fileName}: ${reasonOf(e)}`);
    } finally {
      ortThreads ??= ort.env.wasm.numThreads; // its wasm read the count when it started (1 if not isolated)
    }
    const engine = new OrtEngine();
    engine.ort = ort;
    engine.session = session;
    const details = (names, meta) => names.map((name, i) => ({
      name,
      dtype: meta?.[i]?.type ?? 'unknown',
      shape: (meta?.[i]?.shape ?? []).map((d) => (typeof d === 'number' ? d : -1)),
    }));
    engine.inputs = details(session.inputNames, session.inputMetadata);
    engine.outputs = details(session.outputNames, session.outputMetadata);
    engine.threads = ortThreads;
    engine.backend = `onnxruntime-web ${VERSIONS.ort} · wasm (SIMD, ${plural(engine.threads, 'thread')})`;
    engine.kind = 'onnx';
    engine.runtime = 'ort';
    engine.takes = 'tensor';
    return engine;
  }

  async run(data, shape) {
    const dtype = data instanceof Float32Array ? 'float32' : data instanceof Uint8Array ? 'uint8' : 'int8';
    const feeds = { [this.session.inputNames[0]]: new this.ort.Tensor(dtype, data, shape) };
    const out = await this.session.run(feeds);
    const t = out[this.session.outputNames[0]];
    const d = t.data;
    for (const k of Object.keys(out)) out[k].dispose?.();
    return d;
  }

  close() {
    this.session?.release?.();
    this.session = null;
  }
}

// ---------------------------------------------------------------------------------------
// MediaPipe Tasks for web: ImageSegmenter
// ---------------------------------------------------------------------------------------
let mediapipeFileset = null;

/** @mediapipe/tasks-vision and its wasm fileset (served from node_modules, /vendor/...). */
async function loadMediaPipe() {
  const mod = await import('@mediapipe/tasks-vision');
  if (!mediapipeFileset) {
    mediapipeFileset = mod.FilesetResolver.forVisionTasks(`${VENDOR}@mediapipe/tasks-vision/wasm`);
    mediapipeFileset.catch(() => { mediapipeFileset = null; });
  }
  return { mod, fileset: await mediapipeFileset };
}

/** MediaPipe's wasm prints its log lines (glog "I0000 ..."/"W0000 ...", TFLite's "INFO: ...")
 *  with console.error/warn, and the SDK gives no print hook: while it runs, those lines go
 *  to runtimeLog and console.debug instead (as LiteRT's); anything else, glog's E and F
 *  lines included, stays an error or warning. */
const MEDIAPIPE_LOG_LINE = /^\s*(?:[IW]\d{4} [\d:.]+\s|INFO: |WARNING: (?:Created|Replacing))/;

function quietMediaPipe(fn) {
  const saved = { error: console.error, warn: console.warn };
  const route = (orig) => (...a) => {
    const line = a.map(String).join(' ');
    if (MEDIAPIPE_LOG_LINE.test(line)) {
      runtimeLog.push(line);
      if (runtimeLog.length > 200) runtimeLog.splice(0, runtimeLog.length - 200);
      console.debug(`[MediaPipe] ${line}`);
    } else orig.apply(console, a);
  };
  console.error = route(saved.error);
  console.warn = route(saved.warn);
  const restore = () => {
    console.error = saved.error;
    console.warn = saved.warn;
  };
  let r;
  try {
    r = fn();
  } catch (e) {
    restore();
    throw e;
  }
  if (r && typeof r.then === 'function') return r.finally(restore);
  restore();
  return r;
}

class MediaPipeEngine {
  static async open(bytes, fileName) {
    let mod, fileset;
    try {
      ({ mod, fileset } = await quietMediaPipe(() => loadMediaPipe()));
    } catch (e) {
      throw new EngineError(`MediaPipe Tasks ${VERSIONS.mediapipe} did not start in this browser: ${reasonOf(e)}`);
    }
    let segmenter;
    try {
      ({ value: segmenter } = await capturingLogs(() => quietMediaPipe(() => mod.ImageSegmenter.createFromOptions(fileset, {
        baseOptions: { modelAssetBuffer: new Uint8Array(bytes), delegate: 'CPU' },
        runningMode: 'IMAGE', outputConfidenceMasks: true, outputCategoryMask: false,
      }))));
    } catch (e) {
      // its error is the graph's status, then a source-location trace (and the same again in its log)
      const why = String(e?.message ?? e).split('\n=== Source Location Trace')[0].replace(/[\s.;]+$/, '');
      throw new EngineError(`MediaPipe Tasks ${VERSIONS.mediapipe} cannot run ${fileName}: ${why}.`);
    }
    const engine = new MediaPipeEngine();
    engine.segmenter = segmenter;
    engine.inputs = null; // the ImageSegmenter reports no tensors (only its labels)
    engine.outputs = null;
    engine.labels = segmenter.getLabels();
    engine.threads = 1;
    engine.backend = `MediaPipe Tasks ${VERSIONS.mediapipe} · ImageSegmenter, wasm (CPU, 1 thread)`;
    engine.kind = 'tflite';
    engine.runtime = 'mediapipe';
    engine.takes = 'image';
    return engine;
  }

  /** ImageData (RGBA) -> the first confidence mask, a Float32Array at the image's size. */
  async run(image) {
    const result = quietMediaPipe(() => this.segmenter.segment(image));
    try {
      const mask = result.confidenceMasks?.[0];
      if (!mask) throw new Error('the ImageSegmenter returned no confidence mask');
      if (mask.width !== image.width || mask.height !== image.height) {
        throw new Error(`the ImageSegmenter returned a ${mask.width}x${mask.height} mask for a ${image.width}x${image.height} image`);
      }
      return mask.getAsFloat32Array().slice();
    } finally {
      result.close();
    }
  }

  close() {
    this.segmenter?.close();
    this.segmenter = null;
  }
}

/** 'tflite' or 'onnx' from a file name; null for anything else. */
export function kindOf(fileName) {
  const n = fileName.toLowerCase();
  if (n.endsWith('.tflite')) return 'tflite';
  if (n.endsWith('.onnx')) return 'onnx';
  return null;
}

/** Open `bytes` (a .tflite or .onnx file) on `runtime` (RUNTIMES; default the kind's first)
 *  with `threads` wasm threads (at most). */
export async function openEngine(kind, bytes, fileName, { threads = THREADING.default, runtime = null } = {}) {
  const ids = (RUNTIMES[kind] ?? []).map(([id]) => id);
  if (runtime !== null && ids.length && !ids.includes(runtime)) {
    throw new EngineError(`${fileName}: a ${kind} model runs on ${ids.join(' or ')}, not ${runtime}`);
  }
  if (kind === 'tflite' && runtime === 'mediapipe') return MediaPipeEngine.open(bytes, fileName);
  if (kind === 'tflite') return LiteRtEngine.open(bytes, fileName, threads);
  if (kind === 'onnx') return OrtEngine.open(bytes, fileName, threads);
  throw new EngineError(`${fileName}: the browser runs .tflite (LiteRT.js) and .onnx (onnxruntime-web) models only`);
}

/**
 * Does the sidecar describe this model? Compares the input and output tensors the runtime
 * reports with the sidecar contract; returns a list of differences (empty when they agree).
 */
export function contractMismatches(engine, c, inputShape) {
  const problems = [];
  if (engine.inputs === null) return problems; // MediaPipe Tasks: no tensors to compare
  if (engine.inputs.length !== 1) problems.push(`the model has ${engine.inputs.length} inputs, the sidecar describes one`);
  if (engine.outputs.length < 1) problems.push('the model has no output');
  if (problems.length) return problems;
  const inp = engine.inputs[0];
  const out = engine.outputs[0];
  const fmt = (t) => `${t.dtype} [${t.shape.map((d) => (d < 0 ? '?' : d)).join(', ')}]`;
  const same = (a, b) => a.length === b.length && a.every((d, i) => i === 0 || d < 0 || d === b[i]);
  const want = { dtype: c.dtype, shape: inputShape };
  if (inp.dtype !== want.dtype || !same(inp.shape, want.shape)) {
    problems.push(`the sidecar says input ${fmt(want)}, the model takes ${fmt(inp)}`);
  }
  const known = out.shape.filter((d, i) => i > 0 || d >= 0);
  const count = known.every((d) => d >= 0) ? known.reduce((a, b) => a * b, 1) : null;
  if (out.dtype !== c.outputDtype || (count !== null && count !== c.height * c.width)) {
    problems.push(`the sidecar says output ${c.outputDtype} [1, ${c.height}, ${c.width}, 1], the model gives ${fmt(out)}`);
  }
  return problems;
}
