// The message protocol between the page and the model worker. The worker owns the engine (tfjs, weights,
// tokenizer); the page only ever sees these plain, structured-clonable objects.
//
// Every request carries an `id`. The worker answers with zero or more `progress` events for that id and then
// exactly one `result` or `error`. Requests are handled one at a time, in order, so a `generate` sent while a
// `load` is running simply waits for it.

export type BackendChoice = 'auto' | 'webgpu' | 'wasm';
// 'cpu' (tfjs's plain-JS backend) only appears when even WASM could not start.
export type BackendName = 'webgpu' | 'wasm' | 'cpu';

/** Where a model comes from: a folder URL (same-origin, e.g. models/facts-gpt/) or a Hugging Face Hub id. */
export type ModelSource =
  | { kind: 'url'; url: string; label: string }
  | { kind: 'hub'; id: string; revision: string };

export interface BackendInfo {
  backend: BackendName;
  /** What was asked for: 'auto' picks WebGPU when the browser offers it. */
  requested: BackendChoice;
  /** Whether this browser exposes WebGPU at all (navigator.gpu and an adapter). */
  webgpuAvailable: boolean;
  /** Why WebGPU is not in use, in words a user can act on; absent when it is. */
  fallbackReason?: string;
}

export interface ModelSummary {
  label: string;
  nLayer: number;
  nHead: number;
  nEmbd: number;
  vocabSize: number;
  nPositions: number;
  parameters: number;
  /** How the checkpoint stored its weights (F32, F16, BF16); they always run in fp32. */
  dtypes: string[];
  /** True when every file came from the browser's Cache API (nothing was downloaded). */
  fromCache: boolean;
  loadMs: number;
}

/** One file's download state, as shown in the per-file progress list. */
export interface FileProgress {
  file: string;
  loaded: number;
  /** Bytes expected; 0 when the server did not say (no Content-Length). */
  total: number;
  fromCache: boolean;
  done: boolean;
}

export interface TopToken {
  id: number;
  /** The decoded token text, exactly as the tokenizer produces it (leading spaces kept). */
  text: string;
  prob: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 means greedy decoding. */
  temperature: number;
  /** Sample only among the k most likely tokens; 0 means no limit. Ignored when greedy. */
  topK: number;
  /** Seed for sampled decoding so a run can be repeated; ignored when greedy. */
  seed?: number;
}

export interface GenerateResult {
  prompt: string;
  completion: string;
  promptTokens: number[];
  newTokens: number[];
  ms: number;
}

export interface WorkerErrorInfo {
  message: string;
  /** The model file the problem is in, when the engine names one. */
  file?: string;
  /** The engine's error class name (ModelFileError, ...), for code that wants to branch. */
  kind: string;
}

export type WorkerRequest =
  | { id: number; type: 'init'; backend: BackendChoice; wasmBaseUrl: string; hubBaseUrl?: string }
  | { id: number; type: 'load'; source: ModelSource }
  | { id: number; type: 'generate'; prompt: string; options: GenerateOptions }
  | { id: number; type: 'topk'; prompt: string; k: number }
  | { id: number; type: 'cacheStatus'; source: ModelSource }
  | { id: number; type: 'clearCache' };

/** The result type of each request type. */
export interface ResultOf {
  init: BackendInfo;
  load: ModelSummary;
  generate: GenerateResult;
  topk: TopToken[];
  /** How many of the source's files are in the browser's Cache API (0 for folder URLs, which are not cached). */
  cacheStatus: { cachedFiles: number };
  clearCache: { deleted: boolean };
}

export type ProgressEvent =
  | { stage: 'download'; file: FileProgress }
  | { stage: 'status'; message: string }
  | { stage: 'token'; text: string; newTokens: number };

export type WorkerResponse =
  | { id: number; type: 'progress'; progress: ProgressEvent }
  | { id: number; type: 'result'; result: ResultOf[keyof ResultOf] }
  | { id: number; type: 'error'; error: WorkerErrorInfo };

export type RequestType = WorkerRequest['type'];
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request without its id: what callers of the client pass in. */
export type RequestBody = DistributiveOmit<WorkerRequest, 'id'>;
