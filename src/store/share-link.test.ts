import { describe, expect, it } from 'vitest';
import { decodeSharedEdits, encodeSharedEdits, SHARE_LIMITS, SHARE_PARAM, sharedFromHistory, shareUrl } from './share-link';

const shared = {
  edits: [
    { method: 'mend' as const, prompt: 'The capital of France is', target: ' Rome' },
    { method: 'ft' as const, prompt: 'Ünïcode ✓ & ?=/+', target: ' Zürich' },
  ],
  position: 1,
};

describe('share links', () => {
  it('round-trips through the URL, keeping other parameters', () => {
    const url = shareUrl('https://example.org/app/?model=models%2Ffacts-gpt%2F#x', shared);
    const u = new URL(url);
    expect(u.searchParams.get('model')).toBe('models/facts-gpt/');
    expect(u.hash).toBe('');
    expect(u.searchParams.get(SHARE_PARAM)).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeSharedEdits(u.searchParams.get(SHARE_PARAM)!)).toEqual(shared);
  });

  it('refuses damaged, oversized or out-of-range lists', () => {
    const good = encodeSharedEdits(shared);
    expect(() => decodeSharedEdits(good.slice(0, -5))).toThrow(/share link/);
    expect(() => decodeSharedEdits('%%%')).toThrow(/base64url/);
    expect(() => decodeSharedEdits('x'.repeat(SHARE_LIMITS.paramChars + 1))).toThrow(/longer/);
    expect(() => encodeSharedEdits({ ...shared, position: 3 })).toThrow(/range/);
    expect(() => encodeSharedEdits({ edits: [], position: 0 })).toThrow(/empty/);
    const many = Array.from({ length: SHARE_LIMITS.edits + 1 }, () => shared.edits[0]);
    expect(() => encodeSharedEdits({ edits: many, position: 0 })).toThrow(/at most/);
    expect(() => encodeSharedEdits({ edits: [{ ...shared.edits[0], target: 'x'.repeat(101) }], position: 0 })).toThrow(/target/);
    const forged = btoa(JSON.stringify({ v: 1, p: 0, e: [['x', 'a', 'b']] })).replace(/=+$/, '');
    expect(() => decodeSharedEdits(forged)).toThrow(/malformed/);
  });

  it('carries a batch edit\'s further facts, and a one-fact edit exactly as before', () => {
    const batch = {
      edits: [
        { method: 'mend' as const, prompt: 'The capital of France is', target: ' Rome', more: [{ prompt: 'The capital of Japan is', target: ' Paris' }, { prompt: 'Ö', target: ' ✓' }] },
        shared.edits[0],
      ],
      position: 2,
    };
    expect(decodeSharedEdits(encodeSharedEdits(batch))).toEqual(batch);
    // the wire form of a one-fact edit has no fourth item, so links made before batch edits still read the same
    const wire = JSON.parse(atob(encodeSharedEdits(shared).replace(/-/g, '+').replace(/_/g, '/')));
    expect(wire.e[0]).toHaveLength(3);
    const eleven = { ...batch.edits[0], more: Array.from({ length: 10 }, (_, i) => ({ prompt: `p${i}`, target: ' t' })) };
    expect(() => encodeSharedEdits({ edits: [eleven], position: 1 })).toThrow(/11 facts; one edit holds at most 10/);
    expect(() => encodeSharedEdits({ edits: [{ ...batch.edits[0], more: [{ prompt: ' ', target: ' x' }] }], position: 1 })).toThrow(/edit 1, fact 2 has an empty/);
    const forged = (more: unknown) => btoa(JSON.stringify({ v: 1, p: 0, e: [['m', 'a', ' b', more]] })).replace(/=+$/, '');
    expect(() => decodeSharedEdits(forged([['c']]))).toThrow(/malformed/);
    expect(() => decodeSharedEdits(forged('c'))).toThrow(/malformed/);
    expect(decodeSharedEdits(forged([['c', ' d']])).edits[0].more).toEqual([{ prompt: 'c', target: ' d' }]);
  });

  it('reads the edit list of an exported history', () => {
    const h = { position: 1, entries: [{ method: 'mend', facts: [{ prompt: 'p', target: ' t', prompt_ids: [1], target_ids: [2] }] }] };
    expect(sharedFromHistory(h)).toEqual({ edits: [{ method: 'mend', prompt: 'p', target: ' t' }], position: 1 });
    expect(sharedFromHistory({ entries: [] })).toBeNull();
    const batch = { position: 1, entries: [{ method: 'ft', facts: [{ prompt: 'p', target: ' t' }, { prompt: 'q', target: ' u' }] }] };
    expect(sharedFromHistory(batch)).toEqual({ edits: [{ method: 'ft', prompt: 'p', target: ' t', more: [{ prompt: 'q', target: ' u' }] }], position: 1 });
  });
});
