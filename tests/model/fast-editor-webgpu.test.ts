// The fast WebGPU editor phase (src/editors/fast_editor.ts, MendEditor.runEditors) against the tfjs path (the same
// method with fastEditor.enabled = false: editorMLP + split + keep mask per weight) on Dawn/SwiftShader: x̃, δ̃,
// ΔW and the post-edit logits, for the shipped facts-gpt editor and the mend-tiny fixture, with a multi-fact edit
// whose rows are partly dropped. Every comparison checks the fast path really ran (its counter moved), so a silent
// fallback to the tfjs path fails the test.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, localSource, type LoadedModel } from '../../src/model';
import { fastEditor } from '../../src/editors/fast_editor';
import { disposeOutputs, disposeRows, MendEditor, type CapturedRows, type EditorOutput } from '../../src/editors/mend';
import { disposeChanges, revertChanges } from '../../src/editors/changes';
import { relativeArrayError, relativeError } from '../../src/kernels/testing';
import { activeWebGPUBackend, gpuPlans } from '../../src/kernels/webgpu';
import { useNodeWebGPU } from '../helpers/node-webgpu';
import { syntheticEditorFiles } from '../../src/editors/testing';

const TOL = 1e-4;
const ROOT = new URL('../../', import.meta.url).pathname;

/** Editor outputs of both paths for the same rows. */
function editBoth(editor: MendEditor, rows: Map<string, CapturedRows>): { fast: Map<string, EditorOutput>; ref: Map<string, EditorOutput> } {
  const fast = new Map<string, EditorOutput>();
  const ref = new Map<string, EditorOutput>();
  const before = fastEditor.runs;
  editor.runEditors(rows, fast);
  expect(fastEditor.runs, 'the fast path ran').toBe(before + 1);
  fastEditor.enabled = false;
  try {
    editor.runEditors(rows, ref);
    expect(fastEditor.runs, 'the reference is the tfjs path').toBe(before + 1);
  } finally {
    fastEditor.enabled = true;
  }
  return { fast, ref };
}

/**
 * Zeroes some rows so that they are dropped (x row 1 of the first weight, δ row 2 of the second), as a token whose
 * x or δ is all zero would be; the keep mask is recomputed like MendEditor.captureRows does.
 */
function dropSomeRows(rows: Map<string, CapturedRows>, names: readonly string[]): void {
  const zeroRow = (t: tf.Tensor2D, row: number) => tf.tidy(() => {
    const mask = tf.oneHot([row], t.shape[0]).reshape([t.shape[0], 1]);
    return tf.mul(t, tf.sub(1, mask)) as tf.Tensor2D;
  });
  const nonZero = (t: tf.Tensor2D) => tf.cast(tf.greater(tf.max(tf.abs(t), 1, true), 0), 'float32');
  for (const [i, field, row] of [[0, 'x', 1], [1, 'delta', 2]] as const) {
    const r = rows.get(names[i])!;
    const z = zeroRow(r[field], row);
    r[field].dispose();
    r[field] = z;
    r.keep.dispose();
    r.keep = tf.tidy(() => tf.mul(nonZero(r.x), nonZero(r.delta)) as tf.Tensor2D);
  }
}

async function expectSameOutputs(editor: MendEditor, fast: Map<string, EditorOutput>, ref: Map<string, EditorOutput>, rows: Map<string, CapturedRows>): Promise<void> {
  for (const name of editor.weightNames) {
    const f = fast.get(name)!;
    const r = ref.get(name)!;
    expect(f.xTilde.shape, name).toEqual(r.xTilde.shape);
    expect(f.deltaTilde.shape, name).toEqual(r.deltaTilde.shape);
    expect(await relativeError(f.xTilde, r.xTilde), `${name} x̃`).toBeLessThan(TOL);
    expect(await relativeError(f.deltaTilde, r.deltaTilde), `${name} δ̃`).toBeLessThan(TOL);
    // Dropped rows: δ̃ exactly zero on the fast path too.
    const keep = await rows.get(name)!.keep.data();
    const dt = await f.deltaTilde.data();
    const w = f.deltaTilde.shape[1];
    keep.forEach((k, n) => {
      if (k === 0) expect(dt.subarray(n * w, (n + 1) * w).every((v) => v === 0), `${name} dropped row ${n}`).toBe(true);
    });
    const dwF = editor.deltaW(f);
    const dwR = editor.deltaW(r);
    expect(await relativeError(dwF, dwR), `${name} ΔW`).toBeLessThan(TOL);
    tf.dispose([dwF, dwR]);
  }
}

function disposeAll(...ms: Array<Map<string, EditorOutput>>): void {
  for (const m of ms) disposeOutputs(m);
}

/** Last-position logits of `probe` after editFromRows on each path (reverted after each). */
async function postEditLogitsBoth(editor: MendEditor, m: LoadedModel, rows: Map<string, CapturedRows>, facts: number, probe: number[]) {
  const once = async () => {
    const r = await editor.editFromRows(m.model, rows, facts);
    const logits = await m.model.logits(probe);
    revertChanges(m.model, r.changes);
    disposeChanges(r.changes);
    return { logits, kept: r.stats.rowsKept };
  };
  const before = fastEditor.runs;
  const fast = await once();
  expect(fastEditor.runs).toBe(before + 1);
  fastEditor.enabled = false;
  try {
    const ref = await once();
    expect(fastEditor.runs).toBe(before + 1);
    return { fast, ref };
  } finally {
    fastEditor.enabled = true;
  }
}

for (const [label, dir] of [['shipped editor (public/models/facts-gpt)', 'public/models/facts-gpt'], ['mend-tiny fixture', 'tests/fixtures/mend-tiny']]) {
  describe(`fast editor phase on webgpu (Dawn) matches the tfjs path: ${label}`, () => {
    let m: LoadedModel;
    let editor: MendEditor;
    beforeAll(async () => {
      await useNodeWebGPU();
      m = await loadModel(localSource(`${ROOT}${dir}`));
      editor = await MendEditor.load(localSource(`${ROOT}${dir}`), m.model);
    });
    afterAll(() => {
      editor?.dispose();
      m?.model.dispose();
    });

    const facts = () => dir.includes('facts-gpt')
      ? [['The capital of France is', ' Rome'], ['Albert Einstein was born in', ' the German Empire']].map(([p, t]) => ({ promptIds: m.tokenizer.encode(p), targetIds: m.tokenizer.encode(t) }))
      : [{ promptIds: [12, 45, 200, 7, 3], targetIds: [99, 150] }, { promptIds: [3, 88, 9], targetIds: [250] }];

    it('x̃, δ̃ and ΔW of a single-fact edit, stacked by editor and one weight at a time', async () => {
      const { rows } = await editor.captureRows(m.model, facts().slice(0, 1));
      for (const stack of [true, false]) {
        fastEditor.stack = stack;
        try {
          const before = fastEditor.dispatches;
          const { fast, ref } = editBoth(editor, rows);
          // 2 per weight + 7 per editor stacked; 9 per weight one at a time (2-layer editors).
          const editors = new Set(editor.weightNames.map((n) => editor.config.editors.find((e) => e.weights.includes(n))!.key)).size;
          expect(fastEditor.dispatches - before).toBe(stack ? 2 * editor.weightNames.length + 7 * editors : 9 * editor.weightNames.length);
          await expectSameOutputs(editor, fast, ref, rows);
          disposeAll(fast, ref);
        } finally {
          fastEditor.stack = true;
        }
      }
      disposeRows(rows);
    });

    it('gives bit-identical x̃ and δ̃ with one compute pass per dispatch (the bench profile hook) as in one pass', async () => {
      const { rows } = await editor.captureRows(m.model, facts().slice(0, 1));
      const run = () => {
        const out = new Map<string, EditorOutput>();
        const before = fastEditor.runs;
        editor.runEditors(rows, out);
        expect(fastEditor.runs, 'the fast path ran').toBe(before + 1);
        return out;
      };
      const onePass = run();
      const passes: string[] = [];
      fastEditor.passTimestamps = (i, kernel) => {
        passes[i] = kernel;
        return undefined; // a pass of its own, without timestamps
      };
      let perDispatch: Map<string, EditorOutput>;
      const before = fastEditor.dispatches;
      try {
        perDispatch = run();
      } finally {
        fastEditor.passTimestamps = null;
      }
      expect(passes.length).toBe(fastEditor.dispatches - before);
      // lowRank's name carries its row block (':r32' for this edit's stacked rows).
      expect(new Set(passes.map((k) => k.replace(/:r\d+$/, '')))).toEqual(new Set(['normalise', 'lowRank', 'sum', 'residual', 'final']));
      for (const n of editor.weightNames) {
        for (const k of ['xTilde', 'deltaTilde'] as const) {
          expect(Array.from(await perDispatch.get(n)![k].data()), `${n} ${k}`).toEqual(Array.from(await onePass.get(n)![k].data()));
        }
      }
      disposeAll(onePass, perDispatch);
      disposeRows(rows);
    });

    it('a kept plan (same signature, new rows) matches the tfjs path and remakes only the bind groups of fresh tensors', async () => {
      const { rows } = await editor.captureRows(m.model, facts().slice(0, 1));
      const first = editBoth(editor, rows); // makes (or refreshes) the plan of this signature
      disposeAll(first.fast, first.ref);
      // Other values, same shapes: the kept scratch must carry nothing over from the first call.
      const other = new Map([...rows].map(([n, r]) => [n, { x: tf.mul(r.x, 1.5) as tf.Tensor2D, delta: tf.mul(r.delta, -0.5) as tf.Tensor2D, keep: tf.clone(r.keep) }]));
      const [created, reused, dispatches] = [gpuPlans.created, gpuPlans.reused, fastEditor.dispatches];
      const { fast, ref } = editBoth(editor, other);
      const n = fastEditor.dispatches - dispatches;
      expect(gpuPlans.created - created + gpuPlans.reused - reused).toBe(n);
      // Only 'normalise' (new rows) and 'final' (new outputs) can need a new bind group: 2 per weight.
      expect(gpuPlans.created - created).toBeLessThanOrEqual(2 * editor.weightNames.length);
      expect(gpuPlans.reused - reused).toBeGreaterThanOrEqual(n - 2 * editor.weightNames.length);
      await expectSameOutputs(editor, fast, ref, other);
      // Without reuse (a fresh plan, destroyed after the call): the very same numbers.
      gpuPlans.reuse = false;
      const fresh = new Map<string, EditorOutput>();
      try {
        editor.runEditors(other, fresh);
      } finally {
        gpuPlans.reuse = true;
      }
      for (const name of editor.weightNames) {
        expect(await fresh.get(name)!.xTilde.data(), name).toEqual(await fast.get(name)!.xTilde.data());
        expect(await fresh.get(name)!.deltaTilde.data(), name).toEqual(await fast.get(name)!.deltaTilde.data());
      }
      disposeAll(fast, ref, fresh);
      disposeRows(other);
      disposeRows(rows);
    });

    it('a multi-fact edit with dropped rows: x̃, δ̃, ΔW, kept rows and post-edit logits', async () => {
      const fs = facts();
      const { rows } = await editor.captureRows(m.model, fs);
      dropSomeRows(rows, editor.weightNames);
      const { fast, ref } = editBoth(editor, rows);
      await expectSameOutputs(editor, fast, ref, rows);
      disposeAll(fast, ref);
      const post = await postEditLogitsBoth(editor, m, rows, fs.length, [...fs[0].promptIds, ...fs[0].targetIds]);
      expect(post.fast.kept).toBe(post.ref.kept);
      expect(post.fast.kept).toBeLessThan(rows.get(editor.weightNames[0])!.x.shape[0]);
      expect(relativeArrayError(post.fast.logits, post.ref.logits)).toBeLessThan(TOL);
      disposeRows(rows);
    });

    it('fails the edit, leaving the model unchanged, when WebGPU rejects the fast phase', async () => {
      // A rejected dispatch leaves x̃/δ̃ wrong but possibly finite, so the finite check would not catch it. Inject the
      // error WebGPU would report (the next popErrorScope, which is the fast editor's) and check the edit refuses.
      const { rows } = await editor.captureRows(m.model, facts().slice(0, 1));
      const name = editor.weightNames[0];
      const before = await m.model.readWeight(name);
      const device = activeWebGPUBackend()!.device;
      const real = device.popErrorScope;
      let injected = 0;
      device.popErrorScope = async function (this: GPUDevice) {
        device.popErrorScope = real;
        await real.call(device);
        injected++;
        return { message: 'injected by the test' } as GPUError;
      };
      try {
        await expect(editor.editFromRows(m.model, rows, 1)).rejects.toThrow(/fast editor: WebGPU validation error: injected/);
      } finally {
        device.popErrorScope = real;
      }
      expect(injected).toBe(1);
      expect(await m.model.readWeight(name)).toEqual(before);
      // and the next edit works again
      const r = await editor.editFromRows(m.model, rows, 1);
      expect(await m.model.readWeight(name)).not.toEqual(before);
      revertChanges(m.model, r.changes);
      disposeChanges(r.changes);
      disposeRows(rows);
    });

    it('keeps no tensors beyond its outputs', async () => {
      const { rows } = await editor.captureRows(m.model, facts().slice(0, 1));
      const before = tf.memory().numTensors;
      const out = new Map<string, EditorOutput>();
      editor.runEditors(rows, out);
      expect(tf.memory().numTensors).toBe(before + 2 * editor.weightNames.length);
      disposeAll(out);
      disposeRows(rows);
    });
  });
}

/**
 * tiny-gpt2 with a synthetic rank-13 editor of two c_fc weights (one editor: their rows stack) and one c_proj.
 * Rank 13: the t·Uᵀ products have K = 13, one unrolled step of 8 and a tail of 5; h·Vᵀ has K = D = 160.
 */
function tinyModelAndEditor(seed: number): { model: () => LoadedModel; editor: () => MendEditor } {
  let m: LoadedModel;
  let editor: MendEditor;
  beforeAll(async () => {
    await useNodeWebGPU();
    m = await loadModel(localSource(`${ROOT}tests/fixtures/tiny-gpt2`));
    const weights = ['transformer.h.0.mlp.c_fc.weight', 'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight'];
    const files = syntheticEditorFiles(m.model, weights, { rank: 13, seed });
    editor = MendEditor.fromFiles(files.config, files.weights, m.model);
  });
  afterAll(() => {
    editor?.dispose();
    m?.model.dispose();
  });
  return { model: () => m, editor: () => editor };
}

/**
 * runEditors on the fast path with the fastEditor switch `key` set to `on` (back to its default, true, after), and
 * the kernel of every dispatch, seen through the per-pass profile hook (which records bit-identical results).
 */
function runSwitched(editor: MendEditor, rows: Map<string, CapturedRows>, key: 'unrollK' | 'wideRows', on: boolean): { out: Map<string, EditorOutput>; kernels: string[] } {
  const out = new Map<string, EditorOutput>();
  const kernels: string[] = [];
  fastEditor[key] = on;
  fastEditor.passTimestamps = (i, kernel) => {
    kernels[i] = kernel;
    return undefined;
  };
  const before = fastEditor.runs;
  try {
    editor.runEditors(rows, out);
  } finally {
    fastEditor[key] = true;
    fastEditor.passTimestamps = null;
  }
  expect(fastEditor.runs, 'the fast path ran').toBe(before + 1);
  return { out, kernels };
}

describe('fast editor phase on webgpu (Dawn): lowRank unrolled by K_UNROLL (fastEditor.unrollK)', () => {
  const tiny = tinyModelAndEditor(3);

  it('gives the x̃ and δ̃ of one k step at a time, and of the tfjs path', async () => {
    const editor = tiny.editor();
    const { rows } = await editor.captureRows(tiny.model().model, [{ promptIds: [12, 45, 200, 7, 3], targetIds: [99, 150] }, { promptIds: [3, 88, 9], targetIds: [250] }]);
    const unrolled = runSwitched(editor, rows, 'unrollK', true);
    const plain = runSwitched(editor, rows, 'unrollK', false);
    const lowRanks = (ks: string[]) => new Set(ks.filter((k) => k.startsWith('lowRank')).map((k) => k.replace(/:r\d+$/, '')));
    expect(lowRanks(unrolled.kernels)).toEqual(new Set(['lowRank']));
    expect(lowRanks(plain.kernels)).toEqual(new Set(['lowRank:plain']));
    for (const n of editor.weightNames) {
      for (const k of ['xTilde', 'deltaTilde'] as const) {
        // Each accumulator sums in k order either way.
        expect(relativeArrayError(await unrolled.out.get(n)![k].data(), await plain.out.get(n)![k].data()), `${n} ${k}`).toBeLessThan(1e-6);
      }
    }
    const { fast, ref } = editBoth(editor, rows);
    await expectSameOutputs(editor, fast, ref, rows);
    disposeAll(unrolled.out, plain.out, fast, ref);
    disposeRows(rows);
  });
});

describe('fast editor phase on webgpu (Dawn): lowRank row blocks fitted to the stacked rows (fastEditor.wideRows)', () => {
  // Two c_fc weights share an editor (their rows stack), c_proj has its own: two row counts per edit.
  const tiny = tinyModelAndEditor(5);

  const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => (seed * 37 + i * 11) % 290 + 1);
  // Tokens per weight 6, 21 and 45: c_fc's stacked rows 12, 42, 90 (one 16-row block; one 48-row block; one full
  // 64-row block plus a partial one), c_proj's 6, 21, 45 (16, 32 and 48 rows).
  const edits: Array<[string, Array<{ promptIds: number[]; targetIds: number[] }>, string[]]> = [
    ['6 tokens', [{ promptIds: ids(5, 1), targetIds: ids(1, 2) }], ['lowRank']],
    ['21 tokens', [{ promptIds: ids(12, 3), targetIds: ids(2, 4) }, { promptIds: ids(6, 5), targetIds: ids(1, 6) }], ['lowRank:r32', 'lowRank:r48']],
    ['45 tokens', [1, 2, 3].map((f) => ({ promptIds: ids(13, 7 + f), targetIds: ids(2, 9 + f) })), ['lowRank:r48', 'lowRank:r64']],
  ];
  for (const [label, facts, kernels] of edits) {
    it(`${label}: the same x̃ and δ̃ as 16-row blocks and as the tfjs path, with the expected row blocks`, async () => {
      const editor = tiny.editor();
      const { rows } = await editor.captureRows(tiny.model().model, facts);
      const wide = runSwitched(editor, rows, 'wideRows', true);
      const narrow = runSwitched(editor, rows, 'wideRows', false);
      const lowRanks = (ks: string[]) => [...new Set(ks.filter((k) => k.startsWith('lowRank')))].sort();
      expect(lowRanks(wide.kernels)).toEqual(kernels);
      expect(lowRanks(narrow.kernels)).toEqual(['lowRank']);
      for (const n of editor.weightNames) {
        for (const k of ['xTilde', 'deltaTilde'] as const) {
          // Other splits of K, so another summation order: equal to float rounding.
          expect(relativeArrayError(await wide.out.get(n)![k].data(), await narrow.out.get(n)![k].data()), `${n} ${k}`).toBeLessThan(1e-5);
        }
      }
      const { fast, ref } = editBoth(editor, rows);
      await expectSameOutputs(editor, fast, ref, rows);
      disposeAll(wide.out, narrow.out, fast, ref);
      disposeRows(rows);
    });
  }
});
