// MEND's update phase (step 4 of mend.ts plus the finite check before install) on the WebGPU backend without tfjs's
// per-op machinery.
//
// Why: after the fast capture and the fast editor phase, the update phase was the one still made of tfjs programs:
// per edited weight a rankUpdate and a finiteRows dispatch, then a concat of the row flags and their read-back (13
// tfjs dispatches for the shipped editor's 6 weights). On the H100 (2026-11-27 13:22) that phase took 2.1 ms at
// distilgpt2 shape against PyTorch's 0.37 ms, while its GPU work (6 rank-1-per-row updates of W and a pass over each
// new W) is a few hundred µs: the rest is tfjs's per-dispatch JavaScript and the read-back. Here every weight's
// update and check are recorded into ONE command encoder on tfjs's device: W' = W + c·X̃ᵀΔ̃ into a fresh tfjs buffer
// (the caller owns the tensor, as with rankUpdate), its per-row finite flags into one flags buffer, one copy of the
// flags into a mappable buffer, one read-back.
//
// The kernels are the tfjs programs themselves (kernels/rank_update.ts's update program of the weight's variant, and
// kernels/row_flags.ts's finite-rows program), compiled from their own WGSL with explicit bindings
// (standaloneSource): the numbers are those of rankUpdate and finiteRows, which their kernel tests check against the
// tfjs-op references. Anything else (another backend, an item with zero rows, more rows than one dispatch holds,
// `fastUpdate.enabled = false`) returns null and MendEditor runs the tfjs programs (rankUpdate + assertFiniteWeights).
import * as tf from '@tensorflow/tfjs';
import { updateProgram, updateVariantFor, type UpdateVariant } from '../kernels/rank_update';
import { finiteRowsProgram, MAX_GROUPS } from '../kernels/row_flags';
import {
  activeWebGPUBackend, BindGroupCache, cachedPipeline, flushTfjs, KeptPlans, outputTensor, readBackChecked, roundedBuffer,
  standaloneSource, tensorBuffer, type WebGPUBackend,
} from '../kernels/webgpu';

/** Switch (tests and the bench force the tfjs path with `enabled = false`) and counters for the bench. */
export const fastUpdate = {
  enabled: true,
  /** update phases that took the fast path */
  runs: 0,
  /** compute dispatches recorded by them */
  dispatches: 0,
};

/** One edited weight: W' = W + c·X̃ᵀΔ̃. */
export interface FastUpdateItem {
  w: tf.Tensor2D;
  xTilde: tf.Tensor2D;
  deltaTilde: tf.Tensor2D;
  c: number;
}

export interface FastUpdateResult {
  /** W' per item (the caller owns them) */
  after: tf.Tensor2D[];
  /**
   * Resolves, once the GPU is done, to the index of the first item whose W' holds a NaN or ±Inf (−1: none); rejects
   * if WebGPU rejected the work (then `after` is wrong).
   */
  firstNonFinite: Promise<number>;
}

/** Uniform blocks are bound at offsets that are multiples of this (minUniformBufferOffsetAlignment). */
const SLOT = 256;

// The uniforms the two programs read, as tfjs would name them (its uniform struct holds more; these are all they use).
function updateSource(variant: UpdateVariant): string {
  // The program's code depends on the variant only; its shapes come from the uniforms.
  const program = updateProgram(1, 4, 'add', variant);
  const t = (components: number) => (components === 4 ? 'vec4<f32>' : 'f32');
  const comps = program.variableComponents ?? [1, 1, 1];
  return standaloneSource(program, `
struct Uniforms { xShape : vec2<i32>, dShape : vec2<i32>, c : f32 }
@group(0) @binding(0) var<uniform> uniforms : Uniforms;
@group(0) @binding(1) var<storage, read> W : array<${t(comps[0])}>;
@group(0) @binding(2) var<storage, read> X : array<${t(comps[1])}>;
@group(0) @binding(3) var<storage, read> D : array<${t(comps[2])}>;
@group(0) @binding(4) var<storage, read_write> result : array<${t(program.outputComponent ?? 1)}>;`);
}

// Every weight's flags go to one buffer, each weight's from its own offset.
function finiteSource(): string {
  return standaloneSource(finiteRowsProgram(1), `
struct Uniforms { wShape : vec2<i32>, outOffset : i32 }
@group(0) @binding(0) var<uniform> uniforms : Uniforms;
@group(0) @binding(1) var<storage, read> W : array<f32>;
@group(0) @binding(2) var<storage, read_write> result : array<f32>;
fn setOutputAtIndex(i : i32, v : f32) { result[uniforms.outOffset + i] = v; }`);
}

export function fastUpdatePhase(items: FastUpdateItem[]): FastUpdateResult | null {
  if (!fastUpdate.enabled || items.length === 0) return null;
  const be = activeWebGPUBackend();
  if (!be) return null;
  const maxGroups = Math.min(MAX_GROUPS, be.device.limits.maxComputeWorkgroupsPerDimension);
  for (const { w, xTilde, deltaTilde } of items) {
    const ok = [w, xTilde, deltaTilde].every((t) => t.dtype === 'float32' && t.rank === 2)
      && xTilde.shape[0] === deltaTilde.shape[0] && xTilde.shape[0] > 0
      && w.shape[0] === xTilde.shape[1] && w.shape[1] === deltaTilde.shape[1] && w.shape[1] > 0
      && w.shape[0] <= maxGroups;
    // Zero rows: nothing to bind (rankUpdate's reference path copies W). Anything else odd: rankUpdate's own error.
    if (!ok) return null;
  }
  return run(be, items);
}

// ---- kept plans: the uniforms, flags and read-back buffers and the bind groups of an update phase ----

/**
 * What an update phase of one signature (how many weights, how many rows of W in all) needs besides its inputs and
 * outputs. Kept, like the editor phase's plans (fast_editor.ts), because an app edits again and again: buffers made
 * per call were the one thing this phase did that tfjs's own programs (which draw from tfjs's buffer pool) did not,
 * and on the H100 the tfjs programs were 1.08–1.23× faster in the whole edit. The bind groups are kept too: the
 * dispatches that bind unchanged weights and pool buffers tfjs hands back again reuse theirs.
 */
interface Plan {
  uniforms: GPUBuffer;
  flags: GPUBuffer;
  /** where the flags are read back; null while an update reads it (a concurrent one then makes its own) */
  staging: GPUBuffer | null;
  bindGroups: BindGroupCache;
}

function newPlan(device: GPUDevice, items: number, totalRows: number): Plan {
  return {
    uniforms: roundedBuffer(device, 2 * items * SLOT, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST, 'mendlab update params'),
    flags: roundedBuffer(device, totalRows * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC, 'mendlab update flags'),
    staging: flagsReadBack(device, totalRows),
    bindGroups: new BindGroupCache(),
  };
}

function flagsReadBack(device: GPUDevice, totalRows: number): GPUBuffer {
  return roundedBuffer(device, totalRows * 4, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, 'mendlab update flags read-back');
}

/** Frees a plan's buffers (work already submitted with them still completes; a read-back in flight frees its own). */
function destroyPlan(plan: Plan): void {
  plan.uniforms.destroy();
  plan.flags.destroy();
  plan.staging?.destroy();
  plan.staging = null;
  plan.bindGroups.clear();
}

/** Per device, the plans of the last 2 signatures (how many weights, how many rows of W in all). */
const plans = new KeptPlans<Plan>(2, destroyPlan);

function run(be: WebGPUBackend, items: FastUpdateItem[]): FastUpdateResult {
  const device = be.device;
  const gpu = (t: tf.Tensor) => tensorBuffer(be, t);
  const totalRows = items.reduce((a, it) => a + it.w.shape[0], 0);
  const { plan, kept } = plans.take(device, `${items.length}/${totalRows}`, () => newPlan(device, items.length, totalRows));
  const { uniforms, flags } = plan;
  // The plan's read-back buffer, unless an earlier update still reads it (then one for this call).
  const own = plan.staging;
  plan.staging = null;
  const staging = own ?? flagsReadBack(device, totalRows);

  const data = new ArrayBuffer(2 * items.length * SLOT);
  const after: tf.Tensor2D[] = [];
  device.pushErrorScope('validation');
  const encoder = device.createCommandEncoder({ label: 'mendlab update' });
  const pass = encoder.beginComputePass({ label: 'mendlab update' });
  const dispatch = (slot: number, name: string, code: () => string, buffers: GPUBuffer[], grid: [number, number, number]) => {
    const pipeline = cachedPipeline(device, 'mendlab update', name, code);
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, plan.bindGroups.get(device, slot, pipeline, [
      { buffer: uniforms, offset: slot * SLOT, size: 32 },
      ...buffers.map((buffer) => ({ buffer })),
    ]));
    pass.dispatchWorkgroups(...grid);
  };
  let rowOffset = 0;
  items.forEach((it, k) => {
    const [inDim, outDim] = it.w.shape;
    const rows = it.xTilde.shape[0];
    const variant = updateVariantFor(outDim);
    const [t, out] = outputTensor<tf.Rank.R2>(be, [inDim, outDim]); // the update writes all of it
    after.push(t);
    // The update: uniforms as the tfjs program's (xShape = X̃'s [rows, in], dShape = Δ̃'s [rows, out], c).
    new Int32Array(data, 2 * k * SLOT, 4).set([rows, inDim, rows, outDim]);
    new Float32Array(data, 2 * k * SLOT + 16, 1)[0] = it.c;
    dispatch(2 * k, `update ${variant}`, () => updateSource(variant), [gpu(it.w), gpu(it.xTilde), gpu(it.deltaTilde), out],
      updateProgram(inDim, outDim, 'add', variant).dispatch);
    // Its finite check, into the flags from this weight's offset.
    new Int32Array(data, (2 * k + 1) * SLOT, 3).set([inDim, outDim, rowOffset]);
    dispatch(2 * k + 1, 'finite rows', finiteSource, [out, flags], finiteRowsProgram(inDim).dispatch);
    rowOffset += inDim;
  });
  pass.end();
  encoder.copyBufferToBuffer(flags, 0, staging, 0, totalRows * 4);
  // Our uniforms, then tfjs's pending work (the editor's outputs, uploads), then ours (tfjs-webgpu.md §4.2).
  device.queue.writeBuffer(uniforms, 0, data);
  flushTfjs(be);
  device.queue.submit([encoder.finish()]);
  const validation = device.popErrorScope();
  if (!kept) destroyPlan(plan); // freed once the submitted work is done
  fastUpdate.runs++;
  fastUpdate.dispatches += 2 * items.length;

  const firstNonFinite = readBackChecked('fast update', validation, staging, totalRows).then((ok) => {
    const bad = ok.findIndex((f) => f !== 1);
    let end = 0;
    return bad < 0 ? -1 : items.findIndex((it) => bad < (end += it.w.shape[0]));
  }).finally(() => {
    // Back to the plan while it is kept and has none (the plan's buffers are alive: destroyPlan empties staging).
    if (own && kept && !plan.staging && plans.holds(device, plan)) plan.staging = own;
    else staging.destroy();
  });
  // Marked handled now (awaiting it later still throws): a caller that fails before awaiting it must not leave an
  // unhandled rejection behind.
  firstNonFinite.catch(() => {});
  return { after, firstNonFinite };
}
