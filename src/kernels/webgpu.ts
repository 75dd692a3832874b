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

/**
 * The GPUBuffer behind a tensor, for binding it in our own command encoders (read in place, tfjs-webgpu.md §4.2).
 * A tensor still on the CPU is uploaded first; tfjs records that upload in its own encoder, which the fast paths
 * flush (be.submitQueue) before submitting theirs.
 */
export function tensorBuffer(be: WebGPUBackend, t: tf.Tensor): GPUBuffer {
  be.uploadToGPU(t.dataId);
  return be.tensorMap.get(t.dataId)!.resource as GPUBuffer;
}

/**
 * A new float32 tensor of `shape` whose values our own commands will write (all of them), and its buffer: a tfjs
 * pool buffer of exactly the right size, so the caller owns and disposes the tensor like any other.
 */
export function outputTensor<R extends tf.Rank>(be: WebGPUBackend, shape: number[]): [tf.Tensor<R>, GPUBuffer] {
  const info = be.makeTensorInfo(shape, 'float32');
  be.uploadToGPU(info.dataId); // a fresh pool buffer (no values to upload)
  const t = tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor<R>;
  return [t, be.tensorMap.get(info.dataId)!.resource as GPUBuffer];
}

/**
 * Submits what tfjs has recorded but not yet submitted (its ops, uploads). tfjs records into its own command encoder
 * and submits lazily, so a fast path calls this right before submitting its own commands, which then run after
 * everything tfjs was asked to do before (tfjs-webgpu.md §4.2).
 */
export function flushTfjs(be: WebGPUBackend): void {
  be.ensureCommandEncoderReady();
  be.endComputePassEncoder();
  be.submitQueue();
}

/** A buffer of at least `bytes`, rounded up to a multiple of 16 (and at least 16), as the fast paths' scratch needs. */
export function roundedBuffer(device: GPUDevice, bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
  return device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage, label });
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

/**
 * Reuse of recorded GPU plans by the fast paths (fast_capture.ts, fast_editor.ts). `reuse = false` makes every call
 * build its bind groups (and the editor its scratch buffers) afresh, as before the cache: the bench times both
 * ways side by side, and the tests check that both give the same numbers.
 */
export const gpuPlans = {
  reuse: true,
  /** bind groups created / taken from a BindGroupCache (all caches; for tests and the bench) */
  created: 0,
  reused: 0,
};

/**
 * The bind groups of a dispatch list that is recorded again and again with mostly the same buffers: the capture of
 * an edit (same scratch, same weights unless an edit replaced some) and the editor phase (same scratch; fresh row
 * and output tensors). Dispatch i reuses a bind group of one of the last BIND_GROUP_DEPTH recordings of dispatch i
 * when it has the same pipeline and binds the same buffers (the same GPUBuffer objects, same ranges); otherwise a
 * new one is made and kept, the least recently used one dropped. Comparing the buffers at every call is what keeps
 * this correct: an edit gives a weight a new buffer (tfjs-webgpu.md pitfall 5), so every dispatch that reads that
 * weight gets a new bind group, and nothing is bound to a buffer it no longer reads. Why: on the H100 run of
 * 2026-11-27 the capture's 100 dispatches took 4.5 ms of JavaScript enqueue, most of it one createBindGroup per
 * dispatch (~20 µs each on this build machine).
 *
 * Why more than one recording: tfjs's buffer pool hands same-sized buffers back last in, first out, so the fresh
 * tensors of one edit (keep masks, editor outputs) come back in the opposite order in the next edit and in the
 * first order again in the one after. With only the last recording kept, an edit after an edit missed on every one
 * of those dispatches (12 new bind groups per edit at the bench's tiny shape instead of 4).
 */
export class BindGroupCache {
  private entries: Array<Array<{ pipeline: GPUComputePipeline; bindings: GPUBufferBinding[]; group: GPUBindGroup }>> = [];

  /** The bind group for dispatch `index`: binding i is `bindings[i]`. */
  get(device: GPUDevice, index: number, pipeline: GPUComputePipeline, bindings: GPUBufferBinding[]): GPUBindGroup {
    const recent = (this.entries[index] ??= []);
    const at = gpuPlans.reuse ? recent.findIndex((e) => e.pipeline === pipeline && sameBindings(e.bindings, bindings)) : -1;
    if (at >= 0) {
      gpuPlans.reused++;
      const [hit] = recent.splice(at, 1);
      recent.unshift(hit); // most recently used first
      return hit.group;
    }
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: bindings.map((resource, binding) => ({ binding, resource })),
    });
    gpuPlans.created++;
    recent.unshift({ pipeline, bindings, group });
    if (recent.length > BIND_GROUP_DEPTH) recent.pop();
    return group;
  }

  /** Forgets every bind group (their buffers are about to be destroyed, or the plan changed for good). */
  clear(): void {
    this.entries = [];
  }
}

/** How many recordings of each dispatch a BindGroupCache keeps (see its comment: 2 covers the pool's ping-pong). */
export const BIND_GROUP_DEPTH = 2;

/**
 * The plans a fast path keeps per device: what one signature of its call needs besides inputs and outputs (scratch
 * buffers, uniforms, a BindGroupCache), at most `keep` of them, the least recently used destroyed. With
 * gpuPlans.reuse off, take() makes a new plan every call and keeps none (`kept` false): the caller destroys it once
 * its work is submitted. The editor phase (fast_editor.ts) and the update phase (fast_update.ts) keep theirs here.
 */
export class KeptPlans<P> {
  private readonly byDevice = new WeakMap<GPUDevice, Array<{ key: string; plan: P }>>();

  constructor(private readonly keep: number, private readonly destroy: (plan: P) => void) {}

  /** The kept plan for `key`, or `make()`'s new one (kept only with gpuPlans.reuse). */
  take(device: GPUDevice, key: string, make: () => P): { plan: P; kept: boolean } {
    const list = this.list(device);
    const at = gpuPlans.reuse ? list.findIndex((e) => e.key === key) : -1;
    if (at >= 0) {
      const [hit] = list.splice(at, 1);
      list.push(hit); // most recently used last
      return { plan: hit.plan, kept: true };
    }
    const plan = make();
    if (!gpuPlans.reuse) return { plan, kept: false };
    list.push({ key, plan });
    if (list.length > this.keep) this.destroy(list.shift()!.plan);
    return { plan, kept: true };
  }

  /** Whether `plan` is still kept (neither dropped as least recently used nor released). */
  holds(device: GPUDevice, plan: P): boolean {
    return this.list(device).some((e) => e.plan === plan);
  }

  /** Destroys and forgets every kept plan that `drop` picks. */
  release(device: GPUDevice, drop: (plan: P) => boolean): void {
    const list = this.list(device);
    for (let i = list.length - 1; i >= 0; i--) {
      if (drop(list[i].plan)) this.destroy(list.splice(i, 1)[0].plan);
    }
  }

  private list(device: GPUDevice): Array<{ key: string; plan: P }> {
    let list = this.byDevice.get(device);
    if (!list) this.byDevice.set(device, (list = []));
    return list;
  }
}

function sameBindings(a: GPUBufferBinding[], b: GPUBufferBinding[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].buffer !== b[i].buffer || (a[i].offset ?? 0) !== (b[i].offset ?? 0) || a[i].size !== b[i].size) return false;
  }
  return true;
}

/**
 * A tfjs WebGPUProgram's own WGSL (getUserCode) as a standalone shader for a fast path's own command encoder, so
 * that the fast path runs the very kernel the tfjs path runs and the kernel tests check, not a copy of it.
 * `declarations` declare what tfjs's wrapper would (the `uniforms` struct and the buffers the code reads, with
 * explicit bindings; a `setOutputAtIndex` if the code calls it); this adds the two builtins our programs read
 * (localId, workgroupId) and an entry point `main` that sets them and calls the program's main. A program whose
 * main takes tfjs's flat index gets 0: only programs that do not use it (their rows are per workgroup) fit here, and
 * one that uses another tfjs helper fails to compile (a validation error its fast path reports).
 */
export function standaloneSource(program: WebGPUProgram, declarations: string): string {
  const user = program.getUserCode();
  const m = /fn main\(\s*(\w+\s*:\s*i32)?\s*\)/.exec(user);
  if (!m) throw new Error(`${program.shaderKey}: no main() in the program's code`);
  const [x, y, z] = program.workgroupSize;
  return `${declarations}
var<private> localId : vec3<u32>;
var<private> workgroupId : vec3<u32>;
${user.replace(m[0], `fn programMain(${m[1] ?? ''})`)}
@compute @workgroup_size(${x}, ${y}, ${z}) fn main(@builtin(local_invocation_id) l : vec3<u32>, @builtin(workgroup_id) w : vec3<u32>) {
  localId = l;
  workgroupId = w;
  programMain(${m[1] ? '0' : ''});
}`;
}

/**
 * The floats a fast path copied into `staging` (a MAP_READ buffer), once `validation` (its popErrorScope) and the
 * map have both settled: awaited together, because one after the other would be two round trips. Throws
 * "`what`: WebGPU validation error: …" if WebGPU rejected the work (the values are then wrong), or the map's error.
 * The buffer is left unmapped either way; the caller keeps or destroys it.
 */
export async function readBackChecked(what: string, validation: Promise<GPUError | null>, staging: GPUBuffer, floats: number): Promise<Float32Array> {
  const [scope, map] = await Promise.allSettled([validation, staging.mapAsync(GPUMapMode.READ)]);
  try {
    if (scope.status === 'rejected') throw scope.reason;
    if (scope.value) throw new Error(`${what}: WebGPU validation error: ${scope.value.message}`);
    if (map.status === 'rejected') throw map.reason;
    return new Float32Array(staging.getMappedRange(0, floats * 4).slice(0)); // a copy: unmapping detaches the range
  } finally {
    if (map.status === 'fulfilled') staging.unmap();
  }
}
