// GPT-2 config.json: read it, refuse what this engine cannot run, and check a checkpoint's
// tensors against it before any of them reaches tfjs (a wrong shape would otherwise surface
// as an obscure matMul error deep in the forward pass).

import { ModelFileError } from './errors';
import type { FloatDtype } from './safetensors';

export type Activation = 'gelu_new' | 'gelu';

export interface GPT2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** MLP hidden size (config n_inner, null → 4·n_embd) */
  nInner: number;
  layerNormEpsilon: number;
  activation: Activation;
  bosTokenId: number | null;
  eosTokenId: number | null;
  /** the JSON as read, for anything else a caller wants */
  raw: Record<string, unknown>;
}

const FILE = 'config.json';

/**
 * Upper bounds on config sizes. Far above anything a browser can run (GPT-2 XL: vocab 50257, 1024 positions,
 * n_embd 1600, 48 layers), they exist so an absurd or hostile config.json is refused at once with a message instead
 * of making the loader allocate gigabytes for expected shapes, or computing in a model no file can match.
 */
export const CONFIG_LIMITS = {
  vocab_size: 1 << 20,
  n_positions: 1 << 16,
  n_embd: 1 << 14,
  n_layer: 256,
  n_head: 1 << 10,
  n_inner: 1 << 16,
} as const;

function positiveInt(raw: Record<string, unknown>, key: string, file: string): number {
  const v = raw[key];
  if (!Number.isInteger(v) || (v as number) <= 0) {
    throw new ModelFileError(file, `"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
  }
  const max = (CONFIG_LIMITS as Record<string, number>)[key];
  if (max !== undefined && (v as number) > max) {
    throw new ModelFileError(file, `"${key}" is ${v}, more than this engine supports (at most ${max})`);
  }
  return v as number;
}

/** Validates a GPT-2 config.json object; throws "unsupported architecture" for anything that is not GPT2LMHeadModel. */
export function parseGPT2Config(json: unknown, file = FILE): GPT2Config {
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new ModelFileError(file, 'is not a JSON object');
  const raw = json as Record<string, unknown>;
  const archs = raw.architectures;
  if (raw.model_type !== 'gpt2') {
    const what = Array.isArray(archs) && archs.length ? archs.join(', ') : `model_type ${JSON.stringify(raw.model_type)}`;
    throw new ModelFileError(file, `unsupported architecture ${what} (only GPT-2 / GPT2LMHeadModel is supported)`);
  }
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || !archs.some((a) => a === 'GPT2LMHeadModel' || a === 'GPT2Model')) {
      throw new ModelFileError(file, `unsupported architecture ${JSON.stringify(archs)} (only GPT2LMHeadModel is supported)`);
    }
  }
  // Variants of the GPT-2 block this engine does not implement: refuse instead of computing something else.
  if (raw.scale_attn_by_inverse_layer_idx === true) {
    throw new ModelFileError(file, 'unsupported architecture option scale_attn_by_inverse_layer_idx=true');
  }
  if (raw.scale_attn_weights === false) {
    throw new ModelFileError(file, 'unsupported architecture option scale_attn_weights=false');
  }
  if (raw.add_cross_attention === true) {
    throw new ModelFileError(file, 'unsupported architecture option add_cross_attention=true');
  }
  const act = raw.activation_function ?? 'gelu_new';
  let activation: Activation;
  if (act === 'gelu_new' || act === 'gelu_pytorch_tanh') activation = 'gelu_new';
  else if (act === 'gelu') activation = 'gelu';
  else throw new ModelFileError(file, `unsupported activation_function ${JSON.stringify(act)} (gelu_new or gelu)`);

  const nEmbd = positiveInt(raw, 'n_embd', file);
  const nHead = positiveInt(raw, 'n_head', file);
  if (nEmbd % nHead !== 0) throw new ModelFileError(file, `n_embd ${nEmbd} is not divisible by n_head ${nHead}`);
  const nInner = raw.n_inner === undefined || raw.n_inner === null ? 4 * nEmbd : positiveInt(raw, 'n_inner', file);
  const eps = raw.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0 && eps < 1)) {
    throw new ModelFileError(file, `"layer_norm_epsilon" must be a number in (0, 1), got ${JSON.stringify(raw.layer_norm_epsilon)}`);
  }
  const vocabSize = positiveInt(raw, 'vocab_size', file);
  const tokenId = (k: string) => {
    const v = raw[k];
    if (!Number.isInteger(v)) return null;
    if ((v as number) < 0 || (v as number) >= vocabSize) {
      throw new ModelFileError(file, `"${k}" ${v} is outside the vocabulary (vocab_size ${vocabSize})`);
    }
    return v as number;
  };
  return {
    vocabSize,
    nPositions: positiveInt(raw, 'n_positions', file),
    nEmbd,
    nLayer: positiveInt(raw, 'n_layer', file),
    nHead,
    nInner,
    layerNormEpsilon: eps,
    activation,
    bosTokenId: tokenId('bos_token_id'),
    eosTokenId: tokenId('eos_token_id'),
    raw,
  };
}

/**
 * The HF name of a checkpoint tensor in our canonical form (with the `transformer.` prefix),
 * or null for tensors we deliberately ignore (attention mask buffers, the tied lm_head).
 */
export function canonicalTensorName(name: string): string | null {
  if (name === 'lm_head.weight') return null; // tied to wte
  if (/\.attn\.(bias|masked_bias)$/.test(name)) return null; // causal-mask buffers, not parameters
  return name.startsWith('transformer.') ? name : `transformer.${name}`;
}

/** Every parameter a GPT-2 of this config has, with its shape as stored (Conv1D weights are [in, out]). */
export function expectedTensorShapes(c: GPT2Config): Map<string, number[]> {
  const m = new Map<string, number[]>();
  const C = c.nEmbd;
  m.set('transformer.wte.weight', [c.vocabSize, C]);
  m.set('transformer.wpe.weight', [c.nPositions, C]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `transformer.h.${i}.`;
    m.set(p + 'ln_1.weight', [C]);
    m.set(p + 'ln_1.bias', [C]);
    m.set(p + 'attn.c_attn.weight', [C, 3 * C]);
    m.set(p + 'attn.c_attn.bias', [3 * C]);
    m.set(p + 'attn.c_proj.weight', [C, C]);
    m.set(p + 'attn.c_proj.bias', [C]);
    m.set(p + 'ln_2.weight', [C]);
    m.set(p + 'ln_2.bias', [C]);
    m.set(p + 'mlp.c_fc.weight', [C, c.nInner]);
    m.set(p + 'mlp.c_fc.bias', [c.nInner]);
    m.set(p + 'mlp.c_proj.weight', [c.nInner, C]);
    m.set(p + 'mlp.c_proj.bias', [C]);
  }
  m.set('transformer.ln_f.weight', [C]);
  m.set('transformer.ln_f.bias', [C]);
  return m;
}

export interface CheckedTensor {
  shape: number[];
  dtype: FloatDtype;
  data: Float32Array;
}

/**
 * Checks a checkpoint's tensors against the config and returns them under canonical names.
 * `fileOf` says which file a tensor came from, so errors point at the right shard.
 */
export function checkTensorsAgainstConfig<T extends CheckedTensor>(
  tensors: Map<string, T>,
  config: GPT2Config,
  fileOf: (name: string) => string,
): Map<string, T> {
  const expected = expectedTensorShapes(config);
  const out = new Map<string, T>();
  const dtypes = new Set<string>();
  for (const [name, t] of tensors) {
    const canon = canonicalTensorName(name);
    if (canon === null) continue;
    const shape = expected.get(canon);
    if (!shape) throw new ModelFileError(fileOf(name), `unexpected tensor "${name}" for a ${config.nLayer}-layer GPT-2 (see ${FILE})`);
    if (out.has(canon)) throw new ModelFileError(fileOf(name), `tensor "${canon}" appears twice (with and without the "transformer." prefix)`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(
        fileOf(name),
        `tensor "${name}" has shape [${t.shape.join(', ')}] but ${FILE} implies [${shape.join(', ')}]`,
      );
    }
    dtypes.add(t.dtype);
    out.set(canon, t);
  }
  const wanted = typeof config.raw.torch_dtype === 'string' ? config.raw.torch_dtype : null;
  const torchToST: Record<string, string> = { float32: 'F32', float16: 'F16', bfloat16: 'BF16' };
  if (wanted && torchToST[wanted] && dtypes.size === 1 && !dtypes.has(torchToST[wanted])) {
    // HF writes torch_dtype; a mismatch means the config and weights come from different exports.
    const got = [...dtypes][0];
    throw new ModelFileError(fileOf([...tensors.keys()][0]), `tensors are ${got} but ${FILE} says torch_dtype "${wanted}"`);
  }
  const missing = [...expected.keys()].filter((n) => !out.has(n));
  if (missing.length) {
    const more = missing.length > 3 ? ` and ${missing.length - 3} more` : '';
    throw new ModelFileError(fileOf(''), `missing tensors ${missing.slice(0, 3).join(', ')}${more}`);
  }
  return out;
}
