// Messages for "what the edit did to the weights" and the guided lesson (additive to protocol.ts): the page asks
// for the report on the most recent MEND edit still applied; the worker answers with plain numbers only.
//
// Conventions. x/δ are the captured rows of the unedited model (layer input / ∂loss/∂layer output), x̃/δ̃ the
// editor's outputs, ΔW = Σ_i x̃_iᵀ δ̃_i, the installed update is step·ΔW with step = sign · lr_scale · edit_lrs[k]
// (docs/formats.md). "gradient" is ∇W = Σ_i x_iᵀ δ_i, the gradient of the edit loss. Norms are Frobenius norms.

import type { GuardReading } from '../editors/guard_reading';

export type WeightsRequest = { id: number; type: 'weightsReport' };

export interface WeightsResultOf {
  /** null when no MEND edit is applied (none yet, all undone, or only fine-tuning edits) */
  weightsReport: WeightsReport | null;
}

/** One row of the edit: a token position of prompt ++ target of one fact. */
export interface ReportToken {
  text: string;
  id: number;
  /** index of the fact (several facts = one batched edit) */
  fact: number;
  role: 'prompt' | 'target';
}

/** What the editor did to one token row of one weight. */
export interface RowTransform {
  /** rows where all of x or all of δ are zero are dropped: they take no part in the update */
  kept: boolean;
  xNorm: number;
  deltaNorm: number;
  xTildeNorm: number;
  deltaTildeNorm: number;
  /** cos(x_i, x̃_i) and cos(δ_i, δ̃_i); 0 when either is zero */
  xCos: number;
  deltaCos: number;
  /** ‖x_iᵀδ_i‖ = ‖x_i‖‖δ_i‖: this token's piece of the gradient */
  gradientPieceNorm: number;
  /** |step|·‖x̃_i‖‖δ̃_i‖: this token's piece of the installed update */
  updatePieceNorm: number;
  /** ⟨piece_i, ΔW⟩/‖ΔW‖²: its share of the update (shares sum to 1; negative = partly cancels the others) */
  updateShare: number;
}

export interface Heatmap {
  /** input dims (rows of the [in, out] weight) and output dims shown, ascending */
  rows: number[];
  cols: number[];
  /** rows.length × cols.length, row-major: entries of the installed update step·ΔW */
  values: number[];
  /** the largest |entry| of the whole installed update and where it is */
  maxAbs: number;
  argmax: [number, number];
}

export interface WeightUpdateReport {
  name: string;
  /** [in, out] as stored */
  shape: [number, number];
  /** the shared editor of this shape ("<in>x<out>"), its rank and this weight's FiLM mode */
  editorKey: string;
  editorRank: number;
  mode: number;
  /** step = sign · lrScale · editLr */
  editLr: number;
  step: number;
  /** ‖W‖ before the edit */
  weightNorm: number;
  /** ‖ΔW‖ (the editor's output, before the step) */
  deltaWNorm: number;
  /** ‖step·ΔW‖, from the rows */
  updateNorm: number;
  /** ‖W' − W‖ measured on the installed weights (equals updateNorm up to float32 rounding) */
  measuredUpdateNorm: number;
  /** updateNorm / weightNorm */
  relativeUpdate: number;
  /** singular values of step·ΔW, descending, one per row (those beyond the rank are ≈ 0) */
  singularValues: number[];
  /** how many are above rankTolerance·σ_max */
  rank: number;
  gradient: { norm: number; singularValues: number[]; rank: number };
  /** cos(step·ΔW, −∇W): 1 = the update is plain gradient descent's direction, 0 = unrelated, < 0 = uphill */
  cosineWithDescent: number;
  rows: RowTransform[];
  heatmap: Heatmap;
}

export interface WeightsReport {
  /** the session history entry this describes */
  entryId: number;
  /** edits applied after it (fine-tuning ones: a later MEND edit would be the one described) */
  editsAfter: number;
  facts: Array<{ prompt: string; target: string }>;
  tokens: ReportToken[];
  /** the edit loss on the unedited model: Σ over facts of the mean NLL of the target tokens */
  loss: number;
  /** exp(−T·loss): probability of the whole target before the edit (single-fact edits only) */
  targetProbBefore: number | null;
  sign: number;
  lrScale: number;
  /** MEND passes the edit took (editor_config.json batch_retry: a fact its first pass left short is edited again on
   * the model as edited so far). Everything above and per weight is pass 1's; only measuredUpdateNorm, read off the
   * installed weights, covers every pass. */
  passes: number;
  /** how often first_pass_guard halved pass 1's step (lrScale above is the halved one); 0 = not halved */
  stepHalvings: number;
  /** what first_pass_guard read on its own prose (editors/guard_reading.ts); null when no guard ran */
  guard: GuardReading | null;
  rankTolerance: number;
  weights: WeightUpdateReport[];
  ms: number;
}
