// Checks of "What the edit did to the weights" and the guided lesson after a real MEND edit on the shipped model
// (used by edit.spec.ts, on WebGPU and WASM, after its one edit). The numbers come from the worker; the checks are
// what must hold for any edit: one row per edited weight with a positive update, at most one nonzero singular value
// per token, and a lesson that steps forward and back through the edit's own numbers.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { expect } from './fixtures';

const ROOT = new URL('..', import.meta.url).pathname;
const catalog = JSON.parse(readFileSync(join(ROOT, 'public/models/models.json'), 'utf8')) as { id: string; path: string; default?: boolean }[];
const shipped = catalog.find((m) => m.default) ?? catalog[0];
const editorConfig = JSON.parse(readFileSync(join(ROOT, 'public', shipped.path, 'editor_config.json'), 'utf8')) as { edited_weights: string[] };

/** "1.23×10⁻⁴" / "-0.5" / "12.3%" → number. */
function parseShown(text: string): number {
  const sup: Record<string, string> = { '⁻': '-', '⁰': '0', '¹': '1', '²': '2', '³': '3', '⁴': '4', '⁵': '5', '⁶': '6', '⁷': '7', '⁸': '8', '⁹': '9' };
  const m = /(-?[\d.]+)(?:×10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?/.exec(text.trim());
  if (!m) throw new Error(`not a number: ${text}`);
  const exp = m[2] ? Number([...m[2]].map((c) => sup[c]).join('')) : 0;
  return Number(m[1]) * 10 ** exp;
}

/**
 * The weights panel and the lesson for the applied MEND edit: real numbers in every row, the detail view, and the
 * lesson forward through its five steps and one back. Saves the screenshots `weights-panel` and `lesson`.
 */
export async function checkWeightsAndLesson(page: Page, shot: (name: string) => Promise<void>): Promise<void> {
  // The panel: one row per edited weight, each with a positive update norm and rank ≤ tokens.
  const panel = page.getByTestId('weights-panel');
  await expect(panel).toHaveAttribute('aria-busy', 'false', { timeout: 120_000 });
  const rows = panel.getByTestId('weights-row');
  await expect(rows).toHaveCount(editorConfig.edited_weights.length, { timeout: 180_000 }); // the report is computed after the edit
  const tokens = await panel.getByTestId('weights-token-row').count();
  expect(tokens).toBeGreaterThan(1);
  for (let i = 0; i < editorConfig.edited_weights.length; i++) {
    const row = rows.nth(i);
    await expect(row).toHaveAttribute('data-weight', editorConfig.edited_weights[i]);
    expect(Number(await row.getAttribute('data-norm'))).toBeGreaterThan(0);
    expect(parseShown(await row.getByTestId('weights-norm').innerText())).toBeGreaterThan(0);
    const rank = Number(await row.getAttribute('data-rank'));
    expect(rank).toBeGreaterThanOrEqual(1);
    expect(rank).toBeLessThanOrEqual(tokens);
  }
  // The detail view: the singular-value chart has one bar per token, and its nonzero count matches the table.
  const shownRank = Number(await panel.getByTestId('weights-rank').innerText());
  expect(shownRank).toBeLessThanOrEqual(tokens);
  await expect(panel.getByTestId('weights-singular-values').locator('rect')).toHaveCount(tokens);
  await expect(panel.getByTestId('weights-heatmap').locator('svg[role="img"]')).toHaveAttribute('aria-describedby', /.+/);
  await expect(panel.getByTestId('weights-heatmap').locator('svg rect')).toHaveCount(24 * 24);

  // The lesson, forward through its five steps and back.
  const lesson = page.getByTestId('lesson');
  const step = lesson.getByTestId('lesson-step');
  await expect(step).toHaveAttribute('data-step', '1');
  await expect(lesson.getByTestId('lesson-prev')).toBeDisabled();
  const loss = parseShown(await lesson.getByTestId('lesson-loss').innerText());
  expect(loss).toBeGreaterThan(0);
  await panel.scrollIntoViewIfNeeded();
  await shot('weights-panel');

  await lesson.getByTestId('lesson-next').click();
  await expect(step).toHaveAttribute('data-step', '2');
  expect(parseShown(await lesson.getByTestId('lesson-grad-norm').innerText())).toBeGreaterThan(0);
  expect(Number(await lesson.getByTestId('lesson-grad-rank').innerText())).toBeLessThanOrEqual(tokens);
  await expect(lesson.getByTestId('lesson-table').locator('tbody tr')).toHaveCount(tokens);

  await lesson.getByTestId('lesson-next').click();
  await expect(step).toHaveAttribute('data-step', '3');
  await lesson.getByTestId('lesson-next').click();
  await expect(step).toHaveAttribute('data-step', '4');
  expect(parseShown(await lesson.getByTestId('lesson-step-size').innerText())).not.toBe(0);
  await lesson.getByTestId('lesson-next').click();
  await expect(step).toHaveAttribute('data-step', '5');
  await expect(lesson.getByTestId('lesson-next')).toBeDisabled();
  // The lesson follows the weight the panel details by default: the same update norm in both.
  const selected = panel.locator('tr.wt-selected').getByTestId('weights-norm');
  expect(await lesson.getByTestId('lesson-update-norm').innerText()).toBe(await selected.innerText());
  const cosine = Number(await lesson.getByTestId('lesson-cosine').innerText());
  expect(cosine).toBeGreaterThanOrEqual(-1);
  expect(cosine).toBeLessThanOrEqual(1);
  await lesson.scrollIntoViewIfNeeded();
  await shot('lesson');

  await lesson.getByTestId('lesson-prev').click();
  await expect(step).toHaveAttribute('data-step', '4');

}

/** At phone width the panel and the lesson stay inside the screen (their tables scroll on their own). */
export async function checkWeightsAtPhoneWidth(page: Page, width: number): Promise<void> {
  const panel = page.getByTestId('weights-panel');
  const lesson = page.getByTestId('lesson');
  for (const box of [await panel.boundingBox(), await lesson.boundingBox()]) {
    expect(box!.x).toBeGreaterThanOrEqual(0);
    expect(box!.x + box!.width).toBeLessThanOrEqual(width);
  }
}

/** After undo no MEND edit is applied any more, so the panel and the lesson empty out. */
export async function checkWeightsEmpty(page: Page): Promise<void> {
  await expect(page.getByTestId('weights-panel').getByTestId('weights-row')).toHaveCount(0, { timeout: 60_000 });
  await expect(page.getByTestId('lesson').getByTestId('lesson-step')).toHaveCount(0);
}
