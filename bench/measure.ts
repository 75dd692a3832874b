// Timing and memory measurement on tfjs-webgpu.
//
// Wall clock: WebGPU work is asynchronous, so a phase is only over when the GPU is done. We sync with the engine's
// gpuSync, which submits everything queued and waits for the queue to finish it. A single small dispatch is
// dominated by that round trip and by JavaScript's per-op overhead, so a kernel is timed as `inner`
// back-to-back calls followed by one sync, divided by `inner`: the GPU then runs while JavaScript queues the next
// call, and the number is the sustained cost per call (GPU time when the kernel is the bottleneck, JavaScript
// dispatch time when it is not). Every measurement is repeated `reps` times after `warmup` untimed runs (which
// also compile the pipelines), and the median is reported.
//
// GPU time: where the adapter has 'timestamp-query', tf.time() also gives the kernels' own execution time
// (`kernelMs`), which is what the bandwidth numbers need for kernels that take microseconds.
import * as tf from '@tensorflow/tfjs';
import { gpuSync } from '../src/editors/changes';
import { activeWebGPUBackend } from '../src/kernels/webgpu';

export interface Repetitions {
  warmup: number;
  reps: number;
  /** back-to-back calls per timed kernel sample */
  inner: number;
}

export const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Waits for all queued GPU work (via a tiny tensor so there is always something to read). */
export async function syncAll(): Promise<void> {
  const t = tf.zeros([1]);
  const u = tf.add(t, 1);
  await gpuSync(u);
  tf.dispose([t, u]);
}

/** Whether the active webgpu device can time kernels on the GPU. */
export function hasTimestampQuery(): boolean {
  const be = activeWebGPUBackend() as unknown as { supportTimestampQuery?: boolean } | null;
  return !!be?.supportTimestampQuery;
}

export interface OpTiming {
  /** median wall-clock ms per call (inner calls per sample) */
  ms: number;
  /** median GPU execution ms of one call from timestamp queries, or null without 'timestamp-query' */
  gpuMs: number | null;
}

/** Times `op` (which returns a tensor the timer disposes). */
export async function timeOp(op: () => tf.Tensor, r: Repetitions): Promise<OpTiming> {
  for (let i = 0; i < r.warmup; i++) tf.dispose(op());
  await syncAll();
  const samples: number[] = [];
  for (let rep = 0; rep < r.reps; rep++) {
    const t0 = performance.now();
    let last: tf.Tensor | null = null;
    for (let i = 0; i < r.inner; i++) {
      if (last) last.dispose();
      last = op();
    }
    await gpuSync(last!);
    samples.push((performance.now() - t0) / r.inner);
    last!.dispose();
  }
  let gpuMs: number | null = null;
  if (hasTimestampQuery()) {
    const gpu: number[] = [];
    for (let rep = 0; rep < r.reps; rep++) {
      let out: tf.Tensor | null = null;
      const info = await tf.time(() => {
        out = op();
      });
      tf.dispose(out!);
      gpu.push(info.kernelMs as number);
    }
    gpuMs = median(gpu);
  }
  return { ms: median(samples), gpuMs };
}

/**
 * High-water mark of GPU memory in use: tfjs's buffer manager counts the bytes of every buffer handed out
 * (tensors and staging), which is what tf.memory().numBytesInGPU reports; tfjs itself keeps no peak, so we
 * watch every acquisition. The count only includes buffers tfjs manages (not Dawn-internal allocations).
 */
export class GpuMemoryWatch {
  peak = 0;
  private readonly manager: { numBytesUsed: number; numBytesAllocated: number; acquireBuffer: (...a: unknown[]) => unknown };
  private readonly original: (...a: unknown[]) => unknown;

  constructor() {
    const be = activeWebGPUBackend() as unknown as { bufferManager: GpuMemoryWatch['manager'] } | null;
    if (!be) throw new Error('GpuMemoryWatch needs the webgpu backend');
    this.manager = be.bufferManager;
    this.original = this.manager.acquireBuffer;
    const self = this;
    this.manager.acquireBuffer = function (this: unknown, ...args: unknown[]) {
      const buffer = self.original.apply(this, args);
      self.peak = Math.max(self.peak, self.manager.numBytesUsed);
      return buffer;
    };
    this.reset();
  }

  /** Starts a new high-water mark from what is in use now. */
  reset(): void {
    this.peak = this.manager.numBytesUsed;
  }

  get inUse(): number {
    return this.manager.numBytesUsed;
  }

  /** Bytes tfjs holds on the device, free pool included (tf.memory().numBytesAllocatedInGPU). */
  get allocated(): number {
    return this.manager.numBytesAllocated;
  }

  stop(): void {
    this.manager.acquireBuffer = this.original;
  }
}

/**
 * Counts what JavaScript hands to the GPU while it is running: tfjs kernels (every engine.runKernelFunc call, the
 * kernels run by gradients and inside customGrad functions included; by name) and WGSL dispatches (every
 * runWebGPUProgram call: kernels that only reshape or that ran on the CPU dispatch nothing, a few dispatch two).
 * On a real GPU the H100 run showed per-dispatch overhead, not GPU work, setting the time of small models, so
 * these counts say where the milliseconds go. Install, run the code to count, then stop().
 */
export class DispatchCounter {
  kernels = 0;
  dispatches = 0;
  readonly byKernel = new Map<string, number>();
  private readonly restore: Array<() => void> = [];

  constructor() {
    const engine = tf.engine() as unknown as { runKernelFunc: (p: { kernelName?: string }) => unknown };
    const run = engine.runKernelFunc;
    const self = this;
    engine.runKernelFunc = function (this: unknown, params: { kernelName?: string }) {
      self.kernels++;
      const name = params.kernelName ?? 'customGrad';
      self.byKernel.set(name, (self.byKernel.get(name) ?? 0) + 1);
      return run.call(this, params);
    };
    this.restore.push(() => (engine.runKernelFunc = run));
    const be = activeWebGPUBackend() as unknown as { runWebGPUProgram: (...a: unknown[]) => unknown } | null;
    if (be) {
      const prog = be.runWebGPUProgram;
      be.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
        self.dispatches++;
        return prog.apply(this, args);
      };
      this.restore.push(() => (be.runWebGPUProgram = prog));
    }
  }

  /** The most frequent kernel names, most frequent first, as counts divided by `per`. */
  top(n: number, per = 1): Record<string, number> {
    return Object.fromEntries([...this.byKernel].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => [k, v / per]));
  }

  stop(): void {
    for (const r of this.restore.reverse()) r();
    this.restore.length = 0;
  }
}
