// Choose the model: one shipped with the app, or a Hugging Face Hub id. Shows download progress,
// where the files came from, and every loading failure in words.
import { useEffect, useId, useState, type FormEvent } from 'react';
import { useApp, type AppState } from '../store/app-store';
import { parseModelRef } from '../store/launch-options';
import type { ModelSource } from '../worker/protocol';
import { DownloadProgress } from './DownloadProgress';
import { formatCount } from './format';

/** How a source is named on the page: the catalog title of a shipped model, else its URL or Hub id. */
function describeSource(source: ModelSource, catalog: AppState['catalog']): string {
  if (source.kind === 'hub') return `${source.id}${source.revision !== 'main' ? `@${source.revision}` : ''} (Hugging Face Hub)`;
  const entry = catalog.status === 'ready' ? catalog.models.find((m) => m.ref === source.label) : undefined;
  return entry ? `${entry.title} (${entry.ref})` : source.label;
}

export function ModelPicker() {
  const catalog = useApp((s) => s.catalog);
  const model = useApp((s) => s.model);
  const backendReady = useApp((s) => s.backend.phase === 'ready');
  const loadModel = useApp((s) => s.loadModel);
  const clearCache = useApp((s) => s.clearCache);
  const notice = useApp((s) => s.notice);
  const launchModel = useApp((s) => s.launch.model);
  const cachedFileCount = useApp((s) => s.cachedFileCount);
  const cacheEpoch = useApp((s) => s.cacheEpoch);

  const [hubText, setHubText] = useState('');
  // Show the Hub id being loaded (from the URL or a reload) in the field, so "Load" retries it.
  const hubRef = (s?: ModelSource | null) => (s?.kind === 'hub' ? (s.revision === 'main' ? s.id : `${s.id}@${s.revision}`) : null);
  const loadingHubId = hubRef(model.source) ?? hubRef(launchModel);
  useEffect(() => {
    if (loadingHubId) setHubText(loadingHubId);
  }, [loadingHubId]);
  const [hubError, setHubError] = useState<string | null>(null);
  const [shipped, setShipped] = useState<string>('');
  const ids = { shipped: useId(), hub: useId(), hubHelp: useId() };
  const busy = model.phase === 'running' || !backendReady;

  // Tell the user, before they press Load, whether this Hub id is already in the browser cache.
  const [cachedHint, setCachedHint] = useState<{ id: string; files: number } | null>(null);
  useEffect(() => {
    const parsed = parseModelRef(hubText, 'main');
    if (!backendReady || !('kind' in parsed) || parsed.kind !== 'hub') return setCachedHint(null);
    let live = true;
    const timer = setTimeout(() => {
      void cachedFileCount(parsed).then((files) => live && setCachedHint({ id: hubRef(parsed)!, files }));
    }, 250);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [hubText, backendReady, cacheEpoch, cachedFileCount]);

  const shippedModels = catalog.status === 'ready' ? catalog.models : [];
  const shippedName = shipped || (catalog.status === 'ready' ? catalog.defaultName ?? '' : '');

  const onShipped = (e: FormEvent) => {
    e.preventDefault();
    const entry = shippedModels.find((m) => m.name === shippedName);
    if (entry) void loadModel({ kind: 'url', url: new URL(entry.ref, document.baseURI).href, label: entry.ref });
  };
  const onHub = (e: FormEvent) => {
    e.preventDefault();
    const parsed = parseModelRef(hubText, 'main', document.baseURI);
    if ('error' in parsed) {
      setHubError(parsed.error);
      return;
    }
    setHubError(null);
    void loadModel(parsed);
  };

  return (
    <section className="panel" aria-labelledby="model-heading">
      <h2 id="model-heading">Model</h2>

      <form className="row" onSubmit={onShipped} aria-label="Load a shipped model">
        <label htmlFor={ids.shipped}>Shipped model</label>
        {catalog.status === 'ready' && shippedModels.length > 0 ? (
          <>
            <select id={ids.shipped} value={shippedName} onChange={(e) => setShipped(e.target.value)} data-testid="shipped-select">
              {shippedModels.map((m) => (
                <option key={m.name} value={m.name}>{m.title}</option>
              ))}
            </select>
            <button type="submit" disabled={busy} data-testid="load-shipped">Load</button>
          </>
        ) : (
          <p className="note" id={ids.shipped} data-testid="catalog-status">
            {catalog.status === 'loading' ? 'Looking for shipped models…' : catalog.status === 'ready' ? 'No models are listed in models/models.json.' : catalog.message}
          </p>
        )}
      </form>

      <form className="row" onSubmit={onHub} aria-label="Load a model from the Hugging Face Hub">
        <label htmlFor={ids.hub}>Hugging Face model id</label>
        <input
          id={ids.hub}
          type="text"
          value={hubText}
          placeholder="openai-community/gpt2"
          spellCheck={false}
          autoCapitalize="off"
          autoComplete="off"
          aria-describedby={ids.hubHelp}
          aria-invalid={hubError ? true : undefined}
          onChange={(e) => setHubText(e.target.value)}
          data-testid="hub-id"
        />
        <button type="submit" disabled={busy} data-testid="load-hub">Load</button>
      </form>
      <p className="hint" id={ids.hubHelp}>
        A GPT-2-family checkpoint with <code>model.safetensors</code> and <code>tokenizer.json</code>. Downloads are kept in
        this browser’s cache, so the next visit downloads nothing.
      </p>
      {cachedHint && cachedHint.files > 0 && cachedHint.id === hubText.trim() && hubRef(model.source) !== cachedHint.id && (
        <p className="hint" data-testid="hub-cached-hint">
          <span className="badge badge-cache">In cache</span> {cachedHint.id}: {cachedHint.files} files in this browser’s cache; loading it downloads nothing.
        </p>
      )}
      {hubError && <p className="error" role="alert" data-testid="hub-id-error">{hubError}</p>}

      <div className="model-status" aria-live="polite" data-testid="model-status" data-phase={model.phase}>
        {model.phase === 'running' && model.source && (
          <p>Loading <strong>{describeSource(model.source, catalog)}</strong>… {model.stage && <span className="stage">{model.stage}</span>}</p>
        )}
        {model.phase === 'ready' && model.summary && model.source && (
          <p data-testid="model-summary">
            <strong>{describeSource(model.source, catalog)}</strong> ready: {model.summary.nLayer} layers, {model.summary.nEmbd} wide,{' '}
            {model.summary.vocabSize} tokens, {formatCount(model.summary.parameters)} parameters ({model.summary.dtypes.join('/')} weights).{' '}
            <span className={`badge ${model.summary.fromCache ? 'badge-cache' : 'badge-net'}`} data-testid="cache-badge" data-from-cache={String(model.summary.fromCache)}>
              {model.summary.fromCache ? 'From cache' : 'Downloaded'}
            </span>{' '}
            <span className="muted">({(model.summary.loadMs / 1000).toFixed(1)} s)</span>
          </p>
        )}
        {model.phase === 'idle' && !model.source && <p className="muted">No model loaded yet.</p>}
      </div>
      {model.phase === 'error' && model.error && (
        <div className="error" role="alert" data-testid="model-error">
          <strong>{model.source ? `Could not load ${describeSource(model.source, catalog)}.` : 'Could not load the model.'}</strong>
          <p>{model.error.message}</p>
        </div>
      )}
      {model.files.some((f) => f.loaded > 0 || model.phase !== 'error') && <DownloadProgress files={model.files} stopped={model.phase === 'error'} />}

      <div className="row">
        <button type="button" className="secondary" onClick={() => void clearCache()} disabled={busy} data-testid="clear-cache">
          Clear downloaded models
        </button>
        {notice && <span className="muted" role="status">{notice}</span>}
      </div>
    </section>
  );
}
