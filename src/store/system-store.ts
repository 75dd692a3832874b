// Page-wide notices about faults the app recovered from (hardening, issue 7): a GPU that was reset, a GPU out of
// memory, a saved store that was damaged (with a download of what could be read). Shown by src/ui/SystemNotice.tsx.
// Kept apart from app-store.ts so persist.ts (plain IndexedDB code, unit-tested in Node) can report without
// importing the worker.
import { create } from 'zustand';

export interface SystemNotice {
  /** working: a recovery is under way; info: it worked; error: it did not, or something was lost */
  kind: 'working' | 'info' | 'error';
  text: string;
}

/** What could still be read from a damaged saved record, offered as a download before it is reset. */
export interface Salvage {
  /** the record's key (the model's label) */
  key: string;
  /** why the record was reset */
  reason: string;
  /** pretty-printed JSON: {"format": "mendlab-salvage", key, reason, savedAt, record} */
  json: string;
}

interface SystemState {
  notice: SystemNotice | null;
  salvage: Salvage | null;
  setNotice(notice: SystemNotice | null): void;
  setSalvage(salvage: Salvage | null): void;
}

export const useSystem = create<SystemState>()((set) => ({
  notice: null,
  salvage: null,
  setNotice: (notice) => set({ notice }),
  setSalvage: (salvage) => set({ salvage }),
}));
