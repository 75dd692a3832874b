// An edit session on one loaded model: apply edits (single facts or batches, MEND or fine-tuning), undo/redo them,
// revert to the original weights, export/import the history, export the edited model.
//
// State is a stack of applied entries plus a stack of undone ones. Each entry keeps its WeightChanges: the buffer
// each weight had before the edit and the buffer installed by it (see editors/changes.ts). Entry k's "before" is
// entry k−1's "after" — the same GPU buffer, not a copy — so the history costs one buffer per edited weight per
// edit, and undo, redo and revert only re-point the model's variables: bit-exact and instant.
import * as tf from '@tensorflow/tfjs';
import type { FloatDtype, GPT2 } from '../model';
import { disposeChanges, EditRefusedError, reapplyChanges, revertChanges } from '../editors/changes';
import { FinetuneEditor } from '../editors/finetune';
import type { EditMethod, EditResult, EditTimings, Fact, ModelEditor, TokenizedFact } from '../editors/types';
import {
  damageReport, DEFAULT_HELDOUT_PROSE, DEFAULT_MAX_PERPLEXITY_RATIO, heldOutIds, perplexity,
  type DamageCheckOptions, type DamageReport,
} from './damage';
import { checkBatch, checkFactCount, EditInputError, tokenizeFact, type TextTokenizer } from './facts';
import {
  HISTORY_FORMAT, HISTORY_VERSION, HistoryFormatError, modelSignature, parseHistory, parseHistoryText,
  type HistoryEntryJSON, type HistoryJSON,
} from './history';

export interface HistoryEntry {
  id: number;
  method: EditMethod;
  facts: Array<Fact & TokenizedFact>;
  options: HistoryEntryJSON['options'];
  timings: EditTimings;
  stats: Record<string, number>;
  createdAt: string;
  /** held-out perplexity before/after this edit and whether it looks destructive (null when the check is off) */
  damage: DamageReport | null;
  /**
   * per fact: the model already gave the whole target (every target token the teacher-forced argmax) before the
   * edit. The edit is still applied (its gradient is small, so it changes little); front ends say so to the user.
   */
  alreadyPredicted: boolean[];
  /** owned by the session; do not dispose */
  readonly result: EditResult;
}

export interface SessionOptions {
  model: GPT2;
  tokenizer: TextTokenizer;
  /** the editing methods available; 'ft' can also be created on demand by importHistory */
  editors: Partial<Record<EditMethod, ModelEditor>>;
  /** held-out perplexity check after every edit (damage.ts); false turns it off */
  damageCheck?: DamageCheckOptions | false;
}

export class EditSession {
  readonly model: GPT2;
  private readonly tokenizer: TextTokenizer;
  private readonly editors: Partial<Record<EditMethod, ModelEditor>>;
  private readonly appliedStack: HistoryEntry[] = [];
  private readonly undoneStack: HistoryEntry[] = [];
  private nextId = 1;
  /** one operation at a time: an edit awaits the GPU, and a second one interleaved would see half-installed weights */
  private busy = false;
  private readonly damage: { ids: number[][]; threshold: number; refuse: boolean } | null;
  /** held-out perplexity of the original weights (id 0) and after each applied entry (its id), computed lazily */
  private readonly perplexityAt = new Map<number, number>();

  constructor(opts: SessionOptions) {
    this.model = opts.model;
    this.tokenizer = opts.tokenizer;
    this.editors = { ...opts.editors };
    const d = opts.damageCheck ?? {};
    if (d === false) {
      this.damage = null;
    } else {
      const threshold = d.maxPerplexityRatio ?? DEFAULT_MAX_PERPLEXITY_RATIO;
      if (!(threshold > 1) || !Number.isFinite(threshold)) throw new Error(`maxPerplexityRatio must be a finite number above 1, got ${threshold}`);
      const ids = heldOutIds(d.text ?? DEFAULT_HELDOUT_PROSE, this.tokenizer, this.model.config.nPositions);
      this.damage = { ids, threshold, refuse: d.refuse ?? false };
    }
  }

  /** Applied edits, oldest first. */
  get applied(): readonly HistoryEntry[] {
    return this.appliedStack;
  }

  /** Undone edits that redo() would re-apply, next first. */
  get undone(): readonly HistoryEntry[] {
    return [...this.undoneStack].reverse();
  }

  get canUndo(): boolean {
    return this.appliedStack.length > 0;
  }

  get canRedo(): boolean {
    return this.undoneStack.length > 0;
  }

  /**
   * Tokenises and validates facts (EditInputError on bad input) without touching the model. With several facts a
   * message names the one it is about ("fact 2: the target is empty").
   */
  tokenize(facts: Fact[]): Array<Fact & TokenizedFact> {
    if (facts.length === 0) throw new EditInputError('no facts to edit');
    checkFactCount(facts.length);
    const tokenized = facts.map((f, i) => {
      try {
        return { prompt: f.prompt, target: f.target, ...tokenizeFact(f, this.tokenizer, this.model.config.nPositions) };
      } catch (e) {
        throw facts.length > 1 && e instanceof EditInputError ? new EditInputError(`fact ${i + 1}: ${e.message}`) : e;
      }
    });
    checkBatch(tokenized);
    return tokenized;
  }

  private editorFor(method: EditMethod): ModelEditor {
    const e = this.editors[method];
    if (!e) throw new EditInputError(method === 'mend' ? 'no MEND editor is loaded for this model' : `method "${method}" is not available`);
    return e;
  }

  /**
   * Applies one edit made of one or several facts (a batch is a single summed update). Discards the redo stack,
   * as any new action does. Bad input throws EditInputError before anything changes.
   */
  async apply(facts: Fact | Fact[], method: EditMethod = 'mend'): Promise<HistoryEntry> {
    const list = Array.isArray(facts) ? facts : [facts];
    const tokenized = this.tokenize(list);
    const editor = this.editorFor(method);
    return this.exclusive(async () => {
      const already: boolean[] = [];
      for (const f of tokenized) already.push(await this.predictsTarget(f));
      return this.applyWith(editor, tokenized, already);
    });
  }

  /** Whether the current model already produces the whole target after the prompt (teacher-forced argmax). */
  private async predictsTarget(f: TokenizedFact): Promise<boolean> {
    const V = this.model.config.vocabSize;
    const logits = await this.model.logits([...f.promptIds, ...f.targetIds]);
    return f.targetIds.every((t, j) => {
      const row = logits.subarray((f.promptIds.length - 1 + j) * V, (f.promptIds.length + j) * V);
      let best = 0;
      for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
      return best === t;
    });
  }

  /**
   * What the applied history has done to held-out perplexity: the damage check's report with the original weights as
   * "before" and the weights now as "after" (flagged by the same rule as an edit). Null without a damage check, or if
   * the original weights were never measured (they are before the first edit).
   */
  async historyDamage(): Promise<DamageReport | null> {
    if (!this.damage) return null;
    const now = await this.currentPerplexity();
    const original = this.appliedStack.length === 0 ? now : this.perplexityAt.get(0);
    return original === undefined ? null : damageReport(original, now, this.damage.threshold);
  }

  /** Held-out perplexity of the weights now installed (cached per history position: undo/redo are bit-exact). */
  private async currentPerplexity(): Promise<number> {
    const key = this.appliedStack.length ? this.appliedStack[this.appliedStack.length - 1].id : 0;
    let p = this.perplexityAt.get(key);
    if (p === undefined) {
      p = await perplexity(this.model, this.damage!.ids);
      this.perplexityAt.set(key, p);
    }
    return p;
  }

  private async applyWith(editor: ModelEditor, facts: Array<Fact & TokenizedFact>, alreadyPredicted: boolean[] = []): Promise<HistoryEntry> {
    const before = this.damage ? await this.currentPerplexity() : NaN;
    const result = await editor.edit(this.model, facts);
    let damage: DamageReport | null = null;
    if (this.damage) {
      // the original weights' perplexity was measured before the first edit of the history (key 0)
      damage = damageReport(before, await perplexity(this.model, this.damage.ids), this.damage.threshold, this.perplexityAt.get(0) ?? before);
      if (damage.flagged && this.damage.refuse) {
        revertChanges(this.model, result.changes);
        disposeChanges(result.changes);
        throw new EditRefusedError(
          `the edit was refused: perplexity on held-out text went from ${damage.perplexityBefore.toPrecision(4)} to ` +
          `${damage.perplexityAfter.toPrecision(4)} (×${damage.ratio.toPrecision(3)}, limit ×${damage.threshold})`,
        );
      }
    }
    this.clearRedo();
    const options: HistoryEntryJSON['options'] = { weights: [...editor.weightNames] };
    if (editor instanceof FinetuneEditor) Object.assign(options, { steps: editor.steps, learning_rate: editor.learningRate });
    const entry: HistoryEntry = {
      id: this.nextId++, method: editor.method, facts, options, timings: result.timings, stats: result.stats,
      createdAt: new Date().toISOString(), damage, alreadyPredicted, result,
    };
    this.appliedStack.push(entry);
    if (damage) this.perplexityAt.set(entry.id, damage.perplexityAfter);
    return entry;
  }

  /** Reverts the most recent applied edit (bit-exact); it can be redone. Returns it, or null if none. */
  undo(): HistoryEntry | null {
    this.assertIdle();
    return this.undoOne();
  }

  /**
   * Runs `fn` on the weights from before the latest applied edit, then re-applies that edit (the very same buffers,
   * so bit-exact), also when `fn` fails: the knowledge scan compares the model before and after an edit without
   * keeping a second copy of the weights. The history is unchanged afterwards, redo stack included.
   */
  beforeLatest<T>(fn: () => Promise<T>): Promise<T> {
    return this.beforeEdits(1, fn);
  }

  /** beforeLatest for every applied edit: `fn` runs on the original weights (the history's knowledge scan). */
  beforeAll<T>(fn: () => Promise<T>): Promise<T> {
    return this.beforeEdits(this.appliedStack.length, fn);
  }

  private async beforeEdits<T>(n: number, fn: () => Promise<T>): Promise<T> {
    return this.exclusive(async () => {
      if (n < 1 || this.appliedStack.length < n) throw new EditInputError('no edit is applied');
      for (let i = 0; i < n; i++) this.undoOne();
      try {
        return await fn();
      } finally {
        for (let i = 0; i < n; i++) this.redoOne();
      }
    });
  }

  /** Re-applies the most recently undone edit (the very same weights). Returns it, or null if none. */
  redo(): HistoryEntry | null {
    this.assertIdle();
    return this.redoOne();
  }

  private redoOne(): HistoryEntry | null {
    const entry = this.undoneStack.pop();
    if (!entry) return null;
    reapplyChanges(this.model, entry.result.changes);
    this.appliedStack.push(entry);
    return entry;
  }

  /** Restores the original weights bit for bit. The edits stay in the history and can be redone. */
  revert(): void {
    this.assertIdle();
    while (this.undoOne());
  }

  /** Restores the original weights and forgets the whole history (frees every buffer it held). */
  reset(): void {
    this.assertIdle();
    this.resetAll();
  }

  private undoOne(): HistoryEntry | null {
    const entry = this.appliedStack.pop();
    if (!entry) return null;
    revertChanges(this.model, entry.result.changes);
    this.undoneStack.push(entry);
    return entry;
  }

  private resetAll(): void {
    while (this.undoOne());
    this.clearRedo();
  }

  private clearRedo(): void {
    for (const e of this.undoneStack) {
      disposeChanges(e.result.changes);
      this.perplexityAt.delete(e.id);
    }
    this.undoneStack.length = 0;
  }

  /** The history as JSON (see history.ts): requests and results, applied ones first, then the undone ones. */
  exportHistory(): HistoryJSON {
    const toJSON = (e: HistoryEntry): HistoryEntryJSON => ({
      method: e.method,
      facts: e.facts.map((f) => ({ prompt: f.prompt, target: f.target, prompt_ids: f.promptIds, target_ids: f.targetIds })),
      options: e.options,
      stats: e.stats,
      timings_ms: { capture: e.timings.captureMs, editor: e.timings.editorMs, update: e.timings.updateMs, total: e.timings.totalMs },
      created_at: e.createdAt,
    });
    return {
      format: HISTORY_FORMAT, version: HISTORY_VERSION, model: modelSignature(this.model.config),
      position: this.appliedStack.length,
      entries: [...this.appliedStack, ...this.undone].map(toJSON),
    };
  }

  /**
   * Replaces this session's history with an exported one: validates everything first (structure, model, tokenizer,
   * methods) and refuses with a HistoryFormatError before touching the model; then reverts to the original weights,
   * replays every entry in order and undoes the ones that were undone when it was exported.
   */
  async importHistory(json: unknown): Promise<void> {
    // A file's text or bytes are size-checked before parsing (history.ts HISTORY_LIMITS); objects are validated as is.
    const h = typeof json === 'string' || json instanceof Uint8Array ? parseHistoryText(json, this.model.config) : parseHistory(json, this.model.config);
    const plans = h.entries.map((e, i) => {
      const facts = e.facts.map((f, j) => {
        let tok: TokenizedFact;
        try {
          tok = tokenizeFact(f, this.tokenizer, this.model.config.nPositions);
        } catch (err) {
          if (err instanceof EditInputError) throw new HistoryFormatError(`entries[${i}].facts[${j}]: ${err.message}`);
          throw err;
        }
        const same = (a: number[], b: number[]) => a.length === b.length && a.every((v, k) => v === b[k]);
        if (!same(tok.promptIds, f.prompt_ids) || !same(tok.targetIds, f.target_ids)) {
          throw new HistoryFormatError(`entries[${i}].facts[${j}] tokenises differently here: the history was made with another tokenizer`);
        }
        return { prompt: f.prompt, target: f.target, ...tok };
      });
      try {
        checkBatch(facts);
      } catch (err) {
        if (err instanceof EditInputError) throw new HistoryFormatError(`entries[${i}]: ${err.message}`);
        throw err;
      }
      return { facts, editor: this.editorForEntry(e, i) };
    });
    await this.exclusive(async () => {
      // Keep the current history aside (its buffers intact) until the replay has succeeded: a replayed edit can still
      // be refused (NaN weights, the damage check), and then the session must be exactly as it was before the import.
      const wasApplied = this.appliedStack.length;
      while (this.undoOne());
      const saved = this.undoneStack.splice(0);
      try {
        for (const p of plans) await this.applyWith(p.editor, p.facts);
      } catch (e) {
        this.resetAll();
        this.undoneStack.push(...saved);
        for (let k = 0; k < wasApplied; k++) this.redoOne();
        throw e;
      }
      for (const old of saved) {
        disposeChanges(old.result.changes);
        this.perplexityAt.delete(old.id);
      }
      while (this.appliedStack.length > h.position) this.undoOne();
    });
  }

  private editorForEntry(e: HistoryEntryJSON, i: number): ModelEditor {
    const sameWeights = (ed: ModelEditor) => ed.weightNames.length === e.options.weights.length && ed.weightNames.every((w, k) => w === e.options.weights[k]);
    if (e.method === 'mend') {
      const ed = this.editors.mend;
      if (!ed) throw new HistoryFormatError(`entries[${i}] is a MEND edit but no MEND editor is loaded`);
      if (!sameWeights(ed)) throw new HistoryFormatError(`entries[${i}] was made by a MEND editor for other weights`);
      return ed;
    }
    const ft = this.editors.ft;
    if (ft instanceof FinetuneEditor && sameWeights(ft) && ft.steps === e.options.steps && ft.learningRate === e.options.learning_rate) return ft;
    for (const w of e.options.weights) {
      try {
        this.model.getWeight(w);
      } catch {
        throw new HistoryFormatError(`entries[${i}].options.weights names "${w}", which this model does not have`);
      }
    }
    return new FinetuneEditor({ weightNames: e.options.weights, steps: e.options.steps, learningRate: e.options.learning_rate });
  }

  /**
   * The model with its current (edited) weights as a .safetensors file under HF names (the engine's writer, so
   * loadModel reads it back with the folder's config.json and tokenizer). The applied facts go into the metadata.
   */
  async exportModel(dtype: FloatDtype = 'F32'): Promise<Uint8Array> {
    const edits = this.appliedStack.map((e) => ({ method: e.method, facts: e.facts.map((f) => ({ prompt: f.prompt, target: f.target })) }));
    return this.model.toSafetensors(dtype, { format: 'pt', mendlab_edits: JSON.stringify(edits) });
  }

  /** Frees the history's buffers after restoring the original weights. The model and editors stay usable. */
  dispose(): void {
    this.resetAll();
  }

  private assertIdle(): void {
    if (this.busy) throw new EditInputError('an edit is still running');
  }

  private async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.assertIdle();
    this.busy = true;
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }
}

/** Bytes of GPU memory in live tensors (webgpu), or null on backends without GPU accounting. */
export function gpuBytesInUse(): number | null {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
  return typeof m.numBytesInGPU === 'number' ? m.numBytesInGPU : null;
}
