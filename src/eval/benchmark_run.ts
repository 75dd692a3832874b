// Replays the held-out edit benchmark (benchmark.ts) through the TS engine and an editor, case by case, the way
// training/mendlab/evaluate.py scores it:
//   ES / PS / PS novel  the whole new target is the teacher-forced argmax after the edit (metrics.teacherForced);
//   NS                  the unedited model's greedy answer to a neighbour prompt (as many tokens as the true
//                       object) is still the teacher-forced argmax after the edit, i.e. greedy is unchanged;
//                       neighbours that are themselves edited in the same group are skipped (null);
//   perplexity          token-weighted mean NLL over the held-out prose, before vs after: exp(after − before) − 1.
// Each group is edited, scored, and reverted bit-exactly (editors/changes.ts) before the next.
import type { GPT2 } from '../model';
import { disposeChanges, FinetuneEditor, revertChanges, type ModelEditor } from '../editors';
import { teacherForced } from './metrics';
import type { BenchmarkFile, GroupOutcome } from './benchmark';

export interface Baseline {
  /** the unedited model's greedy answer per edit index and neighbour */
  neighbourAnswers: Map<number, number[][]>;
  proseNll: number;
}

export type Progress = (done: number, total: number) => void;

/** The fine-tuning baseline with the settings the benchmark's FT outcomes were computed with (benchmark.json ft_config). */
export function benchmarkFinetuner(bench: BenchmarkFile): FinetuneEditor {
  const c = bench.ft_config;
  if (c.optimizer !== 'Adam') throw new Error(`benchmark FT optimizer "${c.optimizer}" (only Adam is implemented)`);
  return new FinetuneEditor({ weightNames: c.weights, steps: c.steps, learningRate: c.lr });
}

/** Whole-target exact match of `targetIds` after `promptIds` under teacher forcing (0/1). */
export async function exactMatch(model: GPT2, promptIds: number[], targetIds: number[]): Promise<number> {
  const logits = await model.logits([...promptIds, ...targetIds]);
  return teacherForced(logits, promptIds.length, targetIds, model.config.vocabSize).exactMatch ? 1 : 0;
}

/** Token-weighted mean NLL of every next-token prediction in the sequences (evaluate.prose_nll). */
export async function proseNll(model: GPT2, seqs: readonly number[][]): Promise<number> {
  let sum = 0;
  let n = 0;
  for (const ids of seqs) {
    if (ids.length < 2) continue;
    const { logprob } = await model.scoreContinuation(ids.slice(0, 1), ids.slice(1));
    sum -= logprob;
    n += ids.length - 1;
  }
  return sum / n;
}

/** What the unedited model says for the neighbours of `editIndices`, and its prose NLL. */
export async function computeBaseline(model: GPT2, bench: BenchmarkFile, editIndices: Iterable<number>, onProgress?: Progress): Promise<Baseline> {
  const todo = [...new Set(editIndices)].sort((a, b) => a - b);
  const neighbourAnswers = new Map<number, number[][]>();
  for (const [k, i] of todo.entries()) {
    const answers: number[][] = [];
    for (const nb of bench.edits[i].neighbours) {
      // no EOS stop: the answer is exactly as many tokens as the true object (evaluate.greedy)
      answers.push(await model.generate(nb.ids, { maxNewTokens: nb.true_target_ids.length }));
    }
    neighbourAnswers.set(i, answers);
    onProgress?.(k + 1, todo.length + 1);
  }
  const proseNllBefore = await proseNll(model, bench.prose_ids);
  onProgress?.(todo.length + 1, todo.length + 1);
  return { neighbourAnswers, proseNll: proseNllBefore };
}

/** Edits one group, scores every prompt of its edits and the prose, and reverts the model. */
export async function runGroup(model: GPT2, editor: ModelEditor, bench: BenchmarkFile, group: readonly number[], base: Baseline): Promise<GroupOutcome> {
  const edits = group.map((i) => bench.edits[i]);
  const result = await editor.edit(model, edits.map((e) => ({ promptIds: e.prompt_ids, targetIds: e.target_ids })));
  try {
    const editedFacts = new Set(edits.map((e) => `${e.subject}\u0000${e.relation}`));
    const outcomes = [];
    for (const [j, e] of edits.entries()) {
      const answers = base.neighbourAnswers.get(group[j]);
      if (!answers) throw new Error(`no baseline answers for edit ${group[j]}`);
      const es = await exactMatch(model, e.prompt_ids, e.target_ids);
      const ps = [];
      for (const p of e.paraphrases) ps.push(await exactMatch(model, p.ids, e.target_ids));
      const psn = [];
      for (const p of e.novel) psn.push(await exactMatch(model, p.ids, e.target_ids));
      const ns: (number | null)[] = [];
      for (const [k, nb] of e.neighbours.entries()) {
        ns.push(editedFacts.has(`${nb.subject}\u0000${nb.relation}`) ? null : await exactMatch(model, nb.ids, answers[k]));
      }
      outcomes.push({ es, ps, psn, ns });
    }
    const after = await proseNll(model, bench.prose_ids);
    return { edits: outcomes, ppl_increase: Math.exp(after - base.proseNll) - 1 };
  } finally {
    revertChanges(model, result.changes);
    disposeChanges(result.changes);
  }
}

/** runGroup over `groups` in order. */
export async function runGroups(model: GPT2, editor: ModelEditor, bench: BenchmarkFile, groups: readonly number[][], base: Baseline, onProgress?: Progress): Promise<GroupOutcome[]> {
  const out: GroupOutcome[] = [];
  for (const g of groups) {
    out.push(await runGroup(model, editor, bench, g, base));
    onProgress?.(out.length, groups.length);
  }
  return out;
}
