// What `npm run bench` measures for one model, and once per adapter (bandwidth yardstick).
//
//   edit        MendEditor.edit on one 16-token fact (prompt ++ target), split as the editor reports it:
//               capture (forward + backward for the x/δ rows), editor (the editor MLP kernel over all rows),
//               update (the fused W + c·X̃ᵀΔ̃ kernel for every edited weight); each phase ends with a GPU sync.
//               Every edit is reverted (bit-exact buffer swap) so all repetitions edit the same model.
//   generation  GPT2.generate, greedy, batch 1: `newTokens` tokens after a `promptTokens`-token prompt,
//               prompt processing included; tokens/s = newTokens / wall time. On webgpu generate takes the fast
//               decode path (src/model/fast_decode.ts); the tfjs-op path (fastDecode: false) is timed in the same
//               repetitions, interleaved, so the two share the machine's load.
//   kernels     each WGSL kernel against the tfjs-op reference that defines it, same inputs, same run.
//   bandwidth   the fused update kernel's bytes of W read + written per second, against the copy kernel
//               moving the same number of bytes.
//   memory      tfjs's GPU bytes in use: after loading, and the high-water mark during edits and generation.
//   dispatch    where the time of a decode step and of the edit's capture goes: tfjs kernels and WGSL dispatches
//               issued, the synchronous JavaScript time that issues them (enqueue), and the wait for the read-back
//               after it (GPU work not yet done + the round trip). The H100 run of 2026-11-27 took ~100 ms per token
//               for both model sizes: per-dispatch cost, not GPU work.
import * as tf from '@tensorflow/tfjs';
import { disposePackedEditorParams, editorMLP, editorMLPReference, packEditorParams } from '../src/kernels/editor_mlp';
import {
  outerProductSum, outerProductSumReference, rankUpdate, rankUpdateReference, updateVariantFor, type UpdateVariant,
} from '../src/kernels/rank_update';
import { disposeChanges, revertChanges } from '../src/editors/changes';
import { fastDecodeStats, fastDecodeUnsupported } from '../src/model/fast_decode';
import type { TokenizedFact } from '../src/editors/types';
import { fastCapture } from '../src/model/fast_capture';
import { fastEditor } from '../src/editors/fast_editor';
import { fastUpdate } from '../src/editors/fast_update';
import { rowFlags } from '../src/kernels/row_flags';
import { activeWebGPUBackend, gpuPlans } from '../src/kernels/webgpu';
import { disposeOutputs, disposeRows, mendEditTuning, type EditorOutput, type MendEditOptions } from '../src/editors/mend';
import { copyKernel } from './copy_kernel';
import { editorMLPRowwise } from './editor_mlp_rowwise';
import { DispatchCounter, GpuMemoryWatch, hasTimestampQuery, median, syncAll, timeOp, type OpTiming, type Repetitions } from './measure';
import type { BenchModel } from './models';

export interface BenchSettings extends Repetitions {
  /** tokens of the edit: prompt ++ target */
  editTokens: number;
  /** of which target tokens */
  targetTokens: number;
  promptTokens: number;
  newTokens: number;
  /**
   * Also time the old row-per-workgroup editor kernel (bench/editor_mlp_rowwise.ts) against the same reference,
   * as kernel "editorMLPRowwise", to compare it with the tiled editorMLP in the same run. It streams U and V once
   * per row, so it is timed with at most 1 warm-up, 2 repetitions and 1 call per sample.
   */
  rowwiseBaseline: boolean;
  /**
   * Dawn's null backend (MENDLAB_DAWN_FLAGS=backend=null) runs no GPU work, so read-backs are garbage and the
   * edit's finite check refuses every edit: the edit is then timed as its capture only (editor and update 0).
   */
  captureOnly?: boolean;
}

export interface EditTimes {
  captureMs: number;
  editorMs: number;
  updateMs: number;
  totalMs: number;
}

export interface KernelReport {
  kernel: string;
  reference: string;
  /** e.g. "768x3072, 16 rows" */
  shape: string;
  kernelMs: number;
  referenceMs: number;
  /** kernelMs / referenceMs: below 1 means the WGSL kernel is faster */
  ratio: number;
  kernelGpuMs: number | null;
  referenceGpuMs: number | null;
  gpuRatio: number | null;
}

export interface BandwidthReport {
  /** W's shape [in, out] */
  shape: [number, number];
  /** bytes of W read + written by one update (2 · in · out · 4); the copy kernel moves the same */
  bytes: number;
  updateMs: number;
  copyMs: number;
  /** which timing the GB/s use: GPU timestamps when the adapter has them, else wall clock per call */
  timing: 'gpu' | 'wall';
  updateGBs: number;
  copyGBs: number;
  /** updateGBs / copyGBs */
  ratio: number;
  /** which update program the numbers above are for (rank_update.ts: vec4 for widths that are multiples of 4) */
  variant?: UpdateVariant;
  /** the one-float-per-invocation program on the same W in the same run, when the vec4 one is the default */
  scalar?: { updateMs: number; updateGBs: number; ratio: number };
}

export interface GenerationReport {
  promptTokens: number;
  newTokens: number;
  ms: number;
  tokensPerSecond: number;
  samplesMs: number[];
  /** absent in reports written before the fast decode path: whether generate took it */
  fast?: boolean;
  /** the fast path's GPU dispatches per decoded token (null when it did not run) */
  fastDispatchesPerToken?: number | null;
  /** GPT2.generate with fastDecode: false (tfjs ops every step), same prompt, interleaved with the samples above */
  tfjs?: { ms: number; tokensPerSecond: number; samplesMs: number[] };
  /** tokensPerSecond / tfjs.tokensPerSecond */
  speedup?: number;
}

/** One phase's dispatch diagnostics (medians over the samples; counts per token for decode steps). */
export interface DispatchPhase {
  /** tfjs kernels run (engine.runKernelFunc calls, gradients' and customGrad's included) */
  kernels: number;
  /** WGSL programs dispatched (runWebGPUProgram calls) */
  dispatches: number;
  /** synchronous JavaScript time that issues the work (ms) */
  enqueueMs: number;
  /** then the wait until the result is read back (ms) */
  waitMs: number;
  /** the most frequent kernels and how many of each */
  topKernels: Record<string, number>;
}

export interface DispatchReport {
  /** one greedy decode step with the KV cache (forward of 1 token + argMax), not pipelined with the next */
  token: DispatchPhase & { samples: number };
  /** captureGradientRows on the edit's fact through tfjs autodiff (fastCapture.enabled = false) */
  capture: DispatchPhase & { samples: number };
  /**
   * the same through the fast WebGPU capture (src/model/fast_capture.ts): `dispatches` are its own compute
   * dispatches (not tfjs programs), `kernels` the tfjs kernels it still runs (none expected). Absent in reports written before the fast capture.
   */
  fastCapture?: DispatchPhase & { samples: number };
}

/**
 * One phase timed on our fast path and on its tfjs fallback, alternated sample by sample in the same run
 * (`alternated`). ratio = fastMs / tfjsMs: below 1 means the fast path is faster.
 */
export interface PathComparison {
  fastMs: number;
  tfjsMs: number;
  ratio: number;
  fastSamples: number[];
  tfjsSamples: number[];
}

/** The edit's capture phase (MendEditor.captureRows, with its read-back) on both paths. */
export type CaptureComparison = PathComparison;

/** A comparison that also counts the dispatches each side issues (what each count covers: see its use). */
export interface DispatchComparison extends PathComparison {
  fastDispatches: number;
  tfjsDispatches: number;
}

/**
 * The edit's editor phase (MendEditor.runEditors on the same captured rows, to the GPU's end) on both paths.
 * fastDispatches: the fast path's own compute dispatches (one command encoder); tfjsDispatches: the WGSL programs
 * the tfjs path dispatches (runWebGPUProgram calls).
 */
export interface EditorPhaseComparison extends DispatchComparison {
  /**
   * The fast path with the weights that share an editor stacked (fastMs) against the fast path one weight at a time
   * (fastEditor.stack = false), alternated in a second series. Absent in reports written before the stacking.
   */
  stacking?: { stackedMs: number; perWeightMs: number; ratio: number; perWeightDispatches: number; stackedSamples: number[]; perWeightSamples: number[] };
  /** JavaScript time of the fast path's runEditors call (recording and submitting), median; absent in older reports */
  fastEnqueueMs?: number;
}

/**
 * The whole edit (MendEditor.edit: capture, editor, update, finite check, install, kept-row count) with the row-flag
 * kernels (src/kernels/row_flags.ts: the keep mask and the finite check, one dispatch per weight each) and with their
 * tfjs-op references. Dispatches: tfjs programs (runWebGPUProgram calls) per edit; the fast capture's and fast
 * editor phase's own dispatches are the same on both sides and not counted. Both sides run the tfjs update phase
 * (fastUpdate off), whose finite check is the one rowFlags switches.
 */
export type RowFlagsComparison = DispatchComparison;

/**
 * The whole edit with the fast update phase (src/editors/fast_update.ts: every weight's update and finite check in
 * one command encoder, one read-back) and with the tfjs programs (rankUpdate per weight + assertFiniteWeights).
 * Dispatches: tfjs programs per edit (the fast update's own are not counted).
 */
export type UpdatePhaseComparison = DispatchComparison;

/**
 * Kept GPU plans (src/kernels/webgpu.ts BindGroupCache: the capture's and the editor phase's bind groups, and the
 * editor phase's scratch buffers and uniforms) against building them at every call (gpuPlans.reuse = false),
 * alternated: the whole edit (MendEditor.edit), the bind groups it creates, and the capture's JavaScript enqueue
 * (GPT2.captureGradientRows up to its returned promise). ratio = keptMs / freshMs.
 */
export interface PlanReuseComparison {
  keptMs: number;
  freshMs: number;
  ratio: number;
  keptSamples: number[];
  freshSamples: number[];
  /**
   * bind groups created per edit (capture + editor phase): kept, by an edit right after another kept one (the steady
   * state of a user editing again and again; the timed samples alternate with built-per-call edits in both orders)
   */
  keptBindGroups: number;
  freshBindGroups: number;
  captureEnqueue: { keptMs: number; freshMs: number; ratio: number; keptSamples: number[]; freshSamples: number[] };
}

/**
 * The whole edit as the app runs it (MendEditor.edit: phases queued back to back, one wait for the GPU) against the
 * same edit with a GPU sync after each phase (syncPhases, what the phase split above is measured with), alternated.
 */
export interface PipelineComparison {
  oneWaitMs: number;
  syncedMs: number;
  ratio: number;
  oneWaitSamples: number[];
  syncedSamples: number[];
  /**
   * The one-wait edit with the capture submitted in chunks (fastCapture.submitEvery dispatches each, the default)
   * against one submit, alternated; absent in reports written before the chunked capture.
   */
  captureSubmits?: { chunkedMs: number; oneSubmitMs: number; ratio: number; every: number; chunkedSamples: number[]; oneSubmitSamples: number[] };
  /**
   * The one-wait edit with the capture's split-K matmuls unrolled (fastCapture.unrollMatmuls, the default) against
   * one k step at a time, alternated; absent in reports written before the unrolled matmuls.
   */
  matmulUnroll?: { unrolledMs: number; plainMs: number; ratio: number; unrolledSamples: number[]; plainSamples: number[] };
  /**
   * The one-wait edit with the editor's lowRank kernel unrolled (fastEditor.unrollK, the default) against one k step
   * at a time, alternated; absent in reports written before the unrolled editor kernel.
   */
  editorUnroll?: { unrolledMs: number; plainMs: number; ratio: number; unrolledSamples: number[]; plainSamples: number[] };
  /**
   * The one-wait edit with the editor's lowRank row blocks fitted to the stacked rows (fastEditor.wideRows, the
   * default) against 16-row blocks, alternated; absent in reports written before the wider blocks.
   */
  editorRows?: { wideMs: number; narrowMs: number; ratio: number; wideSamples: number[]; narrowSamples: number[] };
  /**
   * The one-wait edit with the kept-row counts read back alongside its wait (mendEditTuning.countKeptEarly, the
   * default) against after it (a second round trip), alternated; absent in reports written before the change.
   */
  keptCount?: { earlyMs: number; afterMs: number; ratio: number; earlySamples: number[]; afterSamples: number[] };
  /**
   * The fixed cost of one wait, on an idle queue (medians): queue.onSubmittedWorkDone(), and a 4-byte mapAsync
   * read-back (copy + map + unmap, what the edit's one wait ends with). Where the read-back's time goes: the copy
   * submitted and waited for with onSubmittedWorkDone (copyWorkDoneMs), and the map alone of a buffer whose copy
   * has already finished (mapOnlyMs). Absent in reports written before them.
   */
  idleWait?: { workDoneMs: number; mapReadMs: number; copyWorkDoneMs?: number; mapOnlyMs?: number };
}

/**
 * Where a fast path's GPU time goes: the capture (fastCapture.submitEvery = 1) or the editor phase
 * (fastEditor.passTimestamps) run with one compute pass per dispatch and GPU timestamps around each pass; means over
 * the repetitions. One pass per dispatch adds pass boundaries, so totals are an upper bound of the path's GPU time
 * in one pass; the split by kernel is what it is for.
 */
export interface GpuPassProfile {
  /** sum of the passes' durations */
  totalMs: number;
  /** first pass's start to the last pass's end (the gaps between passes included) */
  spanMs: number;
  dispatches: number;
  /** by kernel name (capture_kernels.ts's names, 'row keep' the keep-mask program; fast_editor.ts's), largest first */
  kernels: Array<{ kernel: string; ms: number; count: number }>;
}

export interface ModelReport {
  name: string;
  source: string;
  config: { nLayer: number; nEmbd: number; nHead: number; nInner: number; vocabSize: number; nPositions: number };
  params: number;
  editor: { editedWeights: string[]; shapes: Record<string, { rank: number; modes: number }>; params: number };
  edit: EditTimes & { samples: EditTimes[]; rows: number; rowsKept: number };
  /** what GPT2.generate runs (the fast decode path when `fast`), and the tfjs-op path in the same repetitions */
  generation: GenerationReport;
  kernels: KernelReport[];
  bandwidth: BandwidthReport;
  memory: { residentBytes: number; peakEditBytes: number; peakGenerationBytes: number; peakBytes: number; allocatedBytes: number };
  /** absent in reports written before 2026-11-27 */
  dispatch?: DispatchReport;
  /** absent in reports written before the fast capture */
  capture?: CaptureComparison;
  /** absent in reports written before the fast editor phase */
  editorPhase?: EditorPhaseComparison;
  /** absent in reports written before the row-flag kernels */
  rowFlags?: RowFlagsComparison;
  /** absent in reports written before the fast update phase */
  updatePhase?: UpdatePhaseComparison;
  /** absent in reports written before the kept plans */
  plans?: PlanReuseComparison;
  /** absent in reports written before the one-wait edit */
  pipeline?: PipelineComparison;
  /** absent without 'timestamp-query', off the fast paths, and in reports written before them */
  captureProfile?: GpuPassProfile;
  editorProfile?: GpuPassProfile;
  /** absent in reports written before the knowledge scan */
  factChecks?: FactCheckComparison;
}

/**
 * The knowledge scan's teacher-forced checks (src/eval/scan.ts): FACT_CHECKS (prompt, target) pairs asked in packs by
 * GPT2.targetsAreArgmax against one forward pass each (GPT2.targetIsArgmax), alternated; ratio = packed / one by one.
 */
export interface FactCheckComparison {
  pairs: number;
  packedMs: number;
  oneByOneMs: number;
  ratio: number;
  packedSamples: number[];
  oneByOneSamples: number[];
}

/** How many facts the check comparison asks: prompts of 6 to 13 tokens with 1 to 3 target tokens, like facts.json's. */
const FACT_CHECKS = 32;

async function factCheckComparison(bm: BenchModel, s: BenchSettings): Promise<FactCheckComparison> {
  const V = bm.model.config.vocabSize;
  const pairs = Array.from({ length: FACT_CHECKS }, (_, i) => ({ promptIds: tokenIds(6 + (i % 8), V, 100 + i), targetIds: tokenIds(1 + (i % 3), V, 200 + i) }));
  const packed = await bm.model.targetsAreArgmax(pairs);
  const single: boolean[] = [];
  for (const p of pairs) single.push(await bm.model.targetIsArgmax(p.promptIds, p.targetIds));
  if (packed.join() !== single.join()) throw new Error('bench: the packed fact checks disagree with the one-by-one ones');
  const c = await alternated(async (fast) => {
    const t0 = performance.now();
    if (fast) await bm.model.targetsAreArgmax(pairs);
    else for (const p of pairs) await bm.model.targetIsArgmax(p.promptIds, p.targetIds);
    return performance.now() - t0;
  }, s);
  return { pairs: FACT_CHECKS, ...named(c, 'packed', 'oneByOne') };
}

/** Deterministic token ids (a fixed LCG) so every run edits and generates the same sequence. */
export function tokenIds(n: number, vocab: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

function randomTensor(shape: number[], scale: number, seed: number): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.randomUniform(shape, -1, 1, 'float32', seed), scale));
}

function kernelReport(kernel: string, reference: string, shape: string, k: OpTiming, r: OpTiming): KernelReport {
  const gpuRatio = k.gpuMs !== null && r.gpuMs !== null && r.gpuMs > 0 ? k.gpuMs / r.gpuMs : null;
  return { kernel, reference, shape, kernelMs: k.ms, referenceMs: r.ms, ratio: k.ms / r.ms, kernelGpuMs: k.gpuMs, referenceGpuMs: r.gpuMs, gpuRatio };
}

/** Time per call and GB/s of the fused update against the copy kernel moving the same bytes. */
export async function bandwidth(inDim: number, outDim: number, rows: number, reps: Repetitions, update?: OpTiming): Promise<BandwidthReport> {
  const w = randomTensor([inDim, outDim], 0.02, 11) as tf.Tensor2D;
  const x = randomTensor([rows, inDim], 1, 12) as tf.Tensor2D;
  const d = randomTensor([rows, outDim], 1e-3, 13) as tf.Tensor2D;
  const flat = tf.reshape(w, [-1]) as tf.Tensor1D;
  try {
    const variant = updateVariantFor(outDim);
    const u = update ?? (await timeOp(() => rankUpdate(w, x, d, -1e-4), reps));
    const c = await timeOp(() => copyKernel(flat), reps);
    // The previous (scalar) program on the same W, so a run shows what the vec4 program gained, side by side.
    const sc = variant === 'vec4' ? await timeOp(() => rankUpdate(w, x, d, -1e-4, 'scalar'), reps) : null;
    const gpu = (t: OpTiming | null) => t === null || (t.gpuMs !== null && t.gpuMs > 0);
    const timing = gpu(u) && gpu(c) && gpu(sc) ? 'gpu' : 'wall';
    const msOf = (t: OpTiming) => (timing === 'gpu' ? t.gpuMs! : t.ms);
    const uMs = msOf(u);
    const cMs = msOf(c);
    const bytes = 2 * inDim * outDim * 4;
    const gbs = (ms: number) => bytes / (ms * 1e-3) / 1e9;
    return {
      shape: [inDim, outDim], bytes, updateMs: uMs, copyMs: cMs, timing, updateGBs: gbs(uMs), copyGBs: gbs(cMs),
      ratio: gbs(uMs) / gbs(cMs), variant,
      ...(sc ? { scalar: { updateMs: msOf(sc), updateGBs: gbs(msOf(sc)), ratio: gbs(msOf(sc)) / gbs(cMs) } } : {}),
    };
  } finally {
    tf.dispose([w, x, d, flat]);
  }
}

/** Each WGSL kernel against its tfjs-op reference at this model's editor shapes, N = edit rows. */
async function kernelRatios(bm: BenchModel, rows: number, reps: Repetitions, rowwiseBaseline: boolean): Promise<{ kernels: KernelReport[]; updates: Map<string, OpTiming> }> {
  const kernels: KernelReport[] = [];
  const updates = new Map<string, OpTiming>();
  let seed = 100;
  for (const e of bm.editor.config.editors) {
    const D = e.xDim + e.deltaDim;
    const shape = `${e.key}, ${rows} rows`;
    const x = randomTensor([rows, e.xDim], 1, ++seed) as tf.Tensor2D;
    const delta = randomTensor([rows, e.deltaDim], 1e-3, ++seed) as tf.Tensor2D;
    const raw = {
      xMean: tf.zeros([e.xDim]) as tf.Tensor1D, xStd: tf.ones([e.xDim]) as tf.Tensor1D,
      deltaMean: tf.zeros([e.deltaDim]) as tf.Tensor1D, deltaStd: tf.fill([e.deltaDim], 1e-3) as tf.Tensor1D,
      eps: 1e-7,
      layers: [0, 1].map(() => ({
        u: randomTensor([D, e.rank], 0.01, ++seed) as tf.Tensor2D, v: randomTensor([e.rank, D], 1 / Math.sqrt(D), ++seed) as tf.Tensor2D,
        bias: tf.zeros([D]) as tf.Tensor1D, modeScale: tf.ones([e.nModes, D]) as tf.Tensor2D, modeShift: tf.zeros([e.nModes, D]) as tf.Tensor2D,
      })),
    };
    const packed = packEditorParams(raw);
    tf.dispose([raw.xMean, raw.xStd, raw.deltaMean, raw.deltaStd, ...raw.layers.flatMap((l) => Object.values(l))]);
    const w = randomTensor([e.xDim, e.deltaDim], 0.02, ++seed) as tf.Tensor2D;
    try {
      const k1 = await timeOp(() => editorMLP(x, delta, packed, 0), reps);
      const r1 = await timeOp(() => editorMLPReference(x, delta, packed, 0), reps);
      kernels.push(kernelReport('editorMLP', 'editorMLPReference', `${shape}, rank ${e.rank}`, k1, r1));
      if (rowwiseBaseline) {
        // A call can take a large fraction of a second at distilgpt2 shape on a GPU (16 workgroups streaming
        // 2.5 GB, mostly from L2), so a few calls only: the difference to measure is an order of magnitude.
        const few = { warmup: Math.min(reps.warmup, 1), reps: Math.min(reps.reps, 2), inner: 1 };
        const k0 = await timeOp(() => editorMLPRowwise(x, delta, packed, 0), few);
        kernels.push(kernelReport('editorMLPRowwise', 'editorMLPReference', `${shape}, rank ${e.rank}`, k0, r1));
      }
      const k2 = await timeOp(() => rankUpdate(w, x, delta, -1e-4), reps);
      const r2 = await timeOp(() => rankUpdateReference(w, x, delta, -1e-4), reps);
      kernels.push(kernelReport('rankUpdate', 'rankUpdateReference', shape, k2, r2));
      updates.set(e.key, k2);
      if (updateVariantFor(e.deltaDim) === 'vec4') {
        const k2s = await timeOp(() => rankUpdate(w, x, delta, -1e-4, 'scalar'), reps);
        kernels.push(kernelReport('rankUpdateScalar', 'rankUpdateReference', shape, k2s, r2));
      }
      const k3 = await timeOp(() => outerProductSum(x, delta, -1e-4), reps);
      const r3 = await timeOp(() => outerProductSumReference(x, delta, -1e-4), reps);
      kernels.push(kernelReport('outerProductSum', 'outerProductSumReference', shape, k3, r3));
    } finally {
      disposePackedEditorParams(packed);
      tf.dispose([x, delta, w]);
    }
  }
  return { kernels, updates };
}

function phase(c: DispatchCounter, per: number, enqueue: number[], wait: number[]): DispatchPhase {
  return { kernels: c.kernels / per, dispatches: c.dispatches / per, enqueueMs: median(enqueue), waitMs: median(wait), topKernels: c.top(16, per) };
}

/** Kernels, dispatches, enqueue and read-back wait of a decode step and of the edit's capture. */
async function dispatchReport(bm: BenchModel, fact: TokenizedFact, prompt: number[], s: BenchSettings): Promise<DispatchReport> {
  const { model, editor } = bm;
  await syncAll();
  // Decode steps: the same work as generate's greedy loop, but each step is waited for before the next is issued,
  // so enqueue and wait separate. The argMax stays on the device and is fed back (readbacks may be garbage on
  // Dawn's null backend; the ids never matter).
  const steps = Math.max(1, Math.min(s.newTokens, model.config.nPositions - prompt.length - 1));
  const first = model.forward(prompt);
  let cache = first.cache;
  let next = tf.tidy(() => tf.argMax(tf.slice(first.logits, [prompt.length - 1, 0], [1, -1]), 1)) as tf.Tensor1D;
  first.logits.dispose();
  await next.data();
  const enq: number[] = [];
  const wait: number[] = [];
  const tokenCounter = new DispatchCounter();
  try {
    for (let i = 0; i < steps; i++) {
      const t0 = performance.now();
      const r = model.forward(next, cache);
      const following = tf.tidy(() => tf.argMax(r.logits, 1)) as tf.Tensor1D;
      const t1 = performance.now();
      await following.data();
      const t2 = performance.now();
      enq.push(t1 - t0);
      wait.push(t2 - t1);
      r.logits.dispose();
      next.dispose();
      cache.dispose();
      next = following;
      cache = r.cache;
    }
  } finally {
    tokenCounter.stop();
    next.dispose();
    cache.dispose();
  }
  const token = { ...phase(tokenCounter, steps, enq, wait), samples: steps };

  // Capture: captureGradientRows runs synchronously up to its first await (the loss read-back), so the time to
  // the returned promise is the enqueue time of forward + backward. Both paths: tfjs autodiff, then the fast one.
  const reps = Math.max(1, s.reps);
  const capturePhase = async (fast: boolean): Promise<DispatchPhase & { samples: number }> => {
    const capEnq: number[] = [];
    const capWait: number[] = [];
    const fastBefore = fastCapture.dispatches;
    const capCounter = new DispatchCounter();
    try {
      await withSwitch(fastCapture, 'enabled', fast, async () => {
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          const p = model.captureGradientRows(fact.promptIds, fact.targetIds, [...editor.weightNames]);
          const t1 = performance.now();
          const r = await p;
          const t2 = performance.now();
          capEnq.push(t1 - t0);
          capWait.push(t2 - t1);
          for (const rows of Object.values(r.rows)) tf.dispose([rows.x, rows.delta]);
        }
      });
    } finally {
      capCounter.stop();
    }
    const ph = phase(capCounter, reps, capEnq, capWait);
    // The fast path's compute dispatches are its own (not tfjs programs): count those.
    if (fast) ph.dispatches = (fastCapture.dispatches - fastBefore) / reps;
    return { ...ph, samples: reps };
  };
  const capture = await capturePhase(false);
  const fastPhase = await capturePhase(true);
  return { token, capture, fastCapture: fastPhase };
}

/**
 * The edit's capture phase (MendEditor.captureRows: capture + keep masks, with the loss read-back) with the fast
 * path and with the tfjs path, alternated sample by sample in the same run so load changes hit both alike.
 */
async function captureComparison(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<CaptureComparison> {
  const once = (fast: boolean): Promise<number> => withSwitch(fastCapture, 'enabled', fast, async () => {
    const before = fastCapture.captures;
    const t0 = performance.now();
    const { rows } = await bm.editor.captureRows(bm.model, [fact]);
    await syncAll();
    const ms = performance.now() - t0;
    disposeRows(rows);
    if (fast && fastCapture.captures === before) throw new Error('bench: the fast capture did not run (it fell back to the tfjs path)');
    return ms;
  });
  return alternated(once, s);
}

/** Runs f with obj[key] set to value and puts the old value back afterwards: how the bench flips a path's switch. */
async function withSwitch<O extends object, K extends keyof O, T>(obj: O, key: K, value: O[K], f: () => Promise<T>): Promise<T> {
  const old = obj[key];
  obj[key] = value;
  try {
    return await f();
  } finally {
    obj[key] = old;
  }
}

/**
 * Times `once(true)` (fast path) and `once(false)` (tfjs path) alternated sample by sample, after as many alternated
 * warm-ups, so a change of load on the machine hits both alike. The order flips every pair (fast, tfjs, tfjs, fast,
 * ...): whatever one sample leaves behind for the next (a garbage collection, deferred buffer deletions) then lands
 * on each side equally often, instead of always on the same one.
 */
export async function alternated(once: (fast: boolean) => Promise<number>, s: BenchSettings): Promise<PathComparison> {
  const pair = async (i: number): Promise<[number, number]> => {
    if (i % 2 === 0) {
      const fast = await once(true);
      return [fast, await once(false)];
    }
    const tfjs = await once(false);
    return [await once(true), tfjs];
  };
  for (let i = 0; i < s.warmup; i++) await pair(i);
  const fastSamples: number[] = [];
  const tfjsSamples: number[] = [];
  for (let i = 0; i < s.reps; i++) {
    const [fast, tfjs] = await pair(i);
    fastSamples.push(fast);
    tfjsSamples.push(tfjs);
  }
  const fastMs = median(fastSamples);
  const tfjsMs = median(tfjsSamples);
  return { fastMs, tfjsMs, ratio: fastMs / tfjsMs, fastSamples, tfjsSamples };
}

/**
 * A PathComparison under the report's names for its two sides: `${a}Ms` and `${a}Samples` for the fast (first) side,
 * `${b}…` for the other, and the ratio.
 */
function named<A extends string, B extends string>(c: PathComparison, a: A, b: B) {
  return { [`${a}Ms`]: c.fastMs, [`${b}Ms`]: c.tfjsMs, ratio: c.ratio, [`${a}Samples`]: c.fastSamples, [`${b}Samples`]: c.tfjsSamples } as
    Record<`${A}Ms` | `${B}Ms` | 'ratio', number> & Record<`${A}Samples` | `${B}Samples`, number[]>;
}

/**
 * The editor phase (step 3: every edited weight's editor MLP, split and keep mask) on one fact's captured rows, with
 * the fast path and the tfjs path alternated sample by sample, each timed to the GPU's end like editFromRows does.
 */
async function editorPhaseComparison(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<EditorPhaseComparison> {
  const { rows } = await bm.editor.captureRows(bm.model, [fact]);
  let lastEnqueueMs = 0;
  const fastEnqueue: number[] = [];
  /** runEditors on the captured rows, timed from a synced GPU to the GPU's end, like editFromRows does. */
  const timedRunEditors = async (): Promise<number> => {
    const outputs = new Map<string, EditorOutput>();
    try {
      await syncAll();
      const t0 = performance.now();
      const validated = bm.editor.runEditors(rows, outputs);
      lastEnqueueMs = performance.now() - t0;
      await syncAll();
      const ms = performance.now() - t0;
      await validated;
      return ms;
    } finally {
      disposeOutputs(outputs);
    }
  };
  const fellBack = () => new Error('bench: the fast editor phase did not run (it fell back to the tfjs path)');

  let fastDispatches = 0;
  let tfjsDispatches = 0;
  const once = (fast: boolean): Promise<number> => withSwitch(fastEditor, 'enabled', fast, async () => {
    const [runs, dispatches] = [fastEditor.runs, fastEditor.dispatches];
    const counter = fast ? null : new DispatchCounter();
    try {
      const ms = await timedRunEditors();
      if (fast && fastEditor.runs === runs) throw fellBack();
      if (fast) {
        fastEnqueue.push(lastEnqueueMs);
        fastDispatches = fastEditor.dispatches - dispatches;
      } else {
        tfjsDispatches = counter!.dispatches;
      }
      return ms;
    } finally {
      counter?.stop();
    }
  });
  // Stacked (the default) against one weight at a time, both on the fast path.
  let perWeightDispatches = 0;
  const stackedOrNot = (stacked: boolean): Promise<number> => withSwitch(fastEditor, 'stack', stacked, async () => {
    const [runs, dispatches] = [fastEditor.runs, fastEditor.dispatches];
    const ms = await timedRunEditors();
    if (fastEditor.runs === runs) throw fellBack();
    if (!stacked) perWeightDispatches = fastEditor.dispatches - dispatches;
    return ms;
  });
  try {
    const times = await alternated(once, s);
    const st = await alternated(stackedOrNot, s);
    const stacking = { ...named(st, 'stacked', 'perWeight'), perWeightDispatches };
    return { ...times, fastDispatches, tfjsDispatches, stacking, fastEnqueueMs: median(fastEnqueue.slice(-s.reps)) };
  } finally {
    disposeRows(rows);
  }
}

/** Wall time of one whole edit (MendEditor.edit) of `fact`, from an idle GPU; the edit is reverted afterwards. */
async function wholeEditMs(bm: BenchModel, fact: TokenizedFact, opts: MendEditOptions = {}): Promise<number> {
  await syncAll();
  const t0 = performance.now();
  const r = await bm.editor.edit(bm.model, [fact], opts);
  const ms = performance.now() - t0;
  revertChanges(bm.model, r.changes);
  disposeChanges(r.changes);
  return ms;
}

/**
 * The whole edit with a switch on (fast) and off (tfjs), alternated; `flag` is the switch object. Dispatches: tfjs
 * programs (runWebGPUProgram calls) per edit.
 */
async function switchedEditComparison(bm: BenchModel, fact: TokenizedFact, s: BenchSettings, flag: { enabled: boolean }): Promise<DispatchComparison> {
  let fastDispatches = 0;
  let tfjsDispatches = 0;
  const once = (fast: boolean): Promise<number> => withSwitch(flag, 'enabled', fast, async () => {
    const counter = new DispatchCounter();
    try {
      const ms = await wholeEditMs(bm, fact);
      if (fast) fastDispatches = counter.dispatches;
      else tfjsDispatches = counter.dispatches;
      return ms;
    } finally {
      counter.stop();
    }
  });
  const times = await alternated(once, s);
  return { ...times, fastDispatches, tfjsDispatches };
}

async function pipelineComparison(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<PipelineComparison> {
  const c = await alternated((oneWait) => wholeEditMs(bm, fact, { syncPhases: !oneWait }), s);
  const every = fastCapture.submitEvery;
  const chunks = await alternated((chunked) => withSwitch(fastCapture, 'submitEvery', chunked ? every : 0, () => wholeEditMs(bm, fact)), s);
  // The one-wait edit with a boolean switch on (the default) and off, alternated.
  const switched = <T extends object, K extends { [P in keyof T]: T[P] extends boolean ? P : never }[keyof T]>(obj: T, key: K) =>
    alternated((on) => withSwitch(obj, key, on as T[K], () => wholeEditMs(bm, fact)), s);
  const unroll = await switched(fastCapture, 'unrollMatmuls');
  const kept = await switched(mendEditTuning, 'countKeptEarly');
  const editorUnroll = await switched(fastEditor, 'unrollK');
  const editorRows = await switched(fastEditor, 'wideRows');
  return {
    ...named(c, 'oneWait', 'synced'),
    captureSubmits: { ...named(chunks, 'chunked', 'oneSubmit'), every },
    matmulUnroll: named(unroll, 'unrolled', 'plain'),
    editorUnroll: named(editorUnroll, 'unrolled', 'plain'),
    editorRows: named(editorRows, 'wide', 'narrow'),
    keptCount: named(kept, 'early', 'after'),
    idleWait: await idleWaitMs(s),
  };
}

/**
 * GpuPassProfile of `once` (which returns false when the fast path did not run): `hook` installs the per-pass
 * timestamp writes (null: removes them). Undefined without 'timestamp-query' or when the fast path did not run.
 */
async function passProfile(
  s: BenchSettings,
  hook: (writes: ((pass: number, kernel: string) => GPUComputePassTimestampWrites | undefined) | null) => void,
  once: () => Promise<boolean>,
): Promise<GpuPassProfile | undefined> {
  const device = activeWebGPUBackend()?.device;
  if (!device || !hasTimestampQuery() || !device.features.has('timestamp-query')) return undefined;
  const MAX_PASSES = 2048;
  const querySet = device.createQuerySet({ type: 'timestamp', count: 2 * MAX_PASSES });
  const resolved = device.createBuffer({ size: 16 * MAX_PASSES, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readBack = device.createBuffer({ size: 16 * MAX_PASSES, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  let passes: string[] = [];
  hook((pass, kernel) => {
    if (pass >= MAX_PASSES) return undefined;
    passes[pass] = kernel;
    return { querySet, beginningOfPassWriteIndex: 2 * pass, endOfPassWriteIndex: 2 * pass + 1 };
  });
  const byKernel = new Map<string, { ns: number; count: number }>();
  let [total, span, dispatches] = [0, 0, 0];
  try {
    for (let i = 0; i < s.warmup + s.reps; i++) {
      passes = [];
      if (!(await once())) return undefined;
      const n = passes.length;
      const enc = device.createCommandEncoder();
      enc.resolveQuerySet(querySet, 0, 2 * n, resolved, 0);
      enc.copyBufferToBuffer(resolved, 0, readBack, 0, 16 * n);
      device.queue.submit([enc.finish()]);
      await readBack.mapAsync(GPUMapMode.READ, 0, 16 * n);
      const t = new BigInt64Array(readBack.getMappedRange(0, 16 * n).slice(0));
      readBack.unmap();
      if (i < s.warmup) continue;
      passes.forEach((kernel, p) => {
        const ns = Number(t[2 * p + 1] - t[2 * p]);
        const k = byKernel.get(kernel) ?? { ns: 0, count: 0 };
        byKernel.set(kernel, { ns: k.ns + ns, count: k.count + 1 });
        total += ns;
      });
      span += Number(t[2 * n - 1] - t[0]);
      dispatches = n;
    }
  } finally {
    hook(null);
    querySet.destroy();
    resolved.destroy();
    readBack.destroy();
  }
  const perRep = (ns: number) => ns / 1e6 / s.reps;
  return {
    totalMs: perRep(total), spanMs: perRep(span), dispatches,
    kernels: [...byKernel].map(([kernel, k]) => ({ kernel, ms: perRep(k.ns), count: k.count / s.reps })).sort((a, b) => b.ms - a.ms),
  };
}

/** The capture's GpuPassProfile: one submit and pass per dispatch. */
function captureGpuProfile(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<GpuPassProfile | undefined> {
  const [every, hook] = [fastCapture.submitEvery, fastCapture.passTimestamps];
  return passProfile(s, (writes) => {
    fastCapture.submitEvery = writes ? 1 : every;
    fastCapture.passTimestamps = writes ? (chunk, kernels) => writes(chunk, kernels[0]) : hook;
  }, async () => {
    const before = fastCapture.captures;
    const { rows } = await bm.editor.captureRows(bm.model, [fact]);
    disposeRows(rows);
    return fastCapture.captures > before;
  });
}

/** The editor phase's GpuPassProfile (runEditors on one fact's rows): one pass per dispatch. */
async function editorGpuProfile(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<GpuPassProfile | undefined> {
  const { rows } = await bm.editor.captureRows(bm.model, [fact]);
  const hook = fastEditor.passTimestamps;
  try {
    return await passProfile(s, (writes) => (fastEditor.passTimestamps = writes ?? hook), async () => {
      const outputs = new Map<string, EditorOutput>();
      const runs = fastEditor.runs;
      try {
        await bm.editor.runEditors(rows, outputs);
      } finally {
        disposeOutputs(outputs);
      }
      return fastEditor.runs > runs;
    });
  } finally {
    disposeRows(rows);
  }
}

/** PipelineComparison.idleWait: what one wait costs when the GPU has nothing left to do (WebGPU only). */
async function idleWaitMs(s: BenchSettings): Promise<PipelineComparison['idleWait']> {
  const device = activeWebGPUBackend()?.device;
  if (!device) return undefined;
  const src = device.createBuffer({ size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const dst = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  try {
    const times = { workDone: [] as number[], mapRead: [] as number[], copyWorkDone: [] as number[], mapOnly: [] as number[] };
    const copy = () => {
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(src, 0, dst, 0, 4);
      device.queue.submit([enc.finish()]);
    };
    const timed = async (what: keyof typeof times, f: () => Promise<void>, keep: boolean) => {
      const t0 = performance.now();
      await f();
      if (keep) times[what].push(performance.now() - t0);
    };
    const map = async () => {
      await dst.mapAsync(GPUMapMode.READ, 0, 4);
      dst.unmap();
    };
    for (let i = 0; i < s.warmup + s.reps; i++) {
      const keep = i >= s.warmup;
      await syncAll();
      await timed('workDone', () => device.queue.onSubmittedWorkDone(), keep);
      await timed('mapRead', async () => { copy(); await map(); }, keep);
      await timed('copyWorkDone', async () => { copy(); await device.queue.onSubmittedWorkDone(); }, keep);
      await timed('mapOnly', map, keep); // the copy above has finished: only the map is left
    }
    return { workDoneMs: median(times.workDone), mapReadMs: median(times.mapRead), copyWorkDoneMs: median(times.copyWorkDone), mapOnlyMs: median(times.mapOnly) };
  } finally {
    src.destroy();
    dst.destroy();
  }
}

async function planReuseComparison(bm: BenchModel, fact: TokenizedFact, s: BenchSettings): Promise<PlanReuseComparison> {
  const created = { kept: 0, fresh: 0 };
  const edit = (kept: boolean) => withSwitch(gpuPlans, 'reuse', kept, async () => {
    const before = gpuPlans.created;
    const ms = await wholeEditMs(bm, fact);
    created[kept ? 'kept' : 'fresh'] = gpuPlans.created - before;
    return ms;
  });
  const enqueue = (kept: boolean) => withSwitch(gpuPlans, 'reuse', kept, async () => {
    await syncAll();
    const t0 = performance.now();
    const p = bm.model.captureGradientRows(fact.promptIds, fact.targetIds, [...bm.editor.weightNames]);
    const ms = performance.now() - t0;
    for (const rows of Object.values((await p).rows)) tf.dispose([rows.x, rows.delta]);
    return ms;
  });
  const whole = await alternated(edit, s);
  await edit(true);
  await edit(true); // the count: a kept edit after a kept edit
  const enq = await alternated(enqueue, s);
  return {
    ...named(whole, 'kept', 'fresh'),
    keptBindGroups: created.kept, freshBindGroups: created.fresh,
    captureEnqueue: named(enq, 'kept', 'fresh'),
  };
}

/** The fact every edit of the bench makes: s.editTokens tokens, the last s.targetTokens of them the target. */
function benchFact(bm: BenchModel, s: BenchSettings): TokenizedFact {
  const vocab = bm.model.config.vocabSize;
  return { promptIds: tokenIds(s.editTokens - s.targetTokens, vocab, 1), targetIds: tokenIds(s.targetTokens, vocab, 2) };
}

/** `npm run bench -- --edit-only`: the one-wait edit alone (what the app runs, what is compared with PyTorch). */
export interface EditOnlyReport {
  name: string;
  /** median of `samples` */
  oneWaitMs: number;
  samples: number[];
}

/**
 * The one-wait edit of the bench's fact, s.warmup + s.reps times, nothing else: the quick run that bench/gpu.sh's
 * ratio rounds alternate with PyTorch's, so that the WebGPU/PyTorch ratio is measured several times on one machine.
 */
export async function editOnly(bm: BenchModel, s: BenchSettings, log: (m: string) => void): Promise<EditOnlyReport> {
  const fact = benchFact(bm, s);
  log(`${bm.name}: one-wait edit (${s.editTokens} tokens) ×${s.warmup}+${s.reps}`);
  for (let i = 0; i < s.warmup; i++) await wholeEditMs(bm, fact);
  const samples: number[] = [];
  for (let i = 0; i < s.reps; i++) samples.push(await wholeEditMs(bm, fact));
  return { name: bm.name, oneWaitMs: median(samples), samples };
}

export async function benchModel(bm: BenchModel, s: BenchSettings, watch: GpuMemoryWatch, log: (m: string) => void): Promise<ModelReport> {
  const { model, editor } = bm;
  const c = model.config;
  const vocab = c.vocabSize;
  const fact = benchFact(bm, s);
  const prompt = tokenIds(s.promptTokens, vocab, 3);

  // Edits. The warm-up edits also move the weights to the GPU (tfjs uploads a tensor on first use).
  log(`${bm.name}: edit (${s.editTokens} tokens) ×${s.warmup}+${s.reps}`);
  const samples: EditTimes[] = [];
  let rows = 0;
  let rowsKept = 0;
  let peakEdit = 0;
  for (let i = 0; i < s.warmup + s.reps; i++) {
    if (i === s.warmup) {
      await syncAll();
      watch.reset();
    }
    if (s.captureOnly) {
      const t0 = performance.now();
      const { rows: captured } = await editor.captureRows(model, [fact]);
      const captureMs = performance.now() - t0;
      disposeRows(captured);
      if (i >= s.warmup) {
        samples.push({ captureMs, editorMs: 0, updateMs: 0, totalMs: captureMs });
        rows = s.editTokens;
      }
      continue;
    }
    // Synced after each phase, so capture / editor / update are GPU time; the app's one-wait edit is `pipeline`.
    const r = await editor.edit(model, [fact], { syncPhases: true });
    revertChanges(model, r.changes);
    disposeChanges(r.changes);
    if (i >= s.warmup) {
      samples.push({ captureMs: r.timings.captureMs, editorMs: r.timings.editorMs, updateMs: r.timings.updateMs, totalMs: r.timings.totalMs });
      rows = r.stats.rows;
      rowsKept = r.stats.rowsKept;
    }
  }
  peakEdit = watch.peak;
  const resident = watch.inUse;

  log(`${bm.name}: generation (${s.promptTokens} + ${s.newTokens} tokens) ×${s.warmup}+${s.reps}`);
  const genMs: number[] = [];
  const tfjsMs: number[] = [];
  const fast = fastDecodeUnsupported(c) === null;
  let fastSteps = 0;
  let fastDispatches = 0;
  const timedGenerate = async (fastDecode: boolean) => {
    const t0 = performance.now();
    const out = await model.generate(prompt, { maxNewTokens: s.newTokens, eosTokenId: null, fastDecode });
    const ms = performance.now() - t0;
    if (out.length !== s.newTokens) throw new Error(`generate produced ${out.length} tokens, expected ${s.newTokens}`);
    return ms;
  };
  for (let i = 0; i < s.warmup + s.reps; i++) {
    if (i === s.warmup) {
      await syncAll();
      watch.reset();
    }
    const [steps, dispatches] = [fastDecodeStats.steps, fastDecodeStats.dispatches];
    const ms = await timedGenerate(true);
    fastSteps += fastDecodeStats.steps - steps;
    fastDispatches += fastDecodeStats.dispatches - dispatches;
    const msTfjs = await timedGenerate(false);
    if (i >= s.warmup) {
      genMs.push(ms);
      tfjsMs.push(msTfjs);
    }
  }
  const peakGen = watch.peak;

  log(`${bm.name}: capture, fast path vs tfjs path ×${s.warmup}+${s.reps}`);
  const capture = await captureComparison(bm, fact, s);

  log(`${bm.name}: editor phase, fast path vs tfjs path ×${s.warmup}+${s.reps}`);
  const editorPhase = await editorPhaseComparison(bm, fact, s);

  // The whole-edit comparisons. Skipped with captureOnly (Dawn's null backend): its read-backs are garbage, so the
  // finite check refuses edits.
  let rowFlagsCmp: RowFlagsComparison | undefined;
  let updateCmp: UpdatePhaseComparison | undefined;
  let plans: PlanReuseComparison | undefined;
  let pipeline: PipelineComparison | undefined;
  if (!s.captureOnly) {
    log(`${bm.name}: whole edit, row-flag kernels vs tfjs ops ×${s.warmup}+${s.reps}`);
    // With the tfjs update phase on both sides: the fast one runs the finite-rows kernel whatever rowFlags says.
    rowFlagsCmp = await withSwitch(fastUpdate, 'enabled', false, () => switchedEditComparison(bm, fact, s, rowFlags));
    log(`${bm.name}: whole edit, update phase in one encoder vs tfjs programs ×${s.warmup}+${s.reps}`);
    updateCmp = await switchedEditComparison(bm, fact, s, fastUpdate);
    log(`${bm.name}: whole edit, kept plans vs built per call ×${s.warmup}+${s.reps}`);
    plans = await planReuseComparison(bm, fact, s);
    log(`${bm.name}: whole edit, one wait vs synced phases ×${s.warmup}+${s.reps}`);
    pipeline = await pipelineComparison(bm, fact, s);
  }

  log(`${bm.name}: capture and editor phase GPU profiles (one pass per dispatch, timestamps)`);
  const captureProfile = await captureGpuProfile(bm, fact, s);
  const editorProfile = await editorGpuProfile(bm, fact, s);

  log(`${bm.name}: knowledge-scan fact checks, packed vs one by one ×${s.warmup}+${s.reps}`);
  const factChecks = await factCheckComparison(bm, s);

  log(`${bm.name}: dispatch diagnostics (kernels, enqueue vs read-back wait)`);
  const dispatch = await dispatchReport(bm, fact, prompt, s);

  log(`${bm.name}: kernels vs tfjs-op references`);
  const { kernels, updates } = await kernelRatios(bm, s.editTokens, s, s.rowwiseBaseline);

  // Bandwidth at the largest edited weight (c_fc and c_proj move the same bytes; take the first editor).
  const e0 = bm.editor.config.editors[0];
  log(`${bm.name}: update kernel vs copy kernel bandwidth at ${e0.key}`);
  const bw = await bandwidth(e0.xDim, e0.deltaDim, s.editTokens, s, updates.get(e0.key));

  const med = (k: keyof EditTimes) => median(samples.map((t) => t[k]));
  const gen = median(genMs);
  const shapes: Record<string, { rank: number; modes: number }> = {};
  for (const e of editor.config.editors) shapes[e.key] = { rank: e.rank, modes: e.nModes };
  return {
    name: bm.name, source: bm.source,
    config: { nLayer: c.nLayer, nEmbd: c.nEmbd, nHead: c.nHead, nInner: c.nInner, vocabSize: c.vocabSize, nPositions: c.nPositions },
    params: bm.params,
    editor: { editedWeights: [...editor.weightNames], shapes, params: bm.editorParams },
    edit: { captureMs: med('captureMs'), editorMs: med('editorMs'), updateMs: med('updateMs'), totalMs: med('totalMs'), samples, rows, rowsKept },
    generation: {
      promptTokens: s.promptTokens, newTokens: s.newTokens, ms: gen, tokensPerSecond: s.newTokens / (gen / 1000), samplesMs: genMs,
      fast, fastDispatchesPerToken: fastSteps > 0 ? fastDispatches / fastSteps : null,
      tfjs: { ms: median(tfjsMs), tokensPerSecond: s.newTokens / (median(tfjsMs) / 1000), samplesMs: tfjsMs },
      speedup: median(tfjsMs) / gen,
    },
    kernels,
    bandwidth: bw,
    memory: { residentBytes: resident, peakEditBytes: peakEdit, peakGenerationBytes: peakGen, peakBytes: Math.max(peakEdit, peakGen), allocatedBytes: watch.allocated },
    dispatch,
    capture,
    editorPhase,
    rowFlags: rowFlagsCmp,
    updatePhase: updateCmp,
    plans,
    pipeline,
    captureProfile,
    editorProfile,
    factChecks,
  };
}
