// The small bridge between our kernels and tfjs's WebGPU backend.
//
// Only *types* come from @tensorflow/tfjs-backend-webgpu. A value import would evaluate that package, and it
// registers the 'webgpu' backend only if navigator.gpu already exists at that moment; in Node the test helper
// installs navigator.gpu first and then imports the package itself. A static import from here could run earlier
// and leave tfjs without a webgpu backend for the whole process.
import * as tf from '@tensorflow/tfjs';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';

export type { WebGPUBackend, WebGPUProgram };

/** Uniform values appended after tfjs's own (NAN, INFINITY, shapes, strides), in the order of `program.uniforms`. */
export type ProgramUniforms = Array<{ type: 'float32' | 'int32' | 'uint32'; data: number[] }>;

/** The active backend when it is tfjs's WebGPU backend; null on wasm/cpu, where callers use the tfjs-op reference. */
export function activeWebGPUBackend(): WebGPUBackend | null {
  if (tf.getBackend() !== 'webgpu') return null;
  return tf.backend() as unknown as WebGPUBackend;
}

/** Number of workgroups needed to cover `n` items with groups of `size`. */
export const groupsFor = (n: number, size: number) => Math.max(1, Math.ceil(n / size));

/**
 * Runs a program on the shared device and wraps the result as a Tensor the engine tracks (so tf.memory() counts
 * it and dispose() frees it). `output`, when given, is written instead of a fresh buffer; see rank_update.ts.
 */
export function runProgram(
  backend: WebGPUBackend,
  program: WebGPUProgram,
  inputs: tf.Tensor[],
  uniforms?: ProgramUniforms,
): tf.Tensor {
  const info = backend.runWebGPUProgram(program, inputs, 'float32', uniforms);
  return tf.engine().makeTensorFromTensorInfo(info);
}

/** Throws unless every tensor is float32 with the expected rank: WGSL indexes raw buffers and would read garbage. */
export function checkFloat(kernel: string, tensors: Record<string, tf.Tensor>, ranks: Record<string, number>): void {
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== 'float32') throw new Error(`${kernel}: ${name} must be float32, got ${t.dtype}`);
    if (t.rank !== ranks[name]) throw new Error(`${kernel}: ${name} must have rank ${ranks[name]}, got shape [${t.shape}]`);
  }
}

/**
 * A compute pipeline for our own WGSL (entry point `main`) with an explicit bind-group layout read from the bindings
 * the code declares: 'auto' would drop a binding a kernel declares but never reads, and bind groups built for the
 * declared list would then fail. Uncached: callers use cachedPipeline.
 */
export function pipelineFromWgsl(device: GPUDevice, code: string, label: string): GPUComputePipeline {
  const entries: GPUBindGroupLayoutEntry[] = [...code.matchAll(/@binding\((\d+)\) var<(uniform|storage, read_write|storage, read)>/g)].map((m) => ({
    binding: Number(m[1]),
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: m[2] === 'uniform' ? 'uniform' : m[2] === 'storage, read' ? 'read-only-storage' : 'storage' },
  }));
  const layout = device.createPipelineLayout({ bindGroupLayouts: [device.createBindGroupLayout({ entries })] });
  const module = device.createShaderModule({ code, label });
  return device.createComputePipeline({ layout, compute: { module, entryPoint: 'main' }, label });
}

const pipelineCaches = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * pipelineFromWgsl, compiled once per device and (label, key): the fast paths (fast_capture.ts, fast_editor.ts,
 * fast_decode.ts) look their pipelines up on every call. `code` runs only on a miss, so a key that is cheaper than
 * the source (a kernel name and the shape it is built for) saves building the text; the key must then determine it.
 */
export function cachedPipeline(device: GPUDevice, label: string, key: string, code: () => string): GPUComputePipeline {
  let cache = pipelineCaches.get(device);
  if (!cache) pipelineCaches.set(device, (cache = new Map()));
  const id = `${label}\n${key}`;
  let p = cache.get(id);
  if (!p) {
    p = pipelineFromWgsl(device, code(), label);
    cache.set(id, p);
  }
  return p;
}
