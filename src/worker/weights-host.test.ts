// The weights report on a real MEND edit of the tiny fixture model (synthetic editor; WebGPU through Dawn, and cpu): its
// numbers agree with the weights actually installed, the model is left exactly as it was, and a later edit does
// not change what the report says about the MEND edit before it.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { initBackend, loadModel, localSource, type BackendName, type LoadedModel } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { FinetuneEditor } from '../editors/finetune';
import { MendEditor } from '../editors/mend';
import { syntheticEditorFiles } from '../editors/testing';
import { EditSession, weightsChecksum } from '../session';
import { HEATMAP_SIZE, weightsReport, type WeightsContext } from './weights-host';

const FIXTURE = new URL('../../tests/fixtures/tiny-gpt2', import.meta.url).pathname;
const WEIGHTS = ['transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight', 'transformer.h.1.mlp.c_fc.weight'];

function defineSuite(backend: BackendName, before: () => Promise<void>) {
  describe(`weightsReport (${backend})`, () => {
    let m: LoadedModel;
    let editor: MendEditor;
    let session: EditSession;
    let ctx: WeightsContext;

    beforeAll(async () => {
      await before();
      expect(await initBackend(backend)).toBe(backend);
      m = await loadModel(localSource(FIXTURE));
      const files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 7, editLr: 0.05 });
      editor = MendEditor.fromFiles(files.config, files.weights, m.model);
      const ft = new FinetuneEditor({ weightNames: WEIGHTS.slice(0, 1), steps: 2, learningRate: 1e-2 });
      session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: editor, ft } });
      ctx = { model: m.model, tokenizer: m.tokenizer, mend: editor, applied: session.applied };
    });
    afterAll(() => {
      session?.dispose();
      editor?.dispose();
      m?.model.dispose();
    });

    it('is null before any MEND edit', async () => {
      expect(await weightsReport(ctx)).toBeNull();
      expect(await weightsReport(null)).toBeNull();
    });

    it('describes the applied edit with numbers that match the installed weights', async () => {
      const entry = await session.apply({ prompt: 'The capital of France is', target: ' Paris' });
      const sum = await weightsChecksum(m.model);
      const tensors = tf.memory().numTensors;
      const r = (await weightsReport(ctx))!;
      expect(tf.memory().numTensors).toBe(tensors); // nothing leaked
      expect(await weightsChecksum(m.model)).toBe(sum); // the detour to the old weights left no trace
      expect(r.entryId).toBe(entry.id);
      const n = entry.facts[0].promptIds.length + entry.facts[0].targetIds.length;
      expect(r.tokens).toHaveLength(n);
      expect(r.tokens.filter((t) => t.role === 'target').map((t) => t.id)).toEqual(entry.facts[0].targetIds);
      expect(r.loss).toBeCloseTo(entry.stats.lossBefore, 5);
      expect(r.targetProbBefore!).toBeGreaterThan(0);
      expect(r.weights.map((w) => w.name)).toEqual(WEIGHTS);
      for (const w of r.weights) {
        expect(w.updateNorm).toBeGreaterThan(0);
        // From the rows (float64 Gram algebra) vs measured on the installed float32 buffers.
        expect(Math.abs(w.measuredUpdateNorm - w.updateNorm) / w.updateNorm).toBeLessThan(1e-3);
        expect(w.step).toBeCloseTo(editor.coefficient(w.name), 12);
        expect(w.singularValues).toHaveLength(n);
        expect(w.rank).toBeGreaterThan(0);
        expect(w.rank).toBeLessThanOrEqual(n);
        expect(Math.hypot(...w.singularValues)).toBeCloseTo(w.updateNorm, 6);
        expect(w.relativeUpdate).toBeCloseTo(w.updateNorm / w.weightNorm, 12);
        expect(w.rows).toHaveLength(n);
        const kept = w.rows.filter((row) => row.kept);
        expect(kept.reduce((s, row) => s + row.updateShare, 0)).toBeCloseTo(1, 6);
        for (const row of w.rows) if (!row.kept) expect(row.updatePieceNorm).toBe(0);
        expect(w.heatmap.values).toHaveLength(Math.min(HEATMAP_SIZE, w.shape[0]) * Math.min(HEATMAP_SIZE, w.shape[1]));
        expect(Math.max(...w.heatmap.values.map(Math.abs))).toBeCloseTo(w.heatmap.maxAbs, 10);
        // The heatmap holds entries of W' − W itself: same places, same signs.
        const change = entry.result.changes.find((c) => c.name === w.name)!;
        const [after, before] = [await change.after.data(), await change.before.data()];
        const out = w.shape[1];
        w.heatmap.rows.forEach((r, a) => w.heatmap.cols.forEach((c, b) => {
          const installed = after[r * out + c] - before[r * out + c];
          expect(Math.abs(w.heatmap.values[a * w.heatmap.cols.length + b] - installed)).toBeLessThan(1e-3 * w.heatmap.maxAbs + 1e-6);
        }));
        const [ar, ac] = w.heatmap.argmax;
        expect(Math.abs(after[ar * out + ac] - before[ar * out + ac])).toBeCloseTo(w.heatmap.maxAbs, 4);
        expect(w.gradient.norm).toBeGreaterThan(0);
        expect(Math.abs(w.cosineWithDescent)).toBeLessThanOrEqual(1 + 1e-9);
      }
    });

    it('still describes the MEND edit, unchanged, after a later fine-tuning edit', async () => {
      const before = (await weightsReport(ctx))!;
      await session.apply({ prompt: 'Water is made of', target: ' stone' }, 'ft');
      const sum = await weightsChecksum(m.model);
      const after = (await weightsReport(ctx))!;
      expect(await weightsChecksum(m.model)).toBe(sum);
      expect(after.entryId).toBe(before.entryId);
      expect(before.editsAfter).toBe(0);
      expect(after.editsAfter).toBe(1);
      expect(after.loss).toBe(before.loss);
      after.weights.forEach((w, k) => {
        expect(w.updateNorm).toBe(before.weights[k].updateNorm);
        expect(w.singularValues).toEqual(before.weights[k].singularValues);
      });
      session.undo();
      session.undo();
      expect(await weightsReport(ctx)).toBeNull();
    });

    it('says how many passes a retried edit took, and describes its first', async () => {
      const files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 7, editLr: 0.05 });
      const retrying = MendEditor.fromFiles({ ...files.config, batch_retry: { max_passes: 2, lr_scale: 0.5, min_facts: 1 } }, files.weights, m.model);
      const s2 = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: retrying } });
      const fact = { prompt: 'The capital of France is', target: ' Paris' };
      try {
        const one = await session.apply(fact);
        const onePass = (await weightsReport(ctx))!;
        session.undo();
        expect(one.stats.passes).toBe(1);
        expect(onePass.passes).toBe(1);
        const spy = vi.spyOn(m.model, 'targetIsArgmax').mockResolvedValue(false); // the first pass "left it short"
        const entry = await s2.apply(fact).finally(() => spy.mockRestore());
        expect(entry.stats.passes).toBe(2);
        const r = (await weightsReport({ ...ctx, mend: retrying, applied: s2.applied }))!;
        expect(r.passes).toBe(2);
        r.weights.forEach((w, k) => {
          expect(w.updateNorm).toBeCloseTo(onePass.weights[k].updateNorm, 10); // pass 1's rows and step
          // the installed change holds both passes
          expect(Math.abs(onePass.weights[k].measuredUpdateNorm - w.updateNorm) / w.updateNorm).toBeLessThan(1e-5);
          expect(Math.abs(w.measuredUpdateNorm - w.updateNorm) / w.updateNorm).toBeGreaterThan(1e-4); // float32 rounding: ~1e-7
        });
        s2.undo();
      } finally {
        s2.dispose();
        retrying.dispose();
      }
    });

    it('describes a guard-halved edit at the step it was kept at', async () => {
      const files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 7, editLr: 0.05 });
      // max_increase −0.5: no step passes, so pass 1 is halved the most the guard allows
      const guarded = MendEditor.fromFiles({ ...files.config, first_pass_guard: { max_increase: -0.5, max_halvings: 2, prose_ids: [[5, 17, 42, 8], [12, 30, 4]] } },
        files.weights, m.model);
      const s2 = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: guarded } });
      const fact = { prompt: 'The capital of France is', target: ' Paris' };
      try {
        await session.apply(fact);
        const full = (await weightsReport(ctx))!;
        session.undo();
        expect(full.stepHalvings).toBe(0);
        const entry = await s2.apply(fact);
        expect(entry.stats.stepHalvings).toBe(2);
        const r = (await weightsReport({ ...ctx, mend: guarded, applied: s2.applied }))!;
        expect(r.stepHalvings).toBe(2);
        expect(r.guard).toEqual({ riseFull: entry.stats.guardRiseFull, riseKept: null, limit: -0.5 }); // what the guard read, for the note
        expect(full.guard).toBeNull(); // this session's editor has no guard
        expect(r.lrScale).toBe(full.lrScale / 4);
        r.weights.forEach((w, k) => {
          expect(w.editLr).toBeCloseTo(full.weights[k].editLr, 12);
          expect(w.step / full.weights[k].step).toBeCloseTo(0.25, 12);
          // the step the report states is the one installed
          expect(Math.abs(w.measuredUpdateNorm - w.updateNorm) / w.updateNorm).toBeLessThan(1e-5);
        });
        s2.undo();
      } finally {
        s2.dispose();
        guarded.dispose();
      }
    });
  });
}

defineSuite('webgpu', useNodeWebGPU);
defineSuite('cpu', async () => {});
