// The first editor-MLP kernel (before the tiled rewrite in src/kernels/editor_mlp.ts), kept for the benchmark
// only, so one run can show the old and the new kernel side by side on the same machine (`--rowwise-baseline`).
//
// One workgroup owns one token row for the whole network: h lives in the output buffer, t = h·Vᵀ (length r) in
// workgroup memory. Simple and a single dispatch, but every row re-streams all of U and V of both layers, so an
// edit of N rows reads the editor's weights N times (about 11 GB per distilgpt2 edit), from only N workgroups.
// Not used by the engine.
import * as tf from '@tensorflow/tfjs';
import { editorMLPReference, type PackedEditorParams } from '../src/kernels/editor_mlp';
import { activeWebGPUBackend, runProgram, type WebGPUProgram } from '../src/kernels/webgpu';

const WORKGROUP = 64;
/** t = h·Vᵀ must fit in workgroup memory (16 KiB guaranteed = 4096 f32). */
const MAX_RANK = 4096;

class RowwiseEditorMLPProgram implements WebGPUProgram {
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
    this.shaderKey = `mendEditorMLPRowwise_${WORKGROUP}_${rank}`;
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
        for (var d = lid; d < D; d = d + ${WORKGROUP}) {
          var raw : f32;
          if (d < inDim) { raw = X[n * inDim + d]; } else { raw = Delta[n * outDim + d - inDim]; }
          result[row + d] = (raw - Norm[d]) / (Norm[D + d] + uniforms.eps);
        }
        for (var l = 0; l < L; l = l + 1) {
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
            result[row + d] = result[row + d] + max(pre, 0.0);
          }
        }
      }
    `;
  }
}

/** The old kernel's result, [N, in + out]; the tfjs-op reference where it cannot run (no webgpu, rank > 4096). */
export function editorMLPRowwise(x: tf.Tensor2D, delta: tf.Tensor2D, p: PackedEditorParams, mode: number): tf.Tensor2D {
  const backend = activeWebGPUBackend();
  if (!backend || x.shape[0] === 0 || p.rank > MAX_RANK) return editorMLPReference(x, delta, p, mode);
  const program = new RowwiseEditorMLPProgram(x.shape[0], p.xDim + p.deltaDim, p.rank);
  return runProgram(backend, program, [x, delta, p.norm, p.vT, p.uT, p.affine], [
    { type: 'int32', data: [mode] },
    { type: 'float32', data: [p.eps] },
  ]) as tf.Tensor2D;
}
