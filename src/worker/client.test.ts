// The page-side client against a scripted stand-in for the Worker: ids route answers to the right promise,
// progress arrives before the result, errors keep their details, and a dying worker fails every caller.
import { resolveObjectURL } from 'node:buffer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ModelWorkerClient, WorkerRequestError } from './client';
import type { WorkerRequest, WorkerResponse } from './protocol';

class FakeWorker {
  static last: FakeWorker;
  readonly sent: WorkerRequest[] = [];
  terminated = false;
  private listeners: Record<string, ((e: unknown) => void)[]> = {};
  constructor(readonly url: string, readonly options: WorkerOptions) {
    FakeWorker.last = this;
  }
  addEventListener(type: string, fn: (e: unknown) => void) {
    (this.listeners[type] ??= []).push(fn);
  }
  postMessage(msg: WorkerRequest) {
    this.sent.push(msg);
  }
  terminate() {
    this.terminated = true;
  }
  reply(msg: WorkerResponse) {
    for (const fn of this.listeners.message ?? []) fn({ data: msg });
  }
  fail(message: string) {
    for (const fn of this.listeners.error ?? []) fn({ message, preventDefault() {} });
  }
}

const realWorker = globalThis.Worker;
beforeEach(() => {
  (globalThis as { Worker: unknown }).Worker = FakeWorker;
});
afterEach(() => {
  (globalThis as { Worker: unknown }).Worker = realWorker;
});

describe('ModelWorkerClient', () => {
  it('starts the model worker as a module and tags each request with a fresh id', async () => {
    const c = new ModelWorkerClient();
    void c.request({ type: 'topk', prompt: 'a', k: 3 });
    void c.request({ type: 'clearCache' });
    const w = FakeWorker.last;
    expect(w.options.type).toBe('module');
    // a blob: module that only imports the real worker script, so the worker inherits the page's CSP
    expect(w.url.startsWith('blob:')).toBe(true);
    const boot = await resolveObjectURL(w.url)!.text();
    expect(boot).toMatch(/^import "[^"]*\/model\.worker\.ts[^"]*";\n$/);
    expect(w.sent.map((m) => [m.id, m.type])).toEqual([[1, 'topk'], [2, 'clearCache']]);
  });

  it('routes progress and results by id, whatever order they come back in', async () => {
    const c = new ModelWorkerClient();
    const progress: string[] = [];
    const a = c.request({ type: 'generate', prompt: 'x', options: { maxNewTokens: 2, temperature: 0, topK: 0 } }, (p) => {
      if (p.stage === 'token') progress.push(p.text);
    });
    const b = c.request({ type: 'clearCache' });
    const w = FakeWorker.last;
    w.reply({ id: 2, type: 'result', result: { deleted: true } });
    w.reply({ id: 1, type: 'progress', progress: { stage: 'token', text: ' y', newTokens: 1 } });
    w.reply({ id: 1, type: 'result', result: { prompt: 'x', completion: ' y', promptTokens: [1], newTokens: [2], ms: 1 } });
    await expect(b).resolves.toEqual({ deleted: true });
    await expect(a).resolves.toMatchObject({ completion: ' y' });
    expect(progress).toEqual([' y']);
  });

  it('rejects with the worker’s error details', async () => {
    const c = new ModelWorkerClient();
    const p = c.request({ type: 'load', source: { kind: 'hub', id: 'a/b', revision: 'main' } });
    FakeWorker.last.reply({ id: 1, type: 'error', error: { message: 'config.json: not found (404)', file: 'config.json', kind: 'ModelFileError' } });
    const err = await p.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkerRequestError);
    expect((err as WorkerRequestError).info).toEqual({ message: 'config.json: not found (404)', file: 'config.json', kind: 'ModelFileError' });
  });

  it('fails every pending and later request when the worker dies, instead of hanging', async () => {
    const c = new ModelWorkerClient();
    const p1 = c.request({ type: 'topk', prompt: 'a', k: 1 });
    const p2 = c.request({ type: 'topk', prompt: 'b', k: 1 });
    FakeWorker.last.fail('out of memory');
    await expect(p1).rejects.toThrow('The model worker stopped: out of memory');
    await expect(p2).rejects.toThrow('out of memory');
    await expect(c.request({ type: 'clearCache' })).rejects.toThrow('out of memory');
  });

  it('tells onEvent when the worker died, after failing what was pending', async () => {
    const c = new ModelWorkerClient();
    const events: unknown[] = [];
    c.onEvent = (e) => events.push(e);
    const p = c.request({ type: 'topk', prompt: 'a', k: 1 });
    FakeWorker.last.fail('Uncaught Error: simulated crash');
    await expect(p).rejects.toThrow('The model worker stopped: Uncaught Error: simulated crash');
    expect(events).toEqual([{ kind: 'workerStopped', message: 'Uncaught Error: simulated crash' }]);
  });

  it('hands what the worker reports outside any request (id 0) to onEvent, not to a pending request', async () => {
    const c = new ModelWorkerClient();
    const events: unknown[] = [];
    c.onEvent = (e) => events.push(e);
    const p = c.request({ type: 'topk', prompt: 'a', k: 1 });
    FakeWorker.last.reply({ id: 0, type: 'event', event: { kind: 'gpuLost', reason: 'destroyed', message: 'Device was destroyed.' } });
    FakeWorker.last.reply({ id: 1, type: 'result', result: [] });
    await expect(p).resolves.toEqual([]);
    expect(events).toEqual([{ kind: 'gpuLost', reason: 'destroyed', message: 'Device was destroyed.' }]);
  });

  it('refuses an oversized history import without sending it to the worker', async () => {
    const c = new ModelWorkerClient();
    const json = { format: 'mendlab-history', version: 1, entries: Array.from({ length: 1001 }, () => ({})) };
    await expect(c.request({ type: 'importHistory', json })).rejects.toThrow('the edit history has 1001 edits; at most 1000 can be imported');
    expect(FakeWorker.last.sent).toEqual([]);
  });

  it('terminate() stops the worker and fails what was pending', async () => {
    const c = new ModelWorkerClient();
    const p = c.request({ type: 'topk', prompt: 'a', k: 1 });
    c.terminate();
    expect(FakeWorker.last.terminated).toBe(true);
    await expect(p).rejects.toThrow('restarted');
  });
});
