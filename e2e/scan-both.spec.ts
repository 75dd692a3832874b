// The knowledge scan after a "both methods" edit, on the shipped model: France's capital → Rome edited with MEND and
// fine-tuning side by side (MEND kept), then "Scan the knowledge base with both edits" scans the kept MEND edit and
// the fine-tuning edit of the same fact, made again on the weights MEND started from and taken back. Checked first
// with the CLI (`npm run cli -- edit --method ft --prompt "The capital of France is" --target " Rome" --scan`): fine-
// tuning loses 21 capitals to Rome, MEND 24 (docs/eval.md), Spain's under both. Page behaviour over numerics the
// other scan tests cover, so it runs once, in the WASM project (playwright.config.ts); it also passes on WebGPU
// (SwiftShader, 10 minutes; see e2e/scan-batch.spec.ts).
import { readFileSync } from 'node:fs';
import { APP_DIR, expect, test } from './fixtures';
import { EDIT, openPlayground, untickChecks } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('after a both-methods edit the scan measures both edits side by side; the history is as it was', async ({ page, shot, audit }) => {
  test.setTimeout(900_000);
  await openPlayground(page, server.url);
  const form = page.getByTestId('edit-panel');
  await form.getByLabel('Prompt', { exact: true }).fill(EDIT.prompt);
  await form.getByLabel('New target', { exact: true }).fill(EDIT.target);
  await form.getByLabel('Tokens to generate').fill('3');
  await expect(page.getByTestId('recognised')).toContainText('France');
  await untickChecks(page);
  await page.getByTestId('method-both').check();
  await page.getByTestId('apply-edit').click();
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
  await expect(page.getByTestId('history-item')).toHaveCount(1);
  const historyBefore = await page.getByTestId('history-item').allInnerTexts();

  const panel = page.getByTestId('knowledge-scan');
  await expect(panel.getByTestId('scan-start')).toHaveText('Scan the knowledge base with both edits');
  await panel.getByTestId('scan-start').click();
  await expect(panel.getByTestId('scan-result')).toBeVisible({ timeout: 600_000 });

  await test.step('one summary per method, the same facts asked and known before; each lost capitals to Rome', async () => {
    const summaries = panel.getByTestId('scan-summary');
    await expect(summaries).toHaveCount(2);
    await expect(summaries.nth(0)).toHaveAttribute('data-method', 'mend');
    await expect(summaries.nth(1)).toHaveAttribute('data-method', 'ft');
    await expect(summaries.nth(0)).toContainText(/^MEND: \d+ facts lost: of 337 facts asked, the model knew 337 before the edit/);
    await expect(summaries.nth(1)).toContainText(/^Fine-tuning: \d+ facts lost: of 337 facts asked, the model knew 337 before the edit/);
    const lostMend = Number(await summaries.nth(0).getAttribute('data-lost'));
    const lostFt = Number(await summaries.nth(1).getAttribute('data-lost'));
    expect(lostMend).toBeGreaterThan(0);
    expect(lostFt).toBeGreaterThan(0);
    // the groups table has a "still given" column per method
    const capital = panel.getByTestId('scan-group').first();
    await expect(capital.locator('td[data-method="mend"]')).toHaveText(String(242 - Number(await capital.getAttribute('data-lost'))));
    await expect(capital.locator('td[data-method="ft"]')).toBeVisible();
    // one row per fact either method lost; a cell per method says what that method's edit made of it
    const rows = panel.getByTestId('scan-lost-row');
    const n = await rows.count();
    expect(n).toBeGreaterThanOrEqual(Math.max(lostMend, lostFt));
    expect(n).toBeLessThanOrEqual(lostMend + lostFt);
    await expect(rows.locator('td[data-method="mend"][data-lost="true"]')).toHaveCount(lostMend);
    await expect(rows.locator('td[data-method="ft"][data-lost="true"]')).toHaveCount(lostFt);
    const spain = rows.filter({ hasText: 'The capital of Spain is' });
    await expect(spain.locator('td[data-method="mend"]')).toContainText("Rome — the edit's target");
    await expect(spain.locator('td[data-method="ft"]')).toContainText("Rome — the edit's target");
    await panel.scrollIntoViewIfNeeded();
    await shot('knowledge-scan-both');
    const serious = (await audit('knowledge-scan-both')).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious).toEqual([]);
  });

  await test.step('the history is as it was (the fine-tuning edit was taken back); the file holds both scans', async () => {
    expect(await page.getByTestId('history-item').allInnerTexts()).toEqual(historyBefore);
    await expect(page.getByTestId('undo')).toBeEnabled();
    await expect(page.getByTestId('redo')).toBeDisabled(); // the fine-tuning edit left nothing to redo
    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByTestId('scan-download').click()]);
    const file = JSON.parse(readFileSync(await download.path(), 'utf8'));
    expect(file.scope).toBe('edit');
    expect(file.edits).toEqual([{ method: 'mend', facts: [EDIT] }]);
    expect(file.scans.map((x: { method: string }) => x.method)).toEqual(['mend', 'ft']);
    expect(file.scans[0].known_before).toBe(file.scans[1].known_before);
    // the weights are as they were too: scanning again finds exactly the same, MEND and fine-tuning alike
    const lost = await panel.getByTestId('scan-summary').evaluateAll((els) => els.map((e) => e.getAttribute('data-lost')));
    await expect(panel.getByTestId('scan-start')).toHaveText('Scan again');
    await panel.getByTestId('scan-start').click();
    await expect(panel.getByTestId('scan-status')).toBeVisible();
    await expect(panel.getByTestId('scan-result')).toBeVisible({ timeout: 600_000 });
    expect(await panel.getByTestId('scan-summary').evaluateAll((els) => els.map((e) => e.getAttribute('data-lost')))).toEqual(lost);
  });
});
