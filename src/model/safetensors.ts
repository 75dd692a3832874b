// The safetensors format (https://github.com/huggingface/safetensors):
//   8 bytes  little-endian u64 N = length of the JSON header
//   N bytes  JSON: {"<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}
//   rest     raw little-endian tensor data; offsets are relative to the start of this region.
// We read F32, F16 and BF16 and always hand out Float32Array (tfjs computes in fp32 only).
// Every check names the file, because a model is several files and a user needs to know which one is bad.

import { ModelFileError } from './errors';

export type FloatDtype = 'F32' | 'F16' | 'BF16';

/** dtypes the format defines that we recognise but cannot load into a float model. */
const KNOWN_UNSUPPORTED = new Set(['F64', 'I64', 'I32', 'I16', 'I8', 'U64', 'U32', 'U16', 'U8', 'BOOL', 'F8_E4M3', 'F8_E5M2']);
const BYTES_PER_ELEMENT: Record<FloatDtype, number> = { F32: 4, F16: 2, BF16: 2 };
/** A header this large is certainly a corrupt length field, not a real header (real ones are kilobytes). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: FloatDtype;
  shape: number[];
  /** byte offsets into the data region, as written in the header */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: TensorInfo[];
  metadata: Record<string, string> | null;
  /** byte offset of the data region from the start of the file (8 + N) */
  dataStart: number;
}

export interface FloatTensor {
  dtype: FloatDtype;
  shape: number[];
  data: Float32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, FloatTensor>;
  metadata: Record<string, string> | null;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Reads and validates the header only: lengths, JSON, dtypes, shapes and offsets against the file size. */
export function readSafetensorsHeader(bytes: Uint8Array, file: string): SafetensorsHeader {
  if (bytes.byteLength < 8) {
    throw new ModelFileError(file, `file is ${bytes.byteLength} bytes, too short for the 8-byte safetensors header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = Number(view.getBigUint64(0, true));
  if (headerLen > MAX_HEADER_BYTES || 8 + headerLen > bytes.byteLength) {
    throw new ModelFileError(
      file,
      `header length ${headerLen} runs past the end of the file (${bytes.byteLength} bytes) - truncated or not a safetensors file`,
    );
  }
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    throw new ModelFileError(file, `safetensors header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new ModelFileError(file, 'safetensors header is not a JSON object');
  }

  const dataStart = 8 + headerLen;
  const dataLen = bytes.byteLength - dataStart;
  const tensors: TensorInfo[] = [];
  let metadata: Record<string, string> | null = null;
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      // The format defines metadata as a string → string map; anything else is a corrupt or hostile header.
      if (!raw || typeof raw !== 'object' || Array.isArray(raw) || !Object.values(raw).every((v) => typeof v === 'string')) {
        throw new ModelFileError(file, '"__metadata__" must be an object of strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!entry || typeof entry !== 'object') throw new ModelFileError(file, `tensor "${name}" has no header entry object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') throw new ModelFileError(file, `tensor "${name}" has no dtype`);
    if (!(dtype in BYTES_PER_ELEMENT)) {
      throw new ModelFileError(
        file,
        KNOWN_UNSUPPORTED.has(dtype)
          ? `tensor "${name}" has dtype ${dtype}, which is not supported (F32, F16, BF16)`
          : `tensor "${name}" has unknown dtype "${dtype}"`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ModelFileError(file, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      throw new ModelFileError(file, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) {
      throw new ModelFileError(
        file,
        `tensor "${name}" data_offsets [${begin}, ${end}] run past the end of the data (${dataLen} bytes) - file truncated?`,
      );
    }
    const expected = numel(shape) * BYTES_PER_ELEMENT[dtype as FloatDtype];
    if (end - begin !== expected) {
      throw new ModelFileError(
        file,
        `tensor "${name}" is ${end - begin} bytes but ${dtype} shape [${shape.join(', ')}] needs ${expected} bytes`,
      );
    }
    tensors.push({ name, dtype: dtype as FloatDtype, shape: shape as number[], begin, end });
  }

  const sorted = [...tensors].sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i].begin < sorted[i - 1].end) {
      throw new ModelFileError(file, `tensors "${sorted[i - 1].name}" and "${sorted[i].name}" overlap in the data region`);
    }
  }
  return { tensors, metadata, dataStart };
}

/** Parses a whole .safetensors file into fp32 tensors, validating everything readSafetensorsHeader checks. */
export function parseSafetensors(bytes: Uint8Array, file: string): SafetensorsFile {
  const header = readSafetensorsHeader(bytes, file);
  const tensors = new Map<string, FloatTensor>();
  for (const t of header.tensors) {
    const raw = bytes.subarray(header.dataStart + t.begin, header.dataStart + t.end);
    tensors.set(t.name, { dtype: t.dtype, shape: t.shape, data: decodeFloats(raw, t.dtype) });
  }
  return { tensors, metadata: header.metadata };
}

/**
 * The first NaN/±Inf in a tensor as {index, value}, or null when every value is finite. Loaders refuse such weights:
 * one NaN in a checkpoint turns every logit downstream into NaN, which would otherwise show up only as garbage text.
 */
export function firstNonFinite(data: Float32Array): { index: number; value: number } | null {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) return { index: i, value: v }; // NaN − NaN and ±Inf − ±Inf are NaN; finite − itself is 0
  }
  return null;
}

/** Decodes little-endian F32/F16/BF16 bytes to a fresh Float32Array. */
export function decodeFloats(raw: Uint8Array, dtype: FloatDtype): Float32Array {
  // Copy first: the copy is then 4-byte aligned and independent of the (possibly huge) file buffer.
  // (new Uint8Array(view) always copies; Node's Buffer#slice would return a view into a shared pool.)
  const copy = new Uint8Array(raw);
  if (dtype === 'F32') return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
  const halves = new Uint16Array(copy.buffer, 0, copy.byteLength / 2);
  const out = new Float32Array(halves.length);
  if (dtype === 'BF16') {
    // bfloat16 is the top half of an IEEE float32.
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < halves.length; i++) bits[i] = halves[i] << 16;
  } else {
    for (let i = 0; i < halves.length; i++) out[i] = f16ToF32(halves[i]);
  }
  return out;
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero / subnormal
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

function f32ToBf16(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return 0x7fc0; // NaN
  return ((bits + 0x7fff + ((bits >> 16) & 1)) >>> 16) & 0xffff; // round to nearest even
}

function f32ToF16(x: number): number {
  f32Scratch[0] = x;
  const bits = u32Scratch[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow → inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → signed zero
    const m = mant | 0x800000; // subnormal: shift in the implicit bit, round to nearest even
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rem = m & ((1 << shift) - 1);
    let r = m >> shift;
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++; // may carry into the exponent, which is still correct
  return sign | r;
}

export interface TensorToWrite {
  name: string;
  shape: number[];
  data: Float32Array;
  /** stored dtype; F32 unless asked otherwise */
  dtype?: FloatDtype;
}

/** Writes a .safetensors file (used to export edited models). The header is space-padded to 8 bytes like the reference writer. */
export function writeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (numel(t.shape) !== t.data.length) {
      throw new Error(`writeSafetensors: tensor "${t.name}" has ${t.data.length} values but shape [${t.shape.join(', ')}]`);
    }
    if (t.name in header) throw new Error(`writeSafetensors: duplicate tensor name "${t.name}"`);
    const dtype = t.dtype ?? 'F32';
    const size = t.data.length * BYTES_PER_ELEMENT[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + new TextEncoder().encode(json).length) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const t of tensors) {
    const dtype = t.dtype ?? 'F32';
    if (dtype === 'F32') {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
      pos += t.data.byteLength;
    } else {
      const halves = new Uint16Array(t.data.length);
      const conv = dtype === 'F16' ? f32ToF16 : f32ToBf16;
      for (let i = 0; i < t.data.length; i++) halves[i] = conv(t.data[i]);
      out.set(new Uint8Array(halves.buffer), pos);
      pos += halves.byteLength;
    }
  }
  return out;
}

export interface ShardIndex {
  /** tensor name → shard file name */
  weightMap: Map<string, string>;
  /** distinct shard file names, in first-seen order */
  shards: string[];
}

/** Validates a model.safetensors.index.json object. Shard names must be plain file names (no folders, no "..") */
export function parseShardIndex(json: unknown, file = 'model.safetensors.index.json'): ShardIndex {
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new ModelFileError(file, 'has no "weight_map" object');
  }
  const weightMap = new Map<string, string>();
  const shards: string[] = [];
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || !/^[\w.-]+\.safetensors$/.test(shard) || shard.includes('..')) {
      throw new ModelFileError(file, `weight_map entry for "${name}" is not a plain .safetensors file name: ${JSON.stringify(shard)}`);
    }
    weightMap.set(name, shard);
    if (!shards.includes(shard)) shards.push(shard);
  }
  if (shards.length === 0) throw new ModelFileError(file, 'weight_map is empty');
  return { weightMap, shards };
}

/** Merges parsed shards, checking each tensor sits in the shard the index names and appears only once. */
export function mergeShards(index: ShardIndex, shards: Map<string, SafetensorsFile>, indexFile = 'model.safetensors.index.json'): Map<string, FloatTensor> {
  const merged = new Map<string, FloatTensor>();
  for (const [shardName, parsed] of shards) {
    for (const [name, t] of parsed.tensors) {
      if (merged.has(name)) throw new ModelFileError(shardName, `tensor "${name}" also appears in another shard`);
      const expected = index.weightMap.get(name);
      if (expected !== undefined && expected !== shardName) {
        throw new ModelFileError(shardName, `tensor "${name}" is listed in ${indexFile} under ${expected}`);
      }
      merged.set(name, t);
    }
  }
  for (const [name, shardName] of index.weightMap) {
    if (!merged.has(name)) throw new ModelFileError(shardName, `tensor "${name}" listed in ${indexFile} is missing`);
  }
  return merged;
}
