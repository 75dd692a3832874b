// Small dense linear algebra on row-major Float64Arrays: Gram matrices of row sets and a symmetric Jacobi
// eigen-solver. The matrices here are N×N with N = the number of token rows of an edit (tens), so plain O(N³)
// loops are instant and need no GPU.

/** A row-major matrix view: `rows` rows of `cols` numbers. */
export interface Rows {
  data: ArrayLike<number>;
  rows: number;
  cols: number;
}

export function rowsOf(data: ArrayLike<number>, rows: number, cols: number): Rows {
  if (data.length !== rows * cols) throw new Error(`expected ${rows}×${cols} = ${rows * cols} numbers, got ${data.length}`);
  return { data, rows, cols };
}

/** Dot product of row i of A with row j of B (same column count). */
export function rowDot(a: Rows, i: number, b: Rows, j: number): number {
  let s = 0;
  const ai = i * a.cols;
  const bj = j * b.cols;
  for (let k = 0; k < a.cols; k++) s += a.data[ai + k] * b.data[bj + k];
  return s;
}

/** C = A Bᵀ (N_a × N_b): C_ij = a_i · b_j. With B = A this is the Gram matrix of A's rows. */
export function crossGram(a: Rows, b: Rows): Float64Array {
  if (a.cols !== b.cols) throw new Error(`crossGram: ${a.cols} vs ${b.cols} columns`);
  const c = new Float64Array(a.rows * b.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < b.rows; j++) c[i * b.rows + j] = rowDot(a, i, b, j);
  return c;
}

export function gram(a: Rows): Float64Array {
  const n = a.rows;
  const g = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const v = rowDot(a, i, a, j);
      g[i * n + j] = v;
      g[j * n + i] = v;
    }
  }
  return g;
}

/** Euclidean norm of each row. */
export function rowNorms(a: Rows): Float64Array {
  return Float64Array.from({ length: a.rows }, (_, i) => Math.sqrt(rowDot(a, i, a, i)));
}

export interface SymmetricEigen {
  /** eigenvalues, descending */
  values: Float64Array;
  /** n×n row-major; column k is the eigenvector of values[k] */
  vectors: Float64Array;
}

/**
 * Eigen-decomposition of a symmetric n×n matrix by cyclic Jacobi rotations. Each rotation zeroes one off-diagonal
 * pair exactly; sweeps repeat until the off-diagonal mass is negligible next to the diagonal. Robust for the
 * positive semi-definite, often rank-deficient Gram products used here (no pivoting subtleties, no iteration on
 * tiny eigenvalues), and accurate to a few ulps of the largest eigenvalue.
 */
export function jacobiEigen(matrix: ArrayLike<number>, n: number, maxSweeps = 64): SymmetricEigen {
  if (matrix.length !== n * n) throw new Error(`jacobiEigen: expected ${n}×${n}`);
  const a = Float64Array.from(matrix);
  // Symmetrise: callers pass products that are symmetric only up to rounding.
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = a[j * n + i] = 0.5 * (a[i * n + j] + a[j * n + i]);
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    let diag = 0;
    for (let i = 0; i < n; i++) {
      diag += a[i * n + i] * a[i * n + i];
      for (let j = i + 1; j < n; j++) off += a[i * n + j] * a[i * n + j];
    }
    if (off <= 1e-30 * diag || off === 0) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const app = a[p * n + p];
        const aqq = a[q * n + q];
        // Rotation angle that zeroes a_pq (Golub & Van Loan's stable form: t = tan θ with |θ| ≤ π/4).
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k * n + p];
          const akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p * n + k];
          const aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p];
          const vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  const values = Float64Array.from(order, (i) => a[i * n + i]);
  const vectors = new Float64Array(n * n);
  order.forEach((src, dst) => {
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src];
  });
  return { values, vectors };
}
