// Two per-row checks an edit needs, each as ONE dispatch on webgpu:
//
//   rowKeepMask(X, Δ)  → [N, 1] float: 1 where row n of X and row n of Δ both have a non-zero value, else 0.
//                        MEND drops rows whose x or δ is all zero (prompt tokens the loss never reaches); the mask
//                        multiplies the editor's δ̃ so those rows add nothing to the update.
//   finiteRows(W)      → [R] float: 1 where every value of row r of W is finite (no NaN, no ±Inf), else 0.
//                        The edit refuses to install a weight with a non-finite value (editors/changes.ts).
//
// Why kernels: with tfjs ops the mask is 9 ops per edited weight (abs, max, greater, cast, twice, and a mul) and
// the finite check 3 (isFinite, all, cast), and on the H100 each tfjs dispatch cost ~100+ µs of JavaScript/tfjs/Dawn
// work while the GPU work was tiny (docs/benchmarks.md "Dispatch overhead"). Measured on an H100 (2026-11-27 13:22,
// same run, alternated): the whole distilgpt2-shape edit took 0.57× the time with these kernels (18.8 vs 32.9 ms;
// 23 instead of 65 tfjs dispatches per edit). Each program gives a row to one 64-thread workgroup: threads stride
// over the row's columns, then a workgroup reduction (rows are a few thousand columns at most; rows are tens for
// the mask and up to a few thousand for the check).
//
// Finiteness is tested on the bits (exponent all ones ⇔ NaN or ±Inf) because WGSL gives no guarantee that
// comparisons with NaN behave as IEEE says (implementations may assume values are finite).
//
// Each has a tfjs-op reference (`*Reference`), used on wasm/cpu and compared against in row_flags.test.ts.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, runProgram, type WebGPUProgram } from './webgpu';

/** Switch: `enabled = false` runs the tfjs-op references on webgpu too (the bench times the edit both ways). */
export const rowFlags = { enabled: true };

const WG = 64;
/** WebGPU's default maxComputeWorkgroupsPerDimension: more rows than this take the reference path. */
export const MAX_GROUPS = 65535;

/**
 * Both checks as one program shape: a 64-thread workgroup per row; each thread scans its stride of the row's columns
 * into `bits` (`scan`, WGSL), the workgroup AND-reduces the threads' bits, and thread 0 writes `result(bits)` for
 * the row. tfjs calls main with the flat index (1-D layout), which is unused: rows are per workgroup.
 */
class RowReduceProgram implements WebGPUProgram {
  workgroupSize: [number, number, number] = [WG, 1, 1];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];

  constructor(
    readonly shaderKey: string,
    readonly variableNames: string[],
    readonly outputShape: number[],
    private readonly scan: string,
    private readonly result: string,
  ) {
    this.dispatch = [outputShape[0], 1, 1];
  }

  getUserCode(): string {
    return `
      var<workgroup> partial : array<u32, ${WG}>;
      fn main(index : i32) {
        let row = i32(workgroupId.x);
        let lid = localId.x;
        ${this.scan}
        partial[lid] = bits;
        workgroupBarrier();
        for (var s = ${WG / 2}u; s > 0u; s = s >> 1u) {
          if (lid < s) { partial[lid] = partial[lid] & partial[lid + s]; }
          workgroupBarrier();
        }
        if (lid == 0u) { setOutputAtIndex(row, ${this.result}); }
      }
    `;
  }
}

// Bit 0: this thread saw only zeros of x; bit 1: only zeros of δ. After the AND, a bit is still set only if the
// whole row is zero on that side, and the row is kept when neither is. Also compiled outside tfjs, from the same
// source, by model/fast_capture.ts.
export const rowKeepProgram = (rows: number) => new RowReduceProgram('mendRowKeep', ['X', 'D'], [rows, 1], `
        let a = uniforms.xShape.y;
        let b = uniforms.dShape.y;
        var anyX = 0u;
        var anyD = 0u;
        for (var j = i32(lid); j < a; j = j + ${WG}) { if (X[row * a + j] != 0.0) { anyX = 1u; } }
        for (var j = i32(lid); j < b; j = j + ${WG}) { if (D[row * b + j] != 0.0) { anyD = 1u; } }
        let bits = (1u - anyX) | ((1u - anyD) << 1u);`, 'select(1.0, 0.0, partial[0] != 0u)');

// 1 while every value this thread saw is finite (exponent not all ones). Also compiled outside tfjs, from the same
// source, by editors/fast_update.ts.
export const finiteRowsProgram = (rows: number) => new RowReduceProgram('mendFiniteRows', ['W'], [rows], `
        let cols = uniforms.wShape.y;
        var bits = 1u;
        for (var j = i32(lid); j < cols; j = j + ${WG}) {
          if ((bitcast<u32>(W[row * cols + j]) & 0x7f800000u) == 0x7f800000u) { bits = 0u; }
        }`, 'f32(partial[0])');

const nonZeroRows = (t: tf.Tensor2D) => tf.cast(tf.greater(tf.max(tf.abs(t), 1, true), 0), 'float32');

/** rowKeepMask with tfjs ops: the definition the kernel is tested against. */
export function rowKeepMaskReference(x: tf.Tensor2D, delta: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => tf.mul(nonZeroRows(x), nonZeroRows(delta)) as tf.Tensor2D);
}

/** [N, 1]: 1 where row n of x and of delta both hold a non-zero value. One dispatch on webgpu. */
export function rowKeepMask(x: tf.Tensor2D, delta: tf.Tensor2D): tf.Tensor2D {
  checkFloat('rowKeepMask', { x, delta }, { x: 2, delta: 2 });
  const n = x.shape[0];
  if (delta.shape[0] !== n) throw new Error(`rowKeepMask: x has ${n} rows but delta has ${delta.shape[0]}`);
  const backend = activeWebGPUBackend();
  if (!rowFlags.enabled || !backend || n === 0 || n > MAX_GROUPS || x.shape[1] === 0 || delta.shape[1] === 0) {
    return rowKeepMaskReference(x, delta);
  }
  return runProgram(backend, rowKeepProgram(n), [x, delta]) as tf.Tensor2D;
}

/** finiteRows with tfjs ops: the definition the kernel is tested against. */
export function finiteRowsReference(w: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => tf.cast(tf.all(tf.isFinite(w), 1), 'float32') as tf.Tensor1D);
}

/** [R]: 1 where every value of row r of w is finite. One dispatch on webgpu. */
export function finiteRows(w: tf.Tensor2D): tf.Tensor1D {
  checkFloat('finiteRows', { w }, { w: 2 });
  const backend = activeWebGPUBackend();
  const rows = w.shape[0];
  if (!rowFlags.enabled || !backend || rows === 0 || rows > MAX_GROUPS || w.shape[1] === 0) return finiteRowsReference(w);
  return runProgram(backend, finiteRowsProgram(rows), [w]) as tf.Tensor1D;
}
