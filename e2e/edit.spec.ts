// The editing playground on the shipped model (facts-gpt with its trained MEND editor), on WebGPU and on WASM:
// apply an edit and see the new target after it, a paraphrase succeeds, a neighbour is unchanged, and undo restores
// the original output. (History across reloads, share links, files and a damaged store: edit-history.spec.ts.)
import { APP_DIR, expect, test } from './fixtures';
import { applyEdit, NEIGHBOUR, ORIGINAL, PARAPHRASE } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('edit a fact: the new target after it, a paraphrase follows, a neighbour does not, undo restores', async ({ page, shot }) => {
  test.setTimeout(540_000); // one MEND edit with its measurements takes minutes on SwiftShader on a busy machine
  await applyEdit(page, server.url);
  await expect(page.getByTestId('paraphrase-row').filter({ hasText: PARAPHRASE })).toHaveAttribute('data-success', 'true');
  await expect(page.getByTestId('neighbour-row').filter({ hasText: NEIGHBOUR })).toHaveAttribute('data-unchanged', 'true');
  await expect(page.getByTestId('summary-neighbourhood')).toContainText('100%');
  await shot('edit-applied');

  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'false');
  await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await expect(page.getByRole('button', { name: 'Redo' })).toBeEnabled();
  await shot('after-undo');

  await page.setViewportSize({ width: 390, height: 844 });
  await expect(page.getByRole('button', { name: 'Apply edit' })).toBeVisible();
  expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
  await shot('phone-width');
});
