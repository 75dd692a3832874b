// Shared steps of the editing playground's e2e specs (edit.spec.ts, edit-history.spec.ts, retry.spec.ts and guard.spec.ts, on WebGPU and WASM). The edit (France's capital → Rome) was checked first with the CLI (`npm run cli -- edit`): MEND reaches
// the target on the prompt and on the paraphrase used here and leaves the neighbour's greedy answer unchanged.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Locator, Page } from '@playwright/test';
import { expect, waitForModel } from './fixtures';

const ROOT = new URL('..', import.meta.url).pathname;
const facts = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/facts.json'), 'utf8'));

export const EDIT = { prompt: 'The capital of France is', target: ' Rome' };
export const ORIGINAL = ' ' + facts.subjects.France.facts.capital; // " Paris", what the model was taught
export const PARAPHRASE = 'Q: What is the capital of France? A:';
export const NEIGHBOUR = 'The capital of Japan is';

/** Tokens generated per probe: few because SwiftShader runs every step slowly, but one past the answer's line
 * break (" Tokyo" "." "\n" "Note"), so that the neighbour's free text after its answer can move with the edit and
 * the results say so (edit.spec.ts). */
const TOKENS = 4;

/** `timeout`: after a reload the history appears once its edits are replayed, which on SwiftShader beside other jobs
 * on two cores has taken over the default 60 s (a wait, not a timing test). */
export async function historyReady(page: Page, count: number, timeout?: number): Promise<void> {
  await expect(page.getByTestId('history-item')).toHaveCount(count, { timeout });
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false', { timeout });
}

/** How long a reload's replay of the history may take (see historyReady). */
export const REPLAY_TIMEOUT = 180_000;

export const savesOf = async (page: Page) => Number(await page.getByTestId('history').getAttribute('data-saves'));

/**
 * Makes the page's share link, opens it in a fresh browser context (nothing stored, nothing cached), waits there until
 * the link's `edits` edits are replayed, runs `check` on that page, and returns the link.
 */
export async function openShareLinkElsewhere(page: Page, browser: Browser, edits: number, check: (page2: Page) => Promise<void>): Promise<string> {
  await page.getByTestId('share-link').click();
  const link = await page.getByTestId('share-url').inputValue();
  const other = await browser.newContext();
  try {
    const page2 = await other.newPage();
    await page2.goto(link);
    await waitForModel(page2);
    await historyReady(page2, edits, REPLAY_TIMEOUT);
    await check(page2);
  } finally {
    await other.close();
  }
  return link;
}

/** Opens the page on the shipped model and waits until it is ready and the playground has restored its (empty) history. */
export async function openPlayground(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await waitForModel(page);
  await expect(page.getByTestId('history-empty')).toBeVisible();
}

/**
 * Unticks every paraphrase and neighbour the form proposes, so an edit probes only its own prompts (each check costs a
 * generation on SwiftShader).
 */
export async function untickChecks(page: Page): Promise<void> {
  for (const list of ['paraphrase-list', 'neighbour-list']) {
    const ticked = page.getByTestId(list).getByRole('checkbox', { checked: true });
    while (await ticked.count()) await ticked.first().uncheck(); // (the locator re-queries: unticked ones drop out)
  }
}

/**
 * Fills the form with one fact, unticks every proposed paraphrase and neighbour (each check costs a generation on
 * SwiftShader, so only the edit prompt is probed), applies it with MEND and waits for the result. `subject`: the
 * name the form must recognise in facts.json first.
 */
export async function applyPromptOnlyMendEdit(page: Page, fact: { prompt: string; target: string }, subject: string): Promise<void> {
  const form = page.getByTestId('edit-panel');
  await form.getByLabel('Prompt', { exact: true }).fill(fact.prompt);
  await form.getByLabel('New target', { exact: true }).fill(fact.target);
  await form.getByLabel('Tokens to generate').fill('3');
  await expect(page.getByTestId('recognised')).toContainText(subject);
  await untickChecks(page);
  for (const list of ['paraphrase-list', 'neighbour-list']) {
    await expect(page.getByTestId(list).getByRole('checkbox')).not.toHaveCount(0); // proposals were there to untick
  }
  await page.getByTestId('method-mend').check();
  await page.getByTestId('apply-edit').click();
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 540_000 });
}

/** The prompt is recognised in facts.json and checks are proposed, labelled by how well the model knows the wording. */
export async function expectProposals(page: Page): Promise<void> {
  await expect(page.getByTestId('recognised')).toContainText('France');
  const paraphrases = page.getByTestId('paraphrase-list');
  await expect(paraphrases).toContainText('known wording');
  await expect(paraphrases).toContainText('held-out wording');
  await expect(paraphrases).toContainText('novel wording');
  await expect(page.getByTestId('neighbour-list')).toContainText('same subject');
  await expect(page.getByTestId('neighbour-list')).toContainText('same relation');
}

/** After Apply: the edit ran, the prompt now gives the new target, and the history reached IndexedDB. */
export async function expectApplied(page: Page, savesBefore: number): Promise<void> {
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
  // one Before (the same weights for every method); an After and a summary per method, marked with data-method
  await expect(page.getByTestId('before-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await expect(page.locator('[data-testid="after-text"][data-method="mend"]')).toHaveText(new RegExp(`^${EDIT.target}`));
  await expect(page.locator('[data-testid="summary-edit"][data-method="mend"]')).toHaveAttribute('data-ok', 'true');
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  await expect.poll(() => savesOf(page)).toBeGreaterThan(savesBefore); // the new history reached IndexedDB
  // the whole-model check, on the model's own held-out prose (facts.json): PyTorch's perplexity there is 2.941449
  // (src/session/damage.test.ts); the edit moves it a little and is not flagged
  for (const h of await page.getByTestId('heldout-perplexity').all()) {
    await expect(h).toHaveAttribute('data-prose', 'model');
    await expect(h).toHaveAttribute('data-flagged', 'false');
    expect(Number(await h.getAttribute('data-before'))).toBeCloseTo(2.9414, 3);
    await expect(h).toContainText(/^2\.94\d → \d\.\d{3} \([+−]\d+\.\d\d%\) on held-out prose from its corpus/);
  }
  expect(await page.getByTestId('heldout-perplexity').count()).toBeGreaterThanOrEqual(1);
}

/** What has keyboard focus now, and whether it shows a focus indicator (an outline or a box shadow). */
async function focused(page: Page): Promise<{ what: string; shown: boolean; checkbox: boolean; checked: boolean } | null> {
  return page.evaluate(() => {
    const el = document.activeElement as HTMLElement | null;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    const shown = el.matches(':focus-visible') && ((cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) > 0) || cs.boxShadow !== 'none');
    const input = el as HTMLInputElement;
    const what = `${el.tagName.toLowerCase()}${el.dataset.testid ? `[${el.dataset.testid}]` : ''} “${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40)}”`;
    return { what, shown, checkbox: input.type === 'checkbox', checked: !!input.checked };
  });
}

/**
 * Presses Tab until `target` has focus, asserting that every element focused on the way shows a visible focus
 * indicator. `onStop` may act on each stop with the keyboard. Returns how many Tabs it took.
 */
export async function tabTo(page: Page, target: Locator, onStop?: (f: NonNullable<Awaited<ReturnType<typeof focused>>>) => Promise<void>, max = 80): Promise<number> {
  for (let i = 1; i <= max; i++) {
    await page.keyboard.press('Tab');
    const f = await focused(page);
    if (f) {
      expect(f.shown, `focus indicator on ${f.what}`).toBe(true);
      if (await target.evaluate((el) => el === document.activeElement)) return i;
      if (onStop) await onStop(f);
    }
  }
  throw new Error(`${max} Tabs did not reach ${target}`);
}

/**
 * Applies EDIT with the keyboard only: Tab to the form, type Prompt and New target, switch off the
 * proposed checks with Space, add our own with Enter, and press Enter on "Apply edit". Every focus stop must show a
 * focus indicator.
 */
export async function applyEditWithKeyboard(page: Page, opts: { method?: 'mend' | 'both' } = {}): Promise<void> {
  const form = page.getByTestId('edit-panel');
  await tabTo(page, form.getByLabel('Prompt', { exact: true }));
  await page.keyboard.press('Control+A');
  await page.keyboard.type(EDIT.prompt);
  await page.keyboard.press('Tab');
  await expect(form.getByLabel('New target', { exact: true })).toBeFocused();
  await page.keyboard.press('Control+A');
  await page.keyboard.type(EDIT.target);
  await expectProposals(page);
  // the method radios are one Tab stop; the arrow keys move from MEND to fine-tuning to both
  await tabTo(page, page.getByTestId('method-mend'));
  if (opts.method === 'both') {
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect(page.getByTestId('method-both')).toBeChecked();
  }
  await tabTo(page, form.getByLabel('Tokens to generate'));
  await page.keyboard.press('Control+A');
  await page.keyboard.type(String(TOKENS));
  // every proposed check is ticked: Space unticks it on the way to our own paraphrase
  const uncheck = async (f: { checkbox: boolean; checked: boolean }) => {
    if (f.checkbox && f.checked) await page.keyboard.press('Space');
  };
  await tabTo(page, page.getByTestId('add-paraphrase'), uncheck);
  await page.keyboard.type(PARAPHRASE);
  await page.keyboard.press('Enter');
  await tabTo(page, page.getByTestId('add-neighbour'), uncheck);
  await page.keyboard.type(NEIGHBOUR);
  await page.keyboard.press('Enter');
  for (const list of ['paraphrase-list', 'neighbour-list']) {
    await expect(page.getByTestId(list).getByRole('checkbox', { checked: true })).toHaveCount(1); // only our own
  }
  const saves = await savesOf(page);
  await tabTo(page, page.getByRole('button', { name: 'Apply edit' }));
  await page.keyboard.press('Enter');
  await expectApplied(page, saves);
}
