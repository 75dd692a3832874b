// What a MEND update ΔW = Σ_i x̃_iᵀ δ̃_i ([in, out], one rank-1 piece per token row) looks like, computed from the
// rows alone. ΔW is never formed: with X̃ the [N, in] and Δ̃ the [N, out] row matrices, ΔW = X̃ᵀΔ̃, and everything
// shown about it reduces to the N×N Gram matrices Gx = X̃X̃ᵀ and Gd = Δ̃Δ̃ᵀ (N = tokens, tens; in·out = 262k):
//   ‖ΔW‖_F²         = Σ_ij Gx_ij Gd_ij                     (trace of X̃ᵀΔ̃Δ̃ᵀX̃ = trace(Gx Gd))
//   singular values  = √eig(Gx Gd), ≤ N of them; Gx Gd is not symmetric, but Λ^½QᵀGdQΛ^½ (Gx = QΛQᵀ) has the
//                      same eigenvalues and is, so the Jacobi solver applies
//   ⟨piece_i, ΔW⟩    = Σ_j Gx_ij Gd_ij                     (how much of ΔW token i's piece accounts for; sums to ‖ΔW‖²)
//   ΔW[r, c]         = Σ_i X̃[i, r] Δ̃[i, c]                 (single entries, for the heatmap)
import { crossGram, gram, jacobiEigen, rowNorms, type Rows } from './linalg';

/** The rows of one weight's update: x̃ ([N, in]) and δ̃ ([N, out]), row i being token i's rank-1 piece x̃_iᵀ δ̃_i. */
export interface UpdateRows {
  x: Rows;
  delta: Rows;
}

function checkRows(u: UpdateRows): number {
  if (u.x.rows !== u.delta.rows) throw new Error(`x has ${u.x.rows} rows but δ has ${u.delta.rows}`);
  return u.x.rows;
}

/** Σ_ij A_ij B_ij */
function frobeniusInner(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let k = 0; k < a.length; k++) s += a[k] * b[k];
  return s;
}

/** ‖ΔW‖_F for ΔW = X̃ᵀΔ̃. */
export function updateNorm(u: UpdateRows): number {
  checkRows(u);
  return Math.sqrt(Math.max(0, frobeniusInner(gram(u.x), gram(u.delta))));
}

/** ⟨Xaᵀ Da, Xbᵀ Db⟩_F (e.g. the editor's update against the raw gradient). */
export function updateInner(a: UpdateRows, b: UpdateRows): number {
  return frobeniusInner(crossGram(a.x, b.x), crossGram(a.delta, b.delta));
}

/** cos of the angle between two updates as vectors of in·out numbers; 0 when either is zero. */
export function updateCosine(a: UpdateRows, b: UpdateRows): number {
  const na = updateNorm(a);
  const nb = updateNorm(b);
  return na > 0 && nb > 0 ? updateInner(a, b) / (na * nb) : 0;
}

/** All N singular values of ΔW = X̃ᵀΔ̃, descending (those beyond its rank are ≈ 0). */
export function updateSingularValues(u: UpdateRows): Float64Array {
  const n = checkRows(u);
  if (n === 0) return new Float64Array(0);
  const gx = jacobiEigen(gram(u.x), n);
  const gd = gram(u.delta);
  // B = QᵀGdQ, then M = Λ^½ B Λ^½ (symmetric, eigenvalues = σ²).
  const q = gx.vectors;
  const tmp = new Float64Array(n * n); // Gd Q
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += gd[i * n + k] * q[k * n + j];
    tmp[i * n + j] = s;
  }
  const root = Float64Array.from(gx.values, (l) => Math.sqrt(Math.max(0, l)));
  const m = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += q[k * n + i] * tmp[k * n + j];
    m[i * n + j] = root[i] * s * root[j];
  }
  return Float64Array.from(jacobiEigen(m, n).values, (l) => Math.sqrt(Math.max(0, l)));
}

/**
 * Singular values above this fraction of the largest count as nonzero. The rows are float32 (relative rounding
 * ~1e-7), so a direction that is really absent still shows up around 1e-7·σ_max; 1e-5 leaves a wide margin.
 */
export const RANK_TOLERANCE = 1e-5;

/** How many singular values are nonzero (above RANK_TOLERANCE · σ_max). */
export function numericalRank(singularValues: ArrayLike<number>, tolerance = RANK_TOLERANCE): number {
  let max = 0;
  for (let i = 0; i < singularValues.length; i++) max = Math.max(max, singularValues[i]);
  if (max === 0) return 0;
  let r = 0;
  for (let i = 0; i < singularValues.length; i++) if (singularValues[i] > tolerance * max) r++;
  return r;
}

export interface TokenContribution {
  /** ‖x̃_i‖ */
  xNorm: number;
  /** ‖δ̃_i‖ */
  deltaNorm: number;
  /** ‖scale · x̃_iᵀδ̃_i‖_F = |scale|·‖x̃_i‖·‖δ̃_i‖: the size of this token's rank-1 piece of the applied update */
  pieceNorm: number;
  /** ⟨piece_i, ΔW⟩ / ‖ΔW‖²: the part of ΔW this piece accounts for along ΔW itself; the shares sum to 1
   *  (a negative share means the piece partly cancels the others) */
  share: number;
}

/** Each token's rank-1 piece of `scale`·ΔW: its size and its share of the whole. */
export function tokenContributions(u: UpdateRows, scale = 1): TokenContribution[] {
  const n = checkRows(u);
  const gx = gram(u.x);
  const gd = gram(u.delta);
  const along = Float64Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += gx[i * n + j] * gd[i * n + j];
    return s;
  });
  const total = along.reduce((a, b) => a + b, 0);
  const xn = rowNorms(u.x);
  const dn = rowNorms(u.delta);
  return Array.from({ length: n }, (_, i) => ({
    xNorm: xn[i], deltaNorm: dn[i], pieceNorm: Math.abs(scale) * xn[i] * dn[i], share: total > 0 ? along[i] / total : 0,
  }));
}

/** ΔW[r, c] = Σ_i X̃[i, r] Δ̃[i, c]. */
export function updateEntry(u: UpdateRows, r: number, c: number): number {
  let s = 0;
  for (let i = 0; i < u.x.rows; i++) s += u.x.data[i * u.x.cols + r] * u.delta.data[i * u.delta.cols + c];
  return s;
}

export interface HeatmapSlice {
  /** indices into ΔW's rows (input dimensions), ascending */
  rows: number[];
  /** indices into ΔW's columns (output dimensions), ascending */
  cols: number[];
  /** rows.length × cols.length, row-major: ΔW[rows[a], cols[b]] · scale */
  values: Float64Array;
  /** the largest |entry| of the whole (scaled) ΔW, and where it is */
  maxAbs: number;
  argmax: [number, number];
}

/** Indices of the k largest values, in ascending index order. */
function topIndices(values: Float64Array, k: number, forced: number): number[] {
  const order = Array.from(values.keys()).sort((a, b) => values[b] - values[a] || a - b);
  const picked = new Set(order.slice(0, k));
  if (!picked.has(forced)) {
    picked.delete(order[k - 1]);
    picked.add(forced);
  }
  return [...picked].sort((a, b) => a - b);
}

/**
 * A size×size window onto scale·ΔW where it is largest: the rows (input dims) and columns (output dims) with the
 * largest norms, always including the single largest entry. Row r of ΔW is Σ_i X̃[i,r] δ̃_i, so its squared norm
 * is vᵀ Gd v with v = X̃[:, r]; columns likewise with Gx.
 */
export function heatmapSlice(u: UpdateRows, size = 24, scale = 1): HeatmapSlice {
  const n = checkRows(u);
  const inDim = u.x.cols;
  const outDim = u.delta.cols;
  const quadratic = (g: Float64Array, m: Rows, col: number) => {
    let s = 0;
    for (let i = 0; i < n; i++) {
      const vi = m.data[i * m.cols + col];
      if (vi === 0) continue;
      for (let j = 0; j < n; j++) s += vi * g[i * n + j] * m.data[j * m.cols + col];
    }
    return s;
  };
  const gx = gram(u.x);
  const gd = gram(u.delta);
  const rowNorm2 = Float64Array.from({ length: inDim }, (_, r) => quadratic(gd, u.x, r));
  const colNorm2 = Float64Array.from({ length: outDim }, (_, c) => quadratic(gx, u.delta, c));
  // The largest entry overall: for each row, its entries are Σ_i X̃[i,r] δ̃_i; scan them all (in·out·N, ~3M here).
  let maxAbs = 0;
  let argmax: [number, number] = [0, 0];
  const rowBuf = new Float64Array(outDim);
  for (let r = 0; r < inDim; r++) {
    rowBuf.fill(0);
    for (let i = 0; i < n; i++) {
      const xi = u.x.data[i * inDim + r];
      if (xi === 0) continue;
      const off = i * outDim;
      for (let c = 0; c < outDim; c++) rowBuf[c] += xi * u.delta.data[off + c];
    }
    for (let c = 0; c < outDim; c++) {
      const a = Math.abs(rowBuf[c]);
      if (a > maxAbs) {
        maxAbs = a;
        argmax = [r, c];
      }
    }
  }
  const rows = topIndices(rowNorm2, Math.min(size, inDim), argmax[0]);
  const cols = topIndices(colNorm2, Math.min(size, outDim), argmax[1]);
  const values = new Float64Array(rows.length * cols.length);
  rows.forEach((r, a) => cols.forEach((c, b) => (values[a * cols.length + b] = scale * updateEntry(u, r, c))));
  return { rows, cols, values, maxAbs: Math.abs(scale) * maxAbs, argmax };
}
