// Getting model files: from a base URL (the same-origin public/models/<name>/ folder), from the
// Hugging Face Hub (owner/name → <hub>/<id>/resolve/<revision>/<file>), or, in Node, from a local folder.
// Downloads report transformers.js-style progress events and go through the browser Cache API, so a
// second visit reads everything from the cache. Every failure becomes a ModelFileError naming the file.

import { ModelFileError } from './errors';

export const DEFAULT_HUB_URL = 'https://huggingface.co';
/** Cache API store for model files; bump the suffix if the cached layout ever changes. */
export const MODEL_CACHE_NAME = 'mendlab-models-v1';

export type ModelSource =
  | { kind: 'url'; baseUrl: string }
  | { kind: 'hub'; id: string; revision: string; hubUrl: string }
  | { kind: 'local'; path: string };

const HUB_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$/;
const REVISION = /^[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;

/** True for a well-formed Hub id `owner/name` (no path traversal, no host, no extra segments). */
export function isHubId(id: string): boolean {
  const parts = id.split('/');
  return parts.length === 2 && parts.every((p) => HUB_PART.test(p) && !p.includes('..'));
}

/** A Hub source; throws on ids or revisions that could escape the Hub's /<owner>/<name>/resolve/ layout. */
export function hubSource(id: string, revision = 'main', hubUrl = DEFAULT_HUB_URL): ModelSource {
  if (!isHubId(id)) {
    throw new ModelFileError(id, 'not a valid Hugging Face model id (expected "owner/name" with letters, digits, ".", "_" or "-")');
  }
  if (!REVISION.test(revision) || revision.split('/').some((p) => p === '..' || p === '.')) {
    throw new ModelFileError(id, `invalid revision ${JSON.stringify(revision)}`);
  }
  return { kind: 'hub', id, revision, hubUrl: hubUrl.replace(/\/+$/, '') };
}

/** A source for a base URL or same-origin folder such as "/models/mendlab-gpt2/". */
export function urlSource(baseUrl: string): ModelSource {
  return { kind: 'url', baseUrl: baseUrl.endsWith('/') ? baseUrl : baseUrl + '/' };
}

/** A local folder (Node only). */
export function localSource(path: string): ModelSource {
  return { kind: 'local', path };
}

/** A short human name for a source: the Hub id, the URL or the folder. Used as `name` in progress events. */
export function sourceName(s: ModelSource): string {
  return s.kind === 'hub' ? s.id : s.kind === 'url' ? s.baseUrl : s.path;
}

/** The URL a file is fetched from (null for local folders). */
export function fileUrl(s: ModelSource, file: string): string | null {
  if (!/^[\w.-]+$/.test(file) || file.includes('..')) throw new ModelFileError(file, 'not a plain file name');
  if (s.kind === 'hub') {
    const rev = s.revision.split('/').map(encodeURIComponent).join('%2F');
    return `${s.hubUrl}/${s.id}/resolve/${rev}/${file}`;
  }
  if (s.kind === 'url') return s.baseUrl + file;
  return null;
}

// ---- progress events (the transformers.js ProgressInfo shapes) ----

export type ProgressEvent =
  | { status: 'initiate'; name: string; file: string }
  | { status: 'download'; name: string; file: string }
  | { status: 'progress'; name: string; file: string; progress: number; loaded: number; total: number }
  | { status: 'done'; name: string; file: string; fromCache: boolean }
  | { status: 'progress_total'; name: string; progress: number; loaded: number; total: number; files: Record<string, { loaded: number; total: number }> }
  | { status: 'ready'; task: string; model: string };

export type ProgressCallback = (e: ProgressEvent) => void;

export interface FetchOptions {
  onProgress?: ProgressCallback;
  /** use the browser Cache API when it exists (default true) */
  useCache?: boolean;
  signal?: AbortSignal;
}

/**
 * Tracks bytes per file and emits per-file and aggregate events. Totals are the Content-Length of
 * each response, so the aggregate total grows as downloads start; it is exact once all have started.
 */
export class ProgressTracker {
  private files: Record<string, { loaded: number; total: number }> = {};
  constructor(readonly name: string, private cb?: ProgressCallback) {}

  emit(e: ProgressEvent) {
    this.cb?.(e);
  }

  update(file: string, loaded: number, total: number) {
    this.files[file] = { loaded, total };
    this.emit({ status: 'progress', name: this.name, file, loaded, total, progress: total ? (100 * loaded) / total : 0 });
    let l = 0;
    let t = 0;
    for (const f of Object.values(this.files)) {
      l += f.loaded;
      t += f.total;
    }
    this.emit({ status: 'progress_total', name: this.name, loaded: l, total: t, progress: t ? (100 * l) / t : 0, files: { ...this.files } });
  }
}

/** Browser Cache API, when present (browsers and workers; absent in Node 20). */
function cacheStorage(): CacheStorage | null {
  return typeof caches !== 'undefined' ? caches : null;
}

class NotFound extends ModelFileError {}

/** Fetches one file as bytes, with progress and caching. 404 → ModelFileError "not found". */
export async function fetchModelFile(source: ModelSource, file: string, tracker: ProgressTracker, opts: FetchOptions = {}): Promise<Uint8Array> {
  tracker.emit({ status: 'initiate', name: tracker.name, file });
  if (source.kind === 'local') {
    const bytes = await readLocalFile(source.path, file);
    tracker.update(file, bytes.byteLength, bytes.byteLength);
    tracker.emit({ status: 'done', name: tracker.name, file, fromCache: false });
    return bytes;
  }
  const url = fileUrl(source, file)!;
  const store = opts.useCache === false ? null : cacheStorage();
  const cache = store ? await store.open(MODEL_CACHE_NAME).catch(() => null) : null;
  const cached = cache ? await cache.match(url).catch(() => undefined) : undefined;
  if (cached) {
    const bytes = new Uint8Array(await cached.arrayBuffer());
    tracker.update(file, bytes.byteLength, bytes.byteLength);
    tracker.emit({ status: 'done', name: tracker.name, file, fromCache: true });
    return bytes;
  }

  let response: Response;
  try {
    response = await fetch(url, { signal: opts.signal });
  } catch (e) {
    throw new ModelFileError(file, `network error fetching ${url} (${(e as Error).message})`, { cause: e });
  }
  if (response.status === 404) throw new NotFound(file, `not found (404) at ${url}`);
  if (!response.ok) throw new ModelFileError(file, `HTTP ${response.status} ${response.statusText} fetching ${url}`);
  tracker.emit({ status: 'download', name: tracker.name, file });

  const lengthHeader = response.headers.get('content-length');
  // With Content-Encoding the header counts compressed bytes, so it cannot be compared with what we read.
  const expected = lengthHeader !== null && !response.headers.get('content-encoding') ? Number(lengthHeader) : null;
  const bytes = await readBody(response, file, url, (loaded) => tracker.update(file, loaded, expected ?? loaded));
  if (expected !== null && bytes.byteLength !== expected) {
    throw new ModelFileError(file, `truncated download: got ${bytes.byteLength} of ${expected} bytes from ${url}`);
  }
  tracker.update(file, bytes.byteLength, expected ?? bytes.byteLength);
  if (cache) {
    // Only complete files reach the cache; a quota error just means the next visit downloads again.
    const headers = { 'content-type': response.headers.get('content-type') ?? 'application/octet-stream', 'content-length': String(bytes.byteLength) };
    await cache.put(url, new Response(bytes.slice(), { headers })).catch(() => undefined);
  }
  tracker.emit({ status: 'done', name: tracker.name, file, fromCache: false });
  return bytes;
}

async function readBody(response: Response, file: string, url: string, onChunk: (loaded: number) => void): Promise<Uint8Array> {
  try {
    if (!response.body) {
      const b = new Uint8Array(await response.arrayBuffer());
      onChunk(b.byteLength);
      return b;
    }
    const reader = response.body.getReader();
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      loaded += value.byteLength;
      onChunk(loaded);
    }
    const out = new Uint8Array(loaded);
    let pos = 0;
    for (const c of chunks) {
      out.set(c, pos);
      pos += c.byteLength;
    }
    return out;
  } catch (e) {
    throw new ModelFileError(file, `download interrupted (truncated) from ${url} (${(e as Error).message})`, { cause: e });
  }
}

async function readLocalFile(folder: string, file: string): Promise<Uint8Array> {
  // Node built-ins are imported lazily through a variable so browser bundlers never try to resolve them.
  const fsName = 'node:fs/promises';
  const pathName = 'node:path';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
  const path = (await import(/* @vite-ignore */ pathName)) as typeof import('node:path');
  const full = path.join(folder, file);
  try {
    const buf = await fs.readFile(full);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFound(file, `not found in ${folder}`);
    throw new ModelFileError(file, `cannot read ${full} (${(e as Error).message})`, { cause: e });
  }
}

/** Fetches a file that may legitimately be absent (e.g. model.safetensors in a sharded checkpoint): null on 404. */
export async function fetchOptionalFile(source: ModelSource, file: string, tracker: ProgressTracker, opts: FetchOptions = {}): Promise<Uint8Array | null> {
  try {
    return await fetchModelFile(source, file, tracker, opts);
  } catch (e) {
    if (e instanceof NotFound) return null;
    throw e;
  }
}

/** Parses a JSON file's bytes, naming the file on failure. */
export function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new ModelFileError(file, `is not valid JSON (${(e as Error).message})`);
  }
}

// ---- cache management (for a "downloaded models" panel and "clear cache") ----

/** URLs of cached files, optionally only those belonging to one source. */
export async function listCachedFiles(source?: ModelSource): Promise<string[]> {
  const store = cacheStorage();
  if (!store || !(await store.has(MODEL_CACHE_NAME))) return [];
  const cache = await store.open(MODEL_CACHE_NAME);
  const urls = (await cache.keys()).map((r) => r.url);
  if (!source) return urls;
  const prefix = sourcePrefix(source);
  return prefix ? urls.filter((u) => u.startsWith(prefix) || u.startsWith(absolute(prefix))) : [];
}

/** Deletes cached files of one source, or the whole model cache. Returns how many files were removed. */
export async function clearModelCache(source?: ModelSource): Promise<number> {
  const store = cacheStorage();
  if (!store) return 0;
  if (!source) {
    const n = (await listCachedFiles()).length;
    await store.delete(MODEL_CACHE_NAME);
    return n;
  }
  const urls = await listCachedFiles(source);
  const cache = await store.open(MODEL_CACHE_NAME);
  for (const u of urls) await cache.delete(u);
  return urls.length;
}

function sourcePrefix(s: ModelSource): string | null {
  if (s.kind === 'local') return null;
  if (s.kind === 'url') return s.baseUrl;
  return `${s.hubUrl}/${s.id}/resolve/${s.revision.split('/').map(encodeURIComponent).join('%2F')}/`;
}

function absolute(u: string): string {
  try {
    return new URL(u, (globalThis as { location?: { href: string } }).location?.href).href;
  } catch {
    return u;
  }
}

/** Parses "owner/name" or "owner/name@revision" into a Hub source (throws a clear error otherwise). */
export function parseHubSpec(spec: string, hubUrl = DEFAULT_HUB_URL): ModelSource {
  const at = spec.indexOf('@');
  return at < 0 ? hubSource(spec, 'main', hubUrl) : hubSource(spec.slice(0, at), spec.slice(at + 1), hubUrl);
}
