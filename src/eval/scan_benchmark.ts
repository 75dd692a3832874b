// The knowledge scan (scan.ts) over the held-out benchmark's single edits: how far each edit spreads beyond the few
// neighbours the benchmark's NS checks. Each edit is applied alone, scanned (the weights before it are the unedited
// model: its changes reverted and re-applied around the "before" question) and reverted bit-exactly, as
// benchmark_run.ts does. TS-only, with no Python counterpart; its building blocks are checked fact by fact in
// tests/eval/scan.test.ts.
import type { GPT2, Tokenizer } from '../model';
import { disposeChanges, reapplyChanges, revertChanges, type ModelEditor } from '../editors';
import type { BenchmarkFile } from './benchmark';
import { knowledgeScan, type ScanKind, type ScanReport } from './scan';
import type { FactsIndex } from './suggest';

export interface ScanTotals {
  edits: number;
  /** pooled over the edits, per kind of fact: facts known before, still given after, and lost to the edit's target */
  kinds: Record<ScanKind, { knownBefore: number; kept: number; tookTarget: number }>;
  /** edits that lost at least one fact */
  editsWithLoss: number;
  /** the same-relation facts, pooled per edited relation */
  byRelation: Record<string, { edits: number; knownBefore: number; kept: number; tookTarget: number }>;
}

export interface EditScan {
  edit: number;
  subject: string;
  relation: string;
  prompt: string;
  target: string;
  report: ScanReport;
}

/** Applies, scans and reverts each benchmark edit in `editIndices` with `editor`. */
export async function scanBenchmarkEdits(
  model: GPT2, tokenizer: Tokenizer, index: FactsIndex, editor: ModelEditor, bench: BenchmarkFile, editIndices: readonly number[],
  opts: { eosTokenId: number | null; onProgress?: (done: number, total: number) => void },
): Promise<EditScan[]> {
  const out: EditScan[] = [];
  for (const i of editIndices) {
    const e = bench.edits[i];
    const target = tokenizer.decode(e.target_ids);
    const result = await editor.edit(model, [{ promptIds: e.prompt_ids, targetIds: e.target_ids }]);
    try {
      const report = await knowledgeScan(model, tokenizer, index, [{ prompt: e.prompt, target }], async (fn) => {
        revertChanges(model, result.changes);
        try {
          return await fn();
        } finally {
          reapplyChanges(model, result.changes);
        }
      }, { eosTokenId: opts.eosTokenId });
      out.push({ edit: i, subject: e.subject, relation: e.relation, prompt: e.prompt, target, report });
    } finally {
      revertChanges(model, result.changes);
      disposeChanges(result.changes);
    }
    opts.onProgress?.(out.length, editIndices.length);
  }
  return out;
}

/**
 * The benchmark's single edits to scan: the first `n` in its order, or with perRelation the first that many of each
 * relation (its order follows the test split, where city → country is most of the facts).
 */
export function scanOrder(bench: BenchmarkFile, n: number, perRelation?: number): number[] {
  const order = bench.groups['mend.single'].flat();
  if (perRelation === undefined) return order.slice(0, n);
  const taken = new Map<string, number>();
  return order.filter((i) => {
    const r = bench.edits[i].relation;
    const k = taken.get(r) ?? 0;
    taken.set(r, k + 1);
    return k < perRelation;
  });
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
    const r = (byRelation[s.relation] ??= { edits: 0, knownBefore: 0, kept: 0, tookTarget: 0 });
    r.edits += 1;
    const g = s.report.groups.find((x) => x.kind === 'same relation');
    r.knownBefore += g?.knownBefore ?? 0;
    r.kept += g?.kept ?? 0;
    r.tookTarget += s.report.lost.filter((l) => l.kind === 'same relation' && l.tookTarget).length;
  }
  return { edits: scans.length, kinds, editsWithLoss: scans.filter((s) => s.report.lost.length > 0).length, byRelation };
}
