// Edits that go wrong: an editor (or fine-tuning run) that would put NaN/Inf into the weights is refused before
// anything is installed; an edit that wrecks the model's held-out perplexity is flagged (or refused, if asked);
// and revert still restores the original weights bit for bit.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../../src/model';
import { EditRefusedError, FinetuneEditor, MendEditor } from '../../src/editors';
import { syntheticEditorFiles } from '../../src/editors/testing';
import { DEFAULT_MAX_PERPLEXITY_RATIO, EditSession, weightsChecksum } from '../../src/session';

const FIXTURE = join(new URL('../fixtures/', import.meta.url).pathname, 'tiny-gpt2');
const WEIGHTS = ['transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight'];
const FACT = { prompt: 'The capital of France is', target: ' Paris' };

describe('edits that go wrong', () => {
  let m: LoadedModel;
  let original: string;
  const editors: MendEditor[] = [];
  const mend = (opts: Parameters<typeof syntheticEditorFiles>[2]) => {
    const f = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 3, ...opts });
    const e = MendEditor.fromFiles(f.config, f.weights, m.model);
    editors.push(e);
    return e;
  };

  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(FIXTURE));
    original = await weightsChecksum(m.model);
  });
  afterAll(() => {
    for (const e of editors) e.dispose();
    m?.model.dispose();
  });

  it('refuses a MEND edit that would produce NaN/Inf weights, before installing anything', async () => {
    const tensors = tf.memory().numTensors;
    for (const [lrScale, editLr] of [[1e30, 1e30], [3e38, 1]] as const) {
      const session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: mend({ lrScale, editLr }) } });
      const err = await session.apply(FACT).then(() => null, (e) => e);
      expect(err).toBeInstanceOf(EditRefusedError);
      expect((err as Error).message).toMatch(/refused: it would make "transformer\.h\.1\.mlp\.c_(fc|proj)\.weight" contain NaN or infinite values/);
      expect(session.applied).toHaveLength(0);
      expect(await weightsChecksum(m.model)).toBe(original);
      session.dispose();
    }
    editors.splice(0).forEach((e) => e.dispose());
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('refuses a fine-tuning run that diverges to NaN/Inf and restores the weights', async () => {
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 4, learningRate: 1e38 });
    const session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { ft } });
    const err = await session.apply(FACT, 'ft').then(() => null, (e) => e);
    expect(err).toBeInstanceOf(EditRefusedError);
    expect((err as Error).message).toMatch(/NaN or infinite values/);
    expect(session.applied).toHaveLength(0);
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('flags an edit whose held-out perplexity jumps, keeps a benign one unflagged, and reverts bit for bit', async () => {
    const benign = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: mend({ editLr: 1e-4 }) } });
    const ok = await benign.apply(FACT);
    expect(ok.damage!.threshold).toBe(DEFAULT_MAX_PERPLEXITY_RATIO);
    expect(ok.damage!.ratio).toBeGreaterThan(0.9);
    expect(ok.damage!.ratio).toBeLessThan(1.1);
    expect(ok.damage!.flagged).toBe(false);
    benign.reset();

    // a finite but far too large step: the weights stay finite, the model is wrecked
    const session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: mend({ editLr: 2e4, uScale: 1 }) } });
    const bad = await session.apply(FACT);
    const d = bad.damage!;
    expect(Number.isFinite(d.perplexityAfter)).toBe(true);
    expect(d.ratio).toBeGreaterThan(DEFAULT_MAX_PERPLEXITY_RATIO);
    expect(d.flagged).toBe(true);
    for (const c of bad.result.changes) expect((await tf.all(tf.isFinite(c.after)).data())[0]).toBe(1);
    // the history keeps the report, and the next edit measures from this state
    const next = await session.apply({ prompt: 'Water is made of', target: ' stone' });
    expect(next.damage!.perplexityBefore).toBe(d.perplexityAfter);
    session.revert();
    expect(await weightsChecksum(m.model)).toBe(original);
    session.redo();
    expect(await weightsChecksum(m.model)).not.toBe(original);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);

    // the same edit with refuse: true is refused outright and nothing changes
    const strict = new EditSession({
      model: m.model, tokenizer: m.tokenizer, editors: { mend: editors[editors.length - 1] },
      damageCheck: { refuse: true },
    });
    const tensors = tf.memory().numTensors;
    const err = await strict.apply(FACT).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(EditRefusedError);
    expect((err as Error).message).toMatch(/refused: perplexity on held-out text went from [\d.]+ to [\d.e+]+ \(×[\d.e+]+, limit ×1\.5\)/);
    expect(strict.applied).toHaveLength(0);
    expect(await weightsChecksum(m.model)).toBe(original);
    expect(tf.memory().numTensors).toBe(tensors);

    // a threshold set high enough lets the same edit through unflagged: the factor is a real option
    const lax = new EditSession({
      model: m.model, tokenizer: m.tokenizer, editors: { mend: editors[editors.length - 1] },
      damageCheck: { maxPerplexityRatio: d.ratio * 2 },
    });
    expect((await lax.apply(FACT)).damage!.flagged).toBe(false);
    lax.reset();
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('validates the threshold option', () => {
    for (const bad of [1, 0.5, -2, NaN, Infinity]) {
      expect(() => new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: {}, damageCheck: { maxPerplexityRatio: bad } })).toThrow(/maxPerplexityRatio must be a finite number above 1/);
    }
  });
});

describe('a history import whose replay is refused', () => {
  it('leaves the session and its edits exactly as they were', async () => {
    await initBackend('cpu');
    const m = await loadModel(localSource(FIXTURE));
    const f = syntheticEditorFiles(m.model, WEIGHTS, { rank: 4, seed: 3, editLr: 1e-3 });
    const editor = MendEditor.fromFiles(f.config, f.weights, m.model);
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 3, learningRate: 1e-3 });
    const session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: editor, ft }, damageCheck: { refuse: true } });
    const original = await weightsChecksum(m.model);
    const a = await session.apply(FACT);
    const b = await session.apply({ prompt: 'Water is made of', target: ' stone' });
    session.undo(); // one applied, one waiting to be redone
    const edited = await weightsChecksum(m.model);
    const tensors = tf.memory().numTensors;

    // valid, but its second entry (fine-tuning the embeddings with a huge learning rate) wrecks the model: the damage
    // check refuses it during the replay
    const h = session.exportHistory();
    const wrecking = {
      ...h, position: 2,
      entries: [h.entries[0], { ...h.entries[0], method: 'ft', options: { weights: ['transformer.wte.weight'], steps: 3, learning_rate: 900 } }],
    };
    const err = await session.importHistory(JSON.stringify(wrecking)).then(() => null, (e) => e);
    expect(err).toBeInstanceOf(EditRefusedError);
    expect(session.applied).toEqual([a]);
    expect(session.undone).toEqual([b]);
    expect(await weightsChecksum(m.model)).toBe(edited);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(session.redo()).toBe(b);
    session.revert();
    expect(await weightsChecksum(m.model)).toBe(original);

    // and a good import still replaces the history
    await session.importHistory(h);
    expect(session.applied).toHaveLength(1);
    expect(session.undone).toHaveLength(1);
    session.dispose();
    editor.dispose();
    m.model.dispose();
  });
});
