// One-line messages of the editing playground (a damaged store that was reset, a refused link or file).
import { useEdit } from '../../store/edit-store';

export function EditNotice() {
  const notice = useEdit((s) => s.notice);
  const dismiss = useEdit((s) => s.dismissNotice);
  if (!notice) return null;
  return (
    <div className={notice.kind === 'error' ? 'notice error' : 'notice'} role={notice.kind === 'error' ? 'alert' : 'status'} data-testid="edit-notice" data-kind={notice.kind}>
      <span>{notice.text}</span> <button type="button" onClick={dismiss}>Dismiss</button>
    </div>
  );
}
