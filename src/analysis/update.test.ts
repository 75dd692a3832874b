// The Gram-matrix shortcuts against brute force: the explicit ΔW = Σ_i x_iᵀ δ_i and its singular values by plain
// power iteration with deflation on ΔWᵀΔW (no shared code with the Jacobi path), on small random cases.
import { describe, expect, it } from 'vitest';
import { jacobiEigen, rowsOf } from './linalg';
import {
  heatmapSlice, numericalRank, tokenContributions, updateCosine, updateEntry, updateNorm, updateSingularValues,
  type UpdateRows,
} from './update';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
}

function randomRows(n: number, inDim: number, outDim: number, seed: number, deltaScale = 1e-3): UpdateRows {
  const r = rng(seed);
  return {
    x: rowsOf(Float32Array.from({ length: n * inDim }, () => r()), n, inDim),
    delta: rowsOf(Float32Array.from({ length: n * outDim }, () => deltaScale * r()), n, outDim),
  };
}

/** ΔW[r][c] = Σ_i x[i][r] δ[i][c], the obvious way. */
function explicitDeltaW(u: UpdateRows): number[][] {
  const w = Array.from({ length: u.x.cols }, () => new Array<number>(u.delta.cols).fill(0));
  for (let i = 0; i < u.x.rows; i++)
    for (let r = 0; r < u.x.cols; r++)
      for (let c = 0; c < u.delta.cols; c++) w[r][c] += u.x.data[i * u.x.cols + r] * u.delta.data[i * u.delta.cols + c];
  return w;
}

function frobenius(w: number[][]): number {
  return Math.sqrt(w.flat().reduce((s, v) => s + v * v, 0));
}

/** Singular values of W by power iteration on WᵀW, deflating each found component. */
function powerSingularValues(w: number[][], count: number): number[] {
  const m = w[0].length;
  const ata = Array.from({ length: m }, (_, a) => Array.from({ length: m }, (_, b) => w.reduce((s, row) => s + row[a] * row[b], 0)));
  const out: number[] = [];
  const r = rng(99);
  for (let k = 0; k < count; k++) {
    let v = Array.from({ length: m }, () => r());
    let lambda = 0;
    for (let it = 0; it < 20000; it++) {
      const next = ata.map((row) => row.reduce((s, x, j) => s + x * v[j], 0));
      const norm = Math.hypot(...next);
      if (norm === 0) break;
      v = next.map((x) => x / norm);
      lambda = norm;
    }
    out.push(Math.sqrt(Math.max(0, lambda)));
    for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) ata[a][b] -= lambda * v[a] * v[b];
  }
  return out;
}

describe('jacobiEigen', () => {
  it('diagonalises a random symmetric matrix: A v = λ v, V orthonormal, values descending', () => {
    const n = 7;
    const r = rng(3);
    const a = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i * n + j] = a[j * n + i] = r();
    const { values, vectors } = jacobiEigen(a, n);
    for (let k = 0; k < n; k++) {
      if (k > 0) expect(values[k]).toBeLessThanOrEqual(values[k - 1]);
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += a[i * n + j] * vectors[j * n + k];
        expect(av).toBeCloseTo(values[k] * vectors[i * n + k], 10);
      }
      for (let l = 0; l < n; l++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += vectors[i * n + k] * vectors[i * n + l];
        expect(dot).toBeCloseTo(k === l ? 1 : 0, 10);
      }
    }
  });
});

describe('update numerics from the rows', () => {
  const cases: Array<[string, UpdateRows, number]> = [
    // [name, rows, true rank]
    ['N < in, out', randomRows(3, 5, 7, 1), 3],
    ['N > in (rank capped by in)', randomRows(6, 4, 9, 2), 4],
    ['N > out (rank capped by out)', randomRows(5, 8, 3, 3), 3],
  ];
  // Two rows that are multiples of others: 5 tokens but only 3 independent x rows → rank 3.
  const dep = randomRows(5, 6, 7, 4);
  const xd = Float32Array.from(dep.x.data);
  for (let k = 0; k < 6; k++) {
    xd[3 * 6 + k] = 2 * xd[0 * 6 + k];
    xd[4 * 6 + k] = -0.5 * xd[1 * 6 + k];
  }
  cases.push(['dependent x rows', { x: rowsOf(xd, 5, 6), delta: dep.delta }, 3]);

  for (const [name, u, rank] of cases) {
    it(`${name}: norm, singular values, rank, entries and shares match the explicit ΔW`, () => {
      const w = explicitDeltaW(u);
      const fro = frobenius(w);
      expect(updateNorm(u)).toBeCloseTo(fro, 12);
      expect(Math.abs(updateNorm(u) - fro) / fro).toBeLessThan(1e-9);

      const sv = updateSingularValues(u);
      expect(sv.length).toBe(u.x.rows);
      const ref = powerSingularValues(w, rank);
      for (let k = 0; k < rank; k++) expect(Math.abs(sv[k] - ref[k]) / ref[0]).toBeLessThan(1e-6);
      for (let k = rank; k < sv.length; k++) expect(sv[k] / sv[0]).toBeLessThan(1e-6);
      expect(numericalRank(sv)).toBe(rank);
      // Σσ² = ‖ΔW‖_F²
      expect(sv.reduce((s, v) => s + v * v, 0)).toBeCloseTo(fro * fro, 14);

      expect(updateEntry(u, 1, 2)).toBeCloseTo(w[1][2], 14);

      // Shares: ⟨piece_i, ΔW⟩ / ‖ΔW‖², computed here from explicit matrices; they sum to 1.
      const contrib = tokenContributions(u, -2);
      let sum = 0;
      contrib.forEach((t, i) => {
        const piece = explicitDeltaW({ x: rowsOf(Array.from(u.x.data).slice(i * u.x.cols, (i + 1) * u.x.cols), 1, u.x.cols),
          delta: rowsOf(Array.from(u.delta.data).slice(i * u.delta.cols, (i + 1) * u.delta.cols), 1, u.delta.cols) });
        const inner = piece.flat().reduce((s, v, k) => s + v * w.flat()[k], 0);
        expect(t.share).toBeCloseTo(inner / (fro * fro), 10);
        expect(t.pieceNorm).toBeCloseTo(2 * frobenius(piece), 12);
        sum += t.share;
      });
      expect(sum).toBeCloseTo(1, 12);
    });
  }

  it('cosine of an update with itself is 1, with its negative −1, and matches the explicit one otherwise', () => {
    const a = randomRows(4, 5, 6, 10);
    const b = randomRows(3, 5, 6, 11);
    const neg: UpdateRows = { x: a.x, delta: rowsOf(Array.from(a.delta.data, (v) => -v), a.delta.rows, a.delta.cols) };
    expect(updateCosine(a, a)).toBeCloseTo(1, 12);
    expect(updateCosine(a, neg)).toBeCloseTo(-1, 12);
    const wa = explicitDeltaW(a).flat();
    const wb = explicitDeltaW(b).flat();
    const cos = wa.reduce((s, v, k) => s + v * wb[k], 0) / (Math.hypot(...wa) * Math.hypot(...wb));
    expect(updateCosine(a, b)).toBeCloseTo(cos, 12);
  });

  it('heatmapSlice picks the largest rows/columns, includes the largest entry, and holds scaled ΔW values', () => {
    const u = randomRows(4, 40, 30, 5);
    const w = explicitDeltaW(u);
    const slice = heatmapSlice(u, 6, 3);
    expect(slice.rows).toHaveLength(6);
    expect(slice.cols).toHaveLength(6);
    let max = 0;
    let at: [number, number] = [0, 0];
    w.forEach((row, r) => row.forEach((v, c) => {
      if (Math.abs(v) > max) {
        max = Math.abs(v);
        at = [r, c];
      }
    }));
    expect(slice.argmax).toEqual(at);
    expect(slice.maxAbs).toBeCloseTo(3 * max, 12);
    expect(slice.rows).toContain(at[0]);
    expect(slice.cols).toContain(at[1]);
    // The 5 largest-norm rows are all in (6 slots, at most one replaced by the argmax row).
    const rowNorm = w.map((row) => Math.hypot(...row));
    const top5 = rowNorm.map((v, i) => [v, i]).sort((a, b) => b[0] - a[0]).slice(0, 5).map(([, i]) => i);
    for (const r of top5) expect(slice.rows).toContain(r);
    expect([...slice.rows]).toEqual([...slice.rows].sort((a, b) => a - b));
    slice.rows.forEach((r, a) => slice.cols.forEach((c, b) => expect(slice.values[a * 6 + b]).toBeCloseTo(3 * w[r][c], 12)));
  });

  it('an all-zero update has norm 0, rank 0 and zero shares', () => {
    const u: UpdateRows = { x: rowsOf(new Float32Array(6), 2, 3), delta: rowsOf(new Float32Array(8), 2, 4) };
    expect(updateNorm(u)).toBe(0);
    expect(numericalRank(updateSingularValues(u))).toBe(0);
    expect(tokenContributions(u).map((t) => t.share)).toEqual([0, 0]);
  });
});
