// Parity with PyTorch: the `--tiny` training run's model + editor (tests/fixtures/mend-tiny, written by
// training/mendlab/fixtures.py in float64, format in training/README.md). For every case: the captured x/δ rows,
// the editor outputs x̃/δ̃, ΔW[0:8, 0:8], the scaled update, and the last-position logits of the edit prompt,
// a paraphrase and a neighbour before and after the edit must match within 1e-4 absolute — on cpu and wasm (the
// tfjs-op reference path) and on webgpu (our WGSL kernels).
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { fastUpdate } from './fast_update';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type BackendName, type LoadedModel } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { disposeChanges, revertChanges } from './changes';
import { disposeRows, MendEditor, type CapturedRows } from './mend';
import type { TokenizedFact } from './types';

const FIXTURE = new URL('../../tests/fixtures/mend-tiny', import.meta.url).pathname;
const TOL = 1e-4;

interface GoldenWeight {
  x: number[][]; delta: number[][]; x_tilde: number[][]; delta_tilde: number[][];
  delta_w_slice: number[][]; update_slice: number[][];
}
interface GoldenCase {
  name: string;
  edits: Array<{ prompt: string; target: string; prompt_ids: number[]; target_ids: number[] }>;
  loss: number;
  weights: Record<string, GoldenWeight>;
  probes: Array<{ kind: string; prompt: string; input_ids: number[]; pre_logits: number[]; post_logits: number[] }>;
}
interface Golden { edited_weights: string[]; sign: number; lr_scale: number; edit_lrs: number[]; slice: number; cases: GoldenCase[] }

const golden: Golden = JSON.parse(readFileSync(`${FIXTURE}/golden.json`, 'utf8'));

function maxAbsDiff(a: number[][], b: number[][]): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  a.forEach((row, i) => {
    expect(row.length).toBe(b[i].length);
    row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i][j]))));
  });
  return m;
}

/** The rows of `t` whose keep flag is 1, as nested arrays (what the golden file stores: zero rows dropped). */
async function keptRows(t: tf.Tensor2D, keep: tf.Tensor2D): Promise<number[][]> {
  const [v, k] = await Promise.all([t.data(), keep.data()]);
  const d = t.shape[1];
  const out: number[][] = [];
  for (let i = 0; i < t.shape[0]; i++) if (k[i] === 1) out.push(Array.from(v.subarray(i * d, (i + 1) * d)));
  return out;
}

async function lastLogits(m: LoadedModel, ids: number[]): Promise<number[]> {
  const all = await m.model.logits(ids);
  const V = m.config.vocabSize;
  return Array.from(all.subarray((ids.length - 1) * V, ids.length * V));
}

function defineParity(backend: BackendName, before: () => Promise<void>) {
  describe(`MEND parity with PyTorch (mend-tiny) on ${backend}`, () => {
    let m: LoadedModel;
    let editor: MendEditor;

    beforeAll(async () => {
      await before();
      expect(await initBackend(backend)).toBe(backend);
      m = await loadModel(localSource(FIXTURE));
      editor = await MendEditor.load(localSource(FIXTURE), m.model);
    });
    afterAll(() => {
      editor?.dispose();
      m?.model.dispose();
    });

    it('loads the editor with the golden weight order, sign and step sizes', () => {
      expect(editor.weightNames).toEqual(golden.edited_weights);
      golden.edited_weights.forEach((w, k) => {
        const want = golden.sign * golden.lr_scale * golden.edit_lrs[k]; // golden stores 8 significant digits
        expect(Math.abs(editor.coefficient(w) - want) / Math.abs(want)).toBeLessThan(1e-6);
      });
    });

    for (const c of golden.cases) {
      it(`${c.name}: rows, editor outputs, ΔW and post-edit logits match within ${TOL}`, async () => {
        for (const e of c.edits) {
          expect(m.tokenizer.encode(e.prompt)).toEqual(e.prompt_ids);
          expect(m.tokenizer.encode(e.target)).toEqual(e.target_ids);
        }
        const facts: TokenizedFact[] = c.edits.map((e) => ({ promptIds: e.prompt_ids, targetIds: e.target_ids }));
        const { rows, loss } = await editor.captureRows(m.model, facts);
        // the sum over edits of each edit's mean target NLL
        expect(Math.abs(loss - c.loss)).toBeLessThan(TOL);

        const s = golden.slice;
        for (const [name, g] of Object.entries(c.weights)) {
          const r = rows.get(name) as CapturedRows;
          expect(maxAbsDiff(await keptRows(r.x, r.keep), g.x), `${name} x`).toBeLessThan(TOL);
          expect(maxAbsDiff(await keptRows(r.delta, r.keep), g.delta), `${name} δ`).toBeLessThan(TOL);
          const out = editor.runEditor(name, r);
          expect(maxAbsDiff(await keptRows(out.xTilde, r.keep), g.x_tilde), `${name} x̃`).toBeLessThan(TOL);
          expect(maxAbsDiff(await keptRows(out.deltaTilde, r.keep), g.delta_tilde), `${name} δ̃`).toBeLessThan(TOL);
          const dW = editor.deltaW(out);
          const slice = tf.slice(dW, [0, 0], [s, s]);
          const dWSlice = (await slice.array()) as number[][];
          expect(maxAbsDiff(dWSlice, g.delta_w_slice), `${name} ΔW`).toBeLessThan(TOL);
          const coef = editor.coefficient(name);
          expect(maxAbsDiff(dWSlice.map((row) => row.map((v) => coef * v)), g.update_slice), `${name} update`).toBeLessThan(TOL);
          tf.dispose([out.xTilde, out.deltaTilde, dW, slice]);
        }
        disposeRows(rows);

        for (const p of c.probes) {
          expect(maxAbsDiff([await lastLogits(m, p.input_ids)], [p.pre_logits]), `${p.kind} pre-edit logits`).toBeLessThan(TOL);
        }
        const result = await editor.edit(m.model, facts);
        try {
          // The whole edit, as installed in the model: W' − W equals the golden update on the slice.
          for (const ch of result.changes) {
            const diff = tf.tidy(() => tf.slice(tf.sub(ch.after, ch.before), [0, 0], [s, s]));
            expect(maxAbsDiff((await diff.array()) as number[][], c.weights[ch.name].update_slice), `${ch.name} W' − W`).toBeLessThan(TOL);
            diff.dispose();
          }
          for (const p of c.probes) {
            const post = await lastLogits(m, p.input_ids);
            expect(maxAbsDiff([post], [p.post_logits]), `${p.kind} post-edit logits`).toBeLessThan(TOL);
          }
          // The edit does something measurable on the edit prompt (otherwise the logits check would be vacuous).
          const editProbe = c.probes.find((p) => p.kind === 'edit')!;
          expect(maxAbsDiff([editProbe.pre_logits], [editProbe.post_logits])).toBeGreaterThan(1e-3);
        } finally {
          revertChanges(m.model, result.changes);
          disposeChanges(result.changes);
        }
      }, 300_000);
    }

    if (backend === 'webgpu') {
      it('ran our WGSL kernels, not the reference path', () => {
        const keys = Object.keys((tf.backend() as unknown as { pipelineCache: Record<string, unknown> }).pipelineCache);
        // ΔW for inspection runs rank_update.ts's 'delta' program through tfjs (vec4 where W's width is a multiple
        // of 4, else scalar); the edit's update runs its 'add' program in fast_update.ts's own encoder.
        for (const kernel of [/^mendEditorMLP_/, /^mendRankUpdate(Vec4)?_delta_/]) {
          expect(keys.some((k) => kernel.test(k)), String(kernel)).toBe(true);
        }
        expect(fastUpdate.runs, 'edits took the fast update phase').toBeGreaterThan(0);
      });
    }
  });
}

defineParity('cpu', async () => {});
defineParity('wasm', async () => {});
defineParity('webgpu', async () => {
  await useNodeWebGPU();
});
