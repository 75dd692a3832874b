// The report store: one request per history state, the newest request wins, clear() drops a pending answer.
import { beforeEach, describe, expect, it, vi } from 'vitest';

const request = vi.fn();
vi.mock('../../store/app-store', () => ({ currentWorker: () => ({ request }) }));

const { useWeights } = await import('./store');

function deferred<T>() {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('weights store', () => {
  beforeEach(() => {
    request.mockReset();
    useWeights.getState().clear();
  });

  it('asks once per key and keeps the answer', async () => {
    request.mockResolvedValue({ entryId: 1 });
    await useWeights.getState().ensure('m|1');
    await useWeights.getState().ensure('m|1');
    expect(request).toHaveBeenCalledTimes(1);
    expect(request).toHaveBeenCalledWith({ type: 'weightsReport' });
    expect(useWeights.getState()).toMatchObject({ phase: 'ready', key: 'm|1', report: { entryId: 1 } });
  });

  it('a slower, older answer never overwrites a newer one; clear() drops a pending one', async () => {
    const slow = deferred<unknown>();
    const fast = deferred<unknown>();
    request.mockReturnValueOnce(slow.promise).mockReturnValueOnce(fast.promise);
    const a = useWeights.getState().ensure('m|1');
    const b = useWeights.getState().ensure('m|1,2');
    fast.resolve({ entryId: 2 });
    await b;
    slow.resolve({ entryId: 1 });
    await a;
    expect(useWeights.getState().report).toEqual({ entryId: 2 });

    const late = deferred<unknown>();
    request.mockReturnValueOnce(late.promise);
    const c = useWeights.getState().ensure('m|1,2,3');
    useWeights.getState().clear();
    late.resolve({ entryId: 3 });
    await c;
    expect(useWeights.getState()).toMatchObject({ phase: 'idle', key: null, report: null });
  });

  it('reports a failure and retries the same key', async () => {
    request.mockRejectedValueOnce(new Error('boom')).mockResolvedValueOnce(null);
    await useWeights.getState().ensure('m|');
    expect(useWeights.getState()).toMatchObject({ phase: 'error', error: 'boom' });
    await useWeights.getState().ensure('m|');
    expect(useWeights.getState()).toMatchObject({ phase: 'ready', report: null });
  });
});
