// Shared steps of the editing playground's e2e specs (edit.spec.ts runs on WebGPU and WASM, edit-history.spec.ts on
// WASM only). The edit (France's capital → Rome) was checked first with the CLI (`npm run cli -- edit`): MEND reaches
// the target on the prompt and on the paraphrase used here and leaves the neighbour's greedy answer unchanged.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect, waitForModel } from './fixtures';

const ROOT = new URL('..', import.meta.url).pathname;
const facts = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/facts.json'), 'utf8'));

export const EDIT = { prompt: 'The capital of France is', target: ' Rome' };
export const ORIGINAL = ' ' + facts.subjects.France.facts.capital; // " Paris", what the model was taught
export const PARAPHRASE = 'Q: What is the capital of France? A:';
export const NEIGHBOUR = 'The capital of Japan is';

/** Tokens generated per probe: enough to read the answer, few because SwiftShader runs every step slowly. */
const TOKENS = 3;

export async function historyReady(page: Page, count: number): Promise<void> {
  await expect(page.getByTestId('history-item')).toHaveCount(count);
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
}

export const savesOf = async (page: Page) => Number(await page.getByTestId('history').getAttribute('data-saves'));

/**
 * Opens the page, fills the edit form, checks that facts.json proposals appear, then keeps only our own paraphrase
 * and neighbour (every probe costs seconds on SwiftShader) and applies the edit with MEND.
 */
export async function applyEdit(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await waitForModel(page);
  await expect(page.getByTestId('history-empty')).toBeVisible();
  const form = page.getByTestId('edit-panel');
  await form.getByLabel('Prompt', { exact: true }).fill(EDIT.prompt);
  await form.getByLabel('New target').fill(EDIT.target);
  await form.getByLabel('Tokens to generate').fill(String(TOKENS));
  // the prompt is recognised in facts.json and checks are proposed, labelled by how well the model knows the wording
  await expect(page.getByTestId('recognised')).toContainText('France');
  const paraphrases = page.getByTestId('paraphrase-list');
  await expect(paraphrases).toContainText('known wording');
  await expect(paraphrases).toContainText('held-out wording');
  await expect(paraphrases).toContainText('novel wording');
  await expect(page.getByTestId('neighbour-list')).toContainText('same subject');
  await expect(page.getByTestId('neighbour-list')).toContainText('same relation');
  for (const list of ['paraphrase-list', 'neighbour-list']) {
    const boxes = page.getByTestId(list).getByRole('checkbox');
    for (let i = (await boxes.count()) - 1; i >= 0; i--) await boxes.nth(i).uncheck();
  }
  await page.getByTestId('add-paraphrase').fill(PARAPHRASE);
  await page.getByTestId('add-paraphrase').press('Enter');
  await page.getByTestId('add-neighbour').fill(NEIGHBOUR);
  await page.getByTestId('add-neighbour-button').click();
  await expect(page.getByTestId('method-mend')).toBeChecked();

  const saves = await savesOf(page);
  await page.getByRole('button', { name: 'Apply edit' }).click();
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 400_000 });
  await expect(page.getByTestId('before-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await expect(page.getByTestId('after-text')).toHaveText(new RegExp(`^${EDIT.target}`));
  await expect(page.getByTestId('summary-edit')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await expect.poll(() => savesOf(page)).toBeGreaterThan(saves); // the new history reached IndexedDB
}
