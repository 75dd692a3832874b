// WGSL for the fast greedy decode path (src/model/fast_decode.ts): one GPT-2 decode step for ONE new token as
// ~7 dispatches per layer, on raw GPUBuffers, outside tfjs.
//
// Why outside tfjs: on the H100 run of 2026-11-27 a decode token cost ~114-138 tfjs dispatches at ~136 µs of
// JavaScript + Dawn work each (shader-key strings, a uniform buffer and a bind group per op), against 2.8 ms of GPU
// work (docs/benchmarks.md "Dispatch overhead"). Here every pipeline is compiled once per device and model shape,
// every bind group once per generate call, and a token is just setPipeline/setBindGroup/dispatch triples. Nothing
// per token lives on the CPU: the position and the token id are in a small `state` storage buffer that the kernels
// read and the final argmax kernel advances, so many tokens can be encoded back to back with no read-back between.
//
// Every size is a compile-time constant in the WGSL text (the pipeline cache keys on the full text, so a different
// shape can never reuse a wrong pipeline, tfjs-webgpu.md pitfall 8). Everything is f32, and the buffers are plain
// `array<f32>` / `array<u32>` views of whole buffers (tfjs buffers always start at offset 0: no shallow slices on webgpu).
//
// The `state` buffer (array<u32>, 4 entries):
//   [0] pos       position of the token fed in this step
//   [1] id        the token fed in this step (written by the previous step's argmax, or copied from the prefill)
//   [2] n         how many ids are in `ids` (the next one goes to ids[n])
//   [3] kvStride  positions per head in this call's KV buffers (its capacity; a runtime value, not compiled in)
//
// KV cache layout, one buffer per layer: K as [nHead, kvStride, headDim] followed by V as [nHead, kvStride, headDim],
// so one head's keys are contiguous (the attention kernel streams them) and the prompt's K/V ([nHead, T, headDim]
// tensors from the tfjs prefill) are copied in with one copyBufferToBuffer per head.

import { f32Literal, workgroupReductions } from './wgsl';

const f32 = f32Literal;

/** Token embedding plus position embedding of the token in state: x = wte[id] + wpe[pos]. */
export const EMBED_WG = 64;
export function embedWGSL(C: number): string {
  return `
const C = ${C}u;
@group(0) @binding(0) var<storage, read> state : array<u32>;
@group(0) @binding(1) var<storage, read> wte : array<f32>;
@group(0) @binding(2) var<storage, read> wpe : array<f32>;
@group(0) @binding(3) var<storage, read_write> x : array<f32>;

@compute @workgroup_size(${EMBED_WG})
fn main(@builtin(global_invocation_id) g : vec3u) {
  let c = g.x;
  if (c >= C) { return; }
  x[c] = wte[state[1] * C + c] + wpe[state[0] * C + c];
}`;
}

/**
 * LayerNorm of one row of C values, one workgroup, two-pass (mean, then the biased variance of the deviations) like
 * src/kernels/layer_norm.ts. Input and output are separate buffers: the residual stream x stays intact.
 */
export const LN_WG = 64;
export function layerNormWGSL(C: number, eps: number): string {
  return `
const C = ${C}u;
const EPS = ${f32(eps)};
@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read> gamma : array<f32>;
@group(0) @binding(2) var<storage, read> beta : array<f32>;
@group(0) @binding(3) var<storage, read_write> y : array<f32>;
${workgroupReductions(LN_WG)}

@compute @workgroup_size(${LN_WG})
fn main(@builtin(local_invocation_index) tid : u32) {
  var s = 0.0;
  for (var c = tid; c < C; c = c + ${LN_WG}u) { s = s + x[c]; }
  let mean = wsum(tid, s) / f32(C);
  var q = 0.0;
  for (var c = tid; c < C; c = c + ${LN_WG}u) { let d = x[c] - mean; q = q + d * d; }
  let rstd = inverseSqrt(wsum(tid, q) / f32(C) + EPS);
  for (var c = tid; c < C; c = c + ${LN_WG}u) { y[c] = (x[c] - mean) * rstd * gamma[c] + beta[c]; }
}`;
}

/** What a gemv does with `acc + bias[col]` for its output column. */
export type GemvEpilogue =
  /** c_attn: q goes to `out` ([C]); k and v go into the layer's KV cache at state.pos */
  | { kind: 'qkv'; nHead: number }
  /** c_proj (attention and MLP): x[col] += value, the residual add */
  | { kind: 'residual' }
  /** c_fc: out[col] = gelu_new(value) or the erf gelu (config.activation) */
  | { kind: 'gelu_new' }
  | { kind: 'gelu' };

/** Output columns per workgroup (one 32-wide row of W per thread row: a 128-byte coalesced read per warp) ... */
export const GEMV_TX = 32;
/**
 * ... and the split of the K (input) dimension over the workgroup's thread rows, reduced in workgroup memory, on a
 * GPU. On a CPU-emulated adapter (SwiftShader) the driver passes 1: one thread per column and no barrier, which
 * measured ~6× faster there (a barrier makes it switch between every emulated invocation), while a real GPU needs
 * the KS× more threads to keep enough loads in flight for N = 768 columns.
 */
export const GEMV_KS = 8;

/**
 * y = inp @ W + b for one row (Conv1D layout, W stored [K, N] row-major) plus an epilogue. Thread (tx, ks) of a
 * workgroup owns column wg·TX + tx and sums rows i ≡ ks (mod KS): consecutive threads read consecutive floats of a
 * row of W (coalesced), and the KS partial sums meet in workgroup memory. Splitting K gives KS× more threads than
 * one thread per column, which a GPU needs to have enough loads in flight for N = 768 outputs.
 */
export function gemvWGSL(K: number, N: number, ep: GemvEpilogue, splitK: number = GEMV_KS): string {
  const bindings = [
    '@group(0) @binding(0) var<storage, read> inp : array<f32>;',
    '@group(0) @binding(1) var<storage, read> W : array<f32>;',
    '@group(0) @binding(2) var<storage, read> bias : array<f32>;',
  ];
  let epilogue: string;
  let extra = '';
  switch (ep.kind) {
    case 'qkv': {
      // N = 3C; columns [0, C) are q, [C, 2C) k, [2C, 3C) v; head h owns columns h·hd .. h·hd + hd − 1 of each.
      const C = N / 3;
      const hd = C / ep.nHead;
      bindings.push(
        '@group(0) @binding(3) var<storage, read_write> q : array<f32>;',
        '@group(0) @binding(4) var<storage, read> state : array<u32>;',
        '@group(0) @binding(5) var<storage, read_write> kv : array<f32>;',
      );
      extra = `const C = ${C}u;\nconst HD = ${hd}u;\nconst NH = ${ep.nHead}u;`;
      epilogue = `
    if (col < C) {
      q[col] = v;
    } else {
      let which = col / C - 1u;          // 0 = k, 1 = v
      let r = col % C;
      let stride = state[3];
      kv[(which * NH + r / HD) * stride * HD + state[0] * HD + r % HD] = v;
    }`;
      break;
    }
    case 'residual':
      bindings.push('@group(0) @binding(3) var<storage, read_write> x : array<f32>;');
      epilogue = 'x[col] = x[col] + v;';
      break;
    case 'gelu_new':
      bindings.push('@group(0) @binding(3) var<storage, read_write> out : array<f32>;');
      // 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))), tanh as in src/kernels/gelu.ts (cannot overflow).
      epilogue = `
    let u = ${f32(Math.sqrt(2 / Math.PI))} * (v + ${f32(0.044715)} * v * v * v);
    let e = exp(-2.0 * abs(u));
    out[col] = 0.5 * v * (1.0 + sign(u) * (1.0 - e) / (1.0 + e));`;
      break;
    case 'gelu':
      bindings.push('@group(0) @binding(3) var<storage, read_write> out : array<f32>;');
      // 0.5·v·(1 + erf(v/√2)); WGSL has no erf: Abramowitz–Stegun 7.1.26, the approximation tfjs-webgpu's Erf uses.
      epilogue = `
    let a = v * ${f32(Math.SQRT1_2)};
    let t = 1.0 / (1.0 + ${f32(0.3275911)} * abs(a));
    let poly = ((((${f32(1.061405429)} * t + ${f32(-1.453152027)}) * t + ${f32(1.421413741)}) * t + ${f32(-0.284496736)}) * t + ${f32(0.254829592)}) * t;
    let erfA = sign(a) * (1.0 - poly * exp(-a * a));
    out[col] = 0.5 * v * (1.0 + erfA);`;
      break;
  }
  if (splitK === 1) {
    // One thread per output column over the whole of K: no workgroup memory and no barrier.
    return `
const K = ${K}u;
const N = ${N}u;
${extra}
${bindings.join('\n')}

@compute @workgroup_size(${GEMV_TX})
fn main(@builtin(global_invocation_id) g : vec3u) {
  let col = g.x;
  if (col >= N) { return; }
  var acc = 0.0;
  for (var i = 0u; i < K; i = i + 1u) { acc = acc + inp[i] * W[i * N + col]; }
  let v = acc + bias[col];
  ${epilogue}
}`;
  }
  return `
const K = ${K}u;
const N = ${N}u;
const TX = ${GEMV_TX}u;
const KS = ${splitK}u;
${extra}
${bindings.join('\n')}
var<workgroup> part : array<f32, ${GEMV_TX * splitK}>;

@compute @workgroup_size(${GEMV_TX}, ${splitK})
fn main(@builtin(workgroup_id) wg : vec3u, @builtin(local_invocation_id) l : vec3u) {
  let col = wg.x * TX + l.x;
  var acc = 0.0;
  if (col < N) {
    for (var i = l.y; i < K; i = i + KS) { acc = acc + inp[i] * W[i * N + col]; }
  }
  part[l.y * TX + l.x] = acc;
  workgroupBarrier();
  // One barrier, then the first thread row adds the KS partial sums itself: a reduction tree would need log2(KS)
  // more barriers, and barriers are what a CPU-emulated GPU (SwiftShader) pays for most.
  if (l.y == 0u && col < N) {
    var v = bias[col];
    for (var k = 0u; k < KS; k = k + 1u) { v = v + part[k * TX + l.x]; }
    ${epilogue}
  }
}`;
}

export const ATTN_WG = 64;

/** Workgroup memory of the attention kernel: a score per position plus the reduction scratch. */
export const attentionWorkgroupBytes = (nPositions: number) => 4 * (nPositions + ATTN_WG);

/**
 * Single-query causal attention for the token at state.pos, one workgroup per head: scores q·k_j/√hd for the
 * pos + 1 cached positions (the current k, v were written by the qkv kernel just before), softmax, then Σ_j p_j v_j.
 * Scores live in workgroup memory, sized by nPositions (checked against the device limit by the driver).
 */
export function attentionWGSL(nHead: number, headDim: number, nPositions: number): string {
  return `
const NH = ${nHead}u;
const HD = ${headDim}u;
const SCALE = ${f32(1 / Math.sqrt(headDim))};
@group(0) @binding(0) var<storage, read> state : array<u32>;
@group(0) @binding(1) var<storage, read> q : array<f32>;
@group(0) @binding(2) var<storage, read> kv : array<f32>;
@group(0) @binding(3) var<storage, read_write> y : array<f32>;
var<workgroup> scores : array<f32, ${nPositions}>;
${workgroupReductions(ATTN_WG)}

@compute @workgroup_size(${ATTN_WG})
fn main(@builtin(workgroup_id) wg : vec3u, @builtin(local_invocation_index) tid : u32) {
  let h = wg.x;
  let T = state[0] + 1u;
  let stride = state[3];
  let kBase = h * stride * HD;
  let vBase = (NH + h) * stride * HD;
  let qBase = h * HD;
  var m = -3.0e38;
  for (var j = tid; j < T; j = j + ${ATTN_WG}u) {
    var s = 0.0;
    for (var d = 0u; d < HD; d = d + 1u) { s = s + q[qBase + d] * kv[kBase + j * HD + d]; }
    s = s * SCALE;
    scores[j] = s;
    m = max(m, s);
  }
  let mx = wmax(tid, m);
  var sum = 0.0;
  for (var j = tid; j < T; j = j + ${ATTN_WG}u) {
    let e = exp(scores[j] - mx);
    scores[j] = e;
    sum = sum + e;
  }
  let total = wsum(tid, sum); // its barriers also publish every scores[j] to the whole workgroup
  for (var d = tid; d < HD; d = d + ${ATTN_WG}u) {
    var acc = 0.0;
    for (var j = 0u; j < T; j = j + 1u) { acc = acc + scores[j] * kv[vBase + j * HD + d]; }
    y[qBase + d] = acc / total;
  }
}`;
}

/** LM head: LM_THREADS / lanes rows of the tied wte per workgroup pass, each row summed by `lanes` threads ... */
export const LM_THREADS = 256;
/** ... LM_LANES on a GPU; 1 on a CPU-emulated adapter (no barrier per pass, see GEMV_KS). */
export const LM_LANES = 8;
/** vocabulary rows per workgroup pass */
export const lmRowsPerGroup = (lanes: number) => LM_THREADS / lanes;

/**
 * logits[v] = h · wte[v, :] for every vocabulary row, fused with the first argmax stage. wte is [V, C], so a row is
 * contiguous: the `lanes` threads of a row read consecutive floats (with 8 lanes, 32 bytes per row per step: whole
 * memory sectors), and a workgroup covers LM_THREADS / lanes rows per pass. Each pass has two barriers only
 * (partials written; partials consumed; none with 1 lane), and the per-workgroup argmax is a sequential scan by one
 * thread, not a tree: barriers are what a CPU-emulated GPU pays for most, and this kernel has the most workgroups
 * (a first version with reduction trees took 2 s per token on SwiftShader here). Each workgroup leaves the best (value,
 * index) of its rows in partVal/partIdx. The workgroups stride over the vocabulary (`groups` of them, at most the
 * device's maxComputeWorkgroupsPerDimension), so any vocabulary fits one 1-D dispatch. Ties keep the smaller index
 * everywhere, as tf.argMax does (the first maximum wins).
 */
export function lmHeadWGSL(C: number, V: number, groups: number, lanes: number = LM_LANES): string {
  const rows = LM_THREADS / lanes;
  return `
const C = ${C}u;
const V = ${V}u;
const GROUPS = ${groups}u;
const LANES = ${lanes}u;
const ROWS = ${rows}u;
const NONE = 0xffffffffu;
@group(0) @binding(0) var<storage, read> h : array<f32>;
@group(0) @binding(1) var<storage, read> wte : array<f32>;
@group(0) @binding(2) var<storage, read_write> logits : array<f32>;
@group(0) @binding(3) var<storage, read_write> partVal : array<f32>;
@group(0) @binding(4) var<storage, read_write> partIdx : array<u32>;
${lanes > 1 ? `var<workgroup> part : array<f32, ${LM_THREADS}>;` : ''}
var<workgroup> bestV : array<f32, ${rows}>;
var<workgroup> bestI : array<u32, ${rows}>;

fn better(v : f32, i : u32, bv : f32, bi : u32) -> bool {
  return bi == NONE || (i != NONE && (v > bv || (v == bv && i < bi)));
}

@compute @workgroup_size(${lanes}, ${rows})
fn main(@builtin(workgroup_id) wg : vec3u, @builtin(local_invocation_id) l : vec3u) {
  let tid = l.y * LANES + l.x;
  // Lane 0 of each row slot keeps the best of the rows that slot has seen.
  var bv = 0.0;
  var bi = NONE;
  for (var base = wg.x * ROWS; base < V; base = base + GROUPS * ROWS) {
    let row = base + l.y;
    var acc = 0.0;
    if (row < V) {
      for (var c = l.x; c < C; c = c + LANES) { acc = acc + h[c] * wte[row * C + c]; }
    }
${lanes > 1 ? `
    part[tid] = acc;
    workgroupBarrier();
    if (l.x == 0u && row < V) {
      var v = 0.0;
      for (var k = 0u; k < LANES; k = k + 1u) { v = v + part[tid + k]; }
      logits[row] = v;
      if (better(v, row, bv, bi)) { bv = v; bi = row; }
    }
    workgroupBarrier(); // part[] is rewritten by the next pass` : `
    if (row < V) {
      logits[row] = acc;
      if (better(acc, row, bv, bi)) { bv = acc; bi = row; }
    }`}
  }
  if (l.x == 0u) {
    bestV[l.y] = bv;
    bestI[l.y] = bi;
  }
  workgroupBarrier();
  if (tid == 0u) {
    var v = bestV[0];
    var i = bestI[0];
    for (var r = 1u; r < ROWS; r = r + 1u) {
      if (better(bestV[r], bestI[r], v, i)) { v = bestV[r]; i = bestI[r]; }
    }
    partVal[wg.x] = v;
    partIdx[wg.x] = i;
  }
}`;
}

export const ARGMAX_WG = 256;

/**
 * Second argmax stage and the end of a step, one workgroup: the best of the lm-head workgroups' partial results is
 * the next token. It is appended to `ids` and becomes state.id, and state.pos advances, so the next step's
 * embedding kernel reads it straight from the GPU.
 */
export function argmaxStepWGSL(groups: number): string {
  return `
const GROUPS = ${groups}u;
const NONE = 0xffffffffu;
@group(0) @binding(0) var<storage, read> partVal : array<f32>;
@group(0) @binding(1) var<storage, read> partIdx : array<u32>;
@group(0) @binding(2) var<storage, read_write> state : array<u32>;
@group(0) @binding(3) var<storage, read_write> ids : array<u32>;
var<workgroup> bestV : array<f32, ${ARGMAX_WG}>;
var<workgroup> bestI : array<u32, ${ARGMAX_WG}>;

fn better(v : f32, i : u32, bv : f32, bi : u32) -> bool {
  return bi == NONE || (i != NONE && (v > bv || (v == bv && i < bi)));
}

@compute @workgroup_size(${ARGMAX_WG})
fn main(@builtin(local_invocation_index) tid : u32) {
  var bv = 0.0;
  var bi = NONE;
  for (var g = tid; g < GROUPS; g = g + ${ARGMAX_WG}u) {
    if (better(partVal[g], partIdx[g], bv, bi)) { bv = partVal[g]; bi = partIdx[g]; }
  }
  bestV[tid] = bv;
  bestI[tid] = bi;
  workgroupBarrier();
  for (var s = ${ARGMAX_WG / 2}u; s > 0u; s = s / 2u) {
    if (tid < s && better(bestV[tid + s], bestI[tid + s], bestV[tid], bestI[tid])) {
      bestV[tid] = bestV[tid + s];
      bestI[tid] = bestI[tid + s];
    }
    workgroupBarrier();
  }
  if (tid == 0u) {
    let n = state[2];
    ids[n] = bestI[0];
    state[2] = n + 1u;
    state[1] = bestI[0];
    state[0] = state[0] + 1u;
  }
}`;
}
