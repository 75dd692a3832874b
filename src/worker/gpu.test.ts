// The worker's GPU fault handling against a scripted device (a real GPUOutOfMemoryError or driver reset cannot be
// produced on demand; the e2e spec hardening-gpu.spec.ts destroys a real SwiftShader device): loss is reported once
// with its reason, out-of-memory inside a request fails it naming the sizes being allocated, errors outside any
// request are reported, and requests without errors are untouched.
import { describe, expect, it } from 'vitest';
import { GpuMemoryError, guardGpuMemory, watchDevice, type Device } from './gpu';
import type { WorkerEvent } from './protocol';

class OutOfMemory {
  constructor(readonly message: string) {}
}
Object.defineProperty(OutOfMemory, 'name', { value: 'GPUOutOfMemoryError' });

function fakeDevice() {
  let lose!: (info: { reason: string; message: string }) => void;
  const scopes: Array<OutOfMemory | null> = [];
  const listeners: Array<(e: { error: OutOfMemory }) => void> = [];
  const created: number[] = [];
  const device = {
    lost: new Promise<{ reason: string; message: string }>((ok) => (lose = ok)),
    limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 },
    destroy: () => lose({ reason: 'destroyed', message: 'Device was destroyed.' }),
    pushErrorScope: () => void scopes.push(null),
    popErrorScope: async () => scopes.pop() ?? null,
    addEventListener: (_: string, fn: (e: { error: OutOfMemory }) => void) => void listeners.push(fn),
    createBuffer(d: { size: number }) {
      created.push(d.size);
      // an allocation over 256 MiB "fails": inside a scope it is caught there, otherwise it is uncaptured
      if (d.size > 256 * 2 ** 20) {
        const err = new OutOfMemory(`Not enough memory left to allocate a buffer of size ${d.size}.`);
        if (scopes.length) scopes[scopes.length - 1] = err;
        else for (const fn of listeners) fn({ error: err });
      }
      return {};
    },
  };
  return { device: device as unknown as Device, created };
}

describe('GPU faults in the worker', () => {
  it('reports the device limits, a lost device once, and out-of-memory outside any request', async () => {
    const { device } = fakeDevice();
    const events: WorkerEvent[] = [];
    expect(watchDevice((e) => events.push(e), device)).toEqual({ maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 27 });
    device.createBuffer({ size: 300 * 2 ** 20 });
    expect(events).toEqual([{ kind: 'gpuError', message: expect.stringMatching(/^The GPU ran out of memory while allocating GPU buffers of up to 314\.6 MB .*: Not enough memory left/) }]);
    device.destroy();
    await new Promise((r) => setTimeout(r, 0));
    expect(events[1]).toEqual({ kind: 'gpuLost', reason: 'destroyed', message: 'Device was destroyed.' });
    expect(events).toHaveLength(2);
  });

  it('fails a request whose allocations ran out of memory, naming what it did and the sizes', async () => {
    const { device } = fakeDevice();
    watchDevice(() => {}, device);
    const run = guardGpuMemory('during the edit', async () => {
      device.createBuffer({ size: 64 * 2 ** 20 });
      device.createBuffer({ size: 512 * 2 ** 20 });
      return 'looked fine';
    }, device);
    await expect(run).rejects.toThrow(GpuMemoryError);
    await expect(guardGpuMemory('during the edit', async () => void device.createBuffer({ size: 512 * 2 ** 20 }), device)).rejects.toThrow(
      'The GPU ran out of memory during the edit while allocating GPU buffers of up to 512 MiB (512 MiB in 1 buffers): Not enough memory left to allocate a buffer of size 536870912.',
    );
  });

  it('passes results and other errors through untouched', async () => {
    const { device } = fakeDevice();
    watchDevice(() => {}, device);
    await expect(guardGpuMemory('while generating', async () => (device.createBuffer({ size: 1024 }), 7), device)).resolves.toBe(7);
    await expect(guardGpuMemory('while generating', async () => { throw new Error('the prompt is empty'); }, device)).rejects.toThrow('the prompt is empty');
    await expect(guardGpuMemory('off WebGPU', async () => 'cpu', null)).resolves.toBe('cpu');
  });
});
