// GPT-2 in tfjs, nanoGPT style: one sequence at a time (rows = token positions), HF weight names,
// Conv1D layout (y = x @ W + b with W stored [in, out]), gelu_new, tied lm_head.
//
//   x = wte[ids] + wpe[pos]
//   for each block:  x = x + attn(ln_1(x));  x = x + mlp(ln_2(x))
//   logits = ln_f(x) @ wteᵀ
//
// Everything a model editor needs is here too: per-token x/δ rows of chosen weights
// (captureGradientRows), teacher-forced scoring, and read/replace of weights by name.
// Weights are tf.Variables so editors can assign new values and autodiff can check gradients.

import * as tf from '@tensorflow/tfjs';
import type { GPT2Config } from './config';
import { writeSafetensors, type FloatDtype } from './safetensors';
import { geluNew } from '../kernels/gelu';
import { layerNorm } from '../kernels/layer_norm';
import { rowKeepMask } from '../kernels/row_flags';
import { fastCaptureGradientRows, releaseFastCapture } from './fast_capture';
import { fastDecodeUnsupported, fastGreedyGenerate } from './fast_decode';

/** Keys and values of one layer for the positions seen so far: [n_head, T, head_dim]. */
interface LayerKV {
  k: tf.Tensor3D;
  v: tf.Tensor3D;
}

/** The KV cache of a sequence: lets generation feed only the new token at each step. */
export class KVCache {
  constructor(readonly layers: LayerKV[], readonly length: number) {}
  dispose(): void {
    for (const l of this.layers) tf.dispose([l.k, l.v]);
  }
}

/** A hook on one Conv1D weight during a forward pass: receives its input and adds `probe` to its output. */
interface Tap {
  probe: tf.Tensor2D;
  onInput: (x: tf.Tensor2D) => void;
}

export interface TopToken {
  id: number;
  prob: number;
  logprob: number;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 (default) = greedy argmax; > 0 = sample from softmax(logits / temperature) */
  temperature?: number;
  /** sample only among the k most likely tokens (0 = all); ignored when greedy */
  topK?: number;
  /** seed of the sampling RNG, for reproducible samples */
  seed?: number;
  /** stop after this token is produced (it is included in the output); null = never stop early */
  eosTokenId?: number | null;
  /** called with each new token id as soon as it is known */
  onToken?: (id: number) => void;
  /**
   * Greedy decoding on webgpu uses the fast path of src/model/fast_decode.ts (our own kernels, no tfjs op per step)
   * unless this is false; false forces the tfjs-op path (tests and the benchmark compare the two).
   */
  fastDecode?: boolean;
}

export interface ScoreResult {
  /** Σ log p(target_j | prompt, target_<j) */
  logprob: number;
  tokenLogprobs: number[];
}

export interface GradientRows {
  /** layer input rows, [T, in] (T = prompt + target tokens) */
  x: tf.Tensor2D;
  /** ∂loss/∂(layer output) rows, [T, out] */
  delta: tf.Tensor2D;
  /** [T, 1]: 1 where neither the x row nor the δ row is all zero (MEND keeps it); only when asked for (keepMask) */
  keep?: tf.Tensor2D;
}

export interface CaptureResult {
  /** mean NLL over the target tokens */
  loss: number;
  /** per requested weight (canonical HF name); the caller owns and must dispose these tensors */
  rows: Record<string, GradientRows>;
}

/**
 * A capture whose work is queued: the rows are tensors already (their values arrive in queue order, before any later
 * GPU work reads them) and only the loss is still on its way back to the CPU. The caller owns `rows` whatever `loss`
 * does; `loss` rejects if the GPU refused the work or the loss is not finite (then the rows are garbage).
 */
export interface PendingCapture {
  loss: Promise<number>;
  rows: Record<string, GradientRows>;
}

/** Frees every tensor of a capture's rows. */
export function disposeGradientRows(rows: Record<string, GradientRows>): void {
  for (const r of Object.values(rows)) tf.dispose([r.x, r.delta, ...(r.keep ? [r.keep] : [])]);
}

/** Conv1D weights whose rows can be captured, and the output width of each. */
const CONV1D = /^transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/** Accepts a weight name with or without the `transformer.` prefix. */
function canonical(name: string): string {
  return name.startsWith('transformer.') ? name : `transformer.${name}`;
}

/** Small, seedable PRNG (mulberry32): same seed → same samples on every backend. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class GPT2 {
  private readonly params = new Map<string, tf.Variable>();
  private disposed = false;

  /** Builds the model from fp32 tensors keyed by canonical HF name (see config.checkTensorsAgainstConfig). */
  constructor(readonly config: GPT2Config, tensors: Map<string, { shape: number[]; data: Float32Array }>) {
    for (const [name, t] of tensors) {
      const init = tf.tensor(t.data, t.shape, 'float32');
      this.params.set(name, tf.variable(init, true));
      init.dispose();
    }
  }

  // ---- weights by name ----

  /** Canonical HF names of all parameters. */
  weightNames(): string[] {
    return [...this.params.keys()];
  }

  /** The live variable behind a weight (do not dispose it; use setWeight to change it). */
  getWeight(name: string): tf.Variable {
    const v = this.params.get(canonical(name));
    if (!v) throw new Error(`unknown weight "${name}"`);
    return v;
  }

  /** A weight's values, copied to the CPU. */
  async readWeight(name: string): Promise<Float32Array> {
    return (await this.getWeight(name).data()) as Float32Array;
  }

  /** Replaces a weight's values (same shape). The caller keeps ownership of a tensor it passes. */
  setWeight(name: string, value: tf.Tensor | Float32Array): void {
    const v = this.getWeight(name);
    if (value instanceof Float32Array) {
      if (value.length !== v.size) throw new Error(`setWeight("${name}"): ${value.length} values for shape [${v.shape}]`);
      const t = tf.tensor(value, v.shape, 'float32');
      v.assign(t);
      t.dispose();
      return;
    }
    if (!tf.util.arraysEqual(value.shape, v.shape)) {
      throw new Error(`setWeight("${name}"): shape [${value.shape}] does not match [${v.shape}]`);
    }
    v.assign(value.dtype === 'float32' ? value : tf.cast(value, 'float32'));
  }

  /**
   * The current weights as a model.safetensors file (canonical HF names, lm_head left tied), e.g. to
   * download an edited model; loadModel reads it back with the folder's config.json and tokenizer.
   */
  async toSafetensors(dtype: FloatDtype = 'F32', metadata: Record<string, string> = { format: 'pt' }): Promise<Uint8Array> {
    const tensors = [];
    for (const [name, v] of this.params) tensors.push({ name, shape: v.shape, data: (await v.data()) as Float32Array, dtype });
    return writeSafetensors(tensors, metadata);
  }

  private w(name: string): tf.Tensor {
    return this.params.get(name)!;
  }

  // ---- the forward pass ----

  // LayerNorm and gelu_new are one WGSL dispatch each on webgpu (src/kernels/layer_norm.ts, gelu.ts) and the same
  // tfjs ops as before elsewhere: decoding is bound by per-dispatch cost on a GPU, not by GPU work.
  private layerNorm(x: tf.Tensor2D, prefix: string): tf.Tensor2D {
    return layerNorm(x, this.w(prefix + '.weight') as tf.Tensor1D, this.w(prefix + '.bias') as tf.Tensor1D, this.config.layerNormEpsilon);
  }

  private gelu(x: tf.Tensor2D): tf.Tensor2D {
    if (this.config.activation === 'gelu') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))) as tf.Tensor2D;
    return geluNew(x); // gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  }

  /**
   * Conv1D: x @ W + b; with a tap, reports x and adds the zero probe whose gradient is δ.
   * Without taps the bias add is fused into the matMul (one dispatch instead of two). Under capture (taps given)
   * it is not: tf.fused.matMul's gradient is a customGrad that computes ∂W and ∂b eagerly, two more kernels per
   * linear that capture never uses, while the separate ops' lazy gradients compute only ∂x.
   */
  private linear(x: tf.Tensor2D, prefix: string, taps?: Map<string, Tap>): tf.Tensor2D {
    const w = this.w(prefix + '.weight') as tf.Tensor2D;
    const b = this.w(prefix + '.bias');
    let y = (taps ? tf.add(tf.matMul(x, w), b) : tf.fused.matMul({ a: x, b: w, bias: b })) as tf.Tensor2D;
    const tap = taps?.get(prefix + '.weight');
    if (tap) {
      tap.onInput(x);
      y = tf.add(y, tap.probe);
    }
    return y;
  }

  private attention(x: tf.Tensor2D, i: number, past: LayerKV | null, mask: tf.Tensor2D | null, taps?: Map<string, Tap>): { y: tf.Tensor2D; kv: LayerKV } {
    const { nEmbd: C, nHead } = this.config;
    const T = x.shape[0];
    const hd = C / nHead;
    const qkv = this.linear(x, `transformer.h.${i}.attn.c_attn`, taps);
    const [q, k, v] = tf.split(qkv, 3, 1) as tf.Tensor2D[];
    // [T, C] -> [nh, T, hd]. With one new token (every decode step) the transpose moves no data, so it is a reshape:
    // tfjs would still dispatch a transpose kernel, 24 per token for 6 layers (dispatches are what cost, docs/benchmarks.md).
    const heads = (t: tf.Tensor2D) =>
      (T === 1 ? tf.reshape(t, [nHead, 1, hd]) : tf.transpose(tf.reshape(t, [T, nHead, hd]), [1, 0, 2])) as tf.Tensor3D;
    let K = heads(k);
    let V = heads(v);
    if (past) {
      K = tf.concat([past.k, K], 1);
      V = tf.concat([past.v, V], 1);
    }
    let att = tf.mul(tf.matMul(heads(q), K, false, true), 1 / Math.sqrt(hd)); // [nh, T, T_total]
    if (mask) att = tf.add(att, mask);
    const y = tf.matMul(tf.softmax(att), V); // [nh, T, hd]
    const merged = (T === 1 ? tf.reshape(y, [1, C]) : tf.reshape(tf.transpose(y, [1, 0, 2]), [T, C])) as tf.Tensor2D;
    return { y: this.linear(merged, `transformer.h.${i}.attn.c_proj`, taps), kv: { k: K, v: V } };
  }

  /**
   * Causal mask for T new positions after `past` cached ones: 0 where position i may see j, −1e9
   * elsewhere (a large finite value: WGSL gives no guarantees for infinities, tfjs-webgpu.md pitfall 11).
   */
  private causalMask(T: number, past: number): tf.Tensor2D | null {
    if (T === 1) return null; // a single new token sees everything before it
    const total = past + T;
    const m = new Float32Array(T * total);
    for (let i = 0; i < T; i++) for (let j = past + i + 1; j < total; j++) m[i * total + j] = -1e9;
    return tf.tensor2d(m, [T, total]);
  }

  /** Logits [T, vocab] for new token ids after an optional cache; returns the extended cache's layers. */
  private forwardCore(ids: tf.Tensor1D, past: KVCache | null, taps?: Map<string, Tap>): { logits: tf.Tensor2D; present: LayerKV[] } {
    const T = ids.shape[0];
    const start = past?.length ?? 0;
    if (start + T > this.config.nPositions) {
      throw new Error(`sequence of ${start + T} tokens exceeds the model's context of ${this.config.nPositions}`);
    }
    const { hidden, present } = this.forwardRows(ids, tf.range(start, start + T, 1, 'int32'), this.causalMask(T, start), past, taps);
    return { logits: this.lmHead(hidden), present };
  }

  /** Logits from the last block's output rows: the final LayerNorm, then the tied embedding. */
  private lmHead(hidden: tf.Tensor2D): tf.Tensor2D {
    return tf.matMul(this.layerNorm(hidden, 'transformer.ln_f'), this.w('transformer.wte.weight'), false, true) as tf.Tensor2D;
  }

  /**
   * The transformer on rows of tokens with explicit positions and attention mask: one sequence (forwardCore), or
   * several packed end to end (forwardPacked), where the mask keeps each sequence to itself.
   */
  private forwardRows(ids: tf.Tensor1D, pos: tf.Tensor1D, mask: tf.Tensor2D | null, past: KVCache | null, taps?: Map<string, Tap>): { hidden: tf.Tensor2D; present: LayerKV[] } {
    let x = tf.add(tf.gather(this.w('transformer.wte.weight'), ids), tf.gather(this.w('transformer.wpe.weight'), pos)) as tf.Tensor2D;
    const present: LayerKV[] = [];
    for (let i = 0; i < this.config.nLayer; i++) {
      const h = `transformer.h.${i}`;
      const a = this.attention(this.layerNorm(x, `${h}.ln_1`), i, past?.layers[i] ?? null, mask, taps);
      present.push(a.kv);
      x = tf.add(x, a.y);
      const m = this.linear(this.gelu(this.linear(this.layerNorm(x, `${h}.ln_2`), `${h}.mlp.c_fc`, taps)), `${h}.mlp.c_proj`, taps);
      x = tf.add(x, m);
    }
    return { hidden: x, present };
  }

  private idsTensor(ids: number[] | tf.Tensor1D): tf.Tensor1D {
    if (!Array.isArray(ids)) return ids;
    if (ids.length === 0) throw new Error('empty token sequence');
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.config.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (${this.config.vocabSize})`);
    }
    return tf.tensor1d(ids, 'int32');
  }

  /**
   * One forward step: logits [T, vocab] for `ids` following the cached positions. Returns a new cache
   * (the old one stays valid; dispose each when done). The caller owns `logits`.
   */
  forward(ids: number[] | tf.Tensor1D, cache: KVCache | null = null): { logits: tf.Tensor2D; cache: KVCache } {
    this.assertAlive();
    const out = tf.tidy(() => {
      const r = this.forwardCore(this.idsTensor(ids), cache);
      return { logits: r.logits, kv: r.present.flatMap((l) => [l.k, l.v]) };
    });
    const layers: LayerKV[] = [];
    for (let i = 0; i < out.kv.length; i += 2) layers.push({ k: out.kv[i] as tf.Tensor3D, v: out.kv[i + 1] as tf.Tensor3D });
    const T = Array.isArray(ids) ? ids.length : ids.shape[0];
    return { logits: out.logits, cache: new KVCache(layers, (cache?.length ?? 0) + T) };
  }

  /** Logits at every position of a sequence, as rows of a Float32Array [T·vocab]. */
  async logits(ids: number[]): Promise<Float32Array> {
    const { logits, cache } = this.forward(ids);
    cache.dispose();
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return data;
  }

  /** The k most likely next tokens after `ids`, most likely first. */
  async topNextTokens(ids: number[], k: number): Promise<TopToken[]> {
    const { logits, cache } = this.forward(ids);
    cache.dispose();
    const { values, indices } = tf.tidy(() => {
      const last = tf.logSoftmax(tf.slice(logits, [ids.length - 1, 0], [1, -1]).reshape([-1]));
      return tf.topk(last, Math.min(k, this.config.vocabSize));
    });
    logits.dispose();
    const [lp, id] = await Promise.all([values.data(), indices.data()]);
    tf.dispose([values, indices]);
    return Array.from(id, (t, i) => ({ id: t, logprob: lp[i], prob: Math.exp(lp[i]) }));
  }

  /** Generates up to maxNewTokens after the prompt; returns only the new ids. */
  async generate(promptIds: number[], opts: GenerateOptions): Promise<number[]> {
    this.assertAlive();
    const temperature = opts.temperature ?? 0;
    const maxNew = Math.min(opts.maxNewTokens, this.config.nPositions - promptIds.length);
    const out: number[] = [];
    if (maxNew <= 0) return out;
    const eos = opts.eosTokenId ?? null;
    if (temperature <= 0 && opts.fastDecode !== false && fastDecodeUnsupported(this.config) === null) {
      return fastGreedyGenerate(this, promptIds, maxNew, eos, opts.onToken);
    }
    let { logits, cache } = this.forward(promptIds);

    if (temperature <= 0) {
      // Greedy: the argmax stays on the device and is fed straight back as the next input, and the
      // next step is dispatched *before* we wait to read the current token, so the GPU never idles on us.
      let next = tf.tidy(() => tf.argMax(tf.slice(logits, [logits.shape[0] - 1, 0], [1, -1]), 1)) as tf.Tensor1D;
      logits.dispose();
      for (let step = 0; step < maxNew; step++) {
        let following: tf.Tensor1D | null = null;
        let nextCache: KVCache | null = null;
        if (step + 1 < maxNew) {
          const r = this.forward(next, cache);
          following = tf.tidy(() => tf.argMax(r.logits, 1)) as tf.Tensor1D;
          r.logits.dispose();
          nextCache = r.cache;
        }
        const id = (await next.data())[0];
        next.dispose();
        out.push(id);
        opts.onToken?.(id);
        cache.dispose();
        if (nextCache === null || id === eos) {
          following?.dispose();
          nextCache?.dispose();
          break;
        }
        next = following!;
        cache = nextCache;
      }
      return out;
    }

    // Sampling: read the (top-k) scaled logits, sample on the CPU with a seeded RNG.
    const rand = mulberry32(opts.seed ?? (Date.now() ^ (Math.random() * 2 ** 32)));
    const topK = opts.topK && opts.topK > 0 ? Math.min(opts.topK, this.config.vocabSize) : 0;
    for (let step = 0; ; step++) {
      const { vals, idx } = tf.tidy(() => {
        const last = tf.div(tf.slice(logits, [logits.shape[0] - 1, 0], [1, -1]).reshape([-1]), temperature);
        if (!topK) return { vals: last };
        const { values, indices } = tf.topk(last, topK);
        return { vals: values, idx: indices };
      }) as { vals: tf.Tensor; idx?: tf.Tensor };
      logits.dispose();
      const v = (await vals.data()) as Float32Array;
      const ix = idx ? ((await idx.data()) as Int32Array) : null;
      tf.dispose(idx ? [vals, idx] : [vals]);
      const id = sampleFromLogits(v, rand, ix);
      out.push(id);
      opts.onToken?.(id);
      if (step + 1 >= maxNew || id === eos) break;
      const r = this.forward([id], cache);
      cache.dispose();
      logits = r.logits;
      cache = r.cache;
    }
    cache.dispose();
    return out;
  }

  // ---- scoring and gradients (tokenisation convention: ids = prompt ++ target, formats.md) ----

  /** Mean NLL of the target tokens given logits for prompt ++ target (inside a tidy / gradient). */
  private targetLogprobs(logits: tf.Tensor2D, promptLen: number, targetIds: number[]): tf.Tensor1D {
    // Position p predicts token p+1, so target j is predicted by row promptLen − 1 + j.
    const rows = tf.slice(logits, [promptLen - 1, 0], [targetIds.length, -1]);
    // oneHot as int32 then cast: the wasm OneHot kernel ignores a float32 dtype and writes int bits (tfjs 4.22).
    const onehot = tf.cast(tf.oneHot(tf.tensor1d(targetIds, 'int32'), this.config.vocabSize), 'float32');
    return tf.sum(tf.mul(tf.logSoftmax(rows), onehot), 1) as tf.Tensor1D;
  }

  private checkPair(promptIds: number[], targetIds: number[]) {
    if (promptIds.length === 0) throw new Error('the prompt must have at least one token');
    if (targetIds.length === 0) throw new Error('the target must have at least one token');
  }

  /** Teacher-forced log-probability of `targetIds` following `promptIds`. */
  async scoreContinuation(promptIds: number[], targetIds: number[]): Promise<ScoreResult> {
    this.checkPair(promptIds, targetIds);
    const { logits, cache } = this.forward([...promptIds, ...targetIds]);
    cache.dispose();
    const lp = tf.tidy(() => this.targetLogprobs(logits, promptIds.length, targetIds));
    logits.dispose();
    const tokenLogprobs = Array.from((await lp.data()) as Float32Array);
    lp.dispose();
    return { logprob: tokenLogprobs.reduce((a, b) => a + b, 0), tokenLogprobs };
  }

  /**
   * Token-weighted mean NLL of ids[1:] given the preceding tokens, pooled over every paragraph (Python's prose_nll):
   * the held-out damage check's perplexity is its exp, and MEND's prose guard compares it before and after a pass.
   */
  async meanNll(paragraphs: readonly number[][]): Promise<number> {
    let nll = 0;
    let count = 0;
    for (const ids of paragraphs) {
      nll -= (await this.scoreContinuation(ids.slice(0, 1), ids.slice(1))).logprob;
      count += ids.length - 1;
    }
    return nll / count;
  }

  /**
   * Whether every target token is the teacher-forced argmax after `promptIds` (ES's test: the target is what greedy
   * decoding would write). One forward pass and one read-back of targetIds.length ids.
   */
  async targetIsArgmax(promptIds: number[], targetIds: number[]): Promise<boolean> {
    this.checkPair(promptIds, targetIds);
    const { logits, cache } = this.forward([...promptIds, ...targetIds]);
    cache.dispose();
    const best = tf.tidy(() => tf.argMax(tf.slice(logits, [promptIds.length - 1, 0], [targetIds.length, -1]), 1));
    logits.dispose();
    const ids = await best.data().finally(() => best.dispose());
    return targetIds.every((t, j) => ids[j] === t);
  }

  /**
   * targetIsArgmax for many (prompt, target) pairs at once: the knowledge scan asks hundreds of facts, and one forward
   * per fact is bound by per-dispatch and read-back cost on a GPU. Pairs are packed
   * end to end into sequences of at most `packTokens` tokens, each with its own positions and a block-diagonal causal
   * mask (−1e9 outside its own block, so exp() gives exactly 0 there and no pair sees another), and only the rows that
   * predict target tokens go through the LM head and argmax on the device: one read-back per pack. 128 tokens a pack:
   * the masked attention grows with the square of the pack, and on this repo's 2-core CPU (tfjs wasm, 486 capital
   * pairs) 128 took 2.8 s against 4.6 s one pair at a time, 512 took 6.8 s; on SwiftShader WebGPU 107 s against 350 s.
   */
  async targetsAreArgmax(pairs: ReadonlyArray<{ promptIds: number[]; targetIds: number[] }>, packTokens = 128): Promise<boolean[]> {
    this.assertAlive();
    const out: boolean[] = [];
    let i = 0;
    while (i < pairs.length) {
      const pack: number[][] = [];
      let tokens = 0;
      for (; i < pairs.length; i++) {
        const { promptIds, targetIds } = pairs[i];
        this.checkPair(promptIds, targetIds);
        const n = promptIds.length + targetIds.length;
        if (n > this.config.nPositions) throw new Error(`sequence of ${n} tokens exceeds the model's context of ${this.config.nPositions}`);
        if (pack.length && tokens + n > packTokens) break;
        pack.push([...promptIds, ...targetIds]);
        tokens += n;
      }
      const first = out.length;
      const rows: number[] = []; // for each target token, the packed row whose logits predict it
      let offset = 0;
      for (const [j, seq] of pack.entries()) {
        const { promptIds, targetIds } = pairs[first + j];
        for (let t = 0; t < targetIds.length; t++) rows.push(offset + promptIds.length - 1 + t);
        offset += seq.length;
      }
      const best = tf.tidy(() => {
        const hidden = this.forwardPacked(pack);
        return tf.argMax(this.lmHead(tf.gather(hidden, tf.tensor1d(rows, 'int32'))), 1);
      });
      const ids = await best.data().finally(() => best.dispose());
      let r = 0;
      for (let j = 0; j < pack.length; j++) {
        const { targetIds } = pairs[first + j];
        out.push(targetIds.every((t, k) => ids[r + k] === t));
        r += targetIds.length;
      }
    }
    return out;
  }

  /** Several whole sequences in one forward pass (no cache): the last block's output [Σ lengths, C], in order. */
  private forwardPacked(seqs: number[][]): tf.Tensor2D {
    const ids = seqs.flat();
    const N = ids.length;
    const pos = new Int32Array(N);
    const mask = new Float32Array(N * N).fill(-1e9);
    let start = 0;
    for (const s of seqs) {
      for (let i = 0; i < s.length; i++) {
        pos[start + i] = i;
        for (let j = 0; j <= i; j++) mask[(start + i) * N + start + j] = 0;
      }
      start += s.length;
    }
    const { hidden, present } = this.forwardRows(this.idsTensor(ids), tf.tensor1d(pos, 'int32'), tf.tensor2d(mask, [N, N]), null);
    tf.dispose(present.flatMap((l) => [l.k, l.v]));
    return hidden;
  }

  /** Mean NLL of the target tokens as a scalar tensor (differentiable w.r.t. the weights). */
  targetLoss(promptIds: number[], targetIds: number[]): tf.Scalar {
    this.checkPair(promptIds, targetIds);
    return tf.tidy(() => {
      const { logits } = this.forwardCore(this.idsTensor([...promptIds, ...targetIds]), null);
      return tf.neg(tf.mean(this.targetLogprobs(logits, promptIds.length, targetIds))) as tf.Scalar;
    });
  }

  /**
   * MEND's gradient decomposition: for each named Conv1D weight W ([in, out]) the per-token rows
   * x_i (layer input) and δ_i = ∂loss/∂(layer output), loss = mean NLL over target tokens, so that
   * ∇W = Σ_i x_iᵀ δ_i. δ comes from one backward pass: a zero "probe" is added to each layer output,
   * and the gradient w.r.t. the probe is exactly ∂loss/∂output. With `keepMask`, each weight's rows also come with
   * MEND's keep mask (rows where neither x nor δ is all zero), computed in the same GPU pass on the fast path.
   */
  async captureGradientRows(promptIds: number[], targetIds: number[], weightNames: string[], opts: { keepMask?: boolean } = {}): Promise<CaptureResult> {
    const pending = this.beginGradientRows(promptIds, targetIds, weightNames, opts);
    try {
      return { loss: await pending.loss, rows: pending.rows };
    } catch (e) {
      disposeGradientRows(pending.rows);
      throw e;
    }
  }

  /**
   * captureGradientRows without waiting for the loss: everything is queued when this returns, so a caller can queue
   * more GPU work on the rows (MEND's editor and update) and wait once at the end. Bad arguments throw here.
   */
  beginGradientRows(promptIds: number[], targetIds: number[], weightNames: string[], opts: { keepMask?: boolean } = {}): PendingCapture {
    this.assertAlive();
    this.checkPair(promptIds, targetIds);
    const names = weightNames.map(canonical);
    for (const n of names) {
      if (!CONV1D.test(n) || !this.params.has(n)) throw new Error(`captureGradientRows: "${n}" is not a Conv1D weight of this model`);
    }
    if (new Set(names).size !== names.length) throw new Error('captureGradientRows: duplicate weight names');
    // WebGPU: the whole capture as one command encoder of our own kernels (fast_capture.ts); null = not applicable.
    const fast = fastCaptureGradientRows(this, promptIds, targetIds, names, opts.keepMask === true);
    if (fast) return fast;
    const ids = [...promptIds, ...targetIds];
    const T = ids.length;
    const probes = names.map((n) => tf.zeros([T, this.getWeight(n).shape[1]!]) as tf.Tensor2D);
    const xs: Record<string, tf.Tensor2D> = {};
    const lossFn = (...p: tf.Tensor[]) => {
      const taps = new Map<string, Tap>();
      names.forEach((n, k) => taps.set(n, { probe: p[k] as tf.Tensor2D, onInput: (x) => (xs[n] = tf.keep(x)) }));
      const { logits } = this.forwardCore(this.idsTensor(ids), null, taps);
      return tf.neg(tf.mean(this.targetLogprobs(logits, promptIds.length, targetIds))) as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(lossFn)(probes);
    tf.dispose(probes);
    const rows: Record<string, GradientRows> = {};
    names.forEach((n, k) => {
      rows[n] = { x: xs[n], delta: grads[k] as tf.Tensor2D };
      if (opts.keepMask) rows[n].keep = rowKeepMask(rows[n].x, rows[n].delta);
    });
    const loss = value.data().then((d) => d[0]).finally(() => value.dispose());
    return { loss, rows };
  }

  private assertAlive() {
    if (this.disposed) throw new Error('this model was disposed');
  }

  /** Frees every weight. The model cannot be used afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    releaseFastCapture(this);
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

/** Samples an index from logits (softmax in float64); `ids` maps positions to token ids when given. */
function sampleFromLogits(logits: Float32Array, rand: () => number, ids: Int32Array | null): number {
  let max = -Infinity;
  for (const l of logits) if (l > max) max = l;
  const p = Array.from(logits, (l) => Math.exp(l - max));
  const sum = p.reduce((a, b) => a + b, 0);
  let r = rand() * sum;
  let pick = p.length - 1;
  for (let i = 0; i < p.length; i++) {
    r -= p[i];
    if (r < 0) {
      pick = i;
      break;
    }
  }
  return ids ? ids[pick] : pick;
}
