// The page's handle on the model worker: turns the id-tagged message protocol into promises.
// Nothing here knows about tfjs; it only starts the worker and routes its messages.
import type { ProgressEvent, RequestBody, ResultOf, WorkerErrorInfo, WorkerRequest, WorkerResponse } from './protocol';

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

  constructor() {
    this.worker = new Worker(new URL('./model.worker.ts', import.meta.url), { type: 'module', name: 'mendlab-model' });
    this.worker.addEventListener('message', (e: MessageEvent<WorkerResponse>) => this.onMessage(e.data));
    // A worker that fails to load or throws outside a request would otherwise leave every promise hanging
    // and the page spinning forever; fail them all with the reason instead.
    this.worker.addEventListener('error', (e: ErrorEvent) => {
      e.preventDefault();
      this.failAll({ kind: 'WorkerError', message: `The model worker stopped: ${e.message || 'it could not be started (see the browser console)'}` });
    });
    this.worker.addEventListener('messageerror', () => {
      this.failAll({ kind: 'WorkerError', message: 'The model worker sent a message the page could not read.' });
    });
  }

  request<B extends RequestBody>(body: B, onProgress?: (event: ProgressEvent) => void): Promise<ResultOf[B['type']]> {
    if (this.dead) return Promise.reject(new WorkerRequestError(this.dead));
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
