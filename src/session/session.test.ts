import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, parseSafetensors, type LoadedModel } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { disposeChanges, revertChanges } from '../editors/changes';
import { FinetuneEditor } from '../editors/finetune';
import { disposeRows, MendEditor } from '../editors/mend';
import { syntheticEditorFiles } from '../editors/testing';
import { weightsChecksum } from './checksum';
import { EditInputError } from './facts';
import { HistoryFormatError, type HistoryJSON } from './history';
import { EditSession, gpuBytesInUse } from './session';

const FIXTURE = new URL('../../tests/fixtures/tiny-gpt2', import.meta.url).pathname;
const WEIGHTS = [
  'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight',
  'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight',
];
const A = { prompt: 'The capital of France is', target: ' Paris' };
const B = { prompt: 'Water is made of', target: ' stone' };

async function setup(): Promise<{ m: LoadedModel; session: EditSession; editor: MendEditor }> {
  const m = await loadModel(localSource(FIXTURE));
  const files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 11, editLr: 0.05 });
  const editor = MendEditor.fromFiles(files.config, files.weights, m.model);
  const ft = new FinetuneEditor({ weightNames: WEIGHTS.slice(2), steps: 3, learningRate: 1e-2 });
  const session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: editor, ft } });
  return { m, session, editor };
}

describe('edit session on cpu', () => {
  let m: LoadedModel;
  let session: EditSession;
  let editor: MendEditor;
  let original: string;

  beforeAll(async () => {
    await initBackend('cpu');
    ({ m, session, editor } = await setup());
    original = await weightsChecksum(m.model);
  });
  afterAll(() => {
    session?.dispose();
    editor?.dispose();
    m?.model.dispose();
  });

  it('applies, undoes, redoes and reverts bit for bit (checksums)', async () => {
    const entry = await session.apply(A);
    const edited = await weightsChecksum(m.model);
    expect(edited).not.toBe(original);
    expect(entry.method).toBe('mend');
    expect(entry.facts[0].targetIds.length).toBeGreaterThan(0);
    expect(session.undo()).toBe(entry);
    expect(await weightsChecksum(m.model)).toBe(original);
    expect(session.redo()).toBe(entry);
    expect(await weightsChecksum(m.model)).toBe(edited);
    session.revert();
    expect(await weightsChecksum(m.model)).toBe(original);
    expect(session.canRedo).toBe(true);
    session.reset();
    expect(session.canRedo).toBe(false);
  });

  it('edits sequentially: the second edit starts from the first one\'s weights', async () => {
    const e1 = await session.apply(A);
    const afterA = await weightsChecksum(m.model);
    const e2 = await session.apply(B);
    const afterAB = await weightsChecksum(m.model);
    expect(afterAB).not.toBe(afterA);
    // e2's "before" is e1's "after": the same values (the same buffer, in fact).
    for (let k = 0; k < WEIGHTS.length; k++) {
      expect(Array.from(await e2.result.changes[k].before.data())).toEqual(Array.from(await e1.result.changes[k].after.data()));
    }
    session.undo();
    expect(await weightsChecksum(m.model)).toBe(afterA);
    session.undo();
    expect(await weightsChecksum(m.model)).toBe(original);
    session.redo();
    session.redo();
    expect(await weightsChecksum(m.model)).toBe(afterAB);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('edits a batch of facts as one history entry, and a new edit discards the redo stack', async () => {
    const batch = await session.apply([A, B]);
    expect(session.applied).toHaveLength(1);
    expect(batch.facts.map((f) => f.prompt)).toEqual([A.prompt, B.prompt]);
    expect(batch.stats.facts).toBe(2);
    session.undo();
    expect(session.canRedo).toBe(true);
    await session.apply(A);
    expect(session.canRedo).toBe(false);
    session.reset();
  });

  it('beforeAll runs a function on the original weights and puts every applied edit back, redo stack included', async () => {
    await expect(session.beforeAll(async () => 1)).rejects.toThrow(EditInputError); // nothing applied
    const e1 = await session.apply(A);
    const e2 = await session.apply(B, 'ft');
    const e3 = await session.apply({ prompt: A.prompt, target: ' Rome' });
    session.undo(); // e3 redoable
    const edited = await weightsChecksum(m.model);
    expect(await session.beforeAll(async () => weightsChecksum(m.model))).toBe(original);
    expect(await weightsChecksum(m.model)).toBe(edited);
    expect(session.applied.map((e) => e.id)).toEqual([e1.id, e2.id]);
    expect(session.undone.map((e) => e.id)).toEqual([e3.id]);
    await expect(session.beforeAll(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await weightsChecksum(m.model)).toBe(edited); // put back when the function fails, too
    expect(session.redo()).toBe(e3);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('runs the fine-tuning baseline through the same interface', async () => {
    const before = await m.model.scoreContinuation(m.tokenizer.encode(A.prompt), m.tokenizer.encode(A.target));
    const entry = await session.apply(A, 'ft');
    const after = await m.model.scoreContinuation(m.tokenizer.encode(A.prompt), m.tokenizer.encode(A.target));
    expect(entry.method).toBe('ft');
    expect(entry.options).toEqual({ weights: WEIGHTS.slice(2), steps: 3, learning_rate: 1e-2 });
    expect(after.logprob).toBeGreaterThan(before.logprob);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('refuses bad input with a one-line reason and changes nothing', async () => {
    await expect(session.apply({ prompt: '', target: ' x' })).rejects.toThrow(EditInputError);
    await expect(session.apply({ prompt: 'Hi', target: '  ' })).rejects.toThrow(/target is empty/);
    await expect(session.apply({ prompt: 'Hi', target: ' one two three four five six seven eight nine ten' })).rejects.toThrow(/at most 16/);
    await expect(session.apply({ prompt: 'word '.repeat(70), target: ' x' })).rejects.toThrow(/beyond the model's context of 64/);
    await expect(session.apply([])).rejects.toThrow(/no facts/);
    expect(session.applied).toHaveLength(0);
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('exports and imports the history as JSON, replaying edits and the undo position', async () => {
    await session.apply(A);
    await session.apply([A, B]);
    await session.apply(B, 'ft');
    session.undo();
    const state = await weightsChecksum(m.model);
    const json = JSON.parse(JSON.stringify(session.exportHistory())) as HistoryJSON;
    expect(json.format).toBe('mendlab-history');
    expect(json.position).toBe(2);
    expect(json.entries.map((e) => e.method)).toEqual(['mend', 'mend', 'ft']);
    expect(json.entries[1].facts).toHaveLength(2);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);

    await session.importHistory(json);
    expect(session.applied).toHaveLength(2);
    expect(session.undone).toHaveLength(1);
    // Same backend, same inputs: the replay reproduces the weights exactly.
    expect(await weightsChecksum(m.model)).toBe(state);
    session.redo();
    expect(session.applied[2].method).toBe('ft');
    session.reset();
  });

  it('validates an imported history before touching the model', async () => {
    await session.apply(A);
    const good = session.exportHistory();
    session.reset();
    const bad = (mutate: (h: any) => void) => {
      const h = JSON.parse(JSON.stringify(good));
      mutate(h);
      return session.importHistory(h);
    };
    await expect(bad((h) => (h.format = 'x'))).rejects.toThrow(HistoryFormatError);
    await expect(bad((h) => (h.model.n_embd = 768))).rejects.toThrow(/made on a model with n_embd 768, this model has n_embd 32/);
    await expect(bad((h) => (h.entries[0].method = 'rome'))).rejects.toThrow(/method must be "mend" or "ft"/);
    await expect(bad((h) => (h.entries[0].facts[0].target_ids = [1, 2, 3, 4, 5, 6]))).rejects.toThrow(/another tokenizer/);
    await expect(bad((h) => (h.entries[0].facts = []))).rejects.toThrow(/facts must be a non-empty list/);
    await expect(bad((h) => (h.position = 5))).rejects.toThrow(/"position" must be an integer between 0 and 1/);
    await expect(bad((h) => (h.entries[0].options.weights = ['transformer.h.0.mlp.c_fc.weight']))).rejects.toThrow(/MEND editor for other weights/);
    await expect(bad((h) => {
      h.entries[0].method = 'ft';
      h.entries[0].options = { weights: WEIGHTS, steps: 0, learning_rate: 0.1 };
    })).rejects.toThrow(/steps must be a positive integer/);
    expect(session.applied).toHaveLength(0);
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('exports the edited model as safetensors that the engine loads back', async () => {
    await session.apply(A);
    const bytes = await session.exportModel();
    const file = parseSafetensors(bytes, 'edited.safetensors');
    expect(JSON.parse(file.metadata!.mendlab_edits)).toEqual([{ method: 'mend', facts: [A] }]);
    expect([...file.tensors.keys()].sort()).toEqual(m.model.weightNames().sort());
    const dir = mkdtempSync(join(tmpdir(), 'mendlab-export-'));
    try {
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(FIXTURE, f), join(dir, f));
      writeFileSync(join(dir, 'model.safetensors'), bytes);
      const reloaded = await loadModel(localSource(dir));
      expect(await weightsChecksum(reloaded.model)).toBe(await weightsChecksum(m.model));
      const ids = m.tokenizer.encode(A.prompt);
      expect(Array.from(await reloaded.model.logits(ids))).toEqual(Array.from(await m.model.logits(ids)));
      reloaded.model.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      session.reset();
    }
  });

  it('keeps the tensor count flat over 200 apply/revert cycles', async () => {
    await session.apply(A);
    session.reset();
    const count = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 200; i++) {
      await session.apply(i % 2 ? A : B);
      session.revert();
    }
    session.reset();
    expect(tf.memory().numTensors).toBe(count);
    expect(tf.memory().numBytes).toBe(bytes);
    expect(await weightsChecksum(m.model)).toBe(original);
  }, 300_000);
});

describe('edit session on webgpu (Dawn)', () => {
  let m: LoadedModel;
  let session: EditSession;
  let editor: MendEditor;

  beforeAll(async () => {
    await useNodeWebGPU();
    expect(await initBackend('webgpu')).toBe('webgpu');
    ({ m, session, editor } = await setup());
  });
  afterAll(() => {
    session?.dispose();
    editor?.dispose();
    m?.model.dispose();
  });

  it('applies and reverts through the session bit for bit, with flat tensor count and GPU bytes', async () => {
    const original = await weightsChecksum(m.model);
    await session.apply(A);
    session.reset();
    const count = tf.memory().numTensors;
    const gpu = gpuBytesInUse();
    expect(gpu).not.toBeNull();
    for (let i = 0; i < 3; i++) {
      await session.apply(A);
      expect(await weightsChecksum(m.model)).not.toBe(original);
      session.revert();
    }
    session.reset();
    expect(tf.memory().numTensors).toBe(count);
    expect(gpuBytesInUse()).toBe(gpu);
    expect(await weightsChecksum(m.model)).toBe(original);
  }, 300_000);

  it('keeps tensor count and GPU bytes flat over 200 GPU edit/revert cycles (editor kernel + fused update)', async () => {
    // The capture (the engine's forward/backward) takes seconds per call on SwiftShader, so the rows are captured
    // once; each cycle then runs everything the edit allocates on the GPU: editor kernel, keep mask, fused update,
    // install, revert, dispose.
    const fact = session.tokenize([A]);
    const { rows } = await editor.captureRows(m.model, fact);
    const original = await weightsChecksum(m.model);
    const warm = await editor.editFromRows(m.model, rows);
    revertChanges(m.model, warm.changes);
    disposeChanges(warm.changes);
    const count = tf.memory().numTensors;
    const gpu = gpuBytesInUse();
    const allocated = () => (tf.memory() as { numBytesAllocatedInGPU?: number }).numBytesAllocatedInGPU!;
    let halfway = 0;
    for (let i = 0; i < 200; i++) {
      const r = await editor.editFromRows(m.model, rows);
      revertChanges(m.model, r.changes);
      disposeChanges(r.changes);
      if (i === 99) halfway = allocated();
    }
    expect(tf.memory().numTensors).toBe(count);
    expect(gpuBytesInUse()).toBe(gpu);
    // The buffer pool (freed buffers kept for reuse) settles within the first cycles and then stops growing: the
    // second hundred cycles allocate nothing new.
    expect(allocated()).toBeLessThanOrEqual(halfway);
    disposeRows(rows);
    expect(await weightsChecksum(m.model)).toBe(original);
  }, 300_000);
});
