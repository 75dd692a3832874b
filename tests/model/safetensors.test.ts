import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  mergeShards, ModelFileError, parseSafetensors, parseShardIndex, readSafetensorsHeader, writeSafetensors,
  type SafetensorsFile,
} from '../../src/model';
import { FIXTURES } from './parity-suite';

const F = 'model.safetensors';

/** A safetensors file from a header object and a data region, bypassing the writer (to make bad files). */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), headerLen?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen ?? json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function errorOf(fn: () => unknown): ModelFileError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ModelFileError);
    return e as ModelFileError;
  }
  throw new Error('expected an error');
}

describe('safetensors writer/reader', () => {
  it('round-trips F32 exactly, with metadata, and pads the header to 8 bytes', () => {
    const a = new Float32Array([1.5, -2, 3.25, 1e-30, -0, 65504, 1e30, Math.PI]);
    const b = new Float32Array([7]);
    const bytes = writeSafetensors([{ name: 'a', shape: [2, 4], data: a }, { name: 'b.x', shape: [], data: b }], { format: 'pt' });
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const parsed = parseSafetensors(bytes, F);
    expect(parsed.metadata).toEqual({ format: 'pt' });
    expect(parsed.tensors.get('a')).toEqual({ dtype: 'F32', shape: [2, 4], data: a });
    expect(parsed.tensors.get('b.x')!.data).toEqual(b);
  });

  it('F16 and BF16 encode/decode with round-to-nearest (exact for representable values)', () => {
    const exact16 = new Float32Array([0, 1, -2, 0.5, 65504, 2 ** -24, -(2 ** -14), 1025, Infinity, -Infinity]);
    const exactB = new Float32Array([0, 1, -2, 0.5, 2 ** 100, -(2 ** -100), 1.5, Infinity]);
    const bytes = writeSafetensors([
      { name: 'h', shape: [exact16.length], data: exact16, dtype: 'F16' },
      { name: 'b', shape: [exactB.length], data: exactB, dtype: 'BF16' },
      { name: 'r16', shape: [3], data: new Float32Array([1 + 2 ** -12, 1 + 3 * 2 ** -12, 1e6]), dtype: 'F16' },
      { name: 'rb', shape: [2], data: new Float32Array([1 + 2 ** -9, 1 + 3 * 2 ** -9]), dtype: 'BF16' },
    ]);
    const p = parseSafetensors(bytes, F).tensors;
    expect(p.get('h')!.dtype).toBe('F16');
    expect(p.get('h')!.data).toEqual(exact16);
    expect(p.get('b')!.data).toEqual(exactB);
    // ties go to even; out-of-range goes to infinity
    expect(Array.from(p.get('r16')!.data)).toEqual([1, 1 + 2 ** -10, Infinity]);
    expect(Array.from(p.get('rb')!.data)).toEqual([1, 1 + 2 ** -7]);
    const nan = parseSafetensors(writeSafetensors([{ name: 'n', shape: [1], data: new Float32Array([NaN]), dtype: 'F16' }]), F);
    expect(Number.isNaN(nan.tensors.get('n')!.data[0])).toBe(true);
  });

  it('reads the PyTorch-written fixture and its F16/BF16 copies consistently', () => {
    // readFileSync gives Node Buffers, which are views into a shared pool (a non-zero byteOffset)
    const f32 = parseSafetensors(readFileSync(`${FIXTURES}tiny-gpt2/model.safetensors`), F).tensors;
    const f16 = parseSafetensors(readFileSync(`${FIXTURES}tiny-gpt2-fp16/model.safetensors`), F).tensors;
    const w = 'transformer.h.0.attn.c_attn.weight';
    expect(f32.get(w)!.shape).toEqual([32, 96]);
    expect(f16.get(w)!.dtype).toBe('F16');
    const a = f32.get(w)!.data;
    const b = f16.get(w)!.data;
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual(Math.abs(a[i]) * 2 ** -11 + 2 ** -24);
    // our writer re-encodes the fp32 weights to the same F16 bits PyTorch wrote
    const ours = parseSafetensors(writeSafetensors([{ name: w, shape: [32, 96], data: a, dtype: 'F16' }]), F).tensors.get(w)!.data;
    expect(ours).toEqual(b);
  });
});

describe('malformed safetensors files give errors naming the file', () => {
  const good = () => rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));

  it('accepts the well-formed baseline', () => {
    expect(parseSafetensors(good(), F).tensors.get('t')!.data).toEqual(new Float32Array(2));
  });

  it('too short for the length field', () => {
    expect(errorOf(() => parseSafetensors(new Uint8Array(5), F)).message).toBe(
      'model.safetensors: file is 5 bytes, too short for the 8-byte safetensors header length',
    );
  });

  it('header length past the end of the file', () => {
    const e = errorOf(() => parseSafetensors(rawFile({}, new Uint8Array(0), 1000), F));
    expect(e.file).toBe(F);
    expect(e.message).toMatch(/^model\.safetensors: header length 1000 runs past the end of the file \(10 bytes\)/);
    expect(errorOf(() => readSafetensorsHeader(rawFile({}, new Uint8Array(0), 2 ** 40), 'x.safetensors')).message).toMatch(/^x\.safetensors: header length 1099511627776 runs past/);
  });

  it('header that is not JSON, or not an object', () => {
    expect(errorOf(() => parseSafetensors(rawFile('{"t": {'), F)).message).toMatch(/^model\.safetensors: safetensors header is not valid JSON/);
    expect(errorOf(() => parseSafetensors(rawFile('[1, 2]'), F)).message).toBe('model.safetensors: safetensors header is not a JSON object');
  });

  it('unknown and unsupported dtypes', () => {
    const bad = (dtype: string) => rawFile({ t: { dtype, shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(errorOf(() => parseSafetensors(bad('Q4'), F)).message).toBe('model.safetensors: tensor "t" has unknown dtype "Q4"');
    expect(errorOf(() => parseSafetensors(bad('I32'), F)).message).toBe('model.safetensors: tensor "t" has dtype I32, which is not supported (F32, F16, BF16)');
  });

  it('offsets past the end of the data (truncated file)', () => {
    const f = rawFile({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
    expect(errorOf(() => parseSafetensors(f, F)).message).toBe(
      'model.safetensors: tensor "t" data_offsets [0, 16] run past the end of the data (8 bytes) - file truncated?',
    );
  });

  it('invalid offsets and shapes', () => {
    const f = (entry: unknown) => rawFile({ t: entry }, new Uint8Array(8));
    expect(errorOf(() => parseSafetensors(f({ dtype: 'F32', shape: [2], data_offsets: [8, 0] }), F)).message).toMatch(/tensor "t" has invalid data_offsets \[8,0\]/);
    expect(errorOf(() => parseSafetensors(f({ dtype: 'F32', shape: [2], data_offsets: [-1, 7] }), F)).message).toMatch(/invalid data_offsets/);
    expect(errorOf(() => parseSafetensors(f({ dtype: 'F32', shape: [2.5], data_offsets: [0, 8] }), F)).message).toMatch(/tensor "t" has an invalid shape \[2.5\]/);
    expect(errorOf(() => parseSafetensors(f({ shape: [2], data_offsets: [0, 8] }), F)).message).toMatch(/tensor "t" has no dtype/);
  });

  it('byte size that does not match dtype × shape', () => {
    const f = rawFile({ t: { dtype: 'F16', shape: [2, 3], data_offsets: [0, 8] } }, new Uint8Array(8));
    expect(errorOf(() => parseSafetensors(f, F)).message).toBe('model.safetensors: tensor "t" is 8 bytes but F16 shape [2, 3] needs 12 bytes');
  });

  it('overlapping tensors', () => {
    const f = rawFile({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, new Uint8Array(12));
    expect(errorOf(() => parseSafetensors(f, F)).message).toBe('model.safetensors: tensors "a" and "b" overlap in the data region');
  });

  it('the writer refuses inconsistent input', () => {
    expect(() => writeSafetensors([{ name: 'a', shape: [3], data: new Float32Array(2) }])).toThrow(/2 values but shape \[3\]/);
    expect(() => writeSafetensors([{ name: 'a', shape: [1], data: new Float32Array(1) }, { name: 'a', shape: [1], data: new Float32Array(1) }])).toThrow(/duplicate/);
  });
});

describe('sharded checkpoints', () => {
  const shard = (tensors: Record<string, number[]>): SafetensorsFile =>
    parseSafetensors(writeSafetensors(Object.entries(tensors).map(([name, v]) => ({ name, shape: [v.length], data: new Float32Array(v) }))), 's');

  it('validates the index and merges the shards', () => {
    const index = parseShardIndex({ metadata: {}, weight_map: { a: 'm-1.safetensors', b: 'm-2.safetensors', c: 'm-1.safetensors' } });
    expect(index.shards).toEqual(['m-1.safetensors', 'm-2.safetensors']);
    const merged = mergeShards(index, new Map([['m-1.safetensors', shard({ a: [1], c: [3] })], ['m-2.safetensors', shard({ b: [2] })]]));
    expect([...merged.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(merged.get('b')!.data).toEqual(new Float32Array([2]));
  });

  it('rejects bad indexes and inconsistent shards, naming the file', () => {
    const I = 'model.safetensors.index.json';
    expect(errorOf(() => parseShardIndex({})).message).toBe(`${I}: has no "weight_map" object`);
    expect(errorOf(() => parseShardIndex({ weight_map: {} })).message).toBe(`${I}: weight_map is empty`);
    expect(errorOf(() => parseShardIndex({ weight_map: { a: '../x.safetensors' } })).message).toMatch(/not a plain \.safetensors file name/);
    expect(errorOf(() => parseShardIndex({ weight_map: { a: 'sub/x.safetensors' } })).message).toMatch(/not a plain/);
    const index = parseShardIndex({ weight_map: { a: 'm-1.safetensors', b: 'm-2.safetensors' } });
    expect(errorOf(() => mergeShards(index, new Map([['m-1.safetensors', shard({ a: [1] })], ['m-2.safetensors', shard({})]]))).message)
      .toBe(`m-2.safetensors: tensor "b" listed in ${I} is missing`);
    expect(errorOf(() => mergeShards(index, new Map([['m-1.safetensors', shard({ a: [1], b: [2] })], ['m-2.safetensors', shard({ b: [2] })]]))).message)
      .toBe(`m-1.safetensors: tensor "b" is listed in ${I} under m-2.safetensors`);
  });
});
