// Loading by Hugging Face Hub id, against a local stand-in for the Hub (tests/helpers/hub-server.ts) that the
// e2e build is pointed at with ?hub=. Production builds ignore that parameter and always use huggingface.co.
// Page behaviour, not backend behaviour: playwright.config.ts runs this file in the 'wasm' project only.
import { join } from 'node:path';
import { startHubServer, type HubServer } from '../tests/helpers/hub-server';
import { startCorsProxy, type CorsProxy } from './cors-proxy';
import { expect, FIXTURES_DIR, generate, safestGreedy, test, waitForModel } from './fixtures';

const REPO = 'mendlab/tiny-gpt2';
let hub: HubServer;
let proxy: CorsProxy;

test.beforeEach(async () => {
  hub = await startHubServer({ [REPO]: join(FIXTURES_DIR, 'tiny-gpt2') });
  hub.rules.lfsRedirect = true; // like the real Hub: weights answer with a 302 to a CDN URL
  proxy = await startCorsProxy(hub.url);
});
test.afterEach(async () => {
  await proxy.close();
  await hub.close();
});

const resolveRequests = () => hub.requests.filter((p) => p.includes('/resolve/') || p.startsWith('/cdn/'));

test('a Hub id downloads with per-file progress, and a second visit reads everything from the cache', async ({ page, server, shot }) => {
  proxy.slow['/model.safetensors'] = 120; // ~10 pieces: long enough to see the bar part-way
  await page.goto(`${server.url}?hub=${encodeURIComponent(proxy.url)}`);
  await expect(page.getByTestId('backend-badge')).toHaveText('WASM');

  await page.getByLabel('Hugging Face model id').fill(REPO);
  await page.getByLabel('Hugging Face model id').press('Enter');

  // While the weights trickle in, their row shows a partly filled bar and the total is not complete yet.
  const weights = page.locator('[data-testid="file-progress"][data-file="model.safetensors"]');
  await expect(weights).toHaveAttribute('data-done', 'false');
  await expect.poll(async () => weights.locator('progress').evaluate((p: HTMLProgressElement) => p.value / p.max)).toBeGreaterThan(0);
  const partial = await page.getByTestId('download-total').evaluate((p: HTMLProgressElement) => p.value / p.max);
  expect(partial).toBeLessThan(1);
  await shot('hub-downloading');

  await waitForModel(page);
  await expect(page.getByTestId('model-summary')).toContainText(`${REPO} (Hugging Face Hub)`);
  await expect(page.getByTestId('cache-badge')).toHaveText('Downloaded');
  const files = page.getByTestId('file-progress');
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) {
    await expect(files.filter({ has: page.getByText(f, { exact: true }) })).toHaveAttribute('data-from-cache', 'false');
  }
  expect(new URL(page.url()).searchParams.get('model')).toBe(REPO); // the address bar is now a link to this model
  const golden = safestGreedy();
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
  await shot('hub-downloaded');

  // Second visit (same browser profile): the form says the id is cached before Load is pressed, and then
  // every file comes from the Cache API: the server sees no request at all.
  const before = resolveRequests().length;
  expect(before).toBeGreaterThanOrEqual(5);
  await page.goto(`${server.url}?hub=${encodeURIComponent(proxy.url)}`);
  await page.getByLabel('Hugging Face model id').fill(REPO);
  await expect(page.getByTestId('hub-cached-hint')).toContainText(`${REPO}: 5 files`);
  await page.getByTestId('load-hub').click();
  await waitForModel(page);
  await expect(page.getByTestId('cache-badge')).toHaveText('From cache');
  await expect(page.getByTestId('download-progress')).toContainText('Read from the browser cache');
  const rows = await files.evaluateAll((els) => els.map((e) => e.getAttribute('data-from-cache')));
  expect(rows.length).toBe(5);
  expect(rows.every((r) => r === 'true')).toBe(true);
  expect(resolveRequests().length).toBe(before);
  await shot('hub-from-cache');

  // A reload of the model's link also reads from the cache.
  await page.reload();
  await waitForModel(page);
  await expect(page.getByTestId('cache-badge')).toHaveText('From cache');
  expect(resolveRequests().length).toBe(before);

  // "Clear downloaded models" empties the cache: the next load downloads again.
  await page.getByTestId('clear-cache').click();
  await expect(page.getByRole('status').filter({ hasText: 'removed' })).toBeVisible();
  await page.reload();
  await waitForModel(page);
  await expect(page.getByTestId('cache-badge')).toHaveText('Downloaded');
  expect(resolveRequests().length).toBeGreaterThan(before);
});

test('a Hub id that does not exist gives a clear 404 error naming the file', async ({ page, server, shot }) => {
  await page.goto(`${server.url}?hub=${encodeURIComponent(proxy.url)}&model=nobody/no-such-model`);
  const error = page.getByTestId('model-error');
  await expect(error).toContainText('Could not load nobody/no-such-model (Hugging Face Hub).');
  await expect(error).toContainText('config.json: not found (404)');
  await expect(page.getByTestId('generate')).toBeDisabled();
  await shot('hub-404');
});

test('a download cut off part-way is reported as truncated, and nothing broken is cached', async ({ page, server }) => {
  hub.rules.dropAfter[`${REPO}/model.safetensors`] = 1000;
  await page.goto(`${server.url}?hub=${encodeURIComponent(proxy.url)}&model=${REPO}`);
  await expect(page.getByTestId('model-error')).toContainText('model.safetensors');
  await expect(page.getByTestId('model-error')).toContainText('truncated');

  // The server recovers; loading again must fetch the weights again rather than a cached broken copy.
  delete hub.rules.dropAfter[`${REPO}/model.safetensors`];
  await page.getByTestId('load-hub').click();
  await expect(page.getByTestId('model-error')).toHaveCount(0);
  await waitForModel(page);
  await expect(page.getByTestId('cache-badge')).toHaveText('Downloaded');
});
