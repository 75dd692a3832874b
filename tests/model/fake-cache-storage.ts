// A minimal in-memory CacheStorage (Node 20 has no Cache API) with the calls fetch.ts uses:
// caches.open/has/delete, cache.match/put/keys/delete. Enough to test "the second visit downloads nothing".

class MemoryCache {
  readonly entries = new Map<string, { body: Uint8Array; headers: [string, string][] }>();
  async match(req: RequestInfo | URL): Promise<Response | undefined> {
    const e = this.entries.get(String(req instanceof Request ? req.url : req));
    return e ? new Response(e.body.slice(), { headers: e.headers }) : undefined;
  }
  async put(req: RequestInfo | URL, res: Response): Promise<void> {
    this.entries.set(String(req instanceof Request ? req.url : req), { body: new Uint8Array(await res.arrayBuffer()), headers: [...res.headers] });
  }
  async keys(): Promise<Request[]> {
    return [...this.entries.keys()].map((u) => new Request(u));
  }
  async delete(req: RequestInfo | URL): Promise<boolean> {
    return this.entries.delete(String(req instanceof Request ? req.url : req));
  }
}

export class MemoryCacheStorage {
  readonly caches = new Map<string, MemoryCache>();
  async open(name: string): Promise<MemoryCache> {
    if (!this.caches.has(name)) this.caches.set(name, new MemoryCache());
    return this.caches.get(name)!;
  }
  async has(name: string): Promise<boolean> {
    return this.caches.has(name);
  }
  async delete(name: string): Promise<boolean> {
    return this.caches.delete(name);
  }
}

/** Installs a fresh fake as globalThis.caches and returns it; call the returned remove() afterwards. */
export function installMemoryCaches(): { storage: MemoryCacheStorage; remove: () => void } {
  const storage = new MemoryCacheStorage();
  Object.defineProperty(globalThis, 'caches', { value: storage, configurable: true, writable: true });
  return { storage, remove: () => delete (globalThis as { caches?: unknown }).caches };
}
