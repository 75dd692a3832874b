// Text a curious user types, through the edit session (what the app and the CLI both use) and the CLI itself:
// each input gets a clear one-line refusal or a well-defined result, never a crash, a NaN or a silent wrong edit.
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../../src/model';
import { loadEditors, type LoadedEditors } from '../../src/editors';
import { EditInputError, EditSession, MAX_FACTS_PER_EDIT, MAX_TARGET_TOKENS, weightsChecksum } from '../../src/session';
import { ROOT, runCli } from '../helpers/run-node';

const MEND = join(ROOT, 'tests/fixtures/mend-tiny');

/** Inputs the session must refuse, with the message each must give. */
const REFUSED: Array<[string, { prompt: string; target: string }, RegExp]> = [
  ['empty prompt', { prompt: '', target: ' Paris' }, /^the prompt is empty$/],
  ['empty target', { prompt: 'The capital of France is', target: '' }, /^the target is empty$/],
  ['whitespace-only prompt', { prompt: '  \t\n ', target: ' Paris' }, /^the prompt is empty$/],
  ['whitespace-only target', { prompt: 'The capital of France is', target: '\u00A0 \u3000' }, /^the target is empty$/],
  ['NUL in the prompt', { prompt: 'The capital\u0000 of France is', target: ' Paris' }, /prompt contains the invisible control character U\+0000 at position 11/],
  ['bell in the target', { prompt: 'The capital of France is', target: ' Par\u0007is' }, /target contains the invisible control character U\+0007/],
  ['ANSI escape', { prompt: '\u001b[31mThe capital of France is', target: ' Paris' }, /control character U\+001B/],
  ['DEL', { prompt: 'The capital of France is\u007f', target: ' Paris' }, /control character U\+007F/],
  ['C1 next-line', { prompt: 'The capital of France is', target: ' Paris\u0085' }, /control character U\+0085/],
  ['replacement character', { prompt: 'The capital of \uFFFD is', target: ' Paris' }, /replacement character U\+FFFD at position 15/],
  ['lone high surrogate', { prompt: 'The capital of \uD83C is', target: ' Paris' }, /prompt is not valid Unicode/],
  ['lone low surrogate', { prompt: 'The capital of France is', target: ' \uDC00' }, /target is not valid Unicode/],
  ['pasted megabyte', { prompt: 'a'.repeat(1_000_000), target: ' Paris' }, /prompt is 1000000 characters long; at most 20000/],
  ['beyond the context', { prompt: 'The capital of France is '.repeat(40), target: ' Paris' }, /prompt \+ target are \d+ tokens, beyond the model's context of 128/],
  ['target of many tokens', { prompt: 'The capital of France is', target: ' Paris, the city of lights, of bridges, of museums and of cafés' }, new RegExp(`the target is \\d+ tokens long; at most ${MAX_TARGET_TOKENS} are allowed`)],
];

describe('text input through the edit session', () => {
  let m: LoadedModel;
  let editors: LoadedEditors;
  let session: EditSession;
  let original: string;

  beforeAll(async () => {
    await initBackend('cpu');
    m = await loadModel(localSource(MEND));
    editors = await loadEditors(localSource(MEND), m.model);
    session = new EditSession({ model: m.model, tokenizer: m.tokenizer, editors: { mend: editors.mend!, ft: editors.ft } });
    original = await weightsChecksum(m.model);
  });
  afterAll(() => {
    session?.dispose();
    editors?.mend?.dispose();
    m?.model.dispose();
  });

  it(`refuses ${REFUSED.length} kinds of bad text with a one-line message and changes nothing`, async () => {
    const tensors = tf.memory().numTensors;
    for (const [what, fact, message] of REFUSED) {
      const err = await session.apply(fact).then(() => null, (e) => e);
      expect(err, what).toBeInstanceOf(EditInputError);
      expect((err as Error).message, what).toMatch(message);
      expect((err as Error).message, what).not.toContain('\n');
    }
    console.log(`text inputs refused by the session: ${REFUSED.length}`);
    // batch edits: one prompt given twice, and more facts than one edit holds
    const fact = (i: number) => ({ prompt: `The capital of country ${i} is`, target: ' Paris' });
    const batches: Array<[string, Array<{ prompt: string; target: string }>, RegExp]> = [
      ['one prompt twice', [fact(0), fact(1), { ...fact(0), target: ' Rome' }], /^facts 1 and 3 have the same prompt \("The capital of country 0 is"\); one edit can give a prompt only one target$/],
      ['eleven facts', Array.from({ length: MAX_FACTS_PER_EDIT + 1 }, (_, i) => fact(i)), /^one edit holds at most 10 facts, got 11$/],
    ];
    for (const [what, facts, message] of batches) {
      const err = await session.apply(facts).then(() => null, (e) => e);
      expect(err, what).toBeInstanceOf(EditInputError);
      expect((err as Error).message, what).toMatch(message);
    }
    expect(session.applied).toHaveLength(0);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(await weightsChecksum(m.model)).toBe(original);
  });

  it('edits with emoji and right-to-left scripts: finite weights, exact tokens, bit-exact undo', async () => {
    const facts = [
      { prompt: 'The capital of 🇫🇷 is', target: ' 🥖🗼' },
      { prompt: 'عاصمة فرنسا هي', target: ' باريس' },
      { prompt: 'The capital of France is', target: ' פריז' },
      { prompt: 'Zürich liegt in der Schweiz 🇨🇭 und', target: ' 東京' },
    ];
    for (const f of facts) {
      const entry = await session.apply(f);
      const fact = entry.facts[0];
      // byte-level BPE: the ids decode back to exactly the text, so the edit is for what the user typed
      expect(m.tokenizer.decode(fact.promptIds)).toBe(f.prompt);
      expect(m.tokenizer.decode(fact.targetIds)).toBe(f.target);
      for (const c of entry.result.changes) expect((await tf.all(tf.isFinite(c.after)).data())[0]).toBe(1);
      expect(Number.isFinite(entry.stats.lossBefore)).toBe(true);
      expect(entry.damage && Number.isFinite(entry.damage.perplexityAfter)).toBe(true);
      // the target has become more likely (a real edit of these tokens, not a no-op)
      const after = await m.model.scoreContinuation(fact.promptIds, fact.targetIds);
      session.undo();
      const before = await m.model.scoreContinuation(fact.promptIds, fact.targetIds);
      expect(after.logprob).toBeGreaterThan(before.logprob);
      expect(await weightsChecksum(m.model)).toBe(original);
    }
  });

  it('reports a target the model already answers, and still applies a finite edit', async () => {
    const prompt = 'The capital of France is';
    const ids = m.tokenizer.encode(prompt);
    const answer = await m.model.generate(ids, { maxNewTokens: 4 });
    // the shortest prefix of the greedy answer that is visible text and tokenises back to the same ids: the current
    // answer as the user would type it
    const k = [1, 2, 3, 4].find((n) => {
      const t = m.tokenizer.decode(answer.slice(0, n));
      return t.trim() !== '' && m.tokenizer.encode(t).join() === answer.slice(0, n).join();
    });
    expect(k).toBeDefined();
    const greedy = answer.slice(0, k);
    const target = m.tokenizer.decode(greedy);
    const same = await session.apply({ prompt, target });
    expect(same.alreadyPredicted).toEqual([true]);
    for (const c of same.result.changes) expect((await tf.all(tf.isFinite(c.after)).data())[0]).toBe(1);
    expect(same.damage!.flagged).toBe(false);
    // the answer stays the answer
    expect(await m.model.generate(ids, { maxNewTokens: greedy.length })).toEqual(greedy);
    session.undo();
    const other = await session.apply({ prompt, target: target === ' Rome' ? ' Paris' : ' Rome' });
    expect(other.alreadyPredicted).toEqual([false]);
    session.reset();
    expect(await weightsChecksum(m.model)).toBe(original);
  });
});

const cli = (args: string[]) => runCli(['edit', '--backend', 'cpu', '--model', MEND, ...args]);

describe('text input through the CLI', () => {
  it('refuses bad text with exit code 2 and one line on stderr', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['--prompt', '   ', '--target', ' Paris'], /--prompt is missing or empty/],
      [['--prompt', 'The capital of France is', '--target', ' Par\u0007is'], /target contains the invisible control character U\+0007/],
      [['--prompt', 'The capital of France is', '--target', ' Paris, the city of lights, of bridges, of museums and of cafés'], /the target is \d+ tokens long; at most 16/],
      [['--prompt', 'word '.repeat(300), '--target', ' Paris'], /beyond the model's context of 128/],
      [['--prompt', 'The capital of France is', '--target', ' Paris', '--neighbour', 'x\u001b[2J'], /--neighbour: the prompt contains the invisible control character U\+001B/],
      [['--prompt', 'The capital of France is', '--target', ' Paris', '--max-perplexity-ratio', '0.5'], /--max-perplexity-ratio must be a number above 1/],
    ];
    for (const [args, pattern] of cases) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^error: /);
      expect(lines[0]).toMatch(pattern);
      expect(r.stdout).toBe('');
    }
    console.log(`text inputs refused by the CLI: ${cases.length}`);
  });

  it('edits a right-to-left target and reports already_predicted and the held-out perplexity check', async () => {
    const r = await cli(['--prompt', 'عاصمة فرنسا هي', '--target', ' باريس', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.already_predicted).toBe(false);
    expect(out.edit.target_prob_after).toBeGreaterThan(out.edit.target_prob_before);
    expect(Number.isFinite(out.damage.perplexity_before) && Number.isFinite(out.damage.perplexity_after)).toBe(true);
    expect(out.damage.threshold).toBe(1.5);
    expect(typeof out.damage.flagged).toBe('boolean');
  });
});
