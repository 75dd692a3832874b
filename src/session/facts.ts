// Turning user text into an edit request, refusing what cannot be a sensible edit before any tensor is touched.
import type { Fact, TokenizedFact } from '../editors/types';

/** Targets are short facts ("Canberra"), not paragraphs; longer ones are refused (issue 4). */
export const MAX_TARGET_TOKENS = 16;

/** A request the session refuses; the message is one line meant for the user. */
export class EditInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EditInputError';
  }
}

export interface TextTokenizer {
  encode(text: string): number[];
}

/** Tokenises prompt and target separately and concatenates (formats.md), checking lengths against the context. */
export function tokenizeFact(fact: Fact, tokenizer: TextTokenizer, contextLength: number): TokenizedFact {
  if (typeof fact.prompt !== 'string' || fact.prompt.trim() === '') throw new EditInputError('the prompt is empty');
  if (typeof fact.target !== 'string' || fact.target.trim() === '') throw new EditInputError('the target is empty');
  const promptIds = tokenizer.encode(fact.prompt);
  const targetIds = tokenizer.encode(fact.target);
  if (promptIds.length === 0) throw new EditInputError('the prompt has no tokens');
  if (targetIds.length === 0) throw new EditInputError('the target has no tokens');
  if (targetIds.length > MAX_TARGET_TOKENS) {
    throw new EditInputError(`the target is ${targetIds.length} tokens long; at most ${MAX_TARGET_TOKENS} are allowed`);
  }
  if (promptIds.length + targetIds.length > contextLength) {
    throw new EditInputError(
      `prompt + target are ${promptIds.length + targetIds.length} tokens, beyond the model's context of ${contextLength}`,
    );
  }
  return { promptIds, targetIds };
}
