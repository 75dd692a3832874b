// The knowledge scan of a batch edit, on the shipped model: one update of three facts (France's capital → Rome, Lyon's
// country → Brazil, and a prompt the facts index does not know) is scanned around every fact it recognises. Each
// edited relation gets its own same-relation row in its fact's wording, the edited subjects' other facts are asked,
// the sample covers only the relations nothing in the batch edits, and the page says which prompt it could not place.
// The scan downloads as a JSON file (docs/formats.md). After a second edit, the History's "Scan what all the edits
// changed" asks the facts around all four edited facts on the original weights and now (tests/eval/scan.test.ts
// checks that scan fact by fact).
// Checked first with the CLI (`npm run cli -- edit --prompt ... --prompt ... --scan`, docs/cli.md): 387 facts,
// Germany's and Spain's capitals turn to Rome and a city in Sierra Leone to Brazil. The scan's numerics are the single
// edit's (e2e/scan.spec.ts runs them on WebGPU too, tests/eval/scan.test.ts checks a batch fact by fact), so this page
// behaviour runs once, in the WASM project (playwright.config.ts). Both specs also pass in the WebGPU project on
// SwiftShader (checked 2026-11-30 with a config without the testIgnore: 16 minutes for the two, too slow for every run).
import { readFileSync } from 'node:fs';
import { APP_DIR, expect, test } from './fixtures';
import { openPlayground, untickChecks } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

const FACTS = [
  { prompt: 'The capital of France is', target: ' Rome' },
  { prompt: 'Lyon is a city in', target: ' Brazil' },
  { prompt: 'My favourite colour is', target: ' blue' },
];
/** a second, single edit, after which the History scans both edits together against the original model */
const LATER = { prompt: 'The capital of Japan is', target: ' Paris' };

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('a batch edit is scanned around every fact; the History scans all edits against the original model', async ({ page, shot, audit }) => {
  test.setTimeout(900_000);
  await openPlayground(page, server.url);
  const form = page.getByTestId('edit-panel');
  const batch = page.getByTestId('batch-facts');

  await test.step('apply three facts in one update', async () => {
    await form.getByLabel('Prompt', { exact: true }).fill(FACTS[0].prompt);
    await form.getByLabel('New target', { exact: true }).fill(FACTS[0].target);
    await form.getByLabel('Tokens to generate').fill('3');
    await expect(page.getByTestId('recognised')).toContainText('France');
    for (const [i, f] of FACTS.slice(1).entries()) {
      await batch.getByTestId('add-fact').click();
      await batch.getByLabel(`Prompt of fact ${i + 2}`).fill(f.prompt);
      await batch.getByLabel(`New target of fact ${i + 2}`).fill(f.target);
    }
    await untickChecks(page);
    await page.getByTestId('method-mend').check();
    await expect(page.getByTestId('apply-edit')).toHaveText('Apply edit of 3 facts');
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
  });

  await test.step('scan: capital and city → country each get a row; the spread to other capitals is listed', async () => {
    const panel = page.getByTestId('knowledge-scan');
    await panel.getByTestId('scan-start').click();
    const result = panel.getByTestId('scan-result');
    await expect(result).toBeVisible({ timeout: 600_000 });
    const groups = panel.getByTestId('scan-group');
    await expect(groups).toHaveCount(4);
    await expect(groups.nth(0)).toHaveAttribute('data-relation', 'capital');
    await expect(groups.nth(0)).toContainText("Same relation (capital), other subjects, in the edited fact's wording");
    await expect(groups.nth(1)).toHaveAttribute('data-relation', 'city_country');
    await expect(groups.nth(1)).toContainText('Same relation (city country)');
    await expect(groups.nth(2)).toContainText('The other facts of France and Lyon');
    await expect(groups.nth(3)).toContainText('A sample of every relation the edit did not touch');
    await expect(panel.getByTestId('scan-unrecognised')).toContainText("1 of the edit's prompts is not one of the facts index's wordings");
    const lost = Number(await result.getAttribute('data-lost'));
    await expect(panel.getByTestId('scan-lost-row')).toHaveCount(lost);
    const spain = panel.getByTestId('scan-lost-row').filter({ hasText: 'The capital of Spain is' });
    await expect(spain).toHaveAttribute('data-took-target', 'true');
    await expect(spain).toContainText("Rome — the edit's target");
    // nothing of the batch's own facts is asked back: Lyon's country and France's capital are the edit
    await expect(panel.getByTestId('scan-lost-row').filter({ hasText: /^Lyon is a city in|^The capital of France is/ })).toHaveCount(0);
    await panel.scrollIntoViewIfNeeded();
    await shot('knowledge-scan-batch');

    // the scan as a file: the edit it measured and the same report as the CLI's `edit --scan --json`
    const [download] = await Promise.all([page.waitForEvent('download'), panel.getByTestId('scan-download').click()]);
    expect(download.suggestedFilename()).toBe('mendlab-knowledge-scan.json');
    const file = JSON.parse(readFileSync(await download.path(), 'utf8'));
    expect(file).toMatchObject({ format: 'mendlab-knowledge-scan', version: 1, scope: 'edit', edits: [{ method: 'mend', facts: FACTS }] });
    expect(file.scans).toHaveLength(1);
    const [scan] = file.scans;
    expect(scan).toMatchObject({ method: 'mend', subjects: ['France', 'Lyon'], relations: ['capital', 'city_country'], unrecognised: 1 });
    expect(scan.groups.map((g: { relation: string | null }) => g.relation)).toEqual(['capital', 'city_country', null, null]);
    expect(scan.lost).toHaveLength(lost);
    expect(scan.known_before - scan.kept).toBe(lost);
    expect(scan.lost).toContainEqual({
      kind: 'same relation', subject: 'Spain', relation: 'capital', prompt: 'The capital of Spain is', taught: ' Madrid', now: ' Rome', took_target: ' Rome',
    });
    const serious = (await audit('knowledge-scan-batch')).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious).toEqual([]);
  });

  await test.step('a second edit, then the History\'s scan of all edits against the original model', async () => {
    await form.getByLabel('Prompt', { exact: true }).fill(LATER.prompt);
    await form.getByLabel('New target', { exact: true }).fill(LATER.target);
    for (let i = FACTS.length; i >= 2; i--) await batch.getByRole('button', { name: `Remove fact ${i}` }).click();
    await expect(page.getByTestId('apply-edit')).toHaveText('Apply edit');
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
    await expect(page.getByTestId('history-item')).toHaveCount(2);

    const all = page.getByTestId('history-scan');
    await all.getByTestId('history-scan-start').click();
    await expect(all.getByTestId('scan-result')).toBeVisible({ timeout: 600_000 });
    await expect(all.getByTestId('history-scan-scope')).toContainText('2 applied edits, 4 edited facts');
    // around every edited fact of both edits: capital (France, Japan) and city → country (Lyon)
    const groups = all.getByTestId('scan-group');
    await expect(groups.nth(0)).toHaveAttribute('data-relation', 'capital');
    await expect(groups.nth(1)).toHaveAttribute('data-relation', 'city_country');
    await expect(groups.nth(2)).toContainText('The other facts of France, Lyon and Japan');
    await expect(groups.nth(3)).toContainText('A sample of every relation the edits did not touch');
    await expect(all.getByTestId('scan-summary')).toContainText('in the original model');
    // the first edit's spread is still there two edits later
    const spain = all.getByTestId('scan-lost-row').filter({ hasText: 'The capital of Spain is' });
    await expect(spain).toContainText("Rome — an edit's target");
    await all.scrollIntoViewIfNeeded();
    await shot('knowledge-scan-history');
    const [download] = await Promise.all([page.waitForEvent('download'), all.getByTestId('scan-download').click()]);
    const file = JSON.parse(readFileSync(await download.path(), 'utf8'));
    expect(file).toMatchObject({ scope: 'history', edits: [{ method: 'mend', facts: FACTS }, { method: 'mend', facts: [LATER] }] });
    expect(file.scans).toHaveLength(1);
    expect(file.scans[0]).toMatchObject({ subjects: ['France', 'Lyon', 'Japan'], relations: ['capital', 'city_country'], unrecognised: 1 });
    const serious = (await audit('knowledge-scan-history')).filter((v) => v.impact === 'serious' || v.impact === 'critical');
    expect(serious).toEqual([]);

    // a changed history: the scan no longer describes it, and says so
    await page.getByTestId('undo').click();
    await expect(all.getByTestId('history-scan-stale')).toBeVisible();
    await expect(all.getByTestId('scan-result')).toHaveCount(0);
  });
});
