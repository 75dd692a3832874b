// Number formatting for the weights panel and the lesson: three significant digits, powers of ten written out
// (×10⁻⁴) instead of "e-4", which students misread.
const SUPERSCRIPT: Record<string, string> = { '-': '⁻', '0': '⁰', '1': '¹', '2': '²', '3': '³', '4': '⁴', '5': '⁵', '6': '⁶', '7': '⁷', '8': '⁸', '9': '⁹' };

/** 0.000123 → "1.23×10⁻⁴", 12.3 → "12.3", 0 → "0". */
export function sci(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return Number(x.toPrecision(digits)).toString();
  const [mant, exp] = x.toExponential(digits - 1).split('e');
  const e = String(Number(exp)).replace(/./g, (c) => SUPERSCRIPT[c] ?? c);
  return `${mant}×10${e}`;
}

/** The same as plain text for screen readers ("1.23 times 10 to the -4"). */
export function sciSpoken(x: number, digits = 3): string {
  if (!Number.isFinite(x) || x === 0) return String(x);
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e5) return Number(x.toPrecision(digits)).toString();
  const [mant, exp] = x.toExponential(digits - 1).split('e');
  return `${mant} times 10 to the ${Number(exp)}`;
}

export function percent(x: number): string {
  const v = x * 100;
  if (Math.abs(v) >= 10) return `${v.toFixed(1)}%`;
  if (Math.abs(v) >= 0.01) return `${v.toFixed(2)}%`;
  return `${sci(v, 2)}%`;
}

/** "transformer.h.3.mlp.c_fc.weight" → "block 3 · mlp.c_fc" */
export function shortWeightName(name: string): string {
  const m = /h\.(\d+)\.(.+)\.weight$/.exec(name);
  return m ? `block ${m[1]} · ${m[2]}` : name;
}
