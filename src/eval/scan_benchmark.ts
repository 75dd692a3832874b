// The knowledge scan (scan.ts) over the held-out benchmark's edits, single or in its batches of 10: how far each edit
// spreads beyond the few neighbours the benchmark's NS checks. Each edit (a group: one fact, or a batch's ten as one
// update) is applied alone, scanned (the weights before it are the unedited model: its changes reverted and
// re-applied around the "before" question) and reverted bit-exactly, as benchmark_run.ts does. TS-only, with no Python counterpart; its building blocks are checked fact by fact in
// tests/eval/scan.test.ts.
import type { GPT2, Tokenizer } from '../model';
import type { ModelEditor } from '../editors';
import type { BenchmarkFile } from './benchmark';
import { scanEditorEdit, type ScanKind, type ScanReport } from './scan';
import type { FactsIndex } from './suggest';

export interface ScanTotals {
  edits: number;
  /** pooled over the edits, per kind of fact: facts known before, still given after, and lost to the edit's target */
  kinds: Record<ScanKind, { knownBefore: number; kept: number; tookTarget: number }>;
  /** edits that lost at least one fact */
  editsWithLoss: number;
  /** the same-relation facts, pooled per edited relation (`edits`: the edits that asked that relation's group) */
  byRelation: Record<string, { edits: number; knownBefore: number; kept: number; tookTarget: number }>;
}

export interface EditScan {
  /** the benchmark edit indices applied together (one for a single edit) */
  edits: number[];
  facts: Array<{ subject: string; relation: string; prompt: string; target: string }>;
  report: ScanReport;
}

/** Applies, scans and reverts each group of benchmark edits in `groups` (one update per group) with `editor`. */
export async function scanBenchmarkEdits(
  model: GPT2, tokenizer: Tokenizer, index: FactsIndex, editor: ModelEditor, bench: BenchmarkFile, groups: readonly (readonly number[])[],
  opts: { eosTokenId: number | null; onProgress?: (done: number, total: number) => void },
): Promise<EditScan[]> {
  const out: EditScan[] = [];
  for (const group of groups) {
    const edits = group.map((i) => bench.edits[i]);
    const facts = edits.map((e) => ({ subject: e.subject, relation: e.relation, prompt: e.prompt, target: tokenizer.decode(e.target_ids) }));
    const tokenized = facts.map((f, j) => ({ ...f, promptIds: edits[j].prompt_ids, targetIds: edits[j].target_ids }));
    const report = await scanEditorEdit(model, tokenizer, index, editor, tokenized, { eosTokenId: opts.eosTokenId });
    out.push({ edits: [...group], facts, report });
    opts.onProgress?.(out.length, groups.length);
  }
  return out;
}

/**
 * The benchmark's edits to scan, as groups: with batchSize 1 its single edits, the first `n` in its order, or with
 * perRelation the first that many of each relation (its order follows the test split, where city → country is most
 * of the facts); with batchSize 10 the first `n` of its batches of 10 (the mend.batch10 groups).
 */
export function scanOrder(bench: BenchmarkFile, n: number, perRelation?: number, batchSize: 1 | 10 = 1): number[][] {
  if (batchSize === 10) {
    if (perRelation !== undefined) throw new Error('perRelation applies to single edits only');
    return bench.groups['mend.batch10'].slice(0, n).map((g) => [...g]);
  }
  const order = bench.groups['mend.single'].flat();
  if (perRelation === undefined) return order.slice(0, n).map((i) => [i]);
  const taken = new Map<string, number>();
  return order.filter((i) => {
    const r = bench.edits[i].relation;
    const k = taken.get(r) ?? 0;
    taken.set(r, k + 1);
    return k < perRelation;
  }).map((i) => [i]);
}

/** The scans pooled: per kind, how many known facts the edits kept and how many now give the edit's target. */
export function scanTotals(scans: readonly EditScan[]): ScanTotals {
  const kinds: ScanTotals['kinds'] = {
    'same relation': { knownBefore: 0, kept: 0, tookTarget: 0 },
    'same subject': { knownBefore: 0, kept: 0, tookTarget: 0 },
    elsewhere: { knownBefore: 0, kept: 0, tookTarget: 0 },
  };
  for (const s of scans) {
    for (const g of s.report.groups) {
      kinds[g.kind].knownBefore += g.knownBefore;
      kinds[g.kind].kept += g.kept;
    }
    for (const l of s.report.lost) if (l.tookTarget) kinds[l.kind].tookTarget += 1;
  }
  const byRelation: ScanTotals['byRelation'] = {};
  for (const s of scans) {
    for (const g of s.report.groups) {
      if (g.kind !== 'same relation' || g.relation === null) continue;
      const r = (byRelation[g.relation] ??= { edits: 0, knownBefore: 0, kept: 0, tookTarget: 0 });
      r.edits += 1;
      r.knownBefore += g.knownBefore;
      r.kept += g.kept;
      r.tookTarget += s.report.lost.filter((l) => l.kind === 'same relation' && l.relation === g.relation && l.tookTarget).length;
    }
  }
  return { edits: scans.length, kinds, editsWithLoss: scans.filter((s) => s.report.lost.length > 0).length, byRelation };
}
