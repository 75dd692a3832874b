import { createReadStream, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';

// The tfjs WASM backend fetches its .wasm binaries at run time from a path we give it (setWasmPaths).
// Rather than committing copies of those binaries into public/, this plugin serves them straight from
// node_modules in dev and emits them as build assets under a stable, unhashed name: `tfjs-wasm/<file>`.
const WASM_DIR = fileURLToPath(new URL('./node_modules/@tensorflow/tfjs-backend-wasm/dist/', import.meta.url));
const WASM_FILES = ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm'];
const WASM_PUBLIC_DIR = 'tfjs-wasm/';

function tfjsWasmBinaries(): Plugin {
  return {
    name: 'mendlab-tfjs-wasm-binaries',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const path = (req.url ?? '').split('?')[0];
        const file = WASM_FILES.find((f) => path.endsWith(`/${WASM_PUBLIC_DIR}${f}`));
        if (!file) return next();
        res.setHeader('Content-Type', 'application/wasm');
        createReadStream(WASM_DIR + file).pipe(res);
      });
    },
    generateBundle() {
      for (const file of WASM_FILES) {
        this.emitFile({ type: 'asset', fileName: WASM_PUBLIC_DIR + file, source: readFileSync(WASM_DIR + file) });
      }
    },
  };
}

// Content-Security-Policy, as a <meta> tag in the built index.html (a static host cannot be relied on to send the
// header). It is the second line of defence: the page never renders text as HTML, and model downloads only ever go to
// the app's own origin or the Hugging Face Hub, and this makes the browser enforce both.
//   connect-src  'self' (the shipped models/, the WASM binaries) and the Hub: huggingface.co serves config and
//                tokenizer files and answers weights with a redirect to its LFS/CDN hosts (cdn-lfs*.huggingface.co,
//                cdn-lfs*.hf.co, cas-bridge.xethub.hf.co), and CSP checks every hop of a redirect.
//   script-src   'self' plus 'wasm-unsafe-eval', which the tfjs WASM backend needs to compile its .wasm; no inline
//                scripts, no eval.
//   worker-src   'self' and blob: (src/worker/client.ts starts the model worker from a blob: module so that it
//                inherits this policy; a worker loaded from a URL would not).
// The e2e build also allows http://127.0.0.1:* so the tests' Hub stand-in (tests/helpers/hub-server.ts) is reachable.
// Dev mode (vite serve) gets no policy: its HMR client needs inline scripts and a websocket.
export const HUB_CONNECT_SOURCES = ['https://huggingface.co', 'https://*.huggingface.co', 'https://*.hf.co'];

export function contentSecurityPolicy(mode: string): string {
  const connect = ["'self'", ...HUB_CONNECT_SOURCES, ...(mode === 'e2e' ? ['http://127.0.0.1:*'] : [])];
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    `connect-src ${connect.join(' ')}`,
    "img-src 'self' data: blob:",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'none'",
  ].join('; ');
}

function cspMetaTag(mode: string): Plugin {
  return {
    name: 'mendlab-csp',
    apply: 'build',
    transformIndexHtml: () => [
      { tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy(mode) }, injectTo: 'head-prepend' },
    ],
  };
}

// `vite build --mode e2e` is the build the Playwright tests run against. It differs from the production build
// in one thing only: the worker honours a `?hub=` query parameter that points Hub downloads at a local server
// (see src/worker/hub-override.ts). Production builds always fetch from https://huggingface.co.
export default defineConfig(({ mode }) => ({
  base: './',
  plugins: [react(), tfjsWasmBinaries(), cspMetaTag(mode)],
  build: {
    outDir: mode === 'e2e' ? 'out/e2e-app' : 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096, // tfjs + tokenizers are large by nature; the worker chunk is loaded once
  },
  worker: { format: 'es' },
  // The worker's dependencies are found only when the worker first loads; listing them up front saves the
  // dev server a dependency re-bundle and a full page reload on the first visit.
  optimizeDeps: {
    include: ['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-backend-webgpu', '@huggingface/transformers'],
  },
  preview: { host: '127.0.0.1' },
  server: { host: '127.0.0.1' },
}));
