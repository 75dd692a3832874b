// Installing and undoing weight changes on a model, bit-exactly and without copies.
//
// How "W += c·ΔW in place" is realised (see also kernels/rank_update.ts): the model's weights are tf.Variables.
// `variable.assign(t)` makes the variable point at t's buffer (tfjs shares the dataId, no copy). So an edit
//   1. keeps a handle to the current buffer: tf.clone(variable) shares the dataId, it does not copy;
//   2. computes W' = W + c·X̃ᵀΔ̃ into a fresh buffer with the fused kernel;
//   3. points the variable at W' (model.setWeight).
// Reverting points the variable back at the kept buffer, which nothing ever wrote to: bit-exact by construction.
// We do not write into the variable's own buffer: that buffer is shared with the kept handle (and possibly with
// anything else that cloned the weight), and an in-place write would corrupt exactly the copy revert needs.
import * as tf from '@tensorflow/tfjs';
import type { GPT2 } from '../model';
import { finiteRows } from '../kernels/row_flags';
import { activeWebGPUBackend, flushTfjs } from '../kernels/webgpu';
import type { WeightChange } from './types';

/** A handle on the model's current buffer for `name` (no copy). The caller owns it. */
export function holdWeight(model: GPT2, name: string): tf.Tensor2D {
  return tf.clone(model.getWeight(name)) as tf.Tensor2D;
}

/** Installs `value` as the model's weight (the variable shares the buffer; the caller still owns `value`). */
export function installWeight(model: GPT2, name: string, value: tf.Tensor): void {
  model.setWeight(name, value);
}

/** Puts every weight back to its `before` buffer, last change first. */
export function revertChanges(model: GPT2, changes: readonly WeightChange[]): void {
  for (let i = changes.length - 1; i >= 0; i--) installWeight(model, changes[i].name, changes[i].before);
}

/** Re-installs every `after` buffer (redo). */
export function reapplyChanges(model: GPT2, changes: readonly WeightChange[]): void {
  for (const c of changes) installWeight(model, c.name, c.after);
}

export function disposeChanges(changes: readonly WeightChange[]): void {
  for (const c of changes) tf.dispose([c.before, c.after]);
}

/**
 * Waits until the GPU has finished everything queued so far, for honest phase timings. On webgpu: tfjs's pending
 * commands are submitted and the queue's onSubmittedWorkDone awaited (no dispatch, no copy); elsewhere one value of
 * `t`, the last result, is read back.
 */
export async function gpuSync(t: tf.Tensor): Promise<void> {
  const be = activeWebGPUBackend();
  if (be) {
    flushTfjs(be);
    await be.device.queue.onSubmittedWorkDone();
    return;
  }
  if (t.size === 0) return;
  const one = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
  await one.data();
  one.dispose();
}

/** An edit the engine refuses to install (e.g. it would put NaN or infinite values into the model's weights). */
export class EditRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EditRefusedError';
  }
}

/**
 * Throws EditRefusedError naming the first weight whose new value has a NaN/±Inf. An editor with a huge learning
 * rate, or rows that overflow, would otherwise install NaN weights, and every later answer of the model would be
 * garbage with no visible cause.
 *
 * Cost matters: this check was 21 of the 25.6 ms update phase of a distilgpt2-shape edit on the H100 run (the update
 * kernels themselves ~0.7 ms). So each weight is checked per row by one dispatch (kernels/row_flags.ts: one
 * workgroup per row; a whole-tensor reduction to one value would run in a single workgroup), and all the weights'
 * row flags come back in ONE read-back (each read is a full GPU round trip; the flags are a few KB).
 */
function rowsOf(t: tf.Tensor): tf.Tensor2D {
  const last = t.rank === 0 ? 1 : t.shape[t.rank - 1];
  return tf.reshape(t, [-1, Math.max(last, 1)]);
}

/** The refusal of an edit that would put a NaN or ±Inf into weight `name`. */
export function nonFiniteWeightError(name: string): EditRefusedError {
  return new EditRefusedError(`the edit was refused: it would make "${name}" contain NaN or infinite values (the editor's step is too large for this input)`);
}

export async function assertFiniteWeights(values: ReadonlyArray<{ name: string; value: tf.Tensor }>): Promise<void> {
  if (values.length === 0) return;
  const ends: number[] = [];
  const flags = tf.tidy(() => {
    const perWeight = values.map((v) => finiteRows(rowsOf(v.value)));
    let end = 0;
    for (const f of perWeight) ends.push((end += f.size));
    return tf.concat(perWeight);
  });
  try {
    const ok = await flags.data();
    const firstBadRow = ok.findIndex((f) => !f);
    if (firstBadRow >= 0) {
      const bad = ends.findIndex((end) => firstBadRow < end);
      throw nonFiniteWeightError(values[bad].name);
    }
  } finally {
    flags.dispose();
  }
}
