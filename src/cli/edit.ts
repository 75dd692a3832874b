// `edit`: apply one edit (MEND or the fine-tuning baseline) of one or several facts to a model and report what
// changed, for each fact's edit prompt, the paraphrases (should now give the target) and neighbours (should not
// change). Nothing is written: the edit lives only in this process.
//
// --prompt and --target repeat and pair in order (1st prompt with 1st target, ...); several facts are ONE edit (MEND
// sums their rank-1 pieces in one update, fine-tuning trains on all of them together), at most 10 facts and no prompt
// twice (src/session/facts.ts checkBatch). --paraphrase is scored against the FIRST fact's target.
//
// --json prints one object:
//   {"edit": P, "paraphrases": [P...], "neighbours": [N...], "timings_ms": {"capture", "editor", "update", "total"}}
//   {..., "already_predicted": bool, "damage": {"perplexity_before", "perplexity_after", "ratio", "flagged", "threshold", "prose"}}
//   {..., "batch": [P & {"already_predicted": bool}...]}
//   {..., "passes": n, "step_halvings": n, "first_pass_guard": {"rise_full_step", "rise_kept_step", "limit"} | null}
//   P = {"prompt", "before", "after", "target_prob_before", "target_prob_after", "success"}
// edit, already_predicted and paraphrases are about the first fact (the paraphrases scored against its target);
// batch has one entry per further fact (facts 2..n, in order; [] for a single fact): its own prompt against its own
// target, and whether the model already gave that target.
// already_predicted: the model gave the whole target before the edit (the edit is applied anyway and changes little);
// damage: perplexity on held-out prose before/after the edit (src/session/damage.ts): the model's own held-out
// paragraphs when its folder ships them (facts.json heldout_prose; prose "model"), else a fixed English paragraph
// (prose "generic"); flagged when it grew by more than --max-perplexity-ratio (default 1.5). passes: MEND passes the
// edit took (editor_config.json batch_retry; fine-tuning 1); step_halvings: how often the editor's pass-1 perplexity
// guard halved the first step (first_pass_guard; else 0); first_pass_guard: what that guard measured on its own
// held-out paragraphs (relative perplexity rise at the editor's own step and at the step kept, null when the last
// halving allowed was kept unchecked; its limit), null when it did not run (fine-tuning, several facts, no guard).
// Text with control characters, more than 16 target tokens or beyond the context is refused with exit code 2 before
// anything is computed; so are different --prompt/--target counts, more than 10 facts and two facts with one prompt.
//   N = {"prompt", "before", "after", "unchanged", "continuation_unchanged"}
// before/after are greedy completions; target_prob_* the teacher-forced probability of the whole target
// (product over its tokens); success = every target token is the argmax under teacher forcing after the edit;
// unchanged = the answer the greedy completion states (its text up to the first sentence punctuation or line break)
// is the same before and after; continuation_unchanged = the whole completion is token for token the same (the free
// text after the answer moves with any edit, so it is reported but does not count; src/eval/metrics.ts sameAnswer).
import { parseArgs } from 'node:util';
import type { GPT2 } from '../model';
import type { Command } from './command';
import { backendArg, choiceArg, defaultModelFolder, intArg } from './args';
import { guardReading } from '../editors/guard_reading';
import { greedyContinuation } from '../model/greedy_text';
import { sameAnswer, sameTokens } from '../eval/metrics';
import { UsageError } from './errors';
import { resolveModelSource } from './model-source';
import { knowledgeScan, scanReportJson, scanReportLines } from '../eval/scan';
import { parseFactsIndex, type FactsIndex } from '../eval/suggest';


const USAGE = `edit --prompt "..." --target "..." [--prompt "..." --target "..."]... [--paraphrase "..."]... [--neighbour "..."]... [--method mend|ft] [--model <folder-or-hub-id>] [--backend wasm|cpu|webgpu] [--max-new-tokens N] [--ft-steps N] [--ft-lr X] [--hub-url URL] [--max-perplexity-ratio X] [--scan] [--json]`;

interface PromptReport {
  prompt: string;
  before: string;
  after: string;
  target_prob_before: number;
  target_prob_after: number;
  success: boolean;
}

interface BatchReport extends PromptReport {
  already_predicted: boolean;
}

interface NeighbourReport {
  prompt: string;
  before: string;
  after: string;
  unchanged: boolean;
  continuation_unchanged: boolean;
}

interface Probe {
  ids: number[];
  completion: number[];
  text: string;
  targetProb: number;
  targetIsArgmax: boolean;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      prompt: { type: 'string', multiple: true },
      target: { type: 'string', multiple: true },
      paraphrase: { type: 'string', multiple: true },
      neighbour: { type: 'string', multiple: true },
      method: { type: 'string' },
      model: { type: 'string' },
      backend: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      'ft-steps': { type: 'string' },
      'ft-lr': { type: 'string' },
      'hub-url': { type: 'string' },
      'max-perplexity-ratio': { type: 'string' },
      scan: { type: 'boolean' },
      json: { type: 'boolean' },
    },
  });
  const prompts = values.prompt ?? [];
  const targets = values.target ?? [];
  if (prompts.length === 0 || prompts.some((p) => p.trim() === '')) throw new UsageError('--prompt is missing or empty');
  if (targets.length === 0 || targets.some((t) => t.trim() === '')) throw new UsageError('--target is missing or empty');
  if (prompts.length !== targets.length) {
    throw new UsageError(`${prompts.length} --prompt but ${targets.length} --target: give one --target per --prompt`);
  }
  const facts = prompts.map((prompt, i) => ({ prompt, target: targets[i] }));
  const paraphrases = values.paraphrase ?? [];
  const neighbours = values.neighbour ?? [];
  for (const p of [...paraphrases, ...neighbours]) if (p.trim() === '') throw new UsageError('--paraphrase/--neighbour must not be empty');
  const method = choiceArg('method', values.method, ['mend', 'ft'] as const, 'mend');
  const backend = backendArg(values.backend);
  const maxNewTokens = intArg('max-new-tokens', values['max-new-tokens'], 10, 1);
  intArg('ft-steps', values['ft-steps'], 1, 1); // validated now; the default may come from the model's eval.json
  if (values['ft-lr'] !== undefined && !(Number(values['ft-lr']) > 0 && Number.isFinite(Number(values['ft-lr'])))) {
    throw new UsageError(`--ft-lr must be a positive number, got "${values['ft-lr']}"`);
  }
  const maxRatio = values['max-perplexity-ratio'] === undefined ? undefined : Number(values['max-perplexity-ratio']);
  if (maxRatio !== undefined && !(maxRatio > 1 && Number.isFinite(maxRatio))) {
    throw new UsageError(`--max-perplexity-ratio must be a number above 1, got "${values['max-perplexity-ratio']}"`);
  }
  const source = resolveModelSource(values.model ?? defaultModelFolder(), values['hub-url']);

  // tfjs loads only now, so argument errors are reported instantly.
  const [{ setupCliBackend }, { loadModel }, { loadEditors, requireMend }, sessionModule, fetchModule] = await Promise.all([
    import('./backend'), import('../model/load'), import('../editors/load'), import('../session'), import('../model/fetch'),
  ]);
  const { EditSession, EditInputError } = sessionModule;
  const checkText: (text: unknown, field: 'prompt' | 'target') => void = sessionModule.checkText;
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;

  const loaded = await loadModel(source);
  const { model, tokenizer } = loaded;

  // Check every input against the tokenizer and context before any work: bad input changes nothing.
  const checkSession = new EditSession({ model, tokenizer, editors: {}, damageCheck: false });
  const usage = <T>(check: () => T): T => {
    try {
      return check();
    } catch (e) {
      if (e instanceof EditInputError) throw new UsageError(e.message);
      throw e;
    }
  };
  // At most 10 facts, each named when bad ("fact 2: ..."), no prompt twice (EditSession.tokenize).
  const tokenized = usage(() => checkSession.tokenize(facts));
  // One at a time: paraphrases are not facts of the edit, so the batch limits must not apply to them (a paraphrase
  // list may be longer than 10, or repeat).
  for (const prompt of paraphrases) usage(() => checkSession.tokenize([{ prompt, target: facts[0].target }]));
  for (const n of neighbours) {
    try {
      checkText(n, 'prompt');
    } catch (e) {
      throw new UsageError(`--neighbour: ${(e as Error).message}`);
    }
    const len = tokenizer.encode(n).length;
    if (len === 0) throw new UsageError(`--neighbour "${n}" has no tokens`);
    if (len >= model.config.nPositions) throw new UsageError(`--neighbour is ${len} tokens, beyond the model's context of ${model.config.nPositions}`);
  }

  // MEND needs the editor beside the model; fine-tuning uses the settings the training pipeline evaluated it with
  // (editors/load.ts), unless --ft-steps / --ft-lr say otherwise.
  const editors = await loadEditors(source, model, {
    skipMend: method !== 'mend',
    ftSteps: values['ft-steps'] === undefined ? undefined : Number(values['ft-steps']),
    ftLearningRate: values['ft-lr'] === undefined ? undefined : Number(values['ft-lr']),
  });
  const editor = method === 'mend' ? requireMend(editors) : editors.ft;
  // The damage check watches the model's own held-out prose when facts.json ships some (as the app does).
  const factsBytes = await fetchModule.fetchOptionalFile(source, 'facts.json', new fetchModule.ProgressTracker(fetchModule.sourceName(source)), { useCache: false }).catch(() => null);
  let prose: string[] | null = null;
  let factsJson: unknown = null;
  try {
    factsJson = factsBytes && fetchModule.parseJsonFile(factsBytes, 'facts.json');
    prose = factsJson ? sessionModule.damageProseFromFacts(factsJson) : null;
  } catch {
    prose = null; // facts.json is informative; a broken one leaves the generic paragraph
  }
  // --scan asks the facts index, so it needs a readable one; refused before the edit, like any bad input.
  let factsIndex: FactsIndex | null = null;
  if (values.scan) {
    if (!factsJson) throw new UsageError(`--scan needs the model's facts index (facts.json), and ${fetchModule.sourceName(source)} has ${factsBytes ? 'an unreadable one' : 'none'}`);
    try {
      factsIndex = parseFactsIndex(factsJson);
    } catch (e) {
      throw new UsageError(`--scan: ${(e as Error).message}`);
    }
  }
  const session = new EditSession({
    model, tokenizer, editors: { [method]: editor }, damageCheck: { maxPerplexityRatio: maxRatio, ...(prose ? { text: prose } : {}) },
  });

  // What is scored before and after: the first fact's prompt, the paraphrases (against the first fact's target),
  // then every further fact's prompt against its own target.
  const scored = [
    { prompt: facts[0].prompt, targetIds: tokenized[0].targetIds },
    ...paraphrases.map((prompt) => ({ prompt, targetIds: tokenized[0].targetIds })),
    ...tokenized.slice(1).map((f) => ({ prompt: f.prompt, targetIds: f.targetIds })),
  ];
  const probe = async (prompt: string, targetIds: number[] | null): Promise<Probe> => {
    const ids = tokenizer.encode(prompt);
    const { ids: completion, text } = await greedyContinuation(model, tokenizer, ids, maxNewTokens, loaded.eosTokenId);
    if (!targetIds) return { ids, completion, text, targetProb: NaN, targetIsArgmax: false };
    const { logprob } = await model.scoreContinuation(ids, targetIds);
    return { ids, completion, text, targetProb: Math.exp(logprob), targetIsArgmax: await targetIsArgmax(model, ids, targetIds) };
  };
  const measure = async () => ({
    edits: await sequential(scored, (s) => probe(s.prompt, s.targetIds)),
    neighbours: await sequential(neighbours, (p) => probe(p, null)),
  });

  const before = await measure();
  const entry = await session.apply(facts, method); // all facts in one update
  const after = await measure();
  const guard = guardReading(entry.stats);
  const scan = factsIndex && await knowledgeScan(model, tokenizer, factsIndex, facts, (fn) => session.beforeLatest(fn), {
    eosTokenId: loaded.eosTokenId, onProgress: values.json ? undefined : (m) => process.stderr.write(m + '\n'),
  });

  const report = (i: number): PromptReport => ({
    prompt: scored[i].prompt,
    before: before.edits[i].text,
    after: after.edits[i].text,
    target_prob_before: before.edits[i].targetProb,
    target_prob_after: after.edits[i].targetProb,
    success: after.edits[i].targetIsArgmax,
  });
  const d = entry.damage!;
  const out = {
    edit: report(0),
    already_predicted: entry.alreadyPredicted[0],
    batch: facts.slice(1).map((_, j): BatchReport => ({
      ...report(1 + paraphrases.length + j), already_predicted: entry.alreadyPredicted[j + 1],
    })),
    damage: {
      perplexity_before: d.perplexityBefore, perplexity_after: d.perplexityAfter, ratio: d.ratio, flagged: d.flagged, threshold: d.threshold,
      prose: prose ? 'model' as const : 'generic' as const,
    },
    paraphrases: paraphrases.map((_, i) => report(i + 1)),
    neighbours: neighbours.map((prompt, i): NeighbourReport => ({
      prompt,
      before: before.neighbours[i].text,
      after: after.neighbours[i].text,
      unchanged: sameAnswer(continuation(before.neighbours[i]), continuation(after.neighbours[i])),
      continuation_unchanged: sameTokens(before.neighbours[i].completion, after.neighbours[i].completion),
    })),
    passes: entry.stats.passes ?? 1,
    step_halvings: entry.stats.stepHalvings ?? 0,
    first_pass_guard: guard && { rise_full_step: guard.riseFull, rise_kept_step: guard.riseKept, limit: guard.limit },
    timings_ms: {
      capture: round(entry.timings.captureMs), editor: round(entry.timings.editorMs),
      update: round(entry.timings.updateMs), total: round(entry.timings.totalMs),
    },
    ...(scan ? { scan: scanReportJson(scan) } : {}),
  };

  if (values.json) process.stdout.write(JSON.stringify(out) + '\n');
  else process.stdout.write(humanReport(out, method, facts) + '\n');

  session.dispose();
  editor.dispose();
  model.dispose();
  return 0;
}

/** Teacher-forced: is every target token the model's top prediction at its position? (whole-target exact match) */
async function targetIsArgmax(model: GPT2, promptIds: number[], targetIds: number[]): Promise<boolean> {
  const logits = await model.logits([...promptIds, ...targetIds]);
  const V = model.config.vocabSize;
  return targetIds.every((t, j) => {
    const row = logits.subarray((promptIds.length - 1 + j) * V, (promptIds.length + j) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    return best === t;
  });
}

async function sequential<T, R>(items: T[], fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const it of items) out.push(await fn(it)); // one model call at a time: they share the device queue
  return out;
}

const continuation = (p: Probe) => ({ text: p.text, ids: p.completion });
const round = (ms: number) => Math.round(ms * 10) / 10;

interface Report {
  edit: PromptReport;
  paraphrases: PromptReport[];
  neighbours: NeighbourReport[];
  already_predicted: boolean;
  batch: BatchReport[];
  damage: { perplexity_before: number; perplexity_after: number; ratio: number; flagged: boolean; threshold: number; prose: 'model' | 'generic' };
  passes: number;
  step_halvings: number;
  first_pass_guard: { rise_full_step: number; rise_kept_step: number | null; limit: number } | null;
  timings_ms: Record<string, number>;
  scan?: ReturnType<typeof scanReportJson>;
}

function humanReport(out: Report, method: string, facts: Array<{ prompt: string; target: string }>): string {
  const pct = (p: number) => `${(100 * p).toFixed(2)}%`;
  const fact = (f: { prompt: string; target: string }) => `${JSON.stringify(f.prompt)} → ${JSON.stringify(f.target)}`;
  const title = facts.length === 1
    ? `${method.toUpperCase()} edit: ${fact(facts[0])}`
    : `${method.toUpperCase()} edit of ${facts.length} facts in one update: ${facts.map(fact).join('; ')}`;
  const lines = [title, ''];
  if (facts.length === 1) {
    if (out.already_predicted) lines.push('note: the model already answered this target before the edit; the edit changes little', '');
  } else {
    const already = [out.already_predicted, ...out.batch.map((b) => b.already_predicted)];
    const notes = already.flatMap((a, i) => (a ? [`note: the model already answered fact ${i + 1}'s target before the edit; the edit changes little there`] : []));
    if (notes.length) lines.push(...notes, '');
  }
  const d = out.damage;
  if (d.flagged) {
    lines.push(`WARNING: perplexity on held-out text rose from ${d.perplexity_before.toPrecision(4)} to ${d.perplexity_after.toPrecision(4)} (×${d.ratio.toPrecision(3)}, limit ×${d.threshold}); this edit may have damaged the model`, '');
  }
  const prompt = (kind: string, r: PromptReport) => {
    lines.push(`${kind} ${JSON.stringify(r.prompt)}  ${r.success ? 'SUCCESS' : 'not the argmax'}`);
    lines.push(`  before: ${JSON.stringify(r.before)}   p(target) ${pct(r.target_prob_before)}`);
    lines.push(`  after:  ${JSON.stringify(r.after)}   p(target) ${pct(r.target_prob_after)}`);
  };
  prompt('edit      ', out.edit);
  for (const p of out.paraphrases) prompt('paraphrase', p);
  out.batch.forEach((b, j) => prompt(`batch fact ${j + 2}`, b));
  for (const n of out.neighbours) {
    const note = n.unchanged && !n.continuation_unchanged ? ' (the text after the answer differs)' : '';
    lines.push(`neighbour  ${JSON.stringify(n.prompt)}  ${n.unchanged ? 'unchanged' : 'CHANGED'}${note}`);
    lines.push(`  before: ${JSON.stringify(n.before)}`, `  after:  ${JSON.stringify(n.after)}`);
  }
  lines.push('');
  if (out.batch.length) {
    const ok = [out.edit, ...out.batch].filter((r) => r.success).length;
    lines.push(`batch: ${ok} of ${out.batch.length + 1} facts give their new target`);
  }
  const change = (d.ratio - 1) * 100;
  lines.push(`held-out perplexity (${d.prose === 'model' ? "the model's held-out prose" : 'a fixed English paragraph'}): ` +
    `${d.perplexity_before.toPrecision(4)} → ${d.perplexity_after.toPrecision(4)} (${change >= 0 ? '+' : ''}${change.toFixed(2)}%)`);
  const g = out.first_pass_guard;
  const rise = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(2)}%`;
  const limit = g && `${+(100 * g.limit).toFixed(2)}%`;
  if (g && out.step_halvings > 0) {
    const times = out.step_halvings === 1 ? 'once' : out.step_halvings === 2 ? 'twice' : `${out.step_halvings} times`;
    const kept = g.rise_kept_step === null ? 'the last halving allowed was kept unchecked' : `at the step kept, ${rise(g.rise_kept_step)}`;
    lines.push(`first step halved ${times}: at the editor's own step the edit raised the perplexity of the guard's own held-out paragraphs by ${rise(g.rise_full_step)}, past its limit of ${limit}; ${kept} (first_pass_guard)`);
  } else if (g) {
    lines.push(`perplexity guard: the first step raised the perplexity of its own held-out paragraphs by ${rise(g.rise_full_step)} (limit ${limit})`);
  }
  if (out.passes > 1) lines.push(`MEND passes: ${out.passes} (the first left the edit prompt short of its target; batch_retry)`);
  const t = out.timings_ms;
  lines.push(`timings (ms): capture ${t.capture}, editor ${t.editor}, update ${t.update}, total ${t.total}`);
  if (out.scan) lines.push('', ...scanReportLines(out.scan, facts.length));
  return lines.join('\n');
}

export const edit: Command = { name: 'edit', summary: 'apply one edit of one or several facts (MEND or fine-tuning) and compare before/after', usage: USAGE, run };
