import { describe, expect, it } from 'vitest';
import { DamagedStoreError, parseSavedState } from './persist';

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
