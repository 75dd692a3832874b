// GPU faults inside the worker (hardening, issue 7).
//
// - Device loss. A WebGPU device can be lost at any time (driver reset, GPU process crash, the browser reclaiming
//   memory, another tab hanging the GPU). Every buffer on it is gone, so the model is unusable. We watch
//   GPUDevice.lost and tell the page, which restarts the worker (a fresh tfjs and a fresh device), reloads the model
//   and replays the edit history (src/store/recovery.ts). Restarting the whole worker is simpler and safer than
//   re-registering a tfjs backend in place: no tensor of the dead device can survive into the new one.
// - Out of memory. Allocations that fail raise GPUOutOfMemoryError asynchronously, not at the call that caused them.
//   Each worker request that allocates runs inside an 'out-of-memory' error scope (guardGpuMemory); createBuffer is
//   watched so the error can name the size being allocated. Errors outside any scope arrive as 'uncapturederror'.
import * as tf from '@tensorflow/tfjs';
import type { GpuLimits, WorkerEvent } from './protocol';
import { formatBytes } from './memory-check';

/** The parts of GPUDevice used here (structural, so the worker does not need @webgpu/types). */
export interface Device {
  lost: Promise<{ reason: string; message: string }>;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  destroy(): void;
  pushErrorScope(filter: 'out-of-memory' | 'validation' | 'internal'): void;
  popErrorScope(): Promise<{ message: string; constructor: { name: string } } | null>;
  addEventListener(type: 'uncapturederror', fn: (e: { error: { message: string; constructor: { name: string } } }) => void): void;
  createBuffer(descriptor: { size: number }): unknown;
}

/** The device tfjs-backend-webgpu is using, or null on another backend. */
function currentDevice(): Device | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return ((tf.backend() as unknown as { device?: Device }).device) ?? null;
}

// Allocation sizes since the current guard started (largest single buffer and total), for the out-of-memory message.
let allocations = { largest: 0, total: 0, count: 0 };
let watched: Device | null = null;

/**
 * Starts watching the current WebGPU device: `report` is called once if it is lost, and for device errors that no
 * request's error scope caught. Returns the device's buffer limits, or null off WebGPU.
 */
export function watchDevice(report: (event: WorkerEvent) => void, device: Device | null = currentDevice()): GpuLimits | null {
  if (!device) return null;
  if (watched !== device) {
    watched = device;
    void device.lost.then((info) => report({ kind: 'gpuLost', reason: info.reason, message: info.message }));
    device.addEventListener('uncapturederror', (e) => {
      // Out-of-memory and internal errors are the user's business (something did not run); a validation error is a
      // bug in a shader or a call, for the console, not for a banner over the page.
      const kind = e.error.constructor.name;
      if (kind === 'GPUOutOfMemoryError') report({ kind: 'gpuError', message: `The GPU ran out of memory${sizeNote()}: ${e.error.message}` });
      else if (kind === 'GPUInternalError') report({ kind: 'gpuError', message: `The GPU reported an internal error${sizeNote()}: ${e.error.message}` });
      else console.warn(`WebGPU ${kind}: ${e.error.message}`);
    });
    const create = device.createBuffer.bind(device);
    device.createBuffer = (descriptor) => {
      allocations.largest = Math.max(allocations.largest, descriptor.size);
      allocations.total += descriptor.size;
      allocations.count++;
      return create(descriptor);
    };
  }
  return { maxBufferSize: device.limits.maxBufferSize, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize };
}

function sizeNote(): string {
  if (!allocations.count) return '';
  return ` while allocating GPU buffers of up to ${formatBytes(allocations.largest)} (${formatBytes(allocations.total)} in ${allocations.count} buffers)`;
}

export class GpuMemoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GpuMemoryError';
  }
}

/**
 * Runs `fn` inside an out-of-memory error scope. If the GPU could not allocate during it, the request fails with a
 * GpuMemoryError naming what was being done and the sizes being allocated, even when `fn` itself "succeeded" (the
 * failed buffer would otherwise surface later as garbage or a lost device). Off WebGPU it just runs `fn`.
 */
export async function guardGpuMemory<T>(what: string, fn: () => Promise<T>, device: Device | null = currentDevice()): Promise<T> {
  if (!device) return fn();
  allocations = { largest: 0, total: 0, count: 0 }; // only counted on a watched device (all of tfjs's are)
  device.pushErrorScope('out-of-memory');
  let result: T | undefined;
  let thrown: unknown = null;
  try {
    result = await fn();
  } catch (e) {
    thrown = e;
  }
  // A lost device resolves (or, in older browsers, rejects) its scopes; either way there is nothing more to say.
  const oom = await device.popErrorScope().catch(() => null);
  if (oom) throw new GpuMemoryError(`The GPU ran out of memory ${what}${sizeNote()}: ${oom.message}`);
  if (thrown) throw thrown;
  return result as T;
}

/** e2e fault injection: what a driver reset does to the device tfjs is using. */
export function destroyDeviceForTest(): boolean {
  const device = currentDevice();
  if (!device) return false;
  device.destroy();
  return true;
}
