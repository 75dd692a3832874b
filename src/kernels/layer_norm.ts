// LayerNorm over the last axis as ONE WGSL dispatch:
//
//     y[r, c] = (x[r, c] − mean_r) · rsqrt(var_r + eps) · γ[c] + β[c]     (var: biased, two-pass, as tf.moments)
//
// Why: with tfjs ops a LayerNorm is ~9 kernels (Mean, Sub, Square, Mean, Add, Rsqrt, Sub, Mul, Mul, Add...). On the
// H100 run of 2026-11-27 GPT-2 decoding and MEND's capture were bound by per-dispatch cost, not GPU work (docs/
// benchmarks.md "Dispatch overhead"), and a GPT-2 has 2·n_layer + 1 LayerNorms per forward.
//
// One workgroup per row: the threads stride over the row's columns, then reduce in workgroup memory, first the sum
// (mean), then the sum of squared deviations (variance), then write the normalised row. Only the forward runs in
// WGSL; the gradient (tf.customGrad) uses tfjs ops, so autodiff (capture's valueAndGrads) works unchanged.
// Other backends (wasm/cpu) use the tfjs-op reference, which is the definition the kernel is tested against.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, runProgram, type WebGPUProgram } from './webgpu';

const WG = 64;

class LayerNormProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['X', 'G', 'B'];
  shaderKey = `mendLayerNorm_${WG}`;
  workgroupSize: [number, number, number] = [WG, 1, 1];
  dispatchLayout = { x: [0], y: [1] }; // unused by main(), which reads workgroupId / localId
  dispatch: [number, number, number];
  uniforms = 'eps : f32,';

  constructor(rows: number, cols: number) {
    this.outputShape = [rows, cols];
    this.dispatch = [rows, 1, 1];
  }

  getUserCode(): string {
    return `
      var<workgroup> part : array<f32, ${WG}>;

      // Sum of part[] across the workgroup; every invocation gets the total. The trailing barrier lets part[] be
      // reused right after.
      fn workgroupSum(tid : i32, v : f32) -> f32 {
        part[tid] = v;
        workgroupBarrier();
        for (var n = ${WG / 2}; n > 0; n = n / 2) {
          if (tid < n) { part[tid] = part[tid] + part[tid + n]; }
          workgroupBarrier();
        }
        let total = part[0];
        workgroupBarrier();
        return total;
      }

      fn main() {
        let row = i32(workgroupId.x);
        let tid = i32(localId.x);
        let cols = uniforms.xShape.y;
        let base = row * cols;
        var s = 0.0;
        for (var c = tid; c < cols; c = c + ${WG}) { s = s + X[base + c]; }
        let mean = workgroupSum(tid, s) / f32(cols);
        var q = 0.0;
        for (var c = tid; c < cols; c = c + ${WG}) { let d = X[base + c] - mean; q = q + d * d; }
        let rstd = inverseSqrt(workgroupSum(tid, q) / f32(cols) + uniforms.eps);
        for (var c = tid; c < cols; c = c + ${WG}) {
          result[base + c] = (X[base + c] - mean) * rstd * G[c] + B[c];
        }
      }
    `;
  }
}

/** LayerNorm with tfjs ops (the formula gpt2.ts always used): the definition the kernel is tested against. */
export function layerNormReference(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true);
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
    return tf.add(tf.mul(xhat, gamma), beta) as tf.Tensor2D;
  });
}

/**
 * The gradient with tfjs ops, from x̂ = (x − μ)·r, r = rsqrt(var + eps), g = dy·γ:
 *   dx = r · (g − mean(g) − x̂ · mean(g · x̂)),   dγ = Σ_rows dy · x̂,   dβ = Σ_rows dy.
 */
function layerNormGrad(dy: tf.Tensor2D, x: tf.Tensor2D, gamma: tf.Tensor1D, eps: number): tf.Tensor[] {
  const { mean, variance } = tf.moments(x, -1, true);
  const r = tf.rsqrt(tf.add(variance, eps));
  const xhat = tf.mul(tf.sub(x, mean), r);
  const g = tf.mul(dy, gamma);
  const dx = tf.mul(r, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xhat, tf.mean(tf.mul(g, xhat), -1, true))));
  return [dx, tf.sum(tf.mul(dy, xhat), 0), tf.sum(dy, 0)];
}

/** LayerNorm of the rows of x ([rows, C]) with γ, β ([C]); one dispatch on webgpu, tfjs ops elsewhere. */
export function layerNorm(x: tf.Tensor2D, gamma: tf.Tensor1D, beta: tf.Tensor1D, eps: number): tf.Tensor2D {
  checkFloat('layerNorm', { x, gamma, beta }, { x: 2, gamma: 1, beta: 1 });
  const C = x.shape[1];
  if (gamma.shape[0] !== C || beta.shape[0] !== C) throw new Error(`layerNorm: x is [${x.shape}] but γ is [${gamma.shape}] and β [${beta.shape}]`);
  const backend = activeWebGPUBackend();
  if (!backend || x.size === 0) return layerNormReference(x, gamma, beta, eps);
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, gi, bi, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([xi, gi]);
    const program = new LayerNormProgram(x.shape[0], C);
    return {
      value: runProgram(backend, program, [xi, gi, bi], [{ type: 'float32', data: [eps] }]),
      gradFunc: (dy, saved) => layerNormGrad(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor1D, eps),
    };
  });
  return f(x, gamma, beta) as tf.Tensor2D;
}
