// `npm run bench` in a child process on a tiny random model: the entry runs end to end and its --json report has
// every field, with values of the right kind (finite, positive, consistent with each other). Not a timing test:
// on SwiftShader the absolute numbers mean nothing.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchReport, EditOnlyBenchReport } from '../../bench/main';
import { formatReport } from '../../bench/report';
import { fastCapture } from '../../src/model/fast_capture';
import { runEntry } from '../helpers/run-node';

const SWIFTSHADER = { VK_ICD_FILENAMES: '/usr/lib/chromium/vk_swiftshader_icd.json', LD_LIBRARY_PATH: '/usr/lib/chromium' };

const bench = (args: string[]) => runEntry('bench/main.ts', args, SWIFTSHADER);

const positive = (v: unknown) => {
  expect(typeof v).toBe('number');
  expect(Number.isFinite(v as number)).toBe(true);
  expect(v as number).toBeGreaterThan(0);
};

/**
 * A side-by-side comparison of the report (`alternated` in bench/suite.ts, 2 repetitions): `${a}Ms`, `${b}Ms` and
 * the ratio positive, two samples of each side, ratio = a / b.
 */
function expectPair(c: object, a: string, b: string): void {
  const r = c as Record<string, unknown>;
  for (const v of [r[`${a}Ms`], r[`${b}Ms`], r.ratio]) positive(v);
  expect(r[`${a}Samples`], `${a}Samples`).toHaveLength(2);
  expect(r[`${b}Samples`], `${b}Samples`).toHaveLength(2);
  expect(r.ratio as number).toBeCloseTo((r[`${a}Ms`] as number) / (r[`${b}Ms`] as number), 6);
}

describe('npm run bench', () => {
  let report: BenchReport;
  const dir = mkdtempSync(join(tmpdir(), 'mendlab-bench-'));
  const outFile = join(dir, 'report.json');

  beforeAll(async () => {
    const r = await bench(['--shapes', 'tiny', '--json', '--out', outFile, '--reps', '2', '--warmup', '0', '--inner', '1', '--large-mib', '1', '--new-tokens', '4', '--rank', '8', '--rowwise-baseline']);
    expect(r.code, r.stderr).toBe(0);
    report = JSON.parse(r.stdout) as BenchReport;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the finished report to --out as well', () => {
    expect(report.complete).toBe(true);
    expect(JSON.parse(readFileSync(outFile, 'utf8'))).toEqual(report);
  });

  it('describes the adapter and the settings', () => {
    expect(report.bench).toBe('mendlab');
    expect(report.version).toBe(1);
    expect(Number.isNaN(Date.parse(report.date))).toBe(false);
    expect(report.adapter.software).toBe(true); // SwiftShader here
    expect(typeof report.adapter.timestampQuery).toBe('boolean');
    expect(report.settings).toMatchObject({ reps: 2, warmup: 0, inner: 1, editTokens: 16, promptTokens: 16, newTokens: 4, rank: 8, shapes: ['tiny'], rowwiseBaseline: true });
  });

  it('reports the DRAM yardstick: update vs copy kernel on the same bytes', () => {
    const b = report.largeBandwidth!;
    expect(b.shape).toEqual([1024, 256]);
    expect(b.bytes).toBe(2 * 1024 * 256 * 4);
    for (const v of [b.updateMs, b.copyMs, b.updateGBs, b.copyGBs, b.ratio]) positive(v);
    expect(b.ratio).toBeCloseTo(b.updateGBs / b.copyGBs, 6);
    expect(b.copyGBs).toBeCloseTo(b.bytes / (b.copyMs * 1e-3) / 1e9, 6);
  });

  it('reports the edit split, generation, kernels, bandwidth and memory of the model', () => {
    expect(report.models).toHaveLength(1);
    const m = report.models[0];
    expect(m).toMatchObject({ name: 'tiny', source: 'random', config: { nLayer: 2, nEmbd: 64, nHead: 4, nInner: 256, vocabSize: 1000 } });
    positive(m.params);
    positive(m.editor.params);
    expect(m.editor.editedWeights).toEqual([
      'transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight', 'transformer.h.1.mlp.c_fc.weight', 'transformer.h.1.mlp.c_proj.weight',
    ]);
    expect(m.editor.shapes).toEqual({ '64x256': { rank: 8, modes: 2 }, '256x64': { rank: 8, modes: 2 } });

    for (const k of ['captureMs', 'editorMs', 'updateMs', 'totalMs'] as const) positive(m.edit[k]);
    expect(m.edit.samples).toHaveLength(2);
    for (const s of m.edit.samples) expect(s.totalMs).toBeCloseTo(s.captureMs + s.editorMs + s.updateMs, 6);
    expect(m.edit.rows).toBe(16);
    expect(m.edit.rowsKept).toBeGreaterThan(0);

    expect(m.generation).toMatchObject({ promptTokens: 16, newTokens: 4 });
    expect(m.generation.samplesMs).toHaveLength(2);
    positive(m.generation.tokensPerSecond);
    expect(m.generation.tokensPerSecond).toBeCloseTo(4 / (m.generation.ms / 1000), 6);
    // The fast decode path (what generate runs on webgpu) and the tfjs-op path, side by side.
    expect(m.generation.fast).toBe(true);
    expect(m.generation.fastDispatchesPerToken).toBe(7 * 2 + 4);
    expect(m.generation.tfjs!.samplesMs).toHaveLength(2);
    positive(m.generation.tfjs!.tokensPerSecond);
    expect(m.generation.speedup).toBeCloseTo(m.generation.tfjs!.ms / m.generation.ms, 6);

    // Three kernels (editor MLP, fused update, outer-product sum) at each of the two editor shapes, plus the old
    // row-per-workgroup editor kernel (--rowwise-baseline), timed against the same reference as editorMLP, and the
    // scalar update program (the widths here are multiples of 4, so rankUpdate runs the vec4 one) against rankUpdate's.
    expect(m.kernels.map((k) => `${k.kernel}@${k.shape.split(',')[0]}`).sort()).toEqual([
      'editorMLP@256x64', 'editorMLP@64x256', 'editorMLPRowwise@256x64', 'editorMLPRowwise@64x256',
      'outerProductSum@256x64', 'outerProductSum@64x256', 'rankUpdate@256x64', 'rankUpdate@64x256',
      'rankUpdateScalar@256x64', 'rankUpdateScalar@64x256',
    ]);
    const baseline: Record<string, string> = { editorMLPRowwise: 'editorMLPReference', rankUpdateScalar: 'rankUpdateReference' };
    for (const k of m.kernels) {
      expect(k.reference).toBe(baseline[k.kernel] ?? `${k.kernel}Reference`);
      positive(k.kernelMs);
      positive(k.referenceMs);
      expect(k.ratio).toBeCloseTo(k.kernelMs / k.referenceMs, 6);
      if (report.adapter.timestampQuery) expect(k.kernelGpuMs).not.toBeNull();
    }

    expect(m.bandwidth.shape).toEqual([64, 256]);
    expect(m.bandwidth.bytes).toBe(2 * 64 * 256 * 4);
    for (const v of [m.bandwidth.updateGBs, m.bandwidth.copyGBs, m.bandwidth.ratio]) positive(v);
    expect(m.bandwidth.variant).toBe('vec4');
    for (const v of [m.bandwidth.scalar!.updateMs, m.bandwidth.scalar!.updateGBs, m.bandwidth.scalar!.ratio]) positive(v);
    expect(m.bandwidth.scalar!.ratio).toBeCloseTo(m.bandwidth.scalar!.updateGBs / m.bandwidth.copyGBs, 6);

    // Dispatch diagnostics: kernels and WGSL dispatches per decode token and per capture, enqueue vs read-back wait.
    const d = m.dispatch!;
    expect(d.token.samples).toBe(4);
    expect(d.capture.samples).toBe(2);
    for (const p of [d.token, d.capture]) {
      for (const v of [p.kernels, p.dispatches, p.enqueueMs]) positive(v);
      expect(p.waitMs).toBeGreaterThanOrEqual(0);
      expect(p.dispatches).toBeLessThanOrEqual(p.kernels + 4); // a few kernels dispatch twice; most one or none
      expect(Object.keys(p.topKernels).length).toBeGreaterThan(0);
    }
    // A decode step of a 2-layer model: per layer 4 linears, 2 LayerNorms, attention; the backward makes capture larger.
    expect(d.token.topKernels).toHaveProperty('BatchMatMul');
    expect(d.capture.dispatches).toBeGreaterThan(d.token.dispatches);
    // The fast capture: its own compute dispatches, no tfjs kernels, fewer dispatches than the tfjs path.
    const f = d.fastCapture!;
    expect(f.samples).toBe(2);
    expect(f.kernels).toBe(0);
    positive(f.dispatches);
    positive(f.enqueueMs);
    expect(f.dispatches).toBeLessThan(d.capture.dispatches);
    // Capture time with both paths in the same run (alternated), and their ratio.
    expectPair(m.capture!, 'fast', 'tfjs');
    // the knowledge scan's fact checks, packed against one forward each (their answers agree, or the bench throws)
    expect(m.factChecks!.pairs).toBe(32);
    expectPair(m.factChecks!, 'packed', 'oneByOne');
    // Editor phase with both paths in the same run: the fast path's own dispatches (the weights of one shape
    // stacked, split and keep mask folded in) against the tfjs path's editorMLP + split + keep mask per weight.
    const ep = m.editorPhase!;
    expectPair(ep, 'fast', 'tfjs');
    // Fast path: per editor (weight shape) a normalise per weight, 4 per editor layer (2 layers) less the last
    // epilogue, which runs per weight: 2·weights + 7·editors, e.g. 26 for the shipped 6 weights and 2 editors.
    expect(ep.fastDispatches).toBe(2 * m.editor.editedWeights.length + 7 * Object.keys(m.editor.shapes).length);
    expect(ep.tfjsDispatches).toBeGreaterThan(ep.fastDispatches);
    // Stacked against one weight at a time (9 dispatches per weight), both on the fast path, same run.
    const st = ep.stacking!;
    expectPair(st, 'stacked', 'perWeight');
    expect(st.perWeightDispatches).toBe(9 * m.editor.editedWeights.length);

    // The whole edit with the row-flag kernels and with their tfjs-op references, same run: per edited weight the
    // kernels replace the keep mask's tfjs ops (abs, max, greater, cast twice, mul) and the finite check's (isFinite,
    // all, cast) by one dispatch each; 7 fewer per weight on tfjs 4.22 (some of those ops run without a program).
    const rf = m.rowFlags!;
    expectPair(rf, 'fast', 'tfjs');
    positive(rf.fastDispatches);
    expect(rf.tfjsDispatches - rf.fastDispatches).toBeGreaterThanOrEqual(6 * m.editor.editedWeights.length);

    // The update phase in one encoder against the tfjs programs, same run: per edited weight a rankUpdate and a
    // finiteRows program fewer, and the flags' concat (at least one tfjs program) gone.
    const up = m.updatePhase!;
    expectPair(up, 'fast', 'tfjs');
    positive(up.fastDispatches);
    expect(up.tfjsDispatches - up.fastDispatches).toBeGreaterThanOrEqual(2 * m.editor.editedWeights.length + 1);

    // Kept plans against building them per call, same run. Built per call, every dispatch of the capture, of the
    // editor phase and of the update phase makes its bind group; kept (an edit after an edit), the capture of the
    // unchanged (reverted) model makes none and the other phases at most 2 per weight (fresh tensors they bind).
    const pl = m.plans!;
    expectPair(pl, 'kept', 'fresh');
    expectPair(pl.captureEnqueue, 'kept', 'fresh');
    // (The edit's capture also computes the keep masks in its pass: one dispatch per weight more than the capture
    // alone, which the dispatch diagnostics time.)
    // (The update phase: an update and a finite check per weight.)
    expect(pl.freshBindGroups).toBe(m.dispatch!.fastCapture!.dispatches + m.editor.editedWeights.length + ep.fastDispatches + 2 * m.editor.editedWeights.length);
    expect(pl.keptBindGroups).toBeLessThanOrEqual(2 * m.editor.editedWeights.length);

    // The app's one-wait edit against the same edit synced after each phase, same run.
    const pi = m.pipeline!;
    expectPair(pi, 'oneWait', 'synced');
    // The same one-wait edit with the capture in chunked submits against one submit, and the cost of an idle wait.
    expectPair(pi.captureSubmits!, 'chunked', 'oneSubmit');
    expect(pi.captureSubmits!.every).toBe(fastCapture.submitEvery);
    expectPair(pi.matmulUnroll!, 'unrolled', 'plain');
    expectPair(pi.editorUnroll!, 'unrolled', 'plain');
    expectPair(pi.editorRows!, 'wide', 'narrow');
    // Kept-row counts read with the edit's own wait against after it.
    expectPair(pi.keptCount!, 'early', 'after');
    const iw = pi.idleWait!;
    for (const v of [iw.workDoneMs, iw.mapReadMs, iw.copyWorkDoneMs, iw.mapOnlyMs]) positive(v);

    // The capture's and the editor phase's GPU profiles (one pass per dispatch, GPU timestamps): every dispatch, by kernel.
    if (report.adapter.timestampQuery) {
      const profiles = [
        {
          p: m.captureProfile!, dispatches: m.dispatch!.fastCapture!.dispatches + m.editor.editedWeights.length,
          known: /^(embed|lnFwd|lnBwd|lnBwdAdd|mmN|mmT|attnFwd|attnBwdQ|attnBwdKV|xent|row keep|reduce:b[01]:a[01]:(none|act|actGrad))$/,
          kernels: ['embed', 'mmN', 'mmT', 'xent', 'attnFwd', 'lnFwd', 'row keep'],
        },
        // lowRank's name carries its row block when wider than 16 rows (fastEditor.wideRows).
        { p: m.editorProfile!, dispatches: ep.fastDispatches, known: /^(normalise|lowRank(:r(32|48|64))?|sum|residual|final)$/, kernels: ['normalise', /^lowRank/, 'sum', 'residual', 'final'] },
      ];
      for (const { p, dispatches, known, kernels } of profiles) {
        expect(p.dispatches).toBe(dispatches);
        expect(p.kernels.reduce((a, k) => a + k.count, 0)).toBeCloseTo(p.dispatches, 6);
        expect(p.kernels.reduce((a, k) => a + k.ms, 0)).toBeCloseTo(p.totalMs, 6);
        for (const k of p.kernels) expect(k.kernel).toMatch(known);
        for (const name of kernels) {
          expect(p.kernels.some((k) => (typeof name === 'string' ? k.kernel === name : name.test(k.kernel))), `a ${name} kernel`).toBe(true);
        }
        positive(p.totalMs);
        expect(p.spanMs).toBeGreaterThanOrEqual(Math.max(...p.kernels.map((k) => k.ms / k.count)));
      }
    }
    positive(ep.fastEnqueueMs!);
    expect(ep.fastEnqueueMs!).toBeLessThan(ep.fastMs);

    const mem = m.memory;
    positive(mem.residentBytes);
    // The weights alone (fp32) are resident; the peaks include them plus the edit's / generation's temporaries.
    expect(mem.residentBytes).toBeGreaterThanOrEqual(m.params * 4);
    expect(mem.peakEditBytes).toBeGreaterThan(mem.residentBytes);
    expect(mem.peakBytes).toBe(Math.max(mem.peakEditBytes, mem.peakGenerationBytes));
    expect(mem.allocatedBytes).toBeGreaterThanOrEqual(mem.residentBytes);
  });

  it('prints the same report as a table', () => {
    const text = formatReport(report);
    expect(text).toMatch(/adapter: .*\[software GPU: only ratios count\]/);
    expect(text).toMatch(/== tiny \(random\): 2 layers, 64 wide, 4 heads, vocab 1000/);
    expect(text).toMatch(/MEND edit: total [\d.]+ ms = capture [\d.]+ \+ editor [\d.]+ \+ update [\d.]+ ms/);
    expect(text).toMatch(/generation: [\d.]+ tokens\/s \(4 new tokens after 16 in [\d.]+ ms\), fast decode path \(18 GPU dispatches per token\)/);
    expect(text).toMatch(/generation, tfjs-op path: [\d.]+ tokens\/s \([\d.]+ ms\); generate \/ tfjs-op path = [\d.]+x tokens\/s/);
    expect(text).toMatch(/per decode token \(tfjs-op path\): [\d.]+ tfjs kernels, [\d.]+ GPU dispatches; enqueue [\d.]+ ms \(JavaScript\) \+ read-back wait [\d.]+ ms/);
    expect(text).toMatch(/per edit capture, tfjs path: [\d.]+ tfjs kernels, [\d.]+ GPU dispatches/);
    expect(text).toMatch(/per edit capture, fast path: 0 tfjs kernels, [\d.]+ GPU dispatches/);
    expect(text).toMatch(/capture: fast [\d.]+ ms vs tfjs [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/knowledge-scan fact checks: packed [\d.]+ ms vs one forward each [\d.]+ ms = [\d.]+x {2}\(32 facts/);
    expect(text).toMatch(/editor phase, fast path: stacked by editor [\d.]+ ms \(\d+ dispatches\) vs one weight at a time [\d.]+ ms \(\d+\) = [\d.]+x/);
    expect(text).toMatch(/whole edit: row-flag kernels [\d.]+ ms \(\d+ tfjs dispatches\) vs tfjs ops [\d.]+ ms \(\d+\) = [\d.]+x/);
    expect(text).toMatch(/whole edit: update phase in one encoder [\d.]+ ms \(\d+ tfjs dispatches\) vs tfjs programs [\d.]+ ms \(\d+\) = [\d.]+x/);
    expect(text).toMatch(/whole edit: kept plans [\d.]+ ms \(\d+ bind groups made\) vs built per call [\d.]+ ms \(\d+\) = [\d.]+x/);
    expect(text).toMatch(/whole edit: one wait [\d.]+ ms vs synced after each phase [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/whole edit: capture submitted every \d+ dispatches [\d.]+ ms vs in one submit [\d.]+ ms = [\d.]+x/);
    if (report.adapter.timestampQuery) expect(text).toMatch(/editor phase GPU time, one pass per dispatch \(timestamps\): [\d.]+ ms in \d+ passes/);
    if (report.adapter.timestampQuery) expect(text).toMatch(/capture GPU time, one pass per dispatch \(timestamps\): [\d.]+ ms in \d+ passes, span [\d.]+ ms; by kernel: \w+/);
    expect(text).toMatch(/whole edit: capture matmuls unrolled [\d.]+ ms vs one k step at a time [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/whole edit: editor lowRank unrolled [\d.]+ ms vs one k step at a time [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/whole edit: editor lowRank row blocks fitted to the stacked rows [\d.]+ ms vs 16 rows [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/whole edit: kept-row counts read with the edit's wait [\d.]+ ms vs after it [\d.]+ ms = [\d.]+x/);
    expect(text).toMatch(/one wait on an idle queue: onSubmittedWorkDone [\d.]+ ms, 4-byte mapAsync read-back [\d.]+ ms; of which: copy \+ onSubmittedWorkDone [\d.]+ ms, map of a finished copy [\d.]+ ms/);
    expect(text).toMatch(/capture enqueue \(JavaScript\): kept plans [\d.]+ ms vs built per call [\d.]+ ms = [\d.]+x/);
    expect(text.match(/^(editorMLP|editorMLPRowwise|rankUpdate|outerProductSum) /gm)).toHaveLength(8);
    expect(text.match(/^tiled \/ row-per-workgroup editor kernel at (64x256|256x64), 16 rows, rank 8: [\d.]+/gm)).toHaveLength(2);
  });

  it('refuses a --shipped folder without a model and an editor', async () => {
    const r = await bench(['--shapes', 'shipped', '--shipped', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`--shipped ${dir}: needs config.json`);
  });

  it('--edit-only times the one-wait edit alone (the ratio rounds of bench/gpu.sh) and writes it to --out', async () => {
    const out = join(dir, 'edit-only.json');
    const r = await bench(['--edit-only', '--json', '--shapes', 'tiny,shipped', '--reps', '3', '--warmup', '1', '--rank', '8', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const e = JSON.parse(r.stdout) as EditOnlyBenchReport;
    expect(JSON.parse(readFileSync(out, 'utf8'))).toEqual(e);
    expect(e).toMatchObject({ bench: 'mendlab-edit', version: 1, complete: true, settings: { reps: 3, warmup: 1, editTokens: 16, rank: 8, shapes: ['tiny', 'shipped'] } });
    expect(e.models.map((m) => m.name)).toEqual(['tiny', 'shipped']);
    for (const m of e.models) {
      expect(m.samples).toHaveLength(3);
      m.samples.forEach(positive);
      expect(m.oneWaitMs).toBe([...m.samples].sort((a, b) => a - b)[1]);
    }
    // Nothing but edits: the full report's sections are absent.
    expect(r.stderr).not.toMatch(/generation|kernels|bandwidth/);
  });

  it('refuses an unknown shape with the usage line', async () => {
    const r = await bench(['--shapes', 'gpt5']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/unknown shape "gpt5"/);
    expect(r.stderr).toMatch(/usage: npm run bench/);
  });
});
