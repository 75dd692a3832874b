// Builds the e2e flavour of the app (vite build --mode e2e → out/e2e-app/) when it is missing or older than
// its sources, so `npm run test:e2e` always tests what is in the tree without rebuilding needlessly.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
export const APP_DIR = join(ROOT, 'out/e2e-app');
const SOURCES = ['src', 'public', 'index.html', 'vite.config.ts', 'package.json'];

function newestMtime(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)));
  return newest;
}

export default function globalSetup(): void {
  const built = join(APP_DIR, 'index.html');
  const builtAt = existsSync(built) ? statSync(built).mtimeMs : 0;
  const sourcesAt = Math.max(...SOURCES.map((s) => newestMtime(join(ROOT, s))));
  if (process.env.MENDLAB_E2E_REBUILD !== '1' && builtAt > sourcesAt) return;
  console.log('[e2e] building the app: vite build --mode e2e');
  execFileSync(join(ROOT, 'node_modules/.bin/vite'), ['build', '--mode', 'e2e', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}
