// Will this model fit? Checked from config.json alone, before any weights are downloaded, so a model that cannot
// run here is refused in a second with the size it needs and the limit it hit, instead of a 5 GB download that ends
// in a GPU out-of-memory error (or a tab killed by the browser).
//
// Every weight runs in fp32 whatever the checkpoint stores (src/model/load.ts widens F16/BF16), so a tensor of n
// values needs 4n bytes. On WebGPU each tensor is one GPU buffer, which must fit both the device's maxBufferSize and
// its maxStorageBufferBindingSize (tfjs binds every input as a storage buffer). The largest *activation* buffer is the
// logits of a full context, n_positions × vocab_size, so it is checked too. On WASM all weights live in one
// WebAssembly memory of at most 4 GiB − 64 KiB (tfjs-backend-wasm's getHeapMax).
import { expectedTensorShapes, type GPT2Config } from '../model/config';
import type { BackendName, GpuLimits } from './protocol';

export const BYTES_PER_VALUE = 4;
/** tfjs-backend-wasm is wasm32 and caps its heap at 65536 × 65535 bytes */
export const WASM_HEAP_MAX = 4294901760;

export interface Footprint {
  /** fp32 bytes of every weight tensor together */
  totalBytes: number;
  /** the largest single weight tensor */
  largest: { name: string; bytes: number };
  /** logits for a full context: n_positions × vocab_size fp32 values, the largest buffer a forward pass makes */
  logitsBytes: number;
}

const product = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** The memory a GPT-2 of this config needs in fp32 (exact for the weights; plain integer arithmetic in doubles). */
export function modelFootprint(c: GPT2Config): Footprint {
  let totalBytes = 0;
  let largest = { name: '', bytes: -1 };
  for (const [name, shape] of expectedTensorShapes(c)) {
    const bytes = product(shape) * BYTES_PER_VALUE;
    totalBytes += bytes;
    if (bytes > largest.bytes) largest = { name, bytes };
  }
  return { totalBytes, largest, logitsBytes: c.nPositions * c.vocabSize * BYTES_PER_VALUE };
}

/** Sizes in the units people read: "5.1 GB" for decimal multiples of bytes, "256 MiB" for exact powers of two. */
export function formatBytes(n: number): string {
  if (n >= 1024 && Number.isInteger(Math.log2(n))) {
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n / 1024;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    return `${v} ${units[i]}`;
  }
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} bytes` : `${v.toFixed(1)} ${units[i]}`;
}

export class ModelTooLargeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelTooLargeError';
  }
}

/**
 * Throws ModelTooLargeError when the model cannot be held by this backend: a weight (or the logits) larger than one
 * GPU buffer may be, or all weights beyond the WASM heap. `gpu` is the WebGPU device's limits (null off WebGPU).
 */
export function checkModelFits(c: GPT2Config, backend: BackendName, gpu: GpuLimits | null): Footprint {
  const f = modelFootprint(c);
  if (backend === 'webgpu' && gpu) {
    const perBuffer = Math.min(gpu.maxBufferSize, gpu.maxStorageBufferBindingSize);
    const which = gpu.maxBufferSize <= gpu.maxStorageBufferBindingSize ? 'maxBufferSize' : 'maxStorageBufferBindingSize';
    if (f.largest.bytes > perBuffer) {
      throw new ModelTooLargeError(
        `This model needs a ${formatBytes(f.largest.bytes)} buffer for ${f.largest.name} (${formatBytes(f.totalBytes)} of weights in all); ` +
          `this GPU allows at most ${formatBytes(perBuffer)} per buffer (${which}). Choose a smaller model, or tick “Use WASM”.`,
      );
    }
    if (f.logitsBytes > perBuffer) {
      throw new ModelTooLargeError(
        `This model needs a ${formatBytes(f.logitsBytes)} buffer for the logits of a full context (${c.nPositions} positions × ${c.vocabSize} tokens); ` +
          `this GPU allows at most ${formatBytes(perBuffer)} per buffer (${which}).`,
      );
    }
  } else if (backend === 'wasm' && f.totalBytes > WASM_HEAP_MAX) {
    throw new ModelTooLargeError(
      `This model needs ${formatBytes(f.totalBytes)} for its weights (the largest, ${f.largest.name}, is ${formatBytes(f.largest.bytes)}); ` +
        `the WebAssembly (WASM) backend can hold at most ${formatBytes(WASM_HEAP_MAX)}.`,
    );
  }
  return f;
}
