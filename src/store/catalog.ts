// The list of models shipped with the app: public/models/models.json (format in docs/formats.md).
// It is a plain static JSON file, so the page reads it itself; the weights are loaded by the worker.

export interface CatalogEntry {
  name: string;
  /** Folder reference relative to the page, e.g. "models/facts-gpt/". */
  ref: string;
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
  const root = json as { models?: unknown; default?: unknown };
  const list = Array.isArray(json) ? json : root?.models;
  if (!Array.isArray(list)) throw new Error('expected {"models": [...]}');
  const models: CatalogEntry[] = list.map((raw, i) => {
    const m = raw as Record<string, unknown>;
    const name = typeof m.name === 'string' ? m.name : null;
    if (!name) throw new Error(`models[${i}] has no "name"`);
    const path = typeof m.path === 'string' && m.path ? m.path : `${name}/`;
    if (path.includes('://') || path.startsWith('/') || path.split('/').includes('..')) {
      throw new Error(`models[${i}].path must be a folder relative to models/`);
    }
    return {
      name,
      ref: `models/${path.endsWith('/') ? path : `${path}/`}`,
      title: typeof m.title === 'string' && m.title ? m.title : name,
      description: typeof m.description === 'string' ? m.description : undefined,
    };
  });
  const wanted = typeof root?.default === 'string' ? root.default : null;
  const defaultName = models.find((m) => m.name === wanted)?.name ?? models[0]?.name ?? null;
  return { status: 'ready', models, defaultName };
}
