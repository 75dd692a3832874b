import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { geluNew, geluNewReference } from './gelu';
import { kernelTestsOnWebGPU, onCpuBackend, relativeError, seededTensor } from './testing';

// Sizes below and above one 64-thread workgroup and not multiples of it; 16×3072 is distilgpt2's MLP at 16 tokens.
const SHAPES = [[5], [7, 37], [16, 3072]];

describe('geluNew kernel on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  for (const shape of SHAPES) {
    it(`agrees with the tfjs reference, values and gradient, for [${shape}]`, async () => {
      expect(tf.getBackend()).toBe('webgpu');
      const x = seededTensor(shape, shape.length * 31 + shape[0], 6); // covers both tails, where tanh saturates
      const y = geluNew(x);
      const yRef = geluNewReference(x);
      expect(await relativeError(y, yRef)).toBeLessThanOrEqual(1e-5);
      const dy = seededTensor(shape, 9);
      const gx = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(geluNew(xi), dy)))(x);
      const gxRef = tf.grad((xi: tf.Tensor) => tf.sum(tf.mul(geluNewReference(xi), dy)))(x);
      expect(await relativeError(gx, gxRef)).toBeLessThanOrEqual(1e-5);
      tf.dispose([x, y, yRef, dy, gx, gxRef]);
    });
  }

  it('stays finite for large inputs (no tanh overflow)', async () => {
    const x = tf.tensor1d([-1e4, -50, 50, 1e4]);
    expect(Array.from(await geluNew(x).data())).toEqual([-0, -0, 50, 1e4]);
    x.dispose();
  });

  it('does not leak tensors', () => {
    const x = seededTensor([4, 70], 1);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(geluNew(x));
    tf.dispose(tf.grad((xi: tf.Tensor) => tf.sum(geluNew(xi)))(x));
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('geluNew on the cpu backend uses the reference path', () => {
  it('computes gelu_new', async () => {
    await onCpuBackend(async () => {
      const y = await geluNew(tf.tensor1d([0, 1, -1])).data();
      expect(y[0]).toBe(0);
      expect(y[1]).toBeCloseTo(0.841192, 5);
      expect(y[2]).toBeCloseTo(-0.158808, 5);
    });
  });
});
