// Kernel (a): the MEND editor network over the token rows of one edited weight.
//
//   h_0     = concat((x − x_mean) / (x_std + eps), (δ − δ_mean) / (δ_std + eps))          [N, D], D = in + out
//   t_l     = h_l · V_lᵀ                                                                   [N, r]
//   pre_l   = (t_l · U_lᵀ + bias_l) ⊙ mode_scale_l[m] + mode_shift_l[m]
//   h_{l+1} = h_l + max(pre_l, 0)                                                          l = 0 .. L−1 (L = 2)
//
// (docs/formats.md, "Editor forward"). The output h_L holds x̃ in its first `in` columns and δ̃ in the rest.
//
// The cost is reading U and V: at MEND's default shape (distilgpt2, D = 3840, r = 1920) each is 29.5 MB, while
// the rows are tiny (N ≈ 16 tokens). So the design goal is to read every weight once per call, with enough
// workgroups in flight to use the whole GPU's memory bandwidth. Per layer, the two low-rank products are skinny
// matmuls [N, K] · [K, C], done by one program (LowRankPartialProgram) in a split-K layout:
//
//   workgroup (c, s, b): COLS = 64 output columns c·64 …, the K range of split s, ROW_BLOCK = 16 rows of block b.
//     The 16 rows' K-slice is staged in workgroup memory (STAGE_K at a time); each invocation owns one column,
//     streams its weights W[k, col] (neighbouring invocations read neighbouring addresses: coalesced; UNROLL = 8
//     independent loads in flight) and keeps 16 accumulators, so each weight is read once per row block, i.e.
//     once for an edit of ≤ 16 tokens.
//   output: partial sums [splits, N, C]; a small elementwise pass (CombineProgram) adds the splits up, and for
//     U it also applies bias, FiLM scale/shift, the clamp and the residual.
//
// Splitting K is what gives the GPU enough workgroups to keep its memory busy (distilgpt2: 30 column tiles × 30
// splits for h·Vᵀ, 60 × 15 for t·Uᵀ: 900 workgroups each), at the price of partial sums of splits·N·C floats
// (3.7 MB each there, written and read once, against 29.5 MB of weights). Per call that is 1 + 4·L dispatches (9):
// normalise, then per layer h·Vᵀ partials, their sum t, t·Uᵀ partials, and their sum with the block's epilogue.
// Each program's shader is fixed whatever the shape (sizes come in as uniforms), so pipelines compile once.
// COLS, ROW_BLOCK, STAGE_K, UNROLL and TARGET_GROUPS are chosen from first principles, not tuned on a GPU yet.
//
// WebGPU guarantees only 8 storage buffers per shader stage, and tfjs asks for no more, so the editor's
// parameters are packed once at load time (packEditorParams) into 4 tensors instead of 4 + 5·L. U and V are
// stored transposed ([L, D, r] and [L, r, D]), so that in both products the weight is read row by row of K with
// the C output columns contiguous.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, groupsFor, runProgram, type WebGPUBackend, type WebGPUProgram } from './webgpu';

/** One editor (one weight shape), packed for the kernel. All float32. */
export interface PackedEditorParams {
  xDim: number;
  deltaDim: number;
  rank: number;
  nModes: number;
  nLayers: number;
  eps: number;
  /** [2, D]: row 0 = concat(x_mean, delta_mean), row 1 = concat(x_std, delta_std) */
  norm: tf.Tensor2D;
  /** Vᵀ per layer: [L, D, r] */
  vT: tf.Tensor3D;
  /** Uᵀ per layer: [L, r, D] */
  uT: tf.Tensor3D;
  /** [L, 1 + 2M, D]: row 0 = bias, rows 1..M = mode_scale, rows M+1..2M = mode_shift */
  affine: tf.Tensor3D;
}

export interface EditorLayerParams {
  u: tf.Tensor2D; // [D, r]
  v: tf.Tensor2D; // [r, D]
  bias: tf.Tensor1D; // [D]
  modeScale: tf.Tensor2D; // [M, D]
  modeShift: tf.Tensor2D; // [M, D]
}

export interface EditorParams {
  xMean: tf.Tensor1D;
  xStd: tf.Tensor1D;
  deltaMean: tf.Tensor1D;
  deltaStd: tf.Tensor1D;
  layers: EditorLayerParams[];
  eps: number;
}

/** Packs one editor's tensors into the kernel layout (new tensors; the inputs are not disposed). */
export function packEditorParams(p: EditorParams): PackedEditorParams {
  const xDim = p.xMean.shape[0];
  const deltaDim = p.deltaMean.shape[0];
  const D = xDim + deltaDim;
  if (p.layers.length === 0) throw new Error('editor has no layers');
  const rank = p.layers[0].u.shape[1];
  const nModes = p.layers[0].modeScale.shape[0];
  const expect = (what: string, t: tf.Tensor, shape: number[]) => {
    if (t.shape.join() !== shape.join()) throw new Error(`editor ${what} has shape [${t.shape}], expected [${shape}]`);
  };
  expect('x_std', p.xStd, [xDim]);
  expect('delta_std', p.deltaStd, [deltaDim]);
  p.layers.forEach((l, i) => {
    expect(`layers.${i}.U`, l.u, [D, rank]);
    expect(`layers.${i}.V`, l.v, [rank, D]);
    expect(`layers.${i}.bias`, l.bias, [D]);
    expect(`layers.${i}.mode_scale`, l.modeScale, [nModes, D]);
    expect(`layers.${i}.mode_shift`, l.modeShift, [nModes, D]);
  });
  return tf.tidy(() => ({
    xDim, deltaDim, rank, nModes, nLayers: p.layers.length, eps: p.eps,
    norm: tf.stack([tf.concat([p.xMean, p.deltaMean]), tf.concat([p.xStd, p.deltaStd])]) as tf.Tensor2D,
    vT: tf.stack(p.layers.map((l) => tf.transpose(l.v))) as tf.Tensor3D,
    uT: tf.stack(p.layers.map((l) => tf.transpose(l.u))) as tf.Tensor3D,
    affine: tf.stack(p.layers.map((l) => tf.concat([l.bias.reshape([1, D]), l.modeScale, l.modeShift]))) as tf.Tensor3D,
  }));
}

export function disposePackedEditorParams(p: PackedEditorParams): void {
  tf.dispose([p.norm, p.vT, p.uT, p.affine]);
}

/** Output columns per workgroup (one per invocation). */
const COLS = 64;
/** Rows per workgroup: the accumulators each invocation keeps (a multiple of 4: they are vec4s). */
const ROW_BLOCK = 16;
const ROW_VECS = ROW_BLOCK / 4;
/** K values of the row block staged in workgroup memory at a time: ROW_BLOCK · STAGE_K · 4 B = 8 KiB. */
const STAGE_K = 128;
/**
 * Workgroups one low-rank product aims for (by splitting K): enough to cover a large GPU (an H100 has 132 SMs)
 * several times over, while the partial sums stay small next to the weights.
 */
const TARGET_GROUPS = 1024;
/** k values per step of the main loop: UNROLL independent weight loads in flight per invocation. */
const UNROLL = 8;

/**
 * How K is split for C output columns and N rows: splits × kPerGroup ≥ K, kPerGroup a multiple of stageK. rowBlock
 * and stageK are the kernel's rows per workgroup and k values staged at a time (this file's kernel: 16 and 128; the
 * fast editor's wider row blocks pass theirs).
 */
export function splitK(k: number, cols: number, rows: number, rowBlock = ROW_BLOCK, stageK = STAGE_K): { splits: number; kPerGroup: number } {
  const tiles = Math.ceil(cols / COLS) * Math.ceil(rows / rowBlock);
  const want = Math.min(Math.max(1, Math.ceil(TARGET_GROUPS / tiles)), Math.ceil(k / stageK));
  const kPerGroup = Math.ceil(Math.ceil(k / want) / stageK) * stageK;
  return { splits: Math.ceil(k / kPerGroup), kPerGroup };
}

/** h_0 = (concat(x, δ) − mean) / (std + eps), one invocation per element. */
class NormaliseProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['X', 'Delta', 'Norm'];
  shaderKey = 'mendEditorMLP_normalise';
  workgroupSize: [number, number, number] = [64, 1, 1];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  size = true;
  uniforms = 'eps : f32,';

  constructor(rows: number, dim: number) {
    this.outputShape = [rows, dim];
    this.dispatch = [groupsFor(rows * dim, 64), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        let inDim = uniforms.xShape.y;
        let outDim = uniforms.deltaShape.y;
        let D = inDim + outDim;
        let n = index / D;
        let d = index - n * D;
        var raw : f32;
        if (d < inDim) { raw = X[n * inDim + d]; } else { raw = Delta[n * outDim + d - inDim]; }
        result[index] = (raw - Norm[d]) / (Norm[D + d] + uniforms.eps);
      }
    `;
  }
}

/**
 * Partial sums of Rows · W[layer] over one K range per workgroup: result[s, n, c] = Σ_{k in split s} Rows[n, k] ·
 * W[layer, k, c], with Rows [N, K] and W [L, K, C] (V_lᵀ or U_lᵀ). See the header for the layout.
 */
class LowRankPartialProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['Rows', 'W'];
  shaderKey = `mendEditorMLP_lowRank_${COLS}_${ROW_BLOCK}_${STAGE_K}_${UNROLL}`;
  workgroupSize: [number, number, number] = [COLS, 1, 1];
  // Not flat (main() works from workgroupId/localIndex); dispatch = [column tiles, K splits, row blocks].
  dispatchLayout = { x: [2], y: [0], z: [1] };
  dispatch: [number, number, number];
  uniforms = 'layer : i32, kPerGroup : i32,';

  constructor(rows: number, cols: number, splits: number) {
    this.outputShape = [splits, rows, cols];
    this.dispatch = [groupsFor(cols, COLS), splits, groupsFor(rows, ROW_BLOCK)];
  }

  getUserCode(): string {
    const vecs = [...Array(ROW_VECS).keys()];
    const steps = [...Array(UNROLL).keys()];
    // The UNROLL weight loads of one step are independent, so they are all in flight at once; then
    // acc_q += staged[(kk + j)·ROW_VECS + q] · w_j for each of them.
    const loads = steps.map((j) => `let w${j} = W[w + ${j} * C];`).join('\n            ');
    const fmaN = vecs.map((q) => `acc${q} = acc${q}${steps.map((j) => ` + staged[i0 + ${j * ROW_VECS + q}] * w${j}`).join('')};`)
      .join('\n            ');
    const fma1 = vecs.map((q) => `acc${q} = acc${q} + staged[i0 + ${q}] * w0;`).join('\n            ');
    const store = vecs.map((q) => [0, 1, 2, 3].map((j) =>
      `if (n0 + ${4 * q + j} < N) { result[(split * N + n0 + ${4 * q + j}) * C + c] = acc${q}[${j}]; }`).join('\n          ')).join('\n          ');
    return `
      // staged[k · ${ROW_VECS} + q][j] = Rows[n0 + 4q + j, k0 + k]: the rows of one k side by side, so each k
      // is ${ROW_VECS} vec4 reads (broadcast: every invocation reads the same address).
      var<workgroup> staged : array<vec4<f32>, ${STAGE_K * ROW_VECS}>;

      fn main() {
        let N = uniforms.rowsShape.x;
        let K = uniforms.rowsShape.y;
        let C = uniforms.wShape.z;
        let lid = i32(localIndex);
        let c = i32(workgroupId.x) * ${COLS} + lid;
        let split = i32(workgroupId.y);
        let n0 = i32(workgroupId.z) * ${ROW_BLOCK};
        let kBegin = split * uniforms.kPerGroup;
        // Invocations past the last column compute a copy of it and do not store it: no out-of-range reads, and
        // every invocation reaches every barrier.
        let col = min(c, C - 1);
        let wLayer = uniforms.layer * K * C;
        ${vecs.map((q) => `var acc${q} = vec4<f32>(0.0);`).join('\n        ')}
        // The trip count depends on uniforms only (barriers need uniform control flow); a short last split simply
        // has stages with kn <= 0.
        let stages = uniforms.kPerGroup / ${STAGE_K};
        for (var stage = 0; stage < stages; stage = stage + 1) {
          let k0 = kBegin + stage * ${STAGE_K};
          let kn = min(${STAGE_K}, K - k0);
          workgroupBarrier();  // the previous stage's reads of staged[] are done
          for (var i = lid; i < ${STAGE_K * ROW_BLOCK}; i = i + ${COLS}) {
            let kk = i % ${STAGE_K};  // k fastest: neighbouring invocations read neighbouring addresses of a row
            let n = i / ${STAGE_K};
            var v = 0.0;
            if (kk < kn && n0 + n < N) { v = Rows[(n0 + n) * K + k0 + kk]; }
            staged[kk * ${ROW_VECS} + n / 4][n % 4] = v;
          }
          workgroupBarrier();
          var w = wLayer + k0 * C + col;
          var kk = 0;
          for (; kk + ${UNROLL} <= kn; kk = kk + ${UNROLL}) {
            ${loads}
            let i0 = kk * ${ROW_VECS};
            ${fmaN}
            w = w + ${UNROLL} * C;
          }
          for (; kk < kn; kk = kk + 1) {
            let w0 = W[w];
            let i0 = kk * ${ROW_VECS};
            ${fma1}
            w = w + C;
          }
        }
        if (c < C) {
          ${store}
        }
      }
    `;
  }
}

/**
 * Adds up the split-K partial sums P [splits, N, C]. Plain: the sum itself (t = h·Vᵀ). Residual: the end of an
 * editor block, h_next = H + max((Σ + bias) ⊙ scale[mode] + shift[mode], 0), with the layer's row of Affine.
 */
class CombineProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames: string[];
  shaderKey: string;
  workgroupSize: [number, number, number] = [64, 1, 1];
  dispatchLayout = { x: [0, 1] };
  dispatch: [number, number, number];
  size = true;
  uniforms?: string;

  constructor(rows: number, cols: number, private residual: boolean) {
    this.outputShape = [rows, cols];
    this.dispatch = [groupsFor(rows * cols, 64), 1, 1];
    this.variableNames = residual ? ['P', 'H', 'Affine'] : ['P'];
    this.shaderKey = `mendEditorMLP_combine_${residual ? 'residual' : 'sum'}`;
    if (residual) this.uniforms = 'layer : i32, mode : i32,';
  }

  getUserCode(): string {
    const epilogue = this.residual
      ? `let D = uniforms.hShape.y;
        let d = index % D;
        let M = (uniforms.affineShape.y - 1) / 2;
        let a = uniforms.layer * (1 + 2 * M) * D;
        let pre = (s + Affine[a + d]) * Affine[a + (1 + uniforms.mode) * D + d] + Affine[a + (1 + M + uniforms.mode) * D + d];
        result[index] = H[index] + max(pre, 0.0);`
      : 'result[index] = s;';
    return `
      fn main(index : i32) {
        if (index >= uniforms.size) { return; }
        let splits = uniforms.pShape.x;
        var s = 0.0;
        for (var i = 0; i < splits; i = i + 1) { s = s + P[i * uniforms.size + index]; }
        ${epilogue}
      }
    `;
  }
}

/** Rows [N, K] · W[layer] ([L, K, C] → [N, C]) as split-K partial sums [splits, N, C]. */
function lowRankPartials(backend: WebGPUBackend, rows: tf.Tensor, w: tf.Tensor, layer: number): tf.Tensor {
  const [n, k] = rows.shape;
  const cols = w.shape[2]!;
  const { splits, kPerGroup } = splitK(k, cols, n);
  return runProgram(backend, new LowRankPartialProgram(n, cols, splits), [rows, w], [
    { type: 'int32', data: [layer] },
    { type: 'int32', data: [kPerGroup] },
  ]);
}

function checkInputs(x: tf.Tensor, delta: tf.Tensor, p: PackedEditorParams, mode: number): void {
  checkFloat('editorMLP', { x, delta }, { x: 2, delta: 2 });
  if (x.shape[0] !== delta.shape[0]) throw new Error(`editorMLP: x has ${x.shape[0]} rows but δ has ${delta.shape[0]}`);
  if (x.shape[1] !== p.xDim || delta.shape[1] !== p.deltaDim) {
    throw new Error(`editorMLP: rows are [${x.shape[1]}, ${delta.shape[1]}] wide, editor expects [${p.xDim}, ${p.deltaDim}]`);
  }
  if (!Number.isInteger(mode) || mode < 0 || mode >= p.nModes) {
    throw new Error(`editorMLP: mode ${mode} out of range (editor has ${p.nModes} modes)`);
  }
}

/** The editor with tfjs ops: the definition the kernel is tested against, and the path used on wasm/cpu. */
export function editorMLPReference(x: tf.Tensor2D, delta: tf.Tensor2D, p: PackedEditorParams, mode: number): tf.Tensor2D {
  checkInputs(x, delta, p, mode);
  const M = p.nModes;
  return tf.tidy(() => {
    const [mean, std] = tf.unstack(p.norm) as tf.Tensor1D[];
    let h = tf.div(tf.sub(tf.concat([x, delta], 1), mean), tf.add(std, tf.scalar(p.eps))) as tf.Tensor2D;
    const vTs = tf.unstack(p.vT) as tf.Tensor2D[];
    const uTs = tf.unstack(p.uT) as tf.Tensor2D[];
    const affines = tf.unstack(p.affine) as tf.Tensor2D[];
    for (let l = 0; l < p.nLayers; l++) {
      const rows = tf.unstack(affines[l]) as tf.Tensor1D[];
      const lowRank = tf.matMul(tf.matMul(h, vTs[l]), uTs[l]); // (h·Vᵀ)·Uᵀ
      const pre = tf.add(tf.mul(tf.add(lowRank, rows[0]), rows[1 + mode]), rows[1 + M + mode]);
      h = tf.add(h, tf.relu(pre)) as tf.Tensor2D;
    }
    return h;
  });
}

/** h_L = editor(normalise(concat(x, δ))) for the rows of one weight with FiLM mode `mode`: [N, in + out]. */
export function editorMLP(x: tf.Tensor2D, delta: tf.Tensor2D, p: PackedEditorParams, mode: number): tf.Tensor2D {
  checkInputs(x, delta, p, mode);
  const backend = activeWebGPUBackend();
  // Zero rows: nothing to bind; the tfjs ops give the (empty) result.
  if (!backend || x.shape[0] === 0) return editorMLPReference(x, delta, p, mode);
  const rows = x.shape[0];
  const D = p.xDim + p.deltaDim;
  let h = runProgram(backend, new NormaliseProgram(rows, D), [x, delta, p.norm], [{ type: 'float32', data: [p.eps] }]);
  for (let l = 0; l < p.nLayers; l++) {
    // Intermediates are disposed as soon as the next dispatch is queued: tfjs keeps a buffer alive until the
    // commands that use it have been submitted.
    const tParts = lowRankPartials(backend, h, p.vT, l);
    const t = runProgram(backend, new CombineProgram(rows, p.rank, false), [tParts]);
    tParts.dispose();
    const uParts = lowRankPartials(backend, t, p.uT, l);
    t.dispose();
    const next = runProgram(backend, new CombineProgram(rows, D, true), [uParts, h, p.affine], [
      { type: 'int32', data: [l] },
      { type: 'int32', data: [mode] },
    ]);
    tf.dispose([uParts, h]);
    h = next;
  }
  return h as tf.Tensor2D;
}

/** Splits h_L into (x̃ [N, in], δ̃ [N, out]). */
export function splitEditorOutput(h: tf.Tensor2D, xDim: number): [tf.Tensor2D, tf.Tensor2D] {
  return tf.split(h, [xDim, h.shape[1] - xDim], 1) as [tf.Tensor2D, tf.Tensor2D];
}
