import { describe, expect, it } from 'vitest';
import { f32Literal, workgroupReductions } from './wgsl';

// The snippets' numerics are tested where kernels use them (tests/model/fast-capture-webgpu.test.ts,
// fast-decode-webgpu.test.ts, against the tfjs path); here only what they refuse and how they spell things.
describe('WGSL snippets', () => {
  it('writes f32 literals that keep every digit of the number', () => {
    for (const v of [1e-5, 0.044715, -1.453152027, Math.SQRT1_2, 1 / Math.sqrt(32), 3, 0]) {
      const lit = f32Literal(v);
      expect(lit.endsWith('f')).toBe(true);
      expect(Number(lit.slice(0, -1))).toBe(v);
    }
    expect(f32Literal(3)).toBe('3e+0f'); // never an integer-looking (abstract int) literal
    for (const bad of [NaN, Infinity, -Infinity]) expect(() => f32Literal(bad)).toThrow(/no WGSL literal/);
  });

  it('declares its workgroup array unless told not to, and refuses sizes that are not powers of two', () => {
    const own = workgroupReductions(64);
    expect(own).toContain('var<workgroup> red : array<f32, 64>;');
    expect(own).toMatch(/fn wsum\(tid : u32, v : f32\) -> f32/);
    expect(own).toMatch(/fn wmax\(tid : u32, v : f32\) -> f32/);
    expect(own).toContain('for (var s = 32u;');
    const shared = workgroupReductions(128, 'part', false);
    expect(shared).not.toContain('var<workgroup>');
    expect(shared).toContain('part[tid] = part[tid] + part[tid + s]');
    expect(() => workgroupReductions(96)).toThrow(/not a power of two/);
  });
});
