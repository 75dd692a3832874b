// The page's states around the model (not the editing playground): the backend badge with its WASM note, and the
// model picker while a Hub download is in progress, on the tiny fixture model (seconds, on either backend). Each
// state is saved as a screenshot (test-results/screens/) and audited with axe-core (test-results/a11y/); serious or
// critical findings fail the test. Runs in both projects: the badge and its note differ between them.
import { join } from 'node:path';
import { startHubServer, type HubServer } from '../tests/helpers/hub-server';
import { startCorsProxy, type CorsProxy } from './cors-proxy';
import { expect, FIXTURES_DIR, test, waitForModel } from './fixtures';

const REPO = 'mendlab/tiny-gpt2';
let hub: HubServer;
let proxy: CorsProxy;

test.beforeEach(async () => {
  hub = await startHubServer({ [REPO]: join(FIXTURES_DIR, 'tiny-gpt2') });
  proxy = await startCorsProxy(hub.url);
});
test.afterEach(async () => {
  await proxy.close();
  await hub.close();
});

test('backend badge, WASM note and Hub download progress: screenshots and no serious accessibility findings', async ({ page, server, shot, audit }, testInfo) => {
  const webgpu = testInfo.project.name === 'webgpu';
  proxy.slow['/model.safetensors'] = 120; // the weights trickle in, so the progress bars can be seen part-way
  await page.goto(`${server.url}?hub=${encodeURIComponent(proxy.url)}`);
  const badge = page.getByTestId('backend-badge');
  await expect(badge).toHaveText(webgpu ? 'WebGPU' : 'WASM');
  if (!webgpu) {
    // no WebGPU adapter: the badge says WASM and the note says why, as a status message
    await expect(page.getByTestId('backend-note')).toBeVisible();
    await expect(page.getByTestId('backend-note')).toHaveAttribute('role', 'status');
    await shot('wasm-fallback');
  }
  await audit('start');

  const id = page.getByLabel('Hugging Face model id');
  await id.fill(REPO);
  await id.press('Enter');
  const weights = page.locator('[data-testid="file-progress"][data-file="model.safetensors"]');
  await expect(weights).toHaveAttribute('data-done', 'false');
  await expect.poll(async () => weights.locator('progress').evaluate((p: HTMLProgressElement) => p.value / p.max)).toBeGreaterThan(0);
  // every progress bar has an accessible name
  for (const bar of await page.locator('progress').all()) await expect(bar).toHaveAccessibleName(/\S/);
  await shot('hub-downloading');
  await audit('hub-downloading');

  await waitForModel(page);
  await audit('hub-loaded');

  if (webgpu) {
    // the same note appears when a WebGPU browser is switched to WASM by hand
    await page.getByLabel('Use WASM (CPU) instead of WebGPU').check();
    await expect(badge).toHaveText('WASM');
    await expect(page.getByTestId('backend-note')).toContainText('WASM was chosen');
    await waitForModel(page);
    await shot('wasm-forced');
    await audit('wasm-forced');
  }
});
