// `sequential` (`npm run cli -- sequential ...`): the held-out benchmark's edits applied one after another, never
// reverted, as a long edit history applies them (src/eval/sequential.ts; docs/eval.md): how many earlier edits still
// hold, how the newest ones fare, what happens to the neighbours and the held-out prose, for MEND and the fine-tuning
// baseline on the same edits in the same order. An edit is one fact (the single-edit benchmark's order), or with
// --batch-size 10 one of the batch-of-10 benchmark's groups (ten facts in one update). This has no Python
// counterpart: its k = 1 row is the benchmark's first case, which `eval` checks against PyTorch.
//
// Progress goes to stderr; stdout gets a table, or with --json one object:
//   {"model", "backend", "seconds", "batch_size": 1|10, "edits": [[benchmark edit index...]...], "without_guards": bool,
//    "runs": {"mend": {"seconds", "points": [P...]}, "ft": ...}}
// --without-guards runs MEND without its config's first_pass_guard and batch_retry (one plain pass per edit).
//   P = {"k", "facts", "retention", "es_new", "ns", "ppl_increase", "n_neighbour_prompts", "refused"} (k edits holding
//   `facts` facts; refused: edits the engine would not install because they made weights non-finite, counted as failed)
// --scan adds to each P "scan": {"asked", "known_before", "kept", "took_target", "kinds": {kind: {"known_before",
//   "kept"}}}: the knowledge scan (src/eval/scan.ts) around every fact edited so far, the unedited model against now.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SequentialPoint } from '../eval/sequential';
import type { Command } from './command';
import { backendArg, benchmarkArgs, choiceArg, intArg, readFactsIndex } from './args';
import { UsageError } from './errors';

const USAGE = 'sequential [--model <folder>] [--benchmark FILE] [--method mend|ft|both] [--edits N] [--batch-size 1|10] [--checkpoints K,K,...] [--without-guards] [--scan] [--backend wasm|cpu|webgpu] [--json]';

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      model: { type: 'string' }, benchmark: { type: 'string' }, method: { type: 'string' }, edits: { type: 'string' },
      checkpoints: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' }, 'without-guards': { type: 'boolean' },
      'batch-size': { type: 'string' }, scan: { type: 'boolean' },
    },
  });
  const method = choiceArg('method', values.method, ['mend', 'ft', 'both'] as const, 'both');
  const backend = backendArg(values.backend);
  const batchSize = values['batch-size'] ?? '1';
  if (batchSize !== '1' && batchSize !== '10') throw new UsageError(`--batch-size must be 1 or 10 (the benchmark's single edits or its batches of 10), got "${batchSize}"`);
  const n = intArg('edits', values.edits, batchSize === '1' ? 50 : 10, 1);
  let checkpoints: number[] | undefined;
  if (values.checkpoints !== undefined) {
    const parts = values.checkpoints.split(',');
    if (!parts.every((p) => /^\d+$/.test(p.trim()) && Number(p) >= 1 && Number(p) <= n)) {
      throw new UsageError(`--checkpoints must be a comma-separated list of integers from 1 to --edits (${n}), got "${values.checkpoints}"`);
    }
    checkpoints = [...new Set(parts.map(Number))].sort((a, b) => a - b);
  }
  const { folder, benchPath } = benchmarkArgs(values.model, values.benchmark);
  const index = values.scan ? readFactsIndex(folder, '--scan: ') : null;

  const [{ setupCliBackend }, { loadModel }, { localSource }, editors, bm, runner, seq] = await Promise.all([
    import('./backend'), import('../model/load'), import('../model/fetch'), import('../editors'),
    import('../eval/benchmark'), import('../eval/benchmark_run'), import('../eval/sequential'),
  ]);
  const bench = bm.parseBenchmark(JSON.parse(readFileSync(benchPath, 'utf8')));
  // the benchmark's single edits or batches, in its order: distinct test subjects, so no fact is edited twice
  const order = bench.groups[batchSize === '1' ? 'mend.single' : 'mend.batch10'];
  if (n > order.length) throw new UsageError(`--edits ${n}: the benchmark has ${order.length} ${batchSize === '1' ? 'single edits' : 'batches of 10'}`);
  const edits = order.slice(0, n);
  const marks = checkpoints ?? seq.defaultCheckpoints(n);
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;

  const t0 = performance.now();
  const { model, tokenizer, eosTokenId } = await loadModel(localSource(folder));
  const scanSetup = index ? { tokenizer, index, eosTokenId } : undefined;
  const chosen: Array<'mend' | 'ft'> = method === 'both' ? ['mend', 'ft'] : [method];
  const say = (m: string) => process.stderr.write(m + '\n');
  say(`baseline: the unedited model's answers to the neighbours of ${n} edits`);
  const base = await runner.computeBaseline(model, bench, edits.flat());

  const runs: Record<string, { seconds: number; points: SequentialPoint[] }> = {};
  for (const m of chosen) {
    const editor = m === 'mend'
      ? values['without-guards'] ? mendWithoutGuards(editors.MendEditor, folder, model) : await editors.MendEditor.load(localSource(folder), model)
      : runner.benchmarkFinetuner(bench);
    const t = performance.now();
    let last = 0;
    const points = await seq.runSequential(model, editor, bench, edits, base, marks, (done, total) => {
      if (done === total || performance.now() - last > 2000) {
        last = performance.now();
        say(`${m}: ${done}/${total} edits applied`);
      }
    }, scanSetup);
    editor.dispose();
    runs[m] = { seconds: Math.round((performance.now() - t) / 100) / 10, points };
  }
  model.dispose();
  const seconds = Math.round((performance.now() - t0) / 1000);

  if (values.json) {
    process.stdout.write(JSON.stringify({
      model: folder, backend: setup.backend, seconds, batch_size: Number(batchSize), edits, without_guards: !!values['without-guards'], runs,
    }) + '\n');
    return 0;
  }
  const f = (v: number | null, d = 3) => (v === null ? '—' : v.toFixed(d));
  const head = ['method', 'edits', 'facts', 'retention', 'ES (new)', 'NS', 'ppl incr.', 'neighbours', 'refused',
    ...(scanSetup ? ['scan kept', 'same relation kept', 'lost to a target'] : [])];
  const share = (k?: { known_before: number; kept: number }) => (k && k.known_before ? f(k.kept / k.known_before) : '—');
  const rows = Object.entries(runs).flatMap(([m, r]) => r.points.map((p) => [
    m === 'mend' ? 'MEND' : 'FT', String(p.k), String(p.facts), f(p.retention), f(p.es_new), f(p.ns), `${(100 * p.ppl_increase).toFixed(2)}%`, String(p.n_neighbour_prompts), String(p.refused),
    ...(p.scan ? [`${share(p.scan)} (${p.scan.kept}/${p.scan.known_before})`, share(p.scan.kinds['same relation']), String(p.scan.took_target)] : []),
  ]));
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  process.stdout.write([
    line(head), ...rows.map(line), '',
    'retention: facts so far whose prompt still gives its target; ES (new): each fact right after its edit;',
    `NS: their neighbours unchanged; ppl incr.: held-out prose. ${setup.backend}, ${seconds} s`,
    ...(scanSetup ? ['scan: the knowledge scan around every fact edited so far, unedited model against now: the share of known facts still given'] : []),
  ].join('\n') + '\n');
  return 0;
}

/**
 * The MEND editor as its config would be without its test-time guards (editor_config.json first_pass_guard and
 * batch_retry removed): one plain pass per edit, as mend-spec.md describes MEND. What the guards do over a sequence.
 */
function mendWithoutGuards(Mend: typeof import('../editors').MendEditor, folder: string, model: import('../model').GPT2) {
  const config = JSON.parse(readFileSync(join(folder, 'editor_config.json'), 'utf8'));
  delete config.first_pass_guard;
  delete config.batch_retry;
  return Mend.fromFiles(config, readFileSync(join(folder, 'editor.safetensors')), model);
}

export const sequential: Command = {
  name: 'sequential', summary: 'the benchmark\'s edits (single, or batches of 10) one after another, never reverted (MEND and FT): what still holds', usage: USAGE, run,
};
