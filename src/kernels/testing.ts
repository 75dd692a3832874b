// Helpers shared by the kernel tests (not part of the app bundle: only *.test.ts files import this).
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll } from 'vitest';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';

/** Deterministic uniform(-1, 1) values (mulberry32), so a failing shape can be reproduced exactly. */
export function seededValues(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1) * scale;
  }
  return out;
}

export function seededTensor(shape: number[], seed: number, scale = 1): tf.Tensor {
  return tf.tensor(seededValues(shape.reduce((a, b) => a * b, 1), seed, scale), shape, 'float32');
}

/**
 * max |a − b| / max |b|: the error relative to the scale of the reference output. (Element-wise relative error is
 * meaningless for entries that happen to be near zero, which a sum of products always produces somewhere.)
 */
export async function relativeError(actual: tf.Tensor, expected: tf.Tensor): Promise<number> {
  if (actual.shape.join() !== expected.shape.join()) {
    throw new Error(`shape mismatch: [${actual.shape}] vs [${expected.shape}]`);
  }
  const [a, b] = await Promise.all([actual.data(), expected.data()]);
  return relativeArrayError(a, b);
}

/** relativeError for plain arrays (e.g. logits already read back), the same measure. */
export function relativeArrayError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity;
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * Call inside a describe block: its tests run on Dawn's WebGPU with tfjs' CPU forwarding of small tensors off (it
 * would otherwise compute the tiny test shapes on the CPU, and the kernel under test would never run).
 */
export function kernelTestsOnWebGPU(): void {
  beforeAll(async () => {
    await useNodeWebGPU();
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  });
  afterAll(() => void tf.env().set('WEBGPU_CPU_FORWARD', true));
}

/** Runs `fn` on the cpu backend (the kernels' reference path) and switches back to the previous backend. */
export async function onCpuBackend(fn: () => Promise<void>): Promise<void> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  try {
    await fn();
  } finally {
    await tf.setBackend(previous);
  }
}
