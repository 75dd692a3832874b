import { describe, expect, it } from 'vitest';
import { parseModelRef, readLaunchOptions } from './launch-options';

const PAGE = 'https://example.org/app/index.html';

describe('parseModelRef', () => {
  it('reads owner/name as a Hub id on the given revision', () => {
    expect(parseModelRef('openai-community/gpt2', 'v1', PAGE)).toEqual({ kind: 'hub', id: 'openai-community/gpt2', revision: 'v1' });
    expect(parseModelRef('  me/my.model-2 ', '', PAGE)).toEqual({ kind: 'hub', id: 'me/my.model-2', revision: 'main' });
  });

  it('takes a revision after @, which wins over the revision parameter', () => {
    expect(parseModelRef('a/b@v2.0', 'main', PAGE)).toEqual({ kind: 'hub', id: 'a/b', revision: 'v2.0' });
    expect(parseModelRef('a/b@refs/pr/1', 'x', PAGE)).toEqual({ kind: 'hub', id: 'a/b', revision: 'refs/pr/1' });
    expect(parseModelRef('a/b@', 'main', PAGE)).toHaveProperty('error');
    expect(parseModelRef('a/b@../x', 'main', PAGE)).toHaveProperty('error');
  });

  it('reads folder references (trailing slash, ./, / or a scheme) as URLs resolved against the page', () => {
    expect(parseModelRef('models/facts-gpt/', 'main', PAGE)).toEqual({ kind: 'url', url: 'https://example.org/app/models/facts-gpt/', label: 'models/facts-gpt/' });
    expect(parseModelRef('./m', 'main', PAGE)).toMatchObject({ kind: 'url', url: 'https://example.org/app/m/' });
    expect(parseModelRef('/m/', 'main', PAGE)).toMatchObject({ kind: 'url', url: 'https://example.org/m/' });
    expect(parseModelRef('http://127.0.0.1:9/x', 'main', PAGE)).toMatchObject({ kind: 'url', url: 'http://127.0.0.1:9/x/' });
  });

  it('refuses what is neither, with a reason', () => {
    for (const bad of ['', 'gpt2', 'a/b/c', 'a b/c', 'owner/..', '-x/y']) {
      expect(parseModelRef(bad, 'main', PAGE)).toHaveProperty('error');
    }
  });
});

describe('readLaunchOptions', () => {
  it('takes the model and backend from the query string', () => {
    expect(readLaunchOptions('?model=a/b&revision=dev&backend=wasm', PAGE)).toEqual({
      model: { kind: 'hub', id: 'a/b', revision: 'dev' },
      backend: 'wasm',
      hubBaseUrl: undefined,
    });
  });

  it('defaults to auto and no model, ignores unknown backends, and explains a bad model id', () => {
    expect(readLaunchOptions('?backend=cuda', PAGE)).toEqual({ model: null, backend: 'auto', hubBaseUrl: undefined });
    const bad = readLaunchOptions('?model=nonsense', PAGE);
    expect(bad.model).toBeNull();
    expect(bad.modelError).toMatch(/^The link asks for model=nonsense: .*owner\/name/);
  });

  it('ignores ?hub= outside the e2e build', () => {
    expect(import.meta.env.MODE).not.toBe('e2e');
    expect(readLaunchOptions('?hub=http://127.0.0.1:1', PAGE).hubBaseUrl).toBeUndefined();
  });
});
