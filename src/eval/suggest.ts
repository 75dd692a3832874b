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
  for (const r of relations) {
    const t = index.relations[r].templates.find((x) => x.split === 'train' && isCoreOnly(x.template)) ?? index.relations[r].templates[0];
    out.push({ prompt: fill(t.template, rec.subject), kind: 'same subject', expected: index.targetPrefix + subject.facts[r] });
  }
  return out;
}

/** Example edits to start from: training subjects asked in a training wording, each given another object of its relation. */
export function exampleEdits(index: FactsIndex, count = 6): Array<{ prompt: string; target: string; label: string }> {
  const out: Array<{ prompt: string; target: string; label: string }> = [];
  const relations = Object.keys(index.relations);
  const subjects = Object.entries(index.subjects).filter(([, s]) => s.split === 'train');
  for (let i = 0; out.length < count && i < relations.length * 4; i++) {
    const relation = relations[(i * 5) % relations.length];
    const r = index.relations[relation];
    const t = r.templates.find((x) => x.split === 'train' && isCoreOnly(x.template));
    const candidates = subjects.filter(([, s]) => s.facts[relation] !== undefined);
    if (!t || candidates.length === 0) continue;
    const [subject, s] = candidates[(hash(relation) + i * 13) % candidates.length];
    const old = s.facts[relation];
    const objects = r.objects.filter((o) => o !== old);
    if (objects.length === 0) continue;
    const target = objects[(hash(subject) + i) % objects.length];
    const prompt = fill(t.template, subject);
    if (out.some((e) => e.prompt === prompt)) continue;
    out.push({ prompt, target: index.targetPrefix + target, label: `${subject}: ${old} → ${target}` });
  }
  return out;
}

/** A small stable string hash (FNV-1a), so suggestions do not change between visits. */
function hash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}
