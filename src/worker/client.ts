/// <reference types="vite/client" />
// The page's handle on the model worker: turns the id-tagged message protocol into promises.
// Nothing here knows about tfjs; it only starts the worker and routes its messages.
//
// The worker is started through a one-line blob: module that imports the real (bundled, same-origin) worker script.
// Why: a worker loaded from a URL gets its Content-Security-Policy from that script's HTTP response headers, which a
// static host does not send, so the page's <meta> CSP (vite.config.ts) would not cover the worker, and the worker
// is what downloads models. A worker from a blob: URL inherits the page's policy (checked in
// e2e/hardening-security.spec.ts), so the fetch allow-list applies to it too.
import modelWorkerUrl from './model.worker.ts?worker&url';
import { requestRefusal } from './request-bounds';
import type { ProgressEvent, RequestBody, ResultOf, WorkerErrorInfo, WorkerEvent, WorkerRequest, WorkerResponse } from './protocol';

/** Starts the model worker under the page's CSP (see above). */
export function spawnModelWorker(): Worker {
  const script = new URL(modelWorkerUrl, globalThis.location?.href ?? import.meta.url).href;
  const boot = URL.createObjectURL(new Blob([`import ${JSON.stringify(script)};\n`], { type: 'text/javascript' }));
  const worker = new Worker(boot, { type: 'module', name: 'mendlab-model' });
  // The blob is fetched when the worker starts; by its first message it is no longer needed.
  worker.addEventListener('message', () => URL.revokeObjectURL(boot), { once: true });
  return worker;
}

/** A failure reported by the worker (or the worker itself dying), carrying the structured details. */
export class WorkerRequestError extends Error {
  readonly info: WorkerErrorInfo;
  constructor(info: WorkerErrorInfo) {
    super(info.message);
    this.name = 'WorkerRequestError';
    this.info = info;
  }
}

interface Pending {
  resolve: (value: never) => void;
  reject: (error: WorkerRequestError) => void;
  onProgress?: (event: ProgressEvent) => void;
}

export class ModelWorkerClient {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: WorkerErrorInfo | null = null;
  /** Called with what the worker reports outside any request (a lost GPU device, a stray GPU error). */
  onEvent: ((event: WorkerEvent) => void) | null = null;

  constructor() {
    this.worker = spawnModelWorker();
    this.worker.addEventListener('message', (e: MessageEvent<WorkerResponse>) => this.onMessage(e.data));
    // A worker that fails to load or throws outside a request would otherwise leave every promise hanging
    // and the page spinning forever; fail them all with the reason instead.
    this.worker.addEventListener('error', (e: ErrorEvent) => {
      e.preventDefault();
      const why = e.message || 'it could not be started (see the browser console)';
      this.failAll({ kind: 'WorkerError', message: `The model worker stopped: ${why}` });
      this.onEvent?.({ kind: 'workerStopped', message: why });
    });
    this.worker.addEventListener('messageerror', () => {
      this.failAll({ kind: 'WorkerError', message: 'The model worker sent a message the page could not read.' });
    });
  }

  request<B extends RequestBody>(body: B, onProgress?: (event: ProgressEvent) => void): Promise<ResultOf[B['type']]> {
    if (this.dead) return Promise.reject(new WorkerRequestError(this.dead));
    const refusal = requestRefusal(body);
    if (refusal) return Promise.reject(new WorkerRequestError({ kind: 'RequestTooLarge', message: refusal }));
    const id = this.nextId++;
    return new Promise<ResultOf[B['type']]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: never) => void, reject, onProgress });
      this.worker.postMessage({ ...body, id } as WorkerRequest);
    });
  }

  /** Stop the worker (and free its GPU memory); pending requests fail with a clear reason. */
  terminate(): void {
    this.worker.terminate();
    this.failAll({ kind: 'Cancelled', message: 'The model worker was restarted before this finished.' });
  }

  private onMessage(msg: WorkerResponse): void {
    if (msg.type === 'event') {
      this.onEvent?.(msg.event);
      return;
    }
    const pending = this.pending.get(msg.id);
    if (!pending) return;
    if (msg.type === 'progress') {
      pending.onProgress?.(msg.progress);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'result') pending.resolve(msg.result as never);
    else pending.reject(new WorkerRequestError(msg.error));
  }

  private failAll(info: WorkerErrorInfo): void {
    this.dead = info;
    for (const p of this.pending.values()) p.reject(new WorkerRequestError(info));
    this.pending.clear();
  }
}
