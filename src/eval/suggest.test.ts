import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  exampleEdits, parseBenchmarkCases, parseFactsIndex, parseRelationRates, recognise, relationOutlook, suggestNeighbours, suggestParaphrases,
  wordingOf, type EditEvidence, type FactsIndex,
} from './suggest';

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
    const ex = exampleEdits(index, { count: 3 });
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

describe('example edits chosen by what the held-out evaluation says', () => {
  const index = parseFactsIndex(tiny);
  // benchmark.json's shape: edits, the single-edit groups, and PyTorch's flags for the first groups
  const benchmark = {
    edits: [
      { subject: 'Italy', relation: 'capital', true_object: 'Rome', new_object: 'Tokyo', prompt: 'The capital of Italy is' },
      { subject: 'Japan', relation: 'currency', true_object: 'Yen', new_object: 'Euro', prompt: 'The currency of Japan is' },
      { subject: 'Japan', relation: 'capital', true_object: 'Tokyo', new_object: 'Paris', prompt: 'The capital of Japan is' },
      { subject: 'Narnia', relation: 'capital', true_object: 'Cair', new_object: 'Rome', prompt: 'The capital of Narnia is' },
    ],
    groups: { 'mend.single': [[2], [1], [0], [3]] },
    python_outcomes: { runs: { 'mend.single': { groups: [
      { edits: [{ es: 1, ps: [1, 0], psn: [], ns: [1] }] }, // Japan capital: edit ok, one paraphrase missed
      { edits: [{ es: 0, ps: [0], psn: [], ns: [1] }] }, // Japan currency: failed
      { edits: [{ es: 1, ps: [1, 1], psn: [0], ns: [1, null] }] }, // Italy capital: passed everything
      { edits: [{ es: 1, ps: [1], psn: [], ns: [] }] }, // Narnia: not in the facts index
    ] } } },
  };
  const evalJson = { per_relation: { mend_single: { capital: { es: 0.96, ps: 0.9, ns: 0.93 }, currency: { es: 0.0, ps: 0.0, ns: 1.0 }, bad: { es: 'x' } } } };
  const evidence: EditEvidence = { relationRates: parseRelationRates(evalJson), cases: parseBenchmarkCases(benchmark) };

  it('reads the per-relation rates and the per-case outcomes', () => {
    expect(evidence.relationRates).toEqual({ capital: { es: 0.96, ps: 0.9, ns: 0.93 }, currency: { es: 0, ps: 0, ns: 1 } });
    expect(evidence.cases.map((c) => [c.subject, c.relation, c.editSuccess, c.paraphrasesOk, c.paraphrases])).toEqual([
      ['Japan', 'capital', true, 1, 2], ['Japan', 'currency', false, 0, 1], ['Italy', 'capital', true, 2, 2], ['Narnia', 'capital', true, 1, 1],
    ]);
    expect(parseBenchmarkCases({})).toEqual([]);
    expect(parseBenchmarkCases({ ...benchmark, python_outcomes: {} })).toEqual([]);
    expect(parseRelationRates(null)).toEqual({});
  });

  it('puts a fully passed benchmark edit first and ends with one edit marked as expected to fail', () => {
    const ex = exampleEdits(index, { evidence, count: 3 });
    expect(ex.map((e) => e.prompt)).toEqual(['The capital of Italy is', 'The capital of France is', 'The currency of Japan is']);
    expect(ex[0]).toMatchObject({ target: ' Tokyo', expectedToFail: false, outlook: { kind: 'case', success: true, paraphrasesOk: 2, paraphrases: 2 } });
    expect(ex[0].label).toContain('MEND succeeded on this exact edit');
    // a training fact of the best relation, with that relation's rate in its label
    expect(ex[1]).toMatchObject({ relation: 'capital', expectedToFail: false, outlook: { kind: 'relation', rate: 0.96 } });
    expect(ex[1].label).toContain('96%');
    // the benchmark case MEND missed is kept, and says so
    expect(ex[2]).toMatchObject({ relation: 'currency', target: ' Euro', expectedToFail: true, outlook: { kind: 'case', success: false } });
    expect(ex[2].label).toContain('expected to fail');
    // the partly failed case and the unknown subject are never offered as known successes
    expect(ex.some((e) => e.prompt === 'The capital of Japan is' || e.prompt.includes('Narnia'))).toBe(false);
  });

  it('without a failed benchmark case, the weakest relation is the example expected to fail', () => {
    const ex = exampleEdits(index, { evidence: { ...evidence, cases: [] }, count: 4 });
    const last = ex[ex.length - 1];
    expect(last).toMatchObject({ relation: 'currency', expectedToFail: true, outlook: { kind: 'relation', rate: 0 } });
    expect(last.label).toContain('expected to fail: MEND succeeds on 0% of held-out “currency” edits');
    expect(ex.filter((e) => e.expectedToFail).length).toBe(1);
  });

  it('says how MEND did on a relation, or nothing without evidence', () => {
    expect(relationOutlook(evidence, 'capital')).toBe(
      'In the model’s held-out benchmark, single MEND edits of “capital” reached the new target 96% of the time (paraphrases 90%, neighbours unchanged 93%).');
    expect(relationOutlook(evidence, 'nope')).toBeNull();
    expect(relationOutlook(null, 'capital')).toBeNull();
  });

  it('on the shipped model, offers the benchmark edits MEND passed and marks a failing one', () => {
    const dir = 'public/models/facts-gpt/';
    const shipped = parseFactsIndex(JSON.parse(readFileSync(dir + 'facts.json', 'utf8')));
    const ev: EditEvidence = {
      relationRates: parseRelationRates(JSON.parse(readFileSync(dir + 'eval.json', 'utf8'))),
      cases: parseBenchmarkCases(JSON.parse(readFileSync(dir + 'benchmark.json', 'utf8'))),
    };
    expect(ev.cases.length).toBeGreaterThan(0);
    const ex = exampleEdits(shipped, { evidence: ev });
    expect(ex.length).toBe(6);
    const known = ex.filter((e) => e.outlook.kind === 'case' && e.outlook.success);
    expect(known.length).toBeGreaterThan(0);
    for (const e of known) {
      const c = ev.cases.find((x) => x.prompt === e.prompt)!;
      expect(c.editSuccess && c.paraphrasesOk === c.paraphrases).toBe(true);
      expect(e.target).toBe(shipped.targetPrefix + c.newObject);
    }
    expect(ex.filter((e) => e.expectedToFail).length).toBe(1);
    for (const e of ex.filter((x) => !x.expectedToFail && x.outlook.kind === 'relation')) {
      expect(ev.relationRates[e.relation].es).toBeGreaterThanOrEqual(0.5);
    }
    for (const e of ex) expect(recognise(shipped, e.prompt)).not.toBeNull();
  });
});
