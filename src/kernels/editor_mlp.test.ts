import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import {
  disposePackedEditorParams, editorMLP, editorMLPReference, packEditorParams, splitEditorOutput, splitK,
  type EditorParams, type PackedEditorParams,
} from './editor_mlp';
import { kernelTestsOnWebGPU, relativeError, seededTensor } from './testing';

/** Packs and then frees the unpacked tensors (packEditorParams copies them). */
function packOwned(p: EditorParams): PackedEditorParams {
  const packed = packEditorParams(p);
  tf.dispose([p.xMean, p.xStd, p.deltaMean, p.deltaStd, ...p.layers.flatMap((l) => Object.values(l))]);
  return packed;
}

/** A random editor: every parameter non-trivial, so each term of the formula matters to the output. */
function randomEditor(xDim: number, deltaDim: number, rank: number, nModes: number, seed: number): PackedEditorParams {
  const D = xDim + deltaDim;
  return packOwned({
    xMean: seededTensor([xDim], seed, 0.1) as tf.Tensor1D,
    xStd: tf.add(seededTensor([xDim], seed + 1, 0.5), 1) as tf.Tensor1D,
    deltaMean: seededTensor([deltaDim], seed + 2, 0.1) as tf.Tensor1D,
    deltaStd: tf.add(seededTensor([deltaDim], seed + 3, 0.5), 1) as tf.Tensor1D,
    eps: 1e-7,
    layers: [0, 1].map((l) => ({
      u: seededTensor([D, rank], seed + 10 * l + 4, 1 / Math.sqrt(rank)) as tf.Tensor2D,
      v: seededTensor([rank, D], seed + 10 * l + 5, 1 / Math.sqrt(D)) as tf.Tensor2D,
      bias: seededTensor([D], seed + 10 * l + 6, 0.1) as tf.Tensor1D,
      modeScale: tf.add(seededTensor([nModes, D], seed + 10 * l + 7, 0.5), 1) as tf.Tensor2D,
      modeShift: seededTensor([nModes, D], seed + 10 * l + 8, 0.1) as tf.Tensor2D,
    })),
  });
}

const ROWS = [1, 7, 64];
// The kernel tiles 64 output columns × 16 rows per workgroup and stages K in blocks of 128, split over
// workgroups. D = 50 and 97 are not multiples of 64; rank 5 (< one tile) and 70 (> one tile, not a multiple of
// 4: the unrolled k loop's tail); rows 1/7 (a partial row block) and 64 (several row blocks).
const SHAPES: Array<{ xDim: number; deltaDim: number; rank: number }> = [
  { xDim: 13, deltaDim: 37, rank: 5 },
  { xDim: 40, deltaDim: 57, rank: 70 },
];
// Shapes where K is split across workgroups (several partial sums), with a short last split and K not a
// multiple of the 128-wide stage: D = 331 (h·Vᵀ: K = 331 → 3 splits) and rank 259 (t·Uᵀ: K = 259 → 3 splits).
const SPLIT_SHAPES: Array<{ xDim: number; deltaDim: number; rank: number; rows: number[] }> = [
  { xDim: 150, deltaDim: 181, rank: 259, rows: [1, 7, 33] },
];

describe('editor_mlp kernel on webgpu (Dawn)', () => {
  kernelTestsOnWebGPU();

  for (const { xDim, deltaDim, rank } of SHAPES) {
    for (const n of ROWS) {
      it(`agrees with the tfjs reference for N=${n}, in=${xDim}, out=${deltaDim}, rank=${rank}`, async () => {
        expect(tf.getBackend()).toBe('webgpu');
        const editor = randomEditor(xDim, deltaDim, rank, 3, rank);
        const x = seededTensor([n, xDim], n + 1, 2) as tf.Tensor2D;
        const delta = seededTensor([n, deltaDim], n + 2, 0.01) as tf.Tensor2D;
        for (const mode of [0, 2]) {
          const out = editorMLP(x, delta, editor, mode);
          const ref = editorMLPReference(x, delta, editor, mode);
          expect(out.shape).toEqual([n, xDim + deltaDim]);
          expect(await relativeError(out, ref)).toBeLessThanOrEqual(1e-5);
          tf.dispose([out, ref]);
        }
        tf.dispose([x, delta]);
        disposePackedEditorParams(editor);
      });
    }
  }

  for (const { xDim, deltaDim, rank, rows } of SPLIT_SHAPES) {
    it(`agrees with the tfjs reference when K is split across workgroups (in=${xDim}, out=${deltaDim}, rank=${rank}, N=${rows})`, async () => {
      // The test is only meaningful if both products really are split.
      expect(splitK(xDim + deltaDim, rank, 16).splits).toBeGreaterThan(1);
      expect(splitK(rank, xDim + deltaDim, 16).splits).toBeGreaterThan(1);
      const editor = randomEditor(xDim, deltaDim, rank, 3, 77);
      for (const n of rows) {
        const x = seededTensor([n, xDim], n + 5, 2) as tf.Tensor2D;
        const delta = seededTensor([n, deltaDim], n + 6, 0.01) as tf.Tensor2D;
        const out = editorMLP(x, delta, editor, 1);
        const ref = editorMLPReference(x, delta, editor, 1);
        expect(await relativeError(out, ref)).toBeLessThanOrEqual(1e-5);
        tf.dispose([x, delta, out, ref]);
      }
      disposePackedEditorParams(editor);
    });
  }

  it('applies the clamp: rows driven negative keep only the residual', async () => {
    // Bias −100 in both blocks makes pre < 0 everywhere, so each block adds exactly 0 and the output is h_0.
    const D = 9;
    const editor = packOwned({
      xMean: tf.zeros([4]) as tf.Tensor1D, xStd: tf.ones([4]) as tf.Tensor1D,
      deltaMean: tf.zeros([5]) as tf.Tensor1D, deltaStd: tf.ones([5]) as tf.Tensor1D, eps: 0,
      layers: [0, 1].map((l) => ({
        u: seededTensor([D, 3], 30 + l, 0.1) as tf.Tensor2D, v: seededTensor([3, D], 40 + l, 0.1) as tf.Tensor2D,
        bias: tf.fill([D], -100) as tf.Tensor1D, modeScale: tf.ones([1, D]) as tf.Tensor2D, modeShift: tf.zeros([1, D]) as tf.Tensor2D,
      })),
    });
    const x = seededTensor([2, 4], 1) as tf.Tensor2D;
    const delta = seededTensor([2, 5], 2) as tf.Tensor2D;
    const out = editorMLP(x, delta, editor, 0);
    const h0 = tf.concat([x, delta], 1);
    expect(await relativeError(out, h0)).toBe(0);
    tf.dispose([x, delta, out, h0]);
    disposePackedEditorParams(editor);
  });

  it('splits K only as far as the stage size allows, and always covers K', () => {
    for (const [k, cols, rows] of [[50, 5, 1], [3840, 1920, 16], [1920, 3840, 16], [331, 259, 7], [128, 64, 1], [5120, 1920, 160]]) {
      const { splits, kPerGroup } = splitK(k, cols, rows);
      expect(kPerGroup % 128).toBe(0);
      expect(splits * kPerGroup).toBeGreaterThanOrEqual(k);
      expect((splits - 1) * kPerGroup).toBeLessThan(k); // no empty split
    }
    // distilgpt2's h·Vᵀ (K = D = 3840, r = 1920 columns, 16 rows): several hundred workgroups.
    const { splits } = splitK(3840, 1920, 16);
    expect(30 * splits).toBeGreaterThanOrEqual(256);
  });

  it('uses the FiLM mode, the clamp and the normalisation (the output is not the identity)', async () => {
    const editor = randomEditor(13, 37, 5, 3, 9);
    const x = seededTensor([7, 13], 3, 2) as tf.Tensor2D;
    const delta = seededTensor([7, 37], 4, 0.01) as tf.Tensor2D;
    const m0 = editorMLP(x, delta, editor, 0);
    const m1 = editorMLP(x, delta, editor, 1);
    expect(await relativeError(m0, m1)).toBeGreaterThan(1e-3);
    // The normalised input alone differs from the output: the blocks did something.
    const h0 = tf.tidy(() => {
      const [mean, std] = tf.unstack(editor.norm);
      return tf.div(tf.sub(tf.concat([x, delta], 1), mean), tf.add(std, 1e-7));
    });
    expect(await relativeError(m0, h0)).toBeGreaterThan(1e-3);
    const [xt, dt] = splitEditorOutput(m0, 13);
    expect(xt.shape).toEqual([7, 13]);
    expect(dt.shape).toEqual([7, 37]);
    tf.dispose([x, delta, m0, m1, h0, xt, dt]);
    disposePackedEditorParams(editor);
  });

  it('is the identity on normalised rows for an identity-initialised editor (U = 0, b = 0, scale 1, shift 0)', async () => {
    const D = 20;
    const editor = packOwned({
      xMean: tf.fill([8], 0.5) as tf.Tensor1D, xStd: tf.fill([8], 2) as tf.Tensor1D,
      deltaMean: tf.zeros([12]) as tf.Tensor1D, deltaStd: tf.ones([12]) as tf.Tensor1D, eps: 1e-7,
      layers: [0, 1].map((l) => ({
        u: tf.zeros([D, 4]) as tf.Tensor2D, v: seededTensor([4, D], l) as tf.Tensor2D, bias: tf.zeros([D]) as tf.Tensor1D,
        modeScale: tf.ones([2, D]) as tf.Tensor2D, modeShift: tf.zeros([2, D]) as tf.Tensor2D,
      })),
    });
    const x = tf.fill([3, 8], 4.5) as tf.Tensor2D;
    const delta = tf.fill([3, 12], -1) as tf.Tensor2D;
    const out = editorMLP(x, delta, editor, 1);
    const values = await out.data();
    for (let i = 0; i < 3; i++) {
      for (let d = 0; d < D; d++) expect(values[i * D + d]).toBeCloseTo(d < 8 ? 2 : -1, 5);
    }
    tf.dispose([x, delta, out]);
    disposePackedEditorParams(editor);
  });

  it('rejects rows of the wrong width and modes out of range', () => {
    const editor = randomEditor(13, 37, 5, 3, 1);
    const x = tf.zeros([2, 12]) as tf.Tensor2D;
    const delta = tf.zeros([2, 37]) as tf.Tensor2D;
    expect(() => editorMLP(x, delta, editor, 0)).toThrow(/editor expects \[13, 37\]/);
    const x2 = tf.zeros([2, 13]) as tf.Tensor2D;
    expect(() => editorMLP(x2, delta, editor, 3)).toThrow(/mode 3 out of range/);
    tf.dispose([x, x2, delta]);
    disposePackedEditorParams(editor);
  });

  it('does not leak tensors', () => {
    const editor = randomEditor(13, 37, 5, 3, 1);
    const x = seededTensor([7, 13], 1) as tf.Tensor2D;
    const delta = seededTensor([7, 37], 2) as tf.Tensor2D;
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose([editorMLP(x, delta, editor, 1), editorMLPReference(x, delta, editor, 1)]);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, delta]);
    disposePackedEditorParams(editor);
  });
});
