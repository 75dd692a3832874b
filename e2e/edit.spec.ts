// The editing playground on the shipped model (facts-gpt with its trained MEND editor), on WebGPU and on WASM:
// apply an edit and see the new target after it; a paraphrase succeeds and a neighbour is unchanged; the history
// survives a reload, replays from a share link in a fresh browser context, undo restores the original output, and
// export + import reproduce it. The edit (France's capital → Rome) was checked first with the CLI
// (`npm run cli -- edit`): MEND reaches the target on the prompt and on the paraphrase used here and leaves the
// neighbour's greedy answer unchanged. Everything runs in one test per project: loading and editing on SwiftShader
// is slow, and each step builds on the previous one's state.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { APP_DIR, expect, test, waitForModel } from './fixtures';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
const facts = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/facts.json'), 'utf8'));

const EDIT = { prompt: 'The capital of France is', target: ' Rome' };
const ORIGINAL = ' ' + facts.subjects.France.facts.capital; // " Paris", what the model was taught
const PARAPHRASE = 'Q: What is the capital of France? A:';
const NEIGHBOUR = 'The capital of Japan is';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

async function historyReady(page: Page, count: number) {
  await expect(page.getByTestId('history-item')).toHaveCount(count);
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
}

test('edit a fact: before/after, paraphrase, neighbour, reload, share link, undo, export/import', async ({ page, browser, shot }, testInfo) => {
  test.setTimeout(300_000);
  await page.goto(server.url);
  await waitForModel(page);
  await expect(page.getByTestId('history-empty')).toBeVisible();

  const form = page.getByTestId('edit-panel');
  await form.getByLabel('Prompt', { exact: true }).fill(EDIT.prompt);
  await form.getByLabel('New target').fill(EDIT.target);
  // the prompt is recognised in facts.json and checks are proposed, labelled by how well the model knows the wording
  await expect(page.getByTestId('recognised')).toContainText('France');
  const paraphrases = page.getByTestId('paraphrase-list');
  await expect(paraphrases).toContainText('known wording');
  await expect(paraphrases).toContainText('novel wording');
  await expect(page.getByTestId('neighbour-list')).toContainText('same subject');
  // SwiftShader is slow: keep one proposed check of each kind, plus our own two (the ones the CLI verified)
  for (const list of ['paraphrase-list', 'neighbour-list']) {
    const boxes = page.getByTestId(list).getByRole('checkbox');
    const n = await boxes.count();
    for (let i = 1; i < n; i++) await boxes.nth(i).uncheck();
  }
  await page.getByTestId('add-paraphrase').fill(PARAPHRASE);
  await page.getByTestId('add-paraphrase').press('Enter');
  await page.getByTestId('add-neighbour').fill(NEIGHBOUR);
  await page.getByTestId('add-neighbour-button').click();
  await expect(page.getByTestId('method-mend')).toBeChecked();

  await page.getByRole('button', { name: 'Apply edit' }).click();
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 120_000 });
  await expect(page.getByTestId('before-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await expect(page.getByTestId('after-text')).toHaveText(new RegExp(`^${EDIT.target}`));
  await expect(page.getByTestId('summary-edit')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('paraphrase-row').filter({ hasText: PARAPHRASE })).toHaveAttribute('data-success', 'true');
  const neighbour = page.getByTestId('neighbour-row').filter({ hasText: NEIGHBOUR });
  await expect(neighbour).toHaveAttribute('data-unchanged', 'true');
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await shot('edit-applied');

  // the history and our own checks reach IndexedDB and come back after a reload (the edit is replayed)
  await expect(page.getByTestId('history')).not.toHaveAttribute('data-saves', '0');
  await page.reload();
  await waitForModel(page);
  await historyReady(page, 1);
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
  await expect(page.getByTestId('paraphrase-list')).toContainText(PARAPHRASE);
  await shot('after-reload');

  // a share link opened in a fresh browser context (no shared storage) reproduces the edit
  await page.getByTestId('share-link').click();
  const link = await page.getByTestId('share-url').inputValue();
  expect(link.length).toBeLessThan(2000);
  const other = await browser.newContext();
  try {
    const page2 = await other.newPage();
    await page2.goto(link);
    await waitForModel(page2);
    await historyReady(page2, 1);
    await expect(page2.getByTestId('history-item')).toContainText(EDIT.target.trim());
    await expect(page2.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
    await expect(page2.getByTestId('edit-notice')).toContainText('share link');
  } finally {
    await other.close();
  }

  // export, then undo: the original output is back
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-history').click()]);
  const file = testInfo.outputPath('history.json');
  await download.saveAs(file);
  expect(JSON.parse(readFileSync(file, 'utf8')).entries[0].facts[0].target).toBe(EDIT.target);
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'false');
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await shot('after-undo');

  // clear, then import the exported file: the same history, applied again
  await page.getByTestId('clear-history').click();
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await page.getByTestId('import-file').setInputFiles(file);
  await historyReady(page, 1);
  await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'true');
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));

  await page.setViewportSize({ width: 390, height: 844 });
  await shot('phone-width');
});
