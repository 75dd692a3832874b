import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../model';
import { lastBlocksMlp, loadEditors, requireMend } from './load';
import { syntheticEditorFiles } from './testing';

const FIXTURE = new URL('../../tests/fixtures/tiny-gpt2', import.meta.url).pathname;
const MEND_WEIGHTS = ['transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight'];

describe('loadEditors: both methods for a model folder', () => {
  let m: LoadedModel;
  const dirs: string[] = [];
  const folder = (files: Record<string, string | Uint8Array>) => {
    const d = mkdtempSync(join(tmpdir(), 'mendlab-editors-'));
    dirs.push(d);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors']) copyFileSync(join(FIXTURE, f), join(d, f));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(d, name), content);
    return localSource(d);
  };

  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(FIXTURE));
  });
  afterAll(() => {
    m?.model.dispose();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('without an editor: no MEND (with the reason), fine-tuning on the last blocks\' MLPs with the defaults', async () => {
    const e = await loadEditors(folder({}), m.model);
    expect(e.mend).toBeNull();
    expect(e.mendMissing).toMatch(/not found beside the model/);
    expect(() => requireMend(e)).toThrow(/editor_config.json: not found beside the model/);
    expect(e.ft.weightNames).toEqual(lastBlocksMlp(m.model));
    expect(lastBlocksMlp(m.model)).toEqual([
      'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight',
      'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight',
    ]);
    expect([e.ft.steps, e.ft.learningRate]).toEqual([20, 1e-3]);
  });

  it('with an editor: MEND loaded, fine-tuning on the same weights; eval.json ft_config and options take precedence', async () => {
    const files = syntheticEditorFiles(m.model, MEND_WEIGHTS);
    const base = { 'editor_config.json': JSON.stringify(files.config), 'editor.safetensors': files.weights };
    const e = await loadEditors(folder(base), m.model);
    expect(requireMend(e).weightNames).toEqual(MEND_WEIGHTS);
    expect(e.ft.weightNames).toEqual(MEND_WEIGHTS);
    e.mend!.dispose();

    const evalJson = JSON.stringify({ ft_config: { steps: 7, lr: 3e-4, optimizer: 'Adam', weights: ['transformer.h.0.mlp.c_fc.weight'] } });
    const withEval = await loadEditors(folder({ ...base, 'eval.json': evalJson }), m.model);
    expect(withEval.ft.weightNames).toEqual(['transformer.h.0.mlp.c_fc.weight']);
    expect([withEval.ft.steps, withEval.ft.learningRate]).toEqual([7, 3e-4]);
    withEval.mend!.dispose();

    const overridden = await loadEditors(folder({ 'eval.json': evalJson }), m.model, { ftSteps: 2, ftLearningRate: 0.5, skipMend: true });
    expect(overridden.mend).toBeNull();
    expect([overridden.ft.steps, overridden.ft.learningRate]).toEqual([2, 0.5]);
  });

  it('refuses an editor that does not fit the model instead of ignoring it', async () => {
    const files = syntheticEditorFiles(m.model, MEND_WEIGHTS);
    const config = { ...files.config, model: { ...(files.config.model as object), n_embd: 99 } };
    await expect(loadEditors(folder({ 'editor_config.json': JSON.stringify(config), 'editor.safetensors': files.weights }), m.model))
      .rejects.toThrow(/editor_config.json: this editor was trained for a model with n_embd 99/);
  });

  it('ignores a broken eval.json (informative only)', async () => {
    const e = await loadEditors(folder({ 'eval.json': '{not json' }), m.model);
    expect([e.ft.steps, e.ft.learningRate]).toEqual([20, 1e-3]);
  });
});
