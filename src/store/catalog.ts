// The list of models shipped with the app: public/models/models.json (format in docs/formats.md).
// It is a plain static JSON file, so the page reads it itself; the weights are loaded by the worker.

export interface CatalogEntry {
  /** The entry's "id" in models.json. */
  name: string;
  /** Folder reference relative to the page, e.g. "models/facts-gpt/". */
  ref: string;
  /** The entry's display "name" in models.json (falls back to the id). */
  title: string;
  description?: string;
}

export type Catalog =
  | { status: 'ready'; models: CatalogEntry[]; defaultName: string | null }
  | { status: 'missing'; message: string }
  | { status: 'error'; message: string };

const CATALOG_PATH = 'models/models.json';

export async function fetchCatalog(baseUrl: string): Promise<Catalog> {
  const url = new URL(CATALOG_PATH, baseUrl).href;
  let res: Response;
  try {
    res = await fetch(url, { cache: 'no-cache' });
  } catch (e) {
    return { status: 'error', message: `${CATALOG_PATH}: could not be fetched (${(e as Error).message}).` };
  }
  // Vite's preview/dev servers answer unknown paths with index.html (SPA fallback), so a missing file can
  // arrive as 200 text/html; treat that as missing too.
  const type = res.headers.get('content-type') ?? '';
  if (res.status === 404 || (res.ok && type.includes('text/html'))) {
    return { status: 'missing', message: 'No model is shipped with this build yet (models/models.json is missing). Load one from the Hugging Face Hub instead.' };
  }
  if (!res.ok) return { status: 'error', message: `${CATALOG_PATH}: HTTP ${res.status} ${res.statusText}` };
  try {
    return parseCatalog(await res.json());
  } catch (e) {
    return { status: 'error', message: `${CATALOG_PATH}: ${(e as Error).message}` };
  }
}

export function parseCatalog(json: unknown): Catalog {
  if (!Array.isArray(json)) throw new Error('expected a JSON array of models');
  const models: CatalogEntry[] = json.map((raw, i) => {
    const m = (raw ?? {}) as Record<string, unknown>;
    const id = typeof m.id === 'string' && m.id ? m.id : null;
    if (!id) throw new Error(`entry ${i} has no "id"`);
    const path = typeof m.path === 'string' ? m.path : '';
    if (!path || path.includes('://') || path.startsWith('/') || path.split('/').includes('..')) {
      throw new Error(`entry "${id}": "path" must be a folder relative to the app, such as "models/${id}/"`);
    }
    return {
      name: id,
      ref: path.endsWith('/') ? path : `${path}/`,
      title: typeof m.name === 'string' && m.name ? m.name : id,
      description: typeof m.description === 'string' ? m.description : undefined,
    };
  });
  const marked = json.findIndex((m) => (m as { default?: unknown })?.default === true);
  const defaultName = models[marked >= 0 ? marked : 0]?.name ?? null;
  return { status: 'ready', models, defaultName };
}
