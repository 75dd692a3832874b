// The editing playground's state: the edit form, the checks (paraphrases, neighbours), the latest edit report, the
// history, and what is kept across reloads (persist.ts) or shared by link (share-link.ts). Requests go to the same
// model worker as the rest of the page (app-store.ts owns it).
import { create } from 'zustand';
import { parseBenchmarkCases, parseFactsIndex, parseRelationRates, type EditEvidence, type FactsIndex } from '../eval/suggest';
import { WorkerRequestError } from '../worker/client';
import type { EditingInfo, EditMethod, EditMethodChoice, EditReport, HistoryRecheck, HistoryScan, HistoryView, KnowledgeScan, ModelSummary } from '../worker/protocol';
import { currentWorker, useApp } from './app-store';
import { DamagedStoreError, forget, loadSaved, save } from './persist';
import { decodeSharedEdits, SHARE_PARAM, sharedFromHistory, shareUrl } from './share-link';
import { HISTORY_LIMITS } from '../session/history';
import { MAX_FACTS_PER_EDIT } from '../session/facts';
import { formatBytes } from '../worker/memory-check';

export type RunPhase = 'idle' | 'running' | 'ready' | 'error';

export interface EditState {
  /** the loaded model's label (persistence key) and what can edit it; null until a model is ready */
  modelKey: string | null;
  editing: EditingInfo | null;
  facts: FactsIndex | null;
  /** how MEND did on the model's held-out benchmark (eval.json, benchmark.json beside it); null when unknown */
  evidence: EditEvidence | null;
  prompt: string;
  target: string;
  /** further facts of a batch edit, applied in the same update as prompt → target (form rows, possibly unfinished) */
  moreFacts: Array<{ prompt: string; target: string }>;
  method: EditMethodChoice;
  maxNewTokens: number;
  /** suggestions the user switched off, by prompt */
  unchecked: Record<string, true>;
  ownParaphrases: string[];
  ownNeighbours: string[];
  run: { phase: RunPhase; message?: string; step?: number; steps?: number; report?: EditReport; error?: string };
  history: HistoryView | null;
  historyBusy: boolean;
  /** the latest recheck of every applied edit on the weights as they were then (shown while the history is unchanged) */
  recheck: { phase: RunPhase; result?: HistoryRecheck; error?: string };
  /**
   * the knowledge scan of an edit (shown with that edit's results): one result per method scanned, the kept edit's
   * first (with "both methods", the fine-tuning run's second)
   */
  scan: { phase: RunPhase; entryId?: number; message?: string; results?: KnowledgeScan[]; error?: string };
  /** the knowledge scan of every applied edit together, against the original model (shown while the history is unchanged) */
  historyScan: { phase: RunPhase; message?: string; result?: HistoryScan; error?: string };
  /** what the model now says to the last edited prompt, after undo/redo/revert/import */
  now?: { prompt: string; text: string; pending: boolean };
  /** one-line messages: a damaged store that was reset, a refused link or file, ... */
  notice?: { kind: 'info' | 'error'; text: string };
  /** bumped each time the state reached IndexedDB (the page shows it as a hook, tests wait for it before a reload) */
  saves: number;

  setForm(patch: Partial<Pick<EditState, 'prompt' | 'target' | 'method' | 'maxNewTokens'>>): void;
  /** batch rows: add one (empty, or the fact given), change one, remove one */
  addFact(fact?: { prompt: string; target: string }): void;
  setFact(index: number, patch: Partial<{ prompt: string; target: string }>): void;
  removeFact(index: number): void;
  toggleSuggestion(prompt: string, on: boolean): void;
  addOwn(kind: 'paraphrase' | 'neighbour', prompt: string): void;
  removeOwn(kind: 'paraphrase' | 'neighbour', prompt: string): void;
  /** Applies the form's edit; moreOriginals: the further facts' original answers where the page knows them (facts.json). */
  applyEdit(paraphrases: string[], neighbours: string[], originalAnswer?: string, moreOriginals?: Array<string | undefined>): Promise<void>;
  undo(): Promise<void>;
  redo(): Promise<void>;
  revertAll(): Promise<void>;
  clearHistory(): Promise<void>;
  /** A history file the user chose (a Blob is size-checked before it is read: a huge file is never loaded). */
  importFile(file: string | Blob): Promise<void>;
  shareLink(): string | null;
  /** Asks every applied edit's facts again on the current weights: do they still give their targets? */
  recheckHistory(): Promise<void>;
  /**
   * Asks hundreds of the model's taught facts before and after the latest applied edit (src/eval/scan.ts), once per
   * method in `methods`: the entry's own, then e.g. the fine-tuning edit of the same facts a comparison ran.
   */
  scanKnowledge(entryId: number, methods: EditMethod[]): Promise<void>;
  /** The same scan for every applied edit together: the facts index on the original weights and on the weights now. */
  scanHistory(): Promise<void>;
  /**
   * Reverts every applied edit (they stay redoable until the next edit) and puts their facts into the form as one
   * batch: the same facts as one MEND update instead of a sequence of edits (docs/eval.md "Sequential edits").
   */
  batchFromHistory(): Promise<void>;
  dismissNotice(): void;
}

/** Nothing running or measured: a fresh page, or a model that was just replaced (its results would be about the old one). */
const idleRuns = () => ({
  run: { phase: 'idle' as const }, recheck: { phase: 'idle' as const }, scan: { phase: 'idle' as const }, historyScan: { phase: 'idle' as const },
});

const message = (e: unknown) => (e instanceof WorkerRequestError ? e.info.message : e instanceof Error ? e.message : String(e));
let modelTicket = 0;

export const useEdit = create<EditState>()((set, get) => {
  function persist(): void {
    const { modelKey, history, ownParaphrases, ownNeighbours } = get();
    if (!modelKey) return;
    const json = history && history.items.length ? history.json : null;
    save(modelKey, { history: json, ownParaphrases, ownNeighbours }).then(() => set({ saves: get().saves + 1 })).catch((e) =>
      set({ notice: { kind: 'error', text: `Could not save the history in this browser: ${message(e)}` } }));
  }

  /** After a history change, ask the model again for the last edited prompt, so the effect of undo is visible. */
  async function refreshNow(): Promise<void> {
    const c = currentWorker();
    const h = get().history;
    const last = get().run.report?.request.prompt ?? h?.items[h.items.length - 1]?.prompt;
    if (!c || !last) return set({ now: undefined });
    set({ now: { prompt: last, text: get().now?.prompt === last ? get().now!.text : '', pending: true } });
    try {
      const r = await c.request({ type: 'generate', prompt: last, options: { maxNewTokens: get().maxNewTokens, temperature: 0, topK: 0 } });
      if (get().now?.prompt === last) set({ now: { prompt: last, text: r.completion, pending: false } });
    } catch (e) {
      set({ now: undefined, notice: { kind: 'error', text: message(e) } });
    }
  }

  /** Runs a history request; returns null when it worked, else the reason (also shown as a notice unless quiet). */
  async function historyAction(fn: () => Promise<HistoryView>, what: string, quiet = false): Promise<string | null> {
    set({ historyBusy: true });
    try {
      const history = await fn();
      set({ history, historyBusy: false });
      persist();
      void refreshNow();
      return null;
    } catch (e) {
      set({ historyBusy: false });
      if (!quiet) set({ notice: { kind: 'error', text: `${what}: ${message(e)}` } });
      return message(e);
    }
  }

  /**
   * The model's held-out evaluation, read beside a same-origin model folder (both files optional): which example
   * edits MEND is known to pass or miss, and its success rate per relation. Hub models go without: the worker's
   * rules for what may be read from the Hub are not repeated here.
   */
  async function loadEvidence(ticket: number): Promise<void> {
    const source = useApp.getState().model.source;
    if (source?.kind !== 'url') return;
    const base = new URL(source.url, location.href);
    if (base.origin !== location.origin) return;
    const read = async (name: string): Promise<unknown> => {
      try {
        const r = await fetch(new URL(name, base));
        return r.ok ? await r.json() : null;
      } catch {
        return null; // missing or not JSON: the page simply has no evidence to show
      }
    };
    const [evalJson, benchmark] = await Promise.all([read('eval.json'), read('benchmark.json')]);
    if (ticket !== modelTicket) return;
    const evidence = { relationRates: parseRelationRates(evalJson), cases: parseBenchmarkCases(benchmark) };
    set({ evidence: Object.keys(evidence.relationRates).length || evidence.cases.length ? evidence : null });
  }

  /** A model became ready: take its editing info, then restore the link's or the saved edits. */
  async function onModelReady(summary: ModelSummary): Promise<void> {
    const ticket = ++modelTicket;
    const key = summary.label;
    let facts: FactsIndex | null = null;
    let factsNote: string | undefined;
    try {
      facts = summary.editing?.facts ? parseFactsIndex(summary.editing.facts) : null;
    } catch (e) {
      factsNote = `${message(e)} — suggestions are off for this model.`;
    }
    set({
      modelKey: key, editing: summary.editing ?? null, facts, evidence: null, history: null, now: undefined, ...idleRuns(),
      notice: factsNote ? { kind: 'error', text: factsNote } : undefined,
    });
    if (!summary.editing) return;
    if (facts) void loadEvidence(ticket);
    const c = currentWorker()!;
    let saved = null;
    try {
      saved = await loadSaved(key);
    } catch (e) {
      if (!(e instanceof DamagedStoreError)) throw e;
      await forget(key);
      set({ notice: { kind: 'error', text: `The history saved in this browser was damaged (${e.message}) and has been reset.` } });
    }
    if (ticket !== modelTicket) return;
    if (saved) set({ ownParaphrases: saved.ownParaphrases, ownNeighbours: saved.ownNeighbours });

    const param = new URLSearchParams(location.search).get(SHARE_PARAM);
    if (param !== null) {
      // A link's edits replace the saved ones (that is what opening a link means); the parameter is then dropped
      // from the address bar so a reload does not replay it over later work.
      const url = new URL(location.href);
      url.searchParams.delete(SHARE_PARAM);
      history.replaceState(null, '', url.href);
      try {
        const shared = decodeSharedEdits(param);
        const failed = await historyAction(() => c.request({ type: 'importShared', shared }), 'The share link could not be replayed');
        if (!failed) {
          set({ notice: { kind: 'info', text: `Replayed ${shared.edits.length} edit${shared.edits.length === 1 ? '' : 's'} from the share link.` } });
          return;
        }
      } catch (e) {
        set({ notice: { kind: 'error', text: message(e) } });
      }
      // a link that cannot be replayed changes nothing: the saved history (if any) is restored as usual
    }
    if (saved?.history) {
      const failed = await historyAction(() => c.request({ type: 'importHistory', json: saved!.history }), '', true);
      if (failed) {
        await forget(key);
        set({ notice: { kind: 'error', text: `The history saved in this browser could not be restored (${failed}); it has been reset.` } });
        await historyAction(() => c.request({ type: 'clearHistory' }), 'Reset');
      }
      return;
    }
    await historyAction(() => c.request({ type: 'clearHistory' }), 'History');
  }

  let lastSummary: ModelSummary | undefined;
  useApp.subscribe((s) => {
    const summary = s.model.phase === 'ready' ? s.model.summary : undefined;
    if (summary === lastSummary) return;
    lastSummary = summary;
    if (summary) void onModelReady(summary);
    else {
      modelTicket++;
      set({ modelKey: null, editing: null, facts: null, evidence: null, history: null, now: undefined, ...idleRuns() });
    }
  });

  return {
    modelKey: null,
    editing: null,
    facts: null,
    evidence: null,
    prompt: '',
    target: '',
    moreFacts: [],
    method: 'mend',
    maxNewTokens: 6,
    unchecked: {},
    ownParaphrases: [],
    ownNeighbours: [],
    history: null,
    historyBusy: false,
    ...idleRuns(),
    saves: 0,

    setForm(patch) {
      set(patch);
    },
    addFact(fact) {
      if (get().moreFacts.length + 1 >= MAX_FACTS_PER_EDIT) return;
      set({ moreFacts: [...get().moreFacts, fact ?? { prompt: '', target: '' }] });
    },
    setFact(index, patch) {
      set({ moreFacts: get().moreFacts.map((f, i) => (i === index ? { ...f, ...patch } : f)) });
    },
    removeFact(index) {
      set({ moreFacts: get().moreFacts.filter((_, i) => i !== index) });
    },
    toggleSuggestion(prompt, on) {
      const unchecked = { ...get().unchecked };
      if (on) delete unchecked[prompt];
      else unchecked[prompt] = true;
      set({ unchecked });
    },
    addOwn(kind, prompt) {
      const p = prompt.trim();
      if (!p) return;
      const field = kind === 'paraphrase' ? 'ownParaphrases' : 'ownNeighbours';
      if (get()[field].includes(p)) return;
      set({ [field]: [...get()[field], p] } as Partial<EditState>);
      persist();
    },
    removeOwn(kind, prompt) {
      const field = kind === 'paraphrase' ? 'ownParaphrases' : 'ownNeighbours';
      set({ [field]: get()[field].filter((x) => x !== prompt) } as Partial<EditState>);
      persist();
    },

    async applyEdit(paraphrases, neighbours, originalAnswer, moreOriginals = []) {
      const c = currentWorker();
      const { prompt, target, method, maxNewTokens } = get();
      if (!c || get().run.phase === 'running') return;
      const moreFacts = get().moreFacts.map((f, i) => ({ ...f, originalAnswer: moreOriginals[i] }));
      set({ run: { phase: 'running', message: 'Starting…' }, notice: undefined, scan: { phase: 'idle' } });
      try {
        const report = await c.request(
          { type: 'edit', request: { prompt, target, moreFacts, method, paraphrases, neighbours, maxNewTokens, originalAnswer } },
          (p) => {
            if (p.stage === 'edit') set({ run: { ...get().run, message: p.message, step: p.step, steps: p.steps } });
          },
        );
        set({ run: { phase: 'ready', report }, history: report.history, now: undefined });
        persist();
      } catch (e) {
        set({ run: { phase: 'error', error: message(e) } });
      }
    },

    undo: async () => void (await historyAction(() => currentWorker()!.request({ type: 'undo' }), 'Undo failed')),
    redo: async () => void (await historyAction(() => currentWorker()!.request({ type: 'redo' }), 'Redo failed')),
    revertAll: async () => void (await historyAction(() => currentWorker()!.request({ type: 'revertAll' }), 'Revert failed')),
    clearHistory: async () => void (await historyAction(() => currentWorker()!.request({ type: 'clearHistory' }), 'Clearing failed')),

    async importFile(file) {
      if (typeof file !== 'string' && file.size > HISTORY_LIMITS.bytes) {
        const text = `The file could not be imported: it is ${formatBytes(file.size)}; at most ${formatBytes(HISTORY_LIMITS.bytes)} can be imported.`;
        return set({ notice: { kind: 'error', text } });
      }
      const text = typeof file === 'string' ? file : await file.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        return set({ notice: { kind: 'error', text: 'That file is not JSON: choose a history file exported from MEND Lab.' } });
      }
      const failed = await historyAction(() => currentWorker()!.request({ type: 'importHistory', json }), 'The file could not be imported');
      if (!failed) {
        const n = get().history?.items.length ?? 0;
        set({ notice: { kind: 'info', text: `Imported ${n} edit${n === 1 ? '' : 's'}.` } });
      }
    },

    async recheckHistory() {
      const c = currentWorker();
      if (!c || get().recheck.phase === 'running') return;
      const ticket = modelTicket; // an answer about a model that has since been replaced is dropped
      set({ recheck: { phase: 'running' } });
      try {
        const result = await c.request({ type: 'recheckHistory', maxNewTokens: get().maxNewTokens });
        if (ticket === modelTicket) set({ recheck: { phase: 'ready', result } });
      } catch (e) {
        if (ticket === modelTicket) set({ recheck: { phase: 'error', error: message(e) } });
      }
    },

    async scanKnowledge(entryId, methods) {
      const c = currentWorker();
      if (!c || get().scan.phase === 'running' || methods.length === 0) return;
      const ticket = modelTicket; // an answer about a model that has since been replaced is dropped
      const results: KnowledgeScan[] = [];
      set({ scan: { phase: 'running', entryId, message: 'Starting…' } });
      for (const method of methods) {
        const who = methods.length > 1 ? `${method === 'mend' ? 'MEND' : 'Fine-tuning'}: ` : '';
        try {
          const result = await c.request({ type: 'scanKnowledge', entryId, method }, (p) => {
            if (p.stage === 'edit' && ticket === modelTicket) set({ scan: { ...get().scan, message: who + p.message } });
          });
          results.push(result);
        } catch (e) {
          // what was measured before the failure stays readable beside the reason
          if (ticket === modelTicket) set({ scan: { phase: 'error', entryId, results, error: who + message(e) } });
          return;
        }
      }
      if (ticket === modelTicket) set({ scan: { phase: 'ready', entryId, results } });
    },

    async scanHistory() {
      const c = currentWorker();
      if (!c || get().historyScan.phase === 'running') return;
      const ticket = modelTicket;
      set({ historyScan: { phase: 'running', message: 'Starting…' } });
      try {
        const result = await c.request({ type: 'scanHistory' }, (p) => {
          if (p.stage === 'edit' && ticket === modelTicket) set({ historyScan: { ...get().historyScan, message: p.message } });
        });
        if (ticket === modelTicket) set({ historyScan: { phase: 'ready', result } });
      } catch (e) {
        if (ticket === modelTicket) set({ historyScan: { phase: 'error', error: message(e) } });
      }
    },

    async batchFromHistory() {
      const items = (get().history?.items ?? []).filter((i) => i.applied);
      // a prompt edited more than once keeps its latest target, in the place it was first edited
      const latest = new Map<string, string>();
      for (const i of items) for (const f of [{ prompt: i.prompt, target: i.target }, ...i.more]) latest.set(f.prompt, f.target);
      const facts = [...latest].map(([prompt, target]) => ({ prompt, target }));
      if (facts.length < 2) return;
      const kept = facts.slice(-MAX_FACTS_PER_EDIT); // the most recent ones, when there are more than one edit holds
      const failed = await historyAction(() => currentWorker()!.request({ type: 'revertAll' }), 'Revert failed');
      if (failed) return;
      set({ prompt: kept[0].prompt, target: kept[0].target, moreFacts: kept.slice(1), run: { phase: 'idle' } });
      const left = facts.length - kept.length;
      set({
        notice: {
          kind: 'info',
          text: `The model is back to its original weights and the form holds the ${kept.length} edited facts as one batch edit`
            + `${left ? ` (the ${left} oldest left out: one edit holds at most ${MAX_FACTS_PER_EDIT})` : ''}. Apply it to edit them in one update; until then, Redo brings the edits back.`,
        },
      });
    },

    shareLink() {
      const shared = sharedFromHistory(get().history?.json);
      if (!shared) return null;
      try {
        return shareUrl(location.href, shared);
      } catch (e) {
        set({ notice: { kind: 'error', text: message(e) } });
        return null;
      }
    },

    dismissNotice() {
      set({ notice: undefined });
    },
  };
});
