// `eval` (`npm run eval -- ...`): the training pipeline's held-out edit benchmark replayed through the TS engine and
// editors (src/eval/benchmark*.ts, docs/eval.md): ES, PS, PS novel, NS and perplexity increase for MEND and the
// fine-tuning baseline, single edits and batches of 10. The cases come from the model folder's benchmark.json
// (training/export_benchmark.py), so both sides score the very same edits, prompts, groups and prose.
//
// Progress goes to stderr while it runs; stdout gets a table, or with --json one object:
//   {"model", "backend", "seconds", "runs": {"mend.single": {"groups", "seconds", "ts": A, "python_same_groups": A|null,
//    "eval_json": M, "cases": {"compared", "disagreements", "max_ppl_diff"}|null}, ...}}
//   A = {"es", "ps", "ps_novel", "ns", "ppl_increase", "n_groups", "n_neighbour_prompts"}; M = eval.json's numbers
//   (the run that produced the artifacts, over all its groups).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { GroupOutcome, RunAggregate, RunName } from '../eval/benchmark';
import type { Command } from './command';
import { backendArg, benchmarkArgs, choiceArg } from './args';
import { UsageError } from './errors';

const USAGE = 'eval [--model <folder>] [--benchmark FILE] [--method mend|ft|both] [--mode single|batch10|both] [--limit N] [--backend wasm|cpu|webgpu] [--json]';

const fmt = (v: number | null | undefined, digits = 4) => (v === null || v === undefined ? '—' : v.toFixed(digits));

function progressLine(): (label: string, done: number, total: number) => void {
  let t0 = performance.now();
  let lastLabel = '';
  let lastPrint = 0;
  return (label, done, total) => {
    const now = performance.now();
    if (label !== lastLabel) { // a new phase starts its clock at its first report (done = 0)
      lastLabel = label;
      t0 = now;
    }
    if (done === 0 || (done < total && now - lastPrint < 2000)) return; // a line every 2 s at most
    lastPrint = now;
    const per = (now - t0) / 1000 / done;
    const eta = per * (total - done);
    process.stderr.write(`${label}: ${done}/${total}  ${per.toFixed(2)} s each${done < total ? `, ~${Math.ceil(eta)} s left` : ''}\n`);
  };
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      model: { type: 'string' }, benchmark: { type: 'string' }, method: { type: 'string' }, mode: { type: 'string' },
      limit: { type: 'string' }, backend: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const method = choiceArg('method', values.method, ['mend', 'ft', 'both'] as const, 'both');
  const mode = choiceArg('mode', values.mode, ['single', 'batch10', 'both'] as const, 'both');
  const backend = backendArg(values.backend);
  let limit = Infinity;
  if (values.limit !== undefined) {
    if (!/^\d+$/.test(values.limit) || Number(values.limit) < 1) throw new UsageError(`--limit must be an integer >= 1, got "${values.limit}"`);
    limit = Number(values.limit);
  }
  const { folder, benchPath } = benchmarkArgs(values.model, values.benchmark);

  const [{ setupCliBackend }, { loadModel }, { localSource }, editors, bm, runner] = await Promise.all([
    import('./backend'), import('../model/load'), import('../model/fetch'), import('../editors'),
    import('../eval/benchmark'), import('../eval/benchmark_run'),
  ]);
  const bench = bm.parseBenchmark(JSON.parse(readFileSync(benchPath, 'utf8')));
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;

  const t0 = performance.now();
  const { model } = await loadModel(localSource(folder));
  const runs = bm.RUNS.filter((r) => (method === 'both' || r.startsWith(method)) && (mode === 'both' || r.endsWith(mode)));
  const groupsOf = (r: RunName) => bench.groups[r].slice(0, limit);

  let mend = null;
  if (runs.some((r) => r.startsWith('mend'))) {
    mend = await editors.MendEditor.load(localSource(folder), model);
    // The pipeline may pick a test-time step multiplier other than the file's (eval.json mend_lr_scale).
    if (mend.config.lrScale !== bench.mend_lr_scale) {
      throw new Error(`editor_config.json lr_scale ${mend.config.lrScale} differs from the benchmark's ${bench.mend_lr_scale}`);
    }
    const batchScale = bench.mend_lr_scale_batch ?? bench.mend_lr_scale;
    if (mend.config.lrScaleBatch !== batchScale) {
      throw new Error(`editor_config.json lr_scale_batch ${mend.config.lrScaleBatch} differs from the benchmark's ${batchScale}`);
    }
    if (JSON.stringify(mend.config.batchRetry) !== JSON.stringify(bm.benchmarkBatchRetry(bench))) {
      throw new Error(`editor_config.json batch_retry ${JSON.stringify(mend.config.raw.batch_retry ?? null)} differs from the benchmark's ${JSON.stringify(bench.mend_batch_retry ?? null)}`);
    }
    if (JSON.stringify(mend.config.firstPassGuard) !== JSON.stringify(bm.benchmarkFirstPassGuard(bench))) {
      const brief = (g: unknown) => JSON.stringify(g ?? null, (k, v) => (k === 'prose_ids' ? '…' : v));
      throw new Error(`editor_config.json first_pass_guard ${brief(mend.config.raw.first_pass_guard)} differs from the benchmark's ${brief(bench.mend_first_pass_guard)}`);
    }
  }
  const ft = runner.benchmarkFinetuner(bench);

  const progress = progressLine();
  const used = new Set(runs.flatMap((r) => groupsOf(r).flat()));
  progress('baseline (unedited model)', 0, 1);
  const base = await runner.computeBaseline(model, bench, used, (d, n) => progress('baseline (unedited model)', d, n));

  const report: Record<string, unknown> = {};
  const rows: string[][] = [];
  for (const r of runs) {
    const groups = groupsOf(r);
    const t = performance.now();
    progress(r, 0, groups.length);
    const editor = r.startsWith('mend') ? mend! : ft;
    const outcomes: GroupOutcome[] = await runner.runGroups(model, editor, bench, groups, base, (d, n) => progress(r, d, n));
    const seconds = (performance.now() - t) / 1000;
    const ts = bm.aggregate(outcomes);
    const py = bench.python_outcomes?.runs[r];
    const pySame = py ? bm.aggregate(py.groups.slice(0, groups.length)) : null;
    const cases = py ? bm.compareCases(outcomes, py.groups) : null;
    const [m, k] = r.split('.') as ['mend' | 'ft', 'single' | 'batch10'];
    const evalJson = bench.reference[m][k];
    report[r] = {
      groups: groups.length, seconds: Math.round(seconds * 10) / 10, ts, python_same_groups: pySame, python_all_groups: py?.aggregate ?? null, eval_json: evalJson,
      cases: cases && { compared: cases.compared, disagreements: cases.disagreements, max_ppl_diff: cases.maxPplDiff },
    };
    const line = (who: string, a: Partial<RunAggregate>, extra: string) =>
      [r, who, fmt(a.es), fmt(a.ps), fmt(a.ps_novel), fmt(a.ns), fmt(a.ppl_increase, 5), extra];
    rows.push(line('TS', ts, `${groups.length} groups, ${seconds.toFixed(0)} s`));
    const pyDevice = py?.device ?? bench.python_outcomes?.device;
    if (pySame && cases) {
      rows.push(line(`Python ${pyDevice}`, pySame, `${cases.compared - cases.disagreements.length}/${cases.compared} cases agree`));
    }
    // The whole run as Python scored it with the stored outcomes' settings; eval.json's own numbers can differ from
    // these when a run was recomputed later with other settings (e.g. MEND batch-10 with lr_scale_batch).
    if (py?.aggregate && py.groups.length === bench.groups[r].length) {
      rows.push(line(`Python ${pyDevice}`, py.aggregate, `all ${bench.groups[r].length} groups`));
    } else {
      rows.push(line('eval.json', evalJson, `all ${bench.groups[r].length} groups`));
    }
  }
  const total = (performance.now() - t0) / 1000;
  model.dispose();
  mend?.dispose();

  if (values.json) {
    process.stdout.write(JSON.stringify({ model: folder, backend: setup.backend, seconds: Math.round(total), runs: report }) + '\n');
    return 0;
  }
  const head = ['run', 'by', 'ES', 'PS', 'PS novel', 'NS', 'ppl incr.', ''];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const fmtRow = (row: string[]) => row.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  process.stdout.write([fmtRow(head), ...rows.map(fmtRow), '', `${setup.backend}, ${total.toFixed(0)} s`].join('\n') + '\n');
  return 0;
}

export const evaluate: Command = { name: 'eval', summary: 'the held-out edit benchmark (MEND and FT) through the TS engine', usage: USAGE, run };
