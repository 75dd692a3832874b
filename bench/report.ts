// The human-readable form of a bench report: one block per model, plain text tables.
import type { BenchReport } from './main';
import type { BandwidthReport, DispatchPhase } from './suite';

const ms = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v >= 0.1 ? v.toFixed(2) : v.toFixed(4));
const opt = (v: number | null, f: (x: number) => string) => (v === null ? '-' : f(v));
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

function dispatchLine(what: string, d: DispatchPhase): string {
  const top = Object.entries(d.topKernels).slice(0, 8).map(([k, v]) => `${k} ${+v.toFixed(1)}`).join(', ');
  return `${what}: ${+d.kernels.toFixed(1)} tfjs kernels, ${+d.dispatches.toFixed(1)} GPU dispatches; ` +
    `enqueue ${ms(d.enqueueMs)} ms (JavaScript) + read-back wait ${ms(d.waitMs)} ms  [${top}]`;
}

function bandwidthLine(b: BandwidthReport): string {
  const scalar = b.scalar ? `; scalar program ${b.scalar.updateGBs.toFixed(1)} GB/s = ${(100 * b.scalar.ratio).toFixed(0)}%` : '';
  return `update${b.variant ? ` (${b.variant})` : ''} ${b.updateGBs.toFixed(1)} GB/s vs copy ${b.copyGBs.toFixed(1)} GB/s = ` +
    `${(100 * b.ratio).toFixed(0)}%${scalar} ` +
    `(W [${b.shape.join(', ')}], ${mib(b.bytes)} read+written, ${b.timing === 'gpu' ? 'GPU timestamps' : 'wall clock'})`;
}

export function formatReport(r: BenchReport): string {
  const a = r.adapter;
  const out: string[] = [];
  out.push(`MEND Lab bench — ${r.date}`);
  out.push(`adapter: ${[a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' / ') || '(no info)'}` +
    `${a.software ? '  [software GPU: only ratios count]' : ''}${a.timestampQuery ? '  [timestamp-query]' : ''}`);
  const s = r.settings;
  out.push(`median of ${s.reps} (after ${s.warmup} warm-up), kernels ${s.inner} calls per sample; edit ${s.editTokens} tokens, generation ${s.promptTokens}+${s.newTokens} tokens`);
  if (r.largeBandwidth) out.push(`DRAM yardstick: ${bandwidthLine(r.largeBandwidth)}`);
  for (const m of r.models) {
    const c = m.config;
    out.push('');
    out.push(`== ${m.name} (${m.source}): ${c.nLayer} layers, ${c.nEmbd} wide, ${c.nHead} heads, vocab ${c.vocabSize}; ` +
      `${(m.params / 1e6).toFixed(1)} M params, editor ${(m.editor.params / 1e6).toFixed(1)} M (${Object.entries(m.editor.shapes).map(([k, v]) => `${k} r${v.rank}`).join(', ')})`);
    const e = m.edit;
    if (r.settings.captureOnly) out.push('MEND edit: capture only (Dawn null backend: read-backs are garbage, so the finite check would refuse the edit)');
    out.push(`MEND edit: total ${ms(e.totalMs)} ms = capture ${ms(e.captureMs)} + editor ${ms(e.editorMs)} + update ${ms(e.updateMs)} ms  (${e.rows} rows, ${e.rowsKept} kept)`);
    const g = m.generation;
    out.push(`generation: ${g.tokensPerSecond.toFixed(1)} tokens/s (${g.newTokens} new tokens after ${g.promptTokens} in ${ms(g.ms)} ms)` +
      (g.fast === undefined ? '' : g.fast ? `, fast decode path (${opt(g.fastDispatchesPerToken ?? null, (v) => `${+v.toFixed(1)}`)} GPU dispatches per token)` : ', tfjs ops (fast decode path not supported here)'));
    if (g.tfjs) {
      out.push(`generation, tfjs-op path: ${g.tfjs.tokensPerSecond.toFixed(1)} tokens/s (${ms(g.tfjs.ms)} ms); generate / tfjs-op path = ${g.speedup!.toFixed(2)}x tokens/s`);
    }
    if (m.capture) {
      const c = m.capture;
      out.push(`capture: fast ${ms(c.fastMs)} ms vs tfjs ${ms(c.tfjsMs)} ms = ${c.ratio.toFixed(2)}x  (MendEditor.captureRows, same run, alternated)`);
    }
    if (m.editorPhase) {
      const c = m.editorPhase;
      out.push(`editor phase: fast ${ms(c.fastMs)} ms (${c.fastDispatches} dispatches, one encoder${c.fastEnqueueMs === undefined ? '' : `, ${ms(c.fastEnqueueMs)} ms of it JavaScript enqueue`}) vs tfjs ${ms(c.tfjsMs)} ms (${c.tfjsDispatches} dispatches) = ${c.ratio.toFixed(2)}x  (MendEditor.runEditors, same rows, alternated)`);
      if (c.stacking) {
        const k = c.stacking;
        out.push(`editor phase, fast path: stacked by editor ${ms(k.stackedMs)} ms (${c.fastDispatches} dispatches) vs one weight at a time ${ms(k.perWeightMs)} ms (${k.perWeightDispatches}) = ${k.ratio.toFixed(2)}x  (alternated)`);
      }
    }
    if (m.rowFlags) {
      const c = m.rowFlags;
      out.push(`whole edit: row-flag kernels ${ms(c.fastMs)} ms (${c.fastDispatches} tfjs dispatches) vs tfjs ops ${ms(c.tfjsMs)} ms (${c.tfjsDispatches}) = ${c.ratio.toFixed(2)}x  (MendEditor.edit, keep mask + finite check, alternated)`);
    }
    if (m.updatePhase) {
      const c = m.updatePhase;
      out.push(`whole edit: update phase in one encoder ${ms(c.fastMs)} ms (${c.fastDispatches} tfjs dispatches) vs tfjs programs ${ms(c.tfjsMs)} ms (${c.tfjsDispatches}) = ${c.ratio.toFixed(2)}x  (fastUpdate, alternated)`);
    }
    if (m.plans) {
      const c = m.plans;
      out.push(`whole edit: kept plans ${ms(c.keptMs)} ms (${c.keptBindGroups} bind groups made) vs built per call ${ms(c.freshMs)} ms (${c.freshBindGroups}) = ${c.ratio.toFixed(2)}x  (gpuPlans.reuse, alternated)`);
      const e = c.captureEnqueue;
      out.push(`capture enqueue (JavaScript): kept plans ${ms(e.keptMs)} ms vs built per call ${ms(e.freshMs)} ms = ${e.ratio.toFixed(2)}x`);
    }
    if (m.factChecks) {
      const c = m.factChecks;
      out.push(`knowledge-scan fact checks: packed ${ms(c.packedMs)} ms vs one forward each ${ms(c.oneByOneMs)} ms = ${c.ratio.toFixed(2)}x  (${c.pairs} facts; GPT2.targetsAreArgmax vs targetIsArgmax, alternated)`);
    }
    if (m.pipeline) {
      const c = m.pipeline;
      out.push(`whole edit: one wait ${ms(c.oneWaitMs)} ms vs synced after each phase ${ms(c.syncedMs)} ms = ${c.ratio.toFixed(2)}x  (MendEditor.edit, the app's way vs syncPhases, alternated)`);
      if (c.captureSubmits) {
        const k = c.captureSubmits;
        out.push(`whole edit: capture submitted every ${k.every} dispatches ${ms(k.chunkedMs)} ms vs in one submit ${ms(k.oneSubmitMs)} ms = ${k.ratio.toFixed(2)}x  (fastCapture.submitEvery, one wait, alternated)`);
      }
      if (c.matmulUnroll) {
        const k = c.matmulUnroll;
        out.push(`whole edit: capture matmuls unrolled ${ms(k.unrolledMs)} ms vs one k step at a time ${ms(k.plainMs)} ms = ${k.ratio.toFixed(2)}x  (fastCapture.unrollMatmuls, one wait, alternated)`);
      }
      if (c.editorUnroll) {
        const k = c.editorUnroll;
        out.push(`whole edit: editor lowRank unrolled ${ms(k.unrolledMs)} ms vs one k step at a time ${ms(k.plainMs)} ms = ${k.ratio.toFixed(2)}x  (fastEditor.unrollK, one wait, alternated)`);
      }
      if (c.editorRows) {
        const k = c.editorRows;
        out.push(`whole edit: editor lowRank row blocks fitted to the stacked rows ${ms(k.wideMs)} ms vs 16 rows ${ms(k.narrowMs)} ms = ${k.ratio.toFixed(2)}x  (fastEditor.wideRows, one wait, alternated)`);
      }
      if (c.keptCount) {
        const k = c.keptCount;
        out.push(`whole edit: kept-row counts read with the edit's wait ${ms(k.earlyMs)} ms vs after it ${ms(k.afterMs)} ms = ${k.ratio.toFixed(2)}x  (mendEditTuning.countKeptEarly, one wait, alternated)`);
      }
      if (c.idleWait) {
        const w = c.idleWait;
        const parts = w.copyWorkDoneMs === undefined ? '' : `; of which: copy + onSubmittedWorkDone ${ms(w.copyWorkDoneMs)} ms, map of a finished copy ${ms(w.mapOnlyMs!)} ms`;
        out.push(`one wait on an idle queue: onSubmittedWorkDone ${ms(w.workDoneMs)} ms, 4-byte mapAsync read-back ${ms(w.mapReadMs)} ms${parts}`);
      }
    }
    for (const [what, p] of [['capture', m.captureProfile], ['editor phase', m.editorProfile]] as const) {
      if (!p) continue;
      out.push(`${what} GPU time, one pass per dispatch (timestamps): ${ms(p.totalMs)} ms in ${p.dispatches} passes, span ${ms(p.spanMs)} ms; by kernel: ` +
        p.kernels.map((k) => `${k.kernel} ${ms(k.ms)} (${+k.count.toFixed(1)})`).join(', '));
    }
    if (m.dispatch) {
      out.push(dispatchLine('per decode token (tfjs-op path)', m.dispatch.token));
      out.push(dispatchLine(m.dispatch.fastCapture ? 'per edit capture, tfjs path' : 'per edit capture', m.dispatch.capture));
      if (m.dispatch.fastCapture) out.push(dispatchLine('per edit capture, fast path', m.dispatch.fastCapture));
    }
    out.push(`bandwidth: ${bandwidthLine(m.bandwidth)}`);
    const mem = m.memory;
    out.push(`GPU memory: resident ${mib(mem.residentBytes)}, peak ${mib(mem.peakBytes)} (edit ${mib(mem.peakEditBytes)}, generation ${mib(mem.peakGenerationBytes)}), tfjs pool ${mib(mem.allocatedBytes)}`);
    out.push(table(
      ['kernel vs tfjs reference', 'shape', 'kernel ms', 'ref ms', 'ratio', 'GPU ratio'],
      m.kernels.map((k) => [k.kernel, k.shape, ms(k.kernelMs), ms(k.referenceMs), k.ratio.toFixed(2), opt(k.gpuRatio, (v) => v.toFixed(2))]),
    ));
    // --rowwise-baseline: the tiled editor kernel against the old row-per-workgroup one, same inputs, same run.
    for (const old of m.kernels.filter((k) => k.kernel === 'editorMLPRowwise')) {
      const tiled = m.kernels.find((k) => k.kernel === 'editorMLP' && k.shape === old.shape);
      if (!tiled) continue;
      const gpu = tiled.kernelGpuMs !== null && old.kernelGpuMs ? `, GPU ${(tiled.kernelGpuMs / old.kernelGpuMs).toFixed(3)}` : '';
      out.push(`tiled / row-per-workgroup editor kernel at ${old.shape}: ${(tiled.kernelMs / old.kernelMs).toFixed(3)}${gpu}`);
    }
  }
  return out.join('\n');
}
