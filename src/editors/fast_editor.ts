// MEND's editor phase (step 3 of mend.ts) on the WebGPU backend without tfjs's per-op machinery.
//
// Why: the tfjs path runs, per edited weight, editorMLP's 9 programs plus the split of h into x̃/δ̃ and the keep
// mask (12 tfjs dispatches; 72 for the shipped editor's 6 weights), and on an H100 each tfjs dispatch costs
// ~136 µs of JavaScript/tfjs/Dawn overhead while the GPU work is tiny. Here the same math for every edited weight
// is recorded into ONE command encoder on tfjs's device, reading the rows and the packed editor parameters from
// their tfjs buffers in place (tfjs-webgpu.md §4.2), the same pattern as src/model/fast_capture.ts.
//
// Weights that share an editor (one editor per weight shape, shared across layers: the c_fc of every edited block,
// and the c_proj) run as ONE set of rows: the rows of all of them stacked, each row with its layer's mode. Per
// editor: a normalise per weight (into its block of the stacked rows), then per editor layer h·Vᵀ split-K partials,
// their sum t, t·Uᵀ partials and the block's epilogue; the last epilogue runs per weight and writes its x̃ and δ̃
// (× keep) straight into the output tensors, so the split and the keep mask cost no dispatch of their own. With m
// weights per editor and L editor layers that is 2m + 4L − 1 dispatches per editor (13 for m = 3, L = 2; the
// shipped editor's 6 weights: 26) instead of 9 per weight (54), and the weights' row blocks stream U and V in the
// same dispatch (concurrently, so their reads can share the GPU's L2) instead of in one dispatch each, in sequence.
// The kernels are the ones of src/kernels/editor_mlp.ts, written as plain WGSL with explicit bindings, except that
// lowRank's row block widens to the stacked rows (up to 64, `wideRows`) so U and V are streamed once per edit;
// results match the tfjs path to float rounding (the split of K depends on the row count and the row block, so
// stacking and wider blocks can change the summation order, within float rounding).
//
// Anything else (another backend, zero rows, sizes past the device's limits, `fastEditor.enabled = false`) returns
// null and MendEditor runs the tfjs path (editorMLP + splitEditorOutput + tf.mul). Pipelines are compiled once per
// device; the scratch buffers, uniforms and bind groups are kept per signature of the call (a Plan, below).
import * as tf from '@tensorflow/tfjs';
import { splitK, type PackedEditorParams } from '../kernels/editor_mlp';
import {
  activeWebGPUBackend, BindGroupCache, cachedPipeline, flushTfjs, groupsFor, KeptPlans, outputTensor, roundedBuffer, tensorBuffer,
  type WebGPUBackend,
} from '../kernels/webgpu';

/** Switch (tests and the bench force the tfjs path with `enabled = false`) and counters for the bench. */
export const fastEditor = {
  enabled: true,
  /** stack the weights that share an editor (false: one set of dispatches per weight; the bench compares both) */
  stack: true,
  /** lowRank with K_UNROLL k steps per loop iteration (false: one at a time; the bench compares both) */
  unrollK: true,
  /**
   * lowRank's rows per workgroup fitted to the stacked rows, up to WIDE_ROWS (false: always ROW_BLOCK = 16; the bench
   * compares both). See rowBlockFor.
   */
  wideRows: true,
  /** editor phases that took the fast path */
  runs: 0,
  /** compute dispatches recorded by them */
  dispatches: 0,
  /**
   * Bench hook (bench/suite.ts, the editor phase's GPU profile): when set, every dispatch gets its own compute pass
   * with these timestamp writes; null (the default) records them all in one pass.
   */
  passTimestamps: null as null | ((dispatch: number, kernel: string) => GPUComputePassTimestampWrites | undefined),
};

/** One edited weight's input to the editor phase. */
export interface FastEditorItem {
  x: tf.Tensor2D;
  delta: tf.Tensor2D;
  keep: tf.Tensor2D;
  params: PackedEditorParams;
  mode: number;
}

// Kernel constants: the same tiles as editor_mlp.ts's LowRankPartialProgram (64 columns per workgroup, blocks of 16
// rows staged 128 k values at a time), plus wider row blocks (below).
const COLS = 64;
const ROW_BLOCK = 16;
const STAGE_K = 128;
/**
 * The widest row block: 64 accumulators per invocation. Why wider blocks: every row block streams all of U and V
 * once, and the stacked editor phase has 3 weights' rows (48 for a 16-token edit), so 16-row blocks read each
 * editor weight three times; and, since splitK aims at a fixed number of workgroups, the three blocks also cut the
 * K splits by three, so each workgroup walks a 3× longer k loop, one memory latency per step. One 48-row block
 * reads the weights once and keeps the splits (and the loop) short, for 3× the multiply-adds per loaded value.
 */
const WIDE_ROWS = 64;

/** Rows per lowRank workgroup for R stacked rows: R rounded up to a multiple of 16, at most WIDE_ROWS. */
function rowBlockFor(rows: number): number {
  if (!fastEditor.wideRows) return ROW_BLOCK;
  return Math.min(WIDE_ROWS, Math.max(ROW_BLOCK, Math.ceil(rows / ROW_BLOCK) * ROW_BLOCK));
}

/** k values staged per step for a row block: its staged rows stay within 16 KiB of workgroup memory (WebGPU's floor). */
function stageKFor(rowBlock: number): number {
  return rowBlock <= 32 ? STAGE_K : STAGE_K / 2;
}
/** Uniform blocks are bound at offsets that are multiples of this (minUniformBufferOffsetAlignment). */
const SLOT = 256;

// N: rows this dispatch covers; total: rows of the editor's stacked set (the partial sums' layout); rowOffset: where
// this dispatch's rows start in it (a weight's block for 'normalise' and 'final', 0 otherwise).
const PARAMS = `
struct Params {
  N : i32, K : i32, C : i32, layer : i32, kPerGroup : i32, mode : i32, inDim : i32, splits : i32, M : i32,
  rowOffset : i32, total : i32, eps : f32,
}
@group(0) @binding(0) var<uniform> u : Params;
`;
const FIELDS = 12;

/**
 * The epilogue of an editor block, shared by 'residual' and 'final': v = H + max((Σ + bias)·scale + shift, 0), for
 * element `index` of this dispatch's rows (g: the same element in the stacked rows); `mode` is defined by the caller.
 */
const EPILOGUE = `
  let D = u.C;
  let g = u.rowOffset * D + index;
  let d = index % D;
  var s = 0.0;
  for (var i = 0; i < u.splits; i = i + 1) { s = s + P[i * u.total * D + g]; }
  let M = u.M;
  let a = u.layer * (1 + 2 * M) * D;
  let pre = (s + Affine[a + d]) * Affine[a + (1 + mode) * D + d] + Affine[a + (1 + M + mode) * D + d];
  let v = H[g] + max(pre, 0.0);
`;

/**
 * k steps per iteration of lowRank's inner loop: K_UNROLL independent loads of W in flight per thread before their
 * multiply-adds, instead of one load, then its 16 multiply-adds, then the next load. Why: at distilgpt2 shape the
 * editor kernel (0.53 ms for 16 rows, rank 1920 on the H100) moves ~220 GB/s and does ~1.8 TFLOP/s, far from either
 * limit, which looks like one memory latency per k step (the capture's split-K matmuls, unrolled the same way).
 * Each accumulator still sums in k order, so the result is the same.
 */
const K_UNROLL = 8;

/**
 * The k loop of lowRank over this stage's kn staged values, `unroll` steps per iteration plus a one-step tail;
 * `vecs` accumulators (4 rows each).
 */
function kLoop(unroll: number, vecs: number): string {
  const step = (j: number) => Array.from({ length: vecs }, (_, q) => `
      acc${q} = acc${q} + staged[(kk + ${j}) * ${vecs}${q ? ` + ${q}` : ''}] * w${j};`).join('');
  const js = Array.from({ length: unroll }, (_, j) => j);
  const unrolled = unroll <= 1 ? '' : `
    for (; kk + ${unroll} <= kn; kk = kk + ${unroll}) {${js.map((j) => `
      let w${j} = W[w + ${j} * C];`).join('')}${js.map(step).join('')}
      w = w + ${unroll} * C;
    }`;
  return `
    var w = u.layer * K * C + k0 * C + col;
    var kk = 0;${unrolled}
    for (; kk < kn; kk = kk + 1) {
      let w0 = W[w];${step(0)}
      w = w + C;
    }`;
}

/** lowRank's WGSL with `unroll` k steps per loop iteration (1: the plain loop) and `rowBlock` rows per workgroup. */
function lowRankSource(unroll: number, rowBlock: number): string {
  const vecs = rowBlock / 4;
  const stageK = stageKFor(rowBlock);
  return `${PARAMS}
@group(0) @binding(1) var<storage, read> Rows : array<f32>;
@group(0) @binding(2) var<storage, read> W : array<f32>;
@group(0) @binding(3) var<storage, read_write> Out : array<f32>;
// staged[k · ${vecs} + q][j] = Rows[n0 + 4q + j, k0 + k]
var<workgroup> staged : array<vec4<f32>, ${stageK * vecs}>;
@compute @workgroup_size(${COLS}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) li : u32) {
  let N = u.N;
  let K = u.K;
  let C = u.C;
  let lid = i32(li);
  let c = i32(wg.x) * ${COLS} + lid;
  let split = i32(wg.y);
  let n0 = i32(wg.z) * ${rowBlock};
  let col = min(c, C - 1);  // past the last column: compute a copy, do not store (every invocation hits every barrier)
${Array.from({ length: vecs }, (_, q) => `  var acc${q} = vec4<f32>(0.0);`).join('\n')}
  let stages = u.kPerGroup / ${stageK};
  for (var stage = 0; stage < stages; stage = stage + 1) {
    let k0 = split * u.kPerGroup + stage * ${stageK};
    let kn = min(${stageK}, K - k0);
    workgroupBarrier();
    for (var i = lid; i < ${stageK * rowBlock}; i = i + ${COLS}) {
      let kk = i % ${stageK};
      let n = i / ${stageK};
      var v = 0.0;
      if (kk < kn && n0 + n < N) { v = Rows[(n0 + n) * K + k0 + kk]; }
      staged[kk * ${vecs} + n / 4][n % 4] = v;
    }
    workgroupBarrier();
${kLoop(unroll, vecs)}
  }
  if (c >= C) { return; }
  // Unrolled with constant indices: a dynamically indexed array of the accumulators could go to local memory.
${Array.from({ length: rowBlock }, (_, r) => `  if (n0 + ${r} < N) { Out[(split * N + n0 + ${r}) * C + c] = acc${r >> 2}[${r & 3}]; }`).join('\n')}
}`;
}

/** The name of lowRank's pipeline: 'lowRank' (unrolled, 16 rows), ':plain' for one k step, ':r<rows>' when wider. */
function lowRankName(rowBlock: number): string {
  return `lowRank${fastEditor.unrollK ? '' : ':plain'}${rowBlock === ROW_BLOCK ? '' : `:r${rowBlock}`}`;
}

/** lowRank's source for a name made by lowRankName. */
function lowRankFor(name: string): string {
  const rows = /:r(\d+)$/.exec(name);
  return lowRankSource(name.includes(':plain') ? 1 : K_UNROLL, rows ? Number(rows[1]) : ROW_BLOCK);
}

const SOURCES: Record<string, string> = {
  // h_0 = (concat(x, δ) − mean) / (std + eps) of one weight's rows, into its block of the stacked rows; C = D.
  normalise: `${PARAMS}
@group(0) @binding(1) var<storage, read> X : array<f32>;
@group(0) @binding(2) var<storage, read> Delta : array<f32>;
@group(0) @binding(3) var<storage, read> Norm : array<f32>;
@group(0) @binding(4) var<storage, read_write> Out : array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let index = i32(g.x);
  let D = u.C;
  if (index >= u.N * D) { return; }
  let outDim = D - u.inDim;
  let n = index / D;
  let d = index - n * D;
  var raw : f32;
  if (d < u.inDim) { raw = X[n * u.inDim + d]; } else { raw = Delta[n * outDim + d - u.inDim]; }
  Out[u.rowOffset * D + index] = (raw - Norm[d]) / (Norm[D + d] + u.eps);
}`,
  // lowRank (Out[s, n, c] = Σ_{k in split s} Rows[n, k] · W[layer, k, c], Rows [N, K], W [L, K, C]; see
  // editor_mlp.ts) has a source per variant: lowRankFor.
  // t = Σ_splits P (C = r).
  sum: `${PARAMS}
@group(0) @binding(1) var<storage, read> P : array<f32>;
@group(0) @binding(2) var<storage, read_write> Out : array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  let index = i32(g.x);
  let size = u.N * u.C;
  if (index >= size) { return; }
  var s = 0.0;
  for (var i = 0; i < u.splits; i = i + 1) { s = s + P[i * size + index]; }
  Out[index] = s;
}`,
  // h_{l+1} = the block's epilogue over all stacked rows (C = D), each row with its own weight's mode.
  residual: `${PARAMS}
@group(0) @binding(1) var<storage, read> P : array<f32>;
@group(0) @binding(2) var<storage, read> H : array<f32>;
@group(0) @binding(3) var<storage, read> Affine : array<f32>;
@group(0) @binding(4) var<storage, read> Modes : array<i32>;
@group(0) @binding(5) var<storage, read_write> Out : array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let index = i32(gid.x);
  if (index >= u.N * u.C) { return; }
  let mode = Modes[index / u.C];
  ${EPILOGUE}
  Out[g] = v;
}`,
  // The last block for one weight's rows: its epilogue split into x̃ [N, in] and δ̃ [N, out] × keep[n]
  // (MendEditor.runEditor's tf.mul).
  final: `${PARAMS}
@group(0) @binding(1) var<storage, read> P : array<f32>;
@group(0) @binding(2) var<storage, read> H : array<f32>;
@group(0) @binding(3) var<storage, read> Affine : array<f32>;
@group(0) @binding(4) var<storage, read> Keep : array<f32>;
@group(0) @binding(5) var<storage, read_write> XT : array<f32>;
@group(0) @binding(6) var<storage, read_write> DT : array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) gid : vec3<u32>) {
  let index = i32(gid.x);
  if (index >= u.N * u.C) { return; }
  let mode = u.mode;
  ${EPILOGUE}
  let n = index / D;
  if (d < u.inDim) { XT[n * u.inDim + d] = v; } else { DT[n * (D - u.inDim) + d - u.inDim] = v * Keep[n]; }
}`,
};

function pipeline(device: GPUDevice, name: string): GPUComputePipeline {
  return cachedPipeline(device, `mendlab editor ${name}`, name, () => (name.startsWith('lowRank') ? lowRankFor(name) : SOURCES[name]));
}

interface Dispatch {
  kernel: string;
  params: { N: number; K?: number; C: number; layer?: number; kPerGroup?: number; mode?: number; inDim?: number; splits?: number; M?: number; rowOffset?: number; total?: number; eps?: number };
  buffers: GPUBuffer[];
  grid: [number, number, number];
}

/**
 * x̃ and δ̃ (× keep) for every item, recorded as one command encoder and submitted before this returns; or null when
 * the fast path does not apply. The caller owns the returned tensors.
 */
/** The fast phase's x̃/δ̃ per item (the caller owns them) and a promise that rejects if WebGPU rejected the work. */
export interface FastEditorResult {
  outputs: Array<{ xTilde: tf.Tensor2D; deltaTilde: tf.Tensor2D }>;
  validated: Promise<void>;
}

export function fastEditorPhase(items: FastEditorItem[]): FastEditorResult | null {
  if (!fastEditor.enabled || items.length === 0) return null;
  const be = activeWebGPUBackend();
  if (!be) return null;
  const device = be.device;
  const maxGroups = device.limits.maxComputeWorkgroupsPerDimension;
  for (const it of items) {
    const N = it.x.shape[0];
    // Zero rows: nothing to bind (the tfjs path gives the empty result). Inputs the editor does not fit, or (below)
    // stacked grids past the device's limit: the tfjs path (which throws editorMLP's error for the former).
    const fits = [it.x, it.delta, it.keep].every((t) => t.dtype === 'float32' && t.rank === 2 && t.shape[0] === N)
      && it.x.shape[1] === it.params.xDim && it.delta.shape[1] === it.params.deltaDim && it.keep.shape[1] === 1
      && Number.isInteger(it.mode) && it.mode >= 0 && it.mode < it.params.nModes;
    if (!fits || N === 0) return null;
  }
  for (const group of byEditor(items)) {
    const p = group[0].params;
    const rows = group.reduce((a, it) => a + it.x.shape[0], 0);
    if (groupsFor(rows * (p.xDim + p.deltaDim), 64) > maxGroups || groupsFor(rows, ROW_BLOCK) > maxGroups) return null;
  }
  return run(be, items);
}

/** Items grouped by the editor they use (its packed parameters), in order of first appearance; one per group
 * when `fastEditor.stack` is off. */
function byEditor(items: FastEditorItem[]): FastEditorItem[][] {
  if (!fastEditor.stack) return items.map((it) => [it]);
  const groups = new Map<PackedEditorParams, FastEditorItem[]>();
  for (const it of items) {
    const g = groups.get(it.params);
    if (g) g.push(it);
    else groups.set(it.params, [it]);
  }
  return [...groups.values()];
}

// ---- kept plans: the scratch buffers, uniforms and bind groups of an editor phase ----

/**
 * What an editor phase of one signature (which editors, how many rows per weight, which modes) needs besides its
 * inputs and outputs: per group the double-buffered h, t, the split-K partials and the rows' modes; the uniforms;
 * the bind groups of the last call. Kept (at most KEEP_PLANS, least recently used dropped) because an app edits
 * facts of similar length again and again: the next call makes no buffers and reuses every bind group except
 * those that bind its fresh row and output tensors (2 per weight).
 */
interface Plan {
  params: Set<PackedEditorParams>;
  buffers: GPUBuffer[];
  /**
   * Per group: its stacked row count R, where each weight's rows start, lowRank's rows per workgroup, the split of K
   * of its two products (h·Vᵀ: K = D, C = r; t·Uᵀ: K = r, C = D), and its buffers.
   */
  groups: Array<{
    R: number; offsets: number[]; rowBlock: number; vs: ReturnType<typeof splitK>; us: ReturnType<typeof splitK>;
    h: GPUBuffer[]; t: GPUBuffer; part: GPUBuffer; modes: GPUBuffer;
  }>;
  /** made and written by the first call (the uniforms depend only on the signature) */
  uniforms: GPUBuffer | null;
  bindGroups: BindGroupCache;
}

const paramIds = new WeakMap<PackedEditorParams, number>();
let nextParamId = 0;

function signature(groups: FastEditorItem[][]): string {
  const id = (p: PackedEditorParams) => {
    let i = paramIds.get(p);
    if (i === undefined) paramIds.set(p, (i = nextParamId++));
    return i;
  };
  // wideRows changes the row blocks and so the splits of K, which the plan's uniforms hold.
  return `${fastEditor.wideRows ? 'w' : 'n'}|${groups.map((g) => `${id(g[0].params)}:${g.map((it) => `${it.x.shape[0]}/${it.mode}`).join(',')}`).join(';')}`;
}

function destroyPlan(plan: Plan): void {
  for (const b of plan.buffers) b.destroy(); // work already submitted with them still completes
  plan.buffers.length = 0;
  plan.bindGroups.clear();
}

/** Per device, the plans of the last KEEP_PLANS signatures. */
const KEEP_PLANS = 2;
const plans = new KeptPlans<Plan>(KEEP_PLANS, destroyPlan);

/** A new plan for these groups: its buffers made, the rows' modes written. */
function newPlan(device: GPUDevice, groups: FastEditorItem[][]): Plan {
  const plan: Plan = { params: new Set(groups.map((g) => g[0].params)), buffers: [], groups: [], uniforms: null, bindGroups: new BindGroupCache() };
  const buf = (bytes: number, usage: GPUBufferUsageFlags, label: string) => {
    const b = roundedBuffer(device, bytes, usage, label);
    plan.buffers.push(b);
    return b;
  };
  for (const group of groups) {
    const p = group[0].params;
    const D = p.xDim + p.deltaDim;
    const offsets: number[] = [];
    let R = 0;
    for (const it of group) {
      offsets.push(R);
      R += it.x.shape[0];
    }
    const rowBlock = rowBlockFor(R);
    const vs = splitK(D, p.rank, R, rowBlock, stageKFor(rowBlock));
    const us = splitK(p.rank, D, R, rowBlock, stageKFor(rowBlock));
    const scratch = (floats: number) => buf(floats * 4, GPUBufferUsage.STORAGE, 'mendlab editor scratch');
    // Each stacked row's mode (its weight's layer), for the residual epilogue.
    const modes = new Int32Array(R);
    group.forEach((it, i) => modes.fill(it.mode, offsets[i], offsets[i] + it.x.shape[0]));
    const modeBuf = buf(R * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, 'mendlab editor row modes');
    device.queue.writeBuffer(modeBuf, 0, modes);
    plan.groups.push({
      R, offsets, rowBlock, vs, us,
      h: [scratch(R * D), scratch(R * D)], t: scratch(R * p.rank), part: scratch(Math.max(vs.splits * R * p.rank, us.splits * R * D)), modes: modeBuf,
    });
  }
  return plan;
}

/** Frees the kept plans of an editor's packed parameters (MendEditor.dispose calls it before freeing them). */
export function releaseFastEditorPlans(params: Iterable<PackedEditorParams>): void {
  const gone = new Set(params);
  const be = activeWebGPUBackend();
  if (be) plans.release(be.device, (plan) => [...plan.params].some((p) => gone.has(p)));
}

// ---- one editor phase ----

function run(be: WebGPUBackend, items: FastEditorItem[]): FastEditorResult {
  const device = be.device;
  const gpu = (t: tf.Tensor) => tensorBuffer(be, t);
  const output = (rows: number, cols: number) => outputTensor<tf.Rank.R2>(be, [rows, cols]); // the final kernel writes all of it

  const groups = byEditor(items);
  const { plan, kept } = plans.take(device, signature(groups), () => newPlan(device, groups));
  const dispatches: Dispatch[] = [];
  const results: Array<{ xTilde: tf.Tensor2D; deltaTilde: tf.Tensor2D }> = new Array(items.length);
  const flat = (n: number): [number, number, number] => [groupsFor(n, 64), 1, 1];
  groups.forEach((group, g) => {
    const p = group[0].params;
    const D = p.xDim + p.deltaDim;
    const { R, offsets, rowBlock, vs, us, h, t, part, modes: modeBuf } = plan.groups[g];
    const lowRank = lowRankName(rowBlock);
    const vT = gpu(p.vT), uT = gpu(p.uT), affine = gpu(p.affine);
    group.forEach((it, i) => {
      dispatches.push({ kernel: 'normalise', params: { N: it.x.shape[0], C: D, inDim: p.xDim, eps: p.eps, rowOffset: offsets[i], total: R }, buffers: [gpu(it.x), gpu(it.delta), gpu(p.norm), h[0]], grid: flat(it.x.shape[0] * D) });
    });
    for (let l = 0; l < p.nLayers; l++) {
      const hIn = h[l % 2];
      dispatches.push({ kernel: lowRank, params: { N: R, K: D, C: p.rank, layer: l, kPerGroup: vs.kPerGroup }, buffers: [hIn, vT, part], grid: [groupsFor(p.rank, COLS), vs.splits, groupsFor(R, rowBlock)] });
      dispatches.push({ kernel: 'sum', params: { N: R, C: p.rank, splits: vs.splits }, buffers: [part, t], grid: flat(R * p.rank) });
      dispatches.push({ kernel: lowRank, params: { N: R, K: p.rank, C: D, layer: l, kPerGroup: us.kPerGroup }, buffers: [t, uT, part], grid: [groupsFor(D, COLS), us.splits, groupsFor(R, rowBlock)] });
      const common = { C: D, layer: l, inDim: p.xDim, splits: us.splits, M: p.nModes, total: R };
      if (l + 1 < p.nLayers) {
        dispatches.push({ kernel: 'residual', params: { ...common, N: R, rowOffset: 0 }, buffers: [part, hIn, affine, modeBuf, h[(l + 1) % 2]], grid: flat(R * D) });
        continue;
      }
      group.forEach((it, i) => {
        const N = it.x.shape[0];
        const [xTilde, xtBuf] = output(N, p.xDim);
        const [deltaTilde, dtBuf] = output(N, p.deltaDim);
        results[items.indexOf(it)] = { xTilde, deltaTilde };
        dispatches.push({ kernel: 'final', params: { ...common, N, mode: it.mode, rowOffset: offsets[i] }, buffers: [part, hIn, affine, gpu(it.keep), xtBuf, dtBuf], grid: flat(N * D) });
      });
    }
  });

  // Uniforms: one 256-byte slot per dispatch, written by the plan's first call (they depend only on its signature).
  if (!plan.uniforms) {
    plan.uniforms = device.createBuffer({ size: dispatches.length * SLOT, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, label: 'mendlab editor params' });
    plan.buffers.push(plan.uniforms);
    const data = new ArrayBuffer(dispatches.length * SLOT);
    dispatches.forEach((d, i) => {
      const q = d.params;
      new Int32Array(data, i * SLOT, FIELDS - 1).set([q.N, q.K ?? 0, q.C, q.layer ?? 0, q.kPerGroup ?? 0, q.mode ?? 0, q.inDim ?? 0, q.splits ?? 0, q.M ?? 0, q.rowOffset ?? 0, q.total ?? q.N]);
      new Float32Array(data, i * SLOT + (FIELDS - 1) * 4, 1)[0] = q.eps ?? 0;
    });
    device.queue.writeBuffer(plan.uniforms, 0, data);
  }
  const uniforms = plan.uniforms;

  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder({ label: 'mendlab editor' });
  const profile = fastEditor.passTimestamps;
  const onePass = profile ? null : encoder.beginComputePass({ label: 'mendlab editor' });
  dispatches.forEach((d, i) => {
    const timestampWrites = profile?.(i, d.kernel);
    const pass = onePass ?? encoder.beginComputePass({ label: 'mendlab editor', ...(timestampWrites ? { timestampWrites } : {}) });
    const pl = pipeline(device, d.kernel);
    pass.setPipeline(pl);
    pass.setBindGroup(0, plan.bindGroups.get(device, i, pl, [
      { buffer: uniforms, offset: i * SLOT, size: FIELDS * 4 },
      ...d.buffers.map((buffer) => ({ buffer })),
    ]));
    pass.dispatchWorkgroups(...d.grid);
    if (!onePass) pass.end();
  });
  onePass?.end();
  // tfjs's pending work (the rows, the keep mask, uploads), then ours (tfjs-webgpu.md §4.2).
  flushTfjs(be);
  device.queue.submit([encoder.finish()]);
  // Validation errors surface asynchronously. Returned as a promise instead of awaited here, so the caller can queue
  // the update behind this work first and await it with the update's own checks (MendEditor.edit): a wrong x̃/δ̃ may
  // well be finite, so it must fail the edit, not only be logged.
  const validated = device.popErrorScope().then((e) => {
    if (e) throw new Error(`fast editor: WebGPU validation error: ${e.message}`);
  });
  // Marked handled now: the caller awaits it only after queueing the update, and a rejection before that would count as
  // unhandled (awaiting it later still throws).
  validated.catch(() => {});
  if (!kept) destroyPlan(plan); // freed once the submitted work is done
  fastEditor.runs++;
  fastEditor.dispatches += dispatches.length;
  return { outputs: results, validated };
}
