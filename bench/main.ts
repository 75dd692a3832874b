// npm run bench -- [--shapes shipped,distilgpt2,gpt2-medium,tiny] [--reps N] [--warmup N] [--inner N]
//                  [--rank R] [--large-mib M] [--new-tokens N] [--shipped DIR] [--rowwise-baseline] [--json] [--out FILE]
//        npm run bench -- --show FILE          (a saved --json report as the table; needs no GPU)
//        npm run bench -- --edit-only [--shapes ...] [--reps N] [--warmup N] [--out FILE]
//                                               (the one-wait edit alone: bench/gpu.sh's ratio rounds against PyTorch)
//
// Benchmarks the MEND edit, generation and the WGSL kernels on tfjs-webgpu in Node (Dawn: a real GPU when there
// is one, else SwiftShader on the CPU, where only the ratios mean anything). See docs/benchmarks.md.
// The table goes to stdout; with --json, one JSON object does instead. Progress goes to stderr.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { setupCliBackend } from '../src/cli/backend';
import { releaseDawn } from '../src/cli/dawn';
import { GpuMemoryWatch, hasTimestampQuery } from './measure';
import { hasModelAndEditor, randomModel, SHAPES, shippedDir, shippedModel, type BenchModel } from './models';
import { bandwidth, benchModel, editOnly, type BandwidthReport, type BenchSettings, type EditOnlyReport, type ModelReport } from './suite';
import { formatReport } from './report';

export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** a CPU-emulated GPU: absolute times say nothing about real GPUs, only ratios count */
  software: boolean;
  timestampQuery: boolean;
}

export interface BenchReport {
  bench: 'mendlab';
  version: 1;
  date: string;
  /** false in an --out file written while the run was still going */
  complete: boolean;
  adapter: AdapterReport;
  settings: BenchSettings & { rank: number; shapes: string[] };
  /** the update kernel vs the copy kernel on a buffer far larger than any cache: the adapter's DRAM bandwidth */
  largeBandwidth: BandwidthReport | null;
  models: ModelReport[];
}

/** `--edit-only`: the one-wait edit per shape and nothing else (JSON on stdout and in --out). */
export interface EditOnlyBenchReport {
  bench: 'mendlab-edit';
  version: 1;
  date: string;
  complete: boolean;
  adapter: AdapterReport;
  settings: { warmup: number; reps: number; editTokens: number; targetTokens: number; rank: number; shapes: string[] };
  models: EditOnlyReport[];
}

const USAGE = `usage: npm run bench -- [--shapes ${['shipped', ...Object.keys(SHAPES)].join(',')}] [--reps N] [--warmup N] [--inner N] [--rank R] [--large-mib M] [--new-tokens N] [--shipped DIR] [--rowwise-baseline] [--edit-only] [--json] [--out FILE] | --show FILE`;

function intOpt(v: string | undefined, name: string, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"\n${USAGE}`);
  return Number(v);
}

async function adapterReport(): Promise<AdapterReport> {
  const gpu = (globalThis as unknown as { navigator: { gpu: GPU } }).navigator.gpu;
  const adapter = await gpu.requestAdapter();
  const info = (adapter?.info ?? {}) as Partial<GPUAdapterInfo>;
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return {
    vendor: info.vendor ?? '', architecture: info.architecture ?? '', device: info.device ?? '', description: info.description ?? '',
    software: /swiftshader|llvmpipe|lavapipe|software/i.test(text) || (adapter as { isFallbackAdapter?: boolean } | null)?.isFallbackAdapter === true,
    timestampQuery: hasTimestampQuery(),
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      shapes: { type: 'string' }, reps: { type: 'string' }, warmup: { type: 'string' }, inner: { type: 'string' },
      rank: { type: 'string' }, 'large-mib': { type: 'string' }, 'new-tokens': { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean' },
      out: { type: 'string' }, show: { type: 'string' }, shipped: { type: 'string' }, 'rowwise-baseline': { type: 'boolean' },
      'edit-only': { type: 'boolean' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.show) {
    console.log(formatReport(JSON.parse(readFileSync(values.show, 'utf8')) as BenchReport));
    return 0;
  }
  const asked = values.shapes?.split(',').map((s) => s.trim()).filter(Boolean);
  for (const s of asked ?? []) if (s !== 'shipped' && !SHAPES[s]) throw new Error(`unknown shape "${s}"\n${USAGE}`);
  if (values.shipped && !hasModelAndEditor(values.shipped)) {
    throw new Error(`--shipped ${values.shipped}: needs config.json, model.safetensors (or shards + index), editor_config.json and editor.safetensors`);
  }
  // Dawn quantizes GPU timestamps by default (a privacy guard for the web): on the H100 run of 2026-11-27 a copy
  // kernel came out at "4096 GB/s", above the memory's bandwidth. A benchmark wants the exact values.
  const setup = await setupCliBackend('webgpu', { dawnFlags: ['disable-dawn-features=timestamp_quantization'] });
  if ('rerunExit' in setup) return setup.rerunExit; // re-ran itself with the SwiftShader environment
  const adapter = await adapterReport();
  const sw = adapter.software;
  // gpt2-medium on SwiftShader takes many minutes: opt-in there.
  const shapes = asked ?? (sw ? ['shipped', 'distilgpt2'] : ['shipped', 'distilgpt2', 'gpt2-medium']);
  const settings: BenchSettings & { rank: number; shapes: string[] } = {
    warmup: intOpt(values.warmup, 'warmup', sw ? 1 : 2, 0),
    reps: intOpt(values.reps, 'reps', sw ? 1 : 10, 1),
    inner: intOpt(values.inner, 'inner', sw ? 1 : 20, 1),
    editTokens: 16, targetTokens: 3, promptTokens: 16, newTokens: intOpt(values['new-tokens'], 'new-tokens', 32, 1),
    rank: intOpt(values.rank, 'rank', 1920, 1),
    rowwiseBaseline: values['rowwise-baseline'] === true,
    captureOnly: /null-backend/i.test(`${adapter.description} ${adapter.device}`) || undefined,
    shapes,
  };
  const largeMiB = intOpt(values['large-mib'], 'large-mib', sw ? 0 : 128, 0);
  const log = (m: string) => process.stderr.write(`[bench] ${m}\n`);
  log(`adapter: ${[adapter.vendor, adapter.architecture, adapter.device, adapter.description].filter(Boolean).join(' / ')}${sw ? ' (software: only ratios count)' : ''}`);
  // --out is rewritten after every model, so a run cut short (a time limit on a borrowed GPU) keeps what it measured.
  const save = (r: BenchReport | EditOnlyBenchReport) => values.out && writeFileSync(values.out, JSON.stringify(r, null, 2));
  const build = async (name: string): Promise<BenchModel> => {
    const t0 = performance.now();
    let bm: BenchModel;
    if (name === 'shipped') {
      const dir = values.shipped ?? shippedDir();
      if (!dir) throw new Error('no shipped model: neither public/models/facts-gpt/ nor tests/fixtures/mend-tiny/ has model + editor files');
      bm = await shippedModel(dir);
    } else {
      bm = randomModel(SHAPES[name], settings.rank);
    }
    log(`${name}: built in ${((performance.now() - t0) / 1000).toFixed(1)} s (${(bm.params / 1e6).toFixed(1)} M params, editor ${(bm.editorParams / 1e6).toFixed(1)} M)`);
    return bm;
  };
  if (values['edit-only']) {
    const { warmup, reps, editTokens, targetTokens, rank } = settings;
    const edits: EditOnlyReport[] = [];
    const editReport = (complete: boolean): EditOnlyBenchReport => ({
      bench: 'mendlab-edit', version: 1, date: new Date().toISOString(), complete, adapter, settings: { warmup, reps, editTokens, targetTokens, rank, shapes }, models: edits,
    });
    for (const name of shapes) {
      const bm = await build(name);
      try {
        edits.push(await editOnly(bm, settings, log));
      } finally {
        bm.editor.dispose();
        bm.model.dispose();
      }
      save(editReport(false));
    }
    const final = editReport(true);
    save(final);
    console.log(values.json ? JSON.stringify(final, null, 2) : edits.map((e) => `${e.name}: one-wait edit ${e.oneWaitMs.toFixed(3)} ms (median of ${e.samples.length})`).join('\n'));
    tf.disposeVariables();
    return 0;
  }

  const watch = new GpuMemoryWatch();
  let largeBandwidth: BandwidthReport | null = null;
  if (largeMiB > 0) {
    // W of [1024, largeMiB·256] floats = largeMiB MiB, far beyond any L2: the DRAM bandwidth yardstick.
    log(`update vs copy kernel bandwidth on a ${largeMiB} MiB weight`);
    largeBandwidth = await bandwidth(1024, largeMiB * 256, settings.editTokens, settings);
  }
  const models: ModelReport[] = [];
  const report = (complete: boolean): BenchReport => ({ bench: 'mendlab', version: 1, date: new Date().toISOString(), complete, adapter, settings, largeBandwidth, models });
  save(report(false));
  for (const name of shapes) {
    const bm = await build(name);
    try {
      models.push(await benchModel(bm, settings, watch, log));
    } finally {
      bm.editor.dispose();
      bm.model.dispose();
    }
    save(report(false));
  }
  watch.stop();
  const final = report(true);
  save(final);
  console.log(values.json ? JSON.stringify(final, null, 2) : formatReport(final));
  tf.disposeVariables();
  return 0;
}

main().then(
  (code) => {
    releaseDawn();
    process.exit(code);
  },
  (e) => {
    process.stderr.write(`bench: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  },
);
