// Backend choice in plain Node (no navigator.gpu): webgpu is unavailable, 'auto' falls back to wasm.
// WebGPU itself is exercised in parity-webgpu.test.ts and the CLI tests (Dawn).
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { activeBackend, initBackend, webgpuAvailable } from '../../src/model';

describe('backend selection', () => {
  it('reports no WebGPU without navigator.gpu and refuses an explicit webgpu request clearly', async () => {
    expect((globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu).toBeUndefined();
    expect(await webgpuAvailable()).toBe(false);
    await expect(initBackend('webgpu')).rejects.toThrow('WebGPU is not available here (no navigator.gpu adapter)');
  });

  it("'auto' falls back to wasm, and explicit choices switch backends", async () => {
    expect(await initBackend('auto')).toBe('wasm');
    expect(activeBackend()).toBe('wasm');
    expect(await initBackend('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await initBackend('wasm')).toBe('wasm');
    expect(await tf.add(tf.tensor1d([1, 2]), 1).data()).toEqual(new Float32Array([2, 3]));
  });

  it('falls back past a webgpu adapter that does not exist', async () => {
    const nav = { gpu: { requestAdapter: async () => null } };
    Object.defineProperty(globalThis, 'navigator', { value: nav, configurable: true });
    try {
      expect(await webgpuAvailable()).toBe(false);
      expect(await initBackend('auto')).toBe('wasm');
    } finally {
      delete (globalThis as { navigator?: unknown }).navigator;
    }
  });
});
