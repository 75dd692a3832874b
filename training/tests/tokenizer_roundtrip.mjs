// Encode/decode strings with @huggingface/transformers from a tokenizer folder (no network), for
// training/tests/test_tokenizer.py. Usage: node tokenizer_roundtrip.mjs DIR '["text", ...]'
// Prints JSON [{text, ids, decoded}].
import fs from 'node:fs';
import path from 'node:path';
import { PreTrainedTokenizer } from '@huggingface/transformers';

const [dir, textsJson] = process.argv.slice(2);
const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer.json'), 'utf8'));
const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8'));
const tok = new PreTrainedTokenizer(tokenizerJSON, tokenizerConfig);
const out = JSON.parse(textsJson).map((text) => {
  const ids = tok.encode(text, { add_special_tokens: false });
  return { text, ids, decoded: tok.decode(ids, { skip_special_tokens: false }) };
});
process.stdout.write(JSON.stringify(out));
