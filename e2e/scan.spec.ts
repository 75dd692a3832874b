// The knowledge scan in the playground, on the shipped model: after France's capital → Rome, "Scan the knowledge
// base" asks the facts index before and after the edit and lists what the edit spread to. Checked first with the CLI
// (`npm run cli -- edit ... --scan`, and fact by fact in tests/eval/scan.test.ts): Spain's capital, among others,
// turns to Rome. The scan is offered only for the latest applied edit, so Undo takes the button away and Redo brings
// it back. An edit of a prompt the facts index does not know gets only the sample of every relation, and the page
// says why. Runs on WASM and on WebGPU (SwiftShader asks the ~340 facts twice in a few minutes).
import { APP_DIR, expect, test } from './fixtures';
import { applyPromptOnlyMendEdit, EDIT, openPlayground } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('the knowledge scan lists the facts an edit spread to, and only for the latest applied edit', async ({ page, shot, audit }) => {
  test.setTimeout(1_200_000);
  await openPlayground(page, server.url);
  await applyPromptOnlyMendEdit(page, EDIT, 'France');
  const panel = page.getByTestId('knowledge-scan');

  await test.step('scan: every lost fact is listed with what it says now; Spain now says Rome', async () => {
    await panel.getByTestId('scan-start').click();
    await expect(panel.getByTestId('scan-status')).toContainText(/Asking \d+ facts/);
    const result = panel.getByTestId('scan-result');
    await expect(result).toBeVisible({ timeout: 900_000 });
    const lost = Number(await result.getAttribute('data-lost'));
    expect(lost).toBeGreaterThan(0);
    await expect(panel.getByTestId('scan-summary')).toContainText(`${lost} facts lost`);
    await expect(panel.getByTestId('scan-summary')).toContainText("now give the edit's target");
    await expect(panel.getByTestId('scan-lost-row')).toHaveCount(lost);
    const groups = panel.getByTestId('scan-group');
    await expect(groups).toHaveCount(3);
    await expect(groups.nth(0)).toContainText("Same relation (capital), other subjects, in the edit prompt's wording");
    await expect(groups.nth(1)).toContainText("France's other facts");
    const spain = panel.getByTestId('scan-lost-row').filter({ hasText: 'The capital of Spain is' });
    await expect(spain).toHaveAttribute('data-took-target', 'true');
    await expect(spain).toContainText('Madrid');
    await expect(spain).toContainText("Rome — the edit's target");
    await expect(panel.getByTestId('scan-start')).toHaveText('Scan again');
    await panel.scrollIntoViewIfNeeded();
    await shot('knowledge-scan');
    const serious = (await audit('knowledge-scan')).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious).toEqual([]);
  });

  await test.step('after Undo the scan is not offered (the edit is no longer applied); Redo brings it back', async () => {
    await page.getByTestId('undo').click();
    await expect(panel.getByTestId('scan-unavailable')).toBeVisible();
    await expect(panel.getByTestId('scan-start')).toHaveCount(0);
    await expect(panel.getByTestId('scan-result')).toBeVisible(); // what was measured stays readable
    await page.getByTestId('redo').click();
    await expect(panel.getByTestId('scan-start')).toBeEnabled();
  });

  await test.step('a prompt the facts index does not know: only the sample of every relation is asked, and the page says so', async () => {
    const form = page.getByTestId('edit-panel');
    await form.getByLabel('Prompt', { exact: true }).fill('My favourite colour is');
    await form.getByLabel('New target', { exact: true }).fill(' blue');
    await expect(page.getByTestId('recognised')).toContainText('not one of the model’s known facts');
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 540_000 });
    await expect(panel.getByTestId('scan-result')).toHaveCount(0); // the last edit's scan is not this edit's
    await panel.getByTestId('scan-start').click();
    await expect(panel.getByTestId('scan-result')).toBeVisible({ timeout: 900_000 });
    await expect(panel.getByTestId('scan-unrecognised')).toBeVisible();
    await expect(panel.getByTestId('scan-group')).toHaveCount(1);
    await expect(panel.getByTestId('scan-group')).toHaveAttribute('data-kind', 'elsewhere');
  });
});
