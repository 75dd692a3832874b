// The tokenizer, built by @huggingface/transformers from tokenizer.json + tokenizer_config.json objects
// we already downloaded (so it never touches the network or its own cache). Same class choice as
// AutoTokenizer: tokenizer_config.tokenizer_class without the "Fast" suffix, e.g. GPT2Tokenizer.

import * as transformers from '@huggingface/transformers';
import { PreTrainedTokenizer } from '@huggingface/transformers';
import { ModelFileError } from './errors';

/** The tokenizers-library model types (tokenizer.json "model.type"). */
const KNOWN_MODEL_TYPES = new Set(['BPE', 'WordPiece', 'Unigram', 'WordLevel']);

export class Tokenizer {
  private constructor(private readonly tok: PreTrainedTokenizer) {}

  /** Builds the tokenizer from the two parsed JSON files. */
  static fromObjects(tokenizerJson: unknown, tokenizerConfig: unknown): Tokenizer {
    if (!tokenizerJson || typeof tokenizerJson !== 'object' || Array.isArray(tokenizerJson) || !('model' in tokenizerJson)) {
      throw new ModelFileError('tokenizer.json', 'has no "model" section - not a tokenizers JSON file');
    }
    const model = (tokenizerJson as { model: unknown }).model;
    if (!model || typeof model !== 'object' || Array.isArray(model)) {
      throw new ModelFileError('tokenizer.json', '"model" is not an object');
    }
    // transformers.js quietly builds *some* tokenizer for a model type it does not know; refuse instead.
    const type = (model as { type?: unknown }).type;
    if (type !== undefined && !(typeof type === 'string' && KNOWN_MODEL_TYPES.has(type))) {
      throw new ModelFileError('tokenizer.json', `"model.type" ${JSON.stringify(type)} is not a tokenizers model type (${[...KNOWN_MODEL_TYPES].join(', ')})`);
    }
    const vocab = (model as { vocab?: unknown }).vocab;
    if (vocab !== undefined && (!vocab || typeof vocab !== 'object')) {
      throw new ModelFileError('tokenizer.json', '"model.vocab" is not an object or list');
    }
    if (tokenizerConfig !== undefined && tokenizerConfig !== null && (typeof tokenizerConfig !== 'object' || Array.isArray(tokenizerConfig))) {
      throw new ModelFileError('tokenizer_config.json', 'is not a JSON object');
    }
    const config = (tokenizerConfig ?? {}) as { tokenizer_class?: string };
    const className = config.tokenizer_class?.replace(/Fast$/, '') ?? 'PreTrainedTokenizer';
    const candidate = (transformers as unknown as Record<string, unknown>)[className];
    const Cls = (typeof candidate === 'function' && (candidate === PreTrainedTokenizer || candidate.prototype instanceof PreTrainedTokenizer)
      ? candidate
      : PreTrainedTokenizer) as typeof PreTrainedTokenizer;
    try {
      return new Tokenizer(new Cls(tokenizerJson, config));
    } catch (e) {
      throw new ModelFileError('tokenizer.json', `cannot build the tokenizer (${(e as Error).message})`, { cause: e });
    }
  }

  /** Token ids of a text, without special tokens (formats.md: no BOS is added). */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false });
  }

  /** Text of a token-id sequence (special tokens kept, so an EOS is visible). */
  decode(ids: number[]): string {
    return this.tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** Display text of each token on its own (a byte-level token that splits a UTF-8 character shows as �). */
  tokenStrings(ids: number[]): string[] {
    return ids.map((id) => this.decode([id]));
  }

  /** Number of token ids the tokenizer knows (including added tokens). */
  get vocabSize(): number {
    return this.tok.get_vocab().size;
  }

  /** The end-of-text token id, if the tokenizer defines one. */
  get eosTokenId(): number | null {
    return this.tok.eos_token_id ?? null;
  }
}
