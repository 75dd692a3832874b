import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  canonicalTensorName, checkTensorsAgainstConfig, expectedTensorShapes, ModelFileError, parseGPT2Config,
  type FloatTensor, type GPT2Config,
} from '../../src/model';
import { FIXTURES } from './parity-suite';

const fixtureConfig = () => JSON.parse(readFileSync(`${FIXTURES}tiny-gpt2/config.json`, 'utf8'));

/** Zero tensors of the right shapes for a config, optionally renamed or reshaped. */
function tensorsFor(c: GPT2Config, rename: (n: string) => string = (n) => n): Map<string, FloatTensor> {
  const m = new Map<string, FloatTensor>();
  for (const [name, shape] of expectedTensorShapes(c)) {
    m.set(rename(name), { dtype: 'F32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  }
  return m;
}

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFileError);
    return (e as Error).message;
  }
  throw new Error('expected an error');
}

describe('config.json', () => {
  it('reads the fixture config (n_inner null → 4·n_embd)', () => {
    const c = parseGPT2Config(fixtureConfig());
    expect(c).toMatchObject({ vocabSize: 300, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 4, nInner: 128, layerNormEpsilon: 1e-5, activation: 'gelu_new', eosTokenId: 299 });
  });

  it('refuses other architectures and unsupported GPT-2 variants with a clear message', () => {
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), model_type: 'llama', architectures: ['LlamaForCausalLM'] })))
      .toBe('config.json: unsupported architecture LlamaForCausalLM (only GPT-2 / GPT2LMHeadModel is supported)');
    expect(message(() => parseGPT2Config({ model_type: 'bert' }))).toMatch(/unsupported architecture model_type "bert"/);
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), architectures: ['GPT2ForSequenceClassification'] }))).toMatch(/unsupported architecture \["GPT2ForSequenceClassification"\]/);
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), scale_attn_by_inverse_layer_idx: true }))).toMatch(/scale_attn_by_inverse_layer_idx/);
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), activation_function: 'relu' }))).toMatch(/unsupported activation_function "relu"/);
    expect(message(() => parseGPT2Config([1]))).toBe('config.json: is not a JSON object');
  });

  it('validates the sizes', () => {
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), n_embd: 30 }))).toBe('config.json: n_embd 30 is not divisible by n_head 4');
    expect(message(() => parseGPT2Config({ ...fixtureConfig(), n_layer: 0 }))).toBe('config.json: "n_layer" must be a positive integer, got 0');
    const { vocab_size: _, ...noVocab } = fixtureConfig();
    expect(message(() => parseGPT2Config(noVocab))).toMatch(/"vocab_size" must be a positive integer, got undefined/);
  });
});

describe('tensors against the config', () => {
  const c = parseGPT2Config(fixtureConfig());
  const file = () => 'model.safetensors';

  it('accepts canonical names and Hub-style names without the transformer. prefix; ignores attn.bias, masked_bias and lm_head', () => {
    const plain = tensorsFor(c, (n) => n.replace(/^transformer\./, ''));
    plain.set('h.0.attn.bias', { dtype: 'F32', shape: [1, 1, 64, 64], data: new Float32Array(64 * 64) });
    plain.set('h.0.attn.masked_bias', { dtype: 'F32', shape: [], data: new Float32Array(1) });
    plain.set('lm_head.weight', { dtype: 'F32', shape: [300, 32], data: new Float32Array(300 * 32) });
    const out = checkTensorsAgainstConfig(plain, c, file);
    expect([...out.keys()].sort()).toEqual([...expectedTensorShapes(c).keys()].sort());
    expect(canonicalTensorName('wte.weight')).toBe('transformer.wte.weight');
    expect(canonicalTensorName('transformer.h.1.attn.masked_bias')).toBeNull();
  });

  it('names the file and tensor on a shape mismatch, a missing or an unexpected tensor', () => {
    const wrong = tensorsFor(c);
    wrong.set('transformer.h.1.mlp.c_proj.weight', { dtype: 'F32', shape: [32, 128], data: new Float32Array(32 * 128) });
    expect(message(() => checkTensorsAgainstConfig(wrong, c, file)))
      .toBe('model.safetensors: tensor "transformer.h.1.mlp.c_proj.weight" has shape [32, 128] but config.json implies [128, 32]');

    const missing = tensorsFor(c);
    missing.delete('transformer.ln_f.bias');
    expect(message(() => checkTensorsAgainstConfig(missing, c, file))).toBe('model.safetensors: missing tensors transformer.ln_f.bias');

    const extra = tensorsFor(c);
    extra.set('transformer.h.2.ln_1.weight', { dtype: 'F32', shape: [32], data: new Float32Array(32) });
    expect(message(() => checkTensorsAgainstConfig(extra, c, (n) => (n.includes('h.2') ? 'model-00002-of-00002.safetensors' : 'x'))))
      .toBe('model-00002-of-00002.safetensors: unexpected tensor "transformer.h.2.ln_1.weight" for a 2-layer GPT-2 (see config.json)');

    const twice = tensorsFor(c);
    twice.set('wte.weight', twice.get('transformer.wte.weight')!);
    expect(message(() => checkTensorsAgainstConfig(twice, c, file))).toMatch(/appears twice/);
  });
});
