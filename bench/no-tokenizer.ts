// Stands in for @huggingface/transformers in the packed (portable) bench: the bench feeds token ids and never
// builds a tokenizer, and the real package pulls in native modules (sharp, onnxruntime-node) that cannot load
// from a single-file bundle on a bare machine. bench/pack.sh aliases the package to this file.
export class PreTrainedTokenizer {
  constructor() {
    throw new Error('tokenizers are not part of the packed bench (bench/no-tokenizer.ts)');
  }
}
