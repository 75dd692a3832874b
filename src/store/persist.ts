// What survives a reload, per model: the edit history (session/history.ts JSON) and the user's own paraphrases and
// neighbours, kept in IndexedDB. A record that cannot be read is reported and deleted, never a blank page; before it
// is deleted, whatever could still be read is kept as a download (useSystem().salvage, shown by SystemNotice.tsx).
//
//   database "mendlab", object store "playground", key = the model's label (its folder URL or Hub id):
//   {"version": 1, "history": <HistoryJSON> | null, "ownParaphrases": ["..."], "ownNeighbours": ["..."]}
//
// Crash safety: each save is one put() in one IndexedDB transaction, which the browser commits atomically, and the
// page saves only after the worker has finished a change. A tab closed (or a worker killed) mid-edit therefore leaves
// the previous record whole, and the interrupted edit simply is not in it (e2e/hardening-persistence.spec.ts).
import { useSystem } from './system-store';

const DB_NAME = 'mendlab';
const STORE = 'playground';
export const SAVED_VERSION = 1;

export interface SavedState {
  version: typeof SAVED_VERSION;
  history: unknown | null;
  ownParaphrases: string[];
  ownNeighbours: string[];
}

export class DamagedStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DamagedStoreError';
  }
}

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** Checks a stored record's shape (the history's own content is validated by the worker on import). */
export function parseSavedState(v: unknown): SavedState | null {
  if (v === undefined || v === null) return null;
  const o = v as Partial<SavedState>;
  if (typeof v !== 'object' || o.version !== SAVED_VERSION) throw new DamagedStoreError('the saved record has an unknown format');
  if (!isStringList(o.ownParaphrases) || !isStringList(o.ownNeighbours)) throw new DamagedStoreError('the saved paraphrases/neighbours are not lists of text');
  if (o.history !== null && (typeof o.history !== 'object' || Array.isArray(o.history))) throw new DamagedStoreError('the saved history is not an object');
  return { version: SAVED_VERSION, history: o.history ?? null, ownParaphrases: o.ownParaphrases, ownNeighbours: o.ownNeighbours };
}

function openDb(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') return reject(new Error('this browser offers no IndexedDB'));
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => {
      if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened'));
    req.onblocked = () => reject(new Error('IndexedDB is blocked by another tab'));
  });
}

async function withStore<T>(mode: IDBTransactionMode, fn: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const db = await openDb();
  try {
    return await new Promise<T>((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error ?? req.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  } finally {
    db.close();
  }
}

/** The saved state for a model, or null. Throws DamagedStoreError when the record exists but is unreadable. */
export async function loadSaved(key: string): Promise<SavedState | null> {
  let raw: unknown;
  try {
    raw = await withStore('readonly', (s) => s.get(key));
  } catch (e) {
    const reason = `the browser storage could not be read (${(e as Error).message})`;
    keepSalvage(key, reason, await readWhatCan());
    throw new DamagedStoreError(reason);
  }
  try {
    return parseSavedState(raw);
  } catch (e) {
    keepSalvage(key, (e as Error).message, { [key]: raw });
    throw e;
  }
}

export async function save(key: string, state: Omit<SavedState, 'version'>): Promise<void> {
  await withStore('readwrite', (s) => s.put({ version: SAVED_VERSION, ...state }, key));
}

/**
 * Resets a damaged record (the editing store calls this when a record could not be read or its history could not be
 * replayed). What it held is kept as a download first. When the store itself is unusable (a database of another
 * version, a broken object store), the whole database is deleted, so the next save starts a clean one.
 */
export async function forget(key: string): Promise<void> {
  if (useSystem.getState().salvage?.key !== key) {
    const record = await withStore('readonly', (s) => s.get(key)).catch(() => undefined);
    if (record !== undefined) keepSalvage(key, 'the saved history could not be restored', { [key]: record });
  }
  try {
    await withStore('readwrite', (s) => s.delete(key));
  } catch {
    await new Promise<void>((done) => {
      const req = indexedDB.deleteDatabase(DB_NAME);
      req.onsuccess = req.onerror = req.onblocked = () => done();
    });
  }
}

/** Every record of the playground store, read from whatever version of the database is there (no upgrade). */
async function readWhatCan(): Promise<Record<string, unknown> | { error: string }> {
  try {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open(DB_NAME); // no version: open what exists, never upgrade it
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error ?? new Error('IndexedDB could not be opened'));
    });
    try {
      if (!db.objectStoreNames.contains(STORE)) return { error: `the database has no "${STORE}" store (version ${db.version})` };
      const store = db.transaction(STORE, 'readonly').objectStore(STORE);
      const [keys, values] = await Promise.all(
        [store.getAllKeys(), store.getAll()].map((r) => new Promise<unknown[]>((ok, fail) => {
          r.onsuccess = () => ok(r.result as unknown[]);
          r.onerror = () => fail(r.error);
        })),
      );
      return Object.fromEntries(keys.map((k, i) => [String(k), values[i]]));
    } finally {
      db.close();
    }
  } catch (e) {
    return { error: `nothing could be read (${(e as Error).message})` };
  }
}

function keepSalvage(key: string, reason: string, records: Record<string, unknown>): void {
  useSystem.getState().setSalvage({ key, reason, json: salvageJson(key, reason, records) });
}

/**
 * The download offered for a damaged store: the raw records as JSON. IndexedDB holds structured-clone values, which
 * may not be JSON (typed arrays, bigints, cycles), so those are converted or marked rather than lost.
 */
export function salvageJson(key: string, reason: string, records: Record<string, unknown> | { error: string }, now = new Date()): string {
  const seen = new WeakSet<object>();
  const replacer = (_k: string, v: unknown): unknown => {
    if (typeof v === 'bigint') return v.toString();
    if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<number>, (x) => (typeof x === 'bigint' ? String(x) : x));
    if (v instanceof ArrayBuffer) return Array.from(new Uint8Array(v));
    if (v instanceof Map) return Object.fromEntries(v);
    if (v instanceof Set) return [...v];
    if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return '[repeated reference]'; // a cycle, or an object met twice
      seen.add(v);
    }
    return v;
  };
  return JSON.stringify({ format: 'mendlab-salvage', version: 1, key, reason, savedAt: now.toISOString(), records }, replacer, 2);
}
