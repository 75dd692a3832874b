// The knowledge scan (src/eval/scan.ts) on the shipped facts-gpt, its editor and its facts index (WASM): which facts
// it asks, and that what it reports equals an independent check, fact by fact, with one forward pass per fact
// (GPT2.targetIsArgmax) on the weights before and after the edit; the scan leaves the edit and the history as they were.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MendEditor } from '../../src/editors';
import { parseBenchmark } from '../../src/eval/benchmark';
import { knowledgeScan, SCAN_LIMITS, scanProbes } from '../../src/eval/scan';
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
    expect(batch.filter((p) => p.kind === 'same relation')).toHaveLength(subjectsWith('capital') - 2);

    const city = Object.keys(index.subjects).find((s) => index.subjects[s].facts.city_country)!;
    const template = index.relations.city_country.templates[0].template;
    const cities = scanProbes(index, [template.replace('{s}', city)]).filter((p) => p.kind === 'same relation');
    expect(subjectsWith('city_country')).toBeGreaterThan(SCAN_LIMITS.sameRelation);
    expect(cities).toHaveLength(SCAN_LIMITS.sameRelation);
    expect(new Set(cities.map((p) => p.subject[0])).size).toBeGreaterThan(15); // spread over the alphabet, not its start

    const unknown = scanProbes(index, ['My favourite colour is']);
    expect(unknown.every((p) => p.kind === 'elsewhere')).toBe(true);
    expect(unknown).toHaveLength(relations.length * SCAN_LIMITS.elsewherePerRelation);
  });
});

describe('the scan of a real edit', () => {
  let loaded: LoadedModel;
  let session: EditSession;

  beforeAll(async () => {
    await initBackend('wasm');
    loaded = await loadModel(localSource(MODEL));
    const mend = await MendEditor.load(localSource(MODEL), loaded.model);
    session = new EditSession({ model: loaded.model, tokenizer: loaded.tokenizer, editors: { mend }, damageCheck: false });
  }, 300_000);
  afterAll(() => loaded?.model.dispose());

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

    // the independent check: one forward per fact, before (the edit undone) and after
    const probes = scanProbes(index, facts.map((f) => f.prompt));
    const ask = async () => {
      const out: boolean[] = [];
      for (const p of probes) out.push(await model.targetIsArgmax(tokenizer.encode(p.prompt), tokenizer.encode(p.taught)));
      return out;
    };
    const after = await ask();
    session.undo();
    const before = await ask();
    session.redo();
    expect(await weightsChecksum(model)).toBe(edited);

    expect(r.asked).toBe(probes.length);
    expect(r.knownBefore).toBe(before.filter(Boolean).length);
    expect(r.kept).toBe(before.filter((b, i) => b && after[i]).length);
    expect(r.lost.map((l) => l.prompt)).toEqual(probes.filter((_, i) => before[i] && !after[i]).map((p) => p.prompt));
    expect(r.groups.reduce((n, g) => n + g.asked, 0)).toBe(probes.length);
    expect(r.subject).toBe('France');
    expect(r.relation).toBe('capital');
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

  it('re-applies the edit when the function it ran fails', async () => {
    const edited = await weightsChecksum(loaded.model);
    await expect(session.beforeLatest(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await weightsChecksum(loaded.model)).toBe(edited);
    expect(session.applied).toHaveLength(1);
  });
});

describe('npm run cli -- scan', () => {
  it('scans the benchmark\'s first single edits with MEND and FT; the totals add up the per-edit scans', async () => {
    const r = await runCli(['scan', '--edits', '1', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const bench = JSON.parse(readFileSync(join(MODEL, 'benchmark.json'), 'utf8'));
    expect(out.edits).toEqual([bench.groups['mend.single'][0][0]]);
    for (const m of ['mend', 'ft']) {
      const run = out.runs[m];
      expect(run.scans).toHaveLength(1);
      const [s] = run.scans;
      expect(s.prompt).toBe(bench.edits[out.edits[0]].prompt);
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
  }, 300_000);

  it('--per-relation takes the first K single edits of every relation, in the benchmark\'s order', () => {
    const bench = parseBenchmark(JSON.parse(readFileSync(join(MODEL, 'benchmark.json'), 'utf8')));
    const order = bench.groups['mend.single'].flat();
    expect(scanOrder(bench, 4)).toEqual(order.slice(0, 4));
    const picked = scanOrder(bench, 20, 2);
    const relationsOf = (ix: number[]) => ix.map((i) => bench.edits[i].relation);
    expect(new Set(relationsOf(picked))).toEqual(new Set(relationsOf(order)));
    for (const r of new Set(relationsOf(order))) {
      const all = order.filter((i) => bench.edits[i].relation === r);
      expect(picked.filter((i) => bench.edits[i].relation === r)).toEqual(all.slice(0, 2));
    }
    expect(picked).toEqual(order.filter((i) => picked.includes(i))); // still in the benchmark's order
  });
});
