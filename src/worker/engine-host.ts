// What the worker does with the engine: one backend, at most one loaded model, and the operations the page
// asks for. This is the only place in the app that imports the model engine (src/model/).
import {
  clearModelCache, DEFAULT_HUB_URL, hubSource, initBackend, listCachedFiles, loadModel, setWasmPath, urlSource, webgpuAvailable,
  type LoadedModel, type ProgressEvent as EngineProgress,
} from '../model';
import { watchDevice } from './gpu';
import { checkModelFits } from './memory-check';
import type {
  BackendChoice, BackendInfo, BackendName, GenerateOptions, GenerateResult, GpuLimits, ModelSource, ModelSummary, ProgressEvent, TopToken, WorkerEvent,
} from './protocol';

type Emit = (event: ProgressEvent) => void;

const NO_WEBGPU_NOTE =
  'This browser does not offer WebGPU, so the model runs on the CPU through WebAssembly (WASM). Everything works, only ' +
  'more slowly. Recent Chrome and Edge have WebGPU on desktop; elsewhere it may need to be switched on in the browser’s settings.';
const WEBGPU_FAILED_NOTE =
  'This browser offers WebGPU, but the model could not start on it, so it runs on the CPU through WebAssembly (WASM) ' +
  'instead: everything works, only more slowly. Updating the browser or the graphics driver may help.';
const INSECURE_NOTE =
  'WebGPU is only offered to secure pages (https:// or localhost), so the model runs on the CPU through WebAssembly ' +
  '(WASM) here: everything works, only more slowly. Open the app over https or on localhost to use the GPU.';
const CHOSE_WASM_NOTE = 'WASM was chosen on purpose; untick “Use WASM” to run on the GPU with WebGPU.';

let hubBaseUrl = DEFAULT_HUB_URL;
let loaded: LoadedModel | null = null;
let backendName: BackendName = 'cpu';
let gpuLimits: GpuLimits | null = null;

export interface InitOptions {
  hubOverride?: string;
  /** e2e build only: behave as if WebGPU could not start (tests the fallback after a GPU that does not come back) */
  testFailWebgpu?: boolean;
  /** where device loss and stray GPU errors are reported (the worker posts them to the page) */
  onEvent?: (event: WorkerEvent) => void;
}

export async function init(choice: BackendChoice, wasmBaseUrl: string, opts: InitOptions = {}): Promise<BackendInfo> {
  // A different Hub base URL is only ever honoured in the e2e test build (see vite.config.ts);
  // production builds cannot be pointed anywhere but huggingface.co.
  const e2e = import.meta.env.MODE === 'e2e';
  hubBaseUrl = e2e && opts.hubOverride ? opts.hubOverride : DEFAULT_HUB_URL;
  setWasmPath(wasmBaseUrl);
  const gpu = await webgpuAvailable();
  let backend: BackendName;
  if (e2e && opts.testFailWebgpu && choice !== 'wasm') {
    if (choice === 'webgpu') throw new Error('tfjs could not initialise the webgpu backend (simulated by the e2e test hook)');
    backend = await initBackend('wasm');
  } else {
    backend = await initBackend(choice);
  }
  backendName = backend;
  gpuLimits = watchDevice(opts.onEvent ?? (() => {}));
  const reason = fallbackReason(backend, choice, gpu);
  return { backend, requested: choice, webgpuAvailable: gpu, fallbackReason: reason, ...(gpuLimits && { gpuLimits }) };
}

/** Why the model is not on WebGPU, in words a user can act on (undefined when it is). */
function fallbackReason(backend: BackendName, choice: BackendChoice, gpu: boolean): string | undefined {
  if (backend === 'webgpu') return undefined;
  if (backend === 'cpu') return `Neither WebGPU nor WebAssembly could start here, so the model runs in plain JavaScript (very slow). ${NO_WEBGPU_NOTE}`;
  if (choice === 'wasm' && gpu) return CHOSE_WASM_NOTE;
  if (gpu) return WEBGPU_FAILED_NOTE;
  return globalThis.isSecureContext === false ? INSECURE_NOTE : NO_WEBGPU_NOTE;
}

/** Turns the engine's transformers.js-style events into per-file progress, at most ~10 updates a second per file. */
function progressRelay(emit: Emit): (e: EngineProgress) => void {
  const lastSent = new Map<string, number>();
  const sizes = new Map<string, { loaded: number; total: number }>();
  return (e) => {
    if (e.status === 'initiate') {
      emit({ stage: 'download', file: { file: e.file, loaded: 0, total: 0, fromCache: false, done: false } });
    } else if (e.status === 'progress') {
      sizes.set(e.file, { loaded: e.loaded, total: e.total });
      const now = performance.now();
      if (now - (lastSent.get(e.file) ?? -Infinity) < 100) return;
      lastSent.set(e.file, now);
      emit({ stage: 'download', file: { file: e.file, loaded: e.loaded, total: e.total, fromCache: false, done: false } });
    } else if (e.status === 'done') {
      const size = sizes.get(e.file) ?? { loaded: 0, total: 0 };
      emit({ stage: 'download', file: { file: e.file, ...size, fromCache: e.fromCache, done: true } });
    }
  };
}

export async function load(source: ModelSource, emit: Emit): Promise<ModelSummary> {
  const t0 = performance.now();
  // Free the previous model's GPU memory before the next one arrives.
  loaded?.model.dispose();
  loaded = null;
  const engineSource = source.kind === 'hub' ? hubSource(source.id, source.revision, hubBaseUrl) : urlSource(source.url);
  const doneFiles: { fromCache: boolean }[] = [];
  const relay = progressRelay(emit);
  emit({ stage: 'status', message: 'Fetching files…' });
  const m = await loadModel(engineSource, {
    // Refuse a model this backend cannot hold as soon as config.json is read, before any weights are downloaded.
    beforeWeights: (config) => void checkModelFits(config, backendName, gpuLimits),
    // Only Hub downloads go into the Cache API. A same-origin folder is part of this deployment: caching it
    // forever would keep serving old weights after the app (and its shipped model) is updated.
    useCache: source.kind === 'hub',
    onProgress: (e) => {
      if (e.status === 'done') doneFiles.push({ fromCache: e.fromCache });
      relay(e);
    },
  });
  loaded = m;
  const c = m.config;
  const parameters = m.model.weightNames().reduce((n, name) => n + m.model.getWeight(name).size, 0);
  return {
    label: source.kind === 'hub' ? source.id : source.label,
    nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, vocabSize: c.vocabSize, nPositions: c.nPositions,
    parameters,
    dtypes: [...m.dtypes],
    fromCache: doneFiles.length > 0 && doneFiles.every((f) => f.fromCache),
    loadMs: performance.now() - t0,
  };
}

/** The loaded model, for the editing host (edit-host.ts), which keeps its session beside it. */
export function loadedModel(): LoadedModel | null {
  return loaded;
}

function requireModel(): LoadedModel {
  if (!loaded) throw new Error('No model is loaded yet: load one first.');
  return loaded;
}

function encodePrompt(m: LoadedModel, prompt: string): number[] {
  const ids = m.tokenizer.encode(prompt);
  if (ids.length === 0) throw new Error('The prompt is empty after tokenisation: type some text.');
  if (ids.length >= m.config.nPositions) {
    throw new Error(`The prompt is ${ids.length} tokens long; this model reads at most ${m.config.nPositions} tokens.`);
  }
  return ids;
}

export async function generate(prompt: string, options: GenerateOptions, emit: Emit): Promise<GenerateResult> {
  const m = requireModel();
  const promptTokens = encodePrompt(m, prompt);
  const t0 = performance.now();
  const soFar: number[] = [];
  const newTokens = await m.model.generate(promptTokens, {
    maxNewTokens: options.maxNewTokens,
    temperature: options.temperature,
    topK: options.topK,
    seed: options.seed,
    eosTokenId: m.eosTokenId,
    onToken: (id) => {
      soFar.push(id);
      emit({ stage: 'token', text: m.tokenizer.decode(soFar), newTokens: soFar.length });
    },
  });
  return { prompt, completion: m.tokenizer.decode(newTokens), promptTokens, newTokens, ms: performance.now() - t0 };
}

export async function topk(prompt: string, k: number): Promise<TopToken[]> {
  const m = requireModel();
  const top = await m.model.topNextTokens(encodePrompt(m, prompt), k);
  return top.map((t) => ({ id: t.id, text: m.tokenizer.decode([t.id]), prob: t.prob }));
}

export async function cacheStatus(source: ModelSource): Promise<{ cachedFiles: number }> {
  if (source.kind !== 'hub') return { cachedFiles: 0 };
  return { cachedFiles: (await listCachedFiles(hubSource(source.id, source.revision, hubBaseUrl))).length };
}

export async function clearCache(): Promise<{ deleted: boolean }> {
  const had = (await listCachedFiles()).length;
  await clearModelCache();
  return { deleted: had > 0 };
}
