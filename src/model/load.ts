// From a model source to a ready GPT2 + tokenizer. The order is chosen so bad models fail early
// and cheaply: config.json first (an unsupported architecture is refused before any weights are
// downloaded), then weights and tokenizer in parallel, then every tensor is checked against the config.

import type { GPT2Config } from './config';
import { canonicalTensorName, checkTensorsAgainstConfig, parseGPT2Config } from './config';
import { ModelFileError } from './errors';
import type { FetchOptions, ModelSource } from './fetch';
import { fetchModelFile, fetchOptionalFile, parseJsonFile, ProgressTracker, sourceName } from './fetch';
import { GPT2 } from './gpt2';
import type { FloatDtype, FloatTensor, SafetensorsFile } from './safetensors';
import { firstNonFinite, mergeShards, parseSafetensors, parseShardIndex } from './safetensors';
import { Tokenizer } from './tokenizer';

export interface ModelFiles {
  config: GPT2Config;
  /** fp32 tensors under canonical HF names, already checked against the config */
  tensors: Map<string, FloatTensor>;
  /** stored dtype(s) of the checkpoint, e.g. ['F16'] */
  dtypes: FloatDtype[];
  tokenizerJson: unknown;
  tokenizerConfig: unknown;
  generationConfig: Record<string, unknown> | null;
  /** the files read, in order */
  files: string[];
}

export interface LoadOptions extends FetchOptions {
  /**
   * Called with the parsed config before anything else is downloaded; throw to refuse the model (the worker checks
   * that its weights fit the device's buffer limits, so a model too large is refused before a multi-GB download).
   */
  beforeWeights?: (config: GPT2Config) => void;
}

/** Downloads (or reads) and validates every file of a model folder; no tfjs involved. */
export async function loadModelFiles(source: ModelSource, opts: LoadOptions = {}): Promise<ModelFiles> {
  const tracker = new ProgressTracker(sourceName(source), opts.onProgress);
  const files: string[] = [];
  const get = (f: string) => fetchModelFile(source, f, tracker, opts).then((b) => (files.push(f), b));
  const getOptional = (f: string) => fetchOptionalFile(source, f, tracker, opts).then((b) => (b && files.push(f), b));

  const config = parseGPT2Config(parseJsonFile(await get('config.json'), 'config.json'));
  opts.beforeWeights?.(config);

  const [single, tokJson, tokConfig, genConfig] = await Promise.all([
    getOptional('model.safetensors'),
    get('tokenizer.json'),
    getOptional('tokenizer_config.json'),
    getOptional('generation_config.json'),
  ]);

  let raw: Map<string, FloatTensor>;
  let fileOf: (name: string) => string;
  if (single) {
    raw = parseSafetensors(single, 'model.safetensors').tensors;
    fileOf = () => 'model.safetensors';
  } else {
    const indexBytes = await getOptional('model.safetensors.index.json');
    if (!indexBytes) {
      throw new ModelFileError('model.safetensors', `not found, and there is no model.safetensors.index.json either (in ${sourceName(source)})`);
    }
    const index = parseShardIndex(parseJsonFile(indexBytes, 'model.safetensors.index.json'));
    const parsed = await Promise.all(index.shards.map(async (s) => [s, parseSafetensors(await get(s), s)] as [string, SafetensorsFile]));
    raw = mergeShards(index, new Map(parsed));
    fileOf = (name) => index.weightMap.get(name) ?? index.shards.join(', ');
  }
  const tensors = checkTensorsAgainstConfig(raw, config, fileOf);
  for (const [name, t] of tensors) {
    const bad = firstNonFinite(t.data);
    if (bad) {
      const stored = [...raw.keys()].find((n) => canonicalTensorName(n) === name) ?? name;
      throw new ModelFileError(fileOf(stored), `tensor "${stored}" contains ${bad.value} at index ${bad.index} (NaN/infinite weights)`);
    }
  }

  return {
    config,
    tensors,
    dtypes: [...new Set([...tensors.values()].map((t) => t.dtype))],
    tokenizerJson: parseJsonFile(tokJson, 'tokenizer.json'),
    tokenizerConfig: tokConfig ? parseJsonFile(tokConfig, 'tokenizer_config.json') : {},
    generationConfig: genConfig ? (parseJsonFile(genConfig, 'generation_config.json') as Record<string, unknown>) : null,
    files,
  };
}

export interface LoadedModel {
  model: GPT2;
  tokenizer: Tokenizer;
  config: GPT2Config;
  /** the end-of-text id generation stops at (generation_config, config, then tokenizer) */
  eosTokenId: number | null;
  dtypes: FloatDtype[];
  source: ModelSource;
  files: string[];
}

/**
 * Loads a model onto the active tfjs backend (call initBackend first). Emits the transformers.js
 * progress events and finally {status: 'ready'}.
 */
export async function loadModel(source: ModelSource, opts: LoadOptions = {}): Promise<LoadedModel> {
  const f = await loadModelFiles(source, opts);
  const tokenizer = Tokenizer.fromObjects(f.tokenizerJson, f.tokenizerConfig);
  if (tokenizer.vocabSize > f.config.vocabSize) {
    throw new ModelFileError('tokenizer.json', `has ${tokenizer.vocabSize} tokens but config.json vocab_size is ${f.config.vocabSize}`);
  }
  const model = new GPT2(f.config, f.tensors);
  f.tensors.clear(); // the fp32 copies now live in tfjs; let the CPU arrays go
  const gen = f.generationConfig;
  const eosTokenId = (Number.isInteger(gen?.eos_token_id) ? (gen!.eos_token_id as number) : null) ?? f.config.eosTokenId ?? tokenizer.eosTokenId;
  opts.onProgress?.({ status: 'ready', task: 'text-generation', model: sourceName(source) });
  return { model, tokenizer, config: f.config, eosTokenId, dtypes: f.dtypes, source, files: f.files };
}
