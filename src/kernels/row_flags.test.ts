import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { finiteRows, finiteRowsReference, rowKeepMask, rowKeepMaskReference } from './row_flags';
import { kernelTestsOnWebGPU, onCpuBackend, seededValues } from './testing';

/** [rows, cols] of seeded values with the listed rows set to zero (or to `fill`) at the listed columns. */
function withRows(rows: number, cols: number, seed: number, set: Record<number, { cols?: number[]; fill: number }>): tf.Tensor2D {
  const v = seededValues(rows * cols, seed);
  for (const [r, { cols: cs, fill }] of Object.entries(set)) {
    for (const c of cs ?? Array.from({ length: cols }, (_, i) => i)) v[Number(r) * cols + c] = fill;
  }
  return tf.tensor2d(v, [rows, cols]);
}

describe('row flag kernels on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  // Widths below, at and above one 64-thread workgroup's stride, and distilgpt2's 768/3072.
  for (const [rows, a, b] of [[3, 5, 7], [16, 64, 130], [20, 768, 3072]]) {
    it(`rowKeepMask agrees with the tfjs reference for ${rows} rows, x ${a} wide, δ ${b} wide`, async () => {
      expect(tf.getBackend()).toBe('webgpu');
      // row 0: x all zero; row 1: δ all zero; row 2: both non-zero except one value each (kept); the rest random.
      const x = withRows(rows, a, 1, { 0: { fill: 0 }, 2: { cols: [0], fill: 0 } });
      const d = withRows(rows, b, 2, { 1: { fill: 0 }, 2: { cols: [b - 1], fill: 0 } });
      const keep = rowKeepMask(x, d);
      expect(keep.shape).toEqual([rows, 1]);
      const got = Array.from(await keep.data());
      expect(got).toEqual(Array.from(await rowKeepMaskReference(x, d).data()));
      expect(got.slice(0, 3)).toEqual([0, 0, 1]);
      expect(got.slice(3).every((f) => f === 1)).toBe(true);
      tf.dispose([x, d, keep]);
    });
  }

  it('rowKeepMask keeps a row whose only non-zero value is the last column of a long row', async () => {
    const x = withRows(2, 3072, 3, { 0: { cols: Array.from({ length: 3071 }, (_, i) => i), fill: 0 } });
    const d = withRows(2, 768, 4, {});
    expect(Array.from(await rowKeepMask(x, d).data())).toEqual([1, 1]);
    tf.dispose([x, d]);
  });

  for (const [rows, cols] of [[4, 9], [768, 3072], [3072, 768]]) {
    it(`finiteRows agrees with the tfjs reference for [${rows}, ${cols}] with NaN, +Inf and −Inf rows`, async () => {
      const last = rows - 1;
      const w = withRows(rows, cols, 5, {
        0: { cols: [cols - 1], fill: NaN },
        1: { cols: [0], fill: Infinity },
        [last]: { cols: [Math.floor(cols / 2)], fill: -Infinity },
      });
      const flags = finiteRows(w);
      expect(flags.shape).toEqual([rows]);
      const got = Array.from(await flags.data());
      expect(got).toEqual(Array.from(await finiteRowsReference(w).data()));
      expect([got[0], got[1], got[last]]).toEqual([0, 0, 0]);
      expect(got.slice(2, last).every((f) => f === 1)).toBe(true);
      tf.dispose([w, flags]);
    });
  }

  it('finiteRows counts the largest finite float as finite', async () => {
    const w = tf.tensor2d([3.4028234663852886e38, -3.4028234663852886e38, 0, -0], [2, 2]);
    expect(Array.from(await finiteRows(w).data())).toEqual([1, 1]);
    w.dispose();
  });

  it('refuses mismatched row counts and non-float input with a clear message', () => {
    const x = tf.zeros([3, 4]) as tf.Tensor2D;
    const d = tf.zeros([2, 4]) as tf.Tensor2D;
    expect(() => rowKeepMask(x, d)).toThrow(/x has 3 rows but delta has 2/);
    const i = tf.zeros([2, 2], 'int32') as tf.Tensor2D;
    expect(() => finiteRows(i)).toThrow(/float32/);
    tf.dispose([x, d, i]);
  });

  it('does not leak tensors', () => {
    const x = tf.ones([4, 70]) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose([rowKeepMask(x, x), finiteRows(x)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});

describe('row flags on the cpu backend use the reference path', () => {
  it('computes the mask and the finite flags', async () => {
    await onCpuBackend(async () => {
      const x = tf.tensor2d([[0, 0], [1, 0], [2, 3]]);
      const d = tf.tensor2d([[1, 1], [0, 2], [0, 0]]);
      expect(Array.from(await rowKeepMask(x, d).data())).toEqual([0, 1, 0]);
      expect(Array.from(await finiteRows(tf.tensor2d([[1, NaN], [1, 2]])).data())).toEqual([0, 1]);
    });
  });
});
