// Page-wide messages about faults the app recovered from (src/store/system-store.ts): a GPU that was reset and what
// was reloaded, a GPU out of memory, and a damaged saved history with a download of what could still be read.
// Everything is rendered as text (React escapes it); nothing here is ever parsed as HTML.
import { useEffect, useMemo } from 'react';
import '../store/recovery'; // registers the handler for the worker's device-loss events
import { useSystem } from '../store/system-store';

function SalvageLink() {
  const salvage = useSystem((s) => s.salvage);
  const dismiss = useSystem((s) => s.setSalvage);
  const href = useMemo(() => (salvage ? URL.createObjectURL(new Blob([salvage.json], { type: 'application/json' })) : null), [salvage]);
  useEffect(() => () => void (href && URL.revokeObjectURL(href)), [href]);
  if (!salvage || !href) return null;
  return (
    <div className="notice error" role="alert" data-testid="salvage">
      <span>
        The history saved in this browser for {salvage.key} was damaged ({salvage.reason}) and has been reset.{' '}
        <a href={href} download="mendlab-salvaged-history.json" data-testid="salvage-download">Download what could be read</a>
      </span>{' '}
      <button type="button" onClick={() => dismiss(null)}>Dismiss</button>
    </div>
  );
}

export function SystemNotice() {
  const notice = useSystem((s) => s.notice);
  const dismiss = useSystem((s) => s.setNotice);
  return (
    <>
      {notice && (
        <div
          className={notice.kind === 'error' ? 'notice error' : 'notice'}
          role={notice.kind === 'error' ? 'alert' : 'status'}
          aria-live="polite"
          data-testid="system-notice"
          data-kind={notice.kind}
        >
          <span>{notice.text}</span>{' '}
          {notice.kind !== 'working' && <button type="button" onClick={() => dismiss(null)}>Dismiss</button>}
        </div>
      )}
      <SalvageLink />
    </>
  );
}
