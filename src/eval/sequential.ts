// Sequential editing, as a user's history applies edits (and as the "lifelong editing" literature measures it): the
// held-out benchmark's edits applied one after another WITHOUT reverting, scored at checkpoints k. An edit is one
// fact (the single-edit benchmark's order) or a batch of facts (the batch-of-10 benchmark's groups, one summed
// update each):
//   retention      the fraction of the facts of the k edits so far whose edit prompt still gives its whole target
//                  (teacher-forced argmax, ES's definition), the newest included;
//   es_new         ES of each fact right after its edit was applied, averaged over the edits since the last checkpoint;
//   ns             of those facts' neighbour prompts, the fraction whose unedited greedy answer is still the argmax
//                  (neighbours that are themselves among the edited facts are skipped, as in a batch);
//   ppl_increase   exp(NLL_now − NLL_unedited) − 1 on the held-out prose;
//   scan           (optional) the knowledge scan (scan.ts) around every fact edited so far, the unedited model against
//                  the model now: of hundreds of taught facts, how many the edits so far took away together.
// At k = 1 every number is the single-edit benchmark's for the first edit (benchmark_run.ts runGroup, which is checked
// case by case against PyTorch), so this driver adds only the order. MEND was trained to make one edit (or one batch)
// to the model it was trained on; each later edit meets weights it has never seen, which is what this measures.
// The model's weights are restored bit-exactly at the end (the original buffers are held, never written).
import * as tf from '@tensorflow/tfjs';
import type { GPT2, Tokenizer } from '../model';
import { EditRefusedError, holdWeight, installWeight, type ModelEditor, type WeightChange } from '../editors';
import { exactMatch, proseNll, type Baseline, type Progress } from './benchmark_run';
import type { BenchmarkFile } from './benchmark';
import { knowledgeScan, type ScanKind } from './scan';
import type { FactsIndex } from './suggest';

export interface SequentialPoint {
  /** edits applied so far, and the facts they held */
  k: number;
  facts: number;
  retention: number;
  es_new: number;
  ns: number | null;
  ppl_increase: number;
  /** neighbour prompts scored for ns */
  n_neighbour_prompts: number;
  /** edits so far the engine refused to install (NaN/∞ weights): they changed nothing and count as failed */
  refused: number;
  /** the knowledge scan at this checkpoint, per kind of fact (only when asked for) */
  scan?: SequentialScan;
}

export interface SequentialScan {
  asked: number;
  known_before: number;
  kept: number;
  /** facts lost that now give one of the edited targets */
  took_target: number;
  kinds: Partial<Record<ScanKind, { known_before: number; kept: number }>>;
}

/** What the knowledge scan at each checkpoint needs: the facts index and a tokenizer for the prompts. */
export interface SequentialScanSetup {
  tokenizer: Tokenizer;
  index: FactsIndex;
  eosTokenId: number | null;
}

/** 1, 2, 5, 10, 20, 50, 100, … up to n, and n itself. */
export function defaultCheckpoints(n: number): number[] {
  const out: number[] = [];
  for (let decade = 1; decade <= n; decade *= 10) for (const m of [1, 2, 5]) if (m * decade <= n) out.push(m * decade);
  if (out[out.length - 1] !== n) out.push(n);
  return out;
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

/**
 * Applies `edits` one after another with `editor` (each a list of benchmark edit indices: one fact, or a batch edited
 * in one update) and scores the model at each checkpoint. `base` must hold the unedited model's neighbour answers for
 * every fact (computeBaseline).
 */
export async function runSequential(
  model: GPT2, editor: ModelEditor, bench: BenchmarkFile, edits: ReadonlyArray<readonly number[]>, base: Baseline,
  checkpoints: readonly number[] = defaultCheckpoints(edits.length), onProgress?: Progress, scan?: SequentialScanSetup,
): Promise<SequentialPoint[]> {
  const marks = new Set(checkpoints.filter((k) => k >= 1 && k <= edits.length));
  const originals = editor.weightNames.map((name) => ({ name, t: holdWeight(model, name) }));
  let installed: WeightChange[] = [];
  const points: SequentialPoint[] = [];
  let esSince: number[] = [];
  let refused = 0;
  try {
    for (const [j, group] of edits.entries()) {
      const facts = group.map((i) => bench.edits[i]);
      let result;
      try {
        result = await editor.edit(model, facts.map((e) => ({ promptIds: e.prompt_ids, targetIds: e.target_ids })));
      } catch (e) {
        if (!(e instanceof EditRefusedError)) throw e;
        refused++; // a broken model can ask for non-finite weights; the engine refuses and nothing changes
      }
      if (result) {
        // Only the buffers now installed are needed (the originals restore the model), so the edit's handle on the
        // previous buffers and the previous edit's handle on its own are let go: memory stays at one edit's worth.
        tf.dispose([...result.changes.map((c) => c.before), ...installed.map((c) => c.after)]);
        installed = result.changes;
      }
      for (const e of facts) esSince.push(result ? await exactMatch(model, e.prompt_ids, e.target_ids) : 0);
      const k = j + 1;
      if (marks.has(k)) {
        const point: SequentialPoint = { k, refused, ...(await scoreAt(model, bench, edits.slice(0, k).flat(), base, mean(esSince))) };
        if (scan) point.scan = await scanAt(model, editor, bench, edits.slice(0, k).flat(), originals, scan);
        points.push(point);
        esSince = [];
      }
      onProgress?.(k, edits.length);
    }
  } finally {
    for (const o of originals) installWeight(model, o.name, o.t);
    tf.dispose([...originals.map((o) => o.t), ...installed.map((c) => c.after)]);
  }
  return points;
}

async function scoreAt(model: GPT2, bench: BenchmarkFile, done: readonly number[], base: Baseline, esNew: number): Promise<Omit<SequentialPoint, 'k' | 'refused'>> {
  const edits = done.map((i) => bench.edits[i]);
  const held: number[] = [];
  for (const e of edits) held.push(await exactMatch(model, e.prompt_ids, e.target_ids));
  const editedFacts = new Set(edits.map((e) => `${e.subject}\u0000${e.relation}`));
  const ns: number[] = [];
  for (const [j, e] of edits.entries()) {
    const answers = base.neighbourAnswers.get(done[j]);
    if (!answers) throw new Error(`no baseline answers for edit ${done[j]}`);
    for (const [n, nb] of e.neighbours.entries()) {
      if (!editedFacts.has(`${nb.subject}\u0000${nb.relation}`)) ns.push(await exactMatch(model, nb.ids, answers[n]));
    }
  }
  const nll = await proseNll(model, bench.prose_ids);
  return {
    facts: done.length, retention: mean(held), es_new: esNew, ns: ns.length ? mean(ns) : null,
    ppl_increase: Math.exp(nll - base.proseNll) - 1, n_neighbour_prompts: ns.length,
  };
}

/**
 * The knowledge scan around the facts edited so far: "before" is the unedited model (the held original buffers
 * swapped in, then the current ones back; no copies, bit-exact), "after" the model now.
 */
async function scanAt(
  model: GPT2, editor: ModelEditor, bench: BenchmarkFile, done: readonly number[],
  originals: ReadonlyArray<{ name: string; t: tf.Tensor2D }>, setup: SequentialScanSetup,
): Promise<SequentialScan> {
  const facts = done.map((i) => ({ prompt: bench.edits[i].prompt, target: setup.tokenizer.decode(bench.edits[i].target_ids) }));
  const r = await knowledgeScan(model, setup.tokenizer, setup.index, facts, async (fn) => {
    const now = editor.weightNames.map((name) => ({ name, t: holdWeight(model, name) }));
    try {
      for (const o of originals) installWeight(model, o.name, o.t);
      return await fn();
    } finally {
      for (const w of now) installWeight(model, w.name, w.t);
      tf.dispose(now.map((w) => w.t));
    }
  }, { eosTokenId: setup.eosTokenId });
  const kinds: SequentialScan['kinds'] = {};
  for (const g of r.groups) {
    const k = (kinds[g.kind] ??= { known_before: 0, kept: 0 });
    k.known_before += g.knownBefore;
    k.kept += g.kept;
  }
  return { asked: r.asked, known_before: r.knownBefore, kept: r.kept, took_target: r.lost.filter((l) => l.tookTarget).length, kinds };
}
