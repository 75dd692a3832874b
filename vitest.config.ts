// Unit, parity and Node-WebGPU tests (Playwright specs in e2e/ run separately).
// Test files run in forked processes: each gets its own tfjs engine/backend and its own Dawn instance.
// The WebGPU tests need VK_ICD_FILENAMES/LD_LIBRARY_PATH set before node starts (see npm run test:unit).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'tests/**/*.test.ts'],
    exclude: ['e2e/**', 'node_modules/**', 'dist/**'],
    environment: 'node',
    pool: 'forks',
    // The build machine has 2 cores; WebGPU here is SwiftShader on the CPU, so more workers only thrash.
    maxWorkers: 2,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
