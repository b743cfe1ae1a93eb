// The two browser runtimes behind one small interface:
//
//   const engine = await openEngine(kind, bytes, fileName)   // kind: 'tflite' | 'onnx'
//   engine.inputs / engine.outputs: [{name, dtype, shape}]
//   const raw = await engine.run(typedArray, shape)          // -> typed array (first output)
//   engine.backend                                            // shown on the page
//
// .tflite runs on LiteRT.js (@litertjs/core) and .onnx on onnxruntime-web, both on their
// WebAssembly CPU backend with one thread (the page is not cross-origin isolated, so no
// wasm threads; the same as the 1-thread figures of the Python bench). Their wasm files
// are served by `edgematting web-demo` from node_modules (/vendor/...), never a CDN.
//
// A model the runtime cannot load raises EngineError with the runtime's own reason (which
// names the op or tensor type it lacks) plus whatever it logged while trying.

export const VENDOR = new URL('../vendor/', import.meta.url).href;
export const VERSIONS = { litert: '2.5.3', ort: '1.30.0' }; // as pinned in package.json

export class EngineError extends Error {
  constructor(message) {
    super(message);
    this.name = 'EngineError';
  }
}

/** Run `fn` while collecting what the runtime logs through console.error / console.warn. */
async function capturingLogs(fn) {
  const logs = [];
  const saved = { error: console.error, warn: console.warn };
  const keep = (orig) => (...a) => {
    logs.push(a.map(String).join(' '));
    orig.apply(console, a);
  };
  console.error = keep(saved.error);
  console.warn = keep(saved.warn);
  try {
    return { value: await fn(), logs };
  } catch (e) {
    e.logs = logs;
    throw e;
  } finally {
    console.error = saved.error;
    console.warn = saved.warn;
  }
}

function reasonOf(e) {
  let msg = e && e.message ? e.message : String(e);
  // LiteRT logs its INFO lines through console.error too, and start-up warnings about
  // accelerators this page does not use (NPU, WebGPU): keep the rest
  const noise = /^\s*INFO\b|NPU accelerator|WebGPU|GPU adapter/;
  const logged = (e && e.logs ? e.logs : []).filter((l) => l && !noise.test(l) && !msg.includes(l)).slice(-3);
  if (logged.length) msg += ` (runtime log: ${logged.join(' | ')})`;
  return msg;
}

let litertPromise = null;

async function loadLiteRtModule() {
  const mod = await import('@litertjs/core');
  if (!litertPromise) litertPromise = mod.loadLiteRt(`${VENDOR}@litertjs/core/wasm/`);
  await litertPromise;
  return mod;
}

class LiteRtEngine {
  static async open(bytes, fileName) {
    let mod;
    try {
      mod = await loadLiteRtModule();
    } catch (e) {
      litertPromise = null;
      throw new EngineError(`LiteRT.js ${VERSIONS.litert} did not start in this browser: ${reasonOf(e)}`);
    }
    let model;
    try {
      ({ value: model } = await capturingLogs(() => mod.loadAndCompile(new Uint8Array(bytes), { accelerator: 'wasm' })));
    } catch (e) {
      throw new EngineError(`LiteRT.js ${VERSIONS.litert} cannot run ${fileName}: ${reasonOf(e)}`);
    }
    const engine = new LiteRtEngine();
    engine.mod = mod;
    engine.model = model;
    const details = (list) => list.map((d) => ({ name: d.name, dtype: d.dtype, shape: Array.from(d.shape) }));
    engine.inputs = details(model.getInputDetails());
    engine.outputs = details(model.getOutputDetails());
    const threads = model.options?.cpuOptions?.numThreads ?? 1;
    engine.backend = `LiteRT.js ${VERSIONS.litert} · wasm (XNNPack, ${threads} thread${threads === 1 ? '' : 's'})`;
    engine.kind = 'tflite';
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

let ortModule = null;

async function loadOrt() {
  if (!ortModule) {
    const ort = await import('onnxruntime-web');
    ort.env.wasm.wasmPaths = `${VENDOR}onnxruntime-web/dist/`;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.logLevel = 'error';
    ortModule = ort;
  }
  return ortModule;
}

class OrtEngine {
  static async open(bytes, fileName) {
    let ort;
    try {
      ort = await loadOrt();
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
    engine.backend = `onnxruntime-web ${VERSIONS.ort} · wasm (1 thread)`;
    engine.kind = 'onnx';
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

/** 'tflite' or 'onnx' from a file name; null for anything else. */
export function kindOf(fileName) {
  const n = fileName.toLowerCase();
  if (n.endsWith('.tflite')) return 'tflite';
  if (n.endsWith('.onnx')) return 'onnx';
  return null;
}

export async function openEngine(kind, bytes, fileName) {
  if (kind === 'tflite') return LiteRtEngine.open(bytes, fileName);
  if (kind === 'onnx') return OrtEngine.open(bytes, fileName);
  throw new EngineError(`${fileName}: the browser runs .tflite (LiteRT.js) and .onnx (onnxruntime-web) models only`);
}

/**
 * Does the sidecar describe this model? Compares the input and output tensors the runtime
 * reports with the sidecar contract; returns a list of differences (empty when they agree).
 */
export function contractMismatches(engine, c, inputShape) {
  const problems = [];
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
