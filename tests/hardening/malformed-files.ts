// A deterministic (seeded) generator of malformed model folders, editor artifacts and edit-history imports.
//
// Every case starts from a *valid* base (a model folder, its MEND editor, an exported history) and breaks exactly
// one thing, so a refusal can only come from the broken part, and the expected message can be stated precisely:
// each case says which file the error must name and a pattern for what is wrong. The same seed always gives the
// same cases (the random choices, such as which tensor to corrupt, come from mulberry32), so a failure is
// reproducible by its case name.
//
// Nothing here touches tfjs or the loaders: malformed-files.test.ts feeds the cases to the real loaders.
import { mulberry32, readSafetensorsHeader, writeSafetensors, type TensorToWrite } from '../../src/model';
import { parseSafetensors } from '../../src/model';

/** File name → bytes to write over the base folder, or null to delete the file. */
export type FileOverrides = Record<string, Uint8Array | null>;

export interface FileCase {
  kind: 'model' | 'editor';
  /** the case class (docs/hardening.md lists them), e.g. "safetensors/offsets-out-of-range" */
  cls: string;
  /** unique, human-readable name */
  name: string;
  files: FileOverrides;
  /** the error message must contain this file name ... */
  file: string;
  /** ... and match this (what is wrong) */
  problem: RegExp;
}

export interface HistoryCase {
  kind: 'history';
  cls: string;
  name: string;
  /** what is passed to EditSession.importHistory: a parsed object, or a file's text */
  input: unknown;
  problem: RegExp;
}

export type MalformedCase = FileCase | HistoryCase;

export interface BaseInputs {
  /** every file of a valid single-file model folder (config.json, model.safetensors, tokenizer.json, ...) */
  model: Record<string, Uint8Array>;
  /** a valid model folder with a MEND editor (editor_config.json + editor.safetensors and the model files) */
  editorModel: Record<string, Uint8Array>;
  /** a valid history exported by a session on editorModel (at least one MEND entry) */
  history: Record<string, unknown>;
}

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const json = (v: unknown) => enc(JSON.stringify(v, null, 1));
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v));
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A safetensors file taken apart: its header object and data region, to be broken and put back together. */
interface Parts {
  header: Record<string, { dtype: unknown; shape: unknown; data_offsets: unknown } | unknown>;
  data: Uint8Array;
}

function split(bytes: Uint8Array): Parts {
  const h = readSafetensorsHeader(bytes, 'base');
  const header = JSON.parse(dec(bytes.subarray(8, h.dataStart)));
  return { header, data: bytes.slice(h.dataStart) };
}

/** Reassembles a safetensors file; `headerLen` overrides the 8-byte length field (to lie about it). */
function join(p: Parts, headerLen?: bigint, headerText?: Uint8Array): Uint8Array {
  const text = headerText ?? enc(JSON.stringify(p.header));
  const out = new Uint8Array(8 + text.length + p.data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(p.data, 8 + text.length);
  return out;
}

const tensorNames = (p: Parts) => Object.keys(p.header).filter((n) => n !== '__metadata__');
const entry = (p: Parts, n: string) => p.header[n] as { dtype: unknown; shape: unknown; data_offsets: unknown };

/** Rewrites a tensor map (e.g. with a NaN put in, a tensor dropped or reshaped) as a well-formed safetensors file. */
function rewrite(bytes: Uint8Array, edit: (t: Map<string, TensorToWrite>) => void): Uint8Array {
  const parsed = parseSafetensors(bytes, 'base');
  const m = new Map<string, TensorToWrite>();
  for (const [name, t] of parsed.tensors) m.set(name, { name, shape: [...t.shape], data: new Float32Array(t.data), dtype: t.dtype });
  edit(m);
  return writeSafetensors([...m.values()], parsed.metadata ?? undefined);
}

/** All malformed cases for the given bases, in a fixed order. */
export function generateMalformedCases(base: BaseInputs, seed = 20261126): MalformedCase[] {
  const rand = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  /** k distinct picks, deterministic for the seed */
  const sample = <T>(xs: readonly T[], k: number): T[] => {
    const pool = [...xs];
    const out: T[] = [];
    while (out.length < k && pool.length) out.push(pool.splice(Math.floor(rand() * pool.length), 1)[0]);
    return out;
  };
  const cases: MalformedCase[] = [];
  const model = (cls: string, name: string, files: FileOverrides, file: string, problem: RegExp) =>
    cases.push({ kind: 'model', cls, name: `${cls}: ${name}`, files, file, problem });
  const editor = (cls: string, name: string, files: FileOverrides, file: string, problem: RegExp) =>
    cases.push({ kind: 'editor', cls, name: `${cls}: ${name}`, files, file, problem });
  const history = (cls: string, name: string, input: unknown, problem: RegExp) =>
    cases.push({ kind: 'history', cls, name: `${cls}: ${name}`, input, problem });

  const ST = 'model.safetensors';
  const st = base.model[ST];
  const parts = () => split(st);
  const names = tensorNames(parts());
  const dataLen = parts().data.length;

  // ---- safetensors: container-level corruption ----
  for (const n of [0, 1, 4, 7]) model('safetensors/too-short', `${n} bytes`, { [ST]: st.slice(0, n) }, ST, /too short/);
  for (const extra of [1n, 7n, BigInt(dataLen) + 1n, BigInt(dataLen) + 4096n]) {
    // the length field claims `extra` bytes more than the file holds after the 8-byte length
    const p = parts();
    const rest = BigInt(enc(JSON.stringify(p.header)).length + dataLen);
    model('safetensors/header-length-past-eof', `file size + ${extra}`, { [ST]: join(p, rest + extra) }, ST, /header length \d+ runs past the end/);
  }
  for (const len of [1n << 32n, (1n << 53n) + 1n, (1n << 64n) - 1n, 100n * 1024n * 1024n + 1n]) {
    model('safetensors/huge-header-length', `length ${len}`, { [ST]: join(parts(), len) }, ST, /header length \d+ runs past the end/);
  }
  const badHeaders: Array<[string, Uint8Array, RegExp]> = [
    ['truncated JSON', enc('{"transformer.wte.weight": {"dtype": "F32"'), /not valid JSON/],
    ['garbage bytes', Uint8Array.from({ length: 64 }, () => Math.floor(rand() * 256)), /not valid JSON/],
    ['invalid UTF-8', Uint8Array.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), /not valid JSON/],
    ['trailing comma', enc('{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},}'), /not valid JSON/],
    ['a JSON array', enc('[1, 2, 3]'), /not a JSON object/],
    ['JSON null', enc('null'), /not a JSON object/],
    ['a JSON number', enc('12345'), /not a JSON object/],
    ['a JSON string', enc('"safetensors"'), /not a JSON object/],
    ['empty header', enc(''), /not valid JSON/],
  ];
  for (const [name, text, problem] of badHeaders) {
    model('safetensors/bad-header-json', name, { [ST]: join({ header: {}, data: parts().data }, undefined, text) }, ST, problem);
  }
  for (const cut of [0.2, 0.5, 0.9, 0.999]) {
    // keep the header, lose part of the data: some tensor's offsets now run past the end
    const n = Math.floor(st.length * cut);
    if (n > readSafetensorsHeader(st, 'x').dataStart) model('safetensors/truncated-file', `cut at ${Math.round(cut * 1000) / 10}%`, { [ST]: st.slice(0, n) }, ST, /run past the end of the data/);
    else model('safetensors/truncated-file', `cut at ${Math.round(cut * 1000) / 10}% (in the header)`, { [ST]: st.slice(0, n) }, ST, /runs past the end|too short/);
  }

  // ---- safetensors: header entries ----
  for (const n of sample(names, 6)) {
    const p = parts();
    const e = entry(p, n);
    const [b, end] = e.data_offsets as [number, number];
    e.data_offsets = [b + dataLen, end + dataLen];
    model('safetensors/offsets-out-of-range', n, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" data_offsets .* run past the end`));
  }
  for (const n of sample(names, 4)) {
    const p = parts();
    const e = entry(p, n);
    const [, end] = e.data_offsets as [number, number];
    e.data_offsets = [-4, end];
    model('safetensors/offsets-negative', n, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" has invalid data_offsets`));
  }
  const nonIntegers: unknown[] = [[0.5, 4.5], ['0', '4'], null, [0, 4, 8], [0], 'x', [1e400, 1e400]];
  for (const bad of nonIntegers) {
    const p = parts();
    const n = pick(names);
    entry(p, n).data_offsets = bad;
    model('safetensors/offsets-non-integer', `${n} ${JSON.stringify(bad)}`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" has invalid data_offsets`));
  }
  for (const n of sample(names, 3)) {
    const p = parts();
    const e = entry(p, n);
    const [b, end] = e.data_offsets as [number, number];
    e.data_offsets = [end, b];
    model('safetensors/offsets-reversed', n, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" has invalid data_offsets`));
  }
  {
    // overlap: point a tensor at the bytes of another tensor of the same size
    const bySize = new Map<number, string[]>();
    for (const n of names) {
      const [b, e] = entry(parts(), n).data_offsets as [number, number];
      bySize.set(e - b, [...(bySize.get(e - b) ?? []), n]);
    }
    const pairs = [...bySize.values()].filter((g) => g.length >= 2).flatMap((g) => g.slice(1).map((n) => [g[0], n] as const));
    for (const [a, b] of sample(pairs, 5)) {
      const p = parts();
      entry(p, b).data_offsets = [...(entry(p, a).data_offsets as number[])];
      model('safetensors/offsets-overlap', `${b} onto ${a}`, { [ST]: join(p) }, ST, /overlap in the data region/);
    }
    // partial overlap: shift one tensor's window by half its size (its size stays right)
    for (const n of sample(names.filter((x) => (entry(parts(), x).data_offsets as number[])[0] > 64), 2)) {
      const p = parts();
      const [b, e] = entry(p, n).data_offsets as [number, number];
      entry(p, n).data_offsets = [b - 32, e - 32];
      model('safetensors/offsets-overlap', `${n} shifted back 32 bytes`, { [ST]: join(p) }, ST, /overlap in the data region/);
    }
  }
  const dtypes: Array<[unknown, RegExp]> = [
    ['F8', /unknown dtype "F8"/], ['f32', /unknown dtype "f32"/], ['Q4_0', /unknown dtype/], ['', /unknown dtype ""/],
    ['FLOAT', /unknown dtype/], ['F64', /dtype F64, which is not supported/], ['I64', /dtype I64, which is not supported/],
    ['U8', /dtype U8, which is not supported/], ['BOOL', /dtype BOOL, which is not supported/], [32, /no dtype/], [null, /no dtype/],
  ];
  for (const [dt, problem] of dtypes) {
    const p = parts();
    const n = pick(names);
    entry(p, n).dtype = dt;
    model('safetensors/unknown-dtype', `${n} ${JSON.stringify(dt)}`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" has ${problem.source}`));
  }
  for (const n of sample(names, 6)) {
    // the data size no longer matches shape × dtype
    const p = parts();
    const shape = entry(p, n).shape as number[];
    const grown = [...shape];
    grown[0] += 1 + Math.floor(rand() * 3);
    entry(p, n).shape = grown;
    model('safetensors/size-disagrees-with-shape', `${n} [${grown}]`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" is \\d+ bytes but F32 shape .* needs`));
  }
  {
    const p = parts();
    const n = pick(names);
    entry(p, n).dtype = 'F16'; // half the bytes per element: size disagrees
    model('safetensors/size-disagrees-with-shape', `${n} relabelled F16`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" is \\d+ bytes but F16 shape`));
  }
  const shapes: unknown[] = [[-32], [32.5], '32', null, [[32]], [Number.MAX_SAFE_INTEGER + 2]];
  for (const bad of shapes) {
    const p = parts();
    const n = pick(names);
    entry(p, n).shape = bad;
    model('safetensors/invalid-shape', `${n} ${JSON.stringify(bad)}`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" (has an invalid shape|is \\d+ bytes but)`));
  }
  for (const [what, meta] of [['a number', 5], ['nested objects', { a: { b: 1 } }], ['a list', ['pt']], ['number values', { format: 1 }]] as const) {
    const p = parts();
    p.header.__metadata__ = meta;
    model('safetensors/bad-metadata', what, { [ST]: join(p) }, ST, /"__metadata__" must be an object of strings/);
  }
  for (const [what, v] of [['null', null], ['a number', 7], ['a string', 'F32'], ['a list', [1, 2]]] as const) {
    const p = parts();
    const n = pick(names);
    p.header[n] = v;
    model('safetensors/entry-not-an-object', `${n} is ${what}`, { [ST]: join(p) }, ST, new RegExp(`"${esc(n)}" has no (header entry object|dtype)`));
  }

  // ---- safetensors: valid files whose content is wrong for the model ----
  const cfg = JSON.parse(dec(base.model['config.json']));
  const reshapes: Array<[string, (s: number[]) => number[]]> = [
    ['transposed', (s) => [...s].reverse()],
    ['one row fewer', (s) => (s.length === 2 ? [s[0] - 1, s[1]] : [s[0] - 1])],
    ['flattened', (s) => [s.reduce((a, b) => a * b, 1)]],
    ['extra axis', (s) => [1, ...s]],
  ];
  for (const n of sample(names.filter((x) => (entry(parts(), x).shape as number[]).length === 2 && (entry(parts(), x).shape as number[])[0] !== (entry(parts(), x).shape as number[])[1]), 4)) {
    for (const [what, f] of sample(reshapes, 2)) {
      const bytes = rewrite(st, (m) => {
        const t = m.get(n)!;
        const shape = f(t.shape);
        const size = shape.reduce((a, b) => a * b, 1);
        m.set(n, { ...t, shape, data: t.data.slice(0, size) });
      });
      model('safetensors/shape-disagrees-with-config', `${n} ${what}`, { [ST]: bytes }, ST, new RegExp(`"${esc(n)}" has shape .* but config.json implies`));
    }
  }
  for (const v of [cfg.vocab_size + 1, cfg.vocab_size + 50]) {
    // the checkpoint is fine, config.json describes another vocabulary
    model('safetensors/shape-disagrees-with-config', `config vocab_size ${v}`, { 'config.json': json({ ...cfg, vocab_size: v }) }, ST, /"transformer\.wte\.weight" has shape .* but config\.json implies/);
  }
  for (const [what, v] of [['NaN', NaN], ['+Inf', Infinity], ['-Inf', -Infinity]] as const) {
    for (const n of sample(names, 4)) {
      let index = 0;
      const bytes = rewrite(st, (m) => {
        const t = m.get(n)!;
        index = Math.floor(rand() * t.data.length);
        t.data[index] = v;
      });
      model('safetensors/non-finite-values', `${what} in ${n}[${index}]`, { [ST]: bytes }, ST, new RegExp(`"${esc(n)}" contains (NaN|-?Infinity) at index ${index}`));
    }
  }
  for (const dtype of ['F16', 'BF16'] as const) {
    // stored in half precision: a huge value becomes an infinity of the dtype (F16 overflows at 65504)
    const n = pick(names);
    const bytes = rewrite(st, (m) => {
      for (const t of m.values()) t.dtype = dtype;
      m.get(n)!.data[0] = dtype === 'F16' ? 1e6 : Infinity;
    });
    model('safetensors/non-finite-values', `${dtype} infinity in ${n}`, { [ST]: bytes }, ST, new RegExp(`"${esc(n)}" contains Infinity at index 0`));
  }
  for (const n of sample(names, 8)) {
    const bytes = rewrite(st, (m) => void m.delete(n));
    model('safetensors/missing-tensor', n, { [ST]: bytes }, ST, new RegExp(`missing tensors .*${esc(n)}`));
  }
  const extras: Array<[string, number[], RegExp]> = [
    [`transformer.h.${cfg.n_layer}.mlp.c_fc.weight`, [cfg.n_embd, 4 * cfg.n_embd], /unexpected tensor "transformer\.h\.\d+\.mlp\.c_fc\.weight" for a \d+-layer GPT-2/],
    ['transformer.h.0.attn.q_proj.weight', [cfg.n_embd, cfg.n_embd], /unexpected tensor "transformer\.h\.0\.attn\.q_proj\.weight"/],
    ['classifier.weight', [2, cfg.n_embd], /unexpected tensor "classifier\.weight"/],
    ['h.0.ln_1.weight', [cfg.n_embd], /"transformer\.h\.0\.ln_1\.weight" appears twice/],
  ];
  for (const [n, shape, problem] of extras) {
    const bytes = rewrite(st, (m) => void m.set(n, { name: n, shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) }));
    model('safetensors/extra-tensor', n, { [ST]: bytes }, ST, problem);
  }
  model('safetensors/dtype-disagrees-with-config', 'torch_dtype float16 but F32 tensors', { 'config.json': json({ ...cfg, torch_dtype: 'float16' }) }, ST, /tensors are F32 but config\.json says torch_dtype "float16"/);

  // ---- sharded checkpoints: the index file ----
  const IDX = 'model.safetensors.index.json';
  const shard = 'model-00001-of-00001.safetensors';
  const goodMap = Object.fromEntries(names.map((n) => [n, shard]));
  const indexCases: Array<[string, unknown, string, RegExp]> = [
    ['no weight_map', { metadata: {} }, IDX, /has no "weight_map" object/],
    ['empty weight_map', { weight_map: {} }, IDX, /weight_map is empty/],
    ['path traversal shard', { weight_map: { ...goodMap, [names[0]]: '../model.safetensors' } }, IDX, /not a plain \.safetensors file name/],
    ['absolute path shard', { weight_map: { ...goodMap, [names[0]]: '/etc/passwd' } }, IDX, /not a plain \.safetensors file name/],
    ['URL shard', { weight_map: { ...goodMap, [names[0]]: 'https://evil.example/x.safetensors' } }, IDX, /not a plain \.safetensors file name/],
    ['listed tensor not in shard', { weight_map: { ...goodMap, 'transformer.h.0.ln_9.weight': shard } }, shard, /listed in model\.safetensors\.index\.json is missing/],
    ['shard file missing', { weight_map: Object.fromEntries(names.map((n) => [n, 'model-00002-of-00002.safetensors'])) }, 'model-00002-of-00002.safetensors', /not found/],
  ];
  for (const [name, idx, file, problem] of indexCases) {
    model('shards/bad-index', name, { [ST]: null, [IDX]: json(idx), [shard]: st }, file, problem);
  }
  model('shards/bad-index', 'index is not JSON', { [ST]: null, [IDX]: enc('{"weight_map": '), [shard]: st }, IDX, /is not valid JSON/);
  model('shards/missing', 'neither model.safetensors nor an index', { [ST]: null }, ST, /not found, and there is no model\.safetensors\.index\.json/);

  // ---- config.json ----
  const CFG = 'config.json';
  const notJson: Array<[string, string]> = [
    ['empty file', ''], ['truncated', JSON.stringify(cfg).slice(0, 40)], ['YAML', 'model_type: gpt2\nn_embd: 32\n'],
    ['trailing garbage', JSON.stringify(cfg) + ' }'], ['single quotes', "{'model_type': 'gpt2'}"], ['NaN literal', JSON.stringify(cfg).replace(/"n_embd": ?\d+/, '"n_embd": NaN')],
  ];
  for (const [name, text] of notJson) model('config/not-json', name, { [CFG]: enc(text) }, CFG, /is not valid JSON/);
  for (const [name, v] of [['a list', [cfg]], ['null', null], ['a number', 3], ['a string', 'gpt2']] as const) {
    model('config/not-an-object', name, { [CFG]: json(v) }, CFG, /is not a JSON object/);
  }
  for (const k of ['n_embd', 'n_head', 'n_layer', 'n_positions', 'vocab_size']) {
    const c = clone(cfg);
    delete c[k];
    model('config/missing-field', k, { [CFG]: json(c) }, CFG, new RegExp(`"${k}" must be a positive integer, got undefined`));
  }
  {
    const c = clone(cfg);
    delete c.model_type;
    delete c.architectures;
    model('config/missing-field', 'model_type', { [CFG]: json(c) }, CFG, /unsupported architecture model_type undefined/);
  }
  for (const k of ['n_embd', 'n_head', 'n_layer', 'n_positions', 'vocab_size', 'n_inner']) {
    for (const v of [0, -1, -cfg.n_embd, 2.5, '32', true]) {
      model('config/absurd-values', `${k} = ${JSON.stringify(v)}`, { [CFG]: json({ ...cfg, [k]: v }) }, CFG, new RegExp(`"${k}" must be a positive integer`));
    }
  }
  const huge: Array<[string, number]> = [['vocab_size', 2 ** 31], ['vocab_size', 10 ** 9], ['n_positions', 10 ** 7], ['n_embd', 2 ** 20], ['n_layer', 10000], ['n_inner', 2 ** 24], ['n_head', 2 ** 12]];
  for (const [k, v] of huge) {
    const c = { ...cfg, [k]: v };
    if (k === 'n_embd') c.n_head = 1;
    model('config/absurd-values', `huge ${k} ${v}`, { [CFG]: json(c) }, CFG, new RegExp(`"${k}" is ${v}, more than this engine supports`));
  }
  for (const [e, h] of [[32, 5], [32, 3], [30, 4], [cfg.n_embd, cfg.n_embd + 1]]) {
    model('config/absurd-values', `n_embd ${e} / n_head ${h}`, { [CFG]: json({ ...cfg, n_embd: e, n_head: h }) }, CFG, new RegExp(`n_embd ${e} is not divisible by n_head ${h}`));
  }
  for (const eps of [0, -1e-5, 2, 'x', 1]) {
    model('config/absurd-values', `layer_norm_epsilon ${JSON.stringify(eps)}`, { [CFG]: json({ ...cfg, layer_norm_epsilon: eps }) }, CFG, /"layer_norm_epsilon" must be a number in \(0, 1\)/);
  }
  for (const k of ['eos_token_id', 'bos_token_id']) {
    for (const v of [cfg.vocab_size, -1, 10 ** 6]) {
      model('config/absurd-values', `${k} ${v}`, { [CFG]: json({ ...cfg, [k]: v }) }, CFG, new RegExp(`"${k}" ${v} is outside the vocabulary`));
    }
  }
  const archs: Array<[Record<string, unknown>, RegExp]> = [
    [{ model_type: 'llama', architectures: ['LlamaForCausalLM'] }, /unsupported architecture LlamaForCausalLM/],
    [{ model_type: 'bert', architectures: ['BertModel'] }, /unsupported architecture BertModel/],
    [{ architectures: ['GPT2ForSequenceClassification'] }, /unsupported architecture \["GPT2ForSequenceClassification"\]/],
    [{ activation_function: 'relu' }, /unsupported activation_function "relu"/],
    [{ scale_attn_by_inverse_layer_idx: true }, /scale_attn_by_inverse_layer_idx/],
    [{ add_cross_attention: true }, /add_cross_attention/],
  ];
  for (const [patch, problem] of archs) model('config/unsupported-architecture', JSON.stringify(patch), { [CFG]: json({ ...cfg, ...patch }) }, CFG, problem);

  // ---- tokenizer.json / tokenizer_config.json ----
  const TOK = 'tokenizer.json';
  const tok = JSON.parse(dec(base.model[TOK]));
  for (const [name, text] of [['empty file', ''], ['truncated', dec(base.model[TOK]).slice(0, 100)], ['binary', '\u0000\u0001\u0002'], ['HTML error page', '<!doctype html><title>404</title>']] as const) {
    model('tokenizer/not-json', name, { [TOK]: enc(text) }, TOK, /is not valid JSON/);
  }
  const tokBroken: Array<[string, unknown, RegExp]> = [
    ['no model section', { ...tok, model: undefined }, /has no "model" section/],
    ['a list', [tok], /has no "model" section/],
    ['empty object', {}, /has no "model" section/],
    ['model is null', { ...tok, model: null }, /"model" is not an object/],
    ['model is a string', { ...tok, model: 'BPE' }, /"model" is not an object/],
    ['vocab is a number', { ...tok, model: { ...tok.model, vocab: 5 } }, /"model\.vocab" is not an object or list/],
    ['unknown model type', { ...tok, model: { ...tok.model, type: 'Magic' } }, /"model\.type" "Magic" is not a tokenizers model type/],
    ['model type a number', { ...tok, model: { ...tok.model, type: 3 } }, /"model\.type" 3 is not a tokenizers model type/],
  ];
  for (const [name, v, problem] of tokBroken) model('tokenizer/missing-or-bad-fields', name, { [TOK]: json(v) }, TOK, problem);
  {
    // more tokens than the model has embedding rows: ids past vocab_size would index outside wte
    const vocab = { ...tok.model.vocab };
    for (let i = 0; i < 20; i++) vocab[`xtra${i}`] = cfg.vocab_size + i;
    model('tokenizer/vocab-larger-than-model', '20 extra tokens', { [TOK]: json({ ...tok, model: { ...tok.model, vocab } }) }, TOK, new RegExp(`has \\d+ tokens but config.json vocab_size is ${cfg.vocab_size}`));
  }
  model('tokenizer/config-not-json', 'tokenizer_config.json truncated', { 'tokenizer_config.json': enc('{"tokenizer_class": ') }, 'tokenizer_config.json', /is not valid JSON/);
  model('tokenizer/config-not-json', 'tokenizer_config.json is a list', { 'tokenizer_config.json': json(['GPT2Tokenizer']) }, 'tokenizer_config.json', /is not a JSON object/);

  // ---- MEND editor artifacts (loaded beside a valid model) ----
  const ECFG = 'editor_config.json';
  const EST = 'editor.safetensors';
  const ecfg = JSON.parse(dec(base.editorModel[ECFG]));
  const est = base.editorModel[EST];
  const mcfg = JSON.parse(dec(base.editorModel['config.json']));
  for (const [name, text] of [['empty', ''], ['truncated', dec(base.editorModel[ECFG]).slice(0, 50)], ['Python repr', "{'format': 'mendlab-editor'}"]] as const) {
    editor('editor/config-not-json', name, { [ECFG]: enc(text) }, ECFG, /is not valid JSON/);
  }
  const ecfgBroken: Array<[string, (c: any) => void, RegExp]> = [
    ['format', (c) => (c.format = 'mend'), /"format" is "mend"/],
    ['version 2', (c) => (c.version = 2), /"version" 2 is not supported/],
    ['no model', (c) => delete c.model, /"model" must be an object/],
    ['model_type llama', (c) => (c.model.model_type = 'llama'), /only "gpt2" editors/],
    ['edited_weights empty', (c) => (c.edited_weights = []), /"edited_weights" must be a non-empty list/],
    ['edited_weights duplicate', (c) => (c.edited_weights[1] = c.edited_weights[0]), /lists a weight twice|weight_shapes|has no editor|not in "edited_weights"/],
    ['weight_shapes short', (c) => c.weight_shapes.pop(), /"weight_shapes" must have one/],
    ['weight_shapes bad entry', (c) => (c.weight_shapes[0] = [32]), /"weight_shapes\[0\]" must be \[in, out\]/],
    ['editor key mismatch', (c) => { const k = Object.keys(c.editors)[0]; c.editors['1x1'] = c.editors[k]; delete c.editors[k]; }, /editor key "1x1" does not match/],
    ['rank 0', (c) => (c.editors[Object.keys(c.editors)[0]].rank = 0), /\.rank" must be a positive integer/],
    ['n_modes wrong', (c) => (c.editors[Object.keys(c.editors)[0]].n_modes += 1), /must list n_modes/],
    ['sign 0', (c) => (c.sign = 0), /"sign" must be 1 or -1/],
    ['lr_scale string', (c) => (c.lr_scale = 'big'), /"lr_scale" must be a finite number/],
    ['norm_eps negative', (c) => (c.norm_eps = -1), /"norm_eps" must be a non-negative number/],
    ['orphan weight', (c) => { const k = Object.keys(c.editors)[0]; c.editors[k].weights.pop(); c.editors[k].n_modes -= 1; }, /has no editor in "editors"/],
  ];
  for (const [name, f, problem] of ecfgBroken) {
    const c = clone(ecfg);
    f(c);
    editor('editor/config-fields', name, { [ECFG]: json(c) }, ECFG, problem);
  }
  const otherModel: Array<[string, (c: any) => void, RegExp]> = [
    ['n_embd', (c) => (c.model.n_embd *= 2), /trained for a model with n_embd \d+, but the model has n_embd/],
    ['n_inner', (c) => (c.model.n_inner += 1), /n_inner/],
    ['n_layer', (c) => (c.model.n_layer += 2), /n_layer/],
    ['vocab_size', (c) => (c.model.vocab_size = 50257), /vocab_size 50257/],
    ['a weight of a layer the model lacks', (c) => {
      const old = c.edited_weights[0];
      const nw = old.replace(/h\.\d+\./, `h.${mcfg.n_layer + 3}.`);
      c.edited_weights[0] = nw;
      for (const e of Object.values(c.editors) as Array<{ weights: string[] }>) e.weights = e.weights.map((w) => (w === old ? nw : w));
    }, /does not exist in the model/],
    ['a non-Conv1D weight', (c) => {
      const old = c.edited_weights[0];
      c.edited_weights[0] = 'transformer.wte.weight';
      for (const e of Object.values(c.editors) as Array<{ weights: string[] }>) e.weights = e.weights.map((w) => (w === old ? 'transformer.wte.weight' : w));
    }, /is not a Conv1D weight/],
    ['c_fc and c_proj names swapped', (c) => {
      const swap = (w: string) => (w.includes('c_fc') ? w.replace('c_fc', 'c_proj') : w.replace('c_proj', 'c_fc'));
      c.edited_weights = c.edited_weights.map(swap);
      for (const e of Object.values(c.editors) as Array<{ weights: string[] }>) e.weights = e.weights.map(swap);
    }, /is \[\d+, \d+\] in the editor but \[\d+, \d+\] in the model/],
  ];
  for (const [name, f, problem] of otherModel) {
    const c = clone(ecfg);
    f(c);
    editor('editor/for-another-model', name, { [ECFG]: json(c) }, ECFG, problem);
  }
  const eNames = tensorNames(split(est));
  for (const n of sample(eNames.filter((x) => x !== 'edit_lrs'), 6)) {
    const bytes = rewrite(est, (m) => {
      const t = m.get(n)!;
      const shape = t.shape.length === 2 ? [t.shape[1], t.shape[0]] : [t.shape[0] + 1];
      if (t.shape.length === 2 && t.shape[0] === t.shape[1]) shape[0] += 1;
      const size = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(size);
      data.set(t.data.subarray(0, Math.min(size, t.data.length)));
      m.set(n, { ...t, shape, data });
    });
    editor('editor/tensor-wrong-shape', n, { [EST]: bytes }, EST, new RegExp(`"${esc(n)}" has shape .* but editor_config.json implies`));
  }
  const stats = eNames.filter((x) => /_(mean|std)$/.test(x) || x === 'edit_lrs');
  for (const n of sample(stats, 6)) {
    editor('editor/missing-stats', n, { [EST]: rewrite(est, (m) => void m.delete(n)) }, EST, new RegExp(`missing tensor "${esc(n)}"`));
  }
  for (const [what, v] of [['NaN', NaN], ['Inf', Infinity]] as const) {
    for (const n of sample(eNames, 4)) {
      const bytes = rewrite(est, (m) => void (m.get(n)!.data[Math.floor(rand() * m.get(n)!.data.length)] = v));
      editor('editor/non-finite-values', `${what} in ${n}`, { [EST]: bytes }, EST, new RegExp(`"${esc(n)}" contains NaN or infinite values`));
    }
  }
  for (const n of sample(eNames.filter((x) => x.endsWith('_std')), 2)) {
    const bytes = rewrite(est, (m) => void (m.get(n)!.data[0] = -1));
    editor('editor/non-positive-std', n, { [EST]: bytes }, EST, /has a non-positive normalisation std/);
  }
  {
    const p = split(est);
    editor('editor/corrupt-safetensors', 'header length past EOF', { [EST]: join(p, BigInt(est.length)) }, EST, /header length \d+ runs past the end/);
    editor('editor/corrupt-safetensors', 'truncated', { [EST]: est.slice(0, Math.floor(est.length / 2)) }, EST, /run past the end of the data|runs past the end/);
    const q = split(est);
    entry(q, eNames[0]).dtype = 'I8';
    editor('editor/corrupt-safetensors', 'unsupported dtype', { [EST]: join(q) }, EST, /dtype I8, which is not supported/);
    editor('editor/corrupt-safetensors', 'weights missing', { [EST]: null }, EST, /not found/);
  }

  // ---- edit history imports ----
  const h0 = base.history as Record<string, any> & { entries: unknown[] };
  const withEntry = (f: (e: any, h: any) => void) => {
    const h = clone(h0) as any;
    f(h.entries[0], h);
    return h;
  };
  const hist: Array<[string, string, unknown, RegExp]> = [
    ['malformed', 'not JSON text', '{"format": "mendlab-history", ', /not valid JSON/],
    ['malformed', 'empty text', '', /not valid JSON/],
    ['malformed', 'a list', [h0], /not a JSON object/],
    ['malformed', 'null', null, /not a JSON object/],
    ['malformed', 'wrong format', { ...h0, format: 'mendlab-editor' }, /"format" is "mendlab-editor"/],
    ['malformed', 'version 2', { ...h0, version: 2 }, /"version" 2 is not supported/],
    ['malformed', 'no entries', { ...h0, entries: undefined }, /"entries" must be a list/],
    ['malformed', 'entries an object', { ...h0, entries: { 0: h0.entries } }, /"entries" must be a list/],
    ['malformed', 'entry is a string', { ...h0, entries: ['edit'] }, /entries\[0\] is not an object/],
    ['malformed', 'method unknown', withEntry((e) => (e.method = 'rome')), /entries\[0\]\.method must be "mend" or "ft"/],
    ['malformed', 'facts empty', withEntry((e) => (e.facts = [])), /entries\[0\]\.facts must be a non-empty list/],
    ['malformed', 'fact not an object', withEntry((e) => (e.facts = [7])), /entries\[0\]\.facts\[0\] is not an object/],
    ['malformed', 'prompt a number', withEntry((e) => (e.facts[0].prompt = 5)), /facts\[0\]\.prompt must be a non-empty string/],
    ['malformed', 'target empty', withEntry((e) => (e.facts[0].target = '')), /facts\[0\]\.target must be a non-empty string/],
    ['malformed', 'negative token id', withEntry((e) => (e.facts[0].prompt_ids = [-1])), /prompt_ids must be a non-empty list of token ids/],
    ['malformed', 'fractional token id', withEntry((e) => (e.facts[0].target_ids = [1.5])), /target_ids must be a non-empty list of token ids/],
    ['malformed', 'no target ids', withEntry((e) => delete e.facts[0].target_ids), /target_ids must be a non-empty list/],
    ['malformed', 'options missing', withEntry((e) => delete e.options), /entries\[0\]\.options is missing/],
    ['malformed', 'weights empty', withEntry((e) => (e.options.weights = [])), /options\.weights must be a non-empty list/],
    ['malformed', 'ft steps 0', withEntry((e) => Object.assign(e, { method: 'ft', options: { weights: e.options.weights, steps: 0, learning_rate: 1e-3 } })), /options\.steps must be a positive integer/],
    ['malformed', 'ft learning rate negative', withEntry((e) => Object.assign(e, { method: 'ft', options: { weights: e.options.weights, steps: 2, learning_rate: -1 } })), /options\.learning_rate must be a positive number/],
    ['malformed', 'ft learning rate huge', withEntry((e) => Object.assign(e, { method: 'ft', options: { weights: e.options.weights, steps: 2, learning_rate: 1e9 } })), /options\.learning_rate must be a positive number below/],
    ['malformed', 'position past the end', withEntry((_, h) => (h.position = h.entries.length + 1)), /"position" must be an integer between 0 and/],
    ['malformed', 'position negative', withEntry((_, h) => (h.position = -1)), /"position" must be an integer/],
    ['malformed', 'position fractional', withEntry((_, h) => (h.position = 0.5)), /"position" must be an integer/],
    ['malformed', 'stats are strings', withEntry((e) => (e.stats = { rows: 'many' })), /stats must map names to numbers/],
    ['oversized', 'file over the byte limit', JSON.stringify({ ...h0, padding: 'x'.repeat(4 * 1024 * 1024) }), /the file is \d+ bytes; at most \d+/],
    ['oversized', 'too many entries', { ...h0, entries: Array.from({ length: 1001 }, () => h0.entries[0]), position: 0 }, /1001 entries; at most 1000/],
    ['oversized', 'too many facts in one entry', withEntry((e) => (e.facts = Array.from({ length: 11 }, () => e.facts[0]))), /facts has more than 10 facts/],
    ['oversized', 'a 20001-character prompt', withEntry((e) => (e.facts[0].prompt = 'a'.repeat(20001))), /prompt must be a non-empty string of at most 20000/],
    ['oversized', '5000 token ids', withEntry((e) => (e.facts[0].prompt_ids = Array(5000).fill(1))), /prompt_ids must be a non-empty list/],
    ['oversized', 'too many weights', withEntry((e) => (e.options.weights = Array(513).fill(e.options.weights[0]))), /options\.weights must be a non-empty list/],
    ['other-model', 'n_embd', withEntry((_, h) => (h.model.n_embd *= 2)), /made on a model with n_embd \d+, this model has n_embd/],
    ['other-model', 'vocab_size', withEntry((_, h) => (h.model.vocab_size = 50257)), /made on a model with vocab_size 50257/],
    ['other-model', 'n_positions', withEntry((_, h) => (h.model.n_positions = 1024)), /n_positions 1024/],
    ['other-model', 'n_layer', withEntry((_, h) => (h.model.n_layer = 12)), /n_layer 12/],
    ['other-model', 'no model signature', withEntry((_, h) => delete h.model), /"model" is missing/],
    ['other-model', 'token id past the vocabulary', withEntry((e) => (e.facts[0].target_ids = [mcfg.vocab_size])), /target_ids must be a non-empty list of token ids below vocab_size/],
    ['other-model', 'MEND edit for other weights', withEntry((e) => (e.options.weights = ['transformer.h.0.mlp.c_fc.weight'])), /made by a MEND editor for other weights/],
    ['other-model', 'fine-tuning a weight the model lacks', withEntry((e) => Object.assign(e, { method: 'ft', options: { weights: ['transformer.h.40.mlp.c_fc.weight'], steps: 2, learning_rate: 1e-3 } })), /options\.weights names "transformer\.h\.40\.mlp\.c_fc\.weight", which this model does not have/],
    ['other-model', 'another tokenizer', withEntry((e) => (e.facts[0].prompt_ids = [...e.facts[0].prompt_ids].reverse().concat([1]))), /tokenises differently here: the history was made with another tokenizer/],
    ['invalid-edit', 'control character in the prompt', withEntry((e) => (e.facts[0].prompt = e.facts[0].prompt + '\u0007')), /contains the invisible control character U\+0007/],
    ['invalid-edit', 'whitespace-only target', withEntry((e) => (e.facts[0].target = ' \t ')), /the target is empty/],
    ['invalid-edit', 'lone surrogate', withEntry((e) => (e.facts[0].target = ' \uD800x')), /not valid Unicode/],
    ['invalid-edit', 'target of more than 16 tokens', withEntry((e) => (e.facts[0].target = ' ' + 'zq'.repeat(40))), /the target is \d+ tokens long; at most 16/],
    ['invalid-edit', 'beyond the context', withEntry((e) => (e.facts[0].prompt = 'word '.repeat(mcfg.n_positions + 10))), /beyond the model's context of \d+/],
  ];
  for (const [cls, name, input, problem] of hist) history(`history/${cls}`, name, input, problem);

  const seen = new Set<string>();
  for (const c of cases) {
    if (seen.has(c.name)) throw new Error(`duplicate malformed case name "${c.name}"`);
    seen.add(c.name);
  }
  return cases;
}

/** Cases per class, in first-seen order (what the test prints and docs/hardening.md quotes). */
export function countByClass(cases: readonly MalformedCase[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const c of cases) m.set(c.cls, (m.get(c.cls) ?? 0) + 1);
  return m;
}
