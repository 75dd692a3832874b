// `npm run eval` argument handling, in a child process: bad options fail fast with one "error:" line and exit 2,
// before any model or tfjs work; and one real replay of a batch-10 group (benchmark.test.ts covers more groups).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('../../', import.meta.url).pathname;

function evalCli(args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'eval', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr.trim() };
}

describe('npm run eval: arguments', () => {
  it('rejects an unknown method, mode or limit with one error line', () => {
    for (const [args, pattern] of [
      [['--method', 'rome'], /--method must be one of mend, ft, both/],
      [['--mode', 'batch5'], /--mode must be one of single, batch10, both/],
      [['--limit', '0'], /--limit must be an integer >= 1/],
    ] as const) {
      const r = evalCli([...args]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr.split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(pattern);
      expect(r.stdout).toBe('');
    }
  });

  it('replays one MEND batch-10 group of the shipped benchmark and agrees with Python case by case (--json)', () => {
    const r = evalCli(['--method', 'mend', '--mode', 'batch10', '--limit', '1', '--backend', 'wasm', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    const run = out.runs['mend.batch10'];
    expect(out.backend).toBe('wasm');
    expect(run.groups).toBe(1);
    expect(run.cases.compared).toBeGreaterThan(50);
    expect(run.cases.disagreements).toEqual([]);
    for (const k of ['es', 'ps', 'ns']) expect(Math.abs(run.ts[k] - run.python_same_groups[k])).toBeLessThanOrEqual(0.02);
    // the whole-run reference is Python's stored aggregate over all 30 groups (the settings the app uses)
    expect(run.python_all_groups.n_groups).toBe(30);
  }, 300_000);

  it('refuses a benchmark computed with other batch_retry settings than the editor has', () => {
    // (batch_retry's min_facts 1 makes single edits retry too: a benchmark without it scored them in one pass)
    const dir = mkdtempSync(join(tmpdir(), 'mendlab-eval-'));
    const shipped = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/benchmark.json'), 'utf8'));
    const retry = shipped.mend_batch_retry;
    expect(retry.prose_guard, 'the shipped benchmark has a guarded retry').toBeDefined();
    const { trust_region: _, ...noTrust } = retry;
    const { min_facts: __, ...batchesOnly } = retry; // single edits one pass, where the editor retries them
    expect(retry.min_facts, 'the shipped benchmark retries single edits').toBe(1);
    for (const [name, other] of [
      ['min_facts', batchesOnly],
      ['guard', { ...retry, prose_guard: { ...retry.prose_guard, max_increase: 0.05 } }],
      ['ids', { ...retry, prose_guard: { ...retry.prose_guard, prose_ids: retry.prose_guard.prose_ids.slice(1) } }],
      ['trust', noTrust],
    ] as const) {
      const path = join(dir, `benchmark-${name}.json`);
      writeFileSync(path, JSON.stringify({ ...shipped, mend_batch_retry: other }));
      const r = evalCli(['--method', 'mend', '--mode', 'batch10', '--limit', '1', '--backend', 'wasm', '--benchmark', path]);
      expect(r.code, name).not.toBe(0);
      expect(r.stderr, name).toMatch(/editor_config.json batch_retry .* differs from the benchmark's/);
      expect(r.stdout, name).toBe('');
    }
  }, 300_000);

  it('refuses a benchmark computed without the pass-1 guard the editor has, or with another one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mendlab-eval-'));
    const shipped = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/benchmark.json'), 'utf8'));
    const guard = shipped.mend_first_pass_guard;
    expect(guard, 'the shipped benchmark has a pass-1 guard').toBeDefined();
    const { mend_first_pass_guard: _, ...unguarded } = shipped;
    for (const [name, file] of [
      ['none', unguarded],
      ['limit', { ...shipped, mend_first_pass_guard: { ...guard, max_increase: 0.1 } }],
      ['halvings', { ...shipped, mend_first_pass_guard: { ...guard, max_halvings: 1 } }],
    ] as const) {
      const path = join(dir, `benchmark-${name}.json`);
      writeFileSync(path, JSON.stringify(file));
      const r = evalCli(['--method', 'mend', '--mode', 'single', '--limit', '1', '--backend', 'wasm', '--benchmark', path]);
      expect(r.code, name).not.toBe(0);
      expect(r.stderr, name).toMatch(/editor_config.json first_pass_guard .* differs from the benchmark's/);
      expect(r.stdout, name).toBe('');
    }
  }, 300_000);

  it('says how to write benchmark.json when the model folder has none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mendlab-eval-'));
    const r = evalCli(['--model', join(ROOT, 'tests/fixtures/tiny-gpt2'), '--benchmark', join(dir, 'benchmark.json')]);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/benchmark\.json not found: write it with .*training\/export_benchmark\.py/);
  });
});
