// The held-out edit benchmark (issue 3 §4) as the training pipeline defined it, read from benchmark.json
// (written by training/export_benchmark.py; docs/eval.md). This file is the data side: the file's shape, the
// per-case outcome records, the aggregation into eval.json's numbers, and case-by-case comparison with the Python
// outcomes stored in the same file. benchmark_run.ts replays the cases through the TS engine and editors.
//
// Aggregation mirrors training/mendlab/evaluate.py evaluate_edits exactly: ES / PS / PS novel / NS are means over
// all prompts of that kind in all evaluated groups (not means of per-edit means); the perplexity increase is the
// mean over groups of exp(NLL_after − NLL_before) − 1 on the held-out prose.

import type { MendEditorConfig } from '../editors/mend_files';

export const BENCHMARK_FILE = 'benchmark.json';
export const RUNS = ['mend.single', 'mend.batch10', 'ft.single', 'ft.batch10'] as const;
export type RunName = (typeof RUNS)[number];

export interface BenchmarkPrompt {
  text: string;
  ids: number[];
}

export interface BenchmarkNeighbour extends BenchmarkPrompt {
  kind: 'same_relation' | 'same_subject';
  subject: string;
  relation: string;
  true_target_ids: number[];
}

export interface BenchmarkEdit {
  subject: string;
  relation: string;
  true_object: string;
  new_object: string;
  prompt: string;
  prompt_ids: number[];
  target_ids: number[];
  paraphrases: BenchmarkPrompt[];
  novel: BenchmarkPrompt[];
  neighbours: BenchmarkNeighbour[];
}

/** One edit's flags after its group's edit: 1 = success / unchanged; ns null = neighbour edited in the same group. */
export interface EditOutcome {
  es: number;
  ps: number[];
  psn: number[];
  ns: (number | null)[];
}

export interface GroupOutcome {
  edits: EditOutcome[];
  ppl_increase: number;
}

export interface RunAggregate {
  es: number | null;
  ps: number | null;
  ps_novel: number | null;
  ns: number | null;
  ppl_increase: number | null;
  n_groups: number;
  n_neighbour_prompts: number;
}

export interface PythonOutcomes {
  device: string;
  torch: string;
  base_prose_nll: number;
  /** the unedited model's greedy answer per neighbour prompt, by edit index (the edits of the stored groups) */
  neighbour_answers: Record<string, number[][]>;
  /** `device`/`torch` on a run: it was recomputed apart from the others (export_benchmark.py --only-runs) */
  runs: Record<RunName, { aggregate: RunAggregate; groups: GroupOutcome[]; seconds: number; device?: string; torch?: string }>;
}

type Metrics = { es?: number; ps?: number; ps_novel?: number; ns?: number; ppl_increase?: number };

export interface BenchmarkFile {
  format: 'mendlab-benchmark';
  version: 1;
  model: string;
  mend_lr_scale: number;
  /** MEND's lr_scale for groups of more than one fact (editor_config.json lr_scale_batch); absent = mend_lr_scale */
  mend_lr_scale_batch?: number;
  /** editor_config.json batch_retry the MEND outcomes were computed with (batch groups; single edits too where its
   * min_facts is 1); absent = one pass */
  mend_batch_retry?: { max_passes: number; lr_scale: number; trust_region?: boolean; min_facts?: number; prose_guard?: { max_increase: number; prose_ids: number[][] } };
  /** editor_config.json first_pass_guard the MEND single-edit outcomes were computed with; absent = none */
  mend_first_pass_guard?: { max_increase: number; max_halvings: number; prose_ids: number[][] };
  ft_config: { steps: number; lr: number; optimizer: string; weights: string[] };
  /** eval.json numbers of the run that produced the artifacts (H100), for the report */
  reference: { mend: Record<'single' | 'batch10', Metrics>; ft: Record<'single' | 'batch10', Metrics>; versions?: Record<string, string> };
  edits: BenchmarkEdit[];
  /** edit indices edited together, per run, in evaluation order */
  groups: Record<RunName, number[][]>;
  prose_ids: number[][];
  python_outcomes?: PythonOutcomes;
}

function fail(msg: string): never {
  throw new Error(`${BENCHMARK_FILE}: ${msg}`);
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0);

/** Checks the parts the harness relies on (format, every id list, groups in range); returns the typed file. */
export function parseBenchmark(json: unknown): BenchmarkFile {
  const b = json as BenchmarkFile;
  if (!b || b.format !== 'mendlab-benchmark') fail('not a mendlab-benchmark file');
  if (b.version !== 1) fail(`unsupported version ${String(b.version)}`);
  if (!Array.isArray(b.edits) || b.edits.length === 0) fail('no edits');
  b.edits.forEach((e, i) => {
    const lists = [e.prompt_ids, e.target_ids, ...e.paraphrases.map((p) => p.ids), ...e.novel.map((p) => p.ids),
      ...e.neighbours.flatMap((n) => [n.ids, n.true_target_ids])];
    if (!lists.every(isIds) || e.prompt_ids.length === 0 || e.target_ids.length === 0) fail(`edit ${i} has malformed token ids`);
  });
  for (const run of RUNS) {
    const g = b.groups?.[run];
    if (!Array.isArray(g) || !g.every((x) => isIds(x) && x.length > 0 && x.every((i) => i < b.edits.length))) fail(`groups["${run}"] malformed`);
  }
  if (!Array.isArray(b.prose_ids) || !b.prose_ids.every(isIds)) fail('prose_ids malformed');
  if (!(b.mend_lr_scale > 0)) fail('mend_lr_scale missing');
  if (b.mend_lr_scale_batch !== undefined && !(b.mend_lr_scale_batch > 0 && Number.isFinite(b.mend_lr_scale_batch))) {
    fail(`mend_lr_scale_batch must be a positive finite number, got ${JSON.stringify(b.mend_lr_scale_batch)}`);
  }
  const r = b.mend_batch_retry;
  if (r !== undefined && !(r && Number.isInteger(r.max_passes) && r.max_passes >= 1 && r.lr_scale > 0 && Number.isFinite(r.lr_scale)
    && (r.trust_region === undefined || typeof r.trust_region === 'boolean')
    && (r.min_facts === undefined || (Number.isInteger(r.min_facts) && r.min_facts >= 1))
    && (r.prose_guard === undefined || (typeof r.prose_guard?.max_increase === 'number' && Array.isArray(r.prose_guard?.prose_ids))))) {
    fail(`mend_batch_retry must be {"max_passes": a positive integer, "lr_scale": a positive number, "trust_region"?: true or false, "prose_guard"?: {"max_increase", "prose_ids"}, "min_facts"?: a positive integer}, got ${JSON.stringify(r)}`);
  }
  const g = b.mend_first_pass_guard;
  if (g !== undefined && !(g && typeof g.max_increase === 'number' && Number.isFinite(g.max_increase) && Number.isInteger(g.max_halvings)
    && g.max_halvings >= 1 && Array.isArray(g.prose_ids) && g.prose_ids.every(isIds))) {
    fail(`mend_first_pass_guard must be {"max_increase": a number, "max_halvings": a positive integer, "prose_ids": lists of token ids}, got ${JSON.stringify(g)}`);
  }
  const ft = b.ft_config;
  if (!ft || !Number.isInteger(ft.steps) || !(ft.lr > 0) || !Array.isArray(ft.weights)) fail('ft_config malformed');
  return b;
}

/**
 * The benchmark's mend_batch_retry in the shape of the editor's parsed config (MendEditorConfig.batchRetry, same keys
 * in the same order, the same defaults), so that `npm run eval` and the tests compare the two as one value.
 */
export function benchmarkBatchRetry(b: BenchmarkFile): MendEditorConfig['batchRetry'] {
  const r = b.mend_batch_retry;
  if (!r) return null;
  const g = r.prose_guard;
  return {
    maxPasses: r.max_passes, lrScale: r.lr_scale, trustRegion: r.trust_region ?? false, minFacts: r.min_facts ?? 2,
    proseGuard: g ? { maxIncrease: g.max_increase, proseIds: g.prose_ids } : null,
  };
}

/** The benchmark's mend_first_pass_guard in the shape of MendEditorConfig.firstPassGuard (same keys, same order). */
export function benchmarkFirstPassGuard(b: BenchmarkFile): MendEditorConfig['firstPassGuard'] {
  const g = b.mend_first_pass_guard;
  return g ? { maxIncrease: g.max_increase, proseIds: g.prose_ids, maxHalvings: g.max_halvings } : null;
}

/** eval.json's numbers from per-case outcomes (evaluate_edits' means). */
export function aggregate(groups: readonly GroupOutcome[]): RunAggregate {
  const flat = { es: [] as number[], ps: [] as number[], psn: [] as number[], ns: [] as number[] };
  for (const g of groups) {
    for (const r of g.edits) {
      flat.es.push(r.es);
      flat.ps.push(...r.ps);
      flat.psn.push(...r.psn);
      for (const v of r.ns) if (v !== null) flat.ns.push(v);
    }
  }
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : null);
  return {
    es: mean(flat.es), ps: mean(flat.ps), ps_novel: mean(flat.psn), ns: mean(flat.ns),
    ppl_increase: mean(groups.map((g) => g.ppl_increase)), n_groups: groups.length, n_neighbour_prompts: flat.ns.length,
  };
}

export interface CaseDisagreement {
  group: number;
  edit: number;
  kind: 'es' | 'ps' | 'psn' | 'ns';
  index: number;
  ts: number | null;
  python: number | null;
}

export interface CaseComparison {
  /** prompts compared (ES, PS, PS novel and NS flags together) */
  compared: number;
  disagreements: CaseDisagreement[];
  /** largest |TS − Python| perplexity increase over the groups */
  maxPplDiff: number;
}

/** Flag-by-flag comparison of two outcome lists for the same groups (same order). */
export function compareCases(ts: readonly GroupOutcome[], py: readonly GroupOutcome[]): CaseComparison {
  if (ts.length > py.length) throw new Error(`comparing ${ts.length} groups with ${py.length} Python groups`);
  const out: CaseComparison = { compared: 0, disagreements: [], maxPplDiff: 0 };
  ts.forEach((g, gi) => {
    out.maxPplDiff = Math.max(out.maxPplDiff, Math.abs(g.ppl_increase - py[gi].ppl_increase));
    g.edits.forEach((r, ei) => {
      const p = py[gi].edits[ei];
      const check = (kind: CaseDisagreement['kind'], index: number, a: number | null, b: number | null) => {
        if (a === null && b === null) return; // a neighbour both sides skip (edited in the same group)
        out.compared++;
        if (a !== b) out.disagreements.push({ group: gi, edit: ei, kind, index, ts: a, python: b });
      };
      check('es', 0, r.es, p.es);
      for (const kind of ['ps', 'psn', 'ns'] as const) {
        const a = r[kind], b = p[kind];
        if (a.length !== b.length) throw new Error(`group ${gi} edit ${ei}: ${a.length} vs ${b.length} ${kind} prompts`);
        a.forEach((v, i) => check(kind, i, v, b[i]));
      }
    });
  });
  return out;
}
