// The fine-tuning baseline, behind the same interface as MEND so both can be compared on the same edit:
// Adam on the same weights MEND edits, a fixed number of steps, loss = mean NLL over the target tokens of each
// fact, summed over the facts of a batch (as training/mendlab/finetune.py does, so the browser's baseline is the
// one the evaluation reports), plain tfjs autodiff. No locality term: this is the paper's "FT" row, the naive
// baseline MEND is measured against (mend-spec.md §5.1).
//
// Adam updates a tf.Variable with `assign`, which points the variable at a fresh buffer each step and never
// writes into the old one. So holding the variable's buffer before the first step (holdWeight) keeps the original
// values untouched, and reverting is the same bit-exact swap as for MEND.
import * as tf from '@tensorflow/tfjs';
import type { GPT2 } from '../model';
import { assertFiniteWeights, gpuSync, holdWeight, installWeight } from './changes';
import type { EditResult, ModelEditor, TokenizedFact, WeightChange } from './types';

export interface FinetuneOptions {
  /** weights to train (canonical HF names); use the MEND editor's list to compare like with like */
  weightNames: readonly string[];
  /** Adam steps (default 20) */
  steps?: number;
  /** Adam learning rate (default 1e-3) */
  learningRate?: number;
}

/**
 * The steps and learning rate the training pipeline chose for its FT baseline (eval.json "ft_config", written
 * beside the model), so the app compares against the same baseline the evaluation reports. Null if absent/invalid.
 */
export function finetuneDefaultsFromEval(evalJson: unknown): { steps: number; learningRate: number } | null {
  const cfg = (evalJson as { ft_config?: { steps?: unknown; lr?: unknown } } | null)?.ft_config;
  if (!cfg || !Number.isInteger(cfg.steps) || (cfg.steps as number) < 1 || typeof cfg.lr !== 'number' || !(cfg.lr > 0)) return null;
  return { steps: cfg.steps as number, learningRate: cfg.lr };
}

export class FinetuneEditor implements ModelEditor {
  readonly method = 'ft' as const;
  readonly weightNames: readonly string[];
  readonly steps: number;
  readonly learningRate: number;

  constructor(opts: FinetuneOptions) {
    if (opts.weightNames.length === 0) throw new Error('fine-tuning needs at least one weight to train');
    this.weightNames = opts.weightNames.map((n) => (n.startsWith('transformer.') ? n : `transformer.${n}`));
    this.steps = opts.steps ?? 20;
    this.learningRate = opts.learningRate ?? 1e-3;
    if (!Number.isInteger(this.steps) || this.steps < 1) throw new Error(`fine-tuning steps must be a positive integer, got ${this.steps}`);
    if (!(this.learningRate > 0)) throw new Error(`fine-tuning learning rate must be positive, got ${this.learningRate}`);
  }

  /** Σ over facts of each fact's mean target NLL (a scalar; differentiable w.r.t. the model's variables). */
  private loss(model: GPT2, facts: TokenizedFact[]): tf.Scalar {
    return tf.tidy(() => tf.addN(facts.map((f) => model.targetLoss(f.promptIds, f.targetIds))) as tf.Scalar);
  }

  async edit(model: GPT2, facts: TokenizedFact[]): Promise<EditResult> {
    if (facts.length === 0) throw new Error('no facts to edit');
    const t0 = performance.now();
    const vars = this.weightNames.map((n) => model.getWeight(n));
    const befores = this.weightNames.map((n) => holdWeight(model, n));
    // PyTorch's Adam defaults (β 0.9/0.999, ε 1e-8), as the training pipeline's FT baseline; tfjs's own ε is 1e-7.
    const optimizer = tf.train.adam(this.learningRate, 0.9, 0.999, 1e-8);
    let lossBefore = NaN;
    let lossAfter = NaN;
    try {
      for (let step = 0; step < this.steps; step++) {
        const cost = optimizer.minimize(() => this.loss(model, facts), true, vars);
        if (step === 0) lossBefore = (await cost!.data())[0];
        cost!.dispose();
      }
      const final = this.loss(model, facts);
      lossAfter = (await final.data())[0];
      final.dispose();
      // Adam updates the variables in place, so a diverging run is undone here before anyone reads the model.
      await assertFiniteWeights(this.weightNames.map((name, k) => ({ name, value: vars[k] })));
    } catch (e) {
      this.weightNames.forEach((n, k) => installWeight(model, n, befores[k]));
      tf.dispose(befores);
      throw e;
    } finally {
      optimizer.dispose();
    }
    const changes: WeightChange[] = this.weightNames.map((name, k) => ({ name, before: befores[k], after: holdWeight(model, name) }));
    await gpuSync(changes[changes.length - 1].after);
    const t1 = performance.now();
    return {
      method: 'ft', changes,
      timings: { captureMs: 0, editorMs: t1 - t0, updateMs: 0, totalMs: t1 - t0, phasesSynced: true },
      stats: { facts: facts.length, steps: this.steps, lossBefore, lossAfter },
    };
  }

  dispose(): void {}
}
