import { describe, expect, it } from 'vitest';
import { formatBytes, formatPercent, pct, signedPct, visibleToken } from './format';

describe('display helpers', () => {
  it('formats probabilities without exponents', () => {
    expect(formatPercent(0.999)).toBe('99.9%');
    expect(formatPercent(0.0647)).toBe('6.47%');
    expect(formatPercent(0.0002)).toBe('0.020%');
    expect(formatPercent(1e-9)).toBe('<0.0001%');
  });

  it('formats the edit results\' probabilities and relative changes', () => {
    expect([pct(0.9996), pct(0.976), pct(0.0647), pct(0.0001), pct(0), pct(null)]).toEqual(['100%', '98%', '6.5%', '<0.1%', '0%', '—']);
    expect([signedPct(0.003), signedPct(-0.022), signedPct(50.93), signedPct(NaN)]).toEqual(['+0.30%', '−2.20%', '+5093%', 'not finite']);
  });

  it('makes whitespace and control characters in tokens visible', () => {
    expect(visibleToken(' Paris')).toBe('␣Paris');
    expect(visibleToken('\n\t')).toBe('\\n\\t');
    expect(visibleToken('\u0004')).toBe('\\x04');
    expect(visibleToken('')).toBe('∅');
  });

  it('formats sizes in binary units', () => {
    expect(formatBytes(463)).toBe('463 B');
    expect(formatBytes(151080)).toBe('147.5 KB');
    expect(formatBytes(22.3 * 1024 ** 2)).toBe('22.3 MB');
  });
});
