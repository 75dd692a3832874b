// The message protocol between the page and the model worker. The worker owns the engine (tfjs, weights,
// tokenizer); the page only ever sees these plain, structured-clonable objects.
//
// Every request carries an `id`. The worker answers with zero or more `progress` events for that id and then
// exactly one `result` or `error`. Requests are handled one at a time, in order, so a `generate` sent while a
// `load` is running simply waits for it.

import type { GuardReading } from '../editors/guard_reading';
import type { ScanReport } from '../eval/scan';
import type { WeightsRequest, WeightsResultOf } from './weights-protocol';

export type { GuardReading, ScanReport };

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
  /** The WebGPU device's buffer limits (bytes) when on WebGPU: a model's largest tensor must fit in one buffer. */
  gpuLimits?: GpuLimits;
}

export interface GpuLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

/**
 * Something that happened in the worker outside any request (hardening, issue 7): the WebGPU device was lost (its
 * GPU memory is gone; the page restarts the worker, reloads the model and replays the history), or the device
 * reported an error no request was waiting for (e.g. out of memory while nothing was being loaded or edited).
 */
export type WorkerEvent =
  | { kind: 'gpuLost'; reason: string; message: string }
  | { kind: 'gpuError'; message: string }
  /** made by the page's client, not sent by the worker: the worker died (an error escaped it); requests were failed */
  | { kind: 'workerStopped'; message: string };

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
  /** What can edit this model (absent from older workers): the MEND editor when editor_config.json exists, and fine-tuning. */
  editing?: EditingInfo;
}

// ---- Editing (issue 5) -------------------------------------------------------------------------------------------

export type EditMethod = 'mend' | 'ft';
/** 'both' compares the two methods on the same edit; see edit-host.ts for how (only the MEND edit is kept). */
export type EditMethodChoice = EditMethod | 'both';

export interface EditingInfo {
  methods: EditMethod[];
  /** the weights both methods change (canonical HF names) */
  editedWeights: string[];
  /** Adam steps and learning rate of the fine-tuning baseline (from eval.json beside the model when present) */
  ft: { steps: number; learningRate: number };
  /** why MEND is missing, when it is */
  mendNote?: string;
  /** the model's facts index (facts.json), raw JSON for src/eval/suggest.ts; null when the model has none */
  facts: unknown | null;
  /** what the held-out perplexity is measured on: the model's own held-out prose (facts.json) or a generic paragraph */
  heldOutProse: 'model' | 'generic';
}

/** A further fact of a batch edit (EditRequest.moreFacts). */
export interface BatchFact {
  prompt: string;
  target: string;
  /** the answer the model gave before the edit, when the page knows it (facts.json); else taken from its greedy text */
  originalAnswer?: string;
}

export interface EditRequest {
  prompt: string;
  target: string;
  /**
   * Further facts edited in the same update: a batch edit. MEND sums every fact's rank-1 pieces into one change (with
   * the editor's batch step, editor_config.json lr_scale_batch); fine-tuning trains on all of them together. The
   * paraphrases are scored against the first fact's target; each further fact's own prompt against its own target.
   * At most 9 (src/session MAX_FACTS_PER_EDIT counts the first), no two with the same prompt.
   */
  moreFacts?: BatchFact[];
  method: EditMethodChoice;
  paraphrases: string[];
  neighbours: string[];
  /** the answer the model gave before the edit, when the page knows it (facts.json); else taken from its greedy text */
  originalAnswer?: string;
  maxNewTokens: number;
}

/** One prompt probed on one state of the weights. */
export interface ProbeState {
  /** greedy continuation (text and ids) */
  text: string;
  ids: number[];
  /** teacher-forced probability of the new target / of the original answer (product over their tokens) */
  targetProb: number;
  originalProb: number;
  /** every target token is the argmax under teacher forcing */
  targetIsArgmax: boolean;
}

export interface PromptEval {
  prompt: string;
  before: ProbeState;
  after: ProbeState;
  success: boolean;
}

export interface NeighbourEval {
  prompt: string;
  before: { text: string; ids: number[] };
  after: { text: string; ids: number[] };
  /** the answer the continuation states is the same before and after (eval/metrics sameAnswer) */
  unchanged: boolean;
  /** the whole continuation, answer and the free text after it, is token for token the same */
  continuationUnchanged: boolean;
  /** KL(before ‖ after) of the next-token distribution after the prompt, nats */
  kl: number;
}

export interface MethodEval {
  method: EditMethod;
  edit: PromptEval;
  paraphrases: PromptEval[];
  neighbours: NeighbourEval[];
  /** batch edits: each further fact's own prompt, scored against its own target (in EditRequest.moreFacts order) */
  batch: PromptEval[];
  summary: {
    editSuccess: boolean; paraphraseSuccess: number | null; neighbourhoodScore: number | null; meanKl: number | null;
    /** batch edits: the fraction of all the edit's facts (the first included) whose prompt now gives its target; null for one fact */
    factSuccess: number | null;
  };
  timingsMs: { capture: number; editor: number; update: number; total: number };
  /** MEND passes the edit took: more than 1 when the first left a fact's edit prompt short of its target and
   * editor_config.json batch_retry asked the editor again (fine-tuning: 1; absent in reports made before it existed) */
  passes?: number;
  /** how often editor_config.json first_pass_guard halved the step of pass 1 because it raised held-out prose
   * perplexity past the guard's limit (0 or absent: not halved) */
  stepHalvings?: number;
  /** what first_pass_guard measured on its own held-out prose (MEND single-fact edits with a guarded editor; else
   * absent): the relative perplexity rise at the editor's own step, at the step kept (null when the last halving
   * allowed was kept unchecked), and the guard's limit */
  guard?: GuardReading;
  /**
   * perplexity on held-out prose with the weights before and after this edit (session/damage.ts); flagged when
   * after / before exceeds threshold or is not finite: the edit may have damaged the model
   */
  heldOut: {
    before: number; after: number; ratio: number; flagged: boolean; threshold: number; prose: EditingInfo['heldOutProse'];
    /** the original, unedited weights' perplexity and after / original: the whole history so far (absent in older reports) */
    original?: number; ratioOriginal?: number; flaggedOriginal?: boolean;
  } | null;
}

export interface EditReport {
  request: EditRequest;
  originalAnswer: string;
  /** one per method run, in the order they ran */
  results: MethodEval[];
  history: HistoryView;
  /** the history entry this edit created (its id in HistoryView) */
  entryId: number;
}

export interface HistoryItem {
  id: number;
  method: EditMethod;
  /** the edit's first fact */
  prompt: string;
  target: string;
  /** its further facts when it was a batch edit ([] for one fact) */
  more: Array<{ prompt: string; target: string }>;
  createdAt: string;
  applied: boolean;
}

export interface HistoryView {
  items: HistoryItem[];
  canUndo: boolean;
  canRedo: boolean;
  /** the exported history (session/history.ts format), for files, IndexedDB and share links */
  json: unknown;
}

/**
 * Every applied edit's facts asked again on the weights as they are now (`recheckHistory`). Edits are applied one
 * after another, so a later edit can undo an earlier one (the same prompt edited again, or a neighbour's bleed); this
 * is what the sequential-editing literature calls retention.
 */
export interface HistoryRecheck {
  /** the applied edits' ids, oldest first: the history state this was measured on */
  appliedIds: number[];
  /**
   * held-out perplexity (the edit results' damage check) of the original weights and now, now / original, and whether
   * that is past the check's limit; null without the check
   */
  perplexity: { original: number; now: number; ratio: number; flagged: boolean; threshold: number } | null;
  facts: Array<{
    /** the history entry the fact belongs to, and its place among the applied edits (1 = oldest) */
    entryId: number;
    position: number;
    prompt: string;
    target: string;
    /** greedy continuation now, and the teacher-forced probability of the whole target now */
    text: string;
    targetProb: number;
    /** every target token is still the argmax under teacher forcing */
    success: boolean;
  }>;
}

/**
 * The knowledge scan of the latest applied edit (`scanKnowledge`, src/eval/scan.ts): hundreds of the model's taught
 * facts asked before and after it, and every fact it knew before and no longer gives.
 */
export interface KnowledgeScan extends ScanReport {
  /** the history entry scanned: the latest applied edit when the scan ran */
  entryId: number;
  /** whose edit of its facts was scanned: the entry's own method, or the other one of a "both methods" comparison */
  method: EditMethod;
}

/**
 * The knowledge scan of every applied edit together (`scanHistory`): the facts index asked on the original weights and
 * on the weights now, around every edited fact.
 */
export interface HistoryScan extends ScanReport {
  /** the applied edits' ids, oldest first: the history state this was measured on */
  appliedIds: number[];
  /** how many distinct edited facts (prompts) the edits hold */
  facts: number;
}

/** A share link's compact edit list: the requests only; the receiving worker replays them. */
export interface SharedEdits {
  /** each edit's first fact, and its further facts when it was a batch edit */
  edits: Array<{ method: EditMethod; prompt: string; target: string; more?: Array<{ prompt: string; target: string }> }>;
  /** how many of them are applied (the rest were undone) */
  position: number;
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
  /** testFailWebgpu: e2e build only, WebGPU start-up fails as on a GPU that cannot come back (ignored in production) */
  | { id: number; type: 'init'; backend: BackendChoice; wasmBaseUrl: string; hubBaseUrl?: string; testFailWebgpu?: boolean }
  | { id: number; type: 'load'; source: ModelSource }
  | { id: number; type: 'generate'; prompt: string; options: GenerateOptions }
  | { id: number; type: 'topk'; prompt: string; k: number }
  | { id: number; type: 'cacheStatus'; source: ModelSource }
  | { id: number; type: 'clearCache' }
  | { id: number; type: 'edit'; request: EditRequest }
  | { id: number; type: 'undo' }
  | { id: number; type: 'redo' }
  | { id: number; type: 'revertAll' }
  | { id: number; type: 'clearHistory' }
  | { id: number; type: 'importHistory'; json: unknown }
  | { id: number; type: 'importShared'; shared: SharedEdits }
  | { id: number; type: 'recheckHistory'; maxNewTokens: number }
  /** refused unless entryId is still the latest applied edit (the scan compares the weights before and after it) */
  | { id: number; type: 'scanKnowledge'; entryId: number; method?: EditMethod }
  | { id: number; type: 'scanHistory' }
  /**
   * Fault injection for the e2e build only (vite --mode e2e): destroy the WebGPU device as a driver reset would.
   * Production workers refuse it with an error and change nothing.
   */
  | { id: number; type: 'testHook'; action: 'destroyGpuDevice' }
  | WeightsRequest;

/** The result type of each request type. */
export interface ResultOf extends WeightsResultOf {
  init: BackendInfo;
  load: ModelSummary;
  generate: GenerateResult;
  topk: TopToken[];
  /** How many of the source's files are in the browser's Cache API (0 for folder URLs, which are not cached). */
  cacheStatus: { cachedFiles: number };
  clearCache: { deleted: boolean };
  edit: EditReport;
  undo: HistoryView;
  redo: HistoryView;
  revertAll: HistoryView;
  clearHistory: HistoryView;
  importHistory: HistoryView;
  importShared: HistoryView;
  recheckHistory: HistoryRecheck;
  scanKnowledge: KnowledgeScan;
  scanHistory: HistoryScan;
  testHook: { done: boolean };
}

export type ProgressEvent =
  | { stage: 'download'; file: FileProgress }
  | { stage: 'status'; message: string }
  | { stage: 'token'; text: string; newTokens: number }
  /** an edit's progress: which step of how many, in words */
  | { stage: 'edit'; message: string; step: number; steps: number };

export type WorkerResponse =
  | { id: number; type: 'progress'; progress: ProgressEvent }
  | { id: number; type: 'result'; result: ResultOf[keyof ResultOf] }
  | { id: number; type: 'error'; error: WorkerErrorInfo }
  /** not an answer to a request (id 0): see WorkerEvent */
  | { id: 0; type: 'event'; event: WorkerEvent };

export type RequestType = WorkerRequest['type'];
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
/** A request without its id: what callers of the client pass in. */
export type RequestBody = DistributiveOmit<WorkerRequest, 'id'>;
