// Share links: the edit list in the page URL (?edits=…), so opening the link on another machine replays the same
// edits on the same model. Only requests travel (method, facts, how many are applied), never weights.
// The parameter is bounded and validated: a link is untrusted input.
import { MAX_FACTS_PER_EDIT } from '../session/facts';
import type { EditMethod, SharedEdits } from '../worker/protocol';

export const SHARE_PARAM = 'edits';
export const SHARE_LIMITS = { edits: 20, promptChars: 300, targetChars: 100, paramChars: 8000 } as const;

export class ShareLinkError extends Error {
  constructor(message: string) {
    super(`share link: ${message}`);
    this.name = 'ShareLinkError';
  }
}

// URL-safe base64 of UTF-8 JSON: compact, and survives chat apps that mangle "%", "+" and "/".
function toBase64Url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(b64: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(b64)) throw new ShareLinkError('the edit list is not valid base64url');
  const bin = atob(b64.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}

/**
 * The compact wire form: {"v":1,"p":position,"e":[["m"|"f", prompt, target], ...]} (m = MEND, f = fine-tuning); a batch
 * edit carries its further facts as a fourth item, [["m", prompt, target, [[prompt, target], ...]]].
 */
export function encodeSharedEdits(shared: SharedEdits): string {
  validate(shared);
  const e = shared.edits.map((x) => {
    const first = [x.method === 'mend' ? 'm' : 'f', x.prompt, x.target];
    return x.more?.length ? [...first, x.more.map((f) => [f.prompt, f.target])] : first;
  });
  const param = toBase64Url(JSON.stringify({ v: 1, p: shared.position, e }));
  if (param.length > SHARE_LIMITS.paramChars) throw new ShareLinkError(`the edit list is too long for a link (${param.length} characters); export it as a file instead`);
  return param;
}

export function decodeSharedEdits(param: string): SharedEdits {
  if (param.length > SHARE_LIMITS.paramChars) throw new ShareLinkError(`the edit list is longer than ${SHARE_LIMITS.paramChars} characters`);
  let json: unknown;
  try {
    json = JSON.parse(fromBase64Url(param));
  } catch (e) {
    throw e instanceof ShareLinkError ? e : new ShareLinkError('the edit list could not be read');
  }
  const o = json as { v?: unknown; p?: unknown; e?: unknown };
  if (!o || typeof o !== 'object' || o.v !== 1) throw new ShareLinkError('unknown link version');
  if (!Array.isArray(o.e)) throw new ShareLinkError('no edit list');
  const isPair = (f: unknown): f is [string, string] => Array.isArray(f) && f.length === 2 && typeof f[0] === 'string' && typeof f[1] === 'string';
  const edits = o.e.map((x, i) => {
    if (!Array.isArray(x) || (x.length !== 3 && x.length !== 4) || (x[0] !== 'm' && x[0] !== 'f') || typeof x[1] !== 'string' || typeof x[2] !== 'string'
      || (x.length === 4 && !(Array.isArray(x[3]) && x[3].every(isPair)))) {
      throw new ShareLinkError(`edit ${i + 1} is malformed`);
    }
    const edit: SharedEdits['edits'][number] = { method: (x[0] === 'm' ? 'mend' : 'ft') as EditMethod, prompt: x[1], target: x[2] };
    if (x.length === 4) edit.more = (x[3] as Array<[string, string]>).map(([prompt, target]) => ({ prompt, target }));
    return edit;
  });
  const shared = { edits, position: o.p as number };
  validate(shared);
  return shared;
}

function validate(s: SharedEdits): void {
  if (s.edits.length === 0) throw new ShareLinkError('the edit list is empty');
  if (s.edits.length > SHARE_LIMITS.edits) throw new ShareLinkError(`at most ${SHARE_LIMITS.edits} edits fit in a link`);
  if (!Number.isInteger(s.position) || s.position < 0 || s.position > s.edits.length) throw new ShareLinkError('the applied count is out of range');
  s.edits.forEach((e, i) => {
    const facts = [e, ...(e.more ?? [])];
    if (facts.length > MAX_FACTS_PER_EDIT) throw new ShareLinkError(`edit ${i + 1} has ${facts.length} facts; one edit holds at most ${MAX_FACTS_PER_EDIT}`);
    facts.forEach((f, j) => {
      const which = facts.length > 1 ? `edit ${i + 1}, fact ${j + 1}` : `edit ${i + 1}`;
      if (f.prompt.trim() === '' || f.target.trim() === '') throw new ShareLinkError(`${which} has an empty prompt or target`);
      if (f.prompt.length > SHARE_LIMITS.promptChars) throw new ShareLinkError(`${which}: the prompt is longer than ${SHARE_LIMITS.promptChars} characters`);
      if (f.target.length > SHARE_LIMITS.targetChars) throw new ShareLinkError(`${which}: the target is longer than ${SHARE_LIMITS.targetChars} characters`);
    });
  });
}

/** The edit list of an exported history (session/history.ts), for a link: every fact of every edit. */
export function sharedFromHistory(json: unknown): SharedEdits | null {
  const h = json as { position?: number; entries?: Array<{ method: EditMethod; facts: Array<{ prompt: string; target: string }> }> };
  if (!h?.entries?.length) return null;
  const edits = h.entries.map((e) => {
    const [first, ...more] = e.facts;
    const edit: SharedEdits['edits'][number] = { method: e.method, prompt: first.prompt, target: first.target };
    if (more.length) edit.more = more.map((f) => ({ prompt: f.prompt, target: f.target }));
    return edit;
  });
  return { edits, position: h.position ?? 0 };
}

/** The page URL with the edit list set (other parameters, like ?model=, kept). */
export function shareUrl(pageUrl: string, shared: SharedEdits): string {
  const u = new URL(pageUrl);
  u.searchParams.set(SHARE_PARAM, encodeSharedEdits(shared));
  u.hash = '';
  return u.href;
}
