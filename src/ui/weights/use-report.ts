// The hook both views use: fetch the report whenever the applied edits change (a new edit, undo, redo, import,
// another model). By default the key comes from the playground's edit store; a caller may pass its own.
import { useEffect } from 'react';
import { useEdit } from '../../store/edit-store';
import { useWeights, type WeightsState } from './store';

/** "model|applied entry ids": changes exactly when the latest applied MEND edit may have changed. */
function appliedKey(s: ReturnType<typeof useEdit.getState>): string | null {
  if (!s.modelKey || !s.history) return null;
  return `${s.modelKey}|${s.history.items.filter((i) => i.applied).map((i) => i.id).join(',')}`;
}

export function useWeightsReport(historyKey?: string | null): WeightsState {
  const fromStore = useEdit(appliedKey);
  const key = historyKey !== undefined ? historyKey : fromStore;
  const state = useWeights();
  const { ensure, clear } = state;
  useEffect(() => {
    if (key != null) void ensure(key);
    else clear();
  }, [key, ensure, clear]);
  return state;
}

/** The index of the weight to show in detail by default: the one the edit changed most, relative to its size. */
export function mostChangedWeight(weights: Array<{ relativeUpdate: number }>): number {
  let best = 0;
  weights.forEach((w, i) => {
    if (w.relativeUpdate > weights[best].relativeUpdate) best = i;
  });
  return best;
}
