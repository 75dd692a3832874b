// Page-side bounds on what the page hands the worker to replay (hardening, issue 7). The engine checks all of this
// again (src/session/history.ts HISTORY_LIMITS, src/worker/edit-host.ts LIMITS); checking here as well means an
// oversized history file, saved record or share link is refused with a clear message before it is structured-cloned
// into the worker and queued behind other requests, and the worker never spends time on it.
import { HISTORY_LIMITS } from '../session/history';
import { formatBytes } from './memory-check';
import type { RequestBody } from './protocol';

/** The same caps as edit-host.ts LIMITS.sharedEdits and share-link.ts SHARE_LIMITS.edits. */
export const SHARED_EDITS_MAX = 20;

/** Why the request must not reach the worker, or null when it may. */
export function requestRefusal(body: RequestBody): string | null {
  if (body.type === 'importHistory') {
    let text: string | undefined;
    try {
      text = JSON.stringify(body.json);
    } catch {
      return 'the edit history cannot be imported: it is not plain JSON data';
    }
    const bytes = text === undefined ? 0 : new TextEncoder().encode(text).byteLength;
    if (bytes > HISTORY_LIMITS.bytes) {
      return `the edit history is ${formatBytes(bytes)}; at most ${formatBytes(HISTORY_LIMITS.bytes)} can be imported`;
    }
    const entries = (body.json as { entries?: unknown } | null)?.entries;
    if (Array.isArray(entries) && entries.length > HISTORY_LIMITS.entries) {
      return `the edit history has ${entries.length} edits; at most ${HISTORY_LIMITS.entries} can be imported`;
    }
  }
  if (body.type === 'importShared' && body.shared.edits.length > SHARED_EDITS_MAX) {
    return `a share link holds at most ${SHARED_EDITS_MAX} edits; this one has ${body.shared.edits.length}`;
  }
  return null;
}
