// What survives a reload, per model: the edit history (session/history.ts JSON) and the user's own paraphrases and
// neighbours, kept in IndexedDB. A record that cannot be read is reported and deleted, never a blank page.
//
//   database "mendlab", object store "playground", key = the model's label (its folder URL or Hub id):
//   {"version": 1, "history": <HistoryJSON> | null, "ownParaphrases": ["..."], "ownNeighbours": ["..."]}

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
    throw new DamagedStoreError(`the browser storage could not be read (${(e as Error).message})`);
  }
  return parseSavedState(raw);
}

export async function save(key: string, state: Omit<SavedState, 'version'>): Promise<void> {
  await withStore('readwrite', (s) => s.put({ version: SAVED_VERSION, ...state }, key));
}

export async function forget(key: string): Promise<void> {
  await withStore('readwrite', (s) => s.delete(key)).catch(() => undefined);
}
