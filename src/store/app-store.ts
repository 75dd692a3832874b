// What the page shows, fed by the model worker's messages. Views read this store and call its actions;
// they never talk to the worker (and never to tfjs) themselves.
import { create } from 'zustand';
import { ModelWorkerClient, WorkerRequestError } from '../worker/client';
import type {
  BackendChoice, BackendInfo, FileProgress, GenerateOptions, GenerateResult, ModelSource, ModelSummary, TopToken, WorkerErrorInfo, WorkerEvent,
} from '../worker/protocol';
import { fetchCatalog, type Catalog } from './catalog';
import { readLaunchOptions, writeLaunchOptions, type LaunchOptions } from './launch-options';

export type Phase = 'idle' | 'running' | 'ready' | 'error';

export interface BackendState {
  phase: Phase;
  choice: BackendChoice;
  info?: BackendInfo;
  error?: WorkerErrorInfo;
}

export interface ModelState {
  phase: Phase;
  source?: ModelSource;
  files: FileProgress[];
  /** What the worker is doing after the downloads (reading weights, uploading to the GPU, ...). */
  stage?: string;
  summary?: ModelSummary;
  error?: WorkerErrorInfo;
}

export interface GenerationState {
  phase: Phase;
  prompt: string;
  /** The completion so far while generating; the final text once done. */
  completion: string;
  result?: GenerateResult;
  topk?: TopToken[];
  error?: WorkerErrorInfo;
}

export interface AppState {
  launch: LaunchOptions;
  catalog: Catalog | { status: 'loading' };
  backend: BackendState;
  model: ModelState;
  generation: GenerationState;
  options: GenerateOptions & { topKShown: number };
  notice?: string;
  /** Bumped whenever the cache may have changed (a load finished, the cache was cleared). */
  cacheEpoch: number;

  start(): Promise<void>;
  setBackendChoice(choice: BackendChoice): Promise<void>;
  loadModel(source: ModelSource, opts?: { remember?: boolean }): Promise<void>;
  generate(prompt: string): Promise<void>;
  setOptions(patch: Partial<AppState['options']>): void;
  clearCache(): Promise<void>;
  /** Files of a Hub model already in the browser cache (0 when unknown or none). */
  cachedFileCount(source: ModelSource): Promise<number>;
  /**
   * After a fault (a lost GPU device): a fresh worker on `choice`, and the current model loaded again. Resolves to
   * whether the model is ready; the backend it ended up on is in `backend.info`. See src/store/recovery.ts.
   */
  restartAfterFault(choice: BackendChoice, opts?: { testFailWebgpu?: boolean }): Promise<boolean>;
}

const asInfo = (e: unknown): WorkerErrorInfo =>
  e instanceof WorkerRequestError ? e.info : { kind: 'Error', message: e instanceof Error ? e.message : String(e) };

const emptyGeneration: GenerationState = { phase: 'idle', prompt: '', completion: '' };

let client: ModelWorkerClient | null = null;

/** The running model worker (null before start). Other stores (editing, weights) send their requests through it. */
export function currentWorker(): ModelWorkerClient | null {
  return client;
}

let workerEventListener: ((event: WorkerEvent, from: ModelWorkerClient) => void) | null = null;
/** Who handles what the worker reports outside requests (src/store/recovery.ts registers itself). */
export function onWorkerEvent(fn: (event: WorkerEvent, from: ModelWorkerClient) => void): void {
  workerEventListener = fn;
}
let appStarted = false;
// Each load/generate gets a ticket; results for a superseded ticket are dropped so a slow, older request
// can never overwrite what a newer one showed.
let loadTicket = 0;
let generateTicket = 0;

export const useApp = create<AppState>()((set, get) => {
  async function startWorker(choice: BackendChoice, testFailWebgpu?: boolean): Promise<boolean> {
    client?.terminate();
    const c = new ModelWorkerClient();
    client = c;
    c.onEvent = (event) => {
      if (client === c) workerEventListener?.(event, c);
    };
    set({ backend: { phase: 'running', choice } });
    try {
      const info = await c.request({
        type: 'init',
        backend: choice,
        wasmBaseUrl: new URL('tfjs-wasm/', document.baseURI).href,
        hubBaseUrl: get().launch.hubBaseUrl,
        ...(testFailWebgpu && { testFailWebgpu }),
      });
      if (client === c) set({ backend: { phase: 'ready', choice, info } });
      return client === c;
    } catch (e) {
      if (client === c) set({ backend: { phase: 'error', choice, error: asInfo(e) } });
      return false;
    }
  }

  function updateFile(ticket: number, file: FileProgress): void {
    if (ticket !== loadTicket) return;
    const files = get().model.files.slice();
    const i = files.findIndex((f) => f.file === file.file);
    if (i >= 0) files[i] = file;
    else files.push(file);
    set({ model: { ...get().model, files } });
  }

  return {
    launch: { model: null, backend: 'auto' },
    catalog: { status: 'loading' },
    backend: { phase: 'idle', choice: 'auto' },
    model: { phase: 'idle', files: [] },
    generation: emptyGeneration,
    cacheEpoch: 0,
    options: { maxNewTokens: 16, temperature: 0, topK: 0, seed: 1, topKShown: 10 },

    async start() {
      if (appStarted) return; // React StrictMode runs mount effects twice in development
      appStarted = true;
      const launch = readLaunchOptions(location.search, document.baseURI);
      set({ launch });
      const [started, catalog] = await Promise.all([startWorker(launch.backend), fetchCatalog(document.baseURI)]);
      set({ catalog });
      if (!started) return;
      if (launch.modelError) {
        // The link named a model we cannot read: say so rather than quietly loading something else.
        set({ model: { phase: 'error', files: [], error: { kind: 'LinkError', message: launch.modelError } } });
        return;
      }
      let initial = launch.model;
      if (!initial && catalog.status === 'ready' && catalog.defaultName) {
        const entry = catalog.models.find((m) => m.name === catalog.defaultName)!;
        initial = { kind: 'url', url: new URL(entry.ref, document.baseURI).href, label: entry.ref };
      }
      if (initial) await get().loadModel(initial, { remember: false });
    },

    async setBackendChoice(choice) {
      writeLaunchOptions({ backend: choice });
      set({ launch: { ...get().launch, backend: choice }, generation: emptyGeneration });
      const source = get().model.source;
      loadTicket++; // whatever was loading belongs to the old worker
      set({ model: { phase: 'idle', files: [], source } });
      if ((await startWorker(choice)) && source) await get().loadModel(source, { remember: false });
    },

    async loadModel(source, opts = {}) {
      const c = client;
      if (!c) return;
      const ticket = ++loadTicket;
      generateTicket++;
      set({ model: { phase: 'running', source, files: [], stage: 'Fetching files…' }, generation: emptyGeneration, notice: undefined });
      if (opts.remember !== false) writeLaunchOptions({ model: source });
      try {
        const summary = await c.request({ type: 'load', source }, (p) => {
          if (p.stage === 'download') updateFile(ticket, p.file);
          else if (p.stage === 'status' && ticket === loadTicket) set({ model: { ...get().model, stage: p.message } });
        });
        if (ticket === loadTicket) {
          // Optional files the model does not have (a 404 on model.safetensors in a sharded checkpoint, say) were
          // started but never finished; once the model is ready they are just noise.
          const files = get().model.files.filter((f) => f.done);
          set({ model: { ...get().model, phase: 'ready', stage: undefined, summary, files }, cacheEpoch: get().cacheEpoch + 1 });
        }
      } catch (e) {
        if (ticket === loadTicket) set({ model: { ...get().model, phase: 'error', stage: undefined, error: asInfo(e) } });
      }
    },

    async generate(prompt) {
      const c = client;
      if (!c || get().model.phase !== 'ready') return;
      const ticket = ++generateTicket;
      const { options } = get();
      set({ generation: { phase: 'running', prompt, completion: '' } });
      const mine = () => ticket === generateTicket;
      try {
        // The worker runs requests in order: the next-token chart arrives first, then the streamed completion.
        const topkPromise = c.request({ type: 'topk', prompt, k: options.topKShown }).then((topk) => {
          if (mine()) set({ generation: { ...get().generation, topk } });
        });
        const { topKShown: _shown, ...genOptions } = options;
        const result = await c.request({ type: 'generate', prompt, options: genOptions }, (p) => {
          if (p.stage === 'token' && mine()) set({ generation: { ...get().generation, completion: p.text } });
        });
        await topkPromise;
        if (mine()) set({ generation: { ...get().generation, phase: 'ready', completion: result.completion, result } });
      } catch (e) {
        if (mine()) set({ generation: { ...get().generation, phase: 'error', error: asInfo(e) } });
      }
    },

    setOptions(patch) {
      set({ options: { ...get().options, ...patch } });
    },

    async cachedFileCount(source) {
      try {
        return client ? (await client.request({ type: 'cacheStatus', source })).cachedFiles : 0;
      } catch {
        return 0; // only a hint in the form; a real problem shows when loading
      }
    },

    async restartAfterFault(choice, opts = {}) {
      const source = get().model.source;
      loadTicket++; // whatever the old worker was loading is gone with it
      generateTicket++;
      set({ model: { phase: 'idle', files: [], source }, generation: emptyGeneration });
      if (!(await startWorker(choice, opts.testFailWebgpu))) return false;
      if (!source) return true;
      await get().loadModel(source, { remember: false });
      return get().model.phase === 'ready';
    },

    async clearCache() {
      if (!client) return;
      try {
        const { deleted } = await client.request({ type: 'clearCache' });
        set({ cacheEpoch: get().cacheEpoch + 1 });
        set({ notice: deleted ? 'Downloaded models were removed from this browser’s cache.' : 'The cache was already empty.' });
      } catch (e) {
        set({ notice: `Could not clear the cache: ${asInfo(e).message}` });
      }
    },
  };
});
