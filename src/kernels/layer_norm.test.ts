import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { layerNorm, layerNormReference } from './layer_norm';
import { kernelTestsOnWebGPU, onCpuBackend, relativeError, seededTensor } from './testing';

// Widths below, at and above the 64-thread workgroup, not multiples of it; GPT-2 widths 768 and 1024 too.
const SHAPES: Array<[number, number]> = [[1, 5], [7, 64], [3, 100], [16, 768], [2, 1024]];
const EPS = 1e-5;

function inputs(rows: number, cols: number, seed: number) {
  // An offset and a scale per row, as residual streams have: the two-pass variance must not lose them.
  const x = tf.tidy(() => tf.add(tf.mul(seededTensor([rows, cols], seed), 3), 0.5)) as tf.Tensor2D;
  const g = tf.tidy(() => tf.add(seededTensor([cols], seed + 1, 0.5), 1)) as tf.Tensor1D;
  const b = seededTensor([cols], seed + 2, 0.2) as tf.Tensor1D;
  return { x, g, b };
}

describe('layerNorm kernel on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  for (const [rows, cols] of SHAPES) {
    it(`agrees with the tfjs reference, values and gradients, for [${rows}, ${cols}]`, async () => {
      expect(tf.getBackend()).toBe('webgpu');
      const { x, g, b } = inputs(rows, cols, rows * 100 + cols);
      const y = layerNorm(x, g, b, EPS);
      const yRef = layerNormReference(x, g, b, EPS);
      expect(await relativeError(y, yRef)).toBeLessThanOrEqual(1e-5);
      // Gradients through the customGrad (tfjs ops) against autodiff of the reference, with a non-uniform dy.
      const dy = seededTensor([rows, cols], 7) as tf.Tensor2D;
      const loss = (f: typeof layerNorm) => (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => tf.sum(tf.mul(f(xi as tf.Tensor2D, gi as tf.Tensor1D, bi as tf.Tensor1D, EPS), dy));
      const grads = tf.grads(loss(layerNorm))([x, g, b]);
      const gradsRef = tf.grads(loss(layerNormReference))([x, g, b]);
      for (let i = 0; i < 3; i++) expect(await relativeError(grads[i], gradsRef[i])).toBeLessThanOrEqual(1e-4);
      tf.dispose([x, g, b, y, yRef, dy, ...grads, ...gradsRef]);
    });
  }

  it('rejects a γ of the wrong width', () => {
    const x = tf.zeros([2, 4]) as tf.Tensor2D;
    const g = tf.ones([5]) as tf.Tensor1D;
    expect(() => layerNorm(x, g, g, EPS)).toThrow(/x is \[2,4\] but γ is \[5\]/);
    tf.dispose([x, g]);
  });

  it('does not leak tensors', () => {
    const { x, g, b } = inputs(3, 70, 1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(layerNorm(x, g, b, EPS));
    tf.dispose(tf.grads((xi: tf.Tensor) => tf.sum(layerNorm(xi as tf.Tensor2D, g, b, EPS)))([x]));
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, g, b]);
  });
});

describe('layerNorm on the cpu backend uses the reference path', () => {
  it('normalises each row', async () => {
    await onCpuBackend(async () => {
      const y = layerNorm(tf.tensor2d([[1, 3], [5, 7]]), tf.tensor1d([1, 2]), tf.tensor1d([0, 1]), 0);
      expect(Array.from(await y.data())).toEqual([-1, 3, -1, 3]);
    });
  });
});
