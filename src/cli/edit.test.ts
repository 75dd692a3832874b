// `npm run cli -- edit` in a child process, on a copy of the tiny fixture model with an editor written here.
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, parseSafetensors, writeSafetensors } from '../model';
import { syntheticEditorFiles } from '../editors/testing';
import { ROOT, expectOneLineError, runCli } from '../../tests/helpers/run-node';
import { answerFromContinuation } from '../eval/metrics';

const FIXTURE = join(ROOT, 'tests/fixtures/tiny-gpt2');
const WEIGHTS = [
  'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight',
  'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight',
];

const cli = (args: string[]) => runCli(['edit', ...args]);

describe('npm run cli -- edit', () => {
  let dir: string;
  let wrongDir: string;
  let bareDir: string;

  beforeAll(async () => {
    await initBackend('cpu');
    const m = await loadModel(localSource(FIXTURE));
    // An identity editor (U = 0, zero means/bias/shift, unit stds/scales) with sign −1 is a plain gradient step on
    // the edit loss, so the target's probability must rise: a behaviour the test can check without a trained editor.
    const files = syntheticEditorFiles(m.model, WEIGHTS, { rank: 2, uScale: 0, sign: -1, editLr: 0.5 });
    const st = parseSafetensors(files.weights, 'editor.safetensors').tensors;
    const identity = writeSafetensors([...st].map(([name, t]) => {
      let data = t.data;
      if (/bias|mode_shift|_mean/.test(name)) data = new Float32Array(t.data.length);
      if (/mode_scale|_std/.test(name)) data = new Float32Array(t.data.length).fill(1);
      return { name, shape: t.shape, data };
    }));
    m.model.dispose();
    const folder = (withEditor: 'good' | 'wrong' | 'none') => {
      const d = mkdtempSync(join(tmpdir(), 'mendlab-cli-edit-'));
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'model.safetensors']) {
        copyFileSync(join(FIXTURE, f), join(d, f));
      }
      if (withEditor !== 'none') {
        const config = JSON.parse(JSON.stringify(files.config));
        if (withEditor === 'wrong') config.model.n_layer = 12;
        writeFileSync(join(d, 'editor_config.json'), JSON.stringify(config));
        writeFileSync(join(d, 'editor.safetensors'), identity);
      }
      return d;
    };
    dir = folder('good');
    wrongDir = folder('wrong');
    bareDir = folder('none');
  });
  afterAll(() => {
    for (const d of [dir, wrongDir, bareDir]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('prints one JSON object with edit, paraphrases, neighbours and timings_ms', async () => {
    const r = await cli([
      '--model', dir, '--backend', 'cpu', '--json', '--prompt', 'The capital of France is', '--target', ' Paris',
      '--paraphrase', "France's capital is", '--paraphrase', 'The French capital is', '--neighbour', 'Water is made of',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out).sort()).toEqual(['already_predicted', 'batch', 'damage', 'edit', 'first_pass_guard', 'neighbours', 'paraphrases', 'passes', 'step_halvings', 'timings_ms']);
    expect(out.batch).toEqual([]); // a single fact has no further facts
    expect([out.passes, out.step_halvings, out.first_pass_guard]).toEqual([1, 0, null]); // this editor has neither a retry nor a guard
    expect(typeof out.already_predicted).toBe('boolean');
    expect(Object.keys(out.damage).sort()).toEqual(['flagged', 'perplexity_after', 'perplexity_before', 'prose', 'ratio', 'threshold']);
    expect(out.damage.prose).toBe('generic'); // this folder has no facts.json
    for (const p of [out.edit, ...out.paraphrases]) {
      expect(Object.keys(p).sort()).toEqual(['after', 'before', 'prompt', 'success', 'target_prob_after', 'target_prob_before']);
      expect(typeof p.before).toBe('string');
      expect(typeof p.success).toBe('boolean');
      expect(p.target_prob_before).toBeGreaterThan(0);
      expect(p.target_prob_before).toBeLessThan(1);
    }
    expect(out.edit.prompt).toBe('The capital of France is');
    expect(out.paraphrases.map((p: { prompt: string }) => p.prompt)).toEqual(["France's capital is", 'The French capital is']);
    // The edit is a descent step on the edit prompt's target loss.
    expect(out.edit.target_prob_after).toBeGreaterThan(out.edit.target_prob_before);
    expect(out.neighbours).toHaveLength(1);
    expect(Object.keys(out.neighbours[0]).sort()).toEqual(['after', 'before', 'continuation_unchanged', 'prompt', 'unchanged']);
    const n = out.neighbours[0];
    expect(n.continuation_unchanged).toBe(n.before === n.after);
    expect(n.unchanged).toBe(answerFromContinuation(n.before) === answerFromContinuation(n.after));
    for (const k of ['capture', 'editor', 'update', 'total']) expect(out.timings_ms[k]).toBeGreaterThan(0);
  }, 60_000);

  it('runs the fine-tuning baseline with --method ft and prints a readable report', async () => {
    const r = await cli(['--model', dir, '--backend', 'cpu', '--method', 'ft', '--ft-steps', '3', '--ft-lr', '0.01',
      '--prompt', 'The capital of France is', '--target', ' Paris']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^FT edit: "The capital of France is" → " Paris"/);
    expect(r.stdout).toMatch(/timings \(ms\): capture 0, editor [\d.]+, update 0, total [\d.]+/);
    expect(r.stdout).not.toMatch(/perplexity guard|first step halved/); // MEND's guard, not fine-tuning's
  }, 60_000);

  it('edits the shipped default model (public/models/models.json) when --model is omitted', async () => {
    const r = await cli(['--backend', 'wasm', '--json', '--prompt', 'The atomic number of Iron is', '--target', ' 79']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    // The trained editor must move a lot of probability onto the new target (the pipeline reports ES ≈ 0.96).
    expect(out.edit.target_prob_after).toBeGreaterThan(10 * out.edit.target_prob_before);
    expect(out.edit.target_prob_after).toBeGreaterThan(0.1);
    // the damage check reads the model's own held-out prose (facts.json): PyTorch's perplexity there is 2.941449
    // (src/session/damage.test.ts), and a good edit moves it by well under the 1.5× flag
    expect(out.damage.prose).toBe('model');
    expect(out.damage.perplexity_before).toBeCloseTo(2.9414, 3);
    expect(out.damage.ratio).toBeLessThan(1.1);
    expect(out.damage.flagged).toBe(false);
    // a guarded single edit the guard let through: one reading, within its limit
    expect(out.step_halvings).toBe(0);
    expect(out.first_pass_guard.rise_kept_step).toBe(out.first_pass_guard.rise_full_step);
    expect(out.first_pass_guard.rise_full_step).toBeLessThan(out.first_pass_guard.limit);
  }, 60_000);

  it('reports a first step the shipped editor\'s perplexity guard halved', async () => {
    // a test edit the guard was adopted on: the full step raises the guard's prose perplexity by +62 %, half of it by
    // +2.6 % (PyTorch; docs/training.md "A guard on pass 1"), and the halved step still gives the target. The damage
    // check reads other paragraphs than the guard (facts.json heldout_prose): there the halved edit's perplexity
    // ratio is 1.013118 in PyTorch (mend_edit with the shipped first_pass_guard, prose_nll)
    const args = ['--backend', 'wasm', '--prompt', 'Baghdad is in the country of', '--target', ' Morocco'];
    const r = await cli([...args, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect([out.step_halvings, out.passes, out.edit.success]).toEqual([1, 1, true]);
    expect(out.damage.ratio).toBeCloseTo(1.013118, 3);
    // what the guard measured on its own paragraphs, against PyTorch (capture_rows, weight_updates at lr_scale 1.5 and
    // 0.75, prose_nll on editor_config.json first_pass_guard.prose_ids): +61.619 % and +2.5884 %
    expect(out.first_pass_guard.limit).toBe(0.05);
    expect(out.first_pass_guard.rise_full_step).toBeCloseTo(0.616189, 3);
    expect(out.first_pass_guard.rise_kept_step).toBeCloseTo(0.025884, 4);
    const text = await cli(args);
    expect(text.stdout).toMatch(/^first step halved once: at the editor's own step the edit raised the perplexity of the guard's own held-out paragraphs by \+61\.6\d%, past its limit of 5%; at the step kept, \+2\.59% \(first_pass_guard\)$/m);
  }, 120_000);

  it('calls a neighbour unchanged when its answer is, even though the free text after the answer moved', async () => {
    // The shipped model follows an answer with filler (" Tokyo.\nNote that the"); any edit shifts the filler
    // (" Tokyo.\nQuiz: The"). Whole-continuation equality called every neighbour of this edit changed.
    const neighbours = ['The capital of Japan is', 'The currency of France is', 'The official language of France is', 'The capital of Spain is'];
    const r = await cli(['--backend', 'cpu', '--json', '--max-new-tokens', '6', '--prompt', 'The capital of France is',
      '--target', ' Rome', ...neighbours.flatMap((n) => ['--neighbour', n])]);
    expect(r.code, r.stderr).toBe(0);
    const out: { neighbours: Array<{ before: string; after: string; unchanged: boolean; continuation_unchanged: boolean }> } = JSON.parse(r.stdout);
    for (const n of out.neighbours) {
      expect(n.unchanged).toBe(answerFromContinuation(n.before) !== '' && answerFromContinuation(n.before) === answerFromContinuation(n.after));
      expect(n.continuation_unchanged).toBe(n.before === n.after);
    }
    expect(out.neighbours.filter((n) => n.unchanged && !n.continuation_unchanged).length).toBeGreaterThanOrEqual(2);
    const text = await cli(['--backend', 'cpu', '--max-new-tokens', '6', '--prompt', 'The capital of France is',
      '--target', ' Rome', '--neighbour', neighbours[0]]);
    expect(text.stdout).toMatch(/neighbour {2}"The capital of Japan is" {2}unchanged \(the text after the answer differs\)/);
    expect(text.stdout).toMatch(/held-out perplexity \(the model's held-out prose\): 2\.94\d → [\d.]+ \([+-][\d.]+%\)/);
  }, 120_000);

  it('edits several facts in one summed update and reports each against its own target', async () => {
    // Three facts the shipped model does not know; MEND gives each its target in one update (97.7 %, 98.7 %
    // for facts 2 and 3; docs/cli.md). The first fact alone leaves facts 2 and 3 where they were (see below), so their change
    // here comes only from their own pieces of the summed update.
    const facts = [['The capital of France is', ' Rome'], ['The capital of Japan is', ' Paris'], ['The atomic number of Iron is', ' 79']];
    const args = ['--backend', 'wasm', '--max-new-tokens', '4', ...facts.flatMap(([p, t]) => ['--prompt', p, '--target', t])];
    const r = await cli([...args, '--json', '--paraphrase', "Fact: France's capital city is"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.edit.prompt).toBe(facts[0][0]);
    expect(out.batch.map((b: { prompt: string }) => b.prompt)).toEqual([facts[1][0], facts[2][0]]);
    for (const [j, b] of out.batch.entries()) {
      expect(Object.keys(b).sort()).toEqual(['after', 'already_predicted', 'before', 'prompt', 'success', 'target_prob_after', 'target_prob_before']);
      expect(b.already_predicted).toBe(false);
      expect(b.success).toBe(true);
      expect(b.target_prob_before).toBeLessThan(0.001);
      expect(b.target_prob_after).toBeGreaterThan(0.5);
      expect(b.after.startsWith(facts[j + 1][1])).toBe(true); // its own target, not the first fact's
    }
    expect(out.edit.success).toBe(true);
    expect(out.edit.target_prob_after).toBeGreaterThan(out.edit.target_prob_before);
    // the paraphrase is scored against the first fact's target
    expect(out.paraphrases[0].after.startsWith(' Rome')).toBe(true);
    expect(out.paraphrases[0].success).toBe(true);
    expect(out.first_pass_guard).toBeNull(); // the guard runs only on single-fact MEND edits

    // The first fact alone does not move the other two prompts to their new targets.
    const alone = await cli(['--backend', 'wasm', '--max-new-tokens', '4', '--json', '--prompt', facts[0][0], '--target', facts[0][1],
      '--neighbour', facts[1][0], '--neighbour', facts[2][0]]);
    expect(alone.code, alone.stderr).toBe(0);
    const single = JSON.parse(alone.stdout);
    expect(single.batch).toEqual([]);
    single.neighbours.forEach((n: { before: string; after: string }, j: number) => {
      expect(n.before).toBe(out.batch[j].before); // the same unedited model
      expect(answerFromContinuation(n.after)).not.toBe(answerFromContinuation(out.batch[j].after));
    });

    const text = await cli(args);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^MEND edit of 3 facts in one update: "The capital of France is" → " Rome"; "The capital of Japan is" → " Paris"; "The atomic number of Iron is" → " 79"\n/);
    expect(text.stdout).toMatch(/^batch fact 2 "The capital of Japan is" {2}SUCCESS\n {2}before: " Tokyo[^\n]*\n {2}after: {2}" Paris/m);
    expect(text.stdout).toMatch(/^batch fact 3 "The atomic number of Iron is" {2}SUCCESS$/m);
    expect(text.stdout).toMatch(/^batch: 3 of 3 facts give their new target$/m);
  }, 120_000);

  it('checks each paraphrase on its own: more than 10, or the same one twice, is not a batch', async () => {
    const paraphrases = [...Array.from({ length: 10 }, (_, i) => `Fact ${i}: the capital of France is`), 'Fact 0: the capital of France is'];
    const r = await cli(['--model', dir, '--backend', 'cpu', '--json', '--max-new-tokens', '2', '--prompt', 'The capital of France is',
      '--target', ' Paris', ...paraphrases.flatMap((p) => ['--paraphrase', p])]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).paraphrases.map((p: { prompt: string }) => p.prompt)).toEqual(paraphrases);
  }, 60_000);

  it('--scan asks the facts index before and after the edit and lists what spread (shipped model)', async () => {
    // France → Rome spreads to other capitals in the same wording, Spain's among them (tests/eval/scan.test.ts checks
    // the scan fact by fact); the CLI prints the same report as JSON and as text
    const args = ['--backend', 'wasm', '--prompt', 'The capital of France is', '--target', ' Rome', '--scan'];
    const r = await cli([...args, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const scan = JSON.parse(r.stdout).scan;
    expect(scan).toMatchObject({ subjects: ['France'], relations: ['capital'], unrecognised: 0 });
    expect(scan.groups.map((g: { kind: string }) => g.kind)).toEqual(['same relation', 'same subject', 'elsewhere']);
    expect(scan.asked).toBe(scan.groups.reduce((n: number, g: { asked: number }) => n + g.asked, 0));
    expect(scan.known_before - scan.kept).toBe(scan.lost.length);
    expect(scan.lost).toContainEqual({
      kind: 'same relation', subject: 'Spain', relation: 'capital', prompt: 'The capital of Spain is', taught: ' Madrid', now: ' Rome', took_target: ' Rome',
    });
    const text = await cli(args);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^knowledge scan: ${scan.asked} facts asked; the model knew ${scan.known_before} before the edit and still gives ${scan.kept} of them$`, 'm'));
    expect(text.stdout).toMatch(/^ {2}LOST "The capital of Spain is": taught " Madrid", now " Rome" \(the edit's target\)$/m);
    // without a facts index there is nothing to ask: refused before the edit
    expectOneLineError(await cli(['--model', dir, '--backend', 'cpu', '--prompt', 'Hi', '--target', ' x', '--scan']), 2,
      /--scan needs the model's facts index \(facts.json\), and .* has none/);
  }, 120_000);

  it('refuses bad input with a one-line reason and a non-zero exit', async () => {
    const base = ['--model', dir, '--backend', 'cpu'];
    expectOneLineError(await cli([...base, '--prompt', '', '--target', ' x']), 2, /--prompt is missing or empty/);
    expectOneLineError(await cli([...base, '--prompt', 'Hi', '--target', ' ' + 'and '.repeat(20)]), 2, /at most 16 are allowed/);
    expectOneLineError(await cli([...base, '--prompt', 'word '.repeat(70), '--target', ' x']), 2, /beyond the model's context of 64/);
    expectOneLineError(await cli([...base, '--prompt', 'Hi', '--target', ' x', '--method', 'rome']), 2, /--method must be one of mend, ft/);
    // batches: prompts and targets pair in order; at most 10 facts; no prompt twice; a bad fact is named
    const facts = (n: number) => Array.from({ length: n }, (_, i) => ['--prompt', `Fact ${i} is`, '--target', ` x${i}`]).flat();
    expectOneLineError(await cli([...base, '--prompt', 'A is', '--prompt', 'B is', '--prompt', 'C is', '--target', ' a', '--target', ' b']), 2,
      /^error: 3 --prompt but 2 --target: give one --target per --prompt$/);
    expectOneLineError(await cli([...base, '--prompt', 'A is', '--target', ' a', '--target', ' b']), 2, /1 --prompt but 2 --target/);
    expectOneLineError(await cli([...base, '--prompt', 'A is', '--target', ' a', '--prompt', ' ', '--target', ' b']), 2, /--prompt is missing or empty/);
    expectOneLineError(await cli([...base, ...facts(11)]), 2, /one edit holds at most 10 facts, got 11/);
    expectOneLineError(await cli([...base, '--prompt', 'Hi', '--target', ' a', '--prompt', 'Yo', '--target', ' b', '--prompt', 'Hi', '--target', ' c']), 2,
      /facts 1 and 3 have the same prompt \("Hi"\); one edit can give a prompt only one target/);
    expectOneLineError(await cli([...base, '--prompt', 'Hi', '--target', ' a', '--prompt', 'Yo', '--target', ' ' + 'and '.repeat(20)]), 2,
      /^error: fact 2: the target is \d+ tokens long; at most 16 are allowed$/);
    expectOneLineError(await cli(['--model', wrongDir, '--backend', 'cpu', '--prompt', 'Hi', '--target', ' x']), 1,
      /editor_config.json: this editor was trained for a model with n_layer 12, but the model has n_layer 2/);
    expectOneLineError(await cli(['--model', bareDir, '--backend', 'cpu', '--prompt', 'Hi', '--target', ' x']), 1, /editor_config.json: not found/);
    expectOneLineError(await cli(['--model', join(dir, 'nope'), '--prompt', 'Hi', '--target', ' x']), 2, /no such folder/);
  }, 120_000);
});
