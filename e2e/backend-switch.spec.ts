// Switching a WebGPU-capable browser to the WASM backend, from the page and from the URL. Only meaningful
// where WebGPU would otherwise be chosen, so playwright.config.ts runs this file in the 'webgpu' project only.
import { expect, generate, openApp, safestGreedy, test, waitForModel } from './fixtures';

const golden = safestGreedy('tiny-gpt2');

test('the "Use WASM" switch moves the model to the WASM backend and gives the same greedy text', async ({ page, server, shot }) => {
  await openApp(page, server, { model: `${server.url}fixtures/tiny-gpt2/` });
  await expect(page.getByTestId('backend-badge')).toHaveText('WebGPU');
  await waitForModel(page);

  await page.getByLabel('Use WASM (CPU) instead of WebGPU').check();
  await expect(page.getByTestId('backend-badge')).toHaveText('WASM');
  await expect(page.getByTestId('backend-note')).toContainText('WASM was chosen');
  expect(new URL(page.url()).searchParams.get('backend')).toBe('wasm');
  await waitForModel(page);
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
  await shot('forced-wasm');

  // And back: unticking restarts the worker on WebGPU and reloads the model there.
  await page.getByLabel('Use WASM (CPU) instead of WebGPU').uncheck();
  await expect(page.getByTestId('backend-badge')).toHaveText('WebGPU');
  expect(new URL(page.url()).searchParams.has('backend')).toBe(false);
  await waitForModel(page);
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
});

test('?backend=wasm forces the WASM backend from the URL', async ({ page, server }) => {
  await openApp(page, server, { model: `${server.url}fixtures/tiny-gpt2/`, backend: 'wasm' });
  await expect(page.getByTestId('backend-badge')).toHaveText('WASM');
  await expect(page.getByTestId('force-wasm')).toBeChecked();
  await waitForModel(page);
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
});
