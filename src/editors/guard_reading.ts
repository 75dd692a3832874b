// What MEND's pass-1 perplexity guard (editor_config.json first_pass_guard) measured on an edit, read back from the
// edit's stats (MendEditor.firstPass writes them). One reader for the page, the weights panel and the CLI. No tfjs
// here: the CLI imports it before any backend starts.

export interface GuardReading {
  /** relative perplexity rise on the guard's prose at the editor's own step */
  riseFull: number;
  /** the same at the step kept; null when the last halving allowed was kept unchecked */
  riseKept: number | null;
  /** the guard's max_increase */
  limit: number;
}

/** The guard's reading of an edit, or null when no guard ran (fine-tuning, several facts, an editor without one). */
export function guardReading(stats: Record<string, number>): GuardReading | null {
  if (stats.guardRiseFull === undefined || stats.guardLimit === undefined) return null;
  return { riseFull: stats.guardRiseFull, riseKept: stats.guardRiseKept ?? null, limit: stats.guardLimit };
}
