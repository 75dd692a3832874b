// Golden parity of the TS engine against the independent PyTorch reference
// (training/make_engine_fixture.py → tests/fixtures/tiny-gpt2/golden.json). The same suite runs
// once per backend (cpu, wasm, webgpu), each in its own test file and therefore its own process.

import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  activeBackend, GPT2, initBackend, loadModel, loadModelFiles, localSource, parseSafetensors, type BackendName, type LoadedModel,
} from '../../src/model';

export const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;

interface Golden {
  forward: { prompt: string; input_ids: number[]; logits: number[][] }[];
  greedy: { prompt: string; input_ids: number[]; max_new_tokens: number; output_ids: number[]; text: string }[];
  score: { prompt: string; target: string; prompt_ids: number[]; target_ids: number[]; logprob: number; token_logprobs: number[] }[];
  capture: {
    prompt: string; target: string; prompt_ids: number[]; target_ids: number[]; loss: number;
    weights: Record<string, { x: number[][]; delta: number[][]; grad: number[][]; kept_rows: number[] }>;
  };
}

export const golden: Golden = JSON.parse(readFileSync(`${FIXTURES}tiny-gpt2/golden.json`, 'utf8'));

/** Largest |a − b| over two equally shaped nested arrays / flat arrays; fails loudly on a length mismatch. */
export function maxAbsDiff(a: ArrayLike<number> | number[][], b: ArrayLike<number> | number[][]): number {
  const fa = Array.isArray(a) && Array.isArray(a[0]) ? (a as number[][]).flat() : Array.from(a as ArrayLike<number>);
  const fb = Array.isArray(b) && Array.isArray(b[0]) ? (b as number[][]).flat() : Array.from(b as ArrayLike<number>);
  expect(fa.length).toBe(fb.length);
  let m = 0;
  for (let i = 0; i < fa.length; i++) m = Math.max(m, Math.abs(fa[i] - fb[i]));
  return m;
}

export function defineParitySuite(backend: BackendName, before: () => Promise<void> = async () => {}) {
  describe(`GPT-2 engine parity with PyTorch on ${backend}`, () => {
    let m: LoadedModel;

    beforeAll(async () => {
      await before();
      expect(await initBackend(backend)).toBe(backend);
      m = await loadModel(localSource(`${FIXTURES}tiny-gpt2`));
    });
    afterAll(() => m?.model.dispose());

    it('runs on the requested backend', () => {
      expect(activeBackend()).toBe(backend);
      expect(tf.getBackend()).toBe(backend);
    });

    it('tokenises the golden prompts exactly like the Python tokenizer', () => {
      for (const f of golden.forward) expect(m.tokenizer.encode(f.prompt)).toEqual(f.input_ids);
      for (const s of golden.score) {
        expect(m.tokenizer.encode(s.prompt)).toEqual(s.prompt_ids);
        expect(m.tokenizer.encode(s.target)).toEqual(s.target_ids);
      }
    });

    it('matches the reference logits at every position within 1e-4', async () => {
      for (const f of golden.forward) {
        const logits = await m.model.logits(f.input_ids);
        expect(logits.length).toBe(f.input_ids.length * m.config.vocabSize);
        expect(maxAbsDiff(logits, f.logits)).toBeLessThan(1e-4);
      }
    });

    it('generates the reference greedy tokens and text (KV cache path)', async () => {
      for (const g of golden.greedy) {
        const streamed: number[] = [];
        const out = await m.model.generate(g.input_ids, { maxNewTokens: g.max_new_tokens, onToken: (id) => streamed.push(id) });
        expect(out).toEqual(g.output_ids);
        expect(streamed).toEqual(out);
        expect(m.tokenizer.decode(out)).toBe(g.text);
      }
    });

    it('KV-cached incremental logits equal the full forward pass', async () => {
      const ids = golden.forward[0].input_ids;
      const full = await m.model.logits(ids);
      let { logits, cache } = m.model.forward(ids.slice(0, 2));
      logits.dispose();
      const V = m.config.vocabSize;
      for (let t = 2; t < ids.length; t++) {
        const step = m.model.forward([ids[t]], cache);
        cache.dispose();
        cache = step.cache;
        expect(cache.length).toBe(t + 1);
        const row = await step.logits.data();
        step.logits.dispose();
        expect(maxAbsDiff(row, full.subarray(t * V, (t + 1) * V))).toBeLessThan(1e-4);
      }
      cache.dispose();
    });

    it('scores continuations like the reference (sum of token log-probs)', async () => {
      for (const s of golden.score) {
        const r = await m.model.scoreContinuation(s.prompt_ids, s.target_ids);
        expect(maxAbsDiff(r.tokenLogprobs, s.token_logprobs)).toBeLessThan(1e-4);
        expect(Math.abs(r.logprob - s.logprob)).toBeLessThan(1e-4);
      }
    });

    it('packed teacher-forced checks (targetsAreArgmax) give the reference argmax, across and within packs', async () => {
      // Every golden prompt split at every point: the true continuation is "the argmax" exactly when PyTorch's logits
      // put every one of its tokens on top, and the reference's own top token always is. Positions whose top two
      // logits are within 1e-3 are left out: there the answer is a float-rounding coin toss, not a packing question.
      const pairs: Array<{ promptIds: number[]; targetIds: number[] }> = [];
      const expected: boolean[] = [];
      const top = (row: number[]) => {
        const sorted = [...row].sort((a, b) => b - a);
        return { id: row.indexOf(sorted[0]), clear: sorted[0] - sorted[1] > 1e-3 };
      };
      for (const f of golden.forward) {
        const ids = f.input_ids;
        for (let k = 1; k < ids.length; k += ids.length > 12 ? 6 : 1) { // every split of a short prompt, some of a long one
          const tops = f.logits.slice(k - 1, ids.length - 1).map(top);
          if (tops.some((t) => !t.clear)) continue;
          pairs.push({ promptIds: ids.slice(0, k), targetIds: ids.slice(k) });
          expected.push(tops.every((t, j) => t.id === ids[k + j]));
          pairs.push({ promptIds: ids.slice(0, k), targetIds: [tops[0].id] });
          expected.push(true);
        }
      }
      expect(pairs.length).toBeGreaterThan(10);
      expect(expected.some((e) => !e)).toBe(true); // both answers occur, or the check could not fail
      // the default packs (128 tokens), and packs of at most 16 (a longer pair goes alone: pairs are never split)
      for (const packTokens of [128, 16]) expect(await m.model.targetsAreArgmax(pairs, packTokens)).toEqual(expected);
    });

    it('gives the top-k next-token distribution of the last position', async () => {
      const f = golden.forward[0];
      const top = await m.model.topNextTokens(f.input_ids, 5);
      const last = f.logits[f.logits.length - 1];
      const mx = Math.max(...last);
      const lse = mx + Math.log(last.reduce((a, v) => a + Math.exp(v - mx), 0));
      const expected = last.map((v, id) => ({ id, lp: v - lse })).sort((a, b) => b.lp - a.lp).slice(0, 5);
      expect(top.map((t) => t.id)).toEqual(expected.map((e) => e.id));
      top.forEach((t, i) => {
        expect(Math.abs(t.logprob - expected[i].lp)).toBeLessThan(1e-4);
        expect(Math.abs(t.prob - Math.exp(expected[i].lp))).toBeLessThan(1e-5);
      });
    });

    it('samples reproducibly with a seed; top-k=1 sampling equals greedy', async () => {
      const g = golden.greedy[0];
      const opts = { maxNewTokens: 6, temperature: 1.3, topK: 20, seed: 1234 };
      const a = await m.model.generate(g.input_ids, opts);
      const b = await m.model.generate(g.input_ids, opts);
      expect(a).toHaveLength(6);
      expect(a).toEqual(b);
      const others = await Promise.all([1, 2, 3].map((seed) => m.model.generate(g.input_ids, { ...opts, seed })));
      expect(others.some((o) => o.join() !== a.join())).toBe(true);
      const top1 = await m.model.generate(g.input_ids, { maxNewTokens: g.max_new_tokens, temperature: 0.7, topK: 1, seed: 5 });
      expect(top1).toEqual(g.output_ids);
    });

    it('captures x/δ rows, loss and Σ xᵀδ like the reference, and Σ xᵀδ equals the tfjs autodiff gradient', async () => {
      const c = golden.capture;
      const names = Object.keys(c.weights);
      expect(names.length).toBeGreaterThanOrEqual(2);
      const r = await m.model.captureGradientRows(c.prompt_ids, c.target_ids, names);
      expect(Math.abs(r.loss - c.loss)).toBeLessThan(1e-4);

      const vars = names.map((n) => m.model.getWeight(n));
      const { value, grads } = tf.variableGrads(() => m.model.targetLoss(c.prompt_ids, c.target_ids), vars);
      expect(Math.abs((await value.data())[0] - c.loss)).toBeLessThan(1e-4);
      for (const n of names) {
        const { x, delta } = r.rows[n];
        const T = c.prompt_ids.length + c.target_ids.length;
        expect(x.shape).toEqual([T, m.model.getWeight(n).shape[0]]);
        expect(delta.shape).toEqual([T, m.model.getWeight(n).shape[1]]);
        expect(maxAbsDiff(await x.array(), c.weights[n].x)).toBeLessThan(1e-4);
        const deltaRows = await delta.array();
        expect(maxAbsDiff(deltaRows, c.weights[n].delta)).toBeLessThan(1e-4);
        // The rows the reference keeps (x and δ both non-zero) are exactly the rows non-zero here:
        // e.g. the last layer's MLP cannot influence earlier positions' loss, so its δ is exactly 0 there.
        const xRows = await x.array();
        const kept = xRows.map((_, i) => i).filter((i) => xRows[i].some((v) => v !== 0) && deltaRows[i].some((v) => v !== 0));
        expect(kept).toEqual(c.weights[n].kept_rows);
        const outer = tf.matMul(x, delta, true, false); // Σ_i x_iᵀ δ_i
        const autodiff = grads[m.model.getWeight(n).name];
        const gradMax = Math.max(...(await tf.abs(autodiff).max().data()));
        expect(gradMax).toBeGreaterThan(1e-3); // a vanishing gradient would make the comparison meaningless
        expect(maxAbsDiff(await outer.data(), await autodiff.data())).toBeLessThan(1e-5 + 1e-4 * gradMax);
        expect(maxAbsDiff(await outer.array() as number[][], c.weights[n].grad)).toBeLessThan(1e-4);
        tf.dispose([outer, x, delta]);
      }
      tf.dispose([value, ...Object.values(grads)]);
    });

    it('reads and replaces weights by HF name, and the forward pass sees the change', async () => {
      const name = 'h.1.mlp.c_fc.weight'; // also accepted without the transformer. prefix
      const ids = golden.forward[0].input_ids;
      const before = await m.model.logits(ids);
      const original = await m.model.readWeight(name);
      expect(original.length).toBe(m.config.nEmbd * m.config.nInner);
      m.model.setWeight(name, original.map((v) => v * 2));
      const changed = await m.model.logits(ids);
      expect(maxAbsDiff(changed, before)).toBeGreaterThan(1e-3);
      m.model.setWeight(name, original);
      expect(maxAbsDiff(await m.model.logits(ids), before)).toBe(0);
      expect(() => m.model.setWeight(name, new Float32Array(3))).toThrow(/3 values/);
      expect(() => m.model.getWeight('transformer.h.9.mlp.c_fc.weight')).toThrow(/unknown weight/);
    });

    it('exports its (edited) weights as safetensors that load back to the same model', async () => {
      const ids = golden.forward[0].input_ids;
      const name = 'transformer.h.0.mlp.c_proj.weight';
      const original = await m.model.readWeight(name);
      m.model.setWeight(name, original.map((v, i) => v + (i % 7) * 1e-3));
      try {
        const files = await loadModelFiles(localSource(`${FIXTURES}tiny-gpt2`));
        const exported = parseSafetensors(await m.model.toSafetensors(), 'model.safetensors').tensors;
        expect([...exported.keys()].sort()).toEqual(m.model.weightNames().sort());
        const copy = new GPT2(files.config, exported);
        try {
          expect(maxAbsDiff(await copy.logits(ids), await m.model.logits(ids))).toBe(0);
        } finally {
          copy.dispose();
        }
      } finally {
        m.model.setWeight(name, original);
      }
    });

    it('does not leak tensors across generate/score/capture', async () => {
      const g = golden.greedy[0];
      await m.model.generate(g.input_ids, { maxNewTokens: 2 });
      const n0 = tf.memory().numTensors;
      await m.model.generate(g.input_ids, { maxNewTokens: 4 });
      await m.model.generate(g.input_ids, { maxNewTokens: 4, temperature: 1, seed: 1 });
      await m.model.scoreContinuation(golden.score[0].prompt_ids, golden.score[0].target_ids);
      await m.model.topNextTokens(g.input_ids, 3);
      const r = await m.model.captureGradientRows(golden.capture.prompt_ids, golden.capture.target_ids, ['transformer.h.0.attn.c_attn.weight']);
      tf.dispose(Object.values(r.rows).flatMap((row) => [row.x, row.delta]));
      expect(tf.memory().numTensors).toBe(n0);
    });
  });

  describe(`fp16 / bf16 / sharded checkpoints on ${backend}`, () => {
    let base: LoadedModel;
    beforeAll(async () => {
      base = await loadModel(localSource(`${FIXTURES}tiny-gpt2`));
    });
    afterAll(() => base?.model.dispose());

    // relative precision of the stored dtype (round-to-nearest) and the smallest step it can represent
    const variants = [
      { dir: 'tiny-gpt2-fp16', dtype: 'F16', rel: 2 ** -11, abs: 2 ** -24, logitTol: 3e-2 },
      { dir: 'tiny-gpt2-bf16', dtype: 'BF16', rel: 2 ** -8, abs: 1e-38, logitTol: 3e-1 },
      { dir: 'tiny-gpt2-sharded', dtype: 'F32', rel: 0, abs: 0, logitTol: 1e-4 },
    ] as const;

    for (const v of variants) {
      it(`${v.dir}: weights decode to the fp32 ones within ${v.dtype} rounding, logits within ${v.logitTol}`, async () => {
        const m = await loadModel(localSource(`${FIXTURES}${v.dir}`));
        try {
          expect(m.dtypes).toEqual([v.dtype]);
          expect(m.model.weightNames().sort()).toEqual(base.model.weightNames().sort());
          for (const n of base.model.weightNames()) {
            const a = await base.model.readWeight(n);
            const b = await m.model.readWeight(n);
            for (let i = 0; i < a.length; i++) {
              const err = Math.abs(a[i] - b[i]);
              if (err > v.rel * Math.abs(a[i]) + v.abs) throw new Error(`${n}[${i}]: ${b[i]} vs fp32 ${a[i]}`);
            }
          }
          for (const f of golden.forward) {
            expect(maxAbsDiff(await m.model.logits(f.input_ids), f.logits)).toBeLessThan(v.logitTol);
          }
          if (v.dtype !== 'BF16') {
            // greedy[0]'s smallest top-2 margin (0.06) is well above the fp16 logit error
            const g = golden.greedy[0];
            expect(await m.model.generate(g.input_ids, { maxNewTokens: g.max_new_tokens })).toEqual(g.output_ids);
          }
        } finally {
          m.model.dispose();
        }
      });
    }
  });
}
