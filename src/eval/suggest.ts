// Reading the model's facts index (facts.json, docs/formats.md) to help build an honest test of an edit:
// recognise which subject and relation a prompt asks about, then propose paraphrases (the same question in the
// corpus's other wordings, labelled by whether the model saw that wording in training) and neighbours (facts that
// must not change: the same relation for other subjects, other relations for the same subject).

export type TemplateSplit = 'train' | 'heldout' | 'novel';

export interface FactsIndex {
  targetPrefix: string;
  relations: Record<string, { templates: { template: string; split: TemplateSplit }[]; objects: string[] }>;
  subjects: Record<string, { split: string; facts: Record<string, string> }>;
}

/** What each template split means for the person reading the page. */
export const SPLIT_LABEL: Record<TemplateSplit, string> = {
  train: 'known wording (seen in training)',
  heldout: 'held-out wording (its parts seen, never together)',
  novel: 'novel wording (never seen)',
};

export class FactsFormatError extends Error {
  constructor(message: string) {
    super(`facts.json: ${message}`);
    this.name = 'FactsFormatError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** Validates the parts of facts.json the page uses; anything malformed is refused with where it is. */
export function parseFactsIndex(json: unknown): FactsIndex {
  if (!isObject(json) || json.format !== 'mendlab-facts') throw new FactsFormatError('not a "mendlab-facts" file');
  if (!isObject(json.relations) || !isObject(json.subjects)) throw new FactsFormatError('"relations" and "subjects" must be objects');
  const relations: FactsIndex['relations'] = {};
  for (const [name, r] of Object.entries(json.relations)) {
    if (!isObject(r) || !Array.isArray(r.templates)) throw new FactsFormatError(`relations.${name}.templates must be a list`);
    const templates = r.templates.map((t, i) => {
      if (!isObject(t) || typeof t.template !== 'string' || !t.template.includes('{s}')) {
        throw new FactsFormatError(`relations.${name}.templates[${i}] needs a "template" with {s}`);
      }
      const split = t.split === 'train' || t.split === 'heldout' || t.split === 'novel' ? t.split : 'novel';
      return { template: t.template, split: split as TemplateSplit };
    });
    const objects = Array.isArray(r.objects) ? r.objects.filter((o): o is string => typeof o === 'string') : [];
    relations[name] = { templates, objects };
  }
  const subjects: FactsIndex['subjects'] = {};
  for (const [name, s] of Object.entries(json.subjects)) {
    if (!isObject(s) || !isObject(s.facts)) throw new FactsFormatError(`subjects["${name}"].facts must be an object`);
    const facts: Record<string, string> = {};
    for (const [rel, obj] of Object.entries(s.facts)) if (typeof obj === 'string' && relations[rel]) facts[rel] = obj;
    subjects[name] = { split: typeof s.split === 'string' ? s.split : 'unknown', facts };
  }
  return { targetPrefix: typeof json.target_prefix === 'string' ? json.target_prefix : ' ', relations, subjects };
}

export interface Recognised {
  subject: string;
  relation: string;
  template: string;
  split: TemplateSplit;
  /** the object facts.json records, with the target prefix (" Paris") */
  answer: string;
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The subject and relation a prompt asks about: the template that matches the whole prompt (surrounding
 * whitespace ignored) with a known subject in place of {s}. Among several matches the longest template wins
 * ("Quiz: The capital of {s} is" over "{s} is" style generic ones).
 */
export function recognise(index: FactsIndex, prompt: string): Recognised | null {
  const text = prompt.trim();
  let best: Recognised | null = null;
  for (const [relation, r] of Object.entries(index.relations)) {
    for (const t of r.templates) {
      if (best && t.template.length <= best.template.length) continue;
      const [pre, post] = t.template.split('{s}');
      if (!text.startsWith(pre) || !text.endsWith(post) || text.length <= pre.length + post.length) continue;
      const subject = text.slice(pre.length, text.length - post.length);
      const object = index.subjects[subject]?.facts[relation];
      if (object === undefined) continue;
      best = { subject, relation, template: t.template, split: t.split, answer: index.targetPrefix + object };
    }
  }
  return best;
}

/** Which template split a prompt's wording belongs to, for any subject (null if it is none of the corpus's). */
export function wordingOf(index: FactsIndex, prompt: string): { relation: string; split: TemplateSplit } | null {
  const text = prompt.trim();
  for (const [relation, r] of Object.entries(index.relations)) {
    for (const t of r.templates) {
      const re = new RegExp(`^${t.template.split('{s}').map(escapeRegExp).join('.+')}$`);
      if (re.test(text)) return { relation, split: t.split };
    }
  }
  return null;
}

export interface ParaphraseSuggestion {
  prompt: string;
  split: TemplateSplit;
}

export interface NeighbourSuggestion {
  prompt: string;
  kind: 'same relation' | 'same subject';
  /** what facts.json says the answer is (" Tokyo") */
  expected: string;
}

const fill = (template: string, subject: string) => template.replace('{s}', subject);
/** Templates without a wrapper phrase ("Fact:", "Quiz:" ...) read most naturally: the first one of each core. */
const isCoreOnly = (t: string) => !/^(Fact|Quiz|Did you know\?|According to|Here is something|As every|Note that)/.test(t);

/** Paraphrases of a recognised prompt: `perSplit` wordings from each split (train, held-out, novel), core phrasings first. */
export function suggestParaphrases(index: FactsIndex, rec: Recognised, perSplit = 1): ParaphraseSuggestion[] {
  const out: ParaphraseSuggestion[] = [];
  const templates = index.relations[rec.relation].templates.filter((t) => t.template !== rec.template);
  for (const split of ['train', 'heldout', 'novel'] as const) {
    const ofSplit = templates.filter((t) => t.split === split);
    const ordered = [...ofSplit.filter((t) => isCoreOnly(t.template)), ...ofSplit.filter((t) => !isCoreOnly(t.template))];
    for (const t of ordered.slice(0, perSplit)) out.push({ prompt: fill(t.template, rec.subject), split });
  }
  return out;
}

/**
 * Neighbours: `perKind` other subjects asked the same question in the same wording (training-split subjects, so
 * the model knows their answer and a change is visible), and `perKind` other relations of the same subject asked
 * in their first training wording. Deterministic: the same prompt always gets the same neighbours.
 */
export function suggestNeighbours(index: FactsIndex, rec: Recognised, perKind = 2): NeighbourSuggestion[] {
  const out: NeighbourSuggestion[] = [];
  const others = Object.entries(index.subjects)
    .filter(([name, s]) => name !== rec.subject && s.split === 'train' && s.facts[rec.relation] !== undefined)
    // a different object than the edited subject's, so "unchanged" is a real test and not a coincidence
    .filter(([, s]) => index.targetPrefix + s.facts[rec.relation] !== rec.answer);
  const start = others.length ? hash(rec.subject) % others.length : 0;
  for (let i = 0; i < Math.min(perKind, others.length); i++) {
    const [name, s] = others[(start + i * 7) % others.length];
    out.push({ prompt: fill(rec.template, name), kind: 'same relation', expected: index.targetPrefix + s.facts[rec.relation] });
  }
  const subject = index.subjects[rec.subject];
  const relations = Object.keys(subject.facts).filter((r) => r !== rec.relation).slice(0, perKind);
  for (const r of relations) out.push({ prompt: fill(plainTemplate(index, r), rec.subject), kind: 'same subject', expected: index.targetPrefix + subject.facts[r] });
  return out;
}

/** A relation's plainest question: its first training wording without a wrapper phrase ("The calling code of {s} is"). */
export function plainTemplate(index: FactsIndex, relation: string): string {
  const templates = index.relations[relation].templates;
  return (templates.find((x) => x.split === 'train' && isCoreOnly(x.template)) ?? templates[0]).template;
}

/**
 * What the model's own held-out evaluation says about MEND edits, so the page can offer examples the shipped editor
 * is known to handle and say honestly which kinds of edit usually fail. Both parts are optional files beside the
 * model (docs/formats.md): eval.json's per-relation rates and benchmark.json's per-case PyTorch outcomes.
 */
export interface EditEvidence {
  /** MEND single-edit rates on held-out edits, per relation (eval.json per_relation.mend_single) */
  relationRates: Record<string, { es: number; ps: number | null; ns: number | null }>;
  /** benchmark edits whose single-edit MEND outcome PyTorch recorded (benchmark.json python_outcomes, mend.single) */
  cases: BenchmarkCase[];
}

export interface BenchmarkCase {
  subject: string;
  relation: string;
  prompt: string;
  trueObject: string;
  newObject: string;
  /** the edit prompt's greedy answer became the new target */
  editSuccess: boolean;
  /** held-out paraphrases that gave the new target, of how many */
  paraphrasesOk: number;
  paraphrases: number;
}

const rate = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1 ? v : null);

/** eval.json's per-relation MEND single-edit rates; relations without a valid edit-success rate are left out. */
export function parseRelationRates(json: unknown): EditEvidence['relationRates'] {
  const per = isObject(json) && isObject(json.per_relation) && isObject(json.per_relation.mend_single) ? json.per_relation.mend_single : {};
  const out: EditEvidence['relationRates'] = {};
  for (const [relation, r] of Object.entries(per)) {
    const es = isObject(r) ? rate(r.es) : null;
    if (isObject(r) && es !== null) out[relation] = { es, ps: rate(r.ps), ns: rate(r.ns) };
  }
  return out;
}

/**
 * benchmark.json's single MEND edits that carry a PyTorch outcome: groups["mend.single"][g] lists the edits of group
 * g, python_outcomes.runs["mend.single"].groups[g].edits the same edits' flags. Malformed entries are skipped.
 */
export function parseBenchmarkCases(json: unknown): BenchmarkCase[] {
  if (!isObject(json) || !Array.isArray(json.edits) || !isObject(json.groups) || !isObject(json.python_outcomes)) return [];
  const groups = json.groups['mend.single'];
  const runs = json.python_outcomes.runs;
  const outcomes = isObject(runs) && isObject(runs['mend.single']) ? runs['mend.single'].groups : null;
  if (!Array.isArray(groups) || !Array.isArray(outcomes)) return [];
  const out: BenchmarkCase[] = [];
  outcomes.forEach((o, g) => {
    const members = groups[g];
    if (!isObject(o) || !Array.isArray(o.edits) || !Array.isArray(members)) return;
    o.edits.forEach((flags, j) => {
      const e = (json.edits as unknown[])[members[j] as number];
      if (!isObject(flags) || !isObject(e) || typeof e.prompt !== 'string' || typeof e.subject !== 'string' || typeof e.relation !== 'string'
        || typeof e.true_object !== 'string' || typeof e.new_object !== 'string') return;
      const ps = Array.isArray(flags.ps) ? flags.ps : [];
      out.push({
        subject: e.subject, relation: e.relation, prompt: e.prompt, trueObject: e.true_object, newObject: e.new_object,
        editSuccess: flags.es === 1, paraphrasesOk: ps.filter((x) => x === 1).length, paraphrases: ps.length,
      });
    });
  });
  return out;
}

/** How an example is expected to go, from the evidence above (or 'unknown' without it). */
export type ExampleOutlook =
  | { kind: 'case'; success: boolean; paraphrasesOk: number; paraphrases: number; relationRate: number | null }
  | { kind: 'relation'; rate: number }
  | { kind: 'unknown' };

export interface ExampleEdit {
  prompt: string;
  target: string;
  relation: string;
  /** shown in the example list: the fact, the change and what the evidence says */
  label: string;
  outlook: ExampleOutlook;
  /** the evidence says MEND will most likely not reach the target (kept in the list on purpose, and said so) */
  expectedToFail: boolean;
}

/** A relation whose held-out MEND edit success is below this is called "expected to fail". */
export const LIKELY_FAILS_BELOW = 0.5;

const pct0 = (p: number) => `${Math.round(100 * p)}%`;

/** One sentence on how MEND did on held-out edits of a relation, or null without evidence. */
export function relationOutlook(evidence: EditEvidence | null | undefined, relation: string): string | null {
  const r = evidence?.relationRates[relation];
  if (!r) return null;
  const more = [r.ps !== null ? `paraphrases ${pct0(r.ps)}` : '', r.ns !== null ? `neighbours unchanged ${pct0(r.ns)}` : ''].filter(Boolean).join(', ');
  return `In the model’s held-out benchmark, single MEND edits of “${relation}” reached the new target ${pct0(r.es)} of the time${more ? ` (${more})` : ''}.`;
}

function describe(subject: string, from: string, to: string, o: ExampleOutlook, relation: string): string {
  const fact = `${subject}: ${from} → ${to}`;
  if (o.kind === 'case') {
    if (!o.success) {
      const of = o.relationRate !== null ? ` (it succeeds on ${pct0(o.relationRate)} of held-out “${relation}” edits)` : '';
      return `${fact} — expected to fail: MEND missed this exact edit in the benchmark${of}`;
    }
    const para = o.paraphrases ? `, ${o.paraphrasesOk}/${o.paraphrases} paraphrases` : '';
    return `${fact} — ✓ MEND succeeded on this exact edit in the benchmark${para}`;
  }
  if (o.kind === 'relation') {
    return o.rate < LIKELY_FAILS_BELOW
      ? `${fact} — expected to fail: MEND succeeds on ${pct0(o.rate)} of held-out “${relation}” edits`
      : `${fact} — MEND succeeds on ${pct0(o.rate)} of held-out “${relation}” edits`;
  }
  return fact;
}

/**
 * Example edits to start from. With evidence: first benchmark edits MEND is known to have passed (prompt and all
 * paraphrases), then training facts of the relations where MEND does best, then one edit the evidence says will
 * most likely fail (a missed benchmark case, else the weakest relation), labelled as such, so the list shows what
 * the editor can and cannot do. Without evidence: training facts across relations, as before. Deterministic.
 */
export function exampleEdits(index: FactsIndex, opts: { evidence?: EditEvidence | null; count?: number } = {}): ExampleEdit[] {
  const count = opts.count ?? 6;
  const evidence = opts.evidence ?? null;
  const rates = evidence?.relationRates ?? {};
  const out: ExampleEdit[] = [];
  const push = (e: ExampleEdit) => {
    if (out.length < count && !out.some((x) => x.prompt === e.prompt)) out.push(e);
  };

  // benchmark cases the facts index recognises (so the form proposes paraphrases and neighbours for them too)
  const cases = (evidence?.cases ?? []).filter((c) => {
    const rec = recognise(index, c.prompt);
    return rec && rec.subject === c.subject && rec.relation === c.relation && index.relations[c.relation].objects.includes(c.newObject);
  });
  const asExample = (c: BenchmarkCase): ExampleEdit => {
    const outlook: ExampleOutlook = {
      kind: 'case', success: c.editSuccess, paraphrasesOk: c.paraphrasesOk, paraphrases: c.paraphrases, relationRate: rates[c.relation]?.es ?? null,
    };
    return {
      prompt: c.prompt, target: index.targetPrefix + c.newObject, relation: c.relation, outlook, expectedToFail: !c.editSuccess,
      label: describe(c.subject, c.trueObject, c.newObject, outlook, c.relation),
    };
  };
  const passed = cases.filter((c) => c.editSuccess && c.paraphrasesOk === c.paraphrases);
  const reserve = evidence ? 1 : 0; // room for the one example expected to fail
  for (const c of passed.slice(0, Math.max(0, Math.min(2, count - reserve)))) push(asExample(c));

  // training facts, the relations MEND does best on first (relations without a rate after those with one)
  const relations = Object.keys(index.relations);
  const ranked = evidence
    ? relations.filter((r) => (rates[r]?.es ?? 1) >= LIKELY_FAILS_BELOW).sort((a, b) => (rates[b]?.es ?? -1) - (rates[a]?.es ?? -1))
    : relations;
  for (const relation of ranked) {
    if (out.length >= count - reserve) break;
    const e = trainingExample(index, relation, rates[relation]?.es);
    if (e) push(e);
  }
  if (evidence) {
    const failed = cases.find((c) => !c.editSuccess);
    const weakest = relations.filter((r) => rates[r] && rates[r].es < LIKELY_FAILS_BELOW).sort((a, b) => rates[a].es - rates[b].es)[0];
    const fail = failed ? asExample(failed) : weakest ? trainingExample(index, weakest, rates[weakest].es) : null;
    if (fail) push(fail);
  }
  return out;
}

/** A training subject of `relation` asked in a training core wording, given another object of the relation. */
function trainingExample(index: FactsIndex, relation: string, es: number | undefined): ExampleEdit | null {
  const r = index.relations[relation];
  const t = r.templates.find((x) => x.split === 'train' && isCoreOnly(x.template));
  const candidates = Object.entries(index.subjects).filter(([, s]) => s.split === 'train' && s.facts[relation] !== undefined);
  if (!t || candidates.length === 0) return null;
  const [subject, s] = candidates[hash(relation) % candidates.length];
  const old = s.facts[relation];
  const objects = r.objects.filter((o) => o !== old);
  if (objects.length === 0) return null;
  const target = objects[hash(subject) % objects.length];
  const outlook: ExampleOutlook = es === undefined ? { kind: 'unknown' } : { kind: 'relation', rate: es };
  return {
    prompt: fill(t.template, subject), target: index.targetPrefix + target, relation, outlook,
    expectedToFail: es !== undefined && es < LIKELY_FAILS_BELOW, label: describe(subject, old, target, outlook, relation),
  };
}

/** A small stable string hash (FNV-1a), so suggestions do not change between visits. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
