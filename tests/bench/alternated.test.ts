// The bench's side-by-side timing: both paths sampled in pairs whose order flips, and each sample filed under its path.
import { describe, expect, it } from 'vitest';
import { alternated } from '../../bench/suite';

describe('alternated', () => {
  it('flips the order every pair and files each sample under its own path', async () => {
    const calls: boolean[] = [];
    let t = 0;
    // Each call "takes" its call number, fast calls plus 100, so every sample says which call made it.
    const once = async (fast: boolean) => {
      calls.push(fast);
      t++;
      return fast ? 100 + t : t;
    };
    const r = await alternated(once, { warmup: 1, reps: 3, inner: 1 } as Parameters<typeof alternated>[1]);
    expect(calls).toEqual([true, false, true, false, false, true, true, false]);
    expect(r.fastSamples).toEqual([103, 106, 107]);
    expect(r.tfjsSamples).toEqual([4, 5, 8]);
    expect(r.fastMs).toBe(106);
    expect(r.tfjsMs).toBe(5);
    expect(r.ratio).toBeCloseTo(106 / 5, 12);
  });
});
