// The page refuses oversized replays before they reach the worker: history files/records over 4 MiB or 1000 edits,
// share links over 20 edits; everything else passes. And the client turns a refusal into a rejected request.
import { describe, expect, it } from 'vitest';
import { HISTORY_LIMITS } from '../session/history';
import { requestRefusal, SHARED_EDITS_MAX } from './request-bounds';

const entry = { method: 'mend', facts: [{ prompt: 'p', target: ' t', prompt_ids: [1], target_ids: [2] }], options: { weights: ['w'] } };
const history = (entries: unknown[], extra = {}) => ({ format: 'mendlab-history', version: 1, position: entries.length, entries, ...extra });

describe('requestRefusal', () => {
  it('lets ordinary histories, share links and other requests through', () => {
    expect(requestRefusal({ type: 'importHistory', json: history([entry, entry]) })).toBeNull();
    expect(requestRefusal({ type: 'importShared', shared: { edits: [{ method: 'mend', prompt: 'p', target: ' t' }], position: 1 } })).toBeNull();
    expect(requestRefusal({ type: 'undo' })).toBeNull();
  });
  it('refuses a history over 4 MiB, naming its size and the limit', () => {
    const big = history([entry], { padding: 'x'.repeat(HISTORY_LIMITS.bytes) });
    expect(requestRefusal({ type: 'importHistory', json: big })).toMatch(/^the edit history is 4\.2 MB; at most 4 MiB can be imported$/);
    // multi-byte text is counted in UTF-8 bytes, not characters
    const wide = history([entry], { padding: 'é'.repeat(HISTORY_LIMITS.bytes / 2 + 10) });
    expect(requestRefusal({ type: 'importHistory', json: wide })).toMatch(/at most 4 MiB/);
  });
  it('refuses more than 1000 edits before any is looked at', () => {
    const many = history(Array.from({ length: HISTORY_LIMITS.entries + 1 }, () => ({})));
    expect(requestRefusal({ type: 'importHistory', json: many })).toBe('the edit history has 1001 edits; at most 1000 can be imported');
  });
  it('refuses data that is not JSON (a cycle)', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(requestRefusal({ type: 'importHistory', json: cyclic })).toMatch(/not plain JSON/);
  });
  it('refuses a share link of more than 20 edits', () => {
    const edits = Array.from({ length: SHARED_EDITS_MAX + 1 }, () => ({ method: 'mend' as const, prompt: 'p', target: ' t' }));
    expect(requestRefusal({ type: 'importShared', shared: { edits, position: 21 } })).toBe('a share link holds at most 20 edits; this one has 21');
  });
});
