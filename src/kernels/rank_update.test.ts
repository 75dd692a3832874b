import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  outerProductSum, outerProductSumReference, rankUpdate, rankUpdateInPlace, rankUpdateReference, updateVariantFor,
  type UpdateVariant,
} from './rank_update';
import { kernelTestsOnWebGPU, onCpuBackend, relativeError, seededTensor } from './testing';

// Dimensions deliberately not multiples of the tiles (16×16 scalar, 64×64 vec4); row counts 1, 7, 64 per the kernel
// contract (64 rows = 4 chunks of the vec4 program's 16). Widths that are multiples of 4 run the vec4 program by
// default, and the scalar one is checked there too; other widths can only run the scalar one.
const ROWS = [1, 7, 64];
const DIMS: Array<[number, number, UpdateVariant]> = [
  [13, 37, 'scalar'], [40, 17, 'scalar'], [13, 36, 'vec4'], [70, 132, 'vec4'], [13, 36, 'scalar'],
];
const C = -3.7e-2;

describe('rank_update kernel on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  it('picks the vec4 program for widths that are multiples of 4', () => {
    expect([36, 132, 768, 3072].map(updateVariantFor)).toEqual(['vec4', 'vec4', 'vec4', 'vec4']);
    expect([37, 17, 2].map(updateVariantFor)).toEqual(['scalar', 'scalar', 'scalar']);
  });

  for (const n of ROWS) {
    for (const [inDim, outDim, variant] of DIMS) {
      it(`agrees with the tfjs reference for N=${n}, W=[${inDim}, ${outDim}], ${variant} program`, async () => {
        expect(tf.getBackend()).toBe('webgpu');
        const seed = n * 1000 + inDim;
        const x = seededTensor([n, inDim], seed) as tf.Tensor2D;
        const d = seededTensor([n, outDim], seed + 1) as tf.Tensor2D;
        const w = seededTensor([inDim, outDim], seed + 2) as tf.Tensor2D;
        const wBefore = await w.data();

        const delta = outerProductSum(x, d, C, variant);
        const deltaRef = outerProductSumReference(x, d, C);
        expect(await relativeError(delta, deltaRef)).toBeLessThanOrEqual(1e-5);

        const updated = rankUpdate(w, x, d, C, variant);
        const updatedRef = rankUpdateReference(w, x, d, C);
        expect(await relativeError(updated, updatedRef)).toBeLessThanOrEqual(1e-5);
        // The update is not a no-op, and the out-of-place variant left W alone.
        expect(await relativeError(updated, w)).toBeGreaterThan(1e-3);
        expect(Array.from(await w.data())).toEqual(Array.from(wBefore));

        const target = seededTensor([inDim, outDim], seed + 2) as tf.Tensor2D;
        rankUpdateInPlace(target, x, d, C, variant);
        expect(await relativeError(target, updatedRef)).toBeLessThanOrEqual(1e-5);

        tf.dispose([x, d, w, delta, deltaRef, updated, updatedRef, target]);
      });
    }
  }

  it('writes in place into a tensor whose values tfjs had cached on the CPU', async () => {
    const x = seededTensor([3, 5], 1) as tf.Tensor2D;
    const d = seededTensor([3, 6], 2) as tf.Tensor2D;
    const w = seededTensor([5, 6], 3) as tf.Tensor2D;
    const expected = rankUpdateReference(w, x, d, 0.5);
    await w.data(); // leaves a CPU copy in tfjs's tensorMap
    rankUpdateInPlace(w, x, d, 0.5);
    expect(await relativeError(w, expected)).toBeLessThanOrEqual(1e-5);
    // And ops reading W see the new buffer too.
    const doubled = tf.mul(w, 2);
    const expectedDoubled = tf.mul(expected, 2);
    expect(await relativeError(doubled, expectedDoubled)).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, d, w, expected, doubled, expectedDoubled]);
  });

  it('refuses to write in place into a buffer shared with another tensor', async () => {
    const x = seededTensor([2, 4], 1) as tf.Tensor2D;
    const d = seededTensor([2, 4], 2) as tf.Tensor2D;
    const w = seededTensor([4, 4], 3) as tf.Tensor2D;
    const view = tf.clone(w);
    expect(() => rankUpdateInPlace(w, x, d, 1)).toThrow(/shared by 2 tensors/);
    tf.dispose([x, d, w, view]);
  });

  it('handles zero rows (every row dropped) as ΔW = 0', async () => {
    const x = tf.zeros([0, 5]) as tf.Tensor2D;
    const d = tf.zeros([0, 6]) as tf.Tensor2D;
    const w = seededTensor([5, 6], 3) as tf.Tensor2D;
    const updated = rankUpdate(w, x, d, 1);
    expect(Array.from(await updated.data())).toEqual(Array.from(await w.data()));
    const delta = outerProductSum(x, d);
    expect(Math.max(...Array.from(await delta.data()).map(Math.abs))).toBe(0);
    tf.dispose([x, d, w, updated, delta]);
  });

  it('rejects mismatched shapes with a clear message', () => {
    const x = tf.zeros([2, 5]) as tf.Tensor2D;
    const d = tf.zeros([3, 6]) as tf.Tensor2D;
    const w = tf.zeros([5, 7]) as tf.Tensor2D;
    expect(() => outerProductSum(x, d)).toThrow(/X has 2 rows but Δ has 3/);
    const d2 = tf.zeros([2, 6]) as tf.Tensor2D;
    expect(() => rankUpdate(w, x, d2, 1)).toThrow(/W is \[5,7\]/);
    tf.dispose([x, d, w, d2]);
  });

  it('does not leak tensors', () => {
    const x = seededTensor([7, 13], 1) as tf.Tensor2D;
    const d = seededTensor([7, 37], 2) as tf.Tensor2D;
    const w = seededTensor([13, 37], 3) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) tf.dispose([rankUpdate(w, x, d, 1), outerProductSum(x, d)]);
    rankUpdateInPlace(w, x, d, 1);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, d, w]);
  });
});

describe('rank_update on the cpu backend uses the reference path', () => {
  it('computes the same update without WebGPU', async () => {
    await onCpuBackend(async () => {
      const x = tf.tensor2d([[1, 2], [3, 4]]);
      const d = tf.tensor2d([[1, 0, -1], [2, 1, 0]]);
      const w = tf.zeros([2, 3]) as tf.Tensor2D;
      // X̃ᵀΔ̃ = [[1+6, 3, -1], [2+8, 4, -2]]
      expect(Array.from(await rankUpdate(w, x, d, 2).data())).toEqual([14, 6, -2, 20, 8, -4]);
      expect(() => rankUpdateInPlace(w, x, d, 1)).toThrow(/needs the webgpu backend/);
    });
  });
});
