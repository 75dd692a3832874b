// The benchmark's bookkeeping: aggregation with evaluate_edits' means, case comparison, file validation.
import { describe, expect, it } from 'vitest';
import { aggregate, benchmarkBatchRetry, benchmarkFirstPassGuard, compareCases, parseBenchmark, type GroupOutcome } from '../../src/eval/benchmark';

const groups: GroupOutcome[] = [
  { edits: [{ es: 1, ps: [1, 0, 1, 1], psn: [0, 0], ns: [1, 1, 0] }], ppl_increase: 0.01 },
  { edits: [{ es: 0, ps: [1, 1], psn: [1], ns: [1, null] }, { es: 1, ps: [0], psn: [], ns: [null] }], ppl_increase: -0.03 },
];

describe('benchmark aggregation and comparison', () => {
  it('pools every prompt of a kind (not per-edit means), skips null neighbours, averages ppl over groups', () => {
    const a = aggregate(groups);
    expect(a.es).toBeCloseTo(2 / 3, 12);
    expect(a.ps).toBeCloseTo(5 / 7, 12);
    expect(a.ps_novel).toBeCloseTo(1 / 3, 12);
    expect(a.ns).toBeCloseTo(3 / 4, 12);
    expect(a.ppl_increase).toBeCloseTo(-0.01, 12);
    expect(a.n_groups).toBe(2);
    expect(a.n_neighbour_prompts).toBe(4);
    expect(aggregate([]).es).toBeNull();
  });

  it('finds exactly the flipped flags', () => {
    const other: GroupOutcome[] = structuredClone(groups);
    other[1].edits[0].ps[1] = 0;
    other[0].edits[0].ns[2] = 1;
    other[1].ppl_increase = -0.025;
    const c = compareCases(groups, other);
    expect(c.compared).toBe(10 + 5 + 2); // every flag except the two neighbours both sides skip
    expect(c.disagreements).toEqual([
      { group: 0, edit: 0, kind: 'ns', index: 2, ts: 0, python: 1 },
      { group: 1, edit: 0, kind: 'ps', index: 1, ts: 1, python: 0 },
    ]);
    expect(c.maxPplDiff).toBeCloseTo(0.005, 12);
    expect(() => compareCases([...groups, ...groups], groups)).toThrow(/groups/);
  });

  it('refuses files that are not a benchmark or have out-of-range groups', () => {
    expect(() => parseBenchmark({ format: 'x' })).toThrow(/not a mendlab-benchmark/);
    const edit = { subject: 's', relation: 'r', true_object: 'a', new_object: 'b', prompt: 'p', prompt_ids: [1], target_ids: [2],
      paraphrases: [], novel: [], neighbours: [] };
    const file = { format: 'mendlab-benchmark', version: 1, model: 'm', mend_lr_scale: 1, edits: [edit], prose_ids: [[1, 2]],
      ft_config: { steps: 1, lr: 1e-3, optimizer: 'Adam', weights: ['w'] }, reference: {},
      groups: { 'mend.single': [[0]], 'mend.batch10': [[0]], 'ft.single': [[0]], 'ft.batch10': [[0]] } };
    expect(parseBenchmark(file).edits).toHaveLength(1);
    expect(() => parseBenchmark({ ...file, groups: { ...file.groups, 'ft.single': [[1]] } })).toThrow(/ft.single/);
    expect(() => parseBenchmark({ ...file, edits: [{ ...edit, target_ids: [] }] })).toThrow(/edit 0/);
    expect(parseBenchmark({ ...file, mend_batch_retry: { max_passes: 2, lr_scale: 0.5 } }).mend_batch_retry).toEqual({ max_passes: 2, lr_scale: 0.5 });
    const tr = { max_passes: 2, lr_scale: 0.5, trust_region: true };
    expect(parseBenchmark({ ...file, mend_batch_retry: tr }).mend_batch_retry).toEqual(tr);
    // ... and in the editor config's parsed shape, with its defaults
    expect(benchmarkBatchRetry(parseBenchmark(file))).toBeNull();
    expect(benchmarkBatchRetry(parseBenchmark({ ...file, mend_batch_retry: { max_passes: 2, lr_scale: 0.5 } })))
      .toEqual({ maxPasses: 2, lrScale: 0.5, trustRegion: false, minFacts: 2, proseGuard: null });
    expect(benchmarkBatchRetry(parseBenchmark({ ...file, mend_batch_retry: { max_passes: 2, lr_scale: 0.5, min_facts: 1 } }))?.minFacts).toBe(1);
    const guarded = { ...tr, prose_guard: { max_increase: 0.02, prose_ids: [[1, 2, 3]] } };
    expect(benchmarkBatchRetry(parseBenchmark({ ...file, mend_batch_retry: guarded })))
      .toEqual({ maxPasses: 2, lrScale: 0.5, trustRegion: true, minFacts: 2, proseGuard: { maxIncrease: 0.02, proseIds: [[1, 2, 3]] } });
    for (const bad of [{ max_passes: 0, lr_scale: 0.5 }, { max_passes: 2, lr_scale: -1 }, { max_passes: 1.5, lr_scale: 1 }, null,
      { max_passes: 2, lr_scale: 0.5, trust_region: 1 }, { max_passes: 2, lr_scale: 0.5, min_facts: 0 }, { max_passes: 2, lr_scale: 0.5, min_facts: 1.5 }]) {
      expect(() => parseBenchmark({ ...file, mend_batch_retry: bad })).toThrow(/mend_batch_retry/);
    }
    // the pass-1 guard, in the editor config's parsed shape
    const g = { max_increase: 0.05, max_halvings: 2, prose_ids: [[1, 2, 3]] };
    expect(benchmarkFirstPassGuard(parseBenchmark(file))).toBeNull();
    expect(benchmarkFirstPassGuard(parseBenchmark({ ...file, mend_first_pass_guard: g })))
      .toEqual({ maxIncrease: 0.05, proseIds: [[1, 2, 3]], maxHalvings: 2 });
    for (const bad of [null, { ...g, max_halvings: 0 }, { ...g, max_halvings: 1.5 }, { ...g, max_increase: '0.05' }, { ...g, prose_ids: [[-1]] },
      { max_increase: 0.05, max_halvings: 2 }]) {
      expect(() => parseBenchmark({ ...file, mend_first_pass_guard: bad }), JSON.stringify(bad)).toThrow(/mend_first_pass_guard/);
    }
  });
});
