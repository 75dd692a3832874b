// Which compute backend runs the model, and a friendly word when it is not WebGPU.
import { useApp } from '../store/app-store';
import type { BackendChoice } from '../worker/protocol';

const NAMES = { webgpu: 'WebGPU', wasm: 'WASM', cpu: 'CPU (JavaScript)' } as const;

export function BackendBadge() {
  const backend = useApp((s) => s.backend);
  const label = backend.info ? NAMES[backend.info.backend] : backend.phase === 'error' ? 'No backend' : 'Starting…';
  return (
    <span
      className={`badge badge-${backend.info?.backend ?? backend.phase}`}
      data-testid="backend-badge"
      data-backend={backend.info?.backend ?? ''}
      title="The compute backend running the model"
    >
      {label}
    </span>
  );
}

/** The note under the header explaining a fallback, and the switch to force WASM. */
export function BackendControls() {
  const backend = useApp((s) => s.backend);
  const setBackendChoice = useApp((s) => s.setBackendChoice);
  const busy = backend.phase === 'running';
  const onToggle = (forceWasm: boolean) => {
    const choice: BackendChoice = forceWasm ? 'wasm' : 'auto';
    void setBackendChoice(choice);
  };
  return (
    <div className="backend-controls">
      <label className="checkbox">
        <input
          type="checkbox"
          checked={backend.choice === 'wasm'}
          disabled={busy}
          onChange={(e) => onToggle(e.target.checked)}
          data-testid="force-wasm"
        />
        Use WASM (CPU) instead of WebGPU
      </label>
      {backend.info?.fallbackReason && (
        <p className="note" data-testid="backend-note" role="status">
          {backend.info.fallbackReason}
        </p>
      )}
      {backend.phase === 'error' && backend.error && (
        <p className="error" role="alert" data-testid="backend-error">
          The model runtime could not start: {backend.error.message}
        </p>
      )}
    </div>
  );
}
