import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../model';
import { useNodeWebGPU } from '../../tests/helpers/node-webgpu';
import { weightsChecksum } from '../session/checksum';
import { disposeChanges, revertChanges } from './changes';
import { FinetuneEditor, finetuneDefaultsFromEval } from './finetune';
import type { TokenizedFact } from './types';

const FIXTURE = new URL('../../tests/fixtures/tiny-gpt2', import.meta.url).pathname;
const WEIGHTS = ['transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight'];
const FACT: TokenizedFact = { promptIds: [12, 45, 200, 7], targetIds: [99, 150] };
const OTHER: TokenizedFact = { promptIds: [3, 88, 9], targetIds: [250] };

describe('fine-tuning baseline on cpu', () => {
  let m: LoadedModel;
  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(FIXTURE));
  });
  afterAll(() => m?.model.dispose());

  it('lowers the target NLL, changes only the chosen weights, and reverts bit for bit', async () => {
    const all = await weightsChecksum(m.model);
    const untouched = m.model.weightNames().filter((n) => !WEIGHTS.includes(n));
    const untouchedSum = await weightsChecksum(m.model, untouched);
    const before = await m.model.scoreContinuation(FACT.promptIds, FACT.targetIds);
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 10, learningRate: 1e-2 });
    const result = await ft.edit(m.model, [FACT]);
    const after = await m.model.scoreContinuation(FACT.promptIds, FACT.targetIds);

    expect(result.method).toBe('ft');
    expect(result.changes.map((c) => c.name)).toEqual(WEIGHTS);
    expect(result.stats.steps).toBe(10);
    expect(result.stats.lossAfter).toBeLessThan(result.stats.lossBefore);
    // lossBefore is the mean target NLL of the unedited model.
    expect(result.stats.lossBefore).toBeCloseTo(-before.logprob / FACT.targetIds.length, 4);
    expect(after.logprob).toBeGreaterThan(before.logprob);
    expect(await weightsChecksum(m.model, untouched)).toBe(untouchedSum);
    expect(await weightsChecksum(m.model)).not.toBe(all);

    revertChanges(m.model, result.changes);
    disposeChanges(result.changes);
    expect(await weightsChecksum(m.model)).toBe(all);
  });

  it('trains a batch of facts on the sum of their losses', async () => {
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 5, learningRate: 1e-2 });
    const a0 = await m.model.scoreContinuation(FACT.promptIds, FACT.targetIds);
    const b0 = await m.model.scoreContinuation(OTHER.promptIds, OTHER.targetIds);
    const result = await ft.edit(m.model, [FACT, OTHER]);
    const a1 = await m.model.scoreContinuation(FACT.promptIds, FACT.targetIds);
    const b1 = await m.model.scoreContinuation(OTHER.promptIds, OTHER.targetIds);
    revertChanges(m.model, result.changes);
    disposeChanges(result.changes);
    expect(result.stats.facts).toBe(2);
    expect(a1.logprob).toBeGreaterThan(a0.logprob);
    expect(b1.logprob).toBeGreaterThan(b0.logprob);
  });

  it('does not leak tensors (optimizer state included)', async () => {
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 2 });
    const r0 = await ft.edit(m.model, [FACT]);
    revertChanges(m.model, r0.changes);
    disposeChanges(r0.changes);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      const r = await ft.edit(m.model, [OTHER]);
      revertChanges(m.model, r.changes);
      disposeChanges(r.changes);
    }
    expect(tf.memory().numTensors).toBe(count);
  });

  it('takes its defaults from the training pipeline\'s eval.json when present', () => {
    expect(finetuneDefaultsFromEval({ ft_config: { steps: 20, lr: 3e-4, optimizer: 'Adam' } })).toEqual({ steps: 20, learningRate: 3e-4 });
    expect(finetuneDefaultsFromEval({ ft_config: { steps: 0, lr: 3e-4 } })).toBeNull();
    expect(finetuneDefaultsFromEval({})).toBeNull();
    expect(finetuneDefaultsFromEval(null)).toBeNull();
  });

  it('rejects bad options', () => {
    expect(() => new FinetuneEditor({ weightNames: [] })).toThrow(/at least one weight/);
    expect(() => new FinetuneEditor({ weightNames: WEIGHTS, steps: 0 })).toThrow(/positive integer/);
    expect(() => new FinetuneEditor({ weightNames: WEIGHTS, learningRate: -1 })).toThrow(/must be positive/);
  });
});

describe('fine-tuning baseline on webgpu (Dawn)', () => {
  let m: LoadedModel;
  beforeAll(async () => {
    await useNodeWebGPU();
    await initBackend('webgpu');
    m = await loadModel(localSource(FIXTURE));
  });
  afterAll(() => m?.model.dispose());

  it('runs Adam with tfjs autodiff on the GPU and reverts bit for bit', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const all = await weightsChecksum(m.model);
    const ft = new FinetuneEditor({ weightNames: WEIGHTS, steps: 2, learningRate: 1e-2 });
    const result = await ft.edit(m.model, [FACT]);
    expect(result.stats.lossAfter).toBeLessThan(result.stats.lossBefore);
    revertChanges(m.model, result.changes);
    disposeChanges(result.changes);
    expect(await weightsChecksum(m.model)).toBe(all);
  }, 120_000);
});
