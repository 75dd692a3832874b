import { describe, expect, it } from 'vitest';
import { percent, sci, sciSpoken, shortWeightName } from './numbers';

describe('number formatting', () => {
  it('writes small and large values with powers of ten, others plainly', () => {
    expect(sci(0.000123456)).toBe('1.23×10⁻⁴');
    expect(sci(-2.5e-7)).toBe('-2.50×10⁻⁷');
    expect(sci(123456)).toBe('1.23×10⁵');
    expect(sci(12.345)).toBe('12.3');
    expect(sci(0.5)).toBe('0.5');
    expect(sci(0)).toBe('0');
    expect(sciSpoken(0.000123456)).toBe('1.23 times 10 to the -4');
    expect(percent(0.1234)).toBe('12.3%');
    expect(percent(0.00001234)).toBe('0.0012%');
    expect(percent(1e-7)).toBe('1.0×10⁻⁵%');
    expect(shortWeightName('transformer.h.3.mlp.c_fc.weight')).toBe('block 3 · mlp.c_fc');
  });
});
