// MEND's capture (GPT2.captureGradientRows) on the WebGPU backend without tfjs's per-op machinery.
//
// Why: on the H100 run of 2026-11-27 a distilgpt2 capture was 384 tfjs dispatches, 89.5 ms of JavaScript + tfjs +
// Dawn enqueue and only 6.6 ms of GPU wait (docs/benchmarks.md "Dispatch overhead"). Here the whole forward +
// backward is recorded into ONE command encoder, one compute pass, on tfjs's own GPUDevice, reading the model's
// weight buffers in place (tfjs-webgpu.md §4.2), with the WGSL of src/kernels/capture_kernels.ts. Per dispatch
// that is a bind group and three pass calls instead of a tfjs kernel (~100 dispatches instead of 384 for the
// editor's six MLP weights of a 6-layer model).
//
// What runs (T = prompt + target tokens, NT = target tokens, rows = token positions):
//   forward   embed; per block: LN1, c_attn, attention, c_proj + residual, LN2, c_fc + gelu, c_proj + residual;
//             everything the backward needs is kept (LN stats, attention probabilities, pre-activations).
//   loss      ln_f, logits of the NT target rows only (position p predicts token p+1), loss rows, and their
//             gradient (softmax − onehot) / NT in place.
//   backward  through the tied head (dlogits · wte) and ln_f, then block by block down to the lowest requested
//             weight only: blocks below it need no backward, and in the lowest block it stops at that weight.
//   outputs   per requested Conv1D weight: x (its input rows) and δ (∂loss/∂its output), copied into fresh tfjs
//             tensors the caller owns (tfjs pool buffers, so dispose() works as for any tensor), and with
//             keepMask MEND's keep mask per weight (kernels/row_flags.ts's program, in the same pass); the NT
//             loss values are the only read-back.
// Anything else (another backend, a sequence longer than the attention kernel holds, ids outside the
// vocabulary, or `fastCapture.enabled = false`) returns null and GPT2 runs its tfjs-autodiff path.
//
// Buffers: the model's weight buffers are looked up at every call (an edit's setWeight gives a variable a new
// buffer, tfjs-webgpu.md pitfall 5); scratch buffers are ours, kept per (model, T, NT) and reused, and freed by
// releaseFastCapture (GPT2.dispose). Each scratch keeps the bind groups of its last capture (BindGroupCache): a
// dispatch whose buffers are all the same as then reuses its bind group, so a capture after no edit makes none and
// one after an edit remakes only those that bind a replaced weight. Pipelines are compiled once per (device,
// model config).
import * as tf from '@tensorflow/tfjs';
import {
  activeWebGPUBackend, BindGroupCache, cachedPipeline, flushTfjs, outputTensor, readBackChecked, roundedBuffer, standaloneSource,
  tensorBuffer, type WebGPUBackend,
} from '../kernels/webgpu';
import {
  kernelSource, MM_ROWS, PARAM_FIELDS, WG, type CaptureDims, type Epilogue, type Params,
} from '../kernels/capture_kernels';
import { rowFlags, rowKeepMask, rowKeepProgram } from '../kernels/row_flags';
import type { GPT2, GradientRows, PendingCapture } from './gpt2';

/** Switch (tests and the bench force the tfjs path with `enabled = false`) and counters for the bench. */
export const fastCapture = {
  enabled: true,
  /**
   * Dispatches per submit (0: the whole capture in one submit). Submitting in chunks lets the GPU start on the first
   * layers while JavaScript still encodes the rest: recording ~100 dispatches takes ~2 ms of JavaScript on the H100
   * machine, time in which one big submit leaves the GPU idle. The bench compares it with one submit.
   */
  submitEvery: 16,
  /**
   * The split-K matmuls with MM_UNROLL k steps per loop iteration (capture_kernels.ts); false: one k step at a
   * time, the kernel before 2026-11-27 evening (the bench compares the two).
   */
  unrollMatmuls: true,
  /** queue submits made by the fast captures */
  submits: 0,
  /**
   * Bench hook (bench/suite.ts, the capture's GPU profile): timestamp writes for the compute pass of chunk `chunk`,
   * whose dispatches run `kernels`; null (the default) records no timestamps.
   */
  passTimestamps: null as null | ((chunk: number, kernels: string[]) => GPUComputePassTimestampWrites | undefined),
  /** captures that took the fast path */
  captures: 0,
  /** compute dispatches recorded by them */
  dispatches: 0,
};

/** The longest sequence the attention kernels hold in workgroup memory (4 KiB of scores). */
const T_LIMIT = 1024;
/** Cap on split-K partial sums per matmul (floats): bounds the scratch for long sequences. */
const PART_CAP = 1 << 22;
/** Uniform blocks are bound at offsets that are multiples of this (WebGPU's minUniformBufferOffsetAlignment). */
const SLOT = 256;
/** Scratch sets kept per model (different (T, NT) pairs: facts of different lengths). */
const KEEP_SCRATCH = 4;

const KIND = /^transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;
/** How far into a block the backward must go to reach a weight's δ (0: the block's output gradient is enough). */
const STAGE: Record<string, number> = { 'mlp.c_proj': 0, 'mlp.c_fc': 1, 'attn.c_proj': 2, 'attn.c_attn': 3 };
const FULL_BLOCK = 4;

// ---- pipelines, per device and model config ----

function pipeline(device: GPUDevice, dims: CaptureDims, name: string): GPUComputePipeline {
  const key = `${name}|${dims.C},${dims.F},${dims.H},${dims.V},${dims.eps},${dims.activation},${dims.tMax}`;
  return cachedPipeline(device, `mendlab capture ${name}`, key, () => kernelSource(name, dims));
}

// ---- scratch buffers, per model and (T, NT) ----

interface LayerBuffers {
  xres: GPUBuffer; // block input (residual stream), LN1 input
  ln1: GPUBuffer; // LN1 mean, rstd per row
  h1: GPUBuffer; // LN1 output: c_attn's x rows
  qkv: GPUBuffer;
  probs: GPUBuffer; // [H, T, T]
  yatt: GPUBuffer; // merged heads: attn.c_proj's x rows
  xmid: GPUBuffer; // after attention's residual add, LN2 input
  ln2: GPUBuffer;
  h2: GPUBuffer; // LN2 output: c_fc's x rows
  f: GPUBuffer; // c_fc output (pre-activation)
  g: GPUBuffer; // activation: mlp.c_proj's x rows
  dxOut: GPUBuffer; // ∂loss/∂(block output): mlp.c_proj's δ
  df: GPUBuffer; // c_fc's δ
  dxMid: GPUBuffer; // ∂loss/∂xmid: attn.c_proj's δ
  dqkv: GPUBuffer; // c_attn's δ
}

interface Scratch {
  T: number;
  NT: number;
  all: GPUBuffer[];
  ids: GPUBuffer;
  params: GPUBuffer;
  paramSlots: number;
  layers: LayerBuffers[];
  xFinal: GPUBuffer;
  lnf: GPUBuffer;
  hf: GPUBuffer;
  logits: GPUBuffer;
  loss: GPUBuffer;
  dhf: GPUBuffer;
  tmp: GPUBuffer; // [T, C]: dh2, then dy of attention, then dh1 (used one after the other)
  ds: GPUBuffer; // [H, T, T]
  part: GPUBuffer;
  /** the bind groups of the last capture with these buffers (most are the same at the next call) */
  bindGroups: BindGroupCache;
  /** where the loss rows are read back; null while a capture has it mapped (a concurrent one makes its own) */
  staging: GPUBuffer | null;
}

interface ModelState {
  device: GPUDevice;
  scratch: Map<string, Scratch>;
}

const states = new WeakMap<GPT2, ModelState>();

/** Split-K factor of an M×K by K×N product: chunks of ≥ 64 k, at most 64 chunks, partials ≤ PART_CAP floats. */
function splitK(M: number, N: number, K: number): { S: number; KC: number } {
  let S = Math.max(1, Math.min(64, Math.ceil(K / 64)));
  if (S * M * N > PART_CAP) S = Math.max(1, Math.floor(PART_CAP / (M * N)));
  const KC = Math.ceil(K / S);
  return { S: Math.ceil(K / KC), KC };
}

function createScratch(device: GPUDevice, dims: CaptureDims, L: number, T: number, NT: number): Scratch {
  const { C, F, H, V } = dims;
  const all: GPUBuffer[] = [];
  const STORAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
  const buf = (floats: number, usage = STORAGE) => {
    const b = roundedBuffer(device, floats * 4, usage, 'mendlab capture scratch');
    all.push(b);
    return b;
  };
  const layers: LayerBuffers[] = [];
  for (let l = 0; l < L; l++) {
    layers.push({
      xres: buf(T * C), ln1: buf(2 * T), h1: buf(T * C), qkv: buf(T * 3 * C), probs: buf(H * T * T), yatt: buf(T * C),
      xmid: buf(T * C), ln2: buf(2 * T), h2: buf(T * C), f: buf(T * F), g: buf(T * F),
      dxOut: buf(T * C), df: buf(T * F), dxMid: buf(T * C), dqkv: buf(T * 3 * C),
    });
  }
  const shapes: Array<[number, number, number]> = [
    [T, 3 * C, C], [T, C, C], [T, F, C], [T, C, F], [NT, V, C], [NT, C, V], [T, C, 3 * C],
  ];
  const part = Math.max(...shapes.map(([M, N, K]) => splitK(M, N, K).S * M * N));
  const paramSlots = 32 * L + 32;
  return {
    T, NT, all, layers,
    ids: buf(T), params: buf((paramSlots * SLOT) / 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST), paramSlots,
    xFinal: buf(T * C), lnf: buf(2 * T), hf: buf(T * C), logits: buf(NT * V), loss: buf(NT), dhf: buf(NT * C),
    tmp: buf(T * C), ds: buf(H * T * T), part: buf(part), bindGroups: new BindGroupCache(),
    staging: lossReadBack(device, NT),
  };
}

/** A mappable buffer for the NT loss values. */
function lossReadBack(device: GPUDevice, NT: number): GPUBuffer {
  return roundedBuffer(device, NT * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'mendlab capture loss');
}

function destroyScratch(s: Scratch): void {
  for (const b of s.all) b.destroy();
  s.all.length = 0;
  s.bindGroups.clear();
  s.staging?.destroy(); // one a capture is still reading is destroyed when that capture is done with it
  s.staging = null;
}

function scratchFor(model: GPT2, device: GPUDevice, dims: CaptureDims, T: number, NT: number): Scratch {
  let st = states.get(model);
  if (!st || st.device !== device) {
    if (st) for (const s of st.scratch.values()) destroyScratch(s);
    st = { device, scratch: new Map() };
    states.set(model, st);
  }
  const key = `${T}:${NT}`;
  let s = st.scratch.get(key);
  if (s) {
    st.scratch.delete(key); // re-inserted below: the Map's order is the least recently used first
  } else {
    if (st.scratch.size >= KEEP_SCRATCH) {
      const [oldKey, old] = st.scratch.entries().next().value as [string, Scratch];
      st.scratch.delete(oldKey);
      destroyScratch(old); // work already submitted with it still completes (WebGPU defers the free)
    }
    s = createScratch(device, dims, model.config.nLayer, T, NT);
  }
  st.scratch.set(key, s);
  return s;
}

/** Frees a model's capture buffers (GPT2.dispose calls it). */
export function releaseFastCapture(model: GPT2): void {
  const st = states.get(model);
  if (!st) return;
  for (const s of st.scratch.values()) destroyScratch(s);
  states.delete(model);
}

// ---- recording ----

interface Dispatch {
  kernel: string;
  /** a tfjs program's WGSL made standalone (addProgram); else the capture kernel `kernel` */
  source?: () => string;
  slot: number;
  buffers: GPUBuffer[];
  grid: [number, number, number];
}

/** Workgroups covering n items of a flat kernel (64 per group), as a 2-D grid when one dimension is not enough. */
function flatGrid(n: number): [number, number, number] {
  const groups = Math.max(1, Math.ceil(n / WG));
  const x = Math.min(groups, 32768);
  return [x, Math.ceil(groups / x), 1];
}

class Recorder {
  readonly dispatches: Dispatch[] = [];
  readonly params: Uint32Array;

  constructor(private readonly capacity: number) {
    this.params = new Uint32Array((capacity * SLOT) / 4);
  }

  add(kernel: string, p: Params, buffers: GPUBuffer[], grid: [number, number, number]): void {
    const slot = this.dispatches.length;
    if (slot >= this.capacity) throw new Error('fast capture: more dispatches than planned');
    const base = (slot * SLOT) / 4;
    PARAM_FIELDS.forEach((name, i) => (this.params[base + i] = p[name] ?? 0));
    this.dispatches.push({ kernel, slot, buffers, grid });
  }

  /** A dispatch of a standalone program (`key` names its source) whose uniforms are `values` (i32) from the slot's start. */
  addProgram(key: string, source: () => string, values: number[], buffers: GPUBuffer[], grid: [number, number, number]): void {
    const slot = this.dispatches.length;
    if (slot >= this.capacity) throw new Error('fast capture: more dispatches than planned');
    new Int32Array(this.params.buffer, slot * SLOT, values.length).set(values);
    this.dispatches.push({ kernel: key, source, slot, buffers, grid });
  }

  /**
   * out = a·b (or a·bᵀ) over M rows: split-K partials, then the reduction with the linear's epilogue.
   * `a` rows start at row aRow; the result is written from row outRow of `out`.
   */
  matmul(o: {
    a: GPUBuffer; aRow?: number; b: GPUBuffer; transB: boolean; M: number; N: number; K: number; part: GPUBuffer;
    out: GPUBuffer; outRow?: number; bias?: GPUBuffer; addend?: GPUBuffer; epi?: Epilogue; pre?: GPUBuffer; out2?: GPUBuffer;
  }): void {
    const { S, KC } = splitK(o.M, o.N, o.K);
    this.add(`${o.transB ? 'mmT' : 'mmN'}${fastCapture.unrollMatmuls ? '' : ':plain'}`, { m: o.M, n: o.N, k: o.K, kc: KC, s: S, a_off: (o.aRow ?? 0) * o.K }, [o.a, o.b, o.part],
      [Math.ceil(o.N / WG), Math.ceil(o.M / MM_ROWS), S]);
    const epi = o.epi ?? 'none';
    const bufs = [o.part];
    if (o.bias) bufs.push(o.bias);
    if (o.addend) bufs.push(o.addend);
    if (epi === 'actGrad') bufs.push(o.pre!);
    bufs.push(o.out);
    if (epi === 'act') bufs.push(o.out2!);
    this.add(`reduce:b${o.bias ? 1 : 0}:a${o.addend ? 1 : 0}:${epi}`, { m: o.M, n: o.N, s: S, out_off: (o.outRow ?? 0) * o.N }, bufs, flatGrid(o.M * o.N));
  }
}

// ---- the capture ----

/** kernels/row_flags.ts's keep-mask program with explicit bindings (its uniforms: X's and Δ's [rows, cols]). */
function rowKeepSource(): string {
  return standaloneSource(rowKeepProgram(1), `
struct Uniforms { xShape : vec2<i32>, dShape : vec2<i32> }
@group(0) @binding(0) var<uniform> uniforms : Uniforms;
@group(0) @binding(1) var<storage, read> X : array<f32>;
@group(0) @binding(2) var<storage, read> D : array<f32>;
@group(0) @binding(3) var<storage, read_write> result : array<f32>;
fn setOutputAtIndex(i : i32, v : f32) { result[i] = v; }`);
}

interface Request {
  name: string;
  layer: number;
  kind: string;
}

function dimsOf(model: GPT2): CaptureDims {
  const c = model.config;
  return { C: c.nEmbd, F: c.nInner, H: c.nHead, V: c.vocabSize, eps: c.layerNormEpsilon, activation: c.activation, tMax: Math.min(c.nPositions, T_LIMIT) };
}

/**
 * The fast capture, or null when it does not apply (then the caller runs the tfjs path). `names` are canonical,
 * validated Conv1D weight names without duplicates (GPT2.beginGradientRows checks them first). Synchronous: the
 * whole capture is recorded and submitted before this returns; the rows are tensors at once (the queue fills them
 * before any later work reads them) and only the loss is still on its way back. The caller owns the rows whatever
 * the loss promise does.
 */
export function fastCaptureGradientRows(model: GPT2, promptIds: number[], targetIds: number[], names: string[], keepMask = false): PendingCapture | null {
  if (!fastCapture.enabled) return null;
  const be = activeWebGPUBackend();
  if (!be) return null;
  const cfg = model.config;
  const dims = dimsOf(model);
  const ids = [...promptIds, ...targetIds];
  const T = ids.length;
  const NT = targetIds.length;
  const P = promptIds.length;
  if (T > dims.tMax || T > cfg.nPositions || P < 1 || NT < 1) return null;
  if (cfg.activation !== 'gelu_new' && cfg.activation !== 'gelu') return null;
  if (cfg.nEmbd % cfg.nHead !== 0) return null;
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) return null;
  const requests: Request[] = [];
  for (const name of names) {
    const m = KIND.exec(name);
    if (!m) return null;
    requests.push({ name, layer: Number(m[1]), kind: m[2] });
  }
  if (requests.length === 0) return null;
  const device = be.device;
  const limit = device.limits.maxStorageBufferBindingSize;
  if (4 * Math.max(NT * dims.V, dims.H * T * T, dims.V * dims.C) > limit) return null;
  return run(be, model, dims, ids, P, NT, requests, keepMask);
}

function run(be: WebGPUBackend, model: GPT2, dims: CaptureDims, ids: number[], P: number, NT: number, requests: Request[], keepMask: boolean): PendingCapture {
  const device = be.device;
  const { C, F, H } = dims;
  const L = model.config.nLayer;
  const T = ids.length;
  const s = scratchFor(model, device, dims, T, NT);

  // The weights' current buffers (never cached: setWeight/assign gives a variable a new one). A weight that still
  // sits on the CPU is uploaded first; tfjs records that upload in its own encoder, flushed below before our submit.
  const weight = (name: string) => tensorBuffer(be, model.getWeight(name));
  const h = (l: number, n: string) => weight(`transformer.h.${l}.${n}`);
  const wte = weight('transformer.wte.weight');

  const rec = new Recorder(s.paramSlots);
  const part = s.part;

  // Forward over all T rows.
  const blockIn = (l: number) => s.layers[l].xres;
  rec.add('embed', { t: T }, [s.ids, wte, weight('transformer.wpe.weight'), blockIn(0)], flatGrid(T * C));
  for (let l = 0; l < L; l++) {
    const b = s.layers[l];
    const out = l + 1 < L ? s.layers[l + 1].xres : s.xFinal;
    rec.add('lnFwd', {}, [b.xres, h(l, 'ln_1.weight'), h(l, 'ln_1.bias'), b.h1, b.ln1], [T, 1, 1]);
    rec.matmul({ a: b.h1, b: h(l, 'attn.c_attn.weight'), transB: false, M: T, N: 3 * C, K: C, part, bias: h(l, 'attn.c_attn.bias'), out: b.qkv });
    rec.add('attnFwd', { t: T }, [b.qkv, b.probs, b.yatt], [T, H, 1]);
    rec.matmul({ a: b.yatt, b: h(l, 'attn.c_proj.weight'), transB: false, M: T, N: C, K: C, part, bias: h(l, 'attn.c_proj.bias'), addend: b.xres, out: b.xmid });
    rec.add('lnFwd', {}, [b.xmid, h(l, 'ln_2.weight'), h(l, 'ln_2.bias'), b.h2, b.ln2], [T, 1, 1]);
    rec.matmul({ a: b.h2, b: h(l, 'mlp.c_fc.weight'), transB: false, M: T, N: F, K: C, part, bias: h(l, 'mlp.c_fc.bias'), epi: 'act', out: b.f, out2: b.g });
    rec.matmul({ a: b.g, b: h(l, 'mlp.c_proj.weight'), transB: false, M: T, N: C, K: F, part, bias: h(l, 'mlp.c_proj.bias'), addend: b.xmid, out });
  }

  // Loss: ln_f, logits of the target rows (positions P−1 … P+NT−2), loss rows and dlogits, back through the tied
  // head to the target rows of ln_f's output, then ln_f's backward (zero gradient on the other rows).
  const lnfW = weight('transformer.ln_f.weight');
  rec.add('lnFwd', {}, [s.xFinal, lnfW, weight('transformer.ln_f.bias'), s.hf, s.lnf], [T, 1, 1]);
  rec.matmul({ a: s.hf, aRow: P - 1, b: wte, transB: true, M: NT, N: dims.V, K: C, part, out: s.logits });
  rec.add('xent', { m: NT, a_off: P }, [s.ids, s.logits, s.loss], [NT, 1, 1]);
  rec.matmul({ a: s.logits, b: wte, transB: false, M: NT, N: C, K: dims.V, part, out: s.dhf });
  rec.add('lnBwd', { win0: P - 1, win_n: NT }, [s.dhf, s.xFinal, s.lnf, lnfW, s.layers[L - 1].dxOut], [T, 1, 1]);

  // Backward, block by block from the top, down to the lowest requested weight.
  const lowest = Math.min(...requests.map((r) => r.layer));
  const lowestStage = Math.max(...requests.filter((r) => r.layer === lowest).map((r) => STAGE[r.kind]));
  for (let l = L - 1; l >= lowest; l--) {
    const need = l > lowest ? FULL_BLOCK : lowestStage;
    const b = s.layers[l];
    if (need < 1) break;
    // mlp.c_proj: dg = dxOut·Wᵀ, then × act′(f): c_fc's δ.
    rec.matmul({ a: b.dxOut, b: h(l, 'mlp.c_proj.weight'), transB: true, M: T, N: F, K: C, part, epi: 'actGrad', pre: b.f, out: b.df });
    if (need < 2) break;
    // c_fc: dh2 = df·Wᵀ; LN2 backward + the residual's gradient: attn.c_proj's δ.
    rec.matmul({ a: b.df, b: h(l, 'mlp.c_fc.weight'), transB: true, M: T, N: C, K: F, part, out: s.tmp });
    rec.add('lnBwdAdd', { win0: 0, win_n: T }, [s.tmp, b.xmid, b.ln2, h(l, 'ln_2.weight'), b.dxOut, b.dxMid], [T, 1, 1]);
    if (need < 3) break;
    // attn.c_proj: dy = dxMid·Wᵀ; attention backward: c_attn's δ.
    rec.matmul({ a: b.dxMid, b: h(l, 'attn.c_proj.weight'), transB: true, M: T, N: C, K: C, part, out: s.tmp });
    rec.add('attnBwdQ', { t: T }, [s.tmp, b.qkv, b.probs, s.ds, b.dqkv], [T, H, 1]);
    rec.add('attnBwdKV', { t: T }, [s.tmp, b.qkv, b.probs, s.ds, b.dqkv], [T, H, 1]);
    if (need < 4) break;
    // c_attn: dh1 = dqkv·Wᵀ; LN1 backward + the residual: the gradient of the block's input = the block below's output.
    rec.matmul({ a: b.dqkv, b: h(l, 'attn.c_attn.weight'), transB: true, M: T, N: C, K: 3 * C, part, out: s.tmp });
    if (l > 0) rec.add('lnBwdAdd', { win0: 0, win_n: T }, [s.tmp, b.xres, b.ln1, h(l, 'ln_1.weight'), b.dxMid, s.layers[l - 1].dxOut], [T, 1, 1]);
  }

  // A request's x and δ rows: which scratch buffers hold them, and their widths.
  const rowsOf = (r: Request): { x: GPUBuffer; xCols: number; d: GPUBuffer; dCols: number } => {
    const b = s.layers[r.layer];
    if (r.kind === 'attn.c_attn') return { x: b.h1, xCols: C, d: b.dqkv, dCols: 3 * C };
    if (r.kind === 'attn.c_proj') return { x: b.yatt, xCols: C, d: b.dxMid, dCols: C };
    if (r.kind === 'mlp.c_fc') return { x: b.h2, xCols: C, d: b.df, dCols: F };
    return { x: b.g, xCols: F, d: b.dxOut, dCols: C };
  };
  // Fresh tfjs tensors for the results (pool buffers of exactly the right size; the caller owns them).
  const fresh = (rows: number, cols: number): [tf.Tensor2D, GPUBuffer] => {
    const [t, buffer] = outputTensor<tf.Rank.R2>(be, [rows, cols]); // our commands write all of it
    return [t, buffer];
  };
  // The keep mask (which rows MEND keeps: neither x nor δ all zero), asked for by the editor: kernels/row_flags.ts's
  // program, standalone, written straight into its tensor. Here it costs a dispatch in this pass; as a tfjs op after
  // the capture it was a tfjs dispatch per weight. With rowFlags off (the bench's tfjs-op side), its tfjs-op
  // reference runs after the read-back instead.
  const keeps = new Map<string, tf.Tensor2D>();
  if (keepMask && rowFlags.enabled) {
    for (const r of requests) {
      const { x, xCols, d, dCols } = rowsOf(r);
      const [keep, keepBuf] = fresh(T, 1);
      keeps.set(r.name, keep);
      rec.addProgram('row keep', rowKeepSource, [T, xCols, T, dCols], [x, d, keepBuf], rowKeepProgram(T).dispatch);
    }
  }

  device.pushErrorScope('validation');
  // Our per-call inputs, then tfjs's pending work (weight uploads, ops issued before this call), then ours: the
  // uniforms of every dispatch are written before the first chunk is submitted.
  device.queue.writeBuffer(s.params, 0, rec.params.buffer, 0, rec.dispatches.length * SLOT);
  device.queue.writeBuffer(s.ids, 0, Uint32Array.from(ids));
  flushTfjs(be);
  // The dispatches in chunks of fastCapture.submitEvery, each its own encoder, compute pass and submit (the queue
  // runs them in order); the last encoder also copies the rows into the caller's tensors and the loss rows into a
  // mappable buffer. Validation errors (bind groups, encoding, submit) are collected in the error scope and turned
  // into an exception.
  const every = fastCapture.submitEvery > 0 ? fastCapture.submitEvery : rec.dispatches.length;
  let encoder = device.createCommandEncoder({ label: 'mendlab capture' });
  for (let start = 0; start < rec.dispatches.length; start += every) {
    if (start > 0) {
      device.queue.submit([encoder.finish()]);
      fastCapture.submits++;
      encoder = device.createCommandEncoder({ label: 'mendlab capture' });
    }
    const end = Math.min(start + every, rec.dispatches.length);
    const timestampWrites = fastCapture.passTimestamps?.(start / every, rec.dispatches.slice(start, end).map((d) => d.kernel));
    const pass = encoder.beginComputePass({ label: 'mendlab capture', ...(timestampWrites ? { timestampWrites } : {}) });
    for (let i = start; i < end; i++) {
      const d = rec.dispatches[i];
      const p = d.source ? cachedPipeline(device, 'mendlab capture program', d.kernel, d.source) : pipeline(device, dims, d.kernel);
      pass.setPipeline(p);
      pass.setBindGroup(0, s.bindGroups.get(device, i, p, [
        { buffer: s.params, offset: d.slot * SLOT, size: PARAM_FIELDS.length * 4 },
        ...d.buffers.map((buffer) => ({ buffer })),
      ]));
      pass.dispatchWorkgroups(...d.grid);
    }
    pass.end();
  }

  const rows: Record<string, GradientRows> = {};
  const output = (src: GPUBuffer, cols: number): tf.Tensor2D => {
    const [t, dst] = fresh(T, cols);
    encoder.copyBufferToBuffer(src, 0, dst, 0, T * cols * 4);
    return t;
  };
  for (const r of requests) {
    const { x, xCols, d, dCols } = rowsOf(r);
    rows[r.name] = { x: output(x, xCols), delta: output(d, dCols) };
    const keep = keeps.get(r.name);
    if (keep) rows[r.name].keep = keep;
  }
  // The scratch's read-back buffer, unless an earlier capture with this scratch still has it (then one for this call).
  const own = s.staging;
  s.staging = null;
  const staging = own ?? lossReadBack(device, NT);
  encoder.copyBufferToBuffer(s.loss, 0, staging, 0, NT * 4);
  device.queue.submit([encoder.finish()]);
  fastCapture.submits++;
  const validation = device.popErrorScope();
  fastCapture.captures++;
  fastCapture.dispatches += rec.dispatches.length;

  // With rowFlags off (the bench's tfjs-op side) the masks are its tfjs-op reference, queued after our submit.
  if (keepMask && !rowFlags.enabled) for (const r of Object.values(rows)) r.keep = rowKeepMask(r.x, r.delta);

  const loss = (async () => {
    try {
      const lossRows = await readBackChecked('fast capture', validation, staging, NT);
      let sum = 0;
      for (const v of lossRows) sum += v;
      // Mean NLL in float32 like the tfjs path (its tf.mean), so both paths report the same number.
      const mean = Math.fround(Math.fround(sum) / NT);
      if (!Number.isFinite(mean)) throw new Error(`fast capture: the loss is not finite (${mean})`);
      return mean;
    } finally {
      // Back to the scratch while it is alive (destroyScratch empties s.all) and has none; else freed.
      if (own && s.all.length > 0 && !s.staging) s.staging = own;
      else staging.destroy();
    }
  })();
  return { rows, loss };
}
