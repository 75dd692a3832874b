// `scan` (`npm run cli -- scan ...`): the knowledge scan (src/eval/scan.ts) of the held-out benchmark's single edits
// or (--batch-size 10) its batches of 10, MEND and the fine-tuning baseline on the same edits: every other subject of
// each edited relation in the edit's wording, the edited subjects' other facts and a sample of every other relation,
// before and after each edit. The benchmark's NS checks 3 other subjects per fact; this asks all of them (up to 300),
// so it shows how far an edit spreads (docs/eval.md "The knowledge scan").
//
// `scan --history FILE` instead replays a history file the playground exported and scans all its applied edits together
// against the original model, as the History panel's "Scan what all the edits changed" does; --json then prints
//   {"model", "backend", "seconds", "history": {"applied_edits", "facts"}, "scan": S as `edit --scan --json` writes it}.
//
// Progress goes to stderr; stdout gets a table, or with --json one object:
//   {"model", "backend", "seconds", "batch_size", "edits": [[benchmark edit index, ...] per edit],
//    "runs": {"mend": {"seconds", "totals": T, "scans": [S...]}, "ft": ...}}
//   T = {"edits", "edits_with_loss", "kinds": {"same relation" | "same subject" | "elsewhere": {"known_before", "kept", "took_target"}},
//        "by_relation": {relation: {"edits", "known_before", "kept", "took_target"}}}
//   S = {"edits": [index...], "facts": [{"subject", "relation", "prompt", "target"}...], ...the scan report as
//        `edit --scan --json` writes it (src/eval/scan_report.ts, docs/cli.md): "subjects", "relations",
//        "unrecognised", "asked", "known_before", "kept", "groups": [...], "lost": [...]}
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EditScan, ScanTotals } from '../eval/scan_benchmark';
import type { Command } from './command';
import { backendArg, benchmarkArgs, choiceArg, defaultModelFolder, intArg, readFactsIndex } from './args';
import { UsageError } from './errors';

const USAGE = 'scan [--model <folder>] [--benchmark FILE] [--method mend|ft|both] [--edits N | --per-relation K] [--batch-size 1|10] [--backend wasm|cpu|webgpu] [--json]'
  + ' | scan --history FILE [--model <folder>] [--backend wasm|cpu|webgpu] [--json]';

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv, strict: true, allowPositionals: false,
    options: {
      model: { type: 'string' }, benchmark: { type: 'string' }, method: { type: 'string' }, edits: { type: 'string' },
      backend: { type: 'string' }, json: { type: 'boolean' }, 'per-relation': { type: 'string' }, 'batch-size': { type: 'string' },
      history: { type: 'string' },
    },
  });
  if (values.history !== undefined) {
    const benchmarkOnly = (['benchmark', 'method', 'edits', 'per-relation', 'batch-size'] as const).filter((k) => values[k] !== undefined);
    if (benchmarkOnly.length) throw new UsageError(`--history scans a history file; --${benchmarkOnly[0]} is for the benchmark's edits`);
    return scanHistoryFile(values.history, values.model, backendArg(values.backend), values.json === true);
  }
  const batchSize = Number(choiceArg('batch-size', values['batch-size'], ['1', '10'] as const, '1')) as 1 | 10;
  const method = choiceArg('method', values.method, ['mend', 'ft', 'both'] as const, 'both');
  const backend = backendArg(values.backend);
  const n = intArg('edits', values.edits, 20, 1);
  if (values.edits !== undefined && values['per-relation'] !== undefined) throw new UsageError('give --edits or --per-relation, not both');
  const perRelation = values['per-relation'] === undefined ? undefined : intArg('per-relation', values['per-relation'], 1, 1);
  if (perRelation !== undefined && batchSize === 10) throw new UsageError('--per-relation picks single edits; with --batch-size 10 give --edits N (the first N batches)');
  const { folder, benchPath } = benchmarkArgs(values.model, values.benchmark);
  const index = readFactsIndex(folder);

  const [{ setupCliBackend }, { loadModel }, { localSource }, editors, bm, runner, sb, sr] = await Promise.all([
    import('./backend'), import('../model/load'), import('../model/fetch'), import('../editors'),
    import('../eval/benchmark'), import('../eval/benchmark_run'), import('../eval/scan_benchmark'), import('../eval/scan_report'),
  ]);
  const bench = bm.parseBenchmark(JSON.parse(readFileSync(benchPath, 'utf8')));
  const available = batchSize === 10 ? bench.groups['mend.batch10'].length : bench.groups['mend.single'].flat().length;
  if (perRelation === undefined && n > available) {
    throw new UsageError(`--edits ${n}: the benchmark has ${available} ${batchSize === 10 ? 'batches of 10' : 'single edits'}`);
  }
  const edits = sb.scanOrder(bench, n, perRelation, batchSize);
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;

  const t0 = performance.now();
  const loaded = await loadModel(localSource(folder));
  const { model, tokenizer } = loaded;
  const chosen: Array<'mend' | 'ft'> = method === 'both' ? ['mend', 'ft'] : [method];
  const say = (m: string) => process.stderr.write(m + '\n');
  const runs: Record<string, { seconds: number; totals: ScanTotals; scans: EditScan[] }> = {};
  for (const m of chosen) {
    const editor = m === 'mend'
      ? await editors.MendEditor.load(localSource(folder), model)
      : runner.benchmarkFinetuner(bench);
    const t = performance.now();
    let last = 0;
    const scans = await sb.scanBenchmarkEdits(model, tokenizer, index, editor, bench, edits, {
      eosTokenId: loaded.eosTokenId,
      onProgress: (done, total) => {
        if (done === total || performance.now() - last > 5000) {
          last = performance.now();
          say(`${m}: ${done}/${total} edits scanned`);
        }
      },
    });
    editor.dispose();
    runs[m] = { seconds: Math.round((performance.now() - t) / 100) / 10, totals: sb.scanTotals(scans), scans };
  }
  model.dispose();
  const seconds = Math.round((performance.now() - t0) / 1000);

  if (values.json) {
    const totals = (t: ScanTotals) => ({
      edits: t.edits, edits_with_loss: t.editsWithLoss,
      kinds: Object.fromEntries(Object.entries(t.kinds).map(([k, v]) => [k, { known_before: v.knownBefore, kept: v.kept, took_target: v.tookTarget }])),
      by_relation: Object.fromEntries(Object.entries(t.byRelation).map(([k, v]) => [k, { edits: v.edits, known_before: v.knownBefore, kept: v.kept, took_target: v.tookTarget }])),
    });
    const scan = (s: EditScan) => ({ edits: s.edits, facts: s.facts, ...sr.scanReportJson(s.report) });
    process.stdout.write(JSON.stringify({
      model: folder, backend: setup.backend, seconds, batch_size: batchSize, edits,
      runs: Object.fromEntries(Object.entries(runs).map(([m, r]) => [m, { seconds: r.seconds, totals: totals(r.totals), scans: r.scans.map(scan) }])),
    }) + '\n');
    return 0;
  }
  const head = ['method', 'facts', 'known before', 'kept', 'kept share', 'now the target'];
  const rows = Object.entries(runs).flatMap(([m, r]) => Object.entries(r.totals.kinds).map(([kind, v]) => [
    m === 'mend' ? 'MEND' : 'FT', kind, String(v.knownBefore), String(v.kept), v.knownBefore ? (v.kept / v.knownBefore).toFixed(4) : '—', String(v.tookTarget),
  ]));
  const relations = [...new Set(Object.values(runs).flatMap((r) => Object.keys(r.totals.byRelation)))].sort();
  if (relations.length > 1) {
    for (const [m, r] of Object.entries(runs)) {
      for (const rel of relations) {
        const v = r.totals.byRelation[rel];
        if (!v) continue;
        rows.push([m === 'mend' ? 'MEND' : 'FT', `same relation: ${rel} (${v.edits} edits)`, String(v.knownBefore), String(v.kept),
          v.knownBefore ? (v.kept / v.knownBefore).toFixed(4) : '—', String(v.tookTarget)]);
      }
    }
  }
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  process.stdout.write([
    line(head), ...rows.map(line), '',
    ...Object.entries(runs).map(([m, r]) => `${m === 'mend' ? 'MEND' : 'FT'}: ${r.totals.editsWithLoss} of ${r.totals.edits} edits lost at least one fact (${r.seconds} s)`),
    `pooled over ${batchSize === 10 ? `the benchmark's first ${n} batches of 10 (one update each)` : perRelation === undefined ? `the benchmark's first ${n} single edits` : `the first ${perRelation} single edits of each relation (${edits.length})`}; ${setup.backend}, ${seconds} s`,
  ].join('\n') + '\n');
  return 0;
}

/**
 * `scan --history FILE`: a history file the playground exported ("Export file"), replayed on the model and scanned as
 * the History panel's "Scan what all the edits changed" scans it: the facts index around every fact of the applied
 * edits, on the original weights and after the edits. Bad files are refused with the session's own reason (exit 2).
 */
async function scanHistoryFile(file: string, model: string | undefined, backend: ReturnType<typeof backendArg>, json: boolean): Promise<number> {
  const folder = model ?? defaultModelFolder();
  if (!existsSync(join(folder, 'config.json'))) throw new UsageError(`--model ${folder}: not a model folder (no config.json)`);
  const index = readFactsIndex(folder);
  if (!existsSync(file)) throw new UsageError(`--history ${file}: no such file`);
  const [{ setupCliBackend }, { loadModel }, { localSource }, editors, session, sc, sr] = await Promise.all([
    import('./backend'), import('../model/load'), import('../model/fetch'), import('../editors'), import('../session'),
    import('../eval/scan'), import('../eval/scan_report'),
  ]);
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;
  const t0 = performance.now();
  const loaded = await loadModel(localSource(folder));
  const { mend, ft } = await editors.loadEditors(localSource(folder), loaded.model);
  const s = new session.EditSession({ model: loaded.model, tokenizer: loaded.tokenizer, editors: { ...(mend ? { mend } : {}), ft }, damageCheck: false });
  try {
    try {
      await s.importHistory(new Uint8Array(readFileSync(file))); // size-checked before it is parsed
    } catch (e) {
      if (e instanceof session.HistoryFormatError || e instanceof session.EditInputError) throw new UsageError(`--history ${file}: ${e.message}`);
      throw e;
    }
    if (s.applied.length === 0) throw new UsageError(`--history ${file}: no edit in it is applied (all undone), so there is nothing to compare with the original model`);
    const { report, facts } = await sc.scanSessionHistory(s, loaded.model, loaded.tokenizer, index, {
      eosTokenId: loaded.eosTokenId, onProgress: (m) => process.stderr.write(m + '\n'),
    });
    const out = sr.scanReportJson(report);
    const seconds = Math.round((performance.now() - t0) / 1000);
    if (json) {
      process.stdout.write(JSON.stringify({ model: folder, backend: setup.backend, seconds, history: { applied_edits: s.applied.length, facts }, scan: out }) + '\n');
    } else {
      process.stdout.write([
        `${s.applied.length} applied edit${s.applied.length === 1 ? '' : 's'} from ${file}, ${facts} edited fact${facts === 1 ? '' : 's'}`,
        ...sr.scanReportLines(out, facts, sr.HISTORY_SCAN_WORDING),
        `${setup.backend}, ${seconds} s`,
      ].join('\n') + '\n');
    }
    return 0;
  } finally {
    s.dispose();
    mend?.dispose();
    ft.dispose();
    loaded.model.dispose();
  }
}

export const scan: Command = {
  name: 'scan', summary: 'the knowledge scan of the benchmark\'s single or batch edits (MEND and FT), or of a history file: how far edits spread', usage: USAGE, run,
};
