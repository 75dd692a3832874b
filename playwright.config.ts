// Playwright e2e: the built app (vite build --mode e2e, see e2e/global-setup.ts) in Debian's Chromium.
// Never downloads a browser: every project launches /usr/bin/chromium.
//   webgpu: headless Chromium with WebGPU on SwiftShader (the flags below); the app should pick WebGPU.
//   wasm:   the same Chromium without those flags, so the page has no WebGPU adapter and falls back to WASM.
import { defineConfig } from '@playwright/test';

const CHROMIUM = process.env.MENDLAB_CHROMIUM ?? '/usr/bin/chromium';
const COMMON_ARGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const WEBGPU_ARGS = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-webgpu-adapter=swiftshader'];

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  globalSetup: './e2e/global-setup.ts',
  outputDir: 'test-results/playwright',
  // Two CPU cores shared with other work: one browser at a time, and generous timeouts for SwiftShader.
  workers: 1,
  fullyParallel: false,
  timeout: 120_000,
  expect: { timeout: 60_000 },
  retries: 0,
  reporter: [['list']],
  use: {
    viewport: { width: 1280, height: 800 },
    screenshot: 'only-on-failure',
    trace: 'off',
  },
  projects: [
    {
      name: 'webgpu',
      // Page behaviour that does not depend on the backend runs once, in the quicker 'wasm' project.
      testIgnore: ['**/picker.spec.ts', '**/hub.spec.ts', '**/edit-damaged-store.spec.ts', '**/scan-batch.spec.ts', '**/scan-both.spec.ts'],
      use: { browserName: 'chromium', launchOptions: { executablePath: CHROMIUM, args: [...COMMON_ARGS, ...WEBGPU_ARGS] } },
    },
    {
      name: 'wasm',
      testIgnore: ['**/backend-switch.spec.ts'],
      use: { browserName: 'chromium', launchOptions: { executablePath: CHROMIUM, args: COMMON_ARGS } },
    },
  ],
});
