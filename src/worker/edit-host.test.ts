// The worker's editing operations in Node (tfjs WASM) on the tiny MEND fixture (a real trained model + editor):
// editor loading beside the model, an edit with its before/after measurements, "both methods", undo/redo/revert,
// history import and share-link replay. The same calls the page makes through messages.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { answerFromContinuation } from '../eval/metrics';
import * as editHost from './edit-host';
import * as host from './engine-host';
import type { EditRequest, ProgressEvent } from './protocol';

const ROOT = new URL('../../', import.meta.url).pathname;
const FIXTURES = join(ROOT, 'tests/fixtures');
const WASM_DIR = join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/');
const golden = JSON.parse(readFileSync(join(FIXTURES, 'mend-tiny/golden.json'), 'utf8'));
const probe = (kind: string) => golden.cases[0].probes.find((p: { kind: string }) => p.kind === kind).prompt as string;

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const file = join(FIXTURES, decodeURIComponent(req.url ?? '/'));
    if (!file.startsWith(FIXTURES) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(readFileSync(file).byteLength) });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  await host.init('wasm', WASM_DIR);
  await host.load({ kind: 'url', url: `${base}mend-tiny/`, label: 'mend-tiny' }, () => {});
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

const request = (method: EditRequest['method']): EditRequest => ({
  prompt: golden.cases[0].edits[0].prompt, target: golden.cases[0].edits[0].target, method,
  paraphrases: [probe('paraphrase')], neighbours: [probe('neighbour')], maxNewTokens: 4,
});

describe('edit host', () => {
  it('loads the MEND editor beside the model, and fine-tuning on the same weights', async () => {
    const info = await editHost.attach(host.loadedModel()!, () => {});
    expect(info.methods).toEqual(['mend', 'ft']);
    expect(info.editedWeights).toEqual(golden.edited_weights);
    expect(info.facts).toBeNull(); // the fixture has no facts.json
    expect(info.heldOutProse).toBe('generic'); // so the damage check reads the generic paragraph
  });

  it('applies a MEND edit and reports before/after for prompt, paraphrase and neighbour, with progress', async () => {
    const events: ProgressEvent[] = [];
    const r = await editHost.edit(request('mend'), (e) => events.push(e));
    expect(r.results.map((x) => x.method)).toEqual(['mend']);
    const m = r.results[0];
    expect(m.edit.after.targetProb).toBeGreaterThan(m.edit.before.targetProb);
    expect(m.edit.success).toBe(m.edit.after.targetIsArgmax);
    expect(m.summary.editSuccess).toBe(m.edit.success);
    expect(m.paraphrases).toHaveLength(1);
    expect(m.neighbours).toHaveLength(1);
    const n = m.neighbours[0];
    expect(n.continuationUnchanged).toBe(JSON.stringify(n.before.ids) === JSON.stringify(n.after.ids));
    const answer = answerFromContinuation(n.before.text); // unchanged = the stated answer is (eval/metrics sameAnswer)
    expect(n.unchanged).toBe(answer === '' ? n.continuationUnchanged : answer === answerFromContinuation(n.after.text));
    expect(m.summary.neighbourhoodScore).toBe(n.unchanged ? 1 : 0);
    expect(n.kl).toBeGreaterThanOrEqual(0);
    expect(r.originalAnswer).not.toBe('');
    expect(m.edit.before.originalProb).toBeGreaterThan(0);
    // the whole-model check: held-out perplexity before and after, and the flag that follows from their ratio
    const h = m.heldOut!;
    expect(h.prose).toBe('generic');
    expect(h.before).toBeGreaterThan(1);
    expect(h.after).not.toBe(h.before); // the edit changed the weights the text runs through
    expect(h.ratio).toBeCloseTo(h.after / h.before, 12);
    expect(h.flagged).toBe(!(h.ratio <= h.threshold));
    expect(events.filter((e) => e.stage === 'edit').length).toBeGreaterThanOrEqual(3);
    expect(r.history.items).toHaveLength(1);
    expect(r.history.items[0]).toMatchObject({ method: 'mend', applied: true, id: r.entryId });
  });

  it('undo restores the original greedy output bit for bit; redo brings the edit back', async () => {
    const first = await editHost.edit(request('mend'), () => {});
    const afterIds = first.results[0].edit.after.ids;
    // the state before this edit already held the previous test's edit: undoing one edit returns exactly there
    const view = editHost.undo();
    expect(view.items.filter((i) => i.applied)).toHaveLength(1);
    const greedy = async () => (await host.generate(request('mend').prompt, { maxNewTokens: 4, temperature: 0, topK: 0 }, () => {})).newTokens;
    expect(await greedy()).toEqual(first.results[0].edit.before.ids);
    editHost.redo();
    expect(await greedy()).toEqual(afterIds);
    editHost.undo();
    expect(editHost.historyView().canRedo).toBe(true);
    expect(editHost.revertAll().items.every((i) => !i.applied)).toBe(true);
  });

  it('"both" runs fine-tuning as a comparison and keeps only the MEND edit', async () => {
    editHost.clearHistory();
    const r = await editHost.edit(request('both'), () => {});
    expect(r.results.map((x) => x.method)).toEqual(['ft', 'mend']);
    // both start from the same weights, so their "before" is identical
    expect(r.results[0].edit.before).toEqual(r.results[1].edit.before);
    expect(r.results[0].heldOut!.before).toBe(r.results[1].heldOut!.before);
    expect(r.history.items.map((i) => i.method)).toEqual(['mend']);
    // a batch compared: each method reports every fact, from the same "before"
    const c = golden.cases[1];
    const both = await editHost.edit({
      prompt: c.edits[0].prompt, target: c.edits[0].target, moreFacts: [c.edits[1]], method: 'both', paraphrases: [], neighbours: [], maxNewTokens: 2,
    }, () => {});
    expect(both.results.map((x) => x.batch.map((p) => p.prompt))).toEqual([[c.edits[1].prompt], [c.edits[1].prompt]]);
    expect(both.results[0].batch[0].before).toEqual(both.results[1].batch[0].before);
    expect(both.results[0].batch[0].after.targetProb).not.toBe(both.results[1].batch[0].after.targetProb);
    expect(both.history.items.at(-1)).toMatchObject({ method: 'mend', more: [{ prompt: c.edits[1].prompt, target: c.edits[1].target }] });
  });

  it('a batch edit applies every fact in one update: PyTorch\'s post-edit distribution, and a row per fact', async () => {
    editHost.clearHistory();
    const c = golden.cases[1]; // the golden batch case: two facts edited together
    const [a, b] = c.edits as Array<{ prompt: string; target: string }>;
    const prompt = (kind: string) => c.probes.find((p: { kind: string }) => p.kind === kind);
    const r = await editHost.edit({
      prompt: a.prompt, target: a.target, moreFacts: [{ prompt: b.prompt, target: b.target }], method: 'mend',
      paraphrases: [prompt('paraphrase').prompt], neighbours: [prompt('neighbour').prompt], maxNewTokens: 3,
    }, () => {});
    const m = r.results[0];
    expect(m.batch.map((p) => p.prompt)).toEqual([b.prompt]);
    const b0 = m.batch[0];
    expect(b0.after.targetProb).toBeGreaterThan(b0.before.targetProb); // fact 2 is scored against its own target
    expect(b0.success).toBe(b0.after.targetIsArgmax);
    expect(m.summary.factSuccess).toBe([m.edit, b0].filter((p) => p.success).length / 2);
    expect(r.history.items).toHaveLength(1);
    expect(r.history.items[0].more).toEqual([{ prompt: b.prompt, target: b.target }]);
    // the weights now are PyTorch's batch edit: every probe's next-token distribution matches the golden one
    for (const probeCase of c.probes as Array<{ prompt: string; post_logits: number[] }>) {
      const max = Math.max(...probeCase.post_logits);
      const z = probeCase.post_logits.reduce((s, l) => s + Math.exp(l - max), 0);
      const top = await host.topk(probeCase.prompt, 3);
      for (const t of top) expect(t.prob).toBeCloseTo(Math.exp(probeCase.post_logits[t.id] - max) / z, 4);
    }
    // a fact given twice, too many facts, and an empty further fact are refused before anything changes
    const base = { ...request('mend'), paraphrases: [], neighbours: [] };
    await expect(editHost.edit({ ...base, moreFacts: [{ prompt: base.prompt, target: ' Cl' }] }, () => {})).rejects.toThrow(/facts 1 and 2 have the same prompt/);
    const eleven = Array.from({ length: 10 }, (_, i) => ({ prompt: `${base.prompt} ${i}`, target: ' Cl' }));
    await expect(editHost.edit({ ...base, moreFacts: eleven }, () => {})).rejects.toThrow(/at most 10 facts, got 11/);
    await expect(editHost.edit({ ...base, moreFacts: [{ prompt: 'x', target: ' ' }] }, () => {})).rejects.toThrow(/fact 2: the target is empty/);
    expect(editHost.historyView().items).toHaveLength(1);
    // the share link and the history file carry both facts
    const view = await editHost.importShared({ edits: [{ method: 'mend', prompt: a.prompt, target: a.target, more: [{ prompt: b.prompt, target: b.target }] }], position: 1 }, () => {});
    expect(view.items[0].more).toHaveLength(1);
    for (const probeCase of c.probes as Array<{ prompt: string; post_logits: number[] }>) {
      const [t] = await host.topk(probeCase.prompt, 1);
      expect(t.id).toBe(probeCase.post_logits.indexOf(Math.max(...probeCase.post_logits)));
    }
  });

  it('rechecks every applied edit on the weights now: a later edit of the same prompt undoes an earlier one', async () => {
    editHost.clearHistory();
    const a = { ...request('mend'), paraphrases: [], neighbours: [] };
    const firstEval = (await editHost.edit(a, () => {})).results[0];
    const secondEval = (await editHost.edit({ ...a, target: ' Cl' }, () => {})).results[0];
    const [first, second] = [firstEval.edit, secondEval.edit];
    const check = await editHost.recheckHistory(4);
    expect(check.appliedIds).toEqual(editHost.historyView().items.map((i) => i.id));
    expect(check.facts.map((f) => [f.position, f.target])).toEqual([[1, a.target], [2, ' Cl']]);
    // the newest edit's fact reads exactly as its own result did (same weights, same measurement)
    expect(check.facts[1].targetProb).toBeCloseTo(second.after.targetProb, 6);
    expect(check.facts[1].success).toBe(second.success);
    expect(check.facts[1].text).toBe(second.after.text);
    // the older fact lost ground to the newer edit of its prompt
    expect(check.facts[0].targetProb).toBeLessThan(first.after.targetProb);
    // the second edit's held-out perplexity is also reported against the original weights, where the first started
    const [h1, h2] = [firstEval.heldOut!, secondEval.heldOut!];
    expect(h1.original).toBe(h1.before);
    expect(h2.before).toBe(h1.after);
    expect(h2.original).toBe(h1.before);
    expect(h2.ratioOriginal).toBeCloseTo(h2.after / h1.before, 12);
    // and the recheck reads the same two numbers: the original weights' and the weights' now
    expect(check.perplexity).toEqual({ original: h1.before, now: h2.after, ratio: h2.ratioOriginal, flagged: h2.flaggedOriginal, threshold: h2.threshold });
    expect(check.facts[0].text).toBe(check.facts[1].text); // one prompt, one continuation
    editHost.undo();
    const back = await editHost.recheckHistory(4);
    expect(back.facts).toHaveLength(1);
    expect(back.facts[0].targetProb).toBeCloseTo(first.after.targetProb, 6);
    expect(back.facts[0].success).toBe(first.success);
  });

  it('the knowledge scan is refused for an edit that is not the latest applied one, for a model without facts.json, and (history) without edits', async () => {
    // (the scan itself, on the shipped model and its facts index: tests/eval/scan.test.ts and e2e/scan.spec.ts)
    editHost.clearHistory();
    const a = { ...request('mend'), paraphrases: [], neighbours: [] };
    const first = await editHost.edit(a, () => {});
    const second = await editHost.edit({ ...a, target: ' Cl' }, () => {});
    await expect(editHost.scanKnowledge(first.entryId, undefined, () => {})).rejects.toThrow(/no longer the latest applied one/);
    await expect(editHost.scanKnowledge(second.entryId, undefined, () => {})).rejects.toThrow(/no facts index \(facts.json\)/);
    editHost.undo();
    await expect(editHost.scanKnowledge(second.entryId, undefined, () => {})).rejects.toThrow(/no longer the latest applied one/);
    expect(editHost.historyView().items.map((i) => i.applied)).toEqual([true, false]); // nothing moved
    // the history's scan: refused the same way, and with nothing applied there is nothing to compare
    await expect(editHost.scanHistory(() => {})).rejects.toThrow(/no facts index \(facts.json\)/);
    editHost.undo();
    await expect(editHost.scanHistory(() => {})).rejects.toThrow(/No edit is applied/);
    expect(editHost.historyView().items.map((i) => i.applied)).toEqual([false, false]);
  });

  it('a share link replays the edit list; a bad one changes nothing', async () => {
    editHost.clearHistory();
    const { prompt, target } = request('mend');
    const view = await editHost.importShared({ edits: [{ method: 'mend', prompt, target }, { method: 'mend', prompt, target: ' Cl' }], position: 1 }, () => {});
    expect(view.items.map((i) => [i.target, i.applied])).toEqual([[target, true], [' Cl', false]]);
    await expect(editHost.importShared({ edits: [{ method: 'mend', prompt: '', target }], position: 1 }, () => {})).rejects.toThrow(/empty/);
    expect(editHost.historyView().items).toHaveLength(2);
    // the exported history is itself importable
    const json = editHost.historyView().json;
    editHost.clearHistory();
    expect((await editHost.importHistory(json, () => {})).items).toHaveLength(2);
  });
});
