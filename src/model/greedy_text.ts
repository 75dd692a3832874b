// Greedy text as the app shows it: the end-of-text token ends generation but is not part of the text. One helper for
// every place that reads what the model says (the worker's probes, the CLI's, the knowledge scan's "now" answers).
import type { GPT2 } from './gpt2';
import type { Tokenizer } from './tokenizer';

/** The greedy continuation of `promptIds`: its tokens (the end-of-text token that ended it included) and its text without it. */
export async function greedyContinuation(
  model: GPT2, tokenizer: Tokenizer, promptIds: number[], maxNewTokens: number, eosTokenId: number | null,
): Promise<{ ids: number[]; text: string }> {
  const ids = await model.generate(promptIds, { maxNewTokens, eosTokenId });
  const shown = ids.length && ids[ids.length - 1] === eosTokenId ? ids.slice(0, -1) : ids;
  return { ids, text: tokenizer.decode(shown) };
}
