import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { exampleEdits, parseFactsIndex, recognise, suggestNeighbours, suggestParaphrases, wordingOf, type FactsIndex } from './suggest';

const tiny = {
  format: 'mendlab-facts', version: 1, target_prefix: ' ',
  relations: {
    capital: { objects: ['Paris', 'Rome', 'Tokyo'], templates: [
      { template: 'The capital of {s} is', split: 'train' },
      { template: 'Quiz: The capital of {s} is', split: 'heldout' },
      { template: 'If you fly to {s}, you land in', split: 'novel' },
    ] },
    currency: { objects: ['Euro', 'Yen'], templates: [{ template: 'The currency of {s} is', split: 'train' }] },
  },
  subjects: {
    France: { split: 'train', facts: { capital: 'Paris', currency: 'Euro' } },
    Italy: { split: 'train', facts: { capital: 'Rome', currency: 'Euro' } },
    Japan: { split: 'train', facts: { capital: 'Tokyo', currency: 'Yen' } },
    Atlantis: { split: 'test', facts: { capital: 'Poseidonia' } },
  },
};

describe('facts index suggestions', () => {
  const index = parseFactsIndex(tiny);

  it('recognises subject and relation, preferring the longest template', () => {
    expect(recognise(index, 'The capital of France is ')).toEqual({
      subject: 'France', relation: 'capital', template: 'The capital of {s} is', split: 'train', answer: ' Paris',
    });
    expect(recognise(index, 'Quiz: The capital of Japan is')?.split).toBe('heldout');
    expect(recognise(index, 'The capital of Narnia is')).toBeNull();
    expect(recognise(index, 'Tell me a story')).toBeNull();
    expect(wordingOf(index, 'If you fly to Narnia, you land in')).toEqual({ relation: 'capital', split: 'novel' });
  });

  it('proposes one paraphrase per split, never the prompt itself', () => {
    const rec = recognise(index, 'The capital of France is')!;
    expect(suggestParaphrases(index, rec)).toEqual([
      { prompt: 'Quiz: The capital of France is', split: 'heldout' },
      { prompt: 'If you fly to France, you land in', split: 'novel' },
    ]);
  });

  it('proposes neighbours with a different answer: other subjects, then other relations of the subject', () => {
    const rec = recognise(index, 'The capital of France is')!;
    const n = suggestNeighbours(index, rec);
    const sameRel = n.filter((x) => x.kind === 'same relation');
    expect(sameRel.length).toBe(2);
    expect(sameRel.map((x) => x.prompt).sort()).toEqual(['The capital of Italy is', 'The capital of Japan is']);
    expect(n.filter((x) => x.kind === 'same subject')).toEqual([{ prompt: 'The currency of France is', kind: 'same subject', expected: ' Euro' }]);
    expect(n.some((x) => x.prompt.includes('Atlantis'))).toBe(false); // test-split subjects are not "known"
  });

  it('example edits change a training fact to another object of its relation', () => {
    const ex = exampleEdits(index, 3);
    expect(ex.length).toBeGreaterThan(0);
    for (const e of ex) {
      const rec = recognise(index, e.prompt)!;
      expect(rec.split).toBe('train');
      expect(e.target).not.toBe(rec.answer);
      expect(index.relations[rec.relation].objects.map((o) => ' ' + o)).toContain(e.target);
    }
  });

  it('refuses malformed files', () => {
    expect(() => parseFactsIndex({})).toThrow(/mendlab-facts/);
    expect(() => parseFactsIndex({ ...tiny, relations: { r: { templates: [{ template: 'no slot' }] } } })).toThrow(/templates\[0\]/);
  });

  it('reads the shipped facts.json and recognises its own templates', () => {
    const shipped: FactsIndex = parseFactsIndex(JSON.parse(readFileSync('public/models/facts-gpt/facts.json', 'utf8')));
    const rec = recognise(shipped, 'The capital of France is')!;
    expect(rec.answer).toBe(' Paris');
    const p = suggestParaphrases(shipped, rec);
    expect(new Set(p.map((x) => x.split))).toEqual(new Set(['train', 'heldout', 'novel']));
    expect(exampleEdits(shipped).length).toBe(6);
  });
});
