// Worker side of "what the edit did to the weights" and the guided lesson: for the most recent MEND edit still
// applied, recompute its pieces with the editor's own public steps (captureRows → runEditor; the edit math is not
// duplicated here), read the small row matrices back, and reduce them to plain numbers with src/analysis.
//
// The rows must come from the weights the edit saw. The session keeps every applied edit's before/after buffers,
// so we point the model back at the "before" buffers of that edit and everything after it, capture, and point it
// forward again: no copies, bit-exact, and the worker runs one request at a time, so nothing else sees the detour.
import * as tf from '@tensorflow/tfjs';
import type { GPT2 } from '../model';
import { reapplyChanges, revertChanges } from '../editors/changes';
import { guardReading } from '../editors/guard_reading';
import { disposeRows, type CapturedRows, type MendEditor } from '../editors/mend';
import type { HistoryEntry } from '../session';
import {
  heatmapSlice, numericalRank, RANK_TOLERANCE, rowsOf, tokenContributions, updateCosine, updateNorm, updateSingularValues,
  type Rows, type UpdateRows,
} from '../analysis';
import type { ReportToken, RowTransform, WeightsReport, WeightUpdateReport } from './weights-protocol';

/** What the report needs from the worker's editing state. */
export interface WeightsContext {
  model: GPT2;
  tokenizer: { decode(ids: number[]): string };
  /** the MEND editor that made the session's MEND edits */
  mend: MendEditor | null;
  /** the session's applied edits, oldest first (EditSession.applied) */
  applied: readonly HistoryEntry[];
}

export const HEATMAP_SIZE = 24;

async function readRows(t: tf.Tensor2D): Promise<Rows> {
  return rowsOf(await t.data(), t.shape[0], t.shape[1]);
}

function cosine(a: Rows, b: Rows, i: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < a.cols; k++) {
    const av = a.data[i * a.cols + k];
    const bv = b.data[i * b.cols + k];
    ab += av * bv;
    aa += av * av;
    bb += bv * bv;
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

function norm(a: Rows, i: number): number {
  let s = 0;
  for (let k = 0; k < a.cols; k++) s += a.data[i * a.cols + k] ** 2;
  return Math.sqrt(s);
}

/** The report on the latest applied MEND edit, or null when there is none. */
export async function weightsReport(ctx: WeightsContext | null): Promise<WeightsReport | null> {
  if (!ctx?.mend) return null;
  const t0 = performance.now();
  const { model, mend, applied } = ctx;
  const k = applied.map((e) => e.method).lastIndexOf('mend');
  if (k < 0) return null;
  const entry = applied[k];
  const later = applied.slice(k); // this edit and everything applied after it

  // 1. The rows the edit was made from: x/δ of the weights as they were just before it.
  for (let i = later.length - 1; i >= 0; i--) revertChanges(model, later[i].result.changes);
  let captured: { rows: Map<string, CapturedRows>; loss: number };
  try {
    captured = await mend.captureRows(model, entry.facts);
  } finally {
    for (const e of later) reapplyChanges(model, e.result.changes);
  }

  const tokens: ReportToken[] = entry.facts.flatMap((f, fact) => [
    ...f.promptIds.map((id) => ({ id, fact, role: 'prompt' as const, text: ctx.tokenizer.decode([id]) })),
    ...f.targetIds.map((id) => ({ id, fact, role: 'target' as const, text: ctx.tokenizer.decode([id]) })),
  ]);

  // pass 1's multiplier: lr_scale (lr_scale_batch for several facts), halved where first_pass_guard halved it
  const lrScale = entry.result.stats.lrScale ?? mend.lrScaleFor(entry.facts.length);
  const weights: WeightUpdateReport[] = [];
  try {
    for (const name of mend.weightNames) {
      const rows = captured.rows.get(name)!;
      const out = mend.runEditor(name, rows);
      const change = entry.result.changes.find((c) => c.name === name);
      const [xNormW, measured] = tf.tidy(() => [
        tf.norm(change ? change.before : model.getWeight(name)),
        change ? tf.norm(tf.sub(change.after, change.before)) : tf.scalar(0),
      ]);
      try {
        const [x, delta, xTilde, deltaTilde, keep, wNorm, mNorm] = await Promise.all([
          readRows(rows.x), readRows(rows.delta), readRows(out.xTilde), readRows(out.deltaTilde),
          rows.keep.data(), xNormW.data(), measured.data(),
        ]);
        weights.push(describeWeight(mend, name, { x, delta }, { x: xTilde, delta: deltaTilde }, keep, wNorm[0], mNorm[0],
          lrScale));
      } finally {
        tf.dispose([out.xTilde, out.deltaTilde, xNormW, measured]);
      }
    }
  } finally {
    disposeRows(captured.rows);
  }

  const single = entry.facts.length === 1;
  return {
    entryId: entry.id,
    editsAfter: later.length - 1,
    facts: entry.facts.map((f) => ({ prompt: f.prompt, target: f.target })),
    tokens,
    loss: captured.loss,
    targetProbBefore: single ? Math.exp(-captured.loss * entry.facts[0].targetIds.length) : null,
    sign: mend.config.sign,
    lrScale,
    passes: entry.result.stats.passes ?? 1,
    stepHalvings: entry.result.stats.stepHalvings ?? 0,
    guard: guardReading(entry.result.stats),
    rankTolerance: RANK_TOLERANCE,
    weights,
    ms: performance.now() - t0,
  };
}

/** All numbers for one weight, from its raw rows (gradient) and the editor's rows (update) at pass 1's `lrScale`. */
export function describeWeight(
  mend: MendEditor, name: string, raw: UpdateRows, edited: UpdateRows, keep: ArrayLike<number>, weightNorm: number,
  measuredUpdateNorm: number, lrScale: number,
): WeightUpdateReport {
  const step = mend.coefficientAt(name, lrScale);
  const cfg = mend.config;
  const shapeEditor = cfg.editors.find((e) => e.weights.includes(name))!;
  const k = cfg.editedWeights.indexOf(name);
  const deltaWNorm = updateNorm(edited);
  const sv = Array.from(updateSingularValues(edited), (s) => Math.abs(step) * s);
  const gradSv = Array.from(updateSingularValues(raw));
  const contributions = tokenContributions(edited, step);
  const rows: RowTransform[] = contributions.map((c, i) => {
    const xNorm = norm(raw.x, i);
    const deltaNorm = norm(raw.delta, i);
    return {
      kept: keep[i] > 0, xNorm, deltaNorm, xTildeNorm: c.xNorm, deltaTildeNorm: c.deltaNorm,
      xCos: cosine(raw.x, edited.x, i), deltaCos: cosine(raw.delta, edited.delta, i),
      gradientPieceNorm: xNorm * deltaNorm, updatePieceNorm: c.pieceNorm, updateShare: c.share,
    };
  });
  const h = heatmapSlice(edited, HEATMAP_SIZE, step);
  const updateNormValue = Math.abs(step) * deltaWNorm;
  return {
    name,
    shape: cfg.weightShapes[k],
    editorKey: shapeEditor.key,
    editorRank: shapeEditor.rank,
    mode: shapeEditor.weights.indexOf(name),
    editLr: step / (cfg.sign * lrScale),
    step,
    weightNorm,
    deltaWNorm,
    updateNorm: updateNormValue,
    measuredUpdateNorm,
    relativeUpdate: weightNorm > 0 ? updateNormValue / weightNorm : 0,
    singularValues: sv,
    rank: numericalRank(sv),
    gradient: { norm: updateNorm(raw), singularValues: gradSv, rank: numericalRank(gradSv) },
    // step·ΔW against −∇W: the sign of the step flips the direction of ΔW.
    cosineWithDescent: -Math.sign(step) * updateCosine(edited, raw),
    rows,
    heatmap: { rows: h.rows, cols: h.cols, values: Array.from(h.values), maxAbs: h.maxAbs, argmax: h.argmax },
  };
}
