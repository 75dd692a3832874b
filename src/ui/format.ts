// Small display helpers shared by the views.

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

export function formatCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} k`;
  return String(n);
}

export function formatPercent(p: number): string {
  const v = p * 100;
  // Two significant digits for small values ("0.020%") rather than exponents, which readers misread.
  if (v >= 10) return `${v.toFixed(1)}%`;
  if (v >= 1) return `${v.toFixed(2)}%`;
  if (v >= 1e-4) return `${v.toPrecision(2)}%`;
  return '<0.0001%';
}

/** A probability as the edit results show it: whole percents, one decimal below 10 %, "<0.1%" for the tiny ones. */
export function pct(p: number | null): string {
  if (p === null || Number.isNaN(p)) return '—';
  if (p >= 0.9995) return '100%';
  if (p < 0.0005) return p === 0 ? '0%' : '<0.1%';
  return `${(100 * p).toFixed(p < 0.1 ? 1 : 0)}%`;
}

/** A relative change (0.003 = +0.3 %) as "+0.30%", "−2.20%", "+5093%"; "not finite" for NaN/∞. */
export function signedPct(x: number): string {
  const change = x * 100;
  return !Number.isFinite(change) ? 'not finite' : `${change >= 0 ? '+' : '−'}${Math.abs(change).toFixed(Math.abs(change) < 10 ? 2 : 0)}%`;
}

/** Make a token's whitespace visible: a leading space becomes '␣', newlines and tabs become \n and \t. */
export function visibleToken(text: string): string {
  if (text === '') return '∅';
  return text
    .replace(/ /g, '␣')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    // Other control characters would render as empty boxes; show their code instead.
    .replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
