// The edit history: every edit, undo/redo, revert all, export/import as a file, a share link, and a recheck of every
// applied edit on the weights as they are now.
import { useId, useRef, useState } from 'react';
import { useEdit } from '../../store/edit-store';
import type { HistoryRecheck } from '../../worker/protocol';
import { downloadJson } from '../download';
import { HISTORY_WORDING, ScanResult, scanFile } from './KnowledgeScan';
import { pct, signedPct } from '../format';

export function History() {
  const s = useEdit();
  const fileRef = useRef<HTMLInputElement>(null);
  const [link, setLink] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const linkId = useId();
  const h = s.history;
  const busy = s.historyBusy || s.run.phase === 'running' || !h;
  const items = h?.items ?? [];

  const exportFile = () => {
    if (h) downloadJson('mendlab-history.json', h.json);
  };

  const makeLink = async () => {
    const url = s.shareLink();
    setLink(url);
    setCopied(false);
    if (url && navigator.clipboard) {
      try {
        await navigator.clipboard.writeText(url);
        setCopied(true);
      } catch {
        // no clipboard permission: the link is shown in the field to copy by hand
      }
    }
  };

  return (
    <section className="panel" aria-labelledby="history-heading" data-testid="history" data-saves={s.saves}>
      <h2 id="history-heading">History</h2>
      {items.length === 0 ? <p className="muted" data-testid="history-empty">No edits yet.</p> : (
        <ol className="history-list" data-testid="history-list">
          {items.map((e) => (
            <li key={e.id} data-testid="history-item" data-applied={e.applied} className={e.applied ? '' : 'undone'}>
              <span className="tag">{e.method === 'mend' ? 'MEND' : 'FT'}</span> “{e.prompt}” → “{e.target}”
              {e.more.length > 0 && (
                <details className="batch-more" data-testid="history-batch">
                  <summary>and {e.more.length} more fact{e.more.length === 1 ? '' : 's'} in the same edit</summary>
                  <ol start={2}>{e.more.map((f) => <li key={f.prompt}>“{f.prompt}” → “{f.target}”</li>)}</ol>
                </details>
              )}
              {!e.applied && <span className="muted"> (undone)</span>}
            </li>
          ))}
        </ol>
      )}
      <div className="row buttons">
        <button type="button" onClick={() => void s.undo()} disabled={busy || !h?.canUndo} data-testid="undo">Undo</button>
        <button type="button" onClick={() => void s.redo()} disabled={busy || !h?.canRedo} data-testid="redo">Redo</button>
        <button type="button" onClick={() => void s.revertAll()} disabled={busy || !h?.canUndo} data-testid="revert-all">Revert all</button>
        <button type="button" onClick={() => void s.clearHistory()} disabled={busy || items.length === 0} data-testid="clear-history">Clear history</button>
      </div>
      <div className="row buttons">
        <button type="button" onClick={exportFile} disabled={busy || items.length === 0} data-testid="export-history">Export file</button>
        <button type="button" onClick={() => fileRef.current?.click()} disabled={busy} data-testid="import-history">Import file…</button>
        <input ref={fileRef} type="file" accept="application/json,.json" className="visually-hidden" tabIndex={-1} aria-hidden="true"
          data-testid="import-file"
          onChange={async (e) => {
            const f = e.target.files?.[0];
            e.target.value = '';
            if (f) await s.importFile(f);
          }} />
        <button type="button" onClick={() => void makeLink()} disabled={busy || items.length === 0} data-testid="share-link">Share link</button>
      </div>
      <Recheck busy={busy} />
      <HistoryScanPanel busy={busy} />
      {link && (
        <div className="row">
          <label htmlFor={linkId}>{copied ? 'Link copied:' : 'Link:'}</label>
          <input id={linkId} type="text" readOnly value={link} data-testid="share-url" onFocus={(e) => e.target.select()} />
        </div>
      )}
      {s.now && (
        <p aria-live="polite" data-testid="now" data-pending={s.now.pending}>
          Now the model says: <span className="prompt-echo">{s.now.prompt}</span>
          <strong data-testid="now-text">{s.now.pending ? '…' : s.now.text}</strong>
        </p>
      )}
    </section>
  );
}

/**
 * Every applied edit's facts asked again on the weights now. Edits apply one after another, so a later edit can undo
 * an earlier one: the same prompt edited again, or one edit's bleed into another's fact. Shown only while the
 * history is the one it was measured on.
 */
function Recheck({ busy }: { busy: boolean }) {
  const s = useEdit();
  const applied = (s.history?.items ?? []).filter((i) => i.applied).map((i) => i.id);
  const r = s.recheck;
  const result = r.result && r.result.appliedIds.join() === applied.join() ? r.result : null;
  if (applied.length === 0) return null;
  const ok = result ? result.facts.filter((f) => f.success).length : 0;
  return (
    <div className="recheck" data-testid="recheck">
      <div className="row buttons">
        <button type="button" onClick={() => void s.recheckHistory()} disabled={busy || r.phase === 'running'} data-testid="recheck-history">
          Check every edit now
        </button>
        <span className="hint">Edits apply one after another, so a later edit can undo an earlier one.</span>
      </div>
      <div role="status" aria-live="polite">
        {r.phase === 'running' && 'Asking the model every edited prompt again…'}
        {result && (
          <p data-testid="recheck-summary" data-ok={ok === result.facts.length} className={ok === result.facts.length ? 'ok' : 'bad'}>
            {ok} of {result.facts.length} edited fact{result.facts.length === 1 ? '' : 's'} still give{result.facts.length === 1 ? 's' : ''} the new target.
          </p>
        )}
        {result?.perplexity && <ModelHealth p={result.perplexity} />}
      </div>
      {r.phase === 'error' && <p className="error" role="alert" data-testid="recheck-error">The check failed: {r.error}</p>}
      {result && (
        <ul className="recheck-list">
          {result.facts.map((f) => (
            <li key={`${f.entryId}-${f.prompt}`} data-testid="recheck-fact" data-success={f.success}>
              <span className={f.success ? 'ok' : 'bad'}>{f.success ? '✓' : '✗'}</span> edit {f.position}: “{f.prompt}” → “{f.target}”;
              now <span className="prompt-echo">“{f.text.trimEnd()}”</span> <span className="muted nowrap">P(new) {pct(f.targetProb)}</span>
            </li>
          ))}
        </ul>
      )}
      {result && result.facts.length > 1 && (
        <div className="row buttons">
          <button type="button" onClick={() => void s.batchFromHistory()} disabled={busy} data-testid="batch-from-history">
            Revert all, and put these facts in the form as one batch
          </button>
          <span className="hint">Edits made one after another interfere; the same facts edited together in one update usually hold.</span>
        </div>
      )}
    </div>
  );
}

/**
 * The knowledge scan of the whole history: the facts index asked on the original weights and on the weights now,
 * around every edited fact. What the edits did together, which grows faster than any one edit shows (docs/eval.md
 * "Sequential edits"). Shown only while the history is the one it was measured on.
 */
function HistoryScanPanel({ busy }: { busy: boolean }) {
  const s = useEdit();
  const appliedItems = (s.history?.items ?? []).filter((i) => i.applied);
  const applied = appliedItems.map((i) => i.id);
  const r = s.historyScan;
  if (!s.facts || applied.length === 0) return null; // no facts index to ask, or nothing to compare
  const result = r.result && r.result.appliedIds.join() === applied.join() ? r.result : null;
  return (
    <div className="history-scan" data-testid="history-scan">
      <div className="row buttons">
        <button type="button" onClick={() => void s.scanHistory()} disabled={busy || r.phase === 'running'} data-testid="history-scan-start">
          Scan what all the edits changed
        </button>
        <span className="hint">
          The knowledge scan of every applied edit together: the model's taught facts around all {applied.length === 1 ? 'the edited fact' : 'edited facts'}, asked in the original model and now.
        </span>
      </div>
      {r.phase === 'running' && <p role="status" data-testid="history-scan-status">{r.message}</p>}
      {r.phase === 'error' && <p role="alert" className="bad" data-testid="history-scan-error">The scan failed: {r.error}</p>}
      {r.result && !result && r.phase !== 'running' && (
        <p className="muted" data-testid="history-scan-stale">The history has changed since the last scan; scan again to see what the edits change now.</p>
      )}
      {result && (
        <>
          <p className="hint" data-testid="history-scan-scope">
            {applied.length} applied edit{applied.length === 1 ? '' : 's'}, {result.facts} edited fact{result.facts === 1 ? '' : 's'} (a prompt edited twice counts with its latest target).
          </p>
          <ScanResult results={[result]} wording={HISTORY_WORDING} file={() => scanFile('history', [result], appliedItems, s.modelKey)} />
        </>
      )}
    </div>
  );
}

/** The held-out perplexity now against the original model's: what the whole history has done to the rest of the model. */
function ModelHealth({ p }: { p: NonNullable<HistoryRecheck['perplexity']> }) {
  return (
    <p data-testid="recheck-perplexity" data-flagged={p.flagged} className={p.flagged ? 'bad' : 'muted'}>
      Held-out perplexity {p.original.toPrecision(4)} for the original model, {p.now.toPrecision(4)} now ({signedPct(p.ratio - 1)}).
      {p.flagged && ` Past ×${p.threshold}: the edits so far may have damaged the model; Undo or Revert all brings it back.`}
    </p>
  );
}
