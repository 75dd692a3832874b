// The knowledge scan: "did anything else break?" asked of hundreds of facts instead of the handful of neighbours a
// person picks. After an edit it asks the model every fact of the edited relation (in the edit prompt's own wording),
// every other fact of the edited subject, and a few facts of every other relation, on the weights before the edit and
// after it, and lists each fact the model knew before and no longer gives, with what it says now. It is how the
// same-relation bleed shows (an edit of France's capital to Rome that also moves Spain's).
//
// "Knew" is the benchmark's test for edit success, applied to the taught answer: facts.json's object is the
// teacher-forced argmax token for token (GPT2.targetsAreArgmax). Facts the model did not know before are counted but
// cannot be lost. The facts come from the model's facts index (facts.json), so the scan exists only for models that
// ship one, like the embedded default.
import type { GPT2, Tokenizer } from '../model';
import { greedyContinuation } from '../model/greedy_text';
import { answerFromContinuation } from './metrics';
import { plainTemplate, recognise, type FactsIndex } from './suggest';

export type ScanKind = 'same relation' | 'same subject' | 'elsewhere';

export interface ScanProbe {
  kind: ScanKind;
  subject: string;
  relation: string;
  prompt: string;
  /** the object facts.json records, with the target prefix (" Madrid") */
  taught: string;
}

/**
 * How much is asked: every subject of the edited relation up to sameRelation (spread evenly over the alphabet when
 * there are more: city → country has 3,200), and elsewherePerRelation subjects of every other relation. About 380
 * facts for a capital edit: 2 to 3 seconds on the WASM fallback here, before and after together.
 */
export const SCAN_LIMITS = { sameRelation: 300, elsewherePerRelation: 8 } as const;

const fill = (template: string, subject: string) => template.replace('{s}', subject);

/** n items spread evenly over the list, in order (all of them when there are no more than n). */
function spread<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}

/**
 * What the scan asks for an edit of `factPrompts` (a batch's first prompt decides the relation and subject; the facts
 * the edit itself changes are left out). A prompt the index does not recognise still gets the "elsewhere" sample,
 * over every relation. Deterministic: the same edit always asks the same facts.
 */
export function scanProbes(index: FactsIndex, factPrompts: readonly string[], limits = SCAN_LIMITS): ScanProbe[] {
  const edited = factPrompts.map((p) => recognise(index, p));
  const isEdited = (subject: string, relation: string) => edited.some((r) => r?.subject === subject && r.relation === relation);
  const rec = edited[0];
  const subjectsOf = (relation: string) =>
    Object.entries(index.subjects).filter(([name, s]) => s.facts[relation] !== undefined && !isEdited(name, relation));
  const probe = (kind: ScanKind, template: string, subject: string, relation: string): ScanProbe => ({
    kind, subject, relation, prompt: fill(template, subject), taught: index.targetPrefix + index.subjects[subject].facts[relation],
  });
  const out: ScanProbe[] = [];
  if (rec) {
    for (const [name] of spread(subjectsOf(rec.relation).filter(([n]) => n !== rec.subject), limits.sameRelation)) {
      out.push(probe('same relation', rec.template, name, rec.relation));
    }
    for (const relation of Object.keys(index.subjects[rec.subject].facts)) {
      if (relation !== rec.relation && !isEdited(rec.subject, relation)) out.push(probe('same subject', plainTemplate(index, relation), rec.subject, relation));
    }
  }
  for (const relation of Object.keys(index.relations)) {
    if (relation === rec?.relation) continue;
    const others = subjectsOf(relation).filter(([n]) => n !== rec?.subject);
    for (const [name] of spread(others, limits.elsewherePerRelation)) out.push(probe('elsewhere', plainTemplate(index, relation), name, relation));
  }
  return out;
}

/** Whether the model gives each probe's taught answer (teacher-forced argmax), in packs: one read-back per pack. */
export async function askFacts(model: GPT2, tokenizer: Tokenizer, probes: readonly ScanProbe[]): Promise<boolean[]> {
  return model.targetsAreArgmax(probes.map((p) => ({ promptIds: tokenizer.encode(p.prompt), targetIds: tokenizer.encode(p.taught) })));
}

export interface ScanGroup {
  kind: ScanKind;
  asked: number;
  /** facts whose taught answer the model gave before the edit */
  knownBefore: number;
  /** of those, still given after it */
  kept: number;
  /** facts the model did not give before and gives after */
  gained: number;
}

export interface LostFact {
  kind: ScanKind;
  subject: string;
  relation: string;
  prompt: string;
  taught: string;
  /** the answer the greedy continuation states now (answerFromContinuation) */
  now: string;
  /** the edit's target this fact now gives (one of the edit's facts' targets), else null */
  tookTarget: string | null;
}

export interface ScanReport {
  asked: number;
  knownBefore: number;
  kept: number;
  groups: ScanGroup[];
  lost: LostFact[];
  /** what the scan was built around: the first fact's recognised subject and relation, when recognised */
  subject: string | null;
  relation: string | null;
}

/**
 * Runs the scan around an edit that is already applied: asks every probe on the weights now, then on the weights
 * before the edit (`beforeEdit` runs a function with the edit undone and re-applies it: EditSession.beforeLatest),
 * and reads what each lost fact says now.
 */
export async function knowledgeScan(
  model: GPT2, tokenizer: Tokenizer, index: FactsIndex, facts: ReadonlyArray<{ prompt: string; target: string }>,
  beforeEdit: <T>(fn: () => Promise<T>) => Promise<T>,
  opts: { eosTokenId: number | null; maxNewTokens?: number; onProgress?: (message: string) => void } = { eosTokenId: null },
): Promise<ScanReport> {
  const probes = scanProbes(index, facts.map((f) => f.prompt));
  opts.onProgress?.(`Asking ${probes.length} facts after the edit…`);
  const after = await askFacts(model, tokenizer, probes);
  opts.onProgress?.(`Asking the same ${probes.length} facts before the edit…`);
  const before = await beforeEdit(() => askFacts(model, tokenizer, probes));
  const lost: LostFact[] = [];
  for (const [i, p] of probes.entries()) {
    if (!before[i] || after[i]) continue;
    const { text } = await greedyContinuation(model, tokenizer, tokenizer.encode(p.prompt), opts.maxNewTokens ?? 6, opts.eosTokenId);
    const now = answerFromContinuation(text);
    const took = facts.find((f) => f.target.trim() !== '' && now.trim() === f.target.trim());
    lost.push({ kind: p.kind, subject: p.subject, relation: p.relation, prompt: p.prompt, taught: p.taught, now, tookTarget: took?.target ?? null });
  }
  const kinds: ScanKind[] = ['same relation', 'same subject', 'elsewhere'];
  const groups = kinds.map((kind): ScanGroup => {
    const at = probes.flatMap((p, i) => (p.kind === kind ? [i] : []));
    return {
      kind, asked: at.length,
      knownBefore: at.filter((i) => before[i]).length,
      kept: at.filter((i) => before[i] && after[i]).length,
      gained: at.filter((i) => !before[i] && after[i]).length,
    };
  }).filter((g) => g.asked > 0);
  const rec = recognise(index, facts[0].prompt);
  return {
    asked: probes.length,
    knownBefore: before.filter(Boolean).length,
    kept: before.filter((b, i) => b && after[i]).length,
    groups, lost, subject: rec?.subject ?? null, relation: rec?.relation ?? null,
  };
}
