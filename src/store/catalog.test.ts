import { describe, expect, it } from 'vitest';
import { parseCatalog } from './catalog';

describe('parseCatalog (public/models/models.json)', () => {
  it('reads entries and picks the one marked default', () => {
    const c = parseCatalog([
      { id: 'a', path: 'models/a/' },
      { id: 'facts-gpt', name: 'Facts GPT (embedded)', path: 'models/facts-gpt', default: true, description: 'd' },
    ]);
    expect(c).toEqual({
      status: 'ready',
      defaultName: 'facts-gpt',
      models: [
        { name: 'a', ref: 'models/a/', title: 'a', description: undefined },
        { name: 'facts-gpt', ref: 'models/facts-gpt/', title: 'Facts GPT (embedded)', description: 'd' },
      ],
    });
  });

  it('falls back to the first entry when none is marked default', () => {
    expect(parseCatalog([{ id: 'x', path: 'models/x/' }, { id: 'y', path: 'models/y/' }])).toMatchObject({ defaultName: 'x' });
    expect(parseCatalog([])).toMatchObject({ status: 'ready', defaultName: null });
  });

  it('rejects malformed lists and paths that leave the app', () => {
    expect(() => parseCatalog({ models: [] })).toThrow('expected a JSON array');
    expect(() => parseCatalog([{ path: 'models/x/' }])).toThrow('entry 0 has no "id"');
    expect(() => parseCatalog([{ id: 'x' }])).toThrow('"path" must be a folder relative to the app');
    for (const path of ['https://evil.example/', '/etc/', '../../secret/']) {
      expect(() => parseCatalog([{ id: 'x', path }])).toThrow('relative to the app');
    }
  });
});
