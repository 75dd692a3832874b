// The models the benchmark runs: the shipped model (with its trained editor) and randomly initialised GPT-2s of
// public shapes with a randomly initialised MEND editor of matching shapes. Everything is built in memory and goes
// through the engine's own entry points (GPT2's constructor, MendEditor.fromFiles on editor files in the
// docs/formats.md layout), so the benchmark times exactly the code the app runs.
//
// Random values only need the right scale (so activations and softmax stay in their usual ranges); timing does
// not depend on them. A fast xorshift fill matters here: gpt2-medium plus its editor is ~430 M floats.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { GPT2 } from '../src/model/gpt2';
import { expectedTensorShapes, parseGPT2Config, type GPT2Config } from '../src/model/config';
import { parseSafetensors, writeSafetensors, type TensorToWrite } from '../src/model/safetensors';
import { localSource } from '../src/model/fetch';
import { loadModelFiles } from '../src/model/load';
import { MendEditor } from '../src/editors/mend';

/** A GPT-2 shape to benchmark. `rank` is the editor's low-rank width r' (MEND default: min(1920, in + out)). */
export interface ShapeSpec {
  name: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  vocabSize: number;
  nPositions: number;
  /** edited blocks: the last `editedBlocks` blocks' mlp.c_fc and mlp.c_proj (MEND's GPT-2 setting) */
  editedBlocks: number;
}

export const SHAPES: Record<string, ShapeSpec> = {
  distilgpt2: { name: 'distilgpt2', nLayer: 6, nEmbd: 768, nHead: 12, vocabSize: 50257, nPositions: 1024, editedBlocks: 3 },
  'gpt2-medium': { name: 'gpt2-medium', nLayer: 24, nEmbd: 1024, nHead: 16, vocabSize: 50257, nPositions: 1024, editedBlocks: 3 },
  // For the bench's own test: runs in seconds on SwiftShader.
  tiny: { name: 'tiny', nLayer: 2, nEmbd: 64, nHead: 4, vocabSize: 1000, nPositions: 64, editedBlocks: 2 },
};

/** Where the shipped model lives, and the fixture used until it exists. */
export const SHIPPED_DIRS = ['public/models/facts-gpt', 'tests/fixtures/mend-tiny'];

export interface BenchModel {
  name: string;
  /** 'random' or the folder the weights came from */
  source: string;
  model: GPT2;
  editor: MendEditor;
  params: number;
  editorParams: number;
}

/** xorshift32 uniform(-a, a) fill: ~10× faster than Array.from with a closure for hundreds of millions of values. */
function fillUniform(out: Float32Array, a: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const k = (2 * a) / 4294967296;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s * k - a;
  }
  return out;
}

const uniform = (n: number, a: number, seed: number) => fillUniform(new Float32Array(n), a, seed);
const constant = (n: number, v: number) => new Float32Array(n).fill(v);

function configFor(s: ShapeSpec): GPT2Config {
  return parseGPT2Config({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'],
    vocab_size: s.vocabSize, n_positions: s.nPositions, n_embd: s.nEmbd, n_layer: s.nLayer, n_head: s.nHead,
    n_inner: null, activation_function: 'gelu_new', layer_norm_epsilon: 1e-5, bos_token_id: s.vocabSize - 1, eos_token_id: s.vocabSize - 1,
  });
}

/** GPT-2 initialisation scale: weights ~ std 0.02 (uniform with the same std), LayerNorm = identity, biases 0. */
function randomWeights(config: GPT2Config, seed: number): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  let k = 0;
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    let data: Float32Array;
    if (/\.ln_\w+\.weight$/.test(name)) data = constant(n, 1);
    else if (name.endsWith('.bias')) data = constant(n, 0);
    else data = uniform(n, 0.02 * Math.sqrt(3), seed + 7919 * ++k);
    out.set(name, { shape, data });
  }
  return out;
}

/** The MEND editor's edited weights for a model: the last `blocks` blocks' MLP matrices, inner_params order. */
export function editedWeightNames(nLayer: number, blocks: number): string[] {
  const names: string[] = [];
  for (let i = nLayer - blocks; i < nLayer; i++) names.push(`transformer.h.${i}.mlp.c_fc.weight`, `transformer.h.${i}.mlp.c_proj.weight`);
  return names;
}

/**
 * editor_config.json + editor.safetensors (docs/formats.md) for a random editor over `weights` of `model`, rank
 * r' = min(rank, in + out) per shape as in MEND. Scales: x rows ~ 1, δ rows ~ 1e-3 (what real rows look like),
 * small U so the residual editor stays near the identity.
 */
export function randomEditorFiles(model: GPT2, weights: string[], rank: number, seed: number): { config: Record<string, unknown>; bytes: Uint8Array; params: number } {
  const shapes = weights.map((w) => model.getWeight(w).shape as [number, number]);
  const groups = new Map<string, string[]>();
  weights.forEach((w, k) => groups.set(`${shapes[k][0]}x${shapes[k][1]}`, [...(groups.get(`${shapes[k][0]}x${shapes[k][1]}`) ?? []), w]));
  const tensors: TensorToWrite[] = [];
  const editors: Record<string, unknown> = {};
  let s = seed;
  for (const [key, ws] of groups) {
    const [xDim, deltaDim] = key.split('x').map(Number);
    const D = xDim + deltaDim;
    const r = Math.min(rank, D);
    const M = ws.length;
    editors[key] = { x_dim: xDim, delta_dim: deltaDim, rank: r, n_modes: M, weights: ws };
    const p = `editors.${key}.`;
    tensors.push({ name: p + 'x_mean', shape: [xDim], data: uniform(xDim, 0.1, ++s) });
    tensors.push({ name: p + 'x_std', shape: [xDim], data: constant(xDim, 1) });
    tensors.push({ name: p + 'delta_mean', shape: [deltaDim], data: uniform(deltaDim, 1e-4, ++s) });
    tensors.push({ name: p + 'delta_std', shape: [deltaDim], data: constant(deltaDim, 1e-3) });
    for (let l = 0; l < 2; l++) {
      tensors.push({ name: `${p}layers.${l}.U`, shape: [D, r], data: uniform(D * r, 0.01, ++s) });
      tensors.push({ name: `${p}layers.${l}.V`, shape: [r, D], data: uniform(r * D, 1 / Math.sqrt(D), ++s) });
      tensors.push({ name: `${p}layers.${l}.bias`, shape: [D], data: constant(D, 0) });
      tensors.push({ name: `${p}layers.${l}.mode_scale`, shape: [M, D], data: constant(M * D, 1) });
      tensors.push({ name: `${p}layers.${l}.mode_shift`, shape: [M, D], data: constant(M * D, 0) });
    }
  }
  tensors.push({ name: 'edit_lrs', shape: [weights.length], data: constant(weights.length, 1e-4) });
  const c = model.config;
  const config = {
    format: 'mendlab-editor', version: 1,
    model: { model_type: 'gpt2', n_embd: c.nEmbd, n_inner: c.nInner, n_layer: c.nLayer, vocab_size: c.vocabSize },
    edited_weights: weights, weight_shapes: shapes, editors, sign: -1, lr_scale: 1, norm_eps: 1e-7,
    training: { note: 'random editor for benchmarking (bench/models.ts)' },
  };
  const params = tensors.reduce((a, t) => a + t.data.length, 0);
  return { config, bytes: writeSafetensors(tensors), params };
}

/** A randomly initialised GPT-2 of `shape` with a random MEND editor over its last blocks' MLP weights. */
export function randomModel(shape: ShapeSpec, rank: number, seed = 1): BenchModel {
  const config = configFor(shape);
  const weights = randomWeights(config, seed);
  const params = [...weights.values()].reduce((a, t) => a + t.data.length, 0);
  const model = new GPT2(config, weights);
  weights.clear();
  const files = randomEditorFiles(model, editedWeightNames(shape.nLayer, shape.editedBlocks), rank, seed + 1);
  const editor = MendEditor.fromFiles(files.config, files.bytes, model);
  return { name: shape.name, source: 'random', model, editor, params, editorParams: files.params };
}

/** Whether a folder holds a model (single file or shards) and a MEND editor. */
export function hasModelAndEditor(dir: string): boolean {
  const has = (f: string) => existsSync(join(dir, f));
  return has('config.json') && (has('model.safetensors') || has('model.safetensors.index.json')) && has('editor_config.json') && has('editor.safetensors');
}

/** The first folder of SHIPPED_DIRS (relative to `root`) with a model and an editor, or null. */
export function shippedDir(root = '.'): string | null {
  for (const d of SHIPPED_DIRS) if (hasModelAndEditor(join(root, d))) return join(root, d);
  return null;
}

/**
 * The shipped model and its trained editor, loaded by the engine's own loaders (loadModelFiles: single file or
 * shards, F32/F16/BF16, checked against config.json; MendEditor.fromFiles, without the config's edit policies). The
 * tokenizer is not built: the benchmark feeds token ids.
 */
export async function shippedModel(dir: string): Promise<BenchModel> {
  const source = localSource(resolve(dir));
  const files = await loadModelFiles(source);
  const params = [...files.tensors.values()].reduce((a, t) => a + t.data.length, 0);
  const model = new GPT2(files.config, files.tensors);
  files.tensors.clear();
  const editorBytes = new Uint8Array(readFileSync(join(dir, 'editor.safetensors')));
  // The bench times the MEND edit itself (capture, editor, update). The editor config's policies around it, a retry
  // pass (batch_retry) and the pass-1 perplexity checks (first_pass_guard), depend on the fact; the bench's fact is
  // random tokens, and the random editors and PyTorch's counterpart have neither, so they are left out here.
  const { batch_retry: _retry, first_pass_guard: _guard, ...mendOnly } = JSON.parse(readFileSync(join(dir, 'editor_config.json'), 'utf8'));
  const editor = MendEditor.fromFiles(mendOnly, editorBytes, model);
  const editorParams = [...parseSafetensors(editorBytes, 'editor.safetensors').tensors.values()].reduce((a, t) => a + t.data.length, 0);
  return { name: 'shipped', source: dir, model, editor, params, editorParams };
}
