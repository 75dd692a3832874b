// The bench's shipped model: the trained editor as shipped, less the config's edit policies (bench/models.ts says why).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shippedModel, type BenchModel } from '../../bench/models';
import { initBackend } from '../../src/model';

const DIR = join(new URL('../../', import.meta.url).pathname, 'public/models/facts-gpt');

describe('bench shippedModel', () => {
  let bm: BenchModel;
  beforeAll(async () => {
    expect(await initBackend('cpu')).toBe('cpu');
    bm = await shippedModel(DIR);
  });
  afterAll(() => {
    bm?.editor.dispose();
    bm?.model.dispose();
  });

  it('times the MEND edit itself: no retry pass, no pass-1 guard, everything else as shipped', () => {
    const shipped = JSON.parse(readFileSync(join(DIR, 'editor_config.json'), 'utf8'));
    expect(shipped.batch_retry).toBeDefined(); // (so that leaving them out is tested)
    expect(shipped.first_pass_guard).toBeDefined();
    const c = bm.editor.config;
    expect([c.batchRetry, c.firstPassGuard]).toEqual([null, null]);
    expect([c.lrScale, c.lrScaleBatch, c.sign, c.editedWeights]).toEqual([shipped.lr_scale, shipped.lr_scale_batch, shipped.sign, shipped.edited_weights]);
  });
});
