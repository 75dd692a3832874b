import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ModelFileError, Tokenizer } from '../../src/model';
import { FIXTURES, golden } from './parity-suite';

const load = () =>
  Tokenizer.fromObjects(
    JSON.parse(readFileSync(`${FIXTURES}tiny-gpt2/tokenizer.json`, 'utf8')),
    JSON.parse(readFileSync(`${FIXTURES}tiny-gpt2/tokenizer_config.json`, 'utf8')),
  );

describe('tokenizer (transformers.js, offline from objects)', () => {
  it('encodes like the Python tokenizer, without adding special tokens', () => {
    const tok = load();
    for (const f of golden.forward) expect(tok.encode(f.prompt)).toEqual(f.input_ids);
    for (const s of golden.score) expect(tok.encode(s.target)).toEqual(s.target_ids);
    expect(tok.eosTokenId).toBe(299);
    expect(tok.vocabSize).toBe(300);
  });

  it('decodes back to the text, including non-ASCII, and the EOS token is visible', () => {
    const tok = load();
    const text = golden.forward[1].prompt;
    expect(tok.decode(tok.encode(text))).toBe(text);
    expect(tok.decode([...tok.encode('Hi'), 299])).toBe('Hi<|endoftext|>');
  });

  it('gives a display string per token that concatenates back to ASCII text', () => {
    const tok = load();
    const ids = tok.encode('The capital of France is');
    const parts = tok.tokenStrings(ids);
    expect(parts).toHaveLength(ids.length);
    expect(parts.join('')).toBe('The capital of France is');
    expect(parts.some((p) => p.startsWith(' '))).toBe(true);
  });

  it('rejects something that is not a tokenizer.json', () => {
    expect(() => Tokenizer.fromObjects({ hello: 1 }, {})).toThrow(ModelFileError);
    expect(() => Tokenizer.fromObjects({ hello: 1 }, {})).toThrow(/^tokenizer\.json: has no "model" section/);
  });
});
