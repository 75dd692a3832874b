// The bench-only row-per-workgroup editor kernel (bench/editor_mlp_rowwise.ts, `--rowwise-baseline`) computes
// the same function as the engine's tiled kernel: otherwise the side-by-side timing would compare different work.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editorMLPRowwise } from '../../bench/editor_mlp_rowwise';
import { disposePackedEditorParams, editorMLP, editorMLPReference, packEditorParams } from '../../src/kernels/editor_mlp';
import { relativeError, seededTensor } from '../../src/kernels/testing';
import { useNodeWebGPU } from '../helpers/node-webgpu';

describe('row-per-workgroup editor kernel (bench baseline) on webgpu', () => {
  beforeAll(async () => {
    await useNodeWebGPU();
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  });
  afterAll(() => { tf.env().set('WEBGPU_CPU_FORWARD', true); });

  it('agrees with the tfjs reference and with the tiled kernel (N=7, in=40, out=57, rank=70)', async () => {
    const [xDim, deltaDim, rank, D] = [40, 57, 70, 97];
    const raw = {
      xMean: seededTensor([xDim], 1, 0.1) as tf.Tensor1D, xStd: tf.add(seededTensor([xDim], 2, 0.5), 1) as tf.Tensor1D,
      deltaMean: seededTensor([deltaDim], 3, 0.1) as tf.Tensor1D, deltaStd: tf.add(seededTensor([deltaDim], 4, 0.5), 1) as tf.Tensor1D,
      eps: 1e-7,
      layers: [0, 1].map((l) => ({
        u: seededTensor([D, rank], 10 + l, 1 / Math.sqrt(rank)) as tf.Tensor2D, v: seededTensor([rank, D], 20 + l, 1 / Math.sqrt(D)) as tf.Tensor2D,
        bias: seededTensor([D], 30 + l, 0.1) as tf.Tensor1D, modeScale: tf.add(seededTensor([2, D], 40 + l, 0.5), 1) as tf.Tensor2D,
        modeShift: seededTensor([2, D], 50 + l, 0.1) as tf.Tensor2D,
      })),
    };
    const p = packEditorParams(raw);
    tf.dispose([raw.xMean, raw.xStd, raw.deltaMean, raw.deltaStd, ...raw.layers.flatMap((l) => Object.values(l))]);
    const x = seededTensor([7, xDim], 5, 2) as tf.Tensor2D;
    const delta = seededTensor([7, deltaDim], 6, 0.01) as tf.Tensor2D;
    const old = editorMLPRowwise(x, delta, p, 1);
    const ref = editorMLPReference(x, delta, p, 1);
    const tiled = editorMLP(x, delta, p, 1);
    expect(await relativeError(old, ref)).toBeLessThanOrEqual(1e-5);
    expect(await relativeError(tiled, old)).toBeLessThanOrEqual(1e-5);
    const keys = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
    expect(keys.some((k) => k.startsWith('mendEditorMLPRowwise_'))).toBe(true);
    tf.dispose([x, delta, old, ref, tiled]);
    disposePackedEditorParams(p);
  });
});
