// The whole MEND edit (capture → drop → normalise → editor → ΔW → W') against an independent float64 JavaScript
// implementation of docs/formats.md, on a synthetic editor for the tiny fixture model; plus artifact validation.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, loadModel, localSource, parseSafetensors, type BackendName, type LoadedModel } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { relativeArrayError } from '../kernels/testing';
import { weightsChecksum } from '../session/checksum';
import { argmax, teacherForced } from '../eval/metrics';
import { revertChanges, disposeChanges } from './changes';
import { MendEditor, mendEditTuning } from './mend';
import { parseMendEditorConfig } from './mend_files';
import { syntheticEditorFiles, type EditorFiles } from './testing';
import type { EditResult, TokenizedFact } from './types';

const FIXTURE = new URL('../../tests/fixtures/tiny-gpt2', import.meta.url).pathname;
const WEIGHTS = [
  'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight',
  'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight',
];
const FACT_A: TokenizedFact = { promptIds: [12, 45, 200, 7], targetIds: [99, 150] };
const FACT_B: TokenizedFact = { promptIds: [3, 88, 9], targetIds: [250] };

type Matrix = number[][];

/** Rows of a [N, d] tensor as float64 arrays. */
async function rowsOf(t: tf.Tensor2D): Promise<Matrix> {
  const v = await t.data();
  const [n, d] = t.shape;
  return Array.from({ length: n }, (_, i) => Array.from(v.subarray(i * d, (i + 1) * d)));
}

/** formats.md "Editor forward" in float64, straight from the safetensors values: independent of every kernel. */
function referenceDeltaW(files: EditorFiles, weight: string, x: Matrix, delta: Matrix): Matrix {
  const st = parseSafetensors(files.weights, 'editor.safetensors').tensors;
  const cfg = files.config as { editors: Record<string, { x_dim: number; delta_dim: number; rank: number; weights: string[] }>; norm_eps: number };
  const [key, e] = Object.entries(cfg.editors).find(([, e]) => e.weights.includes(weight))!;
  const mode = e.weights.indexOf(weight);
  const get = (n: string) => st.get(`editors.${key}.${n}`)!.data;
  const D = e.x_dim + e.delta_dim;
  const r = e.rank;
  const mean = [...get('x_mean'), ...get('delta_mean')];
  const std = [...get('x_std'), ...get('delta_std')];
  const dW: Matrix = Array.from({ length: e.x_dim }, () => new Array(e.delta_dim).fill(0));
  for (let n = 0; n < x.length; n++) {
    if (x[n].every((v) => v === 0) || delta[n].every((v) => v === 0)) continue; // dropped row
    let h = [...x[n], ...delta[n]].map((v, d) => (v - mean[d]) / (std[d] + cfg.norm_eps));
    for (let l = 0; l < 2; l++) {
      const U = get(`layers.${l}.U`), V = get(`layers.${l}.V`), b = get(`layers.${l}.bias`);
      const s = get(`layers.${l}.mode_scale`), o = get(`layers.${l}.mode_shift`);
      const t = Array.from({ length: r }, (_, k) => h.reduce((acc, hv, d) => acc + hv * V[k * D + d], 0));
      h = h.map((hv, d) => {
        const low = t.reduce((acc, tv, k) => acc + tv * U[d * r + k], 0);
        const pre = (low + b[d]) * s[mode * D + d] + o[mode * D + d];
        return hv + Math.max(pre, 0);
      });
    }
    for (let i = 0; i < e.x_dim; i++) for (let j = 0; j < e.delta_dim; j++) dW[i][j] += h[i] * h[e.x_dim + j];
  }
  return dW;
}

/** max |a − b| / max |b| (relativeArrayError) of a result against a matrix. */
const relErr = (a: Matrix | Float32Array, b: Matrix): number => relativeArrayError(a instanceof Float32Array ? a : a.flat(), b.flat());

async function expectedDeltas(m: LoadedModel, files: EditorFiles, editor: MendEditor, facts: TokenizedFact[]) {
  const x = new Map<string, Matrix>(WEIGHTS.map((w) => [w, []]));
  const delta = new Map<string, Matrix>(WEIGHTS.map((w) => [w, []]));
  for (const f of facts) {
    const cap = await m.model.captureGradientRows(f.promptIds, f.targetIds, WEIGHTS);
    for (const w of WEIGHTS) {
      x.get(w)!.push(...(await rowsOf(cap.rows[w].x)));
      delta.get(w)!.push(...(await rowsOf(cap.rows[w].delta)));
      tf.dispose([cap.rows[w].x, cap.rows[w].delta]);
    }
  }
  const out = new Map<string, Matrix>();
  for (const w of WEIGHTS) {
    const c = editor.coefficient(w);
    out.set(w, referenceDeltaW(files, w, x.get(w)!, delta.get(w)!).map((row) => row.map((v) => c * v)));
  }
  return out;
}

function defineMendSuite(backend: BackendName, before: () => Promise<void>) {
  describe(`MEND edit on ${backend}`, () => {
    let m: LoadedModel;
    let files: EditorFiles;
    let editor: MendEditor;

    beforeAll(async () => {
      await before();
      expect(await initBackend(backend)).toBe(backend);
      m = await loadModel(localSource(FIXTURE));
      files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 5, seed: 7 });
      editor = MendEditor.fromFiles(files.config, files.weights, m.model);
    });
    afterAll(() => {
      editor?.dispose();
      m?.model.dispose();
    });

    it('installs W + sign·lr_scale·edit_lr·ΣX̃ᵀΔ̃ matching a float64 implementation of formats.md', async () => {
      const expected = await expectedDeltas(m, files, editor, [FACT_A]);
      const result = await editor.edit(m.model, [FACT_A]);
      try {
        expect(result.changes.map((c) => c.name)).toEqual(WEIGHTS);
        // In the last block the MLP is position-wise, so only the positions that predict a target token (2) have
        // δ ≠ 0; every other row of that weight is dropped. (Earlier blocks keep more rows via attention.)
        expect(result.stats.rows).toBe(6);
        expect(result.stats.rowsKept).toBe(FACT_A.targetIds.length);
        for (const c of result.changes) {
          const diff = await tf.sub(c.after, c.before).data();
          const want = expected.get(c.name)!;
          expect(Math.max(...want.flat().map(Math.abs))).toBeGreaterThan(0);
          expect(relErr(diff as Float32Array, want)).toBeLessThan(1e-4);
          // The model now uses the new weight.
          expect(Array.from(await m.model.readWeight(c.name))).toEqual(Array.from(await c.after.data()));
        }
        const { phasesSynced, ...times } = result.timings;
        for (const v of Object.values(times)) expect(v).toBeGreaterThanOrEqual(0);
        expect(phasesSynced, 'the default edit waits once, at the end').toBe(false);
        expect(result.timings.totalMs).toBeCloseTo(result.timings.captureMs + result.timings.editorMs + result.timings.updateMs, 6);
      } finally {
        revertChanges(m.model, result.changes);
        disposeChanges(result.changes);
      }
    });

    it('counts the kept rows the same whether read with the edit\'s wait, after it, or with synced phases', async () => {
      const counts: number[] = [];
      for (const [early, syncPhases] of [[true, false], [false, false], [true, true]]) {
        mendEditTuning.countKeptEarly = early;
        try {
          const result = await editor.edit(m.model, [FACT_A, FACT_B], { syncPhases });
          counts.push(result.stats.rowsKept);
          revertChanges(m.model, result.changes);
          disposeChanges(result.changes);
        } finally {
          mendEditTuning.countKeptEarly = true;
        }
      }
      // Last block: only the rows that predict a target token have δ ≠ 0 (2 for FACT_A, 1 for FACT_B).
      expect(counts).toEqual([3, 3, 3]);
    });

    it('reverts bit for bit (checksum) and changes the model while applied', async () => {
      const original = await weightsChecksum(m.model);
      const result = await editor.edit(m.model, [FACT_A, FACT_B]);
      expect(await weightsChecksum(m.model)).not.toBe(original);
      revertChanges(m.model, result.changes);
      disposeChanges(result.changes);
      expect(await weightsChecksum(m.model)).toBe(original);
    });

    it('edits a batch of facts as one update from the concatenated rows', async () => {
      const expected = await expectedDeltas(m, files, editor, [FACT_A, FACT_B]);
      const result = await editor.edit(m.model, [FACT_A, FACT_B]);
      try {
        expect(result.stats.facts).toBe(2);
        expect(result.stats.rows).toBe(6 + 4);
        for (const c of result.changes) {
          const diff = await tf.sub(c.after, c.before).data();
          expect(relErr(diff as Float32Array, expected.get(c.name)!)).toBeLessThan(1e-4);
        }
      } finally {
        revertChanges(m.model, result.changes);
        disposeChanges(result.changes);
      }
    });

    it('uses lr_scale_batch for an edit of more than one fact and lr_scale for one fact', async () => {
      const cfg = { ...files.config, lr_scale_batch: 0.375 };
      const batchEditor = MendEditor.fromFiles(cfg, files.weights, m.model);
      const deltas = async (ed: MendEditor, facts: TokenizedFact[]) => {
        const r = await ed.edit(m.model, facts);
        try {
          return await Promise.all(r.changes.map(async (c) => tf.sub(c.after, c.before).data() as Promise<Float32Array>));
        } finally {
          revertChanges(m.model, r.changes);
          disposeChanges(r.changes);
        }
      };
      try {
        expect(batchEditor.config.lrScale).toBe(1);
        expect(batchEditor.config.lrScaleBatch).toBe(0.375);
        expect(editor.config.lrScaleBatch).toBe(editor.config.lrScale); // absent: lr_scale for every edit
        for (const w of WEIGHTS) {
          expect(batchEditor.coefficient(w)).toBe(editor.coefficient(w));
          expect(batchEditor.coefficient(w, 1)).toBe(editor.coefficient(w, 1));
          expect(batchEditor.coefficient(w, 2)).toBeCloseTo(0.375 * editor.coefficient(w, 2), 15);
        }
        expect(() => batchEditor.coefficient(WEIGHTS[0], 0)).toThrow(/at least one fact/);
        // one fact: the single-edit scale, bit for bit the update of the editor without the key
        const one = await deltas(batchEditor, [FACT_A]);
        const oneRef = await deltas(editor, [FACT_A]);
        one.forEach((d, k) => expect(Array.from(d)).toEqual(Array.from(oneRef[k])));
        // two facts: the batch scale (0.375 × the lr_scale update)
        const two = await deltas(batchEditor, [FACT_A, FACT_B]);
        const twoRef = await deltas(editor, [FACT_A, FACT_B]);
        two.forEach((d, k) => {
          const want = Array.from(twoRef[k], (v) => 0.375 * v);
          expect(Math.max(...want.map(Math.abs))).toBeGreaterThan(0);
          expect(relErr(d, [want])).toBeLessThan(1e-5);
        });
      } finally {
        batchEditor.dispose();
      }
    });

    describe('batch_retry (more MEND passes for the facts an edit left short) and first_pass_guard', () => {
      const RETRY = { max_passes: 3, lr_scale: 0.5 };
      const read = (r: EditResult) => Promise.all(r.changes.map(async (c) => (await c.after.data()) as Float32Array));
      const undo = (rs: EditResult[]) => {
        for (const r of [...rs].reverse()) revertChanges(m.model, r.changes);
        for (const r of rs) disposeChanges(r.changes);
      };

      /** The retry edit against one-pass editors run pass by pass (pass 1 at lr_scale_batch 0.75 on every fact, then
       * at 0.5 on the facts the check says do not give their target; `taken` overrides the check, null = the real
       * one), and a bit-exact revert. Returns the edit's passes and retried facts. */
      async function checkAgainstPasses(taken: (f: TokenizedFact) => boolean | null) {
        const original = await weightsChecksum(m.model);
        const first = MendEditor.fromFiles({ ...files.config, lr_scale_batch: 0.75 }, files.weights, m.model);
        const later = MendEditor.fromFiles({ ...files.config, lr_scale: 0.5, lr_scale_batch: 0.5 }, files.weights, m.model);
        const retry = MendEditor.fromFiles({ ...files.config, lr_scale_batch: 0.75, batch_retry: RETRY }, files.weights, m.model);
        const real = m.model.targetIsArgmax.bind(m.model);
        const spy = vi.spyOn(m.model, 'targetIsArgmax').mockImplementation(async (p, t) => {
          const f = [FACT_A, FACT_B].find((x) => x.promptIds === p)!;
          return taken(f) ?? real(p, t);
        });
        try {
          const ref: EditResult[] = [await first.edit(m.model, [FACT_A, FACT_B])];
          const afterPass1 = await read(ref[0]);
          let refRetried = 0;
          for (let pass = 1; pass < RETRY.max_passes; pass++) {
            const missing: TokenizedFact[] = [];
            for (const f of [FACT_A, FACT_B]) if (!(await m.model.targetIsArgmax(f.promptIds, f.targetIds))) missing.push(f);
            if (missing.length === 0) break;
            ref.push(await later.edit(m.model, missing));
            refRetried += missing.length;
          }
          const want = await Promise.all(WEIGHTS.map(async (w) => (await m.model.getWeight(w).data()) as Float32Array));
          undo(ref);
          expect(await weightsChecksum(m.model)).toBe(original);

          const r = await retry.edit(m.model, [FACT_A, FACT_B]);
          expect(r.stats.passes).toBe(ref.length);
          expect(r.stats.factsRetried).toBe(refRetried);
          expect(r.changes.map((c) => c.name)).toEqual(WEIGHTS);
          const got = await read(r);
          got.forEach((g, k) => expect(relErr(g, [Array.from(want[k])])).toBeLessThan(1e-6));
          // later passes move the weights on from pass 1; without them the edit is pass 1 exactly
          const moved = got.some((g, k) => relErr(g, [Array.from(afterPass1[k])]) > 1e-4);
          expect(moved).toBe(ref.length > 1);
          undo([r]);
          expect(await weightsChecksum(m.model)).toBe(original);
          // one fact: never retried (min_facts defaults to 2)
          const one = await retry.edit(m.model, [FACT_A]);
          expect(one.stats.passes).toBe(1);
          undo([one]);
          return { passes: r.stats.passes, retried: r.stats.factsRetried };
        } finally {
          spy.mockRestore();
          for (const e of [first, later, retry]) e.dispose();
        }
      }

      it('retries every fact while none gives its target, up to max_passes', async () => {
        expect(await checkAgainstPasses(() => false)).toEqual({ passes: 3, retried: 4 });
      });

      it('retries only the facts whose edit prompt does not give the target yet', async () => {
        expect(await checkAgainstPasses((f) => f === FACT_A)).toEqual({ passes: 3, retried: 2 });
      });

      it('stops when every fact gives its target', async () => {
        expect(await checkAgainstPasses(() => true)).toEqual({ passes: 1, retried: 0 });
      });

      it('follows the real check on the model as edited so far', async () => {
        // (the synthetic editor's steps are large: on the tiny model its targets take after one or two passes)
        const { passes } = await checkAgainstPasses(() => null);
        expect(passes).toBeGreaterThanOrEqual(1);
      });

      /**
       * Editors made from the synthetic files with `overrides` on their config, handed to `body`, disposed after; the
       * model must end bit for bit as it started (weightsChecksum) with no tensor left behind. `original` is the
       * checksum, for checks in between.
       */
      async function withEditors(overrides: object[], body: (editors: MendEditor[], original: string) => Promise<void>) {
        const original = await weightsChecksum(m.model);
        const count = tf.memory().numTensors;
        const editors = overrides.map((o) => MendEditor.fromFiles({ ...files.config, ...o }, files.weights, m.model));
        try {
          await body(editors, original);
        } finally {
          for (const e of editors) e.dispose();
        }
        expect(await weightsChecksum(m.model)).toBe(original);
        expect(tf.memory().numTensors).toBe(count);
      }
      /** The weights an edit installed, and the edit undone. */
      const readAndUndo = async (r: EditResult) => {
        const w = await read(r);
        undo([r]);
        return w;
      };
      const expectWeights = async (r: EditResult, want: Float32Array[]) =>
        (await read(r)).forEach((g, k) => expect(Array.from(g)).toEqual(Array.from(want[k])));

      it('trust_region: refuses a retry pass that moves a weight further than pass 1 did, applies a smaller one', async () => {
        const batch = (retry: object) => ({ lr_scale_batch: 0.75, batch_retry: retry });
        await withEditors([
          { lr_scale_batch: 0.75 },
          batch({ max_passes: 3, lr_scale: 75, trust_region: true }), // ~100x pass 1's step
          batch({ max_passes: 2, lr_scale: 0.0075, trust_region: true }), // ~1/100 of it
          batch({ max_passes: 2, lr_scale: 0.0075 }),
        ], async ([onePass, big, small, smallFree]) => {
          const spy = vi.spyOn(m.model, 'targetIsArgmax').mockResolvedValue(false);
          try {
            const want = await readAndUndo(await onePass.edit(m.model, [FACT_A, FACT_B]));
            // refused: the model is left exactly as pass 1 made it, and the refusal is reported
            const r = await big.edit(m.model, [FACT_A, FACT_B]);
            expect(r.stats).toMatchObject({ passes: 1, retriesRefused: 1, factsRetried: 0 });
            await expectWeights(r, want);
            for (const w of WEIGHTS) expect(Array.from(await m.model.getWeight(w).data())).toEqual(Array.from(want[WEIGHTS.indexOf(w)]));
            undo([r]);
            // a small retry is inside the region: the same weights as without the trust region
            const wantFree = await readAndUndo(await smallFree.edit(m.model, [FACT_A, FACT_B]));
            const s2 = await small.edit(m.model, [FACT_A, FACT_B]);
            expect(s2.stats.passes).toBe(2);
            expect(s2.stats.retriesRefused).toBeUndefined();
            await expectWeights(s2, wantFree);
            undo([s2]);
          } finally {
            spy.mockRestore();
          }
        });
      });

      it('prose_guard: refuses a retry pass that raises held-out perplexity past max_increase', async () => {
        const PROSE = [[5, 17, 42, 8, 99, 3, 61, 7], [12, 30, 4, 77]];
        const retry = (r: object) => ({ lr_scale_batch: 0.75, batch_retry: { max_passes: 2, lr_scale: 0.0075, ...r } });
        await withEditors([
          { lr_scale_batch: 0.75 },
          // max_increase −0.5: only a pass that halves the perplexity would pass, which a small retry does not do
          retry({ prose_guard: { max_increase: -0.5, prose_ids: PROSE } }),
          retry({ prose_guard: { max_increase: 1e9, prose_ids: PROSE } }),
          retry({}),
        ], async ([onePass, strict, lax, free]) => {
          const spy = vi.spyOn(m.model, 'targetIsArgmax').mockResolvedValue(false);
          try {
            const wantW = await readAndUndo(await onePass.edit(m.model, [FACT_A, FACT_B]));
            const r = await strict.edit(m.model, [FACT_A, FACT_B]);
            expect(r.stats).toMatchObject({ passes: 1, retriesRefusedProse: 1, factsRetried: 0 });
            await expectWeights(r, wantW);
            undo([r]);
            const wantFree = await readAndUndo(await free.edit(m.model, [FACT_A, FACT_B]));
            const l = await lax.edit(m.model, [FACT_A, FACT_B]);
            expect(l.stats.passes).toBe(2);
            expect(l.stats.retriesRefusedProse).toBeUndefined();
            await expectWeights(l, wantFree);
            undo([l]);
          } finally {
            spy.mockRestore();
          }
        });
      });

      it('min_facts 1: retries a single-fact edit its first pass left short, as a second one-fact pass would', async () => {
        await withEditors([
          { lr_scale: 0.75, batch_retry: { max_passes: 2, lr_scale: 0.5, min_facts: 1 } },
          { lr_scale: 0.75, batch_retry: { max_passes: 2, lr_scale: 0.5 } },
          { lr_scale: 0.75 },
          { lr_scale: 0.5 },
        ], async ([retry, batchOnly, first, later], original) => {
          const spy = vi.spyOn(m.model, 'targetIsArgmax').mockResolvedValue(false);
          try {
            expect(retry.config.batchRetry!.minFacts).toBe(1);
            const ref = [await first.edit(m.model, [FACT_A])];
            const afterPass1 = await read(ref[0]);
            ref.push(await later.edit(m.model, [FACT_A]));
            const want = await Promise.all(WEIGHTS.map(async (w) => (await m.model.getWeight(w).data()) as Float32Array));
            undo(ref);
            const r = await retry.edit(m.model, [FACT_A]);
            expect(r.stats).toMatchObject({ facts: 1, passes: 2, factsRetried: 1 });
            const got = await readAndUndo(r);
            got.forEach((g, k) => expect(relErr(g, [Array.from(want[k])])).toBeLessThan(1e-6));
            expect(got.some((g, k) => relErr(g, [Array.from(afterPass1[k])]) > 1e-4)).toBe(true);
            expect(await weightsChecksum(m.model)).toBe(original);
            // the default (min_facts 2) leaves single edits at one pass
            const b = await batchOnly.edit(m.model, [FACT_A]);
            expect(b.stats.passes).toBe(1);
            await expectWeights(b, afterPass1);
            undo([b]);
          } finally {
            spy.mockRestore();
          }
        });
      });

      it('first_pass_guard: halves pass 1 of a single edit while held-out perplexity rises past max_increase', async () => {
        const PROSE = [[5, 17, 42, 8, 99, 3, 61, 7], [12, 30, 4, 77]];
        const guarded = (maxIncrease: number, extra: object = {}) =>
          ({ lr_scale: 0.25, first_pass_guard: { max_increase: maxIncrease, max_halvings: 2, prose_ids: PROSE }, ...extra });
        // the rise each step gives on its own (the tiny model and synthetic editor: larger steps, larger rises)
        const plainScales = [0.25, 0.125, 0.0625];
        const rise: number[] = [];
        const want: Float32Array[][] = [];
        await withEditors(plainScales.map((s) => ({ lr_scale: s, lr_scale_batch: 0.25 })), async (plain) => {
          const base = await m.model.meanNll(PROSE);
          for (const e of plain) {
            const r = await e.edit(m.model, [FACT_A]);
            rise.push(Math.expm1((await m.model.meanNll(PROSE)) - base));
            want.push(await readAndUndo(r));
          }
        });
        expect(rise[1]).toBeLessThan(rise[0]);
        await withEditors([guarded(1e9), guarded((rise[0] + rise[1]) / 2), guarded(-0.5), guarded(-0.5, { lr_scale_batch: 0.25 }),
          { lr_scale_batch: 0.25 }], async ([never, once, most, batchGuarded, batchPlain], original) => {
          // never fires; fires once and the halved step passes; fires up to the limit
          for (const [editor, halvings] of [[never, 0], [once, 1], [most, 2]] as const) {
            const r = await editor.edit(m.model, [FACT_A]);
            expect(r.stats).toMatchObject({ passes: 1, stepHalvings: halvings, lrScale: 0.25 / 2 ** halvings });
            // what the guard measured: the rise at the editor's own step, and at the step kept unless the last
            // halving allowed was kept unchecked
            expect(r.stats.guardRiseFull).toBeCloseTo(rise[0], 5);
            if (halvings < 2) expect(r.stats.guardRiseKept).toBeCloseTo(rise[halvings], 5);
            else expect(r.stats.guardRiseKept).toBeUndefined();
            expect(r.stats.guardLimit).toBe(editor === never ? 1e9 : editor === once ? (rise[0] + rise[1]) / 2 : -0.5);
            await expectWeights(r, want[halvings]);
            expect(r.timings.totalMs).toBeGreaterThanOrEqual(r.timings.captureMs);
            undo([r]);
            expect(await weightsChecksum(m.model)).toBe(original);
          }
          // an edit of several facts is not guarded (validated on single edits only)
          const wantBatch = await readAndUndo(await batchPlain.edit(m.model, [FACT_A, FACT_B]));
          const b = await batchGuarded.edit(m.model, [FACT_A, FACT_B]);
          expect([b.stats.stepHalvings, b.stats.guardRiseFull]).toEqual([undefined, undefined]);
          await expectWeights(b, wantBatch);
          undo([b]);
          // a failure between passes leaves the model unedited (withEditors checks) and nothing leaked
          const real = m.model.meanNll.bind(m.model);
          let calls = 0;
          const spy = vi.spyOn(m.model, 'meanNll').mockImplementation(async (p) => {
            if (++calls === 3) throw new Error('lost the GPU');
            return real(p);
          });
          try {
            await expect(most.edit(m.model, [FACT_A])).rejects.toThrow(/lost the GPU/);
          } finally {
            spy.mockRestore();
          }
        });
      });

      it('undoes every pass when a later pass is refused', async () => {
        await withEditors([{ batch_retry: { max_passes: 2, lr_scale: 1e38 } }], async ([bad]) => {
          const spy = vi.spyOn(m.model, 'targetIsArgmax').mockResolvedValue(false);
          try {
            await expect(bad.edit(m.model, [FACT_A, FACT_B])).rejects.toThrow(/refused.*NaN or infinite/);
          } finally {
            spy.mockRestore();
          }
        });
      });

      it('the engine check agrees with teacher-forced scoring', async () => {
        const V = m.model.config.vocabSize;
        for (const f of [FACT_A, FACT_B]) {
          const logits = await m.model.logits([...f.promptIds, ...f.targetIds]);
          const want = teacherForced(logits, f.promptIds.length, f.targetIds, V).exactMatch;
          expect(await m.model.targetIsArgmax(f.promptIds, f.targetIds)).toBe(want);
        }
        // a one-token target: true exactly for the argmax token
        const next = await m.model.logits(FACT_B.promptIds);
        const best = argmax(next.subarray((FACT_B.promptIds.length - 1) * V));
        expect(await m.model.targetIsArgmax(FACT_B.promptIds, [best])).toBe(true);
        expect(await m.model.targetIsArgmax(FACT_B.promptIds, [(best + 1) % V])).toBe(false);
      });
    });

    it('makes the new target more likely with a sign that descends the loss', async () => {
      // An identity-initialised editor (U = 0: x̃ = x̄, δ̃ = δ̄ up to bias/shift 0) with sign −1 is a normalised
      // gradient step, so the target's log-probability must go up.
      const idFiles = syntheticEditorFiles(m.model, WEIGHTS, { rank: 3, seed: 3, uScale: 0, sign: -1, editLr: 1e-3 });
      const cfg = idFiles.config as Record<string, unknown>;
      const st = parseSafetensors(idFiles.weights, 'editor.safetensors').tensors;
      // zero bias/shift, unit scale, zero means, unit stds → the editor is exactly the identity
      const { writeSafetensors } = await import('../model');
      const clean = [...st].map(([name, t]) => {
        let data = t.data;
        if (/bias|mode_shift|_mean/.test(name)) data = new Float32Array(t.data.length);
        if (/mode_scale|_std/.test(name)) data = new Float32Array(t.data.length).fill(1);
        return { name, shape: t.shape, data };
      });
      const idEditor = MendEditor.fromFiles(cfg, writeSafetensors(clean), m.model);
      const before = await m.model.scoreContinuation(FACT_A.promptIds, FACT_A.targetIds);
      const result = await idEditor.edit(m.model, [FACT_A]);
      const after = await m.model.scoreContinuation(FACT_A.promptIds, FACT_A.targetIds);
      revertChanges(m.model, result.changes);
      disposeChanges(result.changes);
      idEditor.dispose();
      expect(after.logprob).toBeGreaterThan(before.logprob);
    });

    it('does not leak tensors across edits and reverts', async () => {
      const r0 = await editor.edit(m.model, [FACT_A]);
      revertChanges(m.model, r0.changes);
      disposeChanges(r0.changes);
      const count = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        const r = await editor.edit(m.model, [FACT_B]);
        revertChanges(m.model, r.changes);
        disposeChanges(r.changes);
      }
      expect(tf.memory().numTensors).toBe(count);
    });
  });
}

defineMendSuite('webgpu', async () => {
  await useNodeWebGPU();
});
defineMendSuite('cpu', async () => {});

describe('MEND editor artifacts are validated against the model', () => {
  let m: LoadedModel;
  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(FIXTURE));
  });
  afterAll(() => m?.model.dispose());

  const load = (mutate: (cfg: Record<string, any>) => void, weights?: Uint8Array) => {
    const f = syntheticEditorFiles(m.model, WEIGHTS.slice(2), { rank: 2 });
    const cfg = JSON.parse(JSON.stringify(f.config));
    mutate(cfg);
    return () => MendEditor.fromFiles(cfg, weights ?? f.weights, m.model).dispose();
  };

  it('accepts a matching editor', () => {
    expect(load(() => {})).not.toThrow();
  });
  it('refuses an editor trained for other model dimensions', () => {
    expect(load((c) => (c.model.n_embd = 64))).toThrow(/editor_config.json: this editor was trained for a model with n_embd 64, but the model has n_embd 32/);
  });
  it('refuses weights the model does not have', () => {
    expect(load((c) => {
      c.edited_weights[0] = 'transformer.h.7.mlp.c_fc.weight';
      c.editors['32x128'].weights[0] = 'transformer.h.7.mlp.c_fc.weight';
    })).toThrow(/"transformer.h.7.mlp.c_fc.weight" does not exist in the model/);
  });
  it('refuses a weight whose shape differs from the model', () => {
    expect(load((c) => {
      // swap the names of c_fc and c_proj: each is now listed with the other one's shape
      const [a, b] = c.edited_weights;
      c.edited_weights = [b, a];
      c.editors['32x128'].weights = [b];
      c.editors['128x32'].weights = [a];
    })).toThrow(/is \[32, 128\] in the editor but \[128, 32\] in the model/);
  });
  it('refuses a wrong format tag, a bad sign and an inconsistent editor key', () => {
    expect(load((c) => (c.format = 'something'))).toThrow(/"format" is "something"/);
    expect(load((c) => (c.sign = 2))).toThrow(/"sign" must be 1 or -1/);
    expect(load((c) => {
      c.editors['32x129'] = c.editors['32x128'];
      delete c.editors['32x128'];
    })).toThrow(/editor key "32x129" does not match/);
  });
  it('reads lr_scale_batch and refuses a non-positive or non-finite one', () => {
    expect(load((c) => (c.lr_scale_batch = 1.1))).not.toThrow();
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1.1', null]) {
      expect(load((c) => (c.lr_scale_batch = bad)), String(bad))
        .toThrow(/editor_config.json: "lr_scale_batch" must be a positive finite number/);
    }
  });
  it('reads batch_retry and refuses a malformed one', () => {
    expect(load((c) => (c.batch_retry = { max_passes: 2, lr_scale: 0.5 }))).not.toThrow();
    expect(load((c) => (c.batch_retry = { max_passes: 2, lr_scale: 0.5, trust_region: true }))).not.toThrow();
    expect(load((c) => (c.batch_retry = { max_passes: 2, lr_scale: 0.5, min_facts: 1 }))).not.toThrow();
    const guard = (ids: number[][]) => ({ max_passes: 2, lr_scale: 0.5, prose_guard: { max_increase: 0.02, prose_ids: ids } });
    expect(load((c) => (c.batch_retry = guard([[1, 2, 3], [4, 299]])))).not.toThrow();
    // a paragraph longer than the model's context (64 positions) could not be scored
    expect(load((c) => (c.batch_retry = guard([Array.from({ length: 65 }, (_, i) => i)]))))
      .toThrow(/editor_config.json: "batch_retry.prose_guard" has a paragraph of 65 tokens, beyond the model's context of 64/);
    const bad: unknown[] = [null, 2, { max_passes: 0, lr_scale: 0.5 }, { max_passes: 6, lr_scale: 0.5 }, { max_passes: 2.5, lr_scale: 0.5 },
      { max_passes: 2 }, { max_passes: 2, lr_scale: 0 }, { max_passes: 2, lr_scale: Number.POSITIVE_INFINITY }, { max_passes: 2, lr_scale: '0.5' },
      { max_passes: 2, lr_scale: 0.5, trust_region: 'yes' }, { max_passes: 2, lr_scale: 0.5, trustRegion: true },
      ...[0, -1, 1.5, '1', null].map((n) => ({ max_passes: 2, lr_scale: 0.5, min_facts: n })),
      ...[{ max_increase: -1, prose_ids: [[1, 2]] }, { max_increase: '0.02', prose_ids: [[1, 2]] }, { max_increase: 0.02 },
        { max_increase: 0.02, prose_ids: [] }, { max_increase: 0.02, prose_ids: [[1]] }, { max_increase: 0.02, prose_ids: [[1, 300]] },
        { max_increase: 0.02, prose_ids: [[1, 2.5]] }, { max_increase: 0.02, prose_ids: [[1, 2]], text: 'x' }, [0.02]]
        .map((g) => ({ max_passes: 2, lr_scale: 0.5, prose_guard: g }))];
    for (const b of bad) {
      expect(load((c) => (c.batch_retry = b)), JSON.stringify(b)).toThrow(/editor_config.json: "batch_retry(\.prose_guard)?"/);
    }
  });
  it('reads first_pass_guard and refuses a malformed one', () => {
    const g = (over: object) => ({ max_increase: 0.05, max_halvings: 2, prose_ids: [[1, 2, 3], [4, 299]], ...over });
    expect(load((c) => (c.first_pass_guard = g({})))).not.toThrow();
    const cfg = syntheticEditorFiles(m.model, WEIGHTS.slice(2), { rank: 2 }).config as Record<string, unknown>;
    expect(parseMendEditorConfig({ ...cfg, first_pass_guard: g({}) }).firstPassGuard)
      .toEqual({ maxIncrease: 0.05, proseIds: [[1, 2, 3], [4, 299]], maxHalvings: 2 });
    expect(parseMendEditorConfig(cfg).firstPassGuard).toBeNull();
    expect(load((c) => (c.first_pass_guard = g({ prose_ids: [Array.from({ length: 65 }, (_, i) => i)] }))))
      .toThrow(/editor_config.json: "first_pass_guard" has a paragraph of 65 tokens, beyond the model's context of 64/);
    const bad: unknown[] = [null, 2, [0.05], g({ max_halvings: 0 }), g({ max_halvings: 5 }), g({ max_halvings: 1.5 }), g({ max_halvings: undefined }),
      g({ max_increase: -1 }), g({ max_increase: '0.05' }), g({ max_increase: Number.NaN }), g({ prose_ids: [] }), g({ prose_ids: [[1]] }),
      g({ prose_ids: [[1, 300]] }), g({ min_facts: 1 })];
    for (const b of bad) {
      expect(load((c) => (c.first_pass_guard = b)), JSON.stringify(b)).toThrow(/editor_config.json: "first_pass_guard"/);
    }
  });
  it('refuses missing or misshapen editor tensors', () => {
    const f = syntheticEditorFiles(m.model, WEIGHTS.slice(2), { rank: 2 });
    const st = parseSafetensors(f.weights, 'editor.safetensors').tensors;
    return import('../model').then(({ writeSafetensors }) => {
      const without = [...st].filter(([n]) => n !== 'editors.128x32.layers.1.U').map(([name, t]) => ({ name, shape: t.shape, data: t.data }));
      expect(() => MendEditor.fromFiles(f.config, writeSafetensors(without), m.model))
        .toThrow(/editor.safetensors: missing tensor "editors.128x32.layers.1.U"/);
      const wrongRank = [...st].map(([name, t]) => (name === 'edit_lrs' ? { name, shape: [3], data: new Float32Array(3) } : { name, shape: t.shape, data: t.data }));
      expect(() => MendEditor.fromFiles(f.config, writeSafetensors(wrongRank), m.model))
        .toThrow(/tensor "edit_lrs" has shape \[3\] but editor_config.json implies \[2\]/);
    });
  });
});
