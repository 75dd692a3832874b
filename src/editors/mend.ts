// MEND applied client-side (docs/formats.md "MEND editor", mend-spec.md §1–3):
//
//   1. capture   one forward + backward of the *unedited* model on prompt ++ target (mean NLL over the target)
//                gives, per edited weight W_k ([in, out]), the rows x_i (layer input) and δ_i (∂loss/∂output).
//                Several facts: their rows are concatenated.
//   2. drop      rows where all of x or all of δ are zero do not take part.
//   3. editor    h = g_K(normalise(concat(x, δ)); mode m) — the shared low-rank editor of W_k's shape K, with
//                W_k's FiLM scale/shift (WGSL kernel editor_mlp); x̃ = h[:, :in], δ̃ = h[:, in:]. On webgpu all
//                weights' editors run as one command encoder of our own WGSL (fast_editor.ts, runEditors).
//   4. update    W_k' = W_k + c_k · Σ_i x̃_iᵀ δ̃_i, c_k = sign · lr_scale · edit_lrs[k] (WGSL kernel rank_update);
//                an edit of more than one fact uses lr_scale_batch instead of lr_scale where the config has it (a
//                summed update of several facts is larger than one fact's; docs/formats.md).
//
// One wait per edit: the four steps only hand GPU buffers to each other, so edit() queues them back to back (every
// fact's capture, the editor, the update) and waits once, for the capture's loss, the editor's validation and the
// update's finite check together, before installing anything. The GPU runs one phase while JavaScript records the
// next. `syncPhases` waits after each phase instead (the bench's capture / editor / update split).
//
// Dropping rows (2) is done without reading the rows back to the CPU: the editor treats rows independently, so it
// can run on all of them, and the update multiplies δ̃ by a 0/1 keep mask. A kept row is multiplied by 1 and a
// dropped row contributes exact zeros to the sum, so ΔW is identical to the one computed from the kept rows alone.
import * as tf from '@tensorflow/tfjs';
import { disposeGradientRows, parseSafetensors, type FloatTensor, type GPT2, type PendingCapture } from '../model';
import { fetchModelFile, parseJsonFile, ProgressTracker, sourceName, type FetchOptions, type ModelSource } from '../model/fetch';
import {
  disposePackedEditorParams, editorMLP, packEditorParams, splitEditorOutput, type PackedEditorParams,
} from '../kernels/editor_mlp';
import { outerProductSum, rankUpdate } from '../kernels/rank_update';
import { fastEditorPhase, releaseFastEditorPlans } from './fast_editor';
import { fastUpdatePhase } from './fast_update';
import { assertFiniteWeights, disposeChanges, gpuSync, holdWeight, installWeight, nonFiniteWeightError, revertChanges } from './changes';
import {
  checkEditorAgainstModel, checkEditorTensors, EDITOR_CONFIG_FILE, EDITOR_WEIGHTS_FILE, parseMendEditorConfig,
  type MendEditorConfig,
} from './mend_files';
import type { EditResult, ModelEditor, TokenizedFact, WeightChange } from './types';

/** The x/δ rows of one edited weight for a set of facts, plus which rows take part (1) or are dropped (0). */
export interface CapturedRows {
  x: tf.Tensor2D;
  delta: tf.Tensor2D;
  /** [N, 1]: 1 where neither x nor δ is all zero */
  keep: tf.Tensor2D;
}

/** The editor's output for one weight: pseudo-activations and pseudo-deltas, dropped rows zeroed in δ̃. */
export interface EditorOutput {
  xTilde: tf.Tensor2D;
  deltaTilde: tf.Tensor2D;
}

/**
 * countKeptEarly: the kept-row counts (EditResult.stats.rowsKept) are read back alongside the edit's own wait
 * instead of after it (the bench's switch; an unsynced edit only).
 */
export const mendEditTuning = { countKeptEarly: true };

export interface MendEditOptions {
  /**
   * Wait for the GPU after each phase, so that the timings split the edit into capture, editor and update GPU time
   * (the bench's phase split). Default false: the phases are queued back to back and the GPU is waited for once, at
   * the end (a batch of 10 facts: still one wait), which is faster; the timings then say how long each phase took
   * to queue, and updateMs includes the wait for all of them.
   */
  syncPhases?: boolean;
}

/**
 * Folds a later pass's changes into an edit's: each weight's change now ends at the later pass's `after`. The later
 * pass's `before` is the buffer the earlier pass installed (its `after`), so it is disposed once here; the first
 * pass's `before`, the weights before the edit, stays what revert restores.
 */
export function chainChanges(changes: WeightChange[], later: WeightChange[]): void {
  for (const c2 of later) {
    const c = changes.find((c1) => c1.name === c2.name);
    if (!c) {
      changes.push(c2);
      continue;
    }
    // c.after and c2.before are two handles on the buffer the earlier pass installed (holdWeight's clone shares it);
    // the model now uses c2.after, so that buffer is only kept alive by these two handles: free both.
    c2.before.dispose();
    c.after.dispose();
    c.after = c2.after;
  }
}

/** ‖after − before‖_F of each change, by weight name: one read-back for all of them. */
export async function updateNorms(changes: readonly WeightChange[]): Promise<Map<string, number>> {
  const stacked = tf.tidy(() => tf.stack(changes.map((c) => tf.norm(tf.sub(c.after, c.before)))));
  const v = await stacked.data().finally(() => stacked.dispose());
  return new Map(changes.map((c, i) => [c.name, v[i]]));
}

/** Frees joined rows (captureRows / beginRows). */
export function disposeRows(rows: Map<string, CapturedRows>): void {
  for (const r of rows.values()) tf.dispose([r.x, r.delta, r.keep]);
}

/** Frees editor outputs (runEditors). */
export function disposeOutputs(outputs: Map<string, EditorOutput>): void {
  for (const o of outputs.values()) tf.dispose([o.xTilde, o.deltaTilde]);
}

export class MendEditor implements ModelEditor {
  readonly method = 'mend' as const;
  readonly weightNames: readonly string[];
  private readonly packed = new Map<string, PackedEditorParams>();
  /** weight name → its shape editor key and FiLM mode */
  private readonly route = new Map<string, { key: string; mode: number; k: number }>();
  private readonly editLrs: Float32Array;
  private disposed = false;

  private constructor(readonly config: MendEditorConfig, tensors: Map<string, FloatTensor>) {
    this.weightNames = config.editedWeights;
    this.editLrs = tensors.get('edit_lrs')!.data;
    const t = (name: string) => tf.tensor(tensors.get(name)!.data, tensors.get(name)!.shape, 'float32');
    for (const e of config.editors) {
      const p = `editors.${e.key}.`;
      const raw = {
        xMean: t(p + 'x_mean') as tf.Tensor1D, xStd: t(p + 'x_std') as tf.Tensor1D,
        deltaMean: t(p + 'delta_mean') as tf.Tensor1D, deltaStd: t(p + 'delta_std') as tf.Tensor1D,
        eps: config.normEps,
        layers: [0, 1].map((l) => ({
          u: t(`${p}layers.${l}.U`) as tf.Tensor2D, v: t(`${p}layers.${l}.V`) as tf.Tensor2D,
          bias: t(`${p}layers.${l}.bias`) as tf.Tensor1D,
          modeScale: t(`${p}layers.${l}.mode_scale`) as tf.Tensor2D, modeShift: t(`${p}layers.${l}.mode_shift`) as tf.Tensor2D,
        })),
      };
      this.packed.set(e.key, packEditorParams(raw));
      tf.dispose([raw.xMean, raw.xStd, raw.deltaMean, raw.deltaStd, ...raw.layers.flatMap((l) => Object.values(l))]);
      e.weights.forEach((w, mode) => this.route.set(w, { key: e.key, mode, k: config.editedWeights.indexOf(w) }));
    }
  }

  /**
   * Builds an editor from the two artifact files, refusing (ModelFileError naming the file) anything that does not
   * fit `model`: other dimensions, unknown weights, wrong shapes, missing or misshapen editor tensors.
   */
  static fromFiles(configJson: unknown, weights: Uint8Array, model: GPT2): MendEditor {
    const config = parseMendEditorConfig(configJson);
    checkEditorAgainstModel(config, model.config, (name) => {
      try {
        return model.getWeight(name).shape;
      } catch {
        return null;
      }
    });
    const { tensors } = parseSafetensors(weights, EDITOR_WEIGHTS_FILE);
    checkEditorTensors(config, tensors);
    return new MendEditor(config, tensors);
  }

  /** Loads editor_config.json + editor.safetensors from the model's folder / URL / Hub repo. */
  static async load(source: ModelSource, model: GPT2, opts: FetchOptions = {}): Promise<MendEditor> {
    const tracker = new ProgressTracker(sourceName(source), opts.onProgress);
    const configBytes = await fetchModelFile(source, EDITOR_CONFIG_FILE, tracker, opts);
    const configJson = parseJsonFile(configBytes, EDITOR_CONFIG_FILE);
    parseMendEditorConfig(configJson); // refuse a bad config before downloading the (larger) weights
    const weights = await fetchModelFile(source, EDITOR_WEIGHTS_FILE, tracker, opts);
    return MendEditor.fromFiles(configJson, weights, model);
  }

  /** The test-time step multiplier for an edit of `facts` facts: lr_scale for one, lr_scale_batch for more. */
  lrScaleFor(facts: number): number {
    if (!Number.isInteger(facts) || facts < 1) throw new Error(`an edit holds at least one fact, got ${facts}`);
    return facts > 1 ? this.config.lrScaleBatch : this.config.lrScale;
  }

  /** c_k = sign · lr_scale · edit_lrs[k] for an edited weight, in an edit of `facts` facts (lr_scale_batch if > 1). */
  coefficient(name: string, facts = 1): number {
    return this.coefficientAt(name, this.lrScaleFor(facts));
  }

  /** c_k at an explicit test-time multiplier (a retry pass runs at batch_retry.lr_scale; a guarded pass 1 at the
   * halved scale its EditResult.stats.lrScale records). */
  coefficientAt(name: string, lrScale: number): number {
    const r = this.routeOf(name);
    return this.config.sign * lrScale * this.editLrs[r.k];
  }

  private routeOf(name: string) {
    const r = this.route.get(name);
    if (!r) throw new Error(`MEND editor does not edit "${name}"`);
    return r;
  }

  /** Step 1–2: rows of every edited weight for all facts (concatenated in fact order). The caller owns them. */
  async captureRows(model: GPT2, facts: TokenizedFact[]): Promise<{ rows: Map<string, CapturedRows>; loss: number }> {
    const { rows, loss } = this.beginRows(model, facts);
    try {
      return { rows, loss: await loss };
    } catch (e) {
      disposeRows(rows);
      throw e;
    }
  }

  /**
   * captureRows without waiting: every fact's capture is queued (GPT2.beginGradientRows) and the rows joined per
   * weight when this returns; the summed loss is still on its way back. The caller owns the rows whatever the loss
   * does (it rejects if the GPU refused a capture or a loss is not finite; the rows are garbage then).
   */
  beginRows(model: GPT2, facts: TokenizedFact[]): { rows: Map<string, CapturedRows>; loss: Promise<number> } {
    this.assertAlive();
    if (facts.length === 0) throw new Error('no facts to edit');
    const perFact: PendingCapture[] = [];
    try {
      for (const f of facts) {
        // With the keep masks: on webgpu they come from the capture's own pass, not from tfjs ops afterwards.
        perFact.push(model.beginGradientRows(f.promptIds, f.targetIds, [...this.weightNames], { keepMask: true }));
      }
      const rows = new Map<string, CapturedRows>();
      for (const name of this.weightNames) {
        rows.set(name, tf.tidy(() => {
          const joined = (k: 'x' | 'delta' | 'keep') => (perFact.length === 1 ? perFact[0].rows[name][k]!.clone() : tf.concat(perFact.map((r) => r.rows[name][k]!))) as tf.Tensor2D;
          return { x: joined('x'), delta: joined('delta'), keep: joined('keep') };
        }));
      }
      // Σ over facts of each fact's mean NLL: the loss whose gradient the rows are.
      const loss = Promise.all(perFact.map((p) => p.loss)).then((l) => l.reduce((a, b) => a + b, 0));
      loss.catch(() => {}); // handled by whoever awaits it; never an unhandled rejection if an earlier step throws
      return { rows, loss };
    } catch (e) {
      for (const p of perFact) p.loss.catch(() => {}); // moot now: this call fails anyway
      throw e;
    } finally {
      for (const p of perFact) disposeGradientRows(p.rows);
    }
  }

  /** Step 3 for one weight: the editor network over its rows (kernel a). The caller owns the result. */
  runEditor(name: string, rows: CapturedRows): EditorOutput {
    this.assertAlive();
    const { key, mode } = this.routeOf(name);
    const p = this.packed.get(key)!;
    const h = editorMLP(rows.x, rows.delta, p, mode);
    const [xTilde, deltaRaw] = splitEditorOutput(h, p.xDim);
    const deltaTilde = tf.mul(deltaRaw, rows.keep) as tf.Tensor2D;
    tf.dispose([h, deltaRaw]);
    return { xTilde, deltaTilde };
  }

  /**
   * Step 3 for every edited weight into `outputs` (which the caller disposes): on WebGPU all of them as one command
   * encoder of our own WGSL (fast_editor.ts: the weights of one shape stacked, 2 dispatches per weight + 7 per
   * editor, no tfjs per-op overhead); elsewhere, or with fastEditor.enabled = false, runEditor per weight (the tfjs
   * path). The returned promise rejects if WebGPU rejected the fast path's work (its outputs are then wrong);
   * editFromRows awaits it before installing anything.
   */
  runEditors(rows: Map<string, CapturedRows>, outputs: Map<string, EditorOutput>): Promise<void> {
    this.assertAlive();
    const items = this.weightNames.map((name) => {
      const r = rows.get(name);
      if (!r) throw new Error(`no captured rows for "${name}"`);
      const { key, mode } = this.routeOf(name);
      return { ...r, params: this.packed.get(key)!, mode };
    });
    const fast = fastEditorPhase(items);
    this.weightNames.forEach((name, i) => outputs.set(name, fast ? fast.outputs[i] : this.runEditor(name, rows.get(name)!)));
    return fast ? fast.validated : Promise.resolve();
  }

  /** ΔW = Σ_i x̃_iᵀ δ̃_i ([in, out]) for inspection; the edit itself never materialises it. */
  deltaW(out: EditorOutput): tf.Tensor2D {
    return outerProductSum(out.xTilde, out.deltaTilde, 1);
  }

  /**
   * Applies one MEND edit for all `facts` at once (a batch edit is one summed update) and installs the new weights
   * in the model. The result holds the previous buffers for a bit-exact revert. By default the capture, editor and
   * update are queued back to back and the GPU is waited for once, at the end (see MendEditOptions.syncPhases).
   * The editor config's policies run around that pass: first_pass_guard (firstPass) and batch_retry (below).
   */
  async edit(model: GPT2, facts: TokenizedFact[], opts: MendEditOptions = {}): Promise<EditResult> {
    const first = await this.firstPass(model, facts, opts);
    first.stats.facts = facts.length;
    first.stats.passes = 1;
    const retry = this.config.batchRetry;
    if (!retry || retry.maxPasses < 2 || facts.length < retry.minFacts) return first;
    // Retry passes (editor_config.json batch_retry): a summed update of several facts can leave some of them short
    // of their target, and now and then one fact's update does too (min_facts 1); ask the editor again for those,
    // with rows captured on the model as edited so far. Each pass installs its weights; the edit's changes run from
    // the first pass's "before" to the last pass's "after".
    try {
      let retried = 0;
      // Trust region (batch_retry.trust_region): the editor's step does not shrink with the loss left to remove, and
      // it never saw gradients of an edited model in training; a retry that moves any weight further than pass 1 did
      // is refused (one such pass took a test batch from perplexity 2.8 to ~6,700; docs/training.md).
      // Prose guard (batch_retry.prose_guard): the norm says how far a weight moved, not whether the move hurts; a
      // retry that raises held-out prose perplexity past the slack is refused as well.
      // Both baselines are read only once a retry is about to run: an edit whose facts all took in pass 1 pays nothing.
      const guard = retry.proseGuard;
      let firstNorms: Map<string, number> | null = null;
      let guardNll: number | null = null;
      while (first.stats.passes < retry.maxPasses) {
        const missing: TokenizedFact[] = [];
        for (const f of facts) if (!(await model.targetIsArgmax(f.promptIds, f.targetIds))) missing.push(f);
        if (missing.length === 0) break;
        if (retry.trustRegion) firstNorms ??= await updateNorms(first.changes);
        if (guard) guardNll ??= await model.meanNll(guard.proseIds);
        const next = await this.onePass(model, missing, retry.lrScale, opts);
        const refuse = async (): Promise<string | null> => {
          if (firstNorms) {
            const norms = await updateNorms(next.changes);
            if (next.changes.some((c) => !(norms.get(c.name)! <= firstNorms!.get(c.name)!))) return 'retriesRefused';
          }
          if (guard) {
            const nll = await model.meanNll(guard.proseIds);
            if (!(nll - guardNll! <= Math.log1p(guard.maxIncrease))) return 'retriesRefusedProse';
            guardNll = nll;
          }
          return null;
        };
        const refused = await refuse().catch((e) => {
          revertChanges(model, next.changes);
          disposeChanges(next.changes);
          throw e;
        });
        if (refused) {
          revertChanges(model, next.changes); // back to the weights the earlier passes installed
          disposeChanges(next.changes);
          first.stats[refused] = 1;
          break;
        }
        chainChanges(first.changes, next.changes);
        for (const k of ['captureMs', 'editorMs', 'updateMs', 'totalMs'] as const) first.timings[k] += next.timings[k];
        first.stats.passes += 1;
        retried += missing.length;
      }
      first.stats.factsRetried = retried;
      return first;
    } catch (e) {
      revertChanges(model, first.changes); // all or nothing, as a one-pass edit
      disposeChanges(first.changes);
      throw e;
    }
  }

  /**
   * Pass 1 at lr_scale (lr_scale_batch for several facts), installed. A single-fact edit under first_pass_guard is
   * checked on the guard's prose and, while it raises the perplexity past max_increase, undone and redone at half the
   * step, at most max_halvings times: the rare edit that wrecks the model does it in pass 1, with a step the editor
   * would have been better off halving (docs/training.md "A guard on pass 1"). The rows are captured again for each
   * redo; the model is back to exactly its unedited weights then, so they are the same rows. stats.lrScale: the
   * multiplier pass 1 was kept at; stats.stepHalvings: how often it was halved (guarded edits only). What the guard
   * measured, for people to see why it acted: stats.guardRiseFull, the relative perplexity rise on its prose at the
   * editor's own step; stats.guardRiseKept, the same at the step kept (absent when the last halving allowed was kept
   * unchecked); stats.guardLimit, its max_increase.
   */
  private async firstPass(model: GPT2, facts: TokenizedFact[], opts: MendEditOptions): Promise<EditResult> {
    let lrScale = this.lrScaleFor(facts.length);
    const guard = facts.length === 1 ? this.config.firstPassGuard : null;
    if (!guard) {
      const pass = await this.onePass(model, facts, lrScale, opts);
      pass.stats.lrScale = lrScale;
      return pass;
    }
    const t0 = performance.now();
    const baseNll = await model.meanNll(guard.proseIds);
    let pass: EditResult | null = await this.onePass(model, facts, lrScale, opts); // installed, or null
    const spent = { captureMs: 0, editorMs: 0, updateMs: 0 }; // by passes the guard undid
    let halvings = 0;
    const rises: number[] = []; // exp(ΔNLL) − 1 at each step checked: the editor's own, then each halving
    try {
      while (halvings < guard.maxHalvings) {
        const nll = await model.meanNll(guard.proseIds);
        rises.push(Math.expm1(nll - baseNll));
        if (nll - baseNll <= Math.log1p(guard.maxIncrease)) break; // (a NaN perplexity is not within the limit)
        const undone: EditResult = pass;
        pass = null; // nothing is installed until the redo succeeds (onePass is all or nothing)
        revertChanges(model, undone.changes);
        disposeChanges(undone.changes);
        for (const k of ['captureMs', 'editorMs', 'updateMs'] as const) spent[k] += undone.timings[k];
        lrScale /= 2;
        halvings += 1;
        pass = await this.onePass(model, facts, lrScale, opts);
      }
    } catch (e) {
      if (pass) {
        revertChanges(model, pass.changes);
        disposeChanges(pass.changes);
      }
      throw e;
    }
    for (const k of ['captureMs', 'editorMs', 'updateMs'] as const) pass.timings[k] += spent[k];
    pass.timings.totalMs = performance.now() - t0; // every pass and the guard's perplexity checks
    pass.stats.lrScale = lrScale;
    pass.stats.stepHalvings = halvings;
    pass.stats.guardLimit = guard.maxIncrease;
    if (rises.length) pass.stats.guardRiseFull = rises[0];
    if (rises.length > halvings) pass.stats.guardRiseKept = rises[halvings];
    return pass;
  }

  /** One MEND pass (capture, editor, update, install) for `facts` at test-time multiplier `lrScale`. */
  private async onePass(model: GPT2, facts: TokenizedFact[], lrScale: number, opts: MendEditOptions): Promise<EditResult> {
    const syncPhases = opts.syncPhases === true;
    const t0 = performance.now();
    const { rows, loss } = this.beginRows(model, facts);
    try {
      if (syncPhases) await loss;
      const captureMs = performance.now() - t0;
      const result = await this.applyRows(model, rows, lrScale, syncPhases ? null : loss, syncPhases);
      result.timings.captureMs = captureMs;
      result.timings.totalMs += captureMs;
      result.stats.lossBefore = await loss; // settled by now: applyRows waited for it before installing anything
      return result;
    } finally {
      disposeRows(rows);
    }
  }

  /**
   * Steps 3–4 on rows already captured (the caller keeps ownership of `rows`): editor, fused update, install.
   * `facts`: how many facts the rows come from (it picks lr_scale or lr_scale_batch). All or nothing: if anything
   * fails, the model is left exactly as it was.
   */
  editFromRows(model: GPT2, rows: Map<string, CapturedRows>, facts = 1, opts: MendEditOptions = {}): Promise<EditResult> {
    return this.applyRows(model, rows, this.lrScaleFor(facts), null, opts.syncPhases === true);
  }

  /**
   * editFromRows at test-time multiplier `lrScale`, plus `captured`: the queued capture's loss when the rows are not
   * known to be good yet (a pipelined edit); it is awaited with the update's own checks, before anything is installed.
   */
  private async applyRows(model: GPT2, rows: Map<string, CapturedRows>, lrScale: number, captured: Promise<number> | null, syncPhases: boolean): Promise<EditResult> {
    const t1 = performance.now();
    const outputs = new Map<string, EditorOutput>();
    const changes: WeightChange[] = [];
    let kept: Promise<number[]> | null = null;
    try {
      const validated = this.runEditors(rows, outputs); // (it also refuses rows that miss an edited weight)
      validated.catch(() => {}); // awaited below; never unhandled if the update phase throws first
      // The kept-row counts are only for display, but reading them is a GPU round trip (1.2–1.9 ms on an H100
      // through Dawn). Queued here, with the editor, the read rides along with the edit's own wait instead of
      // following it.
      if (mendEditTuning.countKeptEarly && !syncPhases) {
        kept = this.countKeptRows(rows);
        kept.catch(() => {}); // awaited after the install; never unhandled if the edit fails first
      }
      if (syncPhases) {
        await gpuSync(outputs.get(this.weightNames[this.weightNames.length - 1])!.deltaTilde);
        await validated;
      }
      const t2 = performance.now();

      // On WebGPU every weight's update and finite check as one command encoder and one read-back (fast_update.ts);
      // elsewhere, or with fastUpdate.enabled = false, rankUpdate per weight and assertFiniteWeights.
      const items = this.weightNames.map((name) => {
        const o = outputs.get(name)!;
        return { name, w: holdWeight(model, name), xTilde: o.xTilde, deltaTilde: o.deltaTilde, c: this.coefficientAt(name, lrScale) };
      });
      const fast = fastUpdatePhase(items);
      items.forEach((it, i) => changes.push({ name: it.name, before: it.w, after: fast ? fast.after[i] : rankUpdate(it.w, it.xTilde, it.deltaTilde, it.c) }));
      // Nothing is installed before the capture and the editor are known to have run and every new value is known
      // to be finite (the catch below disposes them). Unsynced, these are the edit's only waits, side by side.
      if (fast) {
        const [bad] = await Promise.all([fast.firstNonFinite, validated, captured]);
        if (bad >= 0) throw nonFiniteWeightError(items[bad].name);
      } else {
        await Promise.all([validated, captured]);
        await assertFiniteWeights(changes.map((c) => ({ name: c.name, value: c.after })));
      }
      for (const c of changes) installWeight(model, c.name, c.after);
      const t3 = performance.now();

      // Synced phases (or countKeptEarly off): read after the timed phases, so that the split stays the GPU's.
      kept ??= this.countKeptRows(rows);
      const keptPerWeight = await kept;
      return {
        method: 'mend', changes,
        timings: { captureMs: 0, editorMs: t2 - t1, updateMs: t3 - t2, totalMs: t3 - t1, phasesSynced: syncPhases },
        stats: {
          rows: rows.get(this.weightNames[0])!.x.shape[0],
          /** the fewest rows any edited weight kept (rows with all-zero x or δ are dropped per weight) */
          rowsKept: Math.min(...keptPerWeight),
        },
      };
    } catch (e) {
      // A half-applied edit would leave the model in a state no history entry describes.
      revertChanges(model, changes);
      disposeChanges(changes);
      throw e;
    } finally {
      disposeOutputs(outputs);
    }
  }

  /** How many rows each edited weight keeps, in weightNames order: one read-back for all of them (masks side by side). */
  private async countKeptRows(rows: Map<string, CapturedRows>): Promise<number[]> {
    const masks = tf.tidy(() => tf.concat(this.weightNames.map((n) => tf.reshape(rows.get(n)!.keep, [-1]))));
    const flat = await masks.data().finally(() => masks.dispose());
    const perWeight = flat.length / this.weightNames.length;
    return this.weightNames.map((_, k) => {
      let n = 0;
      for (let i = k * perWeight; i < (k + 1) * perWeight; i++) n += Number(flat[i]);
      return n;
    });
  }

  private assertAlive() {
    if (this.disposed) throw new Error('this MEND editor was disposed');
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    releaseFastEditorPlans(this.packed.values()); // its kept scratch buffers
    for (const p of this.packed.values()) disposePackedEditorParams(p);
    this.packed.clear();
  }
}
