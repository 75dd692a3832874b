/// <reference types="vite/client" />
// The model worker: owns tfjs, the loaded model and its tokenizer, so the page stays responsive while weights
// download, upload to the GPU and generate. Requests are handled strictly one at a time, in arrival order
// (a generate sent during a load waits for it); each ends with exactly one result or error message.
import * as editHost from './edit-host';
import * as host from './engine-host';
import { weightsReport } from './weights-host';
import type { ProgressEvent, WorkerErrorInfo, WorkerRequest, WorkerResponse } from './protocol';

const scope = self as unknown as { postMessage(msg: WorkerResponse): void; onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null };

function errorInfo(e: unknown): WorkerErrorInfo {
  if (e instanceof Error) {
    const file = (e as { file?: unknown }).file;
    return { message: e.message || e.name, kind: e.name, file: typeof file === 'string' ? file : undefined };
  }
  return { message: String(e), kind: 'Error' };
}

async function handle(req: WorkerRequest, emit: (p: ProgressEvent) => void): Promise<unknown> {
  switch (req.type) {
    case 'init':
      return host.init(req.backend, req.wasmBaseUrl, req.hubBaseUrl);
    case 'load': {
      editHost.detach(); // the session's buffers belong to the model about to be replaced
      const summary = await host.load(req.source, emit);
      summary.editing = await editHost.attach(host.loadedModel()!, emit);
      return summary;
    }
    case 'generate':
      return host.generate(req.prompt, req.options, emit);
    case 'topk':
      return host.topk(req.prompt, req.k);
    case 'cacheStatus':
      return host.cacheStatus(req.source);
    case 'clearCache':
      return host.clearCache();
    case 'edit':
      return editHost.edit(req.request, emit);
    case 'undo':
      return editHost.undo();
    case 'redo':
      return editHost.redo();
    case 'revertAll':
      return editHost.revertAll();
    case 'clearHistory':
      return editHost.clearHistory();
    case 'importHistory':
      return editHost.importHistory(req.json, emit);
    case 'importShared':
      return editHost.importShared(req.shared, emit);
    case 'weightsReport':
      return weightsReport(editHost.editingContext());
  }
}

let queue: Promise<void> = Promise.resolve();

scope.onmessage = (e) => {
  const req = e.data;
  const emit = (progress: ProgressEvent) => scope.postMessage({ id: req.id, type: 'progress', progress });
  queue = queue.then(async () => {
    try {
      const result = (await handle(req, emit)) as WorkerResponse extends { result: infer R } ? R : never;
      scope.postMessage({ id: req.id, type: 'result', result });
    } catch (err) {
      scope.postMessage({ id: req.id, type: 'error', error: errorInfo(err) });
    }
  });
};
