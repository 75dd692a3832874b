/// <reference types="vite/client" />
// The model worker: owns tfjs, the loaded model and its tokenizer, so the page stays responsive while weights
// download, upload to the GPU and generate. Requests are handled strictly one at a time, in arrival order
// (a generate sent during a load waits for it); each ends with exactly one result or error message.
import * as editHost from './edit-host';
import * as host from './engine-host';
import { destroyDeviceForTest, guardGpuMemory } from './gpu';
import { weightsReport } from './weights-host';
import type { ProgressEvent, WorkerErrorInfo, WorkerEvent, WorkerRequest, WorkerResponse } from './protocol';

const scope = self as unknown as { postMessage(msg: WorkerResponse): void; onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null };

function errorInfo(e: unknown): WorkerErrorInfo {
  if (e instanceof Error) {
    const file = (e as { file?: unknown }).file;
    return { message: e.message || e.name, kind: e.name, file: typeof file === 'string' ? file : undefined };
  }
  return { message: String(e), kind: 'Error' };
}

const postEvent = (event: WorkerEvent) => scope.postMessage({ id: 0, type: 'event', event });

async function handle(req: WorkerRequest, emit: (p: ProgressEvent) => void): Promise<unknown> {
  switch (req.type) {
    case 'init':
      return host.init(req.backend, req.wasmBaseUrl, { hubOverride: req.hubBaseUrl, testFailWebgpu: req.testFailWebgpu, onEvent: postEvent });
    case 'load':
      return guardGpuMemory('while loading the model', async () => {
        editHost.detach(); // the session's buffers belong to the model about to be replaced
        const summary = await host.load(req.source, emit);
        summary.editing = await editHost.attach(host.loadedModel()!, emit);
        return summary;
      });
    case 'generate':
      return guardGpuMemory('while generating', () => host.generate(req.prompt, req.options, emit));
    case 'topk':
      return guardGpuMemory('while scoring the next token', () => host.topk(req.prompt, req.k));
    case 'cacheStatus':
      return host.cacheStatus(req.source);
    case 'clearCache':
      return host.clearCache();
    case 'edit':
      return guardGpuMemory('during the edit', () => editHost.edit(req.request, emit));
    case 'undo':
      return editHost.undo();
    case 'redo':
      return editHost.redo();
    case 'revertAll':
      return editHost.revertAll();
    case 'clearHistory':
      return editHost.clearHistory();
    case 'importHistory':
      return guardGpuMemory('while replaying the edit history', () => editHost.importHistory(req.json, emit));
    case 'importShared':
      return guardGpuMemory('while replaying the share link', () => editHost.importShared(req.shared, emit));
    case 'recheckHistory':
      return editHost.recheckHistory(req.maxNewTokens);
    case 'scanKnowledge':
      return guardGpuMemory('while scanning the knowledge base', () => editHost.scanKnowledge(req.entryId, req.method, emit));
    case 'scanHistory':
      return guardGpuMemory('while scanning the knowledge base', () => editHost.scanHistory(emit));
    case 'weightsReport':
      return guardGpuMemory('while analysing the edit', () => weightsReport(editHost.editingContext()));
    case 'testHook':
      // Only the e2e build (vite --mode e2e) can be told to break; `import.meta.env.MODE` is a build-time constant,
      // so production bundles contain only the refusal.
      if (import.meta.env.MODE !== 'e2e') throw new Error('test hooks exist only in the e2e build');
      return { done: destroyDeviceForTest() };
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
