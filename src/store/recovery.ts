// Recovering from a lost GPU (hardening, issue 7), without a page reload and without losing the user's edits.
//
// The worker watches GPUDevice.lost (src/worker/gpu.ts). When it fires, every weight buffer is gone, so:
//   1. the history the page shows is written to IndexedDB (it normally is already; this closes the gap of a save
//      still in flight),
//   2. a fresh worker starts on the same backend choice and loads the same model (app-store restartAfterFault);
//      if WebGPU does not come back, WASM is used instead,
//   3. the editing store, seeing the model ready again, replays the saved history as after any load (edit-store.ts),
//   4. the user is told what happened and whether all N edits were re-applied (src/ui/SystemNotice.tsx).
// An edit that was running when the device went is not in the history: its request fails with "the model worker
// was restarted before this finished", shown where the edit's result would have been.
// A worker that dies of an error that escaped it (the client sees an `error` event) is recovered the same way.
import type { HistoryView } from '../worker/protocol';
import { currentWorker, onWorkerEvent, useApp } from './app-store';
import { useEdit } from './edit-store';
import { save } from './persist';
import { useSystem } from './system-store';

let recovering = false;
/** e2e build only: make WebGPU fail to come back, to exercise the WASM fallback */
let failWebgpuOnRecovery = false;

const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;

function appliedCount(h: HistoryView | null): number {
  return h ? h.items.filter((i) => i.applied).length : 0;
}

/**
 * Resolves once the editing store has finished restoring the history after a load (null: the model has no editing),
 * or after `timeoutMs` with whatever it shows then, so the notice can never stay on "Reloading…" forever.
 */
function historySettled(timeoutMs = 300_000): Promise<HistoryView | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      stop?.();
      resolve(useEdit.getState().history);
    }, timeoutMs);
    let stop: (() => void) | undefined;
    const done = (v: HistoryView | null) => {
      clearTimeout(timer);
      resolve(v);
    };
    const check = (): boolean => {
      const s = useEdit.getState();
      if (useApp.getState().model.phase !== 'ready') return false;
      if (!s.editing) return done(null), true;
      if (s.history && !s.historyBusy) return done(s.history), true;
      return false;
    };
    if (check()) return;
    stop = useEdit.subscribe(() => {
      if (check()) stop!();
    });
  });
}

/**
 * The recovery for both faults: 'gpu' (GPUDevice.lost) and 'worker' (an error escaped the model worker, which the
 * client turned into failed requests). `why` is the browser's message.
 */
export async function recoverFromFault(cause: 'gpu' | 'worker', why: string): Promise<void> {
  if (recovering) return;
  recovering = true;
  const notify = useSystem.getState().setNotice;
  const headline = cause === 'gpu' ? 'The GPU was reset' : 'The model worker stopped';
  try {
    const app = useApp.getState();
    const edit = useEdit.getState();
    const choice = app.backend.choice;
    const wasOnGpu = cause === 'gpu' || app.backend.info?.backend === 'webgpu';
    const hadModel = !!app.model.source;
    const applied = appliedCount(edit.history);
    // an edit still running now will fail with the old worker; it is not in the history and must be said so
    const interrupted = edit.run.phase === 'running' ? ' The edit that was running did not complete; apply it again.' : '';
    if (edit.modelKey && edit.history) {
      const { modelKey, history, ownParaphrases, ownNeighbours } = edit;
      await save(modelKey, { history: history.items.length ? history.json : null, ownParaphrases, ownNeighbours }).catch(() => undefined);
    }
    notify({
      kind: 'working',
      text: `${headline} (${why || 'no reason given'}). ${hadModel ? `Reloading the model${applied ? ` and re-applying your ${plural(applied, 'edit')}` : ''}…` : 'Restarting…'}`,
    });

    let ready = await app.restartAfterFault(choice, { testFailWebgpu: failWebgpuOnRecovery });
    if (!ready && choice !== 'wasm') ready = await useApp.getState().restartAfterFault('wasm');
    const after = useApp.getState();
    const fellBackToWasm = wasOnGpu && after.backend.info?.backend !== 'webgpu';
    const backendNote = fellBackToWasm ? `WebGPU could not be restarted, so the model now runs on the CPU through ${after.backend.info?.backend === 'cpu' ? 'plain JavaScript' : 'WASM'} (slower); ` : '';
    if (!ready) {
      const err = after.model.error?.message ?? after.backend.error?.message ?? 'unknown error';
      notify({ kind: 'error', text: `${headline} and the model could not be reloaded: ${err}. Your edits are saved in this browser; reload the page to try again.` });
      return;
    }
    if (!hadModel) {
      notify({ kind: fellBackToWasm ? 'error' : 'info', text: `${headline}; ${backendNote}the app was restarted.` });
      return;
    }
    const restored = appliedCount(await historySettled());
    if (restored === applied) {
      const edits = applied ? ` and your ${plural(applied, 'edit')} re-applied` : '';
      notify({ kind: fellBackToWasm ? 'error' : 'info', text: `${headline}; ${backendNote}the model was reloaded${edits}.${interrupted}` });
    } else {
      notify({
        kind: 'error',
        text: `${headline}; ${backendNote}the model was reloaded, but only ${restored} of your ${plural(applied, 'edit')} could be re-applied (see the message below).${interrupted}`,
      });
    }
  } finally {
    recovering = false;
  }
}

onWorkerEvent((event) => {
  if (event.kind === 'gpuLost') void recoverFromFault('gpu', event.message || event.reason);
  else if (event.kind === 'workerStopped') void recoverFromFault('worker', event.message);
  else if (!recovering) useSystem.getState().setNotice({ kind: 'error', text: event.message });
});

// Fault injection for the Playwright tests, present only in the e2e build (vite --mode e2e; the condition is a
// build-time constant, so production bundles do not contain this block).
if (import.meta.env.MODE === 'e2e') {
  (globalThis as { __mendlabTest?: unknown }).__mendlabTest = {
    /** destroys the WebGPU device the worker's tfjs uses, as a driver reset would; false off WebGPU */
    destroyGpuDevice: async () => (await currentWorker()!.request({ type: 'testHook', action: 'destroyGpuDevice' })).done,
    /** while on, WebGPU does not come back after a device loss */
    failWebgpuOnRecovery: (on: boolean) => void (failWebgpuOnRecovery = on),
  };
}
