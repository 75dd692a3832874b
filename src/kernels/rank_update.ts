// Kernel (b): the MEND weight update as one fused pass,
//
//     W'[i, j] = W[i, j] + c · Σ_n X̃[n, i] · Δ̃[n, j]          (c = sign · lr_scale · edit_lr)
//
// i.e. W + c·X̃ᵀΔ̃ without ever materialising ΔW = X̃ᵀΔ̃ as its own [in, out] tensor. X̃ is [N, in] (pseudo-
// activations), Δ̃ is [N, out] (pseudo-deltas), W is [in, out] (GPT-2 Conv1D layout). N is the number of token
// rows (tens), so each output element is a short dot product; a 16×16 workgroup computes a 16×16 tile of W and
// stages 16 rows of X̃ and Δ̃ at a time in workgroup memory, so each row value is read from global memory once
// per tile instead of once per output element.
//
// Two programs compute this. When W's width is a multiple of 4 (every GPT-2 shape), RankUpdateVec4Program: each
// invocation owns a 4×vec4 block of W (4 rows, 4 adjacent columns), issues its four W loads before the dot products
// and reads/writes W as vec4, so a workgroup streams 64×64 floats of W with 16-byte accesses. Why: on the H100 the
// one-float-per-invocation program below reached only 46 % of a vec4 copy kernel's bandwidth (docs/benchmarks.md):
// too few bytes in flight per invocation and two barriers per 16 rows for 256 outputs. Other widths use
// RankUpdateProgram (one float per invocation), which the tests also keep exercising.
//
// Three ways to receive the result, because callers want different things:
//   rankUpdate(W, X̃, Δ̃, c)          → a fresh tensor W' (W is only read). The edit session uses this: the old W
//                                      stays untouched, so "revert" is a bit-exact swap back, and nothing else
//                                      that shares W's buffer (views, clones, a variable's initial tensor) changes.
//   rankUpdateInPlace(W, X̃, Δ̃, c)   → writes W' into W's own GPUBuffer (tfjs `output` argument). Saves one W-sized
//                                      buffer, but see the guards there: tfjs does not expect buffers to change
//                                      under a tensor, so we refuse aliased buffers and drop the stale CPU copy.
//   outerProductSum(X̃, Δ̃, c = 1)    → c·ΔW itself, for callers that want to inspect it (parity tests, the UI).
//
// Each has a tfjs-op reference (`*Reference`) that is used automatically on wasm/cpu and that the tests compare to.
import * as tf from '@tensorflow/tfjs';
import { activeWebGPUBackend, checkFloat, groupsFor, runProgram, type WebGPUBackend, type WebGPUProgram } from './webgpu';

const TILE = 16;

export type Mode = 'add' | 'inplace' | 'delta';

class RankUpdateProgram implements WebGPUProgram {
  outputShape: number[];
  variableNames: string[];
  shaderKey: string;
  workgroupSize: [number, number, number] = [TILE, TILE, 1];
  // x covers W's columns (out), y its rows (in); main() reads globalId directly.
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  uniforms = 'c : f32,';

  constructor(inDim: number, outDim: number, private mode: Mode) {
    this.outputShape = [inDim, outDim];
    // 'add' reads the old W as an input. 'inplace' reads it through `result`, which is W's own buffer: WebGPU
    // forbids binding one buffer both read-only and read-write in a dispatch, so W must not also be an input.
    this.variableNames = mode === 'add' ? ['W', 'X', 'D'] : ['X', 'D'];
    this.dispatch = [groupsFor(outDim, TILE), groupsFor(inDim, TILE), 1];
    this.shaderKey = `mendRankUpdate_${mode}_${TILE}`;
  }

  getUserCode(): string {
    const combine = {
      add: 'W[idx] + uniforms.c * acc',
      inplace: 'result[idx] + uniforms.c * acc',
      delta: 'uniforms.c * acc',
    }[this.mode];
    return `
      var<workgroup> xs : array<array<f32, ${TILE}>, ${TILE}>;  // xs[k][r] = X̃[n0 + k, i0 + r]
      var<workgroup> ds : array<array<f32, ${TILE}>, ${TILE}>;  // ds[k][c] = Δ̃[n0 + k, j0 + c]

      fn main() {
        let rows = uniforms.xShape.x;
        let inDim = uniforms.xShape.y;
        let outDim = uniforms.dShape.y;
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let i0 = i32(workgroupId.y) * ${TILE};
        let j0 = i32(workgroupId.x) * ${TILE};
        let i = i0 + ly;
        let j = j0 + lx;
        var acc = 0.0;
        // No early return before the loop: every invocation must reach the barriers.
        for (var n0 = 0; n0 < rows; n0 = n0 + ${TILE}) {
          let n = n0 + ly;
          var xv = 0.0;
          var dv = 0.0;
          if (n < rows && i0 + lx < inDim) { xv = X[n * inDim + i0 + lx]; }
          if (n < rows && j0 + lx < outDim) { dv = D[n * outDim + j0 + lx]; }
          xs[ly][lx] = xv;
          ds[ly][lx] = dv;
          workgroupBarrier();
          for (var k = 0; k < ${TILE}; k = k + 1) {
            acc = acc + xs[k][ly] * ds[k][lx];
          }
          workgroupBarrier();
        }
        if (i < inDim && j < outDim) {
          let idx = i * outDim + j;
          result[idx] = ${combine};
        }
      }
    `;
  }
}

// The vec4 program's tile: a 16×16 workgroup covers 64 rows (4 per invocation, 16 apart so that each load
// instruction of a warp reads whole 256-byte row segments) × 64 columns (one vec4 per invocation), and stages
// CHUNK rows of X̃ and Δ̃ at a time.
const V_ROWS = 64;
const V_COLS = 64;
const CHUNK = 16;

class RankUpdateVec4Program implements WebGPUProgram {
  outputShape: number[];
  variableNames: string[];
  variableComponents: number[];
  outputComponent = 4;
  shaderKey: string;
  workgroupSize: [number, number, number] = [16, 16, 1];
  dispatchLayout = { x: [1], y: [0] };
  dispatch: [number, number, number];
  uniforms = 'c : f32,';

  constructor(inDim: number, outDim: number, private mode: Mode) {
    if (outDim % 4 !== 0) throw new Error(`RankUpdateVec4Program needs a width that is a multiple of 4, got ${outDim}`);
    this.outputShape = [inDim, outDim];
    // W and Δ̃ as vec4 (their rows are whole vec4s); X̃ stays scalar (its width, W's height, may be anything).
    this.variableNames = mode === 'add' ? ['W', 'X', 'D'] : ['X', 'D'];
    this.variableComponents = mode === 'add' ? [4, 1, 4] : [1, 4];
    this.dispatch = [groupsFor(outDim, V_COLS), groupsFor(inDim, V_ROWS), 1];
    this.shaderKey = `mendRankUpdateVec4_${mode}_${V_ROWS}x${V_COLS}_${CHUNK}`;
  }

  getUserCode(): string {
    const old = { add: (k: string) => `W[${k}]`, inplace: (k: string) => `result[${k}]`, delta: () => 'vec4<f32>(0.0)' }[this.mode];
    // The 4 rows of an invocation are written out (r = 0..3) rather than looped over an array, so that the old
    // values and the accumulators stay in registers on every compiler.
    const R = [0, 1, 2, 3];
    return `
      var<workgroup> xs : array<array<f32, ${V_ROWS}>, ${CHUNK}>;        // xs[k][r] = X̃[n0 + k, i0 + r]
      var<workgroup> ds : array<array<vec4<f32>, ${V_COLS / 4}>, ${CHUNK}>;  // ds[k][q] = Δ̃[n0 + k, j0 + 4q .. +3]

      fn main() {
        let rows = uniforms.xShape.x;
        let inDim = uniforms.xShape.y;
        let out4 = uniforms.dShape.y / 4;
        let lx = i32(localId.x);
        let ly = i32(localId.y);
        let tid = ly * 16 + lx;
        let i0 = i32(workgroupId.y) * ${V_ROWS};
        let q = i32(workgroupId.x) * ${V_COLS / 4} + lx;  // this invocation's vec4 column
        let colOk = q < out4;
        // The old W values first, so their loads are in flight during the dot products.
${R.map((r) => `        let ok${r} = colOk && i0 + ly + ${16 * r} < inDim;
        let at${r} = (i0 + ly + ${16 * r}) * out4 + q;
        var prev${r} = vec4<f32>(0.0);
        if (ok${r}) { prev${r} = ${old(`at${r}`)}; }
        var acc${r} = vec4<f32>(0.0);`).join('\n')}
        // No early return before the loop: every invocation must reach the barriers.
        for (var n0 = 0; n0 < rows; n0 = n0 + ${CHUNK}) {
          for (var t = tid; t < ${CHUNK * V_ROWS}; t = t + 256) {
            let k = t / ${V_ROWS};
            let rr = t % ${V_ROWS};
            var xv = 0.0;
            if (n0 + k < rows && i0 + rr < inDim) { xv = X[(n0 + k) * inDim + i0 + rr]; }
            xs[k][rr] = xv;
          }
          var dv = vec4<f32>(0.0);
          if (n0 + ly < rows && colOk) { dv = D[(n0 + ly) * out4 + q]; }
          ds[ly][lx] = dv;
          workgroupBarrier();
          for (var k = 0; k < ${CHUNK}; k = k + 1) {
            let dk = ds[k][lx];
${R.map((r) => `            acc${r} = acc${r} + xs[k][ly + ${16 * r}] * dk;`).join('\n')}
          }
          workgroupBarrier();
        }
${R.map((r) => `        if (ok${r}) { result[at${r}] = prev${r} + uniforms.c * acc${r}; }`).join('\n')}
      }
    `;
  }
}

/** Which update program runs for a W of this width: 'vec4' (RankUpdateVec4Program) or 'scalar'. */
export type UpdateVariant = 'vec4' | 'scalar';
export const updateVariantFor = (outDim: number): UpdateVariant => (outDim % 4 === 0 ? 'vec4' : 'scalar');

/** The update program of a variant (also compiled outside tfjs by editors/fast_update.ts, from the same source). */
export function updateProgram(inDim: number, outDim: number, mode: Mode, variant: UpdateVariant): WebGPUProgram {
  return variant === 'vec4' ? new RankUpdateVec4Program(inDim, outDim, mode) : new RankUpdateProgram(inDim, outDim, mode);
}

function check(kernel: string, x: tf.Tensor, d: tf.Tensor, w?: tf.Tensor): void {
  checkFloat(kernel, w ? { W: w, X: x, D: d } : { X: x, D: d }, { W: 2, X: 2, D: 2 });
  if (x.shape[0] !== d.shape[0]) throw new Error(`${kernel}: X has ${x.shape[0]} rows but Δ has ${d.shape[0]}`);
  if (w && (w.shape[0] !== x.shape[1] || w.shape[1] !== d.shape[1])) {
    throw new Error(`${kernel}: W is [${w.shape}] but X̃ᵀΔ̃ is [${x.shape[1]}, ${d.shape[1]}]`);
  }
}

/** c · X̃ᵀΔ̃ with tfjs ops: the definition the kernels are tested against. */
export function outerProductSumReference(x: tf.Tensor2D, d: tf.Tensor2D, c = 1): tf.Tensor2D {
  // A matMul over an empty inner dimension is not reliably zero on every backend (webgpu leaves it unwritten).
  if (x.shape[0] === 0) return tf.zeros([x.shape[1], d.shape[1]]);
  return tf.tidy(() => tf.mul(tf.matMul(x, d, true, false), tf.scalar(c)) as tf.Tensor2D);
}

/** W + c · X̃ᵀΔ̃ with tfjs ops. */
export function rankUpdateReference(w: tf.Tensor2D, x: tf.Tensor2D, d: tf.Tensor2D, c: number): tf.Tensor2D {
  if (x.shape[0] === 0) return tf.clone(w); // exactly W (W + 0 would turn −0 into +0)
  return tf.tidy(() => tf.add(w, outerProductSumReference(x, d, c)) as tf.Tensor2D);
}

function webgpuFor(x: tf.Tensor): WebGPUBackend | null {
  // Zero rows (every row dropped) means ΔW = 0; binding an empty buffer is not allowed, so the reference path,
  // which special-cases it, answers instead.
  return x.shape[0] === 0 ? null : activeWebGPUBackend();
}

/** c·ΔW = c · Σ_n X̃[n]ᵀ Δ̃[n] as a new [in, out] tensor. `variant` forces a program (tests, bench). */
export function outerProductSum(x: tf.Tensor2D, d: tf.Tensor2D, c = 1, variant = updateVariantFor(d.shape[1])): tf.Tensor2D {
  check('outerProductSum', x, d);
  const backend = webgpuFor(x);
  if (!backend) return outerProductSumReference(x, d, c);
  const program = updateProgram(x.shape[1], d.shape[1], 'delta', variant);
  return runProgram(backend, program, [x, d], [{ type: 'float32', data: [c] }]) as tf.Tensor2D;
}

/** W' = W + c·X̃ᵀΔ̃ as a new tensor; W is not modified. `variant` forces a program (tests, bench). */
export function rankUpdate(w: tf.Tensor2D, x: tf.Tensor2D, d: tf.Tensor2D, c: number, variant = updateVariantFor(w.shape[1])): tf.Tensor2D {
  check('rankUpdate', x, d, w);
  const backend = webgpuFor(x);
  if (!backend) return rankUpdateReference(w, x, d, c);
  const program = updateProgram(w.shape[0], w.shape[1], 'add', variant);
  return runProgram(backend, program, [w, x, d], [{ type: 'float32', data: [c] }]) as tf.Tensor2D;
}

/**
 * W += c·X̃ᵀΔ̃ written into W's own buffer. On wasm/cpu the same effect is impossible without internals, so there
 * this throws and callers use rankUpdate. Guards, each for a tfjs behaviour that would otherwise bite:
 *  - W's buffer must not be shared: reshape/clone/variable(t) share a dataId, and an in-place write would change
 *    every one of those tensors (refCount > 1 → refuse).
 *  - tfjs may still hold a CPU copy of W's values (from creation or an earlier data()); it would keep returning
 *    the old values. We drop that copy once the data is on the GPU, so later reads come from the buffer.
 */
export function rankUpdateInPlace(w: tf.Tensor2D, x: tf.Tensor2D, d: tf.Tensor2D, c: number, variant = updateVariantFor(w.shape[1])): void {
  check('rankUpdateInPlace', x, d, w);
  const backend = activeWebGPUBackend();
  if (!backend) throw new Error('rankUpdateInPlace needs the webgpu backend; use rankUpdate elsewhere');
  if (w.isDisposed) throw new Error('rankUpdateInPlace: W is disposed');
  const refs = backend.refCount(w.dataId);
  if (refs !== 1) throw new Error(`rankUpdateInPlace: W's buffer is shared by ${refs} tensors; an in-place write would change all of them`);
  if (x.shape[0] === 0) return;
  backend.uploadToGPU(w.dataId);
  // The GPU buffer is about to become the only truth; tfjs's type says values is always set, but its read path
  // checks for null and then reads the buffer, which is what we want.
  (backend.tensorMap.get(w.dataId) as { values: unknown }).values = null;
  const program = updateProgram(w.shape[0], w.shape[1], 'inplace', variant);
  backend.runWebGPUProgram(program, [x, d], 'float32', [{ type: 'float32', data: [c] }], w);
}
