// The pre-flight size check: fp32 bytes per tensor from config.json alone, the largest tensor against the GPU's
// per-buffer limits, all weights against the WASM heap, and the messages naming the size tried and the limit.
import { describe, expect, it } from 'vitest';
import { parseGPT2Config } from '../model/config';
import { checkModelFits, formatBytes, modelFootprint, ModelTooLargeError, WASM_HEAP_MAX } from './memory-check';

const config = (over: Record<string, unknown> = {}) =>
  parseGPT2Config({ model_type: 'gpt2', vocab_size: 50257, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12, ...over });
const MiB = 2 ** 20;

describe('model footprint', () => {
  it('counts GPT-2 small exactly: 124,439,808 parameters, 4 bytes each; the embedding is the largest', () => {
    const f = modelFootprint(config());
    expect(f.totalBytes).toBe(124_439_808 * 4);
    expect(f.largest).toEqual({ name: 'transformer.wte.weight', bytes: 50257 * 768 * 4 });
    expect(f.logitsBytes).toBe(1024 * 50257 * 4);
  });
  it('uses n_inner when given, and finds an MLP weight larger than the embedding', () => {
    const f = modelFootprint(config({ vocab_size: 1000, n_positions: 64, n_embd: 64, n_head: 4, n_layer: 2, n_inner: 4096 }));
    expect(f.largest).toEqual({ name: 'transformer.h.0.mlp.c_fc.weight', bytes: 64 * 4096 * 4 });
    const perLayer = (2 * 64 + 64 * 192 + 192 + 64 * 64 + 64 + 2 * 64 + 64 * 4096 + 4096 + 4096 * 64 + 64) * 4;
    expect(f.totalBytes).toBe((1000 * 64 + 64 * 64 + 2 * 64) * 4 + 2 * perLayer);
  });
  it('stays exact far beyond 2^32 bytes', () => {
    const f = modelFootprint(config({ vocab_size: 2 ** 20, n_embd: 2 ** 14, n_head: 16, n_layer: 1, n_positions: 8 }));
    expect(f.largest.bytes).toBe(2 ** 36);
  });
});

describe('formatBytes', () => {
  it('writes exact powers of two in binary units and everything else in decimal units', () => {
    expect(formatBytes(256 * MiB)).toBe('256 MiB');
    expect(formatBytes(4 * 2 ** 30)).toBe('4 GiB');
    expect(formatBytes(5_100_000_000)).toBe('5.1 GB');
    expect(formatBytes(50257 * 768 * 4)).toBe('154.4 MB');
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(WASM_HEAP_MAX)).toBe('4.3 GB');
  });
});

describe('checkModelFits', () => {
  const big = config({ vocab_size: 2 ** 20, n_embd: 1280, n_head: 20, n_layer: 1, n_positions: 64 }); // wte 5.4 GB
  it('refuses a tensor larger than one GPU buffer, naming the tensor, its size and the limit', () => {
    const limits = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 2 ** 31 };
    expect(() => checkModelFits(big, 'webgpu', limits)).toThrow(ModelTooLargeError);
    expect(() => checkModelFits(big, 'webgpu', limits)).toThrow(
      /needs a 5\.4 GB buffer for transformer\.wte\.weight .*this GPU allows at most 256 MiB per buffer \(maxBufferSize\)/,
    );
  });
  it('takes the smaller of maxBufferSize and maxStorageBufferBindingSize', () => {
    const limits = { maxBufferSize: 2 ** 40, maxStorageBufferBindingSize: 128 * MiB };
    expect(() => checkModelFits(config(), 'webgpu', limits)).toThrow(/154\.4 MB buffer for transformer\.wte\.weight.*at most 128 MiB per buffer \(maxStorageBufferBindingSize\)/);
    expect(checkModelFits(config(), 'webgpu', { maxBufferSize: 2 ** 40, maxStorageBufferBindingSize: 256 * MiB }).largest.name).toBe('transformer.wte.weight');
  });
  it('refuses logits of a full context that do not fit one buffer even when every weight does', () => {
    const c = config({ vocab_size: 2 ** 16, n_positions: 2 ** 12, n_embd: 64, n_head: 4, n_layer: 1 }); // logits 1 GiB
    expect(() => checkModelFits(c, 'webgpu', { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 256 * MiB })).toThrow(/1 GiB buffer for the logits of a full context \(4096 positions × 65536 tokens\)/);
  });
  it('refuses weights beyond the WASM heap, and lets a model that fits through', () => {
    expect(() => checkModelFits(big, 'wasm', null)).toThrow(/needs 5\.4 GB for its weights \(the largest, transformer\.wte\.weight, is 5\.4 GB\); .*WASM\) backend can hold at most 4\.3 GB/);
    expect(checkModelFits(config(), 'wasm', null).totalBytes).toBe(124_439_808 * 4);
    expect(checkModelFits(config(), 'webgpu', { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 256 * MiB }).totalBytes).toBe(124_439_808 * 4);
  });
});
