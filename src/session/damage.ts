// Did an edit break the model? MEND changes a few weight matrices by a rank-N update; a bad editor, a huge step or
// an unlucky input can leave the edited fact right and everything else wrong. The cheap global symptom is the
// model's perplexity on ordinary text it was not edited on: after a local edit it barely moves, after a
// destructive one it jumps. The session measures it on held-out prose before and after every edit and flags (or,
// if asked, refuses) edits whose perplexity grows by more than a set factor. The prose should be in the model's own
// domain: the shipped facts model, which knows only its corpus, has perplexity ~3 on its held-out paragraphs but
// ~265,000 on the generic English paragraph below (PyTorch agrees), where a few wildly surprised tokens dominate.
import type { GPT2 } from '../model';
import type { TextTokenizer } from './facts';

/**
 * Plain encyclopaedic English unrelated to any edit a user would make (and not a fact the shipped models are
 * trained to recall), so that an edit should leave its perplexity almost unchanged.
 */
export const DEFAULT_HELDOUT_PROSE =
  'The river rises in the hills to the north and flows slowly through farmland before it reaches the sea. ' +
  'In the spring the water is high, and the old bridge near the market is often closed for a few days. ' +
  'Most people in the town work in the shops, the school or the small harbour.';

/**
 * An edit is flagged when the held-out perplexity after it exceeds this factor times the perplexity before it.
 * A good edit moves it by a few percent; 1.5 leaves room for several benign edits in a row while still catching an
 * edit that damaged the model (those multiply it by large factors or make it non-finite).
 */
export const DEFAULT_MAX_PERPLEXITY_RATIO = 1.5;

export interface DamageCheckOptions {
  /**
   * held-out text whose perplexity is watched (default DEFAULT_HELDOUT_PROSE); several paragraphs are each cut to the
   * model's context and pooled (one perplexity over all their scored tokens). A model that ships its own held-out
   * prose (facts.json `heldout_prose`, see damageProseFromFacts) is watched on that: text in the model's own domain
   * that it never trained on, where a good edit moves perplexity by a few percent at most.
   */
  text?: string | readonly string[];
  /** flag when perplexity_after / perplexity_before exceeds this (default DEFAULT_MAX_PERPLEXITY_RATIO) */
  maxPerplexityRatio?: number;
  /** refuse (undo at once, EditRefusedError) instead of only flagging (default false) */
  refuse?: boolean;
}

export interface DamageReport {
  perplexityBefore: number;
  perplexityAfter: number;
  /** after / before; NaN or Infinity when the model produced non-finite values */
  ratio: number;
  /** ratio above the threshold, or not finite */
  flagged: boolean;
  threshold: number;
  /**
   * Perplexity of the original, unedited weights, and after / original: what the whole history so far has done. Each
   * edit is checked against the weights it started from, and small rises compound: on the shipped model 10 MEND edits
   * one after another, each within its own checks, took the benchmark's prose +33 %, 20 edits ×52
   * (docs/eval.md "Sequential edits").
   */
  perplexityOriginal: number;
  ratioOriginal: number;
  /** ratioOriginal above the threshold, or not finite */
  flaggedOriginal: boolean;
}

/**
 * Token ids of each held-out paragraph, cut to the model's context (the first token conditions, the rest are
 * scored). Paragraphs of fewer than two tokens score nothing and are dropped.
 */
export function heldOutIds(text: string | readonly string[], tokenizer: TextTokenizer, contextLength: number): number[][] {
  const paragraphs = typeof text === 'string' ? [text] : text;
  const ids = paragraphs.map((p) => tokenizer.encode(p).slice(0, contextLength)).filter((p) => p.length >= 2);
  if (ids.length === 0) throw new Error('the held-out text for the damage check needs at least two tokens');
  return ids;
}

/** exp(mean NLL) over the scored tokens of every paragraph (ids[1:] given the preceding tokens), under the current weights. */
export async function perplexity(model: GPT2, paragraphs: number[] | number[][]): Promise<number> {
  const list = typeof paragraphs[0] === 'number' ? [paragraphs as number[]] : (paragraphs as number[][]);
  return Math.exp(await model.meanNll(list));
}

/**
 * The held-out prose a model folder ships for the damage check (facts.json `heldout_prose`: paragraphs from the
 * model's own corpus that no training, no evaluation and none of the editor's perplexity guards read, so that the
 * check is an independent look at what an edit did), or null when it has none or the field is unusable
 * (facts.json is informative: a bad field falls back to the generic paragraph rather than blocking editing).
 */
export function damageProseFromFacts(facts: unknown): string[] | null {
  const prose = (facts as { heldout_prose?: unknown } | null)?.heldout_prose;
  if (!Array.isArray(prose)) return null;
  const paragraphs = prose.filter((p): p is string => typeof p === 'string' && p.trim() !== '');
  return paragraphs.length && paragraphs.length === prose.length ? paragraphs : null;
}

/** `original`: the unedited weights' perplexity (the same as `before` for the first edit). */
export function damageReport(before: number, after: number, threshold: number, original = before): DamageReport {
  const over = (r: number) => !(Number.isFinite(r) && r <= threshold);
  const ratio = after / before;
  const ratioOriginal = after / original;
  return {
    perplexityBefore: before, perplexityAfter: after, ratio, flagged: over(ratio), threshold,
    perplexityOriginal: original, ratioOriginal, flaggedOriginal: over(ratioOriginal),
  };
}
