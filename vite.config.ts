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

// `vite build --mode e2e` is the build the Playwright tests run against. It differs from the production build
// in one thing only: the worker honours a `?hub=` query parameter that points Hub downloads at a local server
// (see src/worker/hub-override.ts). Production builds always fetch from https://huggingface.co.
export default defineConfig(({ mode }) => ({
  base: './',
  plugins: [react(), tfjsWasmBinaries()],
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
