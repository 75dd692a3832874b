// Loading through the Hub URL layout from a local server: progress events, the Cache API, and a
// clear error naming the file for every way a download can go wrong.

import { readFileSync, statSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  clearModelCache, fileUrl, hubSource, initBackend, isHubId, listCachedFiles, loadModel, loadModelFiles,
  localSource, MODEL_CACHE_NAME, ModelFileError, parseHubSpec, urlSource, type ProgressEvent,
} from '../../src/model';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { installMemoryCaches } from './fake-cache-storage';
import { FIXTURES, golden } from './parity-suite';

const TINY = `${FIXTURES}tiny-gpt2`;
const SHARDED = `${FIXTURES}tiny-gpt2-sharded`;
const TINY_FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];

let hub: HubServer;
const src = (id = 'mend/tiny', revision = 'main') => hubSource(id, revision, hub.url);

/** The error a promise rejects with (fails the test if it resolves). */
async function failure(p: Promise<unknown>): Promise<ModelFileError> {
  const e = await p.then(() => null, (err) => err);
  expect(e, 'expected the load to fail').toBeInstanceOf(ModelFileError);
  return e as ModelFileError;
}

beforeAll(async () => {
  await initBackend('cpu');
  hub = await startHubServer({ 'mend/tiny': TINY, 'mend/tiny-sharded': SHARDED });
});
afterAll(() => hub.close());
afterEach(() => {
  hub.requests.length = 0;
  Object.assign(hub.rules, { overrides: {}, notFound: new Set(), dropAfter: {}, cutTo: {}, lfsRedirect: false });
});

describe('Hub ids and URLs', () => {
  it('accepts owner/name ids and builds resolve URLs', () => {
    expect(isHubId('openai-community/gpt2')).toBe(true);
    expect(fileUrl(hubSource('openai-community/gpt2'), 'config.json')).toBe('https://huggingface.co/openai-community/gpt2/resolve/main/config.json');
    expect(fileUrl(parseHubSpec('a/b@refs/pr/1', 'http://h:1/'), 'x.json')).toBe('http://h:1/a/b/resolve/refs%2Fpr%2F1/x.json');
  });

  it('rejects path traversal, other hosts and malformed ids', () => {
    for (const bad of ['../etc/passwd', 'a/..', '../b', 'owner/name/extra', 'http://evil.example/x', '//evil.example/x', 'owner/na me', 'gpt2', 'a/b?x=1', 'a/b#c', '', 'a\\b/c']) {
      expect(isHubId(bad), bad).toBe(false);
      expect(() => hubSource(bad), bad).toThrow(/not a valid Hugging Face model id/);
    }
    expect(() => hubSource('a/b', '../../x')).toThrow(/invalid revision/);
    expect(() => hubSource('a/b', 'main?x')).toThrow(/invalid revision/);
    expect(() => fileUrl(hubSource('a/b'), '../config.json')).toThrow(/not a plain file name/);
  });
});

describe('loading from the Hub layout', () => {
  it('loads a model that generates the golden tokens, with transformers.js-style progress events', async () => {
    const events: ProgressEvent[] = [];
    const m = await loadModel(src(), { onProgress: (e) => events.push(e) });
    try {
      const g = golden.greedy[0];
      expect(await m.model.generate(g.input_ids, { maxNewTokens: g.max_new_tokens })).toEqual(g.output_ids);
    } finally {
      m.model.dispose();
    }
    expect(hub.requests).toEqual(expect.arrayContaining(TINY_FILES.map((f) => `/mend/tiny/resolve/main/${f}`)));

    for (const file of TINY_FILES) {
      const mine = events.filter((e) => 'file' in e && e.file === file);
      const order = mine.map((e) => e.status).filter((s, i, a) => s !== a[i - 1]);
      expect(order, file).toEqual(['initiate', 'download', 'progress', 'done']);
      const progress = mine.filter((e) => e.status === 'progress') as Extract<ProgressEvent, { status: 'progress' }>[];
      const size = statSync(`${TINY}/${file}`).size;
      expect(progress.at(-1)).toMatchObject({ loaded: size, total: size, progress: 100, name: 'mend/tiny' });
      for (let i = 1; i < progress.length; i++) expect(progress[i].loaded).toBeGreaterThanOrEqual(progress[i - 1].loaded);
      expect(mine.at(-1)).toMatchObject({ status: 'done', fromCache: false });
    }
    const totals = events.filter((e) => e.status === 'progress_total') as Extract<ProgressEvent, { status: 'progress_total' }>[];
    const allBytes = TINY_FILES.reduce((a, f) => a + statSync(`${TINY}/${f}`).size, 0);
    expect(totals.at(-1)).toMatchObject({ loaded: allBytes, total: allBytes, progress: 100 });
    expect(Object.keys(totals.at(-1)!.files).sort()).toEqual([...TINY_FILES].sort());
    expect(events.at(-1)).toEqual({ status: 'ready', task: 'text-generation', model: 'mend/tiny' });
  });

  it('loads a sharded checkpoint (index + shards), also through LFS-style redirects', async () => {
    hub.rules.lfsRedirect = true;
    const f = await loadModelFiles(src('mend/tiny-sharded'));
    expect(f.files).toEqual(expect.arrayContaining(['model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00003-of-00003.safetensors']));
    expect(hub.requests).toContain('/cdn/mend/tiny-sharded/model-00002-of-00003.safetensors');
    const local = await loadModelFiles(localSource(TINY));
    expect([...f.tensors.keys()].sort()).toEqual([...local.tensors.keys()].sort());
    for (const [name, t] of local.tensors) expect(f.tensors.get(name)!.data).toEqual(t.data);
  });

  it('also loads from a plain base URL (the same-origin folder case)', async () => {
    const f = await loadModelFiles(urlSource(`${hub.url}/mend/tiny/resolve/main`));
    expect(f.config.nLayer).toBe(2);
    expect(f.files).toContain('model.safetensors');
  });
});

describe('clear errors naming the file', () => {
  it('404 on config.json', async () => {
    hub.rules.notFound.add('mend/tiny/config.json');
    const e = await failure(loadModelFiles(src()));
    expect(e.file).toBe('config.json');
    expect(e.message).toMatch(/^config\.json: not found \(404\) at http:\/\/127\.0\.0\.1:\d+\/mend\/tiny\/resolve\/main\/config\.json$/);
  });

  it('404 on tokenizer.json', async () => {
    hub.rules.notFound.add('mend/tiny/tokenizer.json');
    expect((await failure(loadModelFiles(src()))).message).toMatch(/^tokenizer\.json: not found \(404\)/);
  });

  it('an unknown repository', async () => {
    expect((await failure(loadModelFiles(src('mend/nope')))).message).toMatch(/^config\.json: not found \(404\).*mend\/nope/);
  });

  it('no weights at all (neither model.safetensors nor an index)', async () => {
    hub.rules.notFound.add('mend/tiny/model.safetensors');
    expect((await failure(loadModelFiles(src()))).message).toMatch(/^model\.safetensors: not found, and there is no model\.safetensors\.index\.json/);
  });

  it('a missing shard', async () => {
    hub.rules.notFound.add('mend/tiny-sharded/model-00002-of-00003.safetensors');
    expect((await failure(loadModelFiles(src('mend/tiny-sharded')))).message).toMatch(/^model-00002-of-00003\.safetensors: not found \(404\)/);
  });

  it('a download cut off mid-file (connection dropped)', async () => {
    hub.rules.dropAfter['mend/tiny/model.safetensors'] = 5000;
    const e = await failure(loadModelFiles(src()));
    expect(e.file).toBe('model.safetensors');
    expect(e.message).toMatch(/truncated/);
  });

  it('a truncated file on the server (honest Content-Length)', async () => {
    hub.rules.cutTo['mend/tiny/model.safetensors'] = 20_000;
    expect((await failure(loadModelFiles(src()))).message).toMatch(/^model\.safetensors: tensor ".*" data_offsets \[\d+, \d+\] run past the end of the data/);
  });

  it('a malformed safetensors header', async () => {
    const bytes = new Uint8Array(readFileSync(`${TINY}/model.safetensors`));
    expect(String.fromCharCode(bytes[8], bytes[9])).toBe('{"');
    bytes[9] = 0x78; // {"name": ... → {xname": ... is no longer JSON
    hub.rules.overrides['mend/tiny/model.safetensors'] = bytes;
    expect((await failure(loadModelFiles(src()))).message).toMatch(/^model\.safetensors: safetensors header is not valid JSON/);
  });

  it('an unsupported architecture, refused before any weights are downloaded', async () => {
    const config = { ...JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')), model_type: 'llama', architectures: ['LlamaForCausalLM'] };
    hub.rules.overrides['mend/tiny/config.json'] = JSON.stringify(config);
    expect((await failure(loadModelFiles(src()))).message).toBe('config.json: unsupported architecture LlamaForCausalLM (only GPT-2 / GPT2LMHeadModel is supported)');
    expect(hub.requests.some((r) => r.endsWith('.safetensors'))).toBe(false);
  });

  it('a tensor shape that does not match config.json', async () => {
    const config = { ...JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')), n_inner: 64 };
    hub.rules.overrides['mend/tiny/config.json'] = JSON.stringify(config);
    expect((await failure(loadModelFiles(src()))).message).toMatch(
      /^model\.safetensors: tensor "transformer\.h\.0\.mlp\.c_fc\.(weight" has shape \[32, 128\] but config\.json implies \[32, 64\]|bias" has shape \[128\] but config\.json implies \[64\])$/,
    );
  });

  it('a tensor dtype that does not match config.json torch_dtype', async () => {
    const config = { ...JSON.parse(readFileSync(`${TINY}/config.json`, 'utf8')), torch_dtype: 'float16' };
    hub.rules.overrides['mend/tiny/config.json'] = JSON.stringify(config);
    expect((await failure(loadModelFiles(src()))).message).toBe('model.safetensors: tensors are F32 but config.json says torch_dtype "float16"');
  });

  it('a network error (nothing listening)', async () => {
    const e = await failure(loadModelFiles(hubSource('mend/tiny', 'main', 'http://127.0.0.1:9')));
    expect(e.message).toMatch(/^config\.json: network error fetching http:\/\/127\.0\.0\.1:9\/mend\/tiny\/resolve\/main\/config\.json/);
  });

  it('a missing local folder', async () => {
    expect((await failure(loadModelFiles(localSource('/nonexistent/model')))).message).toBe('config.json: not found in /nonexistent/model');
  });
});

describe('Cache API', () => {
  it('a second load downloads nothing; clearing the cache makes it download again', async () => {
    const { storage, remove } = installMemoryCaches();
    try {
      await loadModelFiles(src());
      expect(hub.requests.length).toBeGreaterThanOrEqual(TINY_FILES.length);
      expect(await storage.has(MODEL_CACHE_NAME)).toBe(true);
      expect((await listCachedFiles(src())).sort()).toEqual(TINY_FILES.map((f) => fileUrl(src(), f)).sort());
      expect(await listCachedFiles(src('mend/tiny-sharded'))).toEqual([]);

      hub.requests.length = 0;
      const events: ProgressEvent[] = [];
      const again = await loadModelFiles(src(), { onProgress: (e) => events.push(e) });
      expect(hub.requests).toEqual([]);
      expect(again.config.nEmbd).toBe(32);
      const done = events.filter((e) => e.status === 'done');
      expect(done).toHaveLength(TINY_FILES.length);
      expect(done.every((e) => e.status === 'done' && e.fromCache)).toBe(true);
      expect(events.some((e) => e.status === 'download')).toBe(false);

      expect(await clearModelCache(src())).toBe(TINY_FILES.length);
      expect(await listCachedFiles(src())).toEqual([]);
      await loadModelFiles(src());
      expect(hub.requests.length).toBeGreaterThanOrEqual(TINY_FILES.length);
      expect(await clearModelCache()).toBe(TINY_FILES.length);
      expect(await storage.has(MODEL_CACHE_NAME)).toBe(false);
    } finally {
      remove();
    }
  });

  it('never caches a truncated download', async () => {
    const { remove } = installMemoryCaches();
    try {
      hub.rules.dropAfter['mend/tiny/model.safetensors'] = 1000;
      await failure(loadModelFiles(src()));
      const cached = await listCachedFiles(src());
      expect(cached).toContain(fileUrl(src(), 'config.json'));
      expect(cached).not.toContain(fileUrl(src(), 'model.safetensors'));
      hub.rules.dropAfter = {};
      hub.requests.length = 0;
      await loadModelFiles(src());
      expect(hub.requests).toContain('/mend/tiny/resolve/main/model.safetensors');
      expect(hub.requests).not.toContain('/mend/tiny/resolve/main/config.json');
    } finally {
      remove();
    }
  });

  it('useCache: false bypasses the cache', async () => {
    const { remove } = installMemoryCaches();
    try {
      await loadModelFiles(src(), { useCache: false });
      expect(await listCachedFiles()).toEqual([]);
    } finally {
      remove();
    }
  });
});
