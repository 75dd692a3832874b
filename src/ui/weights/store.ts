// The weights report of the latest applied MEND edit, shared by <WeightsPanel/> and <Lesson/>: a tiny store of its
// own so the playground's store stays untouched. It asks the worker only when the edit history changed since the
// last answer (`key`), and a newer request always wins over a slower older one.
import { create } from 'zustand';
import { currentWorker } from '../../store/app-store';
import type { WeightsReport } from '../../worker/weights-protocol';

export interface WeightsState {
  phase: 'idle' | 'running' | 'ready' | 'error';
  /** the history state the report (or the running request) is for */
  key: string | null;
  report: WeightsReport | null;
  error?: string;
  /** (re)load the report for history state `key`; no-op when it is already loaded or loading */
  ensure(key: string): Promise<void>;
  /** forget the report (no model, or another one is loading); a pending answer is dropped */
  clear(): void;
}

let ticket = 0;

export const useWeights = create<WeightsState>()((set, get) => ({
  phase: 'idle',
  key: null,
  report: null,
  clear() {
    if (get().key === null && get().report === null) return;
    ticket++;
    set({ phase: 'idle', key: null, report: null, error: undefined });
  },
  async ensure(key) {
    if (get().key === key && get().phase !== 'error') return;
    const client = currentWorker();
    if (!client) return;
    const mine = ++ticket;
    set({ phase: 'running', key, error: undefined });
    try {
      const report = await client.request({ type: 'weightsReport' });
      if (mine === ticket) set({ phase: 'ready', report });
    } catch (e) {
      if (mine === ticket) set({ phase: 'error', report: null, error: e instanceof Error ? e.message : String(e) });
    }
  },
}));
