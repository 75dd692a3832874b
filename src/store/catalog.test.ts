import { describe, expect, it } from 'vitest';
import { parseCatalog } from './catalog';

describe('parseCatalog (public/models/models.json)', () => {
  it('reads entries, resolving folders under models/ and picking the named default', () => {
    const c = parseCatalog({ default: 'b', models: [{ name: 'a' }, { name: 'b', path: 'bee', title: 'Bee', description: 'd' }] });
    expect(c).toEqual({
      status: 'ready',
      defaultName: 'b',
      models: [
        { name: 'a', ref: 'models/a/', title: 'a', description: undefined },
        { name: 'b', ref: 'models/bee/', title: 'Bee', description: 'd' },
      ],
    });
  });

  it('falls back to the first entry when the default is absent or unknown', () => {
    expect(parseCatalog({ default: 'zzz', models: [{ name: 'a' }] })).toMatchObject({ defaultName: 'a' });
    expect(parseCatalog([{ name: 'x' }])).toMatchObject({ defaultName: 'x' });
    expect(parseCatalog({ models: [] })).toMatchObject({ status: 'ready', defaultName: null });
  });

  it('rejects malformed lists and paths that leave models/', () => {
    expect(() => parseCatalog({})).toThrow('expected {"models": [...]}');
    expect(() => parseCatalog({ models: [{ path: 'x/' }] })).toThrow('models[0] has no "name"');
    expect(() => parseCatalog({ models: [{ name: 'x', path: 'https://evil.example/' }] })).toThrow('relative');
    expect(() => parseCatalog({ models: [{ name: 'x', path: '/etc/' }] })).toThrow('relative');
    expect(() => parseCatalog({ models: [{ name: 'x', path: '../../secret/' }] })).toThrow('relative');
  });
});
