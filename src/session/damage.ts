// Did an edit break the model? MEND changes a few weight matrices by a rank-N update; a bad editor, a huge step or
// an unlucky input can leave the edited fact right and everything else wrong. The cheap global symptom is the
// model's perplexity on ordinary text it was not edited on: after a local edit it barely moves, after a
// destructive one it jumps. The session measures it on a fixed held-out prose snippet before and after every edit
// and flags (or, if asked, refuses) edits whose perplexity grows by more than a set factor.
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
  /** held-out text whose perplexity is watched (default DEFAULT_HELDOUT_PROSE) */
  text?: string;
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
}

/** Token ids of the held-out text, cut to the model's context (the first token conditions, the rest are scored). */
export function heldOutIds(text: string, tokenizer: TextTokenizer, contextLength: number): number[] {
  const ids = tokenizer.encode(text).slice(0, contextLength);
  if (ids.length < 2) throw new Error('the held-out text for the damage check needs at least two tokens');
  return ids;
}

/** exp(mean NLL) of ids[1:] given the preceding tokens, under the model's current weights. */
export async function perplexity(model: GPT2, ids: number[]): Promise<number> {
  const { logprob } = await model.scoreContinuation(ids.slice(0, 1), ids.slice(1));
  return Math.exp(-logprob / (ids.length - 1));
}

export function damageReport(before: number, after: number, threshold: number): DamageReport {
  const ratio = after / before;
  return { perplexityBefore: before, perplexityAfter: after, ratio, flagged: !(Number.isFinite(ratio) && ratio <= threshold), threshold };
}
