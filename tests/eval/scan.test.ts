// The knowledge scan (src/eval/scan.ts) on the shipped facts-gpt, its editor and its facts index (WASM): which facts
// it asks, and that what it reports equals an independent check, fact by fact, with one forward pass per fact
// (GPT2.targetIsArgmax) on the weights before and after the edit; the scan leaves the edit and the history as they were.
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinetuneEditor, MendEditor } from '../../src/editors';
import { parseBenchmark } from '../../src/eval/benchmark';
import { knowledgeScan, SCAN_LIMITS, scanEditorEdit, scanProbes, scanReportJson, type ScanReport } from '../../src/eval/scan';
import { scanOrder } from '../../src/eval/scan_benchmark';
import { parseFactsIndex, type FactsIndex } from '../../src/eval/suggest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../../src/model';
import { EditInputError, EditSession, weightsChecksum } from '../../src/session';
import { expectOneLineError, runCli } from '../helpers/run-node';

const MODEL = new URL('../../public/models/facts-gpt', import.meta.url).pathname;
const index: FactsIndex = parseFactsIndex(JSON.parse(readFileSync(join(MODEL, 'facts.json'), 'utf8')));
const relations = Object.keys(index.relations);
const subjectsWith = (relation: string) => Object.values(index.subjects).filter((s) => s.facts[relation] !== undefined).length;

describe('which facts the scan asks', () => {
  it('every other subject of the relation in the edit wording, the subject\'s other facts, 8 of every other relation', () => {
    const probes = scanProbes(index, ['The capital of France is']);
    const of = (kind: string) => probes.filter((p) => p.kind === kind);
    expect(of('same relation')).toHaveLength(subjectsWith('capital') - 1);
    expect(of('same relation').every((p) => p.relation === 'capital' && p.prompt === `The capital of ${p.subject} is`)).toBe(true);
    expect(of('same relation').some((p) => p.subject === 'France')).toBe(false);
    expect(of('same relation').find((p) => p.subject === 'Spain')?.taught).toBe(' Madrid');
    const france = Object.keys(index.subjects.France.facts).filter((r) => r !== 'capital');
    expect(of('same subject').map((p) => p.relation).sort()).toEqual(france.sort());
    expect(of('same subject').every((p) => p.subject === 'France')).toBe(true);
    expect(of('elsewhere')).toHaveLength((relations.length - 1) * SCAN_LIMITS.elsewherePerRelation);
    expect(of('elsewhere').some((p) => p.relation === 'capital' || p.subject === 'France')).toBe(false);
    expect(new Set(probes.map((p) => p.prompt)).size).toBe(probes.length);
    expect(scanProbes(index, ['The capital of France is'])).toEqual(probes); // deterministic
  });

  it('leaves out the facts the edit itself changes, spreads a large relation evenly, and samples everything for an unknown prompt', () => {
    const batch = scanProbes(index, ['The capital of France is', 'The capital of Spain is', 'Fact: The calling code of France is']);
    expect(batch.some((p) => p.subject === 'Spain' && p.relation === 'capital')).toBe(false);
    expect(batch.some((p) => p.subject === 'France' && p.relation === 'calling_code')).toBe(false);
    // two relations share the same-relation budget; France and Spain, both edited, are left out of each
    const half = Math.floor(SCAN_LIMITS.sameRelation / 2);
    expect(batch.filter((p) => p.kind === 'same relation' && p.relation === 'capital')).toHaveLength(Math.min(half, subjectsWith('capital') - 2));
    expect(batch.filter((p) => p.kind === 'same relation' && p.relation === 'calling_code')).toHaveLength(Math.min(half, subjectsWith('calling_code') - 2));
    expect(scanProbes(index, ['The capital of France is', 'The capital of Spain is']).filter((p) => p.kind === 'same relation'))
      .toHaveLength(subjectsWith('capital') - 2);

    const city = Object.keys(index.subjects).find((s) => index.subjects[s].facts.city_country)!;
    const template = index.relations.city_country.templates[0].template;
    const cities = scanProbes(index, [template.replace('{s}', city)]).filter((p) => p.kind === 'same relation');
    expect(subjectsWith('city_country')).toBeGreaterThan(SCAN_LIMITS.sameRelation);
    expect(cities).toHaveLength(SCAN_LIMITS.sameRelation);
    expect(new Set(cities.map((p) => p.subject[0])).size).toBeGreaterThan(15); // spread over the alphabet, not its start

    // a batch of two relations: each gets its own share of the same-relation budget, in its own fact's wording
    const two = scanProbes(index, ['The capital of France is', template.replace('{s}', city)]);
    const share = Math.floor(SCAN_LIMITS.sameRelation / 2);
    const sameRel = (r: string) => two.filter((p) => p.kind === 'same relation' && p.relation === r);
    expect(sameRel('capital')).toHaveLength(Math.min(share, subjectsWith('capital') - 1));
    expect(sameRel('city_country')).toHaveLength(share);
    expect(sameRel('city_country').every((p) => p.prompt === template.replace('{s}', p.subject))).toBe(true);
    expect(two.filter((p) => p.kind === 'same subject').map((p) => p.subject)).toContain('France');
    expect(two.some((p) => p.kind === 'elsewhere' && (p.relation === 'capital' || p.relation === 'city_country'))).toBe(false);
    // one prompt per fact: France's facts are asked once, as the edited subject's, never again as another relation's
    const keys = two.map((p) => `${p.subject}/${p.relation}`);
    expect(new Set(keys).size).toBe(keys.length);
    // ten relations at once: never fewer than minPerRelation each, so no relation is left unasked
    const many = relations.filter((r) => r !== 'city_country').slice(0, 10)
      .map((r) => index.relations[r].templates[0].template.replace('{s}', Object.keys(index.subjects).find((s) => index.subjects[s].facts[r] !== undefined)!));
    const wide = scanProbes(index, many);
    const wideRelations = new Set(wide.filter((p) => p.kind === 'same relation').map((p) => p.relation));
    expect(wideRelations.size).toBe(many.length);
    for (const r of wideRelations) {
      expect(wide.filter((p) => p.kind === 'same relation' && p.relation === r).length).toBeGreaterThanOrEqual(SCAN_LIMITS.minPerRelation);
    }

    const unknown = scanProbes(index, ['My favourite colour is']);
    expect(unknown.every((p) => p.kind === 'elsewhere')).toBe(true);
    expect(unknown).toHaveLength(relations.length * SCAN_LIMITS.elsewherePerRelation);
  });
});

describe('the scan of a real edit', () => {
  let loaded: LoadedModel;
  let session: EditSession;
  let ft: FinetuneEditor;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel(localSource(MODEL));
    const mend = await MendEditor.load(localSource(MODEL), loaded.model);
    ft = new FinetuneEditor({ weightNames: [...mend.weightNames], steps: 20, learningRate: 1e-3 });
    session = new EditSession({ model: loaded.model, tokenizer: loaded.tokenizer, editors: { mend, ft }, damageCheck: false });
  }, 300_000);
  afterAll(() => loaded?.model.dispose());

  /**
   * The independent check of a scan of the latest applied edit: one forward per fact, before (the edit undone) and
   * after, compared with what the scan reported, in total and per group.
   */
  async function independentCheck(facts: Array<{ prompt: string }>, r: ScanReport, edits = 1) {
    const { model, tokenizer } = loaded;
    const probes = scanProbes(index, facts.map((f) => f.prompt));
    const ask = async () => {
      const out: boolean[] = [];
      for (const p of probes) out.push(await model.targetIsArgmax(tokenizer.encode(p.prompt), tokenizer.encode(p.taught)));
      return out;
    };
    const after = await ask();
    for (let i = 0; i < edits; i++) session.undo();
    const before = await ask();
    for (let i = 0; i < edits; i++) session.redo();
    expect(r.asked).toBe(probes.length);
    expect(r.knownBefore).toBe(before.filter(Boolean).length);
    expect(r.kept).toBe(before.filter((b, i) => b && after[i]).length);
    expect(r.lost.map((l) => l.prompt)).toEqual(probes.filter((_, i) => before[i] && !after[i]).map((p) => p.prompt));
    expect(r.groups.reduce((n, g) => n + g.asked, 0)).toBe(probes.length);
    for (const g of r.groups) {
      const at = probes.flatMap((p, i) => (p.kind === g.kind && (g.relation === null || p.relation === g.relation) ? [i] : []));
      expect(g.asked).toBe(at.length);
      expect(g.kept).toBe(at.filter((i) => before[i] && after[i]).length);
    }
  }

  it('beforeLatest refuses without an edit', async () => {
    await expect(session.beforeLatest(async () => 1)).rejects.toThrow(EditInputError);
  });

  it('reports exactly the facts a one-at-a-time check finds lost, and leaves the edit and the history as they were', async () => {
    const { model, tokenizer } = loaded;
    const facts = [{ prompt: 'The capital of France is', target: ' Rome' }];
    const entry = await session.apply(facts[0]);
    const edited = await weightsChecksum(model);
    const later = await session.apply({ prompt: 'The capital of Japan is', target: ' Paris' });
    session.undo(); // a redoable edit on top, which the scan must keep
    expect(await weightsChecksum(model)).toBe(edited);
    const tensors = tf.memory().numTensors;

    const r = await knowledgeScan(model, tokenizer, index, facts, (fn) => session.beforeLatest(fn), { eosTokenId: loaded.eosTokenId });

    expect(await weightsChecksum(model)).toBe(edited);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(session.applied.map((e) => e.id)).toEqual([entry.id]);
    expect(session.undone.map((e) => e.id)).toEqual([later.id]);

    await independentCheck(facts, r);
    expect(await weightsChecksum(model)).toBe(edited);
    expect(r.groups.map((g) => [g.kind, g.relation])).toEqual([['same relation', 'capital'], ['same subject', null], ['elsewhere', null]]);
    expect(r).toMatchObject({ subjects: ['France'], relations: ['capital'], unrecognised: 0 });
    // The shipped model knows (almost) all of these; this edit is known to spread to other capitals in its wording
    // (docs/eval.md "The knowledge scan"), Spain's among them, which now says the edit's target.
    expect(r.knownBefore).toBeGreaterThan(0.95 * r.asked);
    expect(r.lost.length).toBeGreaterThan(0);
    const spain = r.lost.find((l) => l.subject === 'Spain');
    expect(spain).toMatchObject({ kind: 'same relation', taught: ' Madrid', now: ' Rome', tookTarget: ' Rome' });
    for (const l of r.lost) {
      const now = tokenizer.decode(await model.generate(tokenizer.encode(l.prompt), { maxNewTokens: 6, eosTokenId: loaded.eosTokenId }));
      expect(now.startsWith(l.now)).toBe(true);
    }
  }, 300_000);

  it('scans a batch edit around every one of its facts: a same-relation group per edited relation', async () => {
    const { model, tokenizer } = loaded;
    const city = Object.keys(index.subjects).find((s) => index.subjects[s].facts.city_country === 'Japan')!;
    const facts = [
      { prompt: 'The capital of Germany is', target: ' Rome' },
      { prompt: `${city} is a city in`, target: ' Brazil' },
    ];
    await session.apply(facts);
    const edited = await weightsChecksum(model);
    const r = await knowledgeScan(model, tokenizer, index, facts, (fn) => session.beforeLatest(fn), { eosTokenId: loaded.eosTokenId });
    expect(await weightsChecksum(model)).toBe(edited);
    expect(r).toMatchObject({ subjects: ['Germany', city], relations: ['capital', 'city_country'], unrecognised: 0 });
    await independentCheck(facts, r);
    expect(r.groups.filter((g) => g.kind === 'same relation').map((g) => g.relation)).toEqual(['capital', 'city_country']);
    // a lost fact that now says one of the batch's targets is marked with that target, whichever fact it came from
    for (const l of r.lost) expect([null, ' Rome', ' Brazil']).toContain(l.tookTarget);
    session.undo();
  }, 300_000);

  it('scans the whole history against the original weights (beforeAll): what two edits took away together', async () => {
    const { model, tokenizer } = loaded;
    expect(session.applied).toHaveLength(1); // France → Rome, from the first test
    const second = { prompt: 'The capital of Japan is', target: ' Paris' };
    await session.apply(second);
    const edited = await weightsChecksum(model);
    const facts = [{ prompt: 'The capital of France is', target: ' Rome' }, second];
    try {
      const r = await knowledgeScan(model, tokenizer, index, facts, (fn) => session.beforeAll(fn), { eosTokenId: loaded.eosTokenId });
      expect(await weightsChecksum(model)).toBe(edited);
      expect(r).toMatchObject({ subjects: ['France', 'Japan'], relations: ['capital'], unrecognised: 0 });
      await independentCheck(facts, r, 2);
      // the first edit's spread is still there, measured from the original weights through both edits
      expect(r.lost.find((l) => l.subject === 'Spain')).toMatchObject({ now: ' Rome', tookTarget: ' Rome' });
      for (const l of r.lost) expect([null, ' Rome', ' Paris']).toContain(l.tookTarget);

      // the CLI's `scan --history FILE` replays the exported history in a fresh process and reads exactly the same
      const dir = mkdtempSync(join(tmpdir(), 'mendlab-scan-history-'));
      try {
        const file = join(dir, 'history.json');
        writeFileSync(file, JSON.stringify(session.exportHistory()));
        const cli = await runCli(['scan', '--history', file, '--backend', 'wasm', '--json']);
        expect(cli.code, cli.stderr).toBe(0);
        const out = JSON.parse(cli.stdout);
        expect(out.history).toEqual({ applied_edits: 2, facts: 2 });
        expect(out.scan).toEqual(scanReportJson(r));
        const text = await runCli(['scan', '--history', file, '--backend', 'wasm']);
        expect(text.stdout).toMatch(/^2 applied edits from .*, 2 edited facts$/m);
        expect(text.stdout).toMatch(/^ {2}LOST "The capital of Spain is": taught " Madrid", now " Rome" \(an edit's target\)$/m);
        writeFileSync(file, '{"format": "something else"}');
        expectOneLineError(await runCli(['scan', '--history', file, '--backend', 'wasm']), 2, /--history .*history\.json: /);
        expectOneLineError(await runCli(['scan', '--history', file, '--edits', '3']), 2, /--history scans a history file; --edits is for the benchmark's edits/);
        expectOneLineError(await runCli(['scan', '--history', join(dir, 'missing.json')]), 2, /no such file/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    } finally {
      session.undo();
    }
  }, 300_000);

  it('re-applies the edit when the function it ran fails', async () => {
    const edited = await weightsChecksum(loaded.model);
    await expect(session.beforeLatest(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await weightsChecksum(loaded.model)).toBe(edited);
    expect(session.applied).toHaveLength(1);
  });

  it('scans another method\'s edit of the same facts from the weights the kept edit started from (a "both methods" comparison)', async () => {
    // The page's fine-tuning scan after a MEND edit: inside beforeLatest, fine-tune the same facts, scan, take it back.
    // The independent route: undo MEND, apply fine-tuning through the session, scan it as the latest edit.
    const { model, tokenizer } = loaded;
    const latest = session.applied.at(-1)!;
    const edited = await weightsChecksum(model);
    const opts = { eosTokenId: loaded.eosTokenId };
    const viaScan = await session.beforeLatest(() => scanEditorEdit(model, tokenizer, index, ft, latest.facts, opts));
    expect(await weightsChecksum(model)).toBe(edited); // the MEND edit is back, bit for bit
    expect(session.applied.map((e) => e.id)).toEqual([latest.id]);

    session.undo();
    await session.apply(latest.facts.map((f) => ({ prompt: f.prompt, target: f.target })), 'ft');
    const viaSession = await knowledgeScan(model, tokenizer, index, latest.facts, (fn) => session.beforeLatest(fn), opts);
    expect(viaScan).toEqual(viaSession);
    expect(viaScan.lost.find((l) => l.subject === 'Spain')).toMatchObject({ now: ' Rome', tookTarget: ' Rome' });
  }, 300_000);
});

describe('npm run cli -- scan', () => {
  it('scans the benchmark\'s first single edits with MEND and FT; the totals add up the per-edit scans', async () => {
    const r = await runCli(['scan', '--edits', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const bench = JSON.parse(readFileSync(join(MODEL, 'benchmark.json'), 'utf8'));
    expect(out.edits).toEqual([[bench.groups['mend.single'][0][0]]]);
    for (const m of ['mend', 'ft']) {
      const run = out.runs[m];
      expect(run.scans).toHaveLength(1);
      const [s] = run.scans;
      expect(s.facts.map((f: { prompt: string }) => f.prompt)).toEqual([bench.edits[out.edits[0][0]].prompt]);
      expect(s.known_before - s.kept).toBe(s.lost.length);
      const kinds = Object.values(run.totals.kinds) as Array<{ known_before: number; kept: number; took_target: number }>;
      expect(kinds.reduce((n, k) => n + k.known_before, 0)).toBe(s.known_before);
      expect(kinds.reduce((n, k) => n + k.kept, 0)).toBe(s.kept);
      expect(kinds.reduce((n, k) => n + k.took_target, 0)).toBe(s.lost.filter((l: { took_target: string | null }) => l.took_target !== null).length);
      expect(run.totals.edits_with_loss).toBe(s.lost.length > 0 ? 1 : 0);
    }
    expectOneLineError(await runCli(['scan', '--edits', '0']), 2, /--edits/);
    expectOneLineError(await runCli(['scan', '--method', 'rome']), 2, /--method must be one of mend, ft, both/);
    expectOneLineError(await runCli(['scan', '--edits', '3', '--per-relation', '1']), 2, /give --edits or --per-relation, not both/);
    expectOneLineError(await runCli(['scan', '--batch-size', '5']), 2, /--batch-size must be one of 1, 10/);
    expectOneLineError(await runCli(['scan', '--batch-size', '10', '--per-relation', '1']), 2, /--per-relation picks single edits/);
    expectOneLineError(await runCli(['scan', '--batch-size', '10', '--edits', '31']), 2, /the benchmark has 30 batches of 10/);
  }, 300_000);

  it('--batch-size 10 scans a batch of 10 as one update, around every fact: a same-relation group per edited relation', async () => {
    const r = await runCli(['scan', '--batch-size', '10', '--edits', '1', '--method', 'mend', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const bench = JSON.parse(readFileSync(join(MODEL, 'benchmark.json'), 'utf8'));
    const batch: number[] = bench.groups['mend.batch10'][0];
    expect(out).toMatchObject({ batch_size: 10, edits: [batch] });
    const [s] = out.runs.mend.scans;
    expect(s.facts.map((f: { subject: string }) => f.subject)).toEqual(batch.map((i) => bench.edits[i].subject));
    const relations = [...new Set(batch.map((i) => bench.edits[i].relation))];
    expect(relations.length).toBeGreaterThan(1); // the first batch mixes relations (city → country and others)
    const groups = s.groups as Array<{ kind: string; relation: string | null; asked: number; known_before: number; kept: number }>;
    expect(groups.filter((g) => g.kind === 'same relation').map((g) => g.relation)).toEqual(relations);
    expect(groups.reduce((n, g) => n + g.asked, 0)).toBe(s.asked);
    expect(s.known_before - s.kept).toBe(s.lost.length);
    for (const rel of relations) {
      const g = groups.find((x) => x.kind === 'same relation' && x.relation === rel)!;
      expect(out.runs.mend.totals.by_relation[rel]).toMatchObject({ edits: 1, known_before: g.known_before, kept: g.kept });
    }
    // no fact of the batch is asked back as a probe of another kind
    const edited = new Set(batch.map((i) => `${bench.edits[i].subject}/${bench.edits[i].relation}`));
    expect(s.lost.some((l: { subject: string; relation: string }) => edited.has(`${l.subject}/${l.relation}`))).toBe(false);
  }, 300_000);

  it('--per-relation takes the first K single edits of every relation, in the benchmark\'s order', () => {
    const bench = parseBenchmark(JSON.parse(readFileSync(join(MODEL, 'benchmark.json'), 'utf8')));
    const order = bench.groups['mend.single'].flat();
    expect(scanOrder(bench, 4)).toEqual(order.slice(0, 4).map((i) => [i]));
    expect(scanOrder(bench, 2, undefined, 10)).toEqual(bench.groups['mend.batch10'].slice(0, 2));
    const picked = scanOrder(bench, 20, 2).flat();
    const relationsOf = (ix: number[]) => ix.map((i) => bench.edits[i].relation);
    expect(new Set(relationsOf(picked))).toEqual(new Set(relationsOf(order)));
    for (const r of new Set(relationsOf(order))) {
      const all = order.filter((i) => bench.edits[i].relation === r);
      expect(picked.filter((i) => bench.edits[i].relation === r)).toEqual(all.slice(0, 2));
    }
    expect(picked).toEqual(order.filter((i) => picked.includes(i))); // still in the benchmark's order
  });
});
