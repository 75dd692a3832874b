// Reading and validating the MEND editor artifacts (editor_config.json + editor.safetensors, docs/formats.md).
//
// Everything is checked here, at the edge, against the model it is meant for, so that a wrong editor is refused
// with a message that names the file and the mismatch, instead of failing later as an obscure matMul shape error
// (or, worse, silently editing the wrong matrices). Errors are ModelFileErrors: "<file>: <problem>".
import { ModelFileError, type FloatTensor, type GPT2Config } from '../model';

export const EDITOR_CONFIG_FILE = 'editor_config.json';
export const EDITOR_WEIGHTS_FILE = 'editor.safetensors';

export interface MendShapeEditorConfig {
  /** "<in>x<out>" */
  key: string;
  xDim: number;
  deltaDim: number;
  rank: number;
  nModes: number;
  /** mode m = index in this list */
  weights: string[];
}

export interface MendEditorConfig {
  /** inner_params order: indexes edit_lrs */
  editedWeights: string[];
  weightShapes: Array<[number, number]>;
  editors: MendShapeEditorConfig[];
  sign: 1 | -1;
  /** test-time step multiplier for an edit of one fact */
  lrScale: number;
  /** the multiplier for an edit of more than one fact (editor_config.json "lr_scale_batch"; absent = lrScale) */
  lrScaleBatch: number;
  /**
   * editor_config.json "batch_retry" (absent = null, one pass): an edit of more than one fact is followed by up to
   * maxPasses − 1 more MEND passes, each on the facts whose edit prompt does not give the target yet, captured on the
   * model as edited so far, at lrScale (training/calibrate_batch_passes.py). trustRegion ("trust_region", default
   * false): a retry pass whose update of any weight has a larger Frobenius norm than pass 1's is refused (undone) and
   * the edit stops there. proseGuard ("prose_guard", default null): a retry pass that raises the perplexity of
   * proseIds (token ids of held-out prose the editor config carries) by more than a factor 1 + maxIncrease over the
   * weights before it is refused (undone) and the edit stops there. minFacts ("min_facts", default 2, the key's
   * name is from when only batches retried): the fewest facts an edit must have to be retried; 1 retries single-fact
   * edits too (training/evaluate_single_retry.py).
   */
  batchRetry: {
    maxPasses: number; lrScale: number; trustRegion: boolean; minFacts: number;
    proseGuard: ProseGuard | null;
  } | null;
  /**
   * editor_config.json "first_pass_guard" (absent = null): pass 1 of a single-fact edit is undone and redone at half
   * the step while it raises the perplexity of proseIds by more than a factor 1 + maxIncrease, at most maxHalvings
   * times (the last halving is kept unchecked). A few single edits wreck the model (held-out perplexity +76 % on one
   * test edit), always in pass 1; the guard's paragraphs pick those edits out (training/evaluate_pass1_guard.py).
   */
  firstPassGuard: (ProseGuard & { maxHalvings: number }) | null;
  normEps: number;
  model: { modelType: string; nEmbd: number; nInner: number; nLayer: number; vocabSize: number };
  /** the JSON as read (training provenance etc.) */
  raw: Record<string, unknown>;
}

/** Held-out prose a guard scores (token ids the editor config carries) and the perplexity rise it allows (0.02 = 2 %). */
export interface ProseGuard {
  maxIncrease: number;
  proseIds: number[][];
}

/** The most halvings first_pass_guard may ask for (each is one more MEND pass of the fact). */
export const MAX_HALVINGS = 4;

/** The most MEND passes an editor_config.json may ask for (each is a forward + backward of every retried fact). */
export const MAX_PASSES = 5;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;

/** Parses editor_config.json, checking its internal consistency (not yet against a model). */
export function parseMendEditorConfig(json: unknown, file = EDITOR_CONFIG_FILE): MendEditorConfig {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  if (!isObject(json)) fail('is not a JSON object');
  const raw = json as Record<string, unknown>;
  if (raw.format !== 'mendlab-editor') fail(`"format" is ${JSON.stringify(raw.format)}, expected "mendlab-editor"`);
  if (raw.version !== 1) fail(`"version" ${JSON.stringify(raw.version)} is not supported (this build reads version 1)`);

  const m = raw.model;
  if (!isObject(m)) fail('"model" must be an object describing the base model');
  const model = m as Record<string, unknown>;
  for (const k of ['n_embd', 'n_inner', 'n_layer', 'vocab_size']) {
    if (!posInt(model[k])) fail(`"model.${k}" must be a positive integer, got ${JSON.stringify(model[k])}`);
  }
  if (model.model_type !== 'gpt2') fail(`"model.model_type" is ${JSON.stringify(model.model_type)}; only "gpt2" editors are supported`);

  const names = raw.edited_weights;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
    fail('"edited_weights" must be a non-empty list of weight names');
  }
  const editedWeights = (names as string[]).map((n) => (n.startsWith('transformer.') ? n : `transformer.${n}`));
  if (new Set(editedWeights).size !== editedWeights.length) fail('"edited_weights" lists a weight twice');

  const shapes = raw.weight_shapes;
  if (!Array.isArray(shapes) || shapes.length !== editedWeights.length) {
    fail(`"weight_shapes" must have one [in, out] entry per edited weight (${editedWeights.length})`);
  }
  const weightShapes = (shapes as unknown[]).map((s, k) => {
    if (!Array.isArray(s) || s.length !== 2 || !s.every(posInt)) fail(`"weight_shapes[${k}]" must be [in, out], got ${JSON.stringify(s)}`);
    return s as [number, number];
  });

  if (!isObject(raw.editors)) fail('"editors" must be an object keyed by "<in>x<out>"');
  const editors: MendShapeEditorConfig[] = [];
  const owner = new Map<string, string>();
  for (const [key, e] of Object.entries(raw.editors as Record<string, unknown>)) {
    if (!isObject(e)) fail(`"editors.${key}" must be an object`);
    const ed = e as Record<string, unknown>;
    for (const k of ['x_dim', 'delta_dim', 'rank', 'n_modes']) {
      if (!posInt(ed[k])) fail(`"editors.${key}.${k}" must be a positive integer, got ${JSON.stringify(ed[k])}`);
    }
    const xDim = ed.x_dim as number;
    const deltaDim = ed.delta_dim as number;
    if (key !== `${xDim}x${deltaDim}`) fail(`editor key "${key}" does not match its x_dim × delta_dim (${xDim}x${deltaDim})`);
    const ws = ed.weights;
    if (!Array.isArray(ws) || ws.length !== ed.n_modes || !ws.every((w) => typeof w === 'string')) {
      fail(`"editors.${key}.weights" must list n_modes (${ed.n_modes}) weight names`);
    }
    const weights = (ws as string[]).map((n) => (n.startsWith('transformer.') ? n : `transformer.${n}`));
    for (const w of weights) {
      const k = editedWeights.indexOf(w);
      if (k < 0) fail(`"editors.${key}.weights" names "${w}", which is not in "edited_weights"`);
      if (weightShapes[k][0] !== xDim || weightShapes[k][1] !== deltaDim) {
        fail(`"${w}" has weight_shapes [${weightShapes[k]}] but is listed under editor "${key}"`);
      }
      if (owner.has(w)) fail(`"${w}" is listed under both editor "${owner.get(w)}" and "${key}"`);
      owner.set(w, key);
    }
    editors.push({ key, xDim, deltaDim, rank: ed.rank as number, nModes: ed.n_modes as number, weights });
  }
  const orphan = editedWeights.find((w) => !owner.has(w));
  if (orphan) fail(`edited weight "${orphan}" has no editor in "editors"`);

  if (raw.sign !== 1 && raw.sign !== -1) fail(`"sign" must be 1 or -1, got ${JSON.stringify(raw.sign)}`);
  const lrScale = raw.lr_scale ?? 1;
  if (typeof lrScale !== 'number' || !Number.isFinite(lrScale)) fail(`"lr_scale" must be a finite number, got ${JSON.stringify(raw.lr_scale)}`);
  const lrScaleBatch = raw.lr_scale_batch === undefined ? lrScale : raw.lr_scale_batch;
  if (typeof lrScaleBatch !== 'number' || !Number.isFinite(lrScaleBatch) || !(lrScaleBatch > 0)) {
    fail(`"lr_scale_batch" must be a positive finite number (the lr_scale of an edit of several facts), got ${JSON.stringify(raw.lr_scale_batch)}`);
  }
  let batchRetry: MendEditorConfig['batchRetry'] = null;
  if (raw.batch_retry !== undefined) {
    const r = raw.batch_retry;
    const bad = (what: string): never => fail(`"batch_retry" ${what}, got ${JSON.stringify(r)}`);
    if (!isObject(r)) bad('must be an object {"max_passes", "lr_scale", "trust_region"?}');
    const {
      max_passes: maxPasses, lr_scale: retryScale, trust_region: trustRegion = false, prose_guard: guard, min_facts: minFacts = 2,
    } = r as Record<string, unknown>;
    const unknownKey = Object.keys(r as object).find((k) => !['max_passes', 'lr_scale', 'trust_region', 'prose_guard', 'min_facts'].includes(k));
    if (unknownKey) bad(`has an unknown key "${unknownKey}"`);
    if (!Number.isInteger(maxPasses) || (maxPasses as number) < 1 || (maxPasses as number) > MAX_PASSES) {
      bad(`"max_passes" must be an integer from 1 to ${MAX_PASSES}`);
    }
    if (typeof retryScale !== 'number' || !Number.isFinite(retryScale) || !(retryScale > 0)) bad('"lr_scale" must be a positive finite number');
    if (typeof trustRegion !== 'boolean') bad('"trust_region" must be true or false');
    if (!posInt(minFacts)) bad('"min_facts" must be a positive integer (the fewest facts an edit must have to be retried)');
    batchRetry = {
      maxPasses: maxPasses as number, lrScale: retryScale as number, trustRegion: trustRegion as boolean, minFacts: minFacts as number,
      proseGuard: guard === undefined ? null : parseProseGuard(guard, 'batch_retry.prose_guard', model.vocab_size as number, fail),
    };
  }
  let firstPassGuard: MendEditorConfig['firstPassGuard'] = null;
  if (raw.first_pass_guard !== undefined) {
    const { max_halvings: maxHalvings, ...g } = (isObject(raw.first_pass_guard) ? raw.first_pass_guard : {}) as Record<string, unknown>;
    if (!isObject(raw.first_pass_guard) || !Number.isInteger(maxHalvings) || (maxHalvings as number) < 1 || (maxHalvings as number) > MAX_HALVINGS) {
      fail(`"first_pass_guard" must be an object {"max_increase", "max_halvings": an integer from 1 to ${MAX_HALVINGS}, "prose_ids"}, got ${JSON.stringify(raw.first_pass_guard)}`);
    }
    firstPassGuard = { ...parseProseGuard(g, 'first_pass_guard', model.vocab_size as number, fail), maxHalvings: maxHalvings as number };
  }
  const normEps = raw.norm_eps ?? 1e-7;
  if (typeof normEps !== 'number' || !(normEps >= 0)) fail(`"norm_eps" must be a non-negative number, got ${JSON.stringify(raw.norm_eps)}`);

  return {
    editedWeights, weightShapes, editors, sign: raw.sign as 1 | -1, lrScale: lrScale as number,
    lrScaleBatch: lrScaleBatch as number, batchRetry, firstPassGuard, normEps: normEps as number,
    model: {
      modelType: 'gpt2', nEmbd: model.n_embd as number, nInner: model.n_inner as number,
      nLayer: model.n_layer as number, vocabSize: model.vocab_size as number,
    },
    raw,
  };
}

const MLP_OR_ATTN_WEIGHT = /^transformer\.h\.(\d+)\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$/;

/**
 * Refuses an editor trained for another model: the recorded model dimensions, and every edited weight's name and
 * [in, out] shape, must match. `modelShape(name)` gives the model's shape for a canonical name, or null.
 */
export function checkEditorAgainstModel(
  cfg: MendEditorConfig,
  model: GPT2Config,
  modelShape: (name: string) => readonly number[] | null,
  file = EDITOR_CONFIG_FILE,
): void {
  const fail = (problem: string): never => {
    throw new ModelFileError(file, problem);
  };
  const dims: Array<[string, number, number]> = [
    ['n_embd', cfg.model.nEmbd, model.nEmbd],
    ['n_inner', cfg.model.nInner, model.nInner],
    ['n_layer', cfg.model.nLayer, model.nLayer],
    ['vocab_size', cfg.model.vocabSize, model.vocabSize],
  ];
  for (const [k, editorValue, modelValue] of dims) {
    if (editorValue !== modelValue) fail(`this editor was trained for a model with ${k} ${editorValue}, but the model has ${k} ${modelValue}`);
  }
  for (const [key, guard] of [['batch_retry.prose_guard', cfg.batchRetry?.proseGuard], ['first_pass_guard', cfg.firstPassGuard]] as const) {
    const tooLong = guard?.proseIds.find((p) => p.length > model.nPositions);
    if (tooLong) fail(`"${key}" has a paragraph of ${tooLong.length} tokens, beyond the model's context of ${model.nPositions}`);
  }
  cfg.editedWeights.forEach((name, k) => {
    if (!MLP_OR_ATTN_WEIGHT.test(name)) fail(`edited weight "${name}" is not a Conv1D weight of a GPT-2 block`);
    const shape = modelShape(name);
    if (!shape) fail(`edited weight "${name}" does not exist in the model`);
    const [i, o] = cfg.weightShapes[k];
    if (shape!.length !== 2 || shape![0] !== i || shape![1] !== o) {
      fail(`edited weight "${name}" is [${i}, ${o}] in the editor but [${shape!.join(', ')}] in the model`);
    }
  });
}

/** A prose guard (batch_retry.prose_guard, first_pass_guard less max_halvings): {"max_increase": a number > −1,
 * "prose_ids": paragraphs of ≥ 2 token ids < vocab_size}. */
function parseProseGuard(g: unknown, key: string, vocabSize: number, fail: (problem: string) => never): ProseGuard {
  const bad = (what: string): never => fail(`"${key}" ${what}`);
  if (!isObject(g)) bad('must be an object {"max_increase", "prose_ids"}');
  const { max_increase: maxIncrease, prose_ids: ids, ...rest } = g as Record<string, unknown>;
  if (Object.keys(rest).length > 0) bad(`has an unknown key "${Object.keys(rest)[0]}"`);
  if (typeof maxIncrease !== 'number' || !Number.isFinite(maxIncrease) || !(maxIncrease > -1)) {
    bad(`"max_increase" must be a finite number above -1 (0.02 = 2 %), got ${JSON.stringify(maxIncrease)}`);
  }
  const token = (t: unknown) => Number.isInteger(t) && (t as number) >= 0 && (t as number) < vocabSize;
  if (!Array.isArray(ids) || ids.length === 0 || !ids.every((p) => Array.isArray(p) && p.length >= 2 && p.every(token))) {
    bad(`"prose_ids" must be a non-empty list of paragraphs, each at least 2 token ids below vocab_size ${vocabSize}`);
  }
  return { maxIncrease: maxIncrease as number, proseIds: ids as number[][] };
}

/** Names and shapes every editor.safetensors must contain for this config. */
export function expectedEditorTensors(cfg: MendEditorConfig, nLayers = 2): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const e of cfg.editors) {
    const D = e.xDim + e.deltaDim;
    const p = `editors.${e.key}.`;
    m.set(p + 'x_mean', [e.xDim]);
    m.set(p + 'x_std', [e.xDim]);
    m.set(p + 'delta_mean', [e.deltaDim]);
    m.set(p + 'delta_std', [e.deltaDim]);
    for (let l = 0; l < nLayers; l++) {
      m.set(`${p}layers.${l}.U`, [D, e.rank]);
      m.set(`${p}layers.${l}.V`, [e.rank, D]);
      m.set(`${p}layers.${l}.bias`, [D]);
      m.set(`${p}layers.${l}.mode_scale`, [e.nModes, D]);
      m.set(`${p}layers.${l}.mode_shift`, [e.nModes, D]);
    }
  }
  m.set('edit_lrs', [cfg.editedWeights.length]);
  return m;
}

/** Checks that editor.safetensors has every tensor the config implies, with the right shape, and finite values. */
export function checkEditorTensors(cfg: MendEditorConfig, tensors: Map<string, FloatTensor>, file = EDITOR_WEIGHTS_FILE): void {
  for (const [name, shape] of expectedEditorTensors(cfg)) {
    const t = tensors.get(name);
    if (!t) throw new ModelFileError(file, `missing tensor "${name}" (expected by ${EDITOR_CONFIG_FILE})`);
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ModelFileError(file, `tensor "${name}" has shape [${t.shape.join(', ')}] but ${EDITOR_CONFIG_FILE} implies [${shape.join(', ')}]`);
    }
    if (!t.data.every(Number.isFinite)) throw new ModelFileError(file, `tensor "${name}" contains NaN or infinite values`);
  }
  for (const e of cfg.editors) {
    const std = [...tensors.get(`editors.${e.key}.x_std`)!.data, ...tensors.get(`editors.${e.key}.delta_std`)!.data];
    if (std.some((s) => s + cfg.normEps <= 0)) {
      throw new ModelFileError(file, `editor "${e.key}" has a non-positive normalisation std (division by zero)`);
    }
  }
}
