// GPU faults (hardening, issue 7): a lost WebGPU device is recovered without a page reload (the model is reloaded
// and the edit history re-applied, the user is told), WebGPU that does not come back falls back to WASM with a
// message, and a model too large for the backend is refused from its config.json before any weights are downloaded.
import { join } from 'node:path';
import { startHubServer, type HubServer } from '../tests/helpers/hub-server';
import { expect, FIXTURES_DIR, test } from './fixtures';
import { applyEdit, FT_EDIT, openTiny } from './hardening-steps';

type TestHooks = { destroyGpuDevice(): Promise<boolean>; failWebgpuOnRecovery(on: boolean): void };

test('a lost GPU device is recovered: the model is reloaded and the edits re-applied, then WASM if WebGPU does not come back', async ({ page, server, shot }, testInfo) => {
  // Device loss exists only on WebGPU: in the 'wasm' project there is no device to lose.
  test.skip(testInfo.project.name !== 'webgpu', 'WebGPU only: there is no GPU device to lose on WASM');
  test.setTimeout(600_000);
  await openTiny(page, server.url);
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'webgpu');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await applyEdit(page, FT_EDIT, 'ft');
  const before = (await page.getByTestId('before-text').textContent())!;
  const after = (await page.getByTestId('after-text').textContent())!;
  expect(after).not.toBe(before); // the edit changed what the model says, so "still there" below can fail
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await page.evaluate(() => ((window as unknown as { pageMarker: number }).pageMarker = 42)); // gone if the page reloads

  // 1. the device is destroyed (what a driver reset does): detected, reloaded, history replayed, user told
  expect(await page.evaluate(() => (window as unknown as { __mendlabTest: TestHooks }).__mendlabTest.destroyGpuDevice())).toBe(true);
  const notice = page.getByTestId('system-notice');
  await expect(notice).toHaveAttribute('data-kind', 'info');
  await expect(notice).toContainText('The GPU was reset; the model was reloaded and your 1 edit re-applied.');
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'webgpu');
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'true');
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
  await expect(page.getByTestId('now-text')).toHaveText(after); // the edited output is still there
  expect(await page.evaluate(() => (window as unknown as { pageMarker?: number }).pageMarker)).toBe(42);
  await shot('gpu-recovered');

  // 2. the device is lost again and WebGPU cannot start any more: WASM takes over, with a message
  await page.evaluate(() => {
    const hooks = (window as unknown as { __mendlabTest: TestHooks }).__mendlabTest;
    hooks.failWebgpuOnRecovery(true);
    return hooks.destroyGpuDevice();
  });
  await expect(notice).toHaveAttribute('data-kind', 'error');
  await expect(notice).toContainText('WebGPU could not be restarted, so the model now runs on the CPU through WASM (slower); the model was reloaded and your 1 edit re-applied.');
  await expect(page.getByTestId('backend-badge')).toHaveAttribute('data-backend', 'wasm');
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
  await expect(page.getByTestId('now-text')).toHaveText(after);
  expect(await page.evaluate(() => (window as unknown as { pageMarker?: number }).pageMarker)).toBe(42);
  await shot('gpu-fell-back-to-wasm');
});

test.describe('a model too large for this backend', () => {
  let hub: HubServer;
  test.beforeEach(async () => {
    hub = await startHubServer({ 'mendlab/too-big': join(FIXTURES_DIR, 'tiny-gpt2') });
    // A config.json declaring a 2^20-token vocabulary of width 4096: the embedding alone is 2^32 fp32 values
    // (16 GiB), past any GPU's per-buffer limit and the 4 GiB WASM heap. Only the config is replaced; the check
    // must refuse the model before the (small, real) weights are even requested.
    hub.rules.overrides['mendlab/too-big/config.json'] = JSON.stringify({
      model_type: 'gpt2', vocab_size: 2 ** 20, n_positions: 128, n_embd: 4096, n_layer: 2, n_head: 16,
    });
  });
  test.afterEach(async () => hub.close());

  test('is refused from config.json with the size it needs and the limit, before any weights are downloaded', async ({ page, server }, testInfo) => {
    await page.goto(`${server.url}?hub=${encodeURIComponent(hub.url)}&model=mendlab/too-big`);
    const error = page.getByTestId('model-error');
    if (testInfo.project.name === 'webgpu') {
      await expect(error).toContainText(/needs a 16 GiB buffer for transformer\.wte\.weight \(18\.8 GB of weights in all\); this GPU allows at most \S+ \S+ per buffer \((maxBufferSize|maxStorageBufferBindingSize)\)/);
    } else {
      await expect(error).toContainText('needs 18.8 GB for its weights (the largest, transformer.wte.weight, is 16 GiB); the WebAssembly (WASM) backend can hold at most 4.3 GB');
    }
    const files = hub.requests.map((p) => p.split('/').pop());
    expect(files).toContain('config.json');
    expect(files).not.toContain('model.safetensors');
    expect(files).not.toContain('tokenizer.json');
    await expect(page.getByTestId('generate')).toBeDisabled();
  });
});
