// WGSL for the fast capture (src/model/fast_capture.ts): GPT-2 forward + backward for MEND's x/δ rows, written as
// plain compute shaders that the driver records into ONE command encoder on tfjs's GPUDevice.
//
// Why not tfjs programs: on the H100 run of 2026-11-27 a capture was 384 tfjs dispatches at ~136 µs of JavaScript +
// tfjs + Dawn work each (docs/benchmarks.md "Dispatch overhead"), while the GPU waited. Here each dispatch is one
// setPipeline/setBindGroup/dispatchWorkgroups triple in a single compute pass.
//
// Conventions shared by every kernel:
// * binding 0 is a small uniform block (struct Params) of per-dispatch values: everything that depends on the
//   sequence (T, row counts, offsets, the split-K factor). Model dimensions (C, F, heads, vocab, eps) are WGSL
//   constants, so a pipeline depends on the model config only and is compiled once per (device, config).
// * the other bindings are f32 storage arrays (ids: u32), in the order `bindings` lists them: read-only inputs
//   first, writable outputs last. The driver binds buffers in the same order.
// * 64-thread workgroups (256 for the vocabulary-wide softmax); flat kernels cover a 2-D grid of workgroups
//   (index = (wg.y · nwg.x + wg.x) · 64 + lid), so large outputs need no more than 65535 groups per dimension.
// * no infinities (tfjs-webgpu.md pitfall 11): the running max starts at −3.4e38, masked attention entries are
//   skipped and written as exact zeros (as tfjs's exp(−1e9 − max) gives), so rows that cannot influence the loss
//   get exact-zero δ, the same rows MEND's keep mask drops on the tfjs path.
//
// The maths, per kernel, is the tfjs path's (gpt2.ts forwardCore + autodiff): same formulas, same order of the
// element-wise steps; only the summation order of the reductions differs (float rounding, ~1e-7 relative).
import type { Activation } from '../model/config';
import { f32Literal, workgroupReductions } from './wgsl';

export const WG = 64;
/** Rows of the output each matmul thread accumulates (registers; M = T is not known at compile time). */
export const MM_ROWS = 4;
/** Threads of the softmax-cross-entropy kernel (one workgroup per target row, strided over the vocabulary). */
export const XENT_WG = 256;

export interface CaptureDims {
  /** n_embd */
  C: number;
  /** MLP width (n_inner) */
  F: number;
  /** heads */
  H: number;
  /** vocabulary */
  V: number;
  eps: number;
  activation: Activation;
  /** the longest sequence the attention kernels hold in workgroup memory */
  tMax: number;
}

/** Per-dispatch uniform values. Field order = the WGSL struct; 16 u32 = 64 bytes. */
export const PARAM_FIELDS = ['m', 'n', 'k', 'kc', 's', 'a_off', 'b_off', 'out_off', 't', 'win0', 'win_n', 'p0', 'p1', 'p2', 'p3', 'p4'] as const;
export type ParamName = (typeof PARAM_FIELDS)[number];
export type Params = Partial<Record<ParamName, number>>;

const f = f32Literal;

function header(d: CaptureDims, bindings: Array<[string, 'f32' | 'u32', 'read' | 'read_write']>): string {
  const hd = d.C / d.H;
  return `
struct Params { ${PARAM_FIELDS.map((p) => `${p} : u32`).join(', ')} }
@group(0) @binding(0) var<uniform> prm : Params;
${bindings.map(([name, ty, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name} : array<${ty}>;`).join('\n')}
const C : u32 = ${d.C}u;
const C3 : u32 = ${3 * d.C}u;
const F : u32 = ${d.F}u;
const HD : u32 = ${hd}u;
const V : u32 = ${d.V}u;
const EPS : f32 = ${f(d.eps)};
const SCALE : f32 = ${f(Math.fround(1 / Math.sqrt(hd)))};
`;
}

// gelu_new as src/kernels/gelu.ts computes it (forward) and as its tfjs-op gradient does (backward); plain gelu as
// gpt2.ts's tfjs ops (x·0.5·(1 + erf(x/√2)), erf by Abramowitz–Stegun 7.1.26 like tfjs-webgpu's Erf, derivative
// 2/√π·e^{−z²} like tfjs's Erf gradient). tanh as tfjs-webgpu's TANH: no overflow for any input.
function activationCode(a: Activation): string {
  const K = Math.sqrt(2 / Math.PI);
  const A = 0.044715;
  if (a === 'gelu_new') {
    return `
fn tanh_safe(u : f32) -> f32 { let e = exp(-2.0 * abs(u)); return sign(u) * (1.0 - e) / (1.0 + e); }
fn act_fwd(x : f32) -> f32 { let u = ${f(K)} * (x + ${f(A)} * x * x * x); return 0.5 * x * (1.0 + tanh_safe(u)); }
fn act_grad(x : f32) -> f32 {
  let x2 = x * x;
  let t = tanh_safe(x * (1.0 + x2 * ${f(A)}) * ${f(K)});
  let du = (1.0 + x2 * ${f(3 * A)}) * ${f(K)};
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du;
}`;
  }
  return `
fn erf_as(a : f32) -> f32 {
  let t = 1.0 / (1.0 + 0.3275911 * abs(a));
  return sign(a) * (1.0 - (((((1.061405429 * t + -1.453152027) * t) + 1.421413741) * t + -0.284496736) * t + 0.254829592) * t * exp(-abs(a) * abs(a)));
}
fn act_fwd(x : f32) -> f32 { return x * 0.5 * (1.0 + erf_as(x * ${f(Math.SQRT1_2)})); }
fn act_grad(x : f32) -> f32 {
  let z = x * ${f(Math.SQRT1_2)};
  return 0.5 * (1.0 + erf_as(z)) + x * 0.5 * ${f(2 / Math.sqrt(Math.PI))} * exp(-z * z) * ${f(Math.SQRT1_2)};
}`;
}

const FLAT_INDEX = `let i = (wg.y * nwg.x + wg.x) * ${WG}u + lid;`;
const FLAT_ARGS = `@builtin(workgroup_id) wg : vec3<u32>, @builtin(num_workgroups) nwg : vec3<u32>, @builtin(local_invocation_index) lid : u32`;

/** x0[t, c] = wte[ids[t], c] + wpe[t, c]. Flat over T·C. */
function embed(d: CaptureDims): string {
  return header(d, [['ids', 'u32', 'read'], ['wte', 'f32', 'read'], ['wpe', 'f32', 'read'], ['out', 'f32', 'read_write']]) + `
@compute @workgroup_size(${WG}) fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  if (i >= prm.t * C) { return; }
  let t = i / C;
  out[i] = wte[ids[t] * C + (i - t * C)] + wpe[i];
}`;
}

/** LayerNorm of each of T rows (one workgroup per row, as src/kernels/layer_norm.ts), keeping mean and rstd. */
function layerNormForward(d: CaptureDims): string {
  return header(d, [['x', 'f32', 'read'], ['gamma', 'f32', 'read'], ['beta', 'f32', 'read'], ['out', 'f32', 'read_write'], ['stats', 'f32', 'read_write']]) +
    workgroupReductions(WG) + `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let base = wg.x * C;
  var s = 0.0;
  for (var c = tid; c < C; c = c + ${WG}u) { s = s + x[base + c]; }
  let mean = wsum(tid, s) / f32(C);
  var q = 0.0;
  for (var c = tid; c < C; c = c + ${WG}u) { let dv = x[base + c] - mean; q = q + dv * dv; }
  let rstd = inverseSqrt(wsum(tid, q) / f32(C) + EPS);
  for (var c = tid; c < C; c = c + ${WG}u) { out[base + c] = (x[base + c] - mean) * rstd * gamma[c] + beta[c]; }
  if (tid == 0u) { stats[2u * wg.x] = mean; stats[2u * wg.x + 1u] = rstd; }
}`;
}

/**
 * LayerNorm backward from the saved stats, for rows win0 ≤ t < win0 + win_n taking dy from row t − win0 of `dy`
 * (ln_f: only the target rows have a gradient); other rows get a zero gradient. Optionally adds `addend` (the
 * residual stream's gradient). dx = r·(g − mean(g) − x̂·mean(g·x̂)), g = dy·γ — gpt2's layerNorm customGrad.
 */
function layerNormBackward(d: CaptureDims, addend: boolean): string {
  const b: Array<[string, 'f32' | 'u32', 'read' | 'read_write']> = [['dy', 'f32', 'read'], ['x', 'f32', 'read'], ['stats', 'f32', 'read'], ['gamma', 'f32', 'read']];
  if (addend) b.push(['addend', 'f32', 'read']);
  b.push(['out', 'f32', 'read_write']);
  const plus = addend ? ' + addend[base + c]' : '';
  return header(d, b) + `
var<workgroup> red2 : array<vec2<f32>, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let row = wg.x;
  let base = row * C;
  if (row < prm.win0 || row >= prm.win0 + prm.win_n) {
    for (var c = tid; c < C; c = c + ${WG}u) { out[base + c] = 0.0${plus}; }
    return;
  }
  let gbase = (row - prm.win0) * C;
  let mean = stats[2u * row];
  let r = stats[2u * row + 1u];
  var acc = vec2<f32>(0.0, 0.0);
  for (var c = tid; c < C; c = c + ${WG}u) {
    let g = dy[gbase + c] * gamma[c];
    acc = acc + vec2<f32>(g, g * (x[base + c] - mean) * r);
  }
  red2[tid] = acc;
  workgroupBarrier();
  for (var s = ${WG / 2}u; s > 0u; s = s / 2u) {
    if (tid < s) { red2[tid] = red2[tid] + red2[tid + s]; }
    workgroupBarrier();
  }
  let mg = red2[0].x / f32(C);
  let mgx = red2[0].y / f32(C);
  for (var c = tid; c < C; c = c + ${WG}u) {
    let g = dy[gbase + c] * gamma[c];
    let xh = (x[base + c] - mean) * r;
    out[base + c] = r * ((g - mg) - xh * mgx)${plus};
  }
}`;
}

/** k steps per iteration of the unrolled matmul loop: MM_UNROLL independent loads of B in flight per thread. */
export const MM_UNROLL = 8;

/**
 * Split-K partial products of out = A·B (transB: A·Bᵀ): part[s, m, n] = Σ_{k in chunk s} A[m, k]·B(k, n).
 * A: M×K rows from a_off; B: K×N (or N×K when transposed) from b_off. Workgroup (n-block of 64, m-block of 4, s).
 * Why split K: M is the token count (~16), so one thread per output would leave a GPU nearly idle on long K loops.
 * `unroll` k steps per loop iteration: their B loads are issued together before the multiply-adds, so a thread has
 * that many memory requests in flight instead of one (the H100 profile of 2026-11-27 put these matmuls at 1.8 ms of
 * the capture's 3.1 ms, for a few µs of arithmetic and reads that mostly hit L2: most likely the latency of one load
 * at a time). Each row still sums in k order, as with unroll = 1.
 */
function matmulPartial(d: CaptureDims, transB: boolean, unroll: number): string {
  const bAt = (k: string) => (transB ? `b[prm.b_off + n * prm.k + ${k}]` : `b[prm.b_off + (${k}) * prm.n + n]`);
  const rows = Array.from({ length: MM_ROWS }, (_, r) => r);
  const steps = Array.from({ length: unroll }, (_, j) => j);
  const unrolled = unroll <= 1 ? '' : `
  for (; k + ${unroll}u <= k1; k = k + ${unroll}u) {
    ${steps.map((j) => `let b${j} = ${bAt(`k + ${j}u`)};`).join('\n    ')}
    ${rows.map((r) => `acc${r} = acc${r}${steps.map((j) => ` + a[a${r} + k + ${j}u] * b${j}`).join('')};`).join('\n    ')}
  }`;
  return header(d, [['a', 'f32', 'read'], ['b', 'f32', 'read'], ['part', 'f32', 'read_write']]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) lid : u32) {
  let n = wg.x * ${WG}u + lid;
  if (n >= prm.n) { return; }
  let m0 = wg.y * ${MM_ROWS}u;
  let k0 = wg.z * prm.kc;
  let k1 = min(prm.k, k0 + prm.kc);
  // Rows past M read row M − 1 (valid memory) and are not written.
  ${rows.map((r) => `let a${r} = prm.a_off + min(m0 + ${r}u, prm.m - 1u) * prm.k;`).join('\n  ')}
  ${rows.map((r) => `var acc${r} = 0.0;`).join(' ')}
  var k = k0;${unrolled}
  for (; k < k1; k = k + 1u) {
    let bv = ${bAt('k')};
    ${rows.map((r) => `acc${r} = acc${r} + a[a${r} + k] * bv;`).join('\n    ')}
  }
  let o = (wg.z * prm.m + m0) * prm.n + n;
  ${rows.map((r) => `if (m0 + ${r}u < prm.m) { part[o + ${r}u * prm.n] = acc${r}; }`).join('\n  ')}
}`;
}

export type Epilogue = 'none' | 'act' | 'actGrad';

/**
 * Sums the split-K partials and finishes the linear: + bias, then either nothing, the activation (writes the
 * pre-activation to `out` and act(·) to `out2`: the MLP's c_fc), or × act′(pre) (the backward through the
 * activation); + addend (a residual). out[out_off + i].
 */
function matmulReduce(d: CaptureDims, bias: boolean, addend: boolean, epi: Epilogue): string {
  const b: Array<[string, 'f32' | 'u32', 'read' | 'read_write']> = [['part', 'f32', 'read']];
  if (bias) b.push(['bias', 'f32', 'read']);
  if (addend) b.push(['addend', 'f32', 'read']);
  if (epi === 'actGrad') b.push(['pre', 'f32', 'read']);
  b.push(['out', 'f32', 'read_write']);
  if (epi === 'act') b.push(['out2', 'f32', 'read_write']);
  return header(d, b) + activationCode(d.activation) + `
@compute @workgroup_size(${WG}) fn main(${FLAT_ARGS}) {
  ${FLAT_INDEX}
  let total = prm.m * prm.n;
  if (i >= total) { return; }
  var v = 0.0;
  for (var s = 0u; s < prm.s; s = s + 1u) { v = v + part[s * total + i]; }
  ${bias ? 'v = v + bias[i % prm.n];' : ''}
  ${epi === 'act' ? 'out2[i] = act_fwd(v);' : ''}
  ${epi === 'actGrad' ? 'v = v * act_grad(pre[i]);' : ''}
  ${addend ? 'v = v + addend[i];' : ''}
  out[prm.out_off + i] = v;
}`;
}

/**
 * Causal self-attention of query row i, head h (one workgroup each): probs[h, i, :] = softmax(q·kᵀ·scale) over
 * j ≤ i (exact zeros after i), y[i, h·hd:] = Σ_j p_j v_j. qkv rows are [q | k | v], heads contiguous in each.
 */
function attentionForward(d: CaptureDims): string {
  return header(d, [['qkv', 'f32', 'read'], ['probs', 'f32', 'read_write'], ['y', 'f32', 'read_write']]) + workgroupReductions(WG) + `
var<workgroup> sc : array<f32, ${d.tMax}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let i = wg.x;
  let h = wg.y;
  let T = prm.t;
  let q = i * C3 + h * HD;
  var mx = -3.4e38;
  for (var j = tid; j <= i; j = j + ${WG}u) {
    let kk = j * C3 + C + h * HD;
    var dot = 0.0;
    for (var e = 0u; e < HD; e = e + 1u) { dot = dot + qkv[q + e] * qkv[kk + e]; }
    let s = dot * SCALE;
    sc[j] = s;
    mx = max(mx, s);
  }
  mx = wmax(tid, mx);
  var sum = 0.0;
  for (var j = tid; j <= i; j = j + ${WG}u) { let e = exp(sc[j] - mx); sc[j] = e; sum = sum + e; }
  sum = wsum(tid, sum);
  let row = (h * T + i) * T;
  for (var j = tid; j < T; j = j + ${WG}u) {
    var p = 0.0;
    if (j <= i) { p = sc[j] / sum; sc[j] = p; }
    probs[row + j] = p;
  }
  workgroupBarrier();
  for (var e = tid; e < HD; e = e + ${WG}u) {
    var acc = 0.0;
    for (var j = 0u; j <= i; j = j + 1u) { acc = acc + sc[j] * qkv[j * C3 + 2u * C + h * HD + e]; }
    y[i * C + h * HD + e] = acc;
  }
}`;
}

/**
 * Attention backward, part 1, query row i / head h: dP_j = dy_i·v_j, dS_j = p_j·(dP_j − Σ p·dP)·scale (tfjs's
 * softmax gradient, then the scale), stored in ds; dq_i = Σ_j dS_j k_j into the q third of dqkv.
 */
function attentionBackwardQ(d: CaptureDims): string {
  return header(d, [['dy', 'f32', 'read'], ['qkv', 'f32', 'read'], ['probs', 'f32', 'read'], ['ds', 'f32', 'read_write'], ['dqkv', 'f32', 'read_write']]) +
    workgroupReductions(WG) + `
var<workgroup> sc : array<f32, ${d.tMax}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let i = wg.x;
  let h = wg.y;
  let T = prm.t;
  let row = (h * T + i) * T;
  let g = i * C + h * HD;
  var local = 0.0;
  for (var j = tid; j <= i; j = j + ${WG}u) {
    let vv = j * C3 + 2u * C + h * HD;
    var dp = 0.0;
    for (var e = 0u; e < HD; e = e + 1u) { dp = dp + dy[g + e] * qkv[vv + e]; }
    sc[j] = dp;
    local = local + dp * probs[row + j];
  }
  let rs = wsum(tid, local);
  for (var j = tid; j < T; j = j + ${WG}u) {
    var v = 0.0;
    if (j <= i) { v = probs[row + j] * (sc[j] - rs) * SCALE; sc[j] = v; }
    ds[row + j] = v;
  }
  workgroupBarrier();
  for (var e = tid; e < HD; e = e + ${WG}u) {
    var acc = 0.0;
    for (var j = 0u; j <= i; j = j + 1u) { acc = acc + sc[j] * qkv[j * C3 + C + h * HD + e]; }
    dqkv[i * C3 + h * HD + e] = acc;
  }
}`;
}

/** Attention backward, part 2, key/value row j / head h: dk_j = Σ_{i≥j} dS_ij q_i, dv_j = Σ_{i≥j} p_ij dy_i. */
function attentionBackwardKV(d: CaptureDims): string {
  return header(d, [['dy', 'f32', 'read'], ['qkv', 'f32', 'read'], ['probs', 'f32', 'read'], ['ds', 'f32', 'read'], ['dqkv', 'f32', 'read_write']]) + `
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let j = wg.x;
  let h = wg.y;
  let T = prm.t;
  for (var e = tid; e < HD; e = e + ${WG}u) {
    var dk = 0.0;
    var dv = 0.0;
    for (var i = j; i < T; i = i + 1u) {
      let pij = (h * T + i) * T + j;
      dk = dk + ds[pij] * qkv[i * C3 + h * HD + e];
      dv = dv + probs[pij] * dy[i * C + h * HD + e];
    }
    dqkv[j * C3 + C + h * HD + e] = dk;
    dqkv[j * C3 + 2u * C + h * HD + e] = dv;
  }
}`;
}

/**
 * The loss rows and their gradient, one workgroup per target row j (logits row of position a_off − 1 + j):
 * loss_j = logsumexp − logit[target], then logits ← (softmax − onehot) / m in place (m = number of targets):
 * the gradient of mean NLL. The target of row j is ids[a_off + j].
 */
function softmaxXent(d: CaptureDims): string {
  return header(d, [['ids', 'u32', 'read'], ['logits', 'f32', 'read_write'], ['loss', 'f32', 'read_write']]) + workgroupReductions(XENT_WG) + `
@compute @workgroup_size(${XENT_WG}) fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_index) tid : u32) {
  let j = wg.x;
  let base = j * V;
  let tgt = ids[prm.a_off + j];
  let tl = logits[base + tgt];
  var mx = -3.4e38;
  for (var v = tid; v < V; v = v + ${XENT_WG}u) { mx = max(mx, logits[base + v]); }
  mx = wmax(tid, mx);
  var se = 0.0;
  for (var v = tid; v < V; v = v + ${XENT_WG}u) { se = se + exp(logits[base + v] - mx); }
  se = wsum(tid, se);
  if (tid == 0u) { loss[j] = mx + log(se) - tl; }
  let inv = 1.0 / f32(prm.m);
  for (var v = tid; v < V; v = v + ${XENT_WG}u) {
    var p = exp(logits[base + v] - mx) / se;
    if (v == tgt) { p = p - 1.0; }
    logits[base + v] = p * inv;
  }
}`;
}

/** Every kernel the capture uses, by name; `variant` strings are part of the name (see fast_capture.ts). */
export function kernelSource(name: string, d: CaptureDims): string {
  switch (name) {
    case 'embed': return embed(d);
    case 'lnFwd': return layerNormForward(d);
    case 'lnBwd': return layerNormBackward(d, false);
    case 'lnBwdAdd': return layerNormBackward(d, true);
    case 'mmN': return matmulPartial(d, false, MM_UNROLL);
    case 'mmT': return matmulPartial(d, true, MM_UNROLL);
    case 'mmN:plain': return matmulPartial(d, false, 1);
    case 'mmT:plain': return matmulPartial(d, true, 1);
    case 'attnFwd': return attentionForward(d);
    case 'attnBwdQ': return attentionBackwardQ(d);
    case 'attnBwdKV': return attentionBackwardKV(d);
    case 'xent': return softmaxXent(d);
  }
  const r = /^reduce:b([01]):a([01]):(none|act|actGrad)$/.exec(name);
  if (r) return matmulReduce(d, r[1] === '1', r[2] === '1', r[3] as Epilogue);
  throw new Error(`capture kernels: unknown kernel "${name}"`);
}
