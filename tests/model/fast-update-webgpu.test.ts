// The fast WebGPU update phase (src/editors/fast_update.ts: every weight's W + c·X̃ᵀΔ̃ and its finite check in one
// command encoder, one read-back) against the tfjs path (rankUpdate + assertFiniteWeights, i.e. the same programs run
// by tfjs) on Dawn/SwiftShader: both widths' programs (vec4 and scalar), the finite flags (NaN, ±Inf, overflow to
// Inf) and which weight they name, a rejected dispatch, the whole edit of the shipped editor, and leaks. Every
// comparison checks the fast path really ran (its counter moved), so a silent fallback fails the test.
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, localSource, type LoadedModel } from '../../src/model';
import { fastUpdate, fastUpdatePhase, type FastUpdateItem } from '../../src/editors/fast_update';
import { disposeRows, MendEditor } from '../../src/editors/mend';
import { disposeChanges, EditRefusedError, revertChanges } from '../../src/editors/changes';
import { rankUpdate } from '../../src/kernels/rank_update';
import { kernelTestsOnWebGPU, seededTensor } from '../../src/kernels/testing';
import { activeWebGPUBackend, gpuPlans } from '../../src/kernels/webgpu';

const ROOT = new URL('../../', import.meta.url).pathname;

function item(inDim: number, outDim: number, rows: number, seed: number, c = -0.3): FastUpdateItem {
  return {
    w: seededTensor([inDim, outDim], seed) as tf.Tensor2D,
    xTilde: seededTensor([rows, inDim], seed + 1) as tf.Tensor2D,
    deltaTilde: seededTensor([rows, outDim], seed + 2) as tf.Tensor2D,
    c,
  };
}
const disposeItems = (items: FastUpdateItem[]) => tf.dispose(items.flatMap((it) => [it.w, it.xTilde, it.deltaTilde]));

function runFast(items: FastUpdateItem[]) {
  const before = fastUpdate.runs;
  const r = fastUpdatePhase(items);
  expect(r, 'the fast path applies').not.toBeNull();
  expect(fastUpdate.runs).toBe(before + 1);
  return r!;
}

/** Replaces value [row, col] of a tensor (a new tensor; the old one is disposed). */
function withValue(t: tf.Tensor2D, row: number, col: number, v: number): tf.Tensor2D {
  const data = t.dataSync().slice();
  data[row * t.shape[1] + col] = v;
  t.dispose();
  return tf.tensor2d(data, t.shape);
}

describe('fast update phase on webgpu (Dawn) runs the tfjs programs in one encoder', () => {
  kernelTestsOnWebGPU();

  it('gives the same W′ as rankUpdate for the vec4 and the scalar program, and finds no bad value', async () => {
    // widths: multiples of 4 (vec4 program, including one past a 64-column tile) and odd ones (scalar program)
    const items = [item(20, 132, 5, 1), item(33, 7, 3, 10, 2.5), item(64, 64, 17, 20), item(5, 3, 1, 30)];
    const r = runFast(items);
    expect(await r.firstNonFinite).toBe(-1);
    for (const [i, it] of items.entries()) {
      const ref = rankUpdate(it.w, it.xTilde, it.deltaTilde, it.c);
      expect(r.after[i].shape).toEqual(it.w.shape);
      // The same WGSL, the same order of summation: the same bits.
      expect(Array.from(await r.after[i].data()), `item ${i}`).toEqual(Array.from(await ref.data()));
      ref.dispose();
    }
    tf.dispose(r.after);
    disposeItems(items);
  });

  it('keeps its plan: a repeated update makes no bind groups, and two updates in flight at once both read their own flags', async () => {
    const items = [item(20, 12, 4, 100), item(12, 20, 4, 110)];
    const refs = items.map((it) => rankUpdate(it.w, it.xTilde, it.deltaTilde, it.c));
    const check = async (r: ReturnType<typeof runFast>) => {
      expect(await r.firstNonFinite).toBe(-1);
      for (const [i, ref] of refs.entries()) expect(Array.from(await r.after[i].data())).toEqual(Array.from(await ref.data()));
      tf.dispose(r.after);
    };
    const first = gpuPlans.created;
    await check(runFast(items)); // makes the plan (no other test updates 2 weights of 32 rows in all)
    expect(gpuPlans.created - first, 'an update and a finite check per weight').toBe(4);
    await check(runFast(items));
    const created = gpuPlans.created;
    await check(runFast(items)); // same weights, and tfjs hands back the W′ buffers the last two calls freed
    expect(gpuPlans.created - created, 'every bind group reused').toBe(0);
    // Two at once: the second finds the plan's read-back buffer taken and reads through its own.
    const [a, b] = [runFast(items), runFast(items)];
    await check(a);
    await check(b);
    // And a spoiled weight right after still names the right weight (the flags are rewritten every call).
    const spoiled = [items[0], { ...items[1], w: withValue(seededTensor([12, 20], 110) as tf.Tensor2D, 3, 3, NaN) }];
    const r = runFast(spoiled);
    expect(await r.firstNonFinite).toBe(1);
    tf.dispose([...r.after, spoiled[1].w, ...refs]);
    disposeItems(items);
  });

  it('names the first weight whose W′ has a NaN, an Inf, or overflows to Inf', async () => {
    const cases: Array<[string, (items: FastUpdateItem[]) => void, number]> = [
      ['NaN in X̃ of the third weight', (its) => void (its[2].xTilde = withValue(its[2].xTilde, 1, 4, NaN)), 2],
      ['-Inf in W of the second weight', (its) => void (its[1].w = withValue(its[1].w, 6, 0, -Infinity)), 1],
      ['a step that overflows float32 in the last row of the first weight', (its) => {
        its[0].xTilde = withValue(its[0].xTilde, 0, 19, 3e38);
        its[0].deltaTilde = withValue(its[0].deltaTilde, 0, 2, 3e38);
      }, 0],
    ];
    for (const [label, spoil, bad] of cases) {
      const items = [item(20, 12, 4, 40), item(12, 20, 4, 50), item(20, 12, 4, 60)];
      spoil(items);
      const r = runFast(items);
      expect(await r.firstNonFinite, label).toBe(bad);
      tf.dispose(r.after);
      disposeItems(items);
    }
  });

  it('rejects when WebGPU rejects its work', async () => {
    const device = activeWebGPUBackend()!.device;
    const real = device.popErrorScope;
    device.popErrorScope = async function (this: GPUDevice) {
      device.popErrorScope = real;
      await real.call(device);
      return { message: 'injected by the test' } as GPUError;
    };
    const items = [item(8, 8, 2, 70)];
    try {
      const r = runFast(items);
      await expect(r.firstNonFinite).rejects.toThrow(/fast update: WebGPU validation error: injected/);
      tf.dispose(r.after);
    } finally {
      device.popErrorScope = real;
      disposeItems(items);
    }
  });

  it('leaves zero-row edits and other backends to the tfjs path, and keeps no tensors beyond W′', async () => {
    const empty = { ...item(4, 4, 1, 80), xTilde: tf.zeros([0, 4]) as tf.Tensor2D, deltaTilde: tf.zeros([0, 4]) as tf.Tensor2D };
    expect(fastUpdatePhase([empty])).toBeNull();
    disposeItems([empty]);
    fastUpdate.enabled = false;
    const items = [item(8, 8, 2, 90)];
    try {
      expect(fastUpdatePhase(items)).toBeNull();
    } finally {
      fastUpdate.enabled = true;
    }
    const before = tf.memory().numTensors;
    const r = runFast(items);
    await r.firstNonFinite;
    expect(tf.memory().numTensors).toBe(before + 1);
    tf.dispose(r.after);
    disposeItems(items);
  });

  describe('whole edit, shipped editor (public/models/facts-gpt)', () => {
    let m: LoadedModel;
    let editor: MendEditor;
    beforeAll(async () => {
      m = await loadModel(localSource(`${ROOT}public/models/facts-gpt`));
      editor = await MendEditor.load(localSource(`${ROOT}public/models/facts-gpt`), m.model);
    });
    afterAll(() => {
      editor?.dispose();
      m?.model.dispose();
    });

    it('installs the same weights on both paths, and refuses a non-finite edit on the fast path, leaving the model as it was', async () => {
      const facts = [{ promptIds: m.tokenizer.encode('The capital of France is'), targetIds: m.tokenizer.encode(' Rome') }];
      const { rows } = await editor.captureRows(m.model, facts);
      const weights = async () => Promise.all(editor.weightNames.map((n) => m.model.readWeight(n)));
      const original = await weights();
      const runs = fastUpdate.runs;
      const fast = await editor.editFromRows(m.model, rows, 1);
      expect(fastUpdate.runs).toBe(runs + 1);
      const fastWeights = await weights();
      revertChanges(m.model, fast.changes);
      disposeChanges(fast.changes);
      fastUpdate.enabled = false;
      try {
        const ref = await editor.editFromRows(m.model, rows, 1);
        expect(fastUpdate.runs).toBe(runs + 1);
        expect(await weights()).toEqual(fastWeights);
        revertChanges(m.model, ref.changes);
        disposeChanges(ref.changes);
      } finally {
        fastUpdate.enabled = true;
      }
      expect(await weights()).toEqual(original);
      expect(fastWeights).not.toEqual(original);

      // An x row that overflows the update: refused by name, nothing installed.
      const name = editor.weightNames[3];
      const r = rows.get(name)!;
      const spoilt = new Map(rows);
      spoilt.set(name, { ...r, x: tf.mul(r.x, 1e38) as tf.Tensor2D });
      await expect(editor.editFromRows(m.model, spoilt, 1)).rejects.toThrow(EditRefusedError);
      await expect(editor.editFromRows(m.model, spoilt, 1)).rejects.toThrow(new RegExp(`"${name.replace(/\./g, '\\.')}" contain NaN or infinite`));
      expect(fastUpdate.runs).toBe(runs + 3);
      expect(await weights()).toEqual(original);
      spoilt.get(name)!.x.dispose();
      disposeRows(rows);
    });
  });
});
