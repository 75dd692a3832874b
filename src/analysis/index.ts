// Numerics for showing what an edit did to the weights (pure TypeScript, no tfjs, no React).
export { crossGram, gram, jacobiEigen, rowDot, rowNorms, rowsOf } from './linalg';
export type { Rows, SymmetricEigen } from './linalg';
export {
  heatmapSlice, numericalRank, RANK_TOLERANCE, tokenContributions, updateCosine, updateEntry, updateInner, updateNorm,
  updateSingularValues,
} from './update';
export type { HeatmapSlice, TokenContribution, UpdateRows } from './update';
