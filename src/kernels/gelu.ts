// GPT-2's gelu_new (the tanh form) as ONE elementwise WGSL dispatch:
//
//     y = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
//
// Why: with tfjs ops it is ~8 kernels (Pow, Mul, Add, Mul, Tanh, Add, Mul, Mul), once per block per forward, and
// on the H100 run of 2026-11-27 decoding and MEND's capture were bound by per-dispatch cost, not GPU work (docs/
// benchmarks.md "Dispatch overhead"). tanh is written as tfjs-webgpu's TANH is, sign(u)·(1 − e^{−2|u|})/(1 + e^{−2|u|}),
// which cannot overflow (WGSL gives no guarantees for infinities). Only the forward runs in WGSL; the gradient
// (tf.customGrad) uses tfjs ops, so autodiff works unchanged. Other backends use the tfjs-op reference.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, groupsFor, runProgram, type WebGPUProgram } from './webgpu';

const K = Math.sqrt(2 / Math.PI);
const A = 0.044715;
const WG = 64;

class GeluNewProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames = ['X'];
  shaderKey = 'mendGeluNew';
  workgroupSize: [number, number, number] = [WG, 1, 1];
  size = true;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];

  constructor(shape: number[]) {
    this.outputShape = shape;
    this.dispatchLayout = { x: shape.map((_, i) => i) }; // flat: main(index) over every element
    // Up to 65535·64 elements in one dimension; tfjs's runWebGPUProgram reshapes larger flat dispatches itself.
    this.dispatch = [groupsFor(tf.util.sizeFromShape(shape), WG), 1, 1];
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let x = X[index];
          let u = ${K} * (x + ${A} * x * x * x);
          let e = exp(-2.0 * abs(u));
          let t = sign(u) * (1.0 - e) / (1.0 + e);
          setOutputAtIndex(index, 0.5 * x * (1.0 + t));
        }
      }
    `;
  }
}

/** gelu_new with tfjs ops (the formula gpt2.ts always used): the definition the kernel is tested against. */
export function geluNewReference(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), A)), K);
    return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
  });
}

/** d gelu_new / dx = 0.5·(1 + t) + 0.5·x·(1 − t²)·√(2/π)·(1 + 3·0.044715·x²), t = tanh(u), with tfjs ops. */
function geluNewGrad(dy: tf.Tensor, x: tf.Tensor): tf.Tensor {
  const x2 = tf.square(x);
  const t = tf.tanh(tf.mul(tf.mul(x, tf.add(1, tf.mul(x2, A))), K));
  const du = tf.mul(tf.add(1, tf.mul(x2, 3 * A)), K);
  const d = tf.add(tf.mul(tf.add(1, t), 0.5), tf.mul(tf.mul(tf.mul(x, 0.5), tf.sub(1, tf.square(t))), du));
  return tf.mul(dy, d);
}

/** gelu_new of every element of x; one dispatch on webgpu, tfjs ops elsewhere. */
export function geluNew<T extends tf.Tensor>(x: T): T {
  checkFloat('geluNew', { x }, { x: x.rank });
  const backend = activeWebGPUBackend();
  if (!backend || x.size === 0) return geluNewReference(x) as T;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
    save([xi]);
    return {
      value: runProgram(backend, new GeluNewProgram(x.shape), [xi]),
      gradFunc: (dy, saved) => geluNewGrad(dy as tf.Tensor, saved[0]),
    };
  });
  return f(x) as T;
}
