// The fast WebGPU capture (src/model/fast_capture.ts) against GPT2's tfjs-autodiff capture (the same method with
// fastCapture.enabled = false) on Dawn/SwiftShader: x rows, δ rows, which rows are exactly zero (MEND drops them)
// and the loss, for a random tiny model (every Conv1D kind, gelu_new and gelu, several prompt/target lengths), the
// shipped facts-gpt model with its editor's weights, after setWeight changes the model, and a whole MEND edit.
// Every comparison first checks that the fast path really ran (its capture counter moved), so a silent fallback
// to the tfjs path fails the test.
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTensorShapes, GPT2, loadModel, localSource, parseGPT2Config, type CaptureResult, type LoadedModel } from '../../src/model';
import { fastCapture } from '../../src/model/fast_capture';
import { gpuPlans } from '../../src/kernels/webgpu';
import { MendEditor } from '../../src/editors/mend';
import { disposeChanges, revertChanges } from '../../src/editors/changes';
import { onCpuBackend, relativeArrayError, relativeError, seededValues } from '../../src/kernels/testing';
import { useNodeWebGPU } from '../helpers/node-webgpu';

const TOL = 1e-4;
const ROOT = new URL('../../', import.meta.url).pathname;

function tinyModel(activation: 'gelu_new' | 'gelu', seed: number): GPT2 {
  const config = parseGPT2Config({
    model_type: 'gpt2', vocab_size: 97, n_positions: 24, n_embd: 32, n_layer: 3, n_head: 4, n_inner: 48,
    activation_function: activation, layer_norm_epsilon: 1e-5,
  });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  let k = seed;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const v = seededValues(n, ++k);
    // Non-trivial LayerNorm gains and biases everywhere, so every bias and γ/β path is exercised.
    const data = /\.ln_\w+\.weight$/.test(name) ? v.map((x) => 1 + 0.3 * x) : v.map((x) => x * (name.endsWith('.bias') ? 0.1 : 0.35));
    tensors.set(name, { shape, data });
  }
  return new GPT2(config, tensors);
}

async function captureBoth(model: GPT2, prompt: number[], target: number[], names: string[]): Promise<{ fast: CaptureResult; ref: CaptureResult }> {
  const before = fastCapture.captures;
  const fast = await model.captureGradientRows(prompt, target, names);
  expect(fastCapture.captures, 'the fast path ran').toBe(before + 1);
  fastCapture.enabled = false;
  try {
    const ref = await model.captureGradientRows(prompt, target, names);
    expect(fastCapture.captures, 'the reference is the tfjs path').toBe(before + 1);
    return { fast, ref };
  } finally {
    fastCapture.enabled = true;
  }
}

/** Indices of rows whose values are all exactly zero. */
async function zeroRows(t: tf.Tensor2D): Promise<number[]> {
  const v = await t.data();
  const [n, d] = t.shape;
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (v.subarray(i * d, (i + 1) * d).every((x) => x === 0)) out.push(i);
  return out;
}

async function expectSame(fast: CaptureResult, ref: CaptureResult, names: string[]): Promise<void> {
  expect(Math.abs(fast.loss - ref.loss)).toBeLessThanOrEqual(TOL * Math.max(1, Math.abs(ref.loss)));
  expect(Object.keys(fast.rows).sort()).toEqual([...names].sort());
  for (const n of names) {
    const f = fast.rows[n];
    const r = ref.rows[n];
    expect(f.x.shape, n).toEqual(r.x.shape);
    expect(f.delta.shape, n).toEqual(r.delta.shape);
    expect(await relativeError(f.x, r.x), `${n} x`).toBeLessThan(TOL);
    expect(await relativeError(f.delta, r.delta), `${n} δ`).toBeLessThan(TOL);
    // MEND drops rows that are all zero: both paths must agree on exactly which.
    expect(await zeroRows(f.delta), `${n} zero δ rows`).toEqual(await zeroRows(r.delta));
    expect(await zeroRows(f.x), `${n} zero x rows`).toEqual(await zeroRows(r.x));
  }
}

function disposeCapture(...cs: CaptureResult[]): void {
  for (const c of cs) for (const r of Object.values(c.rows)) tf.dispose([r.x, r.delta]);
}

const ALL_KINDS = (layers: number[]) =>
  layers.flatMap((l) => ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'].map((k) => `transformer.h.${l}.${k}.weight`));

describe('fast capture on webgpu (Dawn) matches the tfjs-autodiff capture', () => {
  beforeAll(async () => {
    await useNodeWebGPU();
  });

  for (const activation of ['gelu_new', 'gelu'] as const) {
    it(`random 3-layer model (${activation}): every Conv1D kind, several prompt/target lengths`, async () => {
      const model = tinyModel(activation, activation === 'gelu' ? 500 : 100);
      try {
        const cases: Array<[number[], number[], string[]]> = [
          [[5, 17, 42, 8], [60, 3, 91], ALL_KINDS([0, 1, 2])],
          [[11], [7], ALL_KINDS([0, 1, 2])],
          [[1, 2, 3, 4, 5, 6, 7], [96], ['transformer.h.1.mlp.c_fc.weight', 'transformer.h.2.mlp.c_proj.weight']],
          [[9, 9], [4, 4, 30, 2, 77], ['transformer.h.2.attn.c_proj.weight', 'transformer.h.1.mlp.c_proj.weight']],
          [[40, 41, 42], [43, 44], ['h.0.attn.c_attn.weight']],
        ];
        for (const [prompt, target, names] of cases) {
          const canonical = names.map((n) => (n.startsWith('transformer.') ? n : `transformer.${n}`));
          const { fast, ref } = await captureBoth(model, prompt, target, names);
          await expectSame(fast, ref, canonical);
          disposeCapture(fast, ref);
        }
      } finally {
        model.dispose();
      }
    });
  }

  it('with keepMask, gives the keep mask of the tfjs path (rows where x or δ is all zero are 0) from its own pass', async () => {
    const model = tinyModel('gelu_new', 11);
    try {
      const names = ALL_KINDS([0, 2]);
      const prompt = [5, 9, 14, 2, 33];
      const target = [7, 1];
      const before = fastCapture.captures;
      const fast = await model.captureGradientRows(prompt, target, names, { keepMask: true });
      expect(fastCapture.captures).toBe(before + 1);
      fastCapture.enabled = false;
      const ref = await model.captureGradientRows(prompt, target, names, { keepMask: true }).finally(() => (fastCapture.enabled = true));
      await expectSame(fast, ref, names);
      for (const n of names) {
        const [f, r] = [fast.rows[n].keep!, ref.rows[n].keep!];
        expect(f.shape, n).toEqual([prompt.length + target.length, 1]);
        const got = Array.from(await f.data());
        expect(got, n).toEqual(Array.from(await r.data()));
        // The last position predicts nothing, so its δ is zero everywhere: dropped. The target rows are kept.
        expect(got.at(-1), n).toBe(0);
        expect(got[prompt.length - 1], n).toBe(1);
      }
      for (const c of [fast, ref]) for (const r of Object.values(c.rows)) tf.dispose([r.x, r.delta, r.keep!]);
    } finally {
      model.dispose();
    }
  });

  it('gives bit-identical rows and loss whether submitted in chunks or at once (fastCapture.submitEvery)', async () => {
    const model = tinyModel('gelu_new', 23);
    const every = fastCapture.submitEvery;
    try {
      const names = ALL_KINDS([0, 1, 2]);
      const run = async (submitEvery: number) => {
        fastCapture.submitEvery = submitEvery;
        const [submits, dispatches] = [fastCapture.submits, fastCapture.dispatches];
        const c = await model.captureGradientRows([3, 14, 15, 92, 65], [35, 89], names);
        return { c, submits: fastCapture.submits - submits, dispatches: fastCapture.dispatches - dispatches };
      };
      const once = await run(0);
      const chunked = await run(5);
      expect(once.submits).toBe(1);
      expect(chunked.dispatches).toBe(once.dispatches);
      expect(chunked.submits, 'one submit per 5 dispatches').toBe(Math.ceil(once.dispatches / 5));
      expect(chunked.c.loss).toBe(once.c.loss);
      for (const n of names) {
        for (const k of ['x', 'delta'] as const) {
          expect(Array.from(await chunked.c.rows[n][k].data()), `${n} ${k}`).toEqual(Array.from(await once.c.rows[n][k].data()));
        }
      }
      disposeCapture(once.c, chunked.c);
    } finally {
      fastCapture.submitEvery = every;
      model.dispose();
    }
  });

  it('gives the same rows and loss with the unrolled split-K matmuls as with one k step at a time (fastCapture.unrollMatmuls)', async () => {
    const model = tinyModel('gelu', 31);
    try {
      const names = ALL_KINDS([0, 1, 2]);
      // K is 32 and 48 in the blocks and 97 (the vocabulary) for the head's gradient: whole unrolled steps and a tail.
      const run = async (unroll: boolean) => {
        const kernels: string[] = [];
        fastCapture.unrollMatmuls = unroll;
        fastCapture.passTimestamps = (_chunk, ks) => {
          kernels.push(...ks);
          return undefined;
        };
        try {
          return { c: await model.captureGradientRows([2, 71, 82, 81, 8, 28], [18, 28, 45], names), kernels };
        } finally {
          fastCapture.unrollMatmuls = true;
          fastCapture.passTimestamps = null;
        }
      };
      const unrolled = await run(true);
      const plain = await run(false);
      const matmuls = (ks: string[]) => ks.filter((k) => k.startsWith('mm'));
      expect(matmuls(unrolled.kernels).length).toBeGreaterThan(0);
      expect(new Set(matmuls(unrolled.kernels))).toEqual(new Set(['mmN', 'mmT']));
      expect(new Set(matmuls(plain.kernels))).toEqual(new Set(['mmN:plain', 'mmT:plain']));
      expect(Math.abs(unrolled.c.loss - plain.c.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(plain.c.loss));
      for (const n of names) {
        for (const k of ['x', 'delta'] as const) {
          expect(relativeArrayError(await unrolled.c.rows[n][k].data(), await plain.c.rows[n][k].data()), `${n} ${k}`).toBeLessThan(1e-6);
        }
      }
      disposeCapture(unrolled.c, plain.c);
    } finally {
      model.dispose();
    }
  });

  it('keeps no tensors and reuses its buffers and bind groups across captures', async () => {
    const model = tinyModel('gelu_new', 7);
    try {
      const names = ALL_KINDS([1, 2]);
      const first = await model.captureGradientRows([1, 2, 3], [4, 5], names); // first call: pipelines, scratch, bind groups
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const [created, dispatches] = [gpuPlans.created, fastCapture.dispatches];
        const c = await model.captureGradientRows([1, 2, 3], [4, 5], names);
        expect(tf.memory().numTensors).toBe(before + 2 * names.length);
        expect(fastCapture.dispatches - dispatches).toBeGreaterThan(0);
        expect(gpuPlans.created - created, 'same weights, same length: every bind group is reused').toBe(0);
        expect(c.loss).toBe(first.loss);
        disposeCapture(c);
      }
      disposeCapture(first);
      expect(tf.memory().numTensors).toBe(before - 2 * names.length);
    } finally {
      model.dispose();
    }
  });

  describe('shipped model (public/models/facts-gpt)', () => {
    let m: LoadedModel;
    let names: string[];
    beforeAll(async () => {
      m = await loadModel(localSource(`${ROOT}public/models/facts-gpt`));
      names = (JSON.parse(readFileSync(`${ROOT}public/models/facts-gpt/editor_config.json`, 'utf8')) as { edited_weights: string[] }).edited_weights;
    });
    afterAll(() => m?.model.dispose());

    it("matches on its editor's weights, single- and multi-token targets", async () => {
      for (const [prompt, target] of [['The capital of France is', ' Paris'], ['Albert Einstein was born in', ' the German Empire']]) {
        const p = m.tokenizer.encode(prompt);
        const t = m.tokenizer.encode(target);
        const { fast, ref } = await captureBoth(m.model, p, t, names);
        await expectSame(fast, ref, names);
        disposeCapture(fast, ref);
      }
    });

    it('follows the new weight buffers after setWeight (the kept bind groups that bind a replaced weight are remade)', async () => {
      const p = m.tokenizer.encode('The capital of Italy is');
      const t = m.tokenizer.encode(' Rome');
      const changed = ['transformer.h.4.mlp.c_fc.weight', 'transformer.wte.weight', 'transformer.h.5.ln_2.weight'];
      const originals = changed.map((n) => tf.clone(m.model.getWeight(n)));
      const first = await m.model.captureGradientRows(p, t, names);
      try {
        changed.forEach((n, i) => m.model.setWeight(n, tf.tidy(() => tf.add(originals[i], tf.randomUniform(originals[i].shape, -0.2, 0.2, 'float32', 40 + i)))));
        const [created, reused, dispatches] = [gpuPlans.created, gpuPlans.reused, fastCapture.dispatches];
        const { fast, ref } = await captureBoth(m.model, p, t, names);
        // Some bind groups were remade (those that bind the three new weights), the others reused.
        expect(gpuPlans.created - created).toBeGreaterThan(0);
        expect(gpuPlans.reused - reused).toBeGreaterThan(0);
        expect(gpuPlans.created - created + gpuPlans.reused - reused).toBe(fastCapture.dispatches - dispatches);
        await expectSame(fast, ref, names);
        // And the result did change: the fast path read the new weights, not the old buffers.
        expect(Math.abs(fast.loss - first.loss)).toBeGreaterThan(1e-3);
        expect(await relativeError(fast.rows[names[0]].delta, first.rows[names[0]].delta)).toBeGreaterThan(1e-2);
        disposeCapture(fast, ref);
      } finally {
        changed.forEach((n, i) => m.model.setWeight(n, originals[i]));
        tf.dispose(originals);
        disposeCapture(first);
      }
    });
  });

  it('a whole MEND edit (mend-tiny fixture) gives the same post-edit logits and kept rows on both paths', async () => {
    const dir = `${ROOT}tests/fixtures/mend-tiny`;
    const { model } = await loadModel(localSource(dir));
    const editor = await MendEditor.load(localSource(dir), model);
    try {
      const facts = [{ promptIds: [12, 45, 200, 7, 3], targetIds: [99, 150] }, { promptIds: [3, 88, 9], targetIds: [250] }];
      const probe = [12, 45, 200, 7, 3, 99];
      const pre = await model.logits(probe);
      const editOnce = async () => {
        const before = fastCapture.captures;
        const r = await editor.edit(model, facts);
        const fastRan = fastCapture.captures - before;
        const logits = await model.logits(probe);
        revertChanges(model, r.changes);
        disposeChanges(r.changes);
        return { logits, stats: r.stats, fastRan };
      };
      const fast = await editOnce();
      fastCapture.enabled = false;
      let ref: Awaited<ReturnType<typeof editOnce>>;
      try {
        ref = await editOnce();
      } finally {
        fastCapture.enabled = true;
      }
      expect(fast.fastRan).toBe(2);
      expect(ref.fastRan).toBe(0);
      expect(fast.stats.rowsKept).toBe(ref.stats.rowsKept);
      expect(Math.abs(fast.stats.lossBefore! - ref.stats.lossBefore!)).toBeLessThan(TOL);
      const diff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
      expect(relativeArrayError(fast.logits, ref.logits)).toBeLessThan(TOL);
      expect(diff(ref.logits, pre)).toBeGreaterThan(1e-3); // the edit changed the model (the comparison means something)
    } finally {
      editor.dispose();
      model.dispose();
    }
  });

  it('falls back to the tfjs path off webgpu', async () => {
    await onCpuBackend(async () => {
      const model = tinyModel('gelu_new', 3);
      const before = fastCapture.captures;
      const c = await model.captureGradientRows([1, 2], [3], ['transformer.h.2.mlp.c_fc.weight']);
      expect(fastCapture.captures).toBe(before);
      expect(c.rows['transformer.h.2.mlp.c_fc.weight'].delta.shape).toEqual([3, 48]);
      disposeCapture(c);
      model.dispose();
    });
  });
});
