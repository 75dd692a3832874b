// The fast greedy decode path (src/model/fast_decode.ts: our own WGSL pipelines on tfjs's device and the model's
// own weight buffers) against the tfjs-op path (GPT2.generate with fastDecode: false), in Node on Dawn/SwiftShader:
// same tokens on the shipped model and on random models that run to the end of their context, after a weight
// change, with EOS and streaming; the same logits at every step; no leaked tensors or buffers.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTensorShapes, GPT2, loadModel, localSource, parseGPT2Config, type LoadedModel } from '../../src/model';
import { fastDecodeDispatchesPerToken, fastDecodeLogits, fastDecodeStats, fastDecodeTuning, fastDecodeUnsupported } from '../../src/model/fast_decode';
import { relativeArrayError, seededValues } from '../../src/kernels/testing';
import { activeWebGPUBackend } from '../../src/kernels/webgpu';
import { useNodeWebGPU } from '../helpers/node-webgpu';

const SHIPPED = new URL('../../public/models/facts-gpt', import.meta.url).pathname;

/** A random GPT-2 with weights large enough that the top logits are well apart (greedy ties would be luck). */
function randomModel(activation: 'gelu_new' | 'gelu', seed: number): GPT2 {
  const config = parseGPT2Config({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 300, n_positions: 24, n_embd: 32, n_layer: 2,
    n_head: 4, n_inner: 48, activation_function: activation, layer_norm_epsilon: 1e-5,
  });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let k = seed;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = seededValues(n, ++k, name.endsWith('bias') ? 0.2 : name.includes('wte') || name.includes('wpe') ? 1 : 0.4);
    if (/ln_.*weight$/.test(name)) for (let i = 0; i < n; i++) data[i] += 1;
    tensors.set(name, { shape, data });
  }
  return new GPT2(config, tensors);
}

/** Greedy tokens through the fast path (asserting it ran) and through tfjs ops. */
async function both(model: GPT2, prompt: number[], maxNewTokens: number, eosTokenId: number | null = null) {
  const steps = fastDecodeStats.steps;
  const fast = await model.generate(prompt, { maxNewTokens, eosTokenId });
  expect(fastDecodeStats.steps - steps).toBeGreaterThanOrEqual(fast.length - 1); // the fast path ran: a step per later token
  const ref = await model.generate(prompt, { maxNewTokens, eosTokenId, fastDecode: false });
  return { fast, ref };
}

/** The tfjs forward's logits for the same teacher-forced ids the fast path fed: row k = position T + k. */
async function tfjsStepLogits(model: GPT2, prompt: number[], ids: number[], steps: number): Promise<{ first: number; rows: Float32Array[] }> {
  let { logits, cache } = model.forward(prompt);
  const firstT = tf.tidy(() => tf.argMax(tf.slice(logits, [prompt.length - 1, 0], [1, -1]), 1));
  const first = (await firstT.data())[0];
  tf.dispose([firstT, logits]);
  const rows: Float32Array[] = [];
  for (let k = 0; k < steps; k++) {
    const r = model.forward([ids[k]], cache);
    cache.dispose();
    cache = r.cache;
    rows.push((await r.logits.data()) as Float32Array);
    r.logits.dispose();
  }
  cache.dispose();
  return { first, rows };
}

const argmax = (v: ArrayLike<number>) => {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
};

describe('fast greedy decode on webgpu (Dawn)', () => {
  let shipped: LoadedModel;
  const saved = { ...fastDecodeTuning };

  beforeAll(async () => {
    await useNodeWebGPU();
    shipped = await loadModel(localSource(SHIPPED));
  });
  afterAll(() => {
    Object.assign(fastDecodeTuning, saved);
    shipped?.model.dispose();
  });

  it('runs on webgpu for these models, and not on another backend', () => {
    expect(tf.getBackend()).toBe('webgpu');
    expect(fastDecodeUnsupported(shipped.config)).toBeNull();
    expect(fastDecodeDispatchesPerToken(shipped.config)).toBe(7 * 6 + 4);
  });

  it('gives the tfjs path\'s tokens on the shipped model', async () => {
    const prompts = ['The capital of France is', 'The chemical symbol of gold is', 'Paris is located in'];
    for (const text of prompts) {
      const ids = shipped.tokenizer.encode(text);
      const { fast, ref } = await both(shipped.model, ids, 6);
      expect(fast).toHaveLength(6);
      expect(fast).toEqual(ref);
    }
  });

  it('matches the tfjs forward\'s logits at every step (shipped model)', async () => {
    const prompt = shipped.tokenizer.encode('The capital of Italy is');
    const steps = 5;
    const fast = await fastDecodeLogits(shipped.model, prompt, steps);
    const ref = await tfjsStepLogits(shipped.model, prompt, fast.ids, steps);
    // The kernel shapes for a real GPU (split-K gemvs, 8 lanes per vocabulary row), which SwiftShader would not pick.
    fastDecodeTuning.software = false;
    const gpuShapes = await fastDecodeLogits(shipped.model, prompt, steps).finally(() => Object.assign(fastDecodeTuning, saved));
    expect(gpuShapes.ids).toEqual(fast.ids);
    for (const f of [fast, gpuShapes]) {
      expect(f.ids[0]).toBe(ref.first);
      for (let k = 0; k < steps; k++) {
        expect(relativeArrayError(f.logits[k], ref.rows[k])).toBeLessThan(1e-4);
        expect(f.ids[k + 1]).toBe(argmax(f.logits[k]));
      }
    }
  });

  for (const activation of ['gelu_new', 'gelu'] as const) {
    it(`gives the tfjs path's tokens up to the end of the context, random 2-layer model (${activation})`, async () => {
      const model = randomModel(activation, activation === 'gelu' ? 500 : 100);
      try {
        const prompt = [5, 77, 203];
        // 100 is clamped to n_positions − 3 = 21 tokens; the last step feeds position 22 of 24.
        const { fast, ref } = await both(model, prompt, 100);
        expect(fast).toHaveLength(21);
        expect(fast).toEqual(ref);
        expect(new Set(fast).size).toBeGreaterThan(3); // a real sequence, not one token repeated
        // The same with other chunk sizes, a looping lm head (fewer workgroups than its 300 rows need), and the
        // kernel shapes for a real GPU (split-K gemvs, 8 lanes per vocabulary row) as well as SwiftShader's.
        for (const tuning of [
          { chunkTokens: 3, maxLmHeadGroups: 3 },
          { chunkTokens: 1, maxLmHeadGroups: 1, software: false },
          { software: false },
          { software: true, maxLmHeadGroups: 2 },
        ]) {
          Object.assign(fastDecodeTuning, saved, tuning);
          expect(await model.generate(prompt, { maxNewTokens: 100 }), JSON.stringify(tuning)).toEqual(ref);
        }
        // Logits of every step, to the last position, with both kernel shapes.
        const rl = await tfjsStepLogits(model, prompt, ref, 20);
        for (const software of [true, false]) {
          Object.assign(fastDecodeTuning, saved, { software });
          const fl = await fastDecodeLogits(model, prompt, 20);
          expect(fl.ids).toEqual(ref);
          for (let k = 0; k < 20; k++) expect(relativeArrayError(fl.logits[k], rl.rows[k])).toBeLessThan(1e-4);
        }
      } finally {
        Object.assign(fastDecodeTuning, saved);
        model.dispose();
      }
    });
  }

  it('follows the weights after setWeight (bind groups are built per call)', async () => {
    const model = randomModel('gelu_new', 900);
    let kept: tf.Tensor[] = [];
    try {
      const prompt = [1, 2, 3, 4];
      const before = await both(model, prompt, 10);
      expect(before.fast).toEqual(before.ref);
      // The old values stay alive, as an edit keeps them for revert: otherwise tfjs's buffer pool could hand the
      // freed buffer straight back to the new values and a stale bind group would go unnoticed.
      const names = ['transformer.h.1.mlp.c_fc.weight', 'transformer.ln_f.bias'];
      kept = names.map((n) => tf.clone(model.getWeight(n)));
      const w = await model.readWeight(names[0]);
      model.setWeight(names[0], w.map((v) => -3 * v));
      model.setWeight(names[1], seededValues(32, 4242, 2));
      const after = await both(model, prompt, 10);
      expect(after.fast).not.toEqual(before.fast); // the edit changes the output...
      expect(after.fast).toEqual(after.ref); // ...and the fast path sees it
    } finally {
      tf.dispose(kept);
      model.dispose();
    }
  });

  it('fails with a clear message, and leaks nothing, when WebGPU rejects a chunk', async () => {
    // A rejected dispatch leaves stale ids behind, which would read as plausible text: inject the error WebGPU would
    // report for the second chunk and check generation refuses instead of returning tokens.
    const ids = shipped.tokenizer.encode('The capital of France is');
    const device = activeWebGPUBackend()!.device;
    const real = device.popErrorScope;
    let calls = 0;
    device.popErrorScope = async function () {
      const e = await real.call(device);
      return ++calls === 2 ? ({ message: 'injected by the test' } as GPUError) : e;
    };
    const tensors = tf.memory().numTensors;
    try {
      await expect(shipped.model.generate(ids, { maxNewTokens: 12 })).rejects.toThrow(/fast decode: WebGPU validation error: injected/);
    } finally {
      device.popErrorScope = real;
    }
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(tf.memory().numTensors).toBe(tensors);
    // and the next call works
    expect(await shipped.model.generate(ids, { maxNewTokens: 12 })).toHaveLength(12);
  });

  it('stops at eosTokenId (included) and streams every token in order', async () => {
    const model = randomModel('gelu_new', 100);
    try {
      const prompt = [5, 77, 203];
      const full = await model.generate(prompt, { maxNewTokens: 100 });
      // An EOS whose first occurrence is past the first chunks (4 ids each), and one that is the very first token.
      const at = full.findIndex((t, i) => i >= 6 && full.indexOf(t) === i);
      expect(at).toBeGreaterThan(0);
      for (const [eos, n] of [[full[at], at + 1], [full[0], 1]]) {
        const streamed: number[] = [];
        const out = await model.generate(prompt, { maxNewTokens: 100, eosTokenId: eos, onToken: (id) => streamed.push(id) });
        expect(out).toEqual(full.slice(0, n));
        expect(streamed).toEqual(out);
        const ref = await model.generate(prompt, { maxNewTokens: 100, eosTokenId: eos, fastDecode: false });
        expect(out).toEqual(ref);
      }
      // maxNewTokens 1: only the prompt's token, no decode step.
      const steps = fastDecodeStats.steps;
      expect(await model.generate(prompt, { maxNewTokens: 1 })).toEqual(full.slice(0, 1));
      expect(fastDecodeStats.steps).toBe(steps);
    } finally {
      model.dispose();
    }
  });

  it('dispatches 7 per layer + 4 per token and leaks no tensor, tfjs buffer or own buffer', async () => {
    const prompt = shipped.tokenizer.encode('The capital of Spain is');
    await shipped.model.generate(prompt, { maxNewTokens: 5 }); // warm: pipelines and tfjs's pool for this prompt length
    const mem = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU: number };
    const { dispatches, steps } = fastDecodeStats;
    for (let i = 0; i < 2; i++) await shipped.model.generate(prompt, { maxNewTokens: 5 });
    expect(fastDecodeStats.steps - steps).toBe(8);
    expect((fastDecodeStats.dispatches - dispatches) / 8).toBe(46);
    const after = tf.memory() as tf.MemoryInfo & { numBytesAllocatedInGPU: number };
    expect(after.numTensors).toBe(mem.numTensors);
    expect(after.numBytesAllocatedInGPU).toBe(mem.numBytesAllocatedInGPU);
    expect(fastDecodeStats.liveBuffers).toBe(0);
    // An exception in onToken ends the call and still frees everything.
    await expect(shipped.model.generate(prompt, { maxNewTokens: 9, onToken: () => { throw new Error('stop'); } })).rejects.toThrow('stop');
    expect(fastDecodeStats.liveBuffers).toBe(0);
    expect(tf.memory().numTensors).toBe(mem.numTensors);
  });

  it('is not used for sampling or when switched off', async () => {
    const prompt = [1, 2, 3];
    const steps = fastDecodeStats.steps;
    await shipped.model.generate(prompt, { maxNewTokens: 3, temperature: 1, seed: 1 });
    await shipped.model.generate(prompt, { maxNewTokens: 3, fastDecode: false });
    expect(fastDecodeStats.steps).toBe(steps);
  });
});
