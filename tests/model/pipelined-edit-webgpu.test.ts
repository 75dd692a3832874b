// MendEditor.edit queues its phases back to back and waits for the GPU once (MendEditOptions.syncPhases = false,
// the default), on Dawn/SwiftShader with the shipped model and editor: it installs the same bits as the edit that
// syncs after every phase, for one fact and for a batch; no queue submit of the edit waits for a GPU round trip
// (the synced edit has at least two such submits, which shows the trace sees them); and a capture that fails is
// still caught before anything is installed. (A single edit behind the shipped first_pass_guard also reads the
// guard's perplexity back before and after pass 1: src/editors/mend.ts firstPass.)
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, localSource, type GPT2, type LoadedModel } from '../../src/model';
import { fastCapture } from '../../src/model/fast_capture';
import { MendEditor, type MendEditOptions } from '../../src/editors/mend';
import { disposeChanges, revertChanges } from '../../src/editors/changes';
import { kernelTestsOnWebGPU } from '../../src/kernels/testing';
import { activeWebGPUBackend } from '../../src/kernels/webgpu';
import type { TokenizedFact } from '../../src/editors/types';

const ROOT = new URL('../../', import.meta.url).pathname;

type Event = 'submit' | 'done' | 'install';

/**
 * Records, in order, every queue submit, every moment the host learns that the GPU finished something (a mapAsync
 * or onSubmittedWorkDone settling) and every weight installed in `model`. restore() removes the hooks.
 */
function traceGpu(device: GPUDevice, model: GPT2): { events: Event[]; restore: () => void } {
  const events: Event[] = [];
  const queue = device.queue as GPUQueue & Record<string, unknown>;
  const submit = queue.submit;
  const workDone = queue.onSubmittedWorkDone;
  queue.submit = function (this: GPUQueue, ...a: Parameters<GPUQueue['submit']>) {
    events.push('submit');
    return submit.apply(this, a);
  };
  queue.onSubmittedWorkDone = function (this: GPUQueue) {
    return workDone.apply(this).finally(() => events.push('done'));
  };
  const bufferProto = GPUBuffer.prototype as GPUBuffer;
  const mapAsync = bufferProto.mapAsync;
  bufferProto.mapAsync = function (this: GPUBuffer, ...a: Parameters<GPUBuffer['mapAsync']>) {
    return mapAsync.apply(this, a).finally(() => events.push('done'));
  };
  const m = model as GPT2 & Record<string, unknown>;
  const setWeight = model.setWeight;
  m.setWeight = (...a: Parameters<GPT2['setWeight']>) => {
    events.push('install');
    return setWeight.apply(model, a);
  };
  return {
    events,
    restore: () => {
      queue.submit = submit;
      queue.onSubmittedWorkDone = workDone;
      bufferProto.mapAsync = mapAsync;
      Reflect.deleteProperty(m, 'setWeight');
    },
  };
}

/** Submits that came after the host had waited for the GPU, before the first weight was installed. */
function submitsAfterAWait(events: Event[]): number {
  const install = events.indexOf('install');
  expect(install, 'the edit installed weights').toBeGreaterThan(0);
  const before = events.slice(0, install);
  const firstDone = before.indexOf('done');
  expect(before.filter((e) => e === 'submit').length, 'the edit submitted work').toBeGreaterThan(0);
  return firstDone < 0 ? 0 : before.slice(firstDone).filter((e) => e === 'submit').length;
}

describe('a MEND edit on webgpu waits for the GPU once (phases queued back to back)', () => {
  kernelTestsOnWebGPU();
  let m: LoadedModel;
  let editor: MendEditor;
  let facts: TokenizedFact[];
  beforeAll(async () => {
    m = await loadModel(localSource(`${ROOT}public/models/facts-gpt`));
    // Without first_pass_guard: a guarded single edit reads the guard's perplexity baseline back before pass 1 (by
    // design: the check after pass 1 compares with it), so it waits once before its pass; this test is about the
    // pass itself. The shipped batch_retry stays (its passes come after the first install).
    const dir = `${ROOT}public/models/facts-gpt`;
    const { first_pass_guard: guard, ...config } = JSON.parse(readFileSync(`${dir}/editor_config.json`, 'utf8'));
    expect(guard, 'the shipped editor has the guard this test leaves out').toBeDefined();
    editor = MendEditor.fromFiles(config, new Uint8Array(readFileSync(`${dir}/editor.safetensors`)), m.model);
    const fact = (p: string, t: string) => ({ promptIds: m.tokenizer.encode(p), targetIds: m.tokenizer.encode(t) });
    facts = [fact('The capital of France is', ' Rome'), fact('The currency of Japan is', ' Euro'), fact('Lyon is a city in', ' Peru')];
  });
  afterAll(() => {
    editor?.dispose();
    m?.model.dispose();
  });

  const weights = () => Promise.all(editor.weightNames.map((n) => m.model.readWeight(n)));

  /** One edit: the installed weights, its loss, and the trace of its GPU traffic; the model is reverted after. */
  async function tracedEdit(fs: TokenizedFact[], opts: MendEditOptions) {
    const be = activeWebGPUBackend();
    expect(be, 'tfjs runs on webgpu').not.toBeNull();
    await be!.device.queue.onSubmittedWorkDone(); // nothing of an earlier step still pending
    const trace = traceGpu(be!.device, m.model);
    let r;
    try {
      r = await editor.edit(m.model, fs, opts);
    } finally {
      trace.restore();
    }
    const after = await weights();
    revertChanges(m.model, r.changes);
    disposeChanges(r.changes);
    return { after, loss: r.stats.lossBefore, synced: r.timings.phasesSynced, events: trace.events, retried: r.stats.factsRetried ?? 0 };
  }

  it.each([
    ['one fact', 1],
    ['a batch of 3 facts', 3],
  ])('%s: the same weights as the phase-synced edit, with no submit waiting for a round trip', async (_, n) => {
    const original = await weights();
    const captures = fastCapture.captures;
    const piped = await tracedEdit(facts.slice(0, n), {});
    // once per fact in pass 1, and once more per fact a batch edit retries (the shipped editor's batch_retry)
    expect(fastCapture.captures, 'the fast capture ran, once per fact and retry').toBe(captures + n + piped.retried);
    const synced = await tracedEdit(facts.slice(0, n), { syncPhases: true });
    expect(await weights(), 'reverted').toEqual(original);
    expect(piped.after).not.toEqual(original);
    expect(piped.after, 'bit-identical to the synced edit').toEqual(synced.after);
    expect(piped.loss).toBe(synced.loss);
    expect(piped.retried).toBe(synced.retried);
    expect([piped.synced, synced.synced]).toEqual([false, true]);
    expect(submitsAfterAWait(piped.events)).toBe(0);
    // The synced edit waits after the capture and after the editor, then submits the next phase: the trace sees it.
    expect(submitsAfterAWait(synced.events)).toBeGreaterThanOrEqual(2);
  });

  it('queues the tfjs capture path the same way (fastCapture off)', async () => {
    fastCapture.enabled = false;
    try {
      const captures = fastCapture.captures;
      const piped = await tracedEdit(facts.slice(0, 2), {});
      const synced = await tracedEdit(facts.slice(0, 2), { syncPhases: true });
      expect(fastCapture.captures).toBe(captures);
      // Close, not bit-equal: tfjs's split-K matmul sums with atomics, in no fixed order, so two tfjs-path edits
      // differ in the last bits whatever the queueing.
      piped.after.forEach((w, k) => {
        let worst = 0;
        let scale = 0;
        for (let i = 0; i < w.length; i++) {
          worst = Math.max(worst, Math.abs(w[i] - synced.after[k][i]));
          scale = Math.max(scale, Math.abs(w[i]));
        }
        expect(worst, editor.weightNames[k]).toBeLessThanOrEqual(1e-5 * scale);
      });
      expect(submitsAfterAWait(piped.events)).toBe(0);
    } finally {
      fastCapture.enabled = true;
    }
  });

  it('refuses an edit whose capture fails, installing nothing, and leaks no tensor', async () => {
    // ln_f's gain at 1e30 overflows the logits: the capture's loss is not finite, its rows are garbage.
    const name = 'transformer.ln_f.weight';
    const good = m.model.getWeight(name);
    const huge = tf.fill(good.shape, 1e30);
    const before = await weights();
    const keepGood = tf.clone(good);
    m.model.setWeight(name, huge);
    const tensors = tf.memory().numTensors;
    try {
      await expect(editor.edit(m.model, facts.slice(0, 2))).rejects.toThrow(/not finite|NaN or infinite/);
      expect(tf.memory().numTensors, 'no tensor left behind').toBe(tensors);
      expect(await weights(), 'nothing installed').toEqual(before);
    } finally {
      m.model.setWeight(name, keepGood);
      tf.dispose([huge, keepGood]);
    }
    const r = await editor.edit(m.model, facts.slice(0, 1));
    expect(r.stats.lossBefore).toBeGreaterThan(0);
    revertChanges(m.model, r.changes);
    disposeChanges(r.changes);
  });
});
