import { describe, expect, it } from 'vitest';
import { DamagedStoreError, parseSavedState, salvageJson } from './persist';

describe('saved playground state', () => {
  it('accepts a well-formed record and nothing', () => {
    expect(parseSavedState(undefined)).toBeNull();
    const ok = { version: 1, history: { format: 'mendlab-history' }, ownParaphrases: ['a'], ownNeighbours: [] };
    expect(parseSavedState(ok)).toEqual(ok);
  });
  it('reports damaged records', () => {
    expect(() => parseSavedState('garbage')).toThrow(DamagedStoreError);
    expect(() => parseSavedState({ version: 2, history: null, ownParaphrases: [], ownNeighbours: [] })).toThrow(/format/);
    expect(() => parseSavedState({ version: 1, history: null, ownParaphrases: [3], ownNeighbours: [] })).toThrow(/lists/);
    expect(() => parseSavedState({ version: 1, history: [1], ownParaphrases: [], ownNeighbours: [] })).toThrow(/history/);
  });
});

describe('salvage of a damaged store', () => {
  it('keeps every record as JSON, converting what JSON cannot hold', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const json = salvageJson('models/x/', 'the saved record has an unknown format', {
      'models/x/': { version: 7, history: { entries: [{ prompt: 'p' }] }, ids: new Int32Array([1, -2]), big: 2n ** 70n, buf: new Uint8Array([255]).buffer },
      other: cyclic,
    }, new Date('2026-11-26T00:00:00Z'));
    const back = JSON.parse(json);
    expect(back).toMatchObject({ format: 'mendlab-salvage', version: 1, key: 'models/x/', reason: 'the saved record has an unknown format', savedAt: '2026-11-26T00:00:00.000Z' });
    expect(back.records['models/x/']).toEqual({ version: 7, history: { entries: [{ prompt: 'p' }] }, ids: [1, -2], big: '1180591620717411303424', buf: [255] });
    expect(back.records.other).toEqual({ a: 1, self: '[repeated reference]' });
  });
  it('says why nothing could be read', () => {
    expect(JSON.parse(salvageJson('k', 'r', { error: 'nothing could be read (VersionError)' })).records).toEqual({ error: 'nothing could be read (VersionError)' });
  });
});
