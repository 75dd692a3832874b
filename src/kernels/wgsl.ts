// WGSL snippets shared by our own kernels (src/kernels/capture_kernels.ts, src/kernels/decode_kernels.ts).

/** An f32 WGSL literal for any finite number (toExponential keeps every digit: "1e-5f", "4.4715e-2f"). */
export function f32Literal(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`f32Literal: ${v} has no WGSL literal`);
  return `${v.toExponential()}f`;
}

/**
 * Workgroup tree reductions `wsum(tid, v)` and `wmax(tid, v)` over `n` invocations (a power of two): every
 * invocation gets the result. They use the workgroup array `array` (declared here unless the kernel declares it
 * itself, e.g. to reuse it); call them from uniform control flow, as they contain barriers.
 */
export function workgroupReductions(n: number, array = 'red', declare = true): string {
  if (!Number.isInteger(Math.log2(n))) throw new Error(`workgroupReductions: ${n} invocations is not a power of two`);
  const reduce = (name: string, combine: string) => `
fn ${name}(tid : u32, v : f32) -> f32 {
  ${array}[tid] = v;
  workgroupBarrier();
  for (var s = ${n / 2}u; s > 0u; s = s / 2u) {
    if (tid < s) { ${array}[tid] = ${combine}; }
    workgroupBarrier();
  }
  let r = ${array}[0];
  workgroupBarrier();
  return r;
}`;
  return `${declare ? `var<workgroup> ${array} : array<f32, ${n}>;` : ''}${reduce('wsum', `${array}[tid] + ${array}[tid + s]`)}${reduce('wmax', `max(${array}[tid], ${array}[tid + s])`)}
`;
}
