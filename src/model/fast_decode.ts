// Greedy GPT-2 decoding on tfjs's WebGPU device without tfjs's per-op machinery.
//
// Why: on the H100 run of 2026-11-27 a decode token was ~114 tfjs dispatches at ~136 µs of JavaScript + Dawn work
// each (a shader-key string, a uniform buffer and a bind group per op), ~18.8 ms per token against 2.8 ms of GPU
// work (docs/benchmarks.md "Dispatch overhead"). Here a token is 7·n_layer + 4 dispatches of our own pipelines
// (src/kernels/decode_kernels.ts) on the model's own weight buffers (zero copy, tfjs-webgpu.md §4.2):
//
//   embed · per layer [LN1 · qkv gemv (+ K/V into the cache) · attention · proj gemv + residual · LN2 ·
//   fc gemv + gelu · proj gemv + residual] · final LN · lm head (+ argmax stage 1) · argmax stage 2 (+ advance)
//
// - Pipelines are compiled once per device and WGSL text (the text holds every compile-time constant) and cached.
// - Bind groups are built at the start of every generate call and never kept: an edit assigns a variable, which
//   gives it a new GPUBuffer (tfjs-webgpu.md pitfall 5), so the buffers are looked up afresh each call.
// - Nothing per token is created: the position and the token id live in a 4-word `state` storage buffer that the
//   kernels read and the argmax kernel advances, and the argmax writes each new id into `ids`. So a chunk of
//   tokens is one compute pass in one command buffer with no CPU round trip; the ids are read back per chunk while
//   the next chunk is already queued (two in flight), which keeps onToken streaming and lets eosTokenId stop the
//   loop (ids computed after the EOS are dropped).
// - The prompt (prefill) still runs through tfjs (GPT2.forward); its K/V tensors are copied into this call's KV
//   buffers and the argmax of its last row (tf.argMax) becomes the first token, both GPU to GPU.
// - Every buffer created here is destroyed when the call ends (also on errors), so nothing grows across calls.
import * as tf from '@tensorflow/tfjs';
import type { GPT2Config } from './config';
import type { GPT2 } from './gpt2';
import { activeWebGPUBackend, cachedPipeline, flushTfjs, groupsFor, tensorBuffer, type WebGPUBackend } from '../kernels/webgpu';
import {
  argmaxStepWGSL, attentionWGSL, attentionWorkgroupBytes, embedWGSL, EMBED_WG, gemvWGSL, GEMV_KS, GEMV_TX, layerNormWGSL, lmHeadWGSL, LM_LANES,
  lmRowsPerGroup,
} from '../kernels/decode_kernels';

/** Knobs for tests and the benchmark; the defaults are what generate uses. */
export const fastDecodeTuning = {
  /** ids per command buffer (the first chunk includes the prompt's token); two chunks are kept in flight */
  chunkTokens: 4,
  /** cap on the lm-head workgroups (normally the device's per-dimension limit); small values make them loop */
  maxLmHeadGroups: Number.POSITIVE_INFINITY,
  /**
   * Kernel shapes for a CPU-emulated adapter (one thread per gemv column and per vocabulary row, no barriers) or
   * for a GPU (split-K gemvs, 8 lanes per vocabulary row); 'auto' asks the adapter. Tests force both.
   */
  software: 'auto' as boolean | 'auto',
};

/** SwiftShader, llvmpipe, lavapipe: a GPU emulated on the CPU, where barriers are expensive and threads are not. */
function softwareAdapter(device: GPUDevice): boolean {
  if (fastDecodeTuning.software !== 'auto') return fastDecodeTuning.software;
  const info = (device as GPUDevice & { adapterInfo?: Partial<GPUAdapterInfo> & { isFallbackAdapter?: boolean } }).adapterInfo;
  if (!info) return false;
  return info.isFallbackAdapter === true || /swiftshader|llvmpipe|lavapipe|software/i.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);
}

/** Counters for the benchmark and the leak tests. */
export const fastDecodeStats = {
  /** dispatches encoded by decode steps */
  dispatches: 0,
  /** decode steps encoded */
  steps: 0,
  /** buffers created here and not yet destroyed (0 between calls) */
  liveBuffers: 0,
};

/** Dispatches per decoded token: embed + 7 per layer + final LN + lm head + argmax. */
export const fastDecodeDispatchesPerToken = (config: GPT2Config) => 7 * config.nLayer + 4;

// ---- pipelines: one per device and WGSL text ----

// The key is the WGSL text itself: every size is compiled into it.
const pipelineFor = (device: GPUDevice, code: string): GPUComputePipeline => cachedPipeline(device, 'mendlab decode', code, () => code);

function lmHeadGroups(device: GPUDevice, vocab: number, lanes: number): number {
  return Math.max(1, Math.min(groupsFor(vocab, lmRowsPerGroup(lanes)), device.limits.maxComputeWorkgroupsPerDimension, fastDecodeTuning.maxLmHeadGroups));
}

/** Why the fast path cannot run this model on the active backend, or null when it can. */
export function fastDecodeUnsupported(config: GPT2Config): string | null {
  const be = activeWebGPUBackend();
  if (!be) return 'the backend is not webgpu';
  const lim = be.device.limits;
  if (attentionWorkgroupBytes(config.nPositions) > lim.maxComputeWorkgroupStorageSize) {
    return `n_positions ${config.nPositions} needs more workgroup memory than the device's ${lim.maxComputeWorkgroupStorageSize} bytes`;
  }
  if (lim.maxStorageBuffersPerShaderStage < 6) return 'fewer than 6 storage buffers per shader stage';
  const largest = 4 * Math.max(config.vocabSize * config.nEmbd, 3 * config.nEmbd * config.nEmbd, config.nEmbd * config.nInner);
  if (largest > lim.maxStorageBufferBindingSize) return 'a weight is larger than the device\'s storage binding limit';
  return null;
}

/** One dispatch of a decode step: the same for every token (the step's variables live in `state`). */
interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  groups: number;
}

/**
 * Everything one generate call needs on the GPU: its buffers, the prompt's K/V copied in, the first token in
 * `state`, and the dispatches of one decode step with their bind groups. destroy() frees it all.
 */
class DecodeSession {
  private readonly owned: GPUBuffer[] = [];
  private readonly step: Dispatch[] = [];
  readonly device: GPUDevice;
  /** the ids produced: [0] = the prompt's next token, then one per step */
  readonly ids: GPUBuffer;
  /** the last step's logits, [vocab] */
  readonly logits: GPUBuffer;

  constructor(model: GPT2, promptIds: number[], maxIds: number) {
    const be = activeWebGPUBackend() as WebGPUBackend;
    const device = (this.device = be.device);
    const cfg = model.config;
    const { nEmbd: C, nHead: NH, nLayer, nInner: I, vocabSize: V } = cfg;
    const hd = C / NH;
    const T = promptIds.length;

    // Prefill with tfjs; the first token stays on the GPU.
    const { logits: prefillLogits, cache } = model.forward(promptIds);
    const first = tf.tidy(() => tf.argMax(tf.slice(prefillLogits, [T - 1, 0], [1, -1]), 1));
    prefillLogits.dispose();
    try {
      // The KV capacity is what this call can reach (prompt + the steps that feed a token), not n_positions.
      const capacity = T + maxIds;
      const S = GPUBufferUsage.STORAGE;
      const state = this.buffer(16, S | GPUBufferUsage.COPY_DST);
      this.ids = this.buffer(4 * maxIds, S | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST);
      this.logits = this.buffer(4 * V, S | GPUBufferUsage.COPY_SRC);
      const x = this.buffer(4 * C, S); // residual stream
      const h = this.buffer(4 * C, S); // LayerNorm output
      const q = this.buffer(4 * C, S);
      const y = this.buffer(4 * C, S); // attention output (heads merged)
      const m = this.buffer(4 * I, S); // MLP hidden
      const software = softwareAdapter(device);
      const splitK = software ? 1 : GEMV_KS;
      const lanes = software ? 1 : LM_LANES;
      const groups = lmHeadGroups(device, V, lanes);
      const partVal = this.buffer(4 * groups, S);
      const partIdx = this.buffer(4 * groups, S);
      const kv = Array.from({ length: nLayer }, () => this.buffer(4 * 2 * NH * capacity * hd, S | GPUBufferUsage.COPY_DST));

      // Weight buffers: looked up now, for this call only (an edit replaces them).
      const gpuBuffer = (t: tf.Tensor) => tensorBuffer(be, t);
      const w = (name: string) => gpuBuffer(model.getWeight(name));

      const add = (code: string, buffers: GPUBuffer[], groupCount: number) => {
        const pipeline = pipelineFor(device, code);
        const bindGroup = device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
        });
        this.step.push({ pipeline, bindGroup, groups: groupCount });
      };
      const ln = layerNormWGSL(C, cfg.layerNormEpsilon);
      const act = cfg.activation === 'gelu' ? 'gelu' : 'gelu_new';
      add(embedWGSL(C), [state, w('transformer.wte.weight'), w('transformer.wpe.weight'), x], groupsFor(C, EMBED_WG));
      for (let l = 0; l < nLayer; l++) {
        const p = `transformer.h.${l}`;
        add(ln, [x, w(`${p}.ln_1.weight`), w(`${p}.ln_1.bias`), h], 1);
        add(gemvWGSL(C, 3 * C, { kind: 'qkv', nHead: NH }, splitK), [h, w(`${p}.attn.c_attn.weight`), w(`${p}.attn.c_attn.bias`), q, state, kv[l]], groupsFor(3 * C, GEMV_TX));
        add(attentionWGSL(NH, hd, cfg.nPositions), [state, q, kv[l], y], NH);
        add(gemvWGSL(C, C, { kind: 'residual' }, splitK), [y, w(`${p}.attn.c_proj.weight`), w(`${p}.attn.c_proj.bias`), x], groupsFor(C, GEMV_TX));
        add(ln, [x, w(`${p}.ln_2.weight`), w(`${p}.ln_2.bias`), h], 1);
        add(gemvWGSL(C, I, { kind: act }, splitK), [h, w(`${p}.mlp.c_fc.weight`), w(`${p}.mlp.c_fc.bias`), m], groupsFor(I, GEMV_TX));
        add(gemvWGSL(I, C, { kind: 'residual' }, splitK), [m, w(`${p}.mlp.c_proj.weight`), w(`${p}.mlp.c_proj.bias`), x], groupsFor(C, GEMV_TX));
      }
      add(ln, [x, w('transformer.ln_f.weight'), w('transformer.ln_f.bias'), h], 1);
      add(lmHeadWGSL(C, V, groups, lanes), [h, w('transformer.wte.weight'), this.logits, partVal, partIdx], groups);
      add(argmaxStepWGSL(groups), [partVal, partIdx, state, this.ids], 1);

      // The prefill's outputs as buffers (uploaded first if tfjs computed them on the CPU: tiny shapes can be).
      const firstBuf = gpuBuffer(first);
      const kvSrc = cache.layers.map((layer) => [gpuBuffer(layer.k), gpuBuffer(layer.v)]);

      // tfjs records into its own command encoder and submits lazily: flush it so the prefill (and any upload that
      // the lookups above queued) runs before our commands (tfjs-webgpu.md §4.2).
      flushTfjs(be);
      device.queue.writeBuffer(state, 0, new Uint32Array([T, 0, 1, capacity]));
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(firstBuf, 0, state, 4, 4); // state.id = the first token
      enc.copyBufferToBuffer(firstBuf, 0, this.ids, 0, 4); // ids[0] = the first token
      // Prompt K/V: tfjs tensors [nHead, T, hd] into [nHead, capacity, hd] (K region, then V region).
      kvSrc.forEach(([k, v], l) => {
        for (let head = 0; head < NH; head++) {
          enc.copyBufferToBuffer(k, 4 * head * T * hd, kv[l], 4 * head * capacity * hd, 4 * T * hd);
          enc.copyBufferToBuffer(v, 4 * head * T * hd, kv[l], 4 * (NH + head) * capacity * hd, 4 * T * hd);
        }
      });
      device.queue.submit([enc.finish()]);
    } catch (e) {
      this.destroy();
      throw e;
    } finally {
      // Safe right after the submit: tfjs work that reuses these buffers is queued after ours.
      cache.dispose();
      first.dispose();
    }
  }

  /** A buffer owned (and destroyed) by this session. */
  buffer(size: number, usage: GPUBufferUsageFlags): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(4, size), usage });
    this.owned.push(b);
    fastDecodeStats.liveBuffers++;
    return b;
  }

  /** Records `n` decode steps into an open compute pass. */
  encodeSteps(pass: GPUComputePassEncoder, n: number): void {
    for (let i = 0; i < n; i++) {
      for (const d of this.step) {
        pass.setPipeline(d.pipeline);
        pass.setBindGroup(0, d.bindGroup);
        pass.dispatchWorkgroups(d.groups);
      }
    }
    fastDecodeStats.steps += n;
    fastDecodeStats.dispatches += n * this.step.length;
  }

  /** Frees every buffer (work already submitted that uses them still completes: WebGPU defers the release). */
  destroy(): void {
    for (const b of this.owned) b.destroy();
    fastDecodeStats.liveBuffers -= this.owned.length;
    this.owned.length = 0;
  }
}

/**
 * GPT2.generate's greedy path on webgpu: `maxNew` ids after the prompt (fewer when `eosTokenId` is produced; it is
 * included), each passed to onToken as soon as its chunk is read back. The caller has clamped maxNew to the context.
 */
export async function fastGreedyGenerate(
  model: GPT2,
  promptIds: number[],
  maxNew: number,
  eosTokenId: number | null,
  onToken?: (id: number) => void,
): Promise<number[]> {
  const session = new DecodeSession(model, promptIds, maxNew);
  const { device } = session;
  const chunk = Math.max(1, Math.floor(fastDecodeTuning.chunkTokens));
  const staging = [0, 1].map(() => session.buffer(4 * chunk, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST));
  const inflight: Array<{ count: number; buf: GPUBuffer; mapped: Promise<void>; checked: Promise<void> }> = [];
  const vocab = model.config.vocabSize;
  let submitted = 0; // ids covered by submitted command buffers
  let slot = 0;
  // One command buffer: the steps that produce ids [lo, hi) (id 0 comes from the prefill), then their read-back.
  const submitChunk = () => {
    const lo = submitted;
    const hi = Math.min(lo + chunk, maxNew);
    // A rejected dispatch would leave stale or garbage ids: WebGPU reports it through the error scope, awaited with
    // the chunk's read-back below, so generation fails with a clear message instead of returning wrong text.
    device.pushErrorScope('validation');
    const enc = device.createCommandEncoder();
    const steps = hi - Math.max(lo, 1);
    if (steps > 0) {
      const pass = enc.beginComputePass();
      session.encodeSteps(pass, steps);
      pass.end();
    }
    const buf = staging[slot++ % 2]; // free: its previous chunk was read and unmapped before this one is submitted
    enc.copyBufferToBuffer(session.ids, 4 * lo, buf, 0, 4 * (hi - lo));
    device.queue.submit([enc.finish()]);
    const checked = device.popErrorScope().then((e) => {
      if (e) throw new Error(`fast decode: WebGPU validation error: ${e.message}`);
    });
    checked.catch(() => {}); // awaited with the chunk; marked handled in case an earlier chunk throws first
    inflight.push({ count: hi - lo, buf, mapped: buf.mapAsync(GPUMapMode.READ, 0, 4 * (hi - lo)), checked });
    submitted = hi;
  };

  const out: number[] = [];
  try {
    submitChunk();
    if (submitted < maxNew) submitChunk();
    while (inflight.length > 0) {
      const c = inflight.shift()!;
      await Promise.all([c.checked, c.mapped]); // (all: a map aborted after a failed check is handled too)
      const ids = Array.from(new Uint32Array(c.buf.getMappedRange(0, 4 * c.count)));
      c.buf.unmap();
      const bad = ids.find((id) => id >= vocab);
      if (bad !== undefined) throw new Error(`fast decode: token id ${bad} is outside the vocabulary (${vocab})`);
      const eosAt = eosTokenId === null ? -1 : ids.indexOf(eosTokenId);
      // Queue the next chunk before the callbacks run, so the GPU keeps working while JavaScript streams.
      if (eosAt < 0 && submitted < maxNew) submitChunk();
      for (const id of eosAt < 0 ? ids : ids.slice(0, eosAt + 1)) {
        out.push(id);
        onToken?.(id);
      }
      if (eosAt >= 0) break;
    }
    return out;
  } finally {
    // A chunk still in flight after an EOS (or an error) is dropped: its pending map is aborted by destroy().
    for (const c of inflight) c.mapped.catch(() => {});
    session.destroy();
  }
}

/**
 * For tests: greedy decoding for `steps` tokens after the prompt that also returns every step's logits. Returns
 * ids[0] (the prompt's argmax, from tfjs) and then ids[k] = argmax(logits[k-1]), where logits[k] are the logits at
 * position T + k for the token ids[k].
 */
export async function fastDecodeLogits(model: GPT2, promptIds: number[], steps: number): Promise<{ ids: number[]; logits: Float32Array[] }> {
  const session = new DecodeSession(model, promptIds, steps + 1);
  try {
    const V = model.config.vocabSize;
    const logitsOut = session.buffer(4 * V * steps, GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const idsOut = session.buffer(4 * (steps + 1), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST);
    const enc = session.device.createCommandEncoder();
    for (let k = 0; k < steps; k++) {
      const pass = enc.beginComputePass();
      session.encodeSteps(pass, 1);
      pass.end();
      enc.copyBufferToBuffer(session.logits, 0, logitsOut, 4 * V * k, 4 * V);
    }
    enc.copyBufferToBuffer(session.ids, 0, idsOut, 0, 4 * (steps + 1));
    session.device.queue.submit([enc.finish()]);
    await Promise.all([logitsOut.mapAsync(GPUMapMode.READ), idsOut.mapAsync(GPUMapMode.READ)]);
    const all = new Float32Array(logitsOut.getMappedRange().slice(0));
    const ids = Array.from(new Uint32Array(idsOut.getMappedRange().slice(0)));
    logitsOut.unmap();
    idsOut.unmap();
    return { ids, logits: Array.from({ length: steps }, (_, k) => all.subarray(k * V, (k + 1) * V)) };
  } finally {
    session.destroy();
  }
}
