// The damage check's perplexity against PyTorch, and where its prose comes from. The reference number was computed
// with training/mendlab (torch 1.13, the model in float64, prose_nll) on the shipped model and facts.json's
// heldout_prose (held-out paragraphs 192-195): pooled exp(mean NLL) over the four paragraphs' 177 scored tokens =
// 2.941449. (The editor's perplexity guards read paragraphs 196-199, where it is 2.774995: the damage check is an
// independent look.)
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../model';
import { damageProseFromFacts, damageReport, DEFAULT_HELDOUT_PROSE, heldOutIds, perplexity } from './damage';

const SHIPPED = new URL('../../public/models/facts-gpt', import.meta.url).pathname;
const facts = JSON.parse(readFileSync(`${SHIPPED}/facts.json`, 'utf8'));

describe('damageReport', () => {
  it('flags an edit past the limit against the weights it started from, and the history past it against the original', () => {
    const first = damageReport(3, 3.3, 1.5);
    expect(first).toMatchObject({ flagged: false, perplexityOriginal: 3, flaggedOriginal: false });
    expect(first.ratioOriginal).toBe(first.ratio);
    // a later edit that is fine on its own (×1.2) but takes the history to ×1.8 of the original
    const later = damageReport(4.5, 5.4, 1.5, 3);
    expect(later.flagged).toBe(false);
    expect(later.ratioOriginal).toBeCloseTo(1.8, 12);
    expect(later.flaggedOriginal).toBe(true);
    expect(damageReport(3, NaN, 1.5, 3).flaggedOriginal).toBe(true);
  });
});

describe('damageProseFromFacts', () => {
  it('takes a list of non-empty paragraphs and refuses anything else', () => {
    expect(damageProseFromFacts({ heldout_prose: ['One day.', 'Another day.'] })).toEqual(['One day.', 'Another day.']);
    for (const bad of [null, {}, { heldout_prose: 'text' }, { heldout_prose: [] }, { heldout_prose: ['ok', 3] }, { heldout_prose: ['ok', '  '] }]) {
      expect(damageProseFromFacts(bad)).toBeNull();
    }
  });

  it('finds the shipped model’s held-out paragraphs', () => {
    const prose = damageProseFromFacts(facts)!;
    expect(prose).toHaveLength(4);
    // not a sentence the facts model was taught: none of its facts' objects is named in them
    expect(prose.join(' ')).not.toMatch(/capital|currency|Paris/);
  });
});

describe('held-out perplexity on the shipped model (cpu backend)', () => {
  let m: LoadedModel;
  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(SHIPPED));
  }, 120_000);

  it('pools the paragraphs and agrees with PyTorch', async () => {
    const ids = heldOutIds(damageProseFromFacts(facts)!, m.tokenizer, m.model.config.nPositions);
    expect(ids.map((p) => p.length)).toEqual([38, 39, 54, 50]);
    const p = await perplexity(m.model, ids);
    expect(p).toBeCloseTo(2.941449, 3);
    // pooled is not the mean of the per-paragraph perplexities (those weight short paragraphs up)
    const each = await Promise.all(ids.map((one) => perplexity(m.model, one)));
    expect(Math.min(...each)).toBeLessThan(p);
    expect(Math.max(...each)).toBeGreaterThan(p);
  }, 120_000);

  it('is in the model’s domain, where the generic paragraph is not', async () => {
    const generic = await perplexity(m.model, heldOutIds(DEFAULT_HELDOUT_PROSE, m.tokenizer, m.model.config.nPositions)[0]);
    expect(generic).toBeGreaterThan(1000); // PyTorch: 265,644
  }, 120_000);

  it('drops paragraphs too short to score and refuses text with nothing to score', () => {
    expect(heldOutIds(['a', 'The river rises in the hills.'], m.tokenizer, 128)).toHaveLength(1);
    expect(() => heldOutIds(['a'], m.tokenizer, 128)).toThrow(/at least two tokens/);
  });
});
