// assertFiniteWeights: one read-back of every weight's per-row flags; it must still name the right weight, on the cpu
// backend and on WebGPU (where the per-row check is kernels/row_flags.ts's finiteRows).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { assertFiniteWeights, EditRefusedError } from './changes';

function cases() {
  const ok = (name: string, shape: number[]) => ({ name, value: tf.randomNormal(shape, 0, 1, 'float32', 3) });
  const withBad = (name: string, shape: number[], at: number, bad: number) => {
    const v = tf.randomNormal(shape, 0, 1, 'float32', 4).dataSync() as Float32Array;
    v[at] = bad;
    return { name, value: tf.tensor(v, shape) };
  };
  return { ok, withBad };
}

for (const backend of ['cpu', 'webgpu'] as const) {
  describe(`assertFiniteWeights on ${backend}`, () => {
    it('resolves for finite weights and names the first bad one, for NaN, +Inf and -Inf anywhere', async () => {
      if (backend === 'webgpu') await useNodeWebGPU();
      await initBackend(backend);
      const { ok, withBad } = cases();
      const good = [ok('a', [64, 96]), ok('b', [96, 64]), ok('c', [40])];
      await expect(assertFiniteWeights(good)).resolves.toBeUndefined();
      await expect(assertFiniteWeights([])).resolves.toBeUndefined();
      const tries: Array<[number, number, string]> = [[64 * 96 - 1, NaN, 'b2'], [0, Infinity, 'b2'], [3000, -Infinity, 'b2']];
      for (const [at, bad, name] of tries) {
        const list = [good[0], withBad(name, [64, 96], at, bad), withBad('later', [96, 64], 5, NaN)];
        const err = await assertFiniteWeights(list).catch((e) => e);
        expect(err).toBeInstanceOf(EditRefusedError);
        expect((err as Error).message).toContain(`"${name}" contain NaN or infinite values`);
        tf.dispose([list[1].value, list[2].value]);
      }
      const bad1d = withBad('bias', [40], 39, NaN);
      await expect(assertFiniteWeights([good[0], bad1d])).rejects.toThrow(/"bias" contain NaN/);
      tf.dispose([...good.map((g) => g.value), bad1d.value]);
    }, 60_000);
  });
}
