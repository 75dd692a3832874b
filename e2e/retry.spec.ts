// A single-fact edit the shipped editor's first MEND pass leaves short of its target is asked of the editor once
// more (editor_config.json batch_retry with min_facts 1; docs/training.md "A retry for single edits"), and the page
// says so: the result shows the passes, the edit took, and the weights panel and the lesson say they describe the
// first pass. The fact is one of the validation edits the retry was chosen on: in PyTorch its edit prompt misses the
// second target token after pass 1 by a logit margin of −1.96 and takes it after the retry (not a borderline case,
// so float32 WebGPU/WASM and PyTorch agree on it).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_DIR, expect, test } from './fixtures';
import { applyPromptOnlyMendEdit, openPlayground } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
const editorConfig = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/editor_config.json'), 'utf8')) as {
  batch_retry?: { max_passes: number; min_facts?: number };
};
const RETRIED = { prompt: 'Did you know? Makiyivka is in the country of', target: ' New Zealand' };

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('a single edit its first MEND pass left short is retried, and the page says so', async ({ page, shot }) => {
  test.setTimeout(600_000);
  expect(editorConfig.batch_retry?.min_facts).toBe(1); // the shipped editor retries single edits
  await openPlayground(page, server.url);
  await applyPromptOnlyMendEdit(page, RETRIED, 'Makiyivka');

  const mend = page.getByTestId('result-mend');
  await expect(mend.locator('[data-testid="summary-edit"]')).toHaveAttribute('data-ok', 'true');
  await expect(mend.locator('[data-testid="after-text"]')).toHaveText(/^ New Zealand/);
  await expect(mend.getByTestId('result-passes')).toHaveText('2 passes');

  const panel = page.getByTestId('weights-panel');
  await expect(panel.getByTestId('weights-retry-note')).toContainText('this edit took 2 passes', { timeout: 180_000 });
  await expect(panel.getByTestId('weights-retry-note')).toContainText('first pass');
  await panel.scrollIntoViewIfNeeded();
  await shot('weights-retried-edit');
});
