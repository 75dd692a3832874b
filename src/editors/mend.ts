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
// Dropping rows (2) is done without reading the rows back to the CPU: the editor treats rows independently, so it
// can run on all of them, and the update multiplies δ̃ by a 0/1 keep mask. A kept row is multiplied by 1 and a
// dropped row contributes exact zeros to the sum, so ΔW is identical to the one computed from the kept rows alone.
import * as tf from '@tensorflow/tfjs';
import { parseSafetensors, type FloatTensor, type GPT2, type GradientRows } from '../model';
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
    const r = this.routeOf(name);
    return this.config.sign * this.lrScaleFor(facts) * this.editLrs[r.k];
  }

  private routeOf(name: string) {
    const r = this.route.get(name);
    if (!r) throw new Error(`MEND editor does not edit "${name}"`);
    return r;
  }

  /** Step 1–2: rows of every edited weight for all facts (concatenated in fact order). The caller owns them. */
  async captureRows(model: GPT2, facts: TokenizedFact[]): Promise<{ rows: Map<string, CapturedRows>; loss: number }> {
    this.assertAlive();
    if (facts.length === 0) throw new Error('no facts to edit');
    const perFact: Array<Record<string, GradientRows>> = [];
    let loss = 0;
    try {
      for (const f of facts) {
        // With the keep masks: on webgpu they come from the capture's own pass, not from tfjs ops afterwards.
        const r = await model.captureGradientRows(f.promptIds, f.targetIds, [...this.weightNames], { keepMask: true });
        perFact.push(r.rows);
        loss += r.loss; // Σ over facts of each fact's mean NLL: the loss whose gradient the rows are
      }
      const rows = new Map<string, CapturedRows>();
      for (const name of this.weightNames) {
        rows.set(name, tf.tidy(() => {
          const joined = (k: 'x' | 'delta' | 'keep') => (perFact.length === 1 ? perFact[0][name][k]!.clone() : tf.concat(perFact.map((r) => r[name][k]!))) as tf.Tensor2D;
          return { x: joined('x'), delta: joined('delta'), keep: joined('keep') };
        }));
      }
      return { rows, loss };
    } finally {
      for (const r of perFact) for (const v of Object.values(r)) tf.dispose([v.x, v.delta, v.keep!]);
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
   * in the model. The result holds the previous buffers for a bit-exact revert.
   */
  async edit(model: GPT2, facts: TokenizedFact[]): Promise<EditResult> {
    const t0 = performance.now();
    const { rows, loss } = await this.captureRows(model, facts);
    const captureMs = performance.now() - t0;
    try {
      const result = await this.editFromRows(model, rows, facts.length);
      result.timings.captureMs = captureMs;
      result.timings.totalMs += captureMs;
      result.stats.facts = facts.length;
      result.stats.lossBefore = loss;
      return result;
    } finally {
      for (const r of rows.values()) tf.dispose([r.x, r.delta, r.keep]);
    }
  }

  /**
   * Steps 3–4 on rows already captured (the caller keeps ownership of `rows`): editor, fused update, install.
   * `facts`: how many facts the rows come from (it picks lr_scale or lr_scale_batch). All or nothing: if anything
   * fails, the model is left exactly as it was.
   */
  async editFromRows(model: GPT2, rows: Map<string, CapturedRows>, facts = 1): Promise<EditResult> {
    this.lrScaleFor(facts); // refuses a bad count before anything runs
    const t1 = performance.now();
    const outputs = new Map<string, EditorOutput>();
    const changes: WeightChange[] = [];
    try {
      const validated = this.runEditors(rows, outputs);
      await gpuSync(outputs.get(this.weightNames[this.weightNames.length - 1])!.deltaTilde);
      await validated;
      const t2 = performance.now();

      // On WebGPU every weight's update and finite check as one command encoder and one read-back (fast_update.ts);
      // elsewhere, or with fastUpdate.enabled = false, rankUpdate per weight and assertFiniteWeights.
      const items = this.weightNames.map((name) => {
        const o = outputs.get(name)!;
        return { name, w: holdWeight(model, name), xTilde: o.xTilde, deltaTilde: o.deltaTilde, c: this.coefficient(name, facts) };
      });
      const fast = fastUpdatePhase(items);
      items.forEach((it, i) => changes.push({ name: it.name, before: it.w, after: fast ? fast.after[i] : rankUpdate(it.w, it.xTilde, it.deltaTilde, it.c) }));
      // Nothing is installed before every new value is known to be finite (the catch below disposes them).
      if (fast) {
        const bad = await fast.firstNonFinite;
        if (bad >= 0) throw nonFiniteWeightError(items[bad].name);
      } else {
        await assertFiniteWeights(changes.map((c) => ({ name: c.name, value: c.after })));
      }
      for (const c of changes) installWeight(model, c.name, c.after);
      const t3 = performance.now();

      // Read after the timed phases: the counts are for display and must not stall the pipeline above.
      // One read-back for all weights (each read is a GPU round trip): the masks side by side, counted here.
      const masks = tf.tidy(() => tf.concat(this.weightNames.map((n) => tf.reshape(rows.get(n)!.keep, [-1]))));
      const flat = await masks.data().finally(() => masks.dispose());
      const perWeight = flat.length / this.weightNames.length;
      const kept = this.weightNames.map((_, k) => {
        let n = 0;
        for (let i = k * perWeight; i < (k + 1) * perWeight; i++) n += Number(flat[i]);
        return n;
      });
      return {
        method: 'mend', changes,
        timings: { captureMs: 0, editorMs: t2 - t1, updateMs: t3 - t2, totalMs: t3 - t1 },
        stats: {
          rows: rows.get(this.weightNames[0])!.x.shape[0],
          /** the fewest rows any edited weight kept (rows with all-zero x or δ are dropped per weight) */
          rowsKept: Math.min(...kept),
        },
      };
    } catch (e) {
      // A half-applied edit would leave the model in a state no history entry describes.
      revertChanges(model, changes);
      disposeChanges(changes);
      throw e;
    } finally {
      for (const o of outputs.values()) tf.dispose([o.xTilde, o.deltaTilde]);
    }
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
