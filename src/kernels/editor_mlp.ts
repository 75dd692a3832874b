// Kernel (a): the MEND editor network over the token rows of one edited weight, normalisation fused in.
//
//   h_0     = concat((x − x_mean) / (x_std + eps), (δ − δ_mean) / (δ_std + eps))          [N, D], D = in + out
//   pre_l   = ((h_l · V_lᵀ) · U_lᵀ + bias_l) ⊙ mode_scale_l[m] + mode_shift_l[m]
//   h_{l+1} = h_l + max(pre_l, 0)                                                          l = 0 .. L−1 (L = 2)
//
// (docs/formats.md, "Editor forward"). The output h_L holds x̃ in its first `in` columns and δ̃ in the rest.
//
// One workgroup owns one row for the whole network, which is what lets everything run in a single dispatch:
// the row's h lives in the output buffer, t = h·Vᵀ (length r) lives in workgroup memory, and a barrier between
// the two half-steps is all the synchronisation needed. Rows are independent, so nothing crosses workgroups.
// N is small (the tokens of one edit), D·r is the work per row.
//
// WebGPU guarantees only 8 storage buffers per shader stage, and tfjs asks for no more, so the editor's
// parameters are packed once at load time (packEditorParams) into 4 tensors instead of 4 + 5·L. U and V are
// stored transposed: then at every step of both half-steps, neighbouring invocations read neighbouring addresses
// (k in t = h·Vᵀ, d in h·Uᵀ) while the shared operand (h[d] or t[k]) is one broadcast value, so every global
// read is coalesced on a real GPU.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, runProgram, type WebGPUProgram } from './webgpu';

const WORKGROUP = 64;
/** t = h·Vᵀ must fit in workgroup memory (16 KiB guaranteed = 4096 f32). MEND's default rank is 1920. */
export const MAX_EDITOR_RANK = 4096;

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

class EditorMLPProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['X', 'Delta', 'Norm', 'VT', 'UT', 'Affine'];
  shaderKey: string;
  workgroupSize: [number, number, number] = [WORKGROUP, 1, 1];
  dispatchLayout = { x: [1], y: [0] }; // not flat: main() works from workgroupId/localIndex
  dispatch: [number, number, number];
  uniforms = 'mode : i32, eps : f32,';

  constructor(rows: number, dim: number, private rank: number) {
    this.outputShape = [rows, dim];
    this.dispatch = [rows, 1, 1];
    // The rank sizes the workgroup array, so it is compiled in and must be part of the key.
    this.shaderKey = `mendEditorMLP_t_${WORKGROUP}_${rank}`;
  }

  getUserCode(): string {
    return `
      var<workgroup> t : array<f32, ${this.rank}>;

      fn main() {
        let n = i32(workgroupId.x);
        let lid = i32(localIndex);
        let inDim = uniforms.xShape.y;
        let outDim = uniforms.deltaShape.y;
        let D = inDim + outDim;
        let L = uniforms.vTShape.x;
        let r = uniforms.vTShape.z;
        let M = (uniforms.affineShape.y - 1) / 2;
        let row = n * D;

        // h_0: the normalised row, concat(x̄, δ̄).
        for (var d = lid; d < D; d = d + ${WORKGROUP}) {
          var raw : f32;
          if (d < inDim) { raw = X[n * inDim + d]; } else { raw = Delta[n * outDim + d - inDim]; }
          result[row + d] = (raw - Norm[d]) / (Norm[D + d] + uniforms.eps);
        }

        for (var l = 0; l < L; l = l + 1) {
          // h_l (written by other invocations of this workgroup) must be visible before it is read.
          storageBarrier();
          workgroupBarrier();
          for (var k = lid; k < r; k = k + ${WORKGROUP}) {
            var s = 0.0;
            for (var d = 0; d < D; d = d + 1) { s = s + result[row + d] * VT[(l * D + d) * r + k]; }
            t[k] = s;
          }
          workgroupBarrier();
          let a = l * (1 + 2 * M) * D;
          for (var d = lid; d < D; d = d + ${WORKGROUP}) {
            var s = 0.0;
            for (var k = 0; k < r; k = k + 1) { s = s + t[k] * UT[(l * r + k) * D + d]; }
            let pre = (s + Affine[a + d]) * Affine[a + (1 + uniforms.mode) * D + d]
                      + Affine[a + (1 + M + uniforms.mode) * D + d];
            // Each invocation reads and writes only its own d here, so this in-place residual update is safe.
            result[row + d] = result[row + d] + max(pre, 0.0);
          }
        }
      }
    `;
  }
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
  // Zero rows: nothing to bind. A rank beyond workgroup memory: the tfjs ops give the same result, just unfused.
  if (!backend || x.shape[0] === 0 || p.rank > MAX_EDITOR_RANK) return editorMLPReference(x, delta, p, mode);
  const program = new EditorMLPProgram(x.shape[0], p.xDim + p.deltaDim, p.rank);
  return runProgram(backend, program, [x, delta, p.norm, p.vT, p.uT, p.affine], [
    { type: 'int32', data: [mode] },
    { type: 'float32', data: [p.eps] },
  ]) as tf.Tensor2D;
}

/** Splits h_L into (x̃ [N, in], δ̃ [N, out]). */
export function splitEditorOutput(h: tf.Tensor2D, xDim: number): [tf.Tensor2D, tf.Tensor2D] {
  return tf.split(h, [xDim, h.shape[1] - xDim], 1) as [tf.Tensor2D, tf.Tensor2D];
}
