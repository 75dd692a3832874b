// The one interface both editing methods (MEND and the fine-tuning baseline) implement, so the session, the UI,
// the CLI and the benchmarks can compare them on the same edit: (model, facts) → new values for some weights.
import type * as tf from '@tensorflow/tfjs';
import type { GPT2 } from '../model';

export type EditMethod = 'mend' | 'ft';

/** One fact to teach the model: after editing, `target` should follow `prompt`. */
export interface Fact {
  prompt: string;
  target: string;
}

/** A fact tokenised per the formats.md convention: prompt and target tokenised separately, no BOS. */
export interface TokenizedFact {
  promptIds: number[];
  targetIds: number[];
}

/**
 * Wall-clock milliseconds per phase. With phasesSynced each phase is measured up to a GPU sync, so queued work is
 * counted where it happened; without (MEND's default, one wait per edit), capture and editor are the time to queue
 * them and update includes the wait for everything. totalMs is the edit's wall time either way.
 */
export interface EditTimings {
  /** forward + backward on the unedited model to get the x/δ rows (MEND) */
  captureMs: number;
  /** the editor network over the rows (MEND); the optimisation steps (fine-tuning) */
  editorMs: number;
  /** forming ΔW and writing W' */
  updateMs: number;
  totalMs: number;
  /** true when each phase ended with a GPU sync (see above) */
  phasesSynced: boolean;
}

/**
 * One weight's change. `before` is the very buffer the model used until now (so restoring it is bit-exact, with no
 * copy), `after` is the new value now installed in the model. Both are owned by the WeightChange.
 */
export interface WeightChange {
  name: string;
  before: tf.Tensor2D;
  after: tf.Tensor2D;
}

export interface EditResult {
  method: EditMethod;
  changes: WeightChange[];
  timings: EditTimings;
  /** method-specific numbers worth showing: rows kept, loss before/after, steps, ... */
  stats: Record<string, number>;
}

/** An editing method. `edit` installs the new weights in the model and returns what is needed to undo it. */
export interface ModelEditor {
  readonly method: EditMethod;
  /** the weights this method changes, canonical HF names */
  readonly weightNames: readonly string[];
  edit(model: GPT2, facts: TokenizedFact[]): Promise<EditResult>;
  dispose(): void;
}
