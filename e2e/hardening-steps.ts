// Shared steps of the hardening specs (e2e/hardening-*.spec.ts). They edit the tiny trained fixture
// tests/fixtures/mend-tiny (4 layers, n_embd 32, with its MEND editor), served at /fixtures/mend-tiny/ by the
// per-worker static server: loading and editing it takes seconds even on SwiftShader, where the shipped model's
// probes take minutes.
//
// The fixture's greedy answer to most prompts is " Ch", and its weak MEND editor rarely moves it, so the specs that
// must see an edit's effect use fine-tuning: checked with the CLI (`npm run cli -- edit --model
// tests/fixtures/mend-tiny --method ft ...`), FT_EDIT turns " Ch" into " Cb".
import type { Page } from '@playwright/test';
import { expect } from './fixtures';

export const TINY_MODEL = 'fixtures/mend-tiny/';
export const FT_EDIT = { prompt: 'The symbol for Chlorine is', target: ' Tb' };

/** Opens the page on the tiny MEND fixture and waits until its (empty or restored) history is shown. */
export async function openTiny(page: Page, baseUrl: string, extra: Record<string, string> = {}): Promise<void> {
  const q = new URLSearchParams({ model: TINY_MODEL, ...extra });
  await page.goto(`${baseUrl}?${q}`);
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('history')).toBeVisible();
}

export const savesOf = async (page: Page) => Number(await page.getByTestId('history').getAttribute('data-saves'));

/** Fills the edit form and presses "Apply edit"; waits for the result only when `wait` (default). */
export async function startEdit(page: Page, edit: { prompt: string; target: string }, method: 'mend' | 'ft', opts: { tokens?: number } = {}): Promise<void> {
  const form = page.getByTestId('edit-panel');
  await form.getByLabel('Prompt', { exact: true }).fill(edit.prompt);
  await form.getByLabel('New target', { exact: true }).fill(edit.target);
  await form.getByLabel('Tokens to generate').fill(String(opts.tokens ?? 3));
  await page.getByTestId(`method-${method}`).check();
  await page.getByRole('button', { name: 'Apply edit' }).click();
}

/** Applies an edit and waits until it is done and saved to IndexedDB. */
export async function applyEdit(page: Page, edit: { prompt: string; target: string }, method: 'mend' | 'ft', opts: { tokens?: number } = {}): Promise<void> {
  const saves = await savesOf(page);
  await startEdit(page, edit, method, opts);
  // a first edit on SwiftShader WebGPU compiles every shader it uses: minutes on the shared 2-core machine
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 300_000 });
  await expect.poll(() => savesOf(page)).toBeGreaterThan(saves);
}
