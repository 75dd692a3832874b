// What the worker does for editing (issue 5): next to the loaded model it keeps the MEND editor (when the model
// folder has editor_config.json), a fine-tuning baseline on the same weights, and one EditSession holding the
// history. It applies an edit and measures it: for the edit prompt and each paraphrase, the greedy continuation,
// the probability of the new target and of the original answer, before and after; for each neighbour, the greedy
// continuation before and after and the KL of the next-token distribution (definitions: src/eval/metrics.ts); and
// for the whole model, perplexity on held-out prose before and after (the session's damage check).
//
// "Both methods" runs on the one model, one after the other, so GPU memory holds a single copy of the weights:
//   measure before (current weights) → apply fine-tuning → measure → undo it (bit-exact: the session re-points the
//   weights at the buffers they had) → apply MEND → measure.
// Only the MEND edit stays in the history; the fine-tuning run is a comparison, and applying MEND discards it
// (the session drops the redo stack on every new edit). With a single method, that method's edit is kept.
import { greedyContinuation } from '../model/greedy_text';
import type { LoadedModel } from '../model';
import { fetchOptionalFile, listCachedFiles, parseJsonFile, ProgressTracker, sourceName, type ModelSource as EngineSource } from '../model/fetch';
import { FinetuneEditor, finetuneDefaultsFromEval } from '../editors/finetune';
import { guardReading } from '../editors/guard_reading';
import { MendEditor } from '../editors/mend';
import type { ModelEditor } from '../editors/types';
import { damageProseFromFacts, EditSession, type HistoryEntry } from '../session';
import { knowledgeScan, scanEditorEdit, scanSessionHistory } from '../eval/scan';
import { parseFactsIndex } from '../eval/suggest';
import { answerFromContinuation, klDivergence, nextTokenRow, rate, sameAnswer, sameTokens, teacherForced } from '../eval/metrics';
import type {
  EditingInfo, EditMethod, EditReport, EditRequest, HistoryRecheck, HistoryScan, HistoryView, KnowledgeScan, MethodEval, NeighbourEval, ProbeState, ProgressEvent,
  PromptEval, SharedEdits,
} from './protocol';

type Emit = (event: ProgressEvent) => void;

/** Upper bounds that keep one request's work (and a share link's replay) within a few seconds on the WASM fallback. */
export const LIMITS = { prompts: 16, maxNewTokens: 24, sharedEdits: 20 } as const;

interface Attached {
  loaded: LoadedModel;
  session: EditSession;
  editors: Partial<Record<EditMethod, ModelEditor>>;
  info: EditingInfo;
}

let current: Attached | null = null;

/** Frees the session and editors (the model itself belongs to engine-host). Call before the model is replaced. */
export function detach(): void {
  if (!current) return;
  current.session.dispose();
  for (const e of Object.values(current.editors)) e?.dispose();
  current = null;
}

/**
 * Which optional files may be fetched. A Hub model that came from the browser cache must not touch the network (a
 * second visit works offline, and the Hub is not asked again): then only the optional files cached with it are read.
 */
async function optionalFilter(source: EngineSource): Promise<(file: string) => boolean> {
  if (source.kind !== 'hub') return () => true;
  const cached = await listCachedFiles(source).catch(() => [] as string[]);
  if (!cached.some((u) => u.endsWith('/config.json'))) return () => true;
  return (file) => cached.some((u) => u.endsWith(`/${file}`));
}

async function optionalJson(source: EngineSource, file: string, allowed: (file: string) => boolean): Promise<unknown | null> {
  if (!allowed(file)) return null;
  const bytes = await fetchOptionalFile(source, file, new ProgressTracker(sourceName(source)), { useCache: source.kind === 'hub' }).catch(() => null);
  if (!bytes) return null;
  try {
    return parseJsonFile(bytes, file);
  } catch {
    return null; // informative files: a broken one must not block editing
  }
}

function lastBlocksMlp(n: number): string[] {
  const names: string[] = [];
  for (let i = Math.max(0, n - 3); i < n; i++) names.push(`transformer.h.${i}.mlp.c_fc.weight`, `transformer.h.${i}.mlp.c_proj.weight`);
  return names;
}

/** Loads the editor beside the model (when the folder has one) and the facts index; never fails the model load. */
export async function attach(loaded: LoadedModel, emit: Emit): Promise<EditingInfo> {
  detach();
  const source = loaded.source;
  emit({ stage: 'status', message: 'Loading the editor…' });
  const editors: Partial<Record<EditMethod, ModelEditor>> = {};
  let mendNote: string | undefined;
  const allowed = await optionalFilter(source);
  const editorConfig = await optionalJson(source, 'editor_config.json', allowed);
  if (editorConfig) {
    try {
      editors.mend = await MendEditor.load(source, loaded.model, { useCache: source.kind === 'hub' });
    } catch (e) {
      mendNote = `The MEND editor beside this model could not be used: ${(e as Error).message}`;
    }
  } else {
    mendNote = 'This model has no MEND editor (editor_config.json); only fine-tuning is available.';
  }
  const [evalJson, facts] = await Promise.all([optionalJson(source, 'eval.json', allowed), optionalJson(source, 'facts.json', allowed)]);
  const has = (n: string) => loaded.model.weightNames().includes(n) || loaded.model.weightNames().includes(`transformer.${n}`);
  const ftWeights = (evalJson as { ft_config?: { weights?: unknown } } | null)?.ft_config?.weights;
  const weights = Array.isArray(ftWeights) && ftWeights.length && ftWeights.every((w) => typeof w === 'string' && has(w))
    ? (ftWeights as string[])
    : editors.mend ? [...editors.mend.weightNames] : lastBlocksMlp(loaded.config.nLayer);
  const ft = finetuneDefaultsFromEval(evalJson) ?? { steps: 20, learningRate: 1e-3 };
  editors.ft = new FinetuneEditor({ weightNames: weights, steps: ft.steps, learningRate: ft.learningRate });
  // Damage check: perplexity on the model's own held-out prose when facts.json ships some, else a generic paragraph.
  const prose = damageProseFromFacts(facts);
  const session = new EditSession({ model: loaded.model, tokenizer: loaded.tokenizer, editors, damageCheck: prose ? { text: prose } : {} });
  const info: EditingInfo = {
    methods: (['mend', 'ft'] as const).filter((m) => editors[m]),
    editedWeights: [...(editors.mend ?? editors.ft).weightNames],
    ft,
    mendNote,
    facts,
    heldOutProse: prose ? 'model' : 'generic',
  };
  current = { loaded, session, editors, info };
  return info;
}

function requireAttached(): Attached {
  if (!current) throw new Error('No model is loaded yet: load one first.');
  return current;
}

export function historyView(): HistoryView {
  const { session } = requireAttached();
  const item = (e: HistoryEntry, applied: boolean) => ({
    id: e.id, method: e.method, prompt: e.facts[0].prompt, target: e.facts[0].target,
    more: e.facts.slice(1).map((f) => ({ prompt: f.prompt, target: f.target })), createdAt: e.createdAt, applied,
  });
  return {
    items: [...session.applied.map((e) => item(e, true)), ...session.undone.map((e) => item(e, false))],
    canUndo: session.canUndo,
    canRedo: session.canRedo,
    json: session.exportHistory(),
  };
}

function checkText(text: string, what: string, ctx: number, encode: (s: string) => number[]): number[] {
  if (typeof text !== 'string' || text.trim() === '') throw new Error(`${what} is empty`);
  const ids = encode(text);
  if (ids.length === 0) throw new Error(`${what} has no tokens`);
  if (ids.length >= ctx) throw new Error(`${what} is ${ids.length} tokens long; this model reads at most ${ctx}`);
  return ids;
}

interface Snapshot {
  prompts: ProbeState[];
  neighbours: Array<{ text: string; ids: number[]; next: Float32Array }>;
}

/** A prompt scored against a target: the edit prompt and paraphrases against the first fact's, each further fact's against its own. */
interface Scored {
  ids: number[];
  targetIds: number[];
  /** the original answer's tokens ([] when unknown) */
  originalIds: number[];
}

/** The greedy continuation of `ids` on the attached model (greedyContinuation). */
function greedy(a: Attached, ids: number[], maxNewTokens: number): Promise<{ ids: number[]; text: string }> {
  const { model, tokenizer, eosTokenId } = a.loaded;
  return greedyContinuation(model, tokenizer, ids, maxNewTokens, eosTokenId);
}

/** Everything measured on one state of the weights, one model call at a time (they share the device queue). */
async function snapshot(a: Attached, scored: Scored[], neighbourIds: number[][], maxNewTokens: number): Promise<Snapshot> {
  const { model } = a.loaded;
  const V = model.config.vocabSize;
  const prompts: ProbeState[] = [];
  for (const { ids, targetIds, originalIds } of scored) {
    const g = await greedy(a, ids, maxNewTokens);
    const withTarget = teacherForced(await model.logits([...ids, ...targetIds]), ids.length, targetIds, V);
    const original = originalIds.length ? teacherForced(await model.logits([...ids, ...originalIds]), ids.length, originalIds, V) : null;
    prompts.push({
      text: g.text, ids: g.ids,
      targetProb: Math.exp(withTarget.logprob), targetIsArgmax: withTarget.exactMatch,
      originalProb: original ? Math.exp(original.logprob) : NaN,
    });
  }
  const neighbours: Snapshot['neighbours'] = [];
  for (const ids of neighbourIds) {
    const g = await greedy(a, ids, maxNewTokens);
    neighbours.push({ ...g, next: nextTokenRow(await model.logits(ids), ids.length, V) });
  }
  return { prompts, neighbours };
}

function compare(method: EditMethod, req: EditRequest, before: Snapshot, after: Snapshot, entry: HistoryEntry, prose: EditingInfo['heldOutProse']): MethodEval {
  const more = req.moreFacts ?? [];
  const prompts: PromptEval[] = [req.prompt, ...req.paraphrases, ...more.map((f) => f.prompt)].map((prompt, i) => ({
    prompt, before: before.prompts[i], after: after.prompts[i], success: after.prompts[i].targetIsArgmax,
  }));
  const neighbours: NeighbourEval[] = req.neighbours.map((prompt, i) => ({
    prompt,
    before: { text: before.neighbours[i].text, ids: before.neighbours[i].ids },
    after: { text: after.neighbours[i].text, ids: after.neighbours[i].ids },
    unchanged: sameAnswer(before.neighbours[i], after.neighbours[i]),
    continuationUnchanged: sameTokens(before.neighbours[i].ids, after.neighbours[i].ids),
    kl: klDivergence(before.neighbours[i].next, after.neighbours[i].next),
  }));
  const [edit, ...rest] = prompts;
  const paraphrases = rest.slice(0, req.paraphrases.length);
  const batch = rest.slice(req.paraphrases.length);
  const t = entry.timings;
  return {
    method, edit, paraphrases, neighbours, batch,
    summary: {
      editSuccess: edit.success,
      factSuccess: batch.length ? rate([edit, ...batch].map((p) => p.success)) : null,
      paraphraseSuccess: rate(paraphrases.map((p) => p.success)),
      neighbourhoodScore: rate(neighbours.map((n) => n.unchanged)),
      meanKl: neighbours.length ? neighbours.reduce((s, n) => s + n.kl, 0) / neighbours.length : null,
    },
    timingsMs: { capture: t.captureMs, editor: t.editorMs, update: t.updateMs, total: t.totalMs },
    passes: entry.stats.passes ?? 1,
    stepHalvings: entry.stats.stepHalvings ?? 0,
    guard: guardReading(entry.stats) ?? undefined,
    heldOut: entry.damage && {
      before: entry.damage.perplexityBefore, after: entry.damage.perplexityAfter, ratio: entry.damage.ratio,
      flagged: entry.damage.flagged, threshold: entry.damage.threshold, prose,
      original: entry.damage.perplexityOriginal, ratioOriginal: entry.damage.ratioOriginal, flaggedOriginal: entry.damage.flaggedOriginal,
    },
  };
}

export async function edit(req: EditRequest, emit: Emit): Promise<EditReport> {
  const a = requireAttached();
  const { model, tokenizer } = a.loaded;
  const ctx = model.config.nPositions;
  const encode = (s: string) => tokenizer.encode(s);
  const methods: EditMethod[] = req.method === 'both' ? ['ft', 'mend'] : [req.method];
  for (const m of methods) if (!a.editors[m]) throw new Error(m === 'mend' ? a.info.mendNote ?? 'no MEND editor is loaded' : `method ${m} is not available`);
  if (req.paraphrases.length + req.neighbours.length + 1 > LIMITS.prompts) throw new Error(`at most ${LIMITS.prompts} prompts can be checked at once`);
  const more = req.moreFacts ?? [];
  const maxNewTokens = Math.max(1, Math.min(LIMITS.maxNewTokens, Math.round(req.maxNewTokens) || 8));
  // Validate everything before touching the weights: a bad paraphrase must not leave a half-measured edit behind.
  const factList = [{ prompt: req.prompt, target: req.target }, ...more.map((f) => ({ prompt: f.prompt, target: f.target }))];
  const facts = a.session.tokenize(factList); // at most 10, each named when bad, no prompt twice
  const [fact] = facts;
  const paraphraseIds = req.paraphrases.map((p, i) => checkText(p, `paraphrase ${i + 1}`, ctx - fact.targetIds.length, encode));
  const neighbourIds = req.neighbours.map((p, i) => checkText(p, `neighbour ${i + 1}`, ctx, encode));

  const steps = 2 + 2 * methods.length;
  let step = 0;
  const say = (message: string) => emit({ stage: 'edit', message, step: ++step, steps });

  say('Measuring the model before the edit…');
  // The original answers must be known before "before" is scored; taken from the greedy text where not given.
  const originalOf = async (promptIds: number[], given: string | undefined) => {
    if (given) return given;
    return answerFromContinuation((await greedy(a, promptIds, maxNewTokens)).text); // (without the end-of-text token)
  };
  const original = await originalOf(fact.promptIds, req.originalAnswer);
  const longest = (ids: number[][]) => Math.max(...ids.map((p) => p.length));
  const originalIds = original ? encode(original).slice(0, ctx - longest([fact.promptIds, ...paraphraseIds])) : [];
  const scored: Scored[] = [fact.promptIds, ...paraphraseIds].map((ids) => ({ ids, targetIds: fact.targetIds, originalIds }));
  for (const [i, f] of facts.slice(1).entries()) {
    const answer = await originalOf(f.promptIds, more[i].originalAnswer);
    scored.push({ ids: f.promptIds, targetIds: f.targetIds, originalIds: answer ? encode(answer).slice(0, ctx - f.promptIds.length) : [] });
  }
  const before = await snapshot(a, scored, neighbourIds, maxNewTokens);

  const results: MethodEval[] = [];
  let kept: HistoryEntry | null = null;
  for (const [i, m] of methods.entries()) {
    const of = facts.length > 1 ? ` of ${facts.length} facts` : '';
    say(m === 'mend' ? `Applying the MEND edit${of}…` : `Fine-tuning${of} (${a.info.ft.steps} Adam steps)…`);
    const entry = await a.session.apply(factList, m);
    say(`Measuring after the ${m === 'mend' ? 'MEND' : 'fine-tuning'} edit…`);
    const after = await snapshot(a, scored, neighbourIds, maxNewTokens);
    results.push(compare(m, req, before, after, entry, a.info.heldOutProse));
    if (i < methods.length - 1) a.session.undo(); // a comparison run: back to the weights the next method starts from
    else kept = entry;
  }
  say('Done.');
  return { request: { ...req, moreFacts: more, maxNewTokens }, originalAnswer: original, results, history: historyView(), entryId: kept!.id };
}

/**
 * Asks every applied edit's facts again on the weights now: the greedy continuation, the target's probability and
 * whether it is still the argmax. Read-only; one generation and one scoring pass per fact.
 */
export async function recheckHistory(maxNewTokens: number): Promise<HistoryRecheck> {
  const a = requireAttached();
  const { model } = a.loaded;
  const n = Math.max(1, Math.min(LIMITS.maxNewTokens, Math.round(maxNewTokens) || 4));
  const facts: HistoryRecheck['facts'] = [];
  for (const [i, entry] of a.session.applied.entries()) {
    for (const f of entry.facts) {
      const g = await greedy(a, f.promptIds, n);
      const scored = teacherForced(await model.logits([...f.promptIds, ...f.targetIds]), f.promptIds.length, f.targetIds, model.config.vocabSize);
      facts.push({
        entryId: entry.id, position: i + 1, prompt: f.prompt, target: f.target,
        text: g.text, targetProb: Math.exp(scored.logprob), success: scored.exactMatch,
      });
    }
  }
  const d = await a.session.historyDamage();
  const perplexity = d && { original: d.perplexityBefore, now: d.perplexityAfter, ratio: d.ratio, flagged: d.flagged, threshold: d.threshold };
  return { appliedIds: a.session.applied.map((e) => e.id), facts, perplexity };
}

/**
 * The knowledge scan of the latest applied edit (src/eval/scan.ts): the facts asked on the weights now, then with the
 * edit undone (EditSession.beforeLatest re-applies it bit for bit afterwards). With `method`, another method's edit
 * of the same facts instead (the fine-tuning run of a "both methods" comparison, which was not kept): that edit is
 * made again on the weights the kept edit started from, scanned, and taken back; the history is as it was
 * afterwards. Refused when `entryId` is no longer the latest applied edit, or the model has no facts index.
 */
export async function scanKnowledge(entryId: number, method: EditMethod | undefined, emit: Emit): Promise<KnowledgeScan> {
  const a = requireAttached();
  const latest = a.session.applied.at(-1);
  if (!latest || latest.id !== entryId) throw new Error('That edit is no longer the latest applied one; the scan compares the weights just before and after the latest edit.');
  if (!a.info.facts) throw new Error("This model has no facts index (facts.json), so there are no taught facts to scan.");
  const index = parseFactsIndex(a.info.facts);
  const { model, tokenizer, eosTokenId } = a.loaded;
  const scanned = method ?? latest.method;
  const editor = a.editors[scanned];
  if (!editor) throw new Error(`${scanned === 'mend' ? 'MEND' : 'Fine-tuning'} is not available for this model, so its edit cannot be scanned.`);
  let step = 0;
  const onProgress = (message: string) => emit({ stage: 'edit', message, step: ++step, steps: scanned === latest.method ? 2 : 3 });
  const report = scanned === latest.method
    ? await knowledgeScan(model, tokenizer, index, latest.facts, (fn) => a.session.beforeLatest(fn), { eosTokenId, onProgress })
    : await a.session.beforeLatest(() => scanEditorEdit(model, tokenizer, index, editor, latest.facts, { eosTokenId, onProgress }));
  return { ...report, entryId, method: scanned };
}

/**
 * The knowledge scan of the whole history (src/eval/scan.ts scanHistory): what the applied edits together took away,
 * which the per-edit scan cannot show once edits pile up (docs/eval.md "Sequential edits").
 */
export async function scanHistory(emit: Emit): Promise<HistoryScan> {
  const a = requireAttached();
  if (a.session.applied.length === 0) throw new Error('No edit is applied: there is nothing to compare with the original model.');
  if (!a.info.facts) throw new Error("This model has no facts index (facts.json), so there are no taught facts to scan.");
  const index = parseFactsIndex(a.info.facts);
  const { model, tokenizer, eosTokenId } = a.loaded;
  let step = 0;
  const { report, facts } = await scanSessionHistory(a.session, model, tokenizer, index, {
    eosTokenId, onProgress: (message) => emit({ stage: 'edit', message, step: ++step, steps: 2 }),
  });
  return { ...report, appliedIds: a.session.applied.map((e) => e.id), facts };
}

export function undo(): HistoryView {
  requireAttached().session.undo();
  return historyView();
}

export function redo(): HistoryView {
  requireAttached().session.redo();
  return historyView();
}

export function revertAll(): HistoryView {
  requireAttached().session.revert();
  return historyView();
}

export function clearHistory(): HistoryView {
  requireAttached().session.reset();
  return historyView();
}

export async function importHistory(json: unknown, emit: Emit): Promise<HistoryView> {
  const a = requireAttached();
  const n = Array.isArray((json as { entries?: unknown })?.entries) ? (json as { entries: unknown[] }).entries.length : 0;
  emit({ stage: 'edit', message: `Replaying ${n} edit${n === 1 ? '' : 's'}…`, step: 1, steps: 1 });
  await a.session.importHistory(json);
  return historyView();
}

/**
 * A share link's edit list, turned into a history file and imported: the session's own validation (tokenizer,
 * model, methods) then applies to links as to files, and a link that fails it changes nothing.
 */
export async function importShared(shared: SharedEdits, emit: Emit): Promise<HistoryView> {
  const a = requireAttached();
  if (shared.edits.length > LIMITS.sharedEdits) throw new Error(`a share link holds at most ${LIMITS.sharedEdits} edits`);
  const json = a.session.exportHistory() as { entries: unknown[]; position: number };
  json.entries = shared.edits.map((e, i) => {
    const editor = a.editors[e.method];
    if (!editor) throw new Error(`edit ${i + 1} uses ${e.method === 'mend' ? 'MEND' : 'fine-tuning'}, which this model does not offer`);
    const facts = a.session.tokenize([{ prompt: e.prompt, target: e.target }, ...(e.more ?? [])]);
    const options: Record<string, unknown> = { weights: [...editor.weightNames] };
    if (editor instanceof FinetuneEditor) Object.assign(options, { steps: editor.steps, learning_rate: editor.learningRate });
    return {
      method: e.method, facts: facts.map((f) => ({ prompt: f.prompt, target: f.target, prompt_ids: f.promptIds, target_ids: f.targetIds })),
      options, stats: {}, timings_ms: { capture: 0, editor: 0, update: 0, total: 0 }, created_at: new Date().toISOString(),
    };
  });
  json.position = shared.position;
  return importHistory(json, emit);
}

/**
 * The editing state other worker handlers read (weights-host.ts's WeightsContext has this shape): the model, its
 * tokenizer, the MEND editor and the applied edits. Null before a model is loaded.
 */
export function editingContext(): { model: LoadedModel['model']; tokenizer: LoadedModel['tokenizer']; mend: MendEditor | null; applied: readonly HistoryEntry[] } | null {
  if (!current) return null;
  return {
    model: current.loaded.model, tokenizer: current.loaded.tokenizer,
    mend: (current.editors.mend as MendEditor | undefined) ?? null, applied: current.session.applied,
  };
}
