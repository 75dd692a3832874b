// The model engine's public API. The app, the worker, the CLI and the benchmarks import from here only.

/** Pick/activate a tfjs backend ('auto' = webgpu → wasm → cpu) and report which one runs. */
export { initBackend, activeBackend, webgpuAvailable, setWasmPath, wasmPathConfigured } from './backend';
export type { BackendName, BackendChoice } from './backend';

/** Where model files come from: same-origin/base URL, Hugging Face Hub id, or (Node) a local folder. */
export { urlSource, hubSource, localSource, parseHubSpec, isHubId, sourceName, fileUrl, DEFAULT_HUB_URL } from './fetch';
export type { ModelSource, ProgressEvent, ProgressCallback, FetchOptions } from './fetch';
/** The browser Cache API store of downloaded model files: list and clear. */
export { listCachedFiles, clearModelCache, MODEL_CACHE_NAME } from './fetch';

/** Download + validate + build: loadModel gives a ready GPT2 and tokenizer; loadModelFiles stops before tfjs. */
export { loadModel, loadModelFiles } from './load';
export type { LoadedModel, ModelFiles } from './load';

/** Every loading failure is a ModelFileError whose message names the file and the problem. */
export { ModelFileError } from './errors';

/** The GPT-2 engine: forward with KV cache, generation, top-k next tokens, scoring, x/δ gradient rows, weights by name. */
export { GPT2, KVCache, mulberry32, disposeGradientRows } from './gpt2';
export type { GenerateOptions, TopToken, ScoreResult, GradientRows, CaptureResult, PendingCapture } from './gpt2';

/** Greedy text without the end-of-text token that ended it, as every view of the model's answer shows it. */
export { greedyContinuation } from './greedy_text';

/** Tokenizer built offline from tokenizer.json + tokenizer_config.json (transformers.js). */
export { Tokenizer } from './tokenizer';

/** GPT-2 config.json: parse/validate, expected tensor shapes, canonical tensor names. */
export { parseGPT2Config, expectedTensorShapes, canonicalTensorName, checkTensorsAgainstConfig, CONFIG_LIMITS } from './config';
export type { GPT2Config } from './config';

/** safetensors read/write (F32/F16/BF16) and sharded-checkpoint index handling. */
export { parseSafetensors, readSafetensorsHeader, writeSafetensors, parseShardIndex, mergeShards, firstNonFinite } from './safetensors';
export type { FloatDtype, FloatTensor, SafetensorsFile, TensorToWrite } from './safetensors';
