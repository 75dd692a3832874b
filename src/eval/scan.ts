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
import { disposeChanges, reapplyChanges, revertChanges, type ModelEditor } from '../editors';
import type { GPT2, Tokenizer } from '../model';
import type { EditSession } from '../session';
import { greedyContinuation } from '../model/greedy_text';
import { answerFromContinuation } from './metrics';
import { plainTemplate, recognise, type FactsIndex } from './suggest';
import type { LostFact, ScanGroup, ScanKind, ScanProbe, ScanReport } from './scan_report';

export type { LostFact, ScanGroup, ScanKind, ScanProbe, ScanReport } from './scan_report';
export { scanReportJson, scanReportLines } from './scan_report';

/**
 * How much is asked: every other subject of an edited relation up to sameRelation (spread evenly over the alphabet
 * when there are more: city → country has 3,200), and elsewherePerRelation subjects of every relation the edit did
 * not touch. A batch edit of several relations shares the sameRelation budget between them (never fewer than
 * minPerRelation each), so a batch costs about what a single edit does. About 380 facts for a capital edit: 2 to 3
 * seconds on the WASM fallback here, before and after together.
 */
export const SCAN_LIMITS = { sameRelation: 300, minPerRelation: 30, elsewherePerRelation: 8 } as const;

const fill = (template: string, subject: string) => template.replace('{s}', subject);

/** n items spread evenly over the list, in order (all of them when there are no more than n). */
function spread<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}

/** What the index recognised among an edit's fact prompts: edited subjects and relations, distinct, in the edit's order. */
export interface ScanScope {
  subjects: string[];
  /** each edited relation with the wording of its first edited fact (the same-relation facts are asked in it) */
  relations: Array<{ relation: string; template: string }>;
  /** fact prompts the index does not recognise (their relation and subject are unknown, so only the sample covers them) */
  unrecognised: string[];
  /** the recognised edited facts themselves, as subject + NUL + relation: never asked */
  facts: Set<string>;
}

export function scanScope(index: FactsIndex, factPrompts: readonly string[]): ScanScope {
  const scope: ScanScope = { subjects: [], relations: [], unrecognised: [], facts: new Set() };
  for (const p of factPrompts) {
    const rec = recognise(index, p);
    if (!rec) {
      scope.unrecognised.push(p);
      continue;
    }
    scope.facts.add(`${rec.subject}\u0000${rec.relation}`);
    if (!scope.subjects.includes(rec.subject)) scope.subjects.push(rec.subject);
    if (!scope.relations.some((r) => r.relation === rec.relation)) scope.relations.push({ relation: rec.relation, template: rec.template });
  }
  return scope;
}

/**
 * What the scan asks for an edit of `factPrompts` (one prompt, or a batch's): for every edited relation its other
 * subjects, for every edited subject its other facts, and a sample of every relation the edit did not touch. The
 * facts the edit itself changes are left out, and each fact is asked once: a fact of an edited subject counts as
 * "same subject" even when its relation is edited for another subject of the batch. A prompt the index does not
 * recognise adds nothing but the sample. Deterministic: the same edit always asks the same facts.
 */
export function scanProbes(index: FactsIndex, factPrompts: readonly string[], limits = SCAN_LIMITS): ScanProbe[] {
  const scope = scanScope(index, factPrompts);
  const editedSubject = new Set(scope.subjects);
  const editedRelation = new Set(scope.relations.map((r) => r.relation));
  const otherSubjectsOf = (relation: string) =>
    Object.keys(index.subjects).filter((name) => index.subjects[name].facts[relation] !== undefined && !editedSubject.has(name));
  const probe = (kind: ScanKind, template: string, subject: string, relation: string): ScanProbe => ({
    kind, subject, relation, prompt: fill(template, subject), taught: index.targetPrefix + index.subjects[subject].facts[relation],
  });
  const out: ScanProbe[] = [];
  const perRelation = scope.relations.length
    ? Math.max(limits.minPerRelation, Math.floor(limits.sameRelation / scope.relations.length)) : 0;
  for (const { relation, template } of scope.relations) {
    for (const name of spread(otherSubjectsOf(relation), perRelation)) out.push(probe('same relation', template, name, relation));
  }
  for (const subject of scope.subjects) {
    for (const relation of Object.keys(index.subjects[subject].facts)) {
      if (!scope.facts.has(`${subject}\u0000${relation}`)) out.push(probe('same subject', plainTemplate(index, relation), subject, relation));
    }
  }
  for (const relation of Object.keys(index.relations)) {
    if (editedRelation.has(relation)) continue;
    for (const name of spread(otherSubjectsOf(relation), limits.elsewherePerRelation)) out.push(probe('elsewhere', plainTemplate(index, relation), name, relation));
  }
  return out;
}

/** Whether the model gives each probe's taught answer (teacher-forced argmax), in packs: one read-back per pack. */
export async function askFacts(model: GPT2, tokenizer: Tokenizer, probes: readonly ScanProbe[]): Promise<boolean[]> {
  return model.targetsAreArgmax(probes.map((p) => ({ promptIds: tokenizer.encode(p.prompt), targetIds: tokenizer.encode(p.taught) })));
}

export interface ScanOptions {
  eosTokenId: number | null;
  maxNewTokens?: number;
  onProgress?: (message: string) => void;
  /** what "before" is, for the progress messages ("before the edit", "on the original model") */
  before?: string;
}

/**
 * Runs the scan around an edit that is already applied: asks every probe on the weights now, then on the weights
 * before the edit (`beforeEdit` runs a function with the edit undone and re-applies it: EditSession.beforeLatest),
 * and reads what each lost fact says now.
 */
export async function knowledgeScan(
  model: GPT2, tokenizer: Tokenizer, index: FactsIndex, facts: ReadonlyArray<{ prompt: string; target: string }>,
  beforeEdit: <T>(fn: () => Promise<T>) => Promise<T>,
  opts: ScanOptions = { eosTokenId: null },
): Promise<ScanReport> {
  const prompts = facts.map((f) => f.prompt);
  const scope = scanScope(index, prompts);
  const probes = scanProbes(index, prompts);
  opts.onProgress?.(`Asking ${probes.length} facts after the edit…`);
  const after = await askFacts(model, tokenizer, probes);
  opts.onProgress?.(`Asking the same ${probes.length} facts ${opts.before ?? 'before the edit'}…`);
  const before = await beforeEdit(() => askFacts(model, tokenizer, probes));
  const lost: LostFact[] = [];
  for (const [i, p] of probes.entries()) {
    if (!before[i] || after[i]) continue;
    const { text } = await greedyContinuation(model, tokenizer, tokenizer.encode(p.prompt), opts.maxNewTokens ?? 6, opts.eosTokenId);
    const now = answerFromContinuation(text);
    const took = facts.find((f) => f.target.trim() !== '' && now.trim() === f.target.trim());
    lost.push({ kind: p.kind, subject: p.subject, relation: p.relation, prompt: p.prompt, taught: p.taught, now, tookTarget: took?.target ?? null });
  }
  const group = (kind: ScanKind, relation: string | null): ScanGroup => {
    const at = probes.flatMap((p, i) => (p.kind === kind && (relation === null || p.relation === relation) ? [i] : []));
    return {
      kind, relation, asked: at.length,
      knownBefore: at.filter((i) => before[i]).length,
      kept: at.filter((i) => before[i] && after[i]).length,
      gained: at.filter((i) => !before[i] && after[i]).length,
    };
  };
  const groups = [
    ...scope.relations.map((r) => group('same relation', r.relation)),
    group('same subject', null),
    group('elsewhere', null),
  ].filter((g) => g.asked > 0);
  return {
    asked: probes.length,
    knownBefore: before.filter(Boolean).length,
    kept: before.filter((b, i) => b && after[i]).length,
    groups, lost,
    subjects: scope.subjects, relations: scope.relations.map((r) => r.relation), unrecognised: scope.unrecognised.length,
  };
}

/**
 * The scan of `editor`'s edit of `facts` on the weights as they are now: the edit is applied, scanned (its changes
 * reverted and re-applied around the "before" question, so "before" is exactly these weights) and reverted bit for
 * bit. The benchmark's scans use it on the unedited model; the page uses it, inside EditSession.beforeLatest, to scan
 * the fine-tuning edit of a "both methods" comparison on the weights the kept MEND edit started from.
 */
export async function scanEditorEdit(
  model: GPT2, tokenizer: Tokenizer, index: FactsIndex, editor: ModelEditor,
  facts: ReadonlyArray<{ prompt: string; target: string; promptIds: number[]; targetIds: number[] }>,
  opts: ScanOptions,
): Promise<ScanReport> {
  opts.onProgress?.(`Applying the ${editor.method === 'mend' ? 'MEND' : 'fine-tuning'} edit to scan it…`);
  const result = await editor.edit(model, facts.map((f) => ({ promptIds: f.promptIds, targetIds: f.targetIds })));
  try {
    return await knowledgeScan(model, tokenizer, index, facts, async (fn) => {
      revertChanges(model, result.changes);
      try {
        return await fn();
      } finally {
        reapplyChanges(model, result.changes);
      }
    }, opts);
  } finally {
    revertChanges(model, result.changes);
    disposeChanges(result.changes);
  }
}

/**
 * The scan of a session's whole history: around every fact of its applied edits (a prompt edited more than once
 * counts with its latest target), on the original weights (EditSession.beforeAll) and now. The History panel's "Scan
 * what all the edits changed" and the CLI's `scan --history`. `facts`: how many distinct edited prompts there were.
 */
export async function scanSessionHistory(
  session: EditSession, model: GPT2, tokenizer: Tokenizer, index: FactsIndex, opts: ScanOptions,
): Promise<{ report: ScanReport; facts: number }> {
  const latest = new Map<string, { prompt: string; target: string }>();
  for (const e of session.applied) for (const f of e.facts) latest.set(f.prompt, { prompt: f.prompt, target: f.target });
  const report = await knowledgeScan(model, tokenizer, index, [...latest.values()], (fn) => session.beforeAll(fn), { before: 'on the original model', ...opts });
  return { report, facts: latest.size };
}
