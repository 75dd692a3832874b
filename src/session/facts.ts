// Turning user text into an edit request, refusing what cannot be a sensible edit before any tensor is touched.
import type { Fact, TokenizedFact } from '../editors/types';

/** Targets are short facts ("Canberra"), not paragraphs; longer ones are refused (issue 4). */
export const MAX_TARGET_TOKENS = 16;

/**
 * Longest prompt or target text (characters) the session tokenises. Checked before tokenising, so a pasted
 * megabyte is refused at once instead of blocking the tokenizer; a context of 1024 tokens is at most ~1024·20 chars.
 */
export const MAX_TEXT_CHARS = 20_000;

/**
 * Most facts one edit may hold (a batch edit: one summed update). The shipped editor was trained on batches of up to
 * 10 (docs/training.md) and the batch benchmark is 10, so larger batches would be outside anything measured.
 */
export const MAX_FACTS_PER_EDIT = 10;

/**
 * C0/C1 control characters other than tab, newline and carriage return, and the Unicode replacement character.
 * They are invisible in the UI, tokenise into byte tokens the model never saw in training, and are almost always
 * a paste accident, so the edit would teach something the user cannot see. Emoji, right-to-left scripts and
 * other printable Unicode are fine: the byte-level BPE tokenises any text.
 */
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\uFFFD]/;

/** A UTF-16 surrogate half without its partner: not a character, and not encodable as UTF-8 for the tokenizer. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Refuses text that cannot be a sensible prompt/target, with a message naming the field and the problem. */
export function checkText(text: unknown, field: 'prompt' | 'target'): asserts text is string {
  if (typeof text !== 'string' || text.trim() === '') throw new EditInputError(`the ${field} is empty`);
  if (text.length > MAX_TEXT_CHARS) throw new EditInputError(`the ${field} is ${text.length} characters long; at most ${MAX_TEXT_CHARS} are allowed`);
  if (LONE_SURROGATE.test(text)) throw new EditInputError(`the ${field} is not valid Unicode (it has a lone surrogate half)`);
  const m = CONTROL.exec(text);
  if (m && m[0] === '\uFFFD') {
    throw new EditInputError(`the ${field} contains the replacement character U+FFFD at position ${m.index} (text damaged by a wrong encoding)`);
  }
  if (m) {
    const code = m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    throw new EditInputError(`the ${field} contains the invisible control character U+${code} at position ${m.index}`);
  }
}

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

/**
 * Refuses a batch that cannot be one sensible edit: more than MAX_FACTS_PER_EDIT facts, or two facts with the same
 * prompt (they would pull one prompt towards two targets, or count one fact twice, in a single summed update).
 */
export function checkBatch(facts: Array<{ prompt: string; promptIds: number[] }>): void {
  checkFactCount(facts.length);
  const seen = new Map<string, number>();
  facts.forEach((f, i) => {
    const key = f.promptIds.join(',');
    const first = seen.get(key);
    if (first !== undefined) {
      throw new EditInputError(`facts ${first + 1} and ${i + 1} have the same prompt (${JSON.stringify(f.prompt)}); one edit can give a prompt only one target`);
    }
    seen.set(key, i);
  });
}

/** Refuses more facts than one edit holds (checked before tokenising them). */
export function checkFactCount(n: number): void {
  if (n > MAX_FACTS_PER_EDIT) throw new EditInputError(`one edit holds at most ${MAX_FACTS_PER_EDIT} facts, got ${n}`);
}

/** Tokenises prompt and target separately and concatenates (formats.md), checking lengths against the context. */
export function tokenizeFact(fact: Fact, tokenizer: TextTokenizer, contextLength: number): TokenizedFact {
  checkText(fact?.prompt, 'prompt');
  checkText(fact?.target, 'target');
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
