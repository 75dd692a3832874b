// What the page's URL asks for. Lets a link (or a test) choose the model and the backend:
//   ?model=models/facts-gpt/      a model folder URL (relative to the page, or absolute); folders end with '/'
//   ?model=openai-community/gpt2  a Hugging Face Hub id (owner/name, or owner/name@revision)
//   &revision=main                the Hub revision (branch, tag or commit)
//   &backend=wasm|webgpu|auto     force the WASM fallback (or WebGPU); 'auto' picks WebGPU when available
// The e2e build additionally honours &hub=<base url> (see src/worker/hub-override.ts).
import type { BackendChoice, ModelSource } from '../worker/protocol';

export interface LaunchOptions {
  model: ModelSource | null;
  /** Why ?model= could not be used, when it was given but is neither a folder URL nor a Hub id. */
  modelError?: string;
  backend: BackendChoice;
  /** Hub mirror base URL, only ever set in the e2e test build. */
  hubBaseUrl?: string;
}

const HUB_ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const REVISION = /^[\w.-]+(?:\/[\w.-]+)*$/;

/** Decide whether text names a Hub model or a folder URL. Folder URLs end with '/' or contain '://'. */
export function parseModelRef(text: string, revision = 'main', baseUrl?: string): ModelSource | { error: string } {
  const ref = text.trim();
  if (!ref) return { error: 'Enter a Hugging Face model id such as openai-community/gpt2.' };
  if (ref.endsWith('/') || ref.includes('://') || ref.startsWith('.') || ref.startsWith('/')) {
    try {
      const url = new URL(ref, baseUrl ?? globalThis.location?.href).href;
      return { kind: 'url', url: url.endsWith('/') ? url : `${url}/`, label: ref };
    } catch {
      return { error: `"${ref}" is not a valid folder URL.` };
    }
  }
  // owner/name@revision picks a branch, tag or commit (as the CLI's --model accepts).
  const at = ref.indexOf('@');
  const id = at < 0 ? ref : ref.slice(0, at);
  const rev = at < 0 ? revision.trim() || 'main' : ref.slice(at + 1);
  if (!HUB_ID.test(id) || id.includes('..')) {
    return { error: `"${ref}" is not a Hugging Face model id: use owner/name, e.g. openai-community/gpt2.` };
  }
  if (!REVISION.test(rev) || rev.split('/').some((p) => p === '..' || p === '.')) {
    return { error: `"${rev}" is not a valid revision (a branch, tag or commit).` };
  }
  return { kind: 'hub', id, revision: rev };
}

export function readLaunchOptions(search: string, baseUrl: string): LaunchOptions {
  const q = new URLSearchParams(search);
  const b = q.get('backend');
  const backend: BackendChoice = b === 'wasm' || b === 'webgpu' ? b : 'auto';
  const modelText = q.get('model');
  let model: ModelSource | null = null;
  let modelError: string | undefined;
  if (modelText) {
    const parsed = parseModelRef(modelText, q.get('revision') ?? 'main', baseUrl);
    if ('kind' in parsed) model = parsed;
    else modelError = `The link asks for model=${modelText}: ${parsed.error}`;
  }
  const hub = import.meta.env.MODE === 'e2e' ? q.get('hub') ?? undefined : undefined;
  return { model, ...(modelError && { modelError }), backend, hubBaseUrl: hub };
}

/** Keep the URL in step with what the user chose, so the address bar is always a shareable link. */
export function writeLaunchOptions(patch: { backend?: BackendChoice; model?: ModelSource | null }): void {
  const url = new URL(location.href);
  if (patch.backend !== undefined) {
    if (patch.backend === 'auto') url.searchParams.delete('backend');
    else url.searchParams.set('backend', patch.backend);
  }
  if (patch.model !== undefined) {
    url.searchParams.delete('revision');
    if (!patch.model) url.searchParams.delete('model');
    else if (patch.model.kind === 'hub') {
      url.searchParams.set('model', patch.model.id);
      if (patch.model.revision !== 'main') url.searchParams.set('revision', patch.model.revision);
    } else url.searchParams.set('model', patch.model.label);
  }
  history.replaceState(null, '', url);
}
