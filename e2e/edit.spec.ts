// The editing playground on the shipped model (facts-gpt with its trained MEND editor), on WebGPU and on WASM, as
// one journey around a single edit, because every edit and probe costs minutes on SwiftShader:
//   the form with its example edits → the edit applied with the keyboard only, MEND and fine-tuning side by side
//   (the new target after it, a paraphrase succeeds, a neighbour is unchanged) → the weights panel and the lesson →
//   all of it at phone width → a reload keeps the history → a share link opened in a fresh browser context
//   reproduces the edit → export, undo with the keyboard (the original output is back), clear, import (the same
//   history, applied again).
// Each state is saved under test-results/screens/ and audited with axe-core (serious or critical findings fail).
import { readFileSync } from 'node:fs';
import { APP_DIR, expect, test, waitForModel } from './fixtures';
import { applyEditWithKeyboard, EDIT, historyReady, NEIGHBOUR, REPLAY_TIMEOUT, openPlayground, openShareLinkElsewhere, ORIGINAL, PARAPHRASE, tabTo } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';
import { checkWeightsAndLesson, checkWeightsAtPhoneWidth, checkWeightsEmpty } from './weights-steps';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('one edit: keyboard apply, MEND vs fine-tuning, weights, lesson, reload, share link, export/import, undo', async ({ page, browser, shot, audit }, testInfo) => {
  test.setTimeout(900_000); // one edit with both methods and three replays take minutes on SwiftShader on a busy machine

  await test.step('the form offers example edits, marked by how MEND did on the benchmark', async () => {
    await openPlayground(page, server.url);
    const examples = page.getByTestId('example-edit');
    await expect(examples.locator('option[data-outlook="case"][data-expected-to-fail="false"]').first()).toContainText('MEND succeeded on this exact edit');
    await expect(examples.locator('option[data-expected-to-fail="true"]')).toHaveCount(1);
    await expect(examples.locator('option[data-expected-to-fail="true"]')).toContainText('expected to fail');
    await expect(page.getByTestId('example-note')).toContainText('expected to fail');
    // choosing the first example with the keyboard fills the form; the hint says how MEND does on its relation
    await tabTo(page, examples);
    await page.keyboard.press('ArrowDown');
    await expect(page.getByTestId('edit-prompt')).not.toHaveValue('');
    await expect(page.getByTestId('edit-target')).not.toHaveValue('');
    await expect(page.getByTestId('example-outlook')).toContainText('MEND succeeded on this exact edit in the benchmark');
    await expect(page.getByTestId('relation-outlook')).toContainText('held-out benchmark');
    await shot('form-examples');
    await audit('form');
  });

  await test.step('apply the edit with the keyboard only, MEND and fine-tuning side by side', async () => {
    await applyEditWithKeyboard(page, { method: 'both' });
    // one table per measure, a column per method
    await expect(page.getByTestId('paraphrase-row').filter({ hasText: PARAPHRASE })).toHaveAttribute('data-success-mend', 'true');
    await expect(page.getByTestId('neighbour-row').filter({ hasText: NEIGHBOUR })).toHaveAttribute('data-unchanged-mend', 'true');
    // Japan's answer stays " Tokyo" but the free text after it moves (" Tokyo.\nNote" → " Tokyo.\nQuiz"): the MEND
    // cell says so beside the changed text, and the neighbour still counts as unchanged
    const japan = page.getByTestId('neighbour-row').filter({ hasText: NEIGHBOUR });
    const mendNeighbour = japan.locator('td[data-method="mend"]');
    await expect(mendNeighbour.getByTestId('after-answer-differs')).toHaveText('(the text after the answer differs)');
    const beforeText = (await japan.locator('td').first().textContent())!;
    expect(beforeText).toMatch(/^ Tokyo\.\n\S/);
    expect(await mendNeighbour.textContent()).toMatch(/^ Tokyo\.\n\S/);
    expect(await mendNeighbour.textContent()).not.toContain(beforeText);
    await expect(page.locator('[data-testid="summary-neighbourhood"][data-method="mend"]')).toContainText('100%');
    // MEND's perplexity guard read its own prose once and let the step through; fine-tuning has none
    await expect(page.locator('[data-testid="summary-guard"][data-method="mend"]')).toHaveText(/^[+−]\d\.\d\d% on its own prose \(limit 5%\)$/);
    await expect(page.locator('[data-testid="summary-guard"][data-method="ft"]')).toHaveText('—');
    await expect(page.locator('[data-testid="summary-edit"][data-method="ft"]')).toHaveAttribute('data-ok', /^(true|false)$/);
    await expect(page.locator('[data-testid="after-text"][data-method="ft"]')).not.toBeEmpty();
    await expect(page.getByTestId('history-item')).toContainText('MEND'); // only the MEND edit is kept
    await page.getByTestId('edit-results').scrollIntoViewIfNeeded();
    await shot('edit-both');
    await audit('edit-applied');
  });

  await test.step('the weights panel and the lesson show the MEND edit’s numbers', async () => {
    await checkWeightsAndLesson(page, shot);
    await audit('weights-lesson');
  });

  await test.step('phone width: nothing sticks out, the results, weights and lesson stack', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await expect(page.getByRole('button', { name: 'Apply edit' })).toBeVisible();
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    await checkWeightsAtPhoneWidth(page, 390);
    await shot('phone-width');
    await audit('phone-width');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  await test.step('a reload keeps the history (the edit is replayed)', async () => {
    await page.reload();
    await waitForModel(page);
    await historyReady(page, 1, REPLAY_TIMEOUT);
    await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
    await expect(page.getByTestId('paraphrase-list')).toContainText(PARAPHRASE);
    await expect(page.getByTestId('neighbour-list')).toContainText(NEIGHBOUR);
    await page.getByTestId('history').scrollIntoViewIfNeeded();
    await shot('history-after-reload');
    await audit('history');
  });

  await test.step('a share link opened in a fresh browser context reproduces the edit', async () => {
    const link = await openShareLinkElsewhere(page, browser, 1, async (page2) => {
      await expect(page2.getByTestId('history-item')).toContainText(EDIT.target.trim());
      await expect(page2.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
      await expect(page2.getByTestId('edit-notice')).toContainText('share link');
      expect(new URL(page2.url()).searchParams.has('edits')).toBe(false); // a reload will not replay it again
    });
    expect(link.length).toBeLessThan(2000);
  });

  await test.step('export, undo with the keyboard (the original output is back), clear, import (applied again)', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-history').click()]);
    const file = testInfo.outputPath('history.json');
    await download.saveAs(file);
    expect(JSON.parse(readFileSync(file, 'utf8')).entries[0].facts[0].target).toBe(EDIT.target);

    await page.getByTestId('edit-prompt').focus(); // from the form, Tab on to the history's Undo and press Enter
    await tabTo(page, page.getByRole('button', { name: 'Undo' }));
    await page.keyboard.press('Enter');
    await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'false');
    await expect(page.getByTestId('now')).toHaveAttribute('data-pending', 'false');
    await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
    await expect(page.getByRole('button', { name: 'Redo' })).toBeEnabled();
    await checkWeightsEmpty(page);
    await shot('after-undo');
    await audit('after-undo');

    await page.getByTestId('clear-history').click();
    await expect(page.getByTestId('history-empty')).toBeVisible();
    await page.getByTestId('import-file').setInputFiles(file);
    await historyReady(page, 1, REPLAY_TIMEOUT);
    // exported while the edit was applied, so it is applied again
    await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'true');
    await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
    await page.getByTestId('history').scrollIntoViewIfNeeded();
    await shot('after-import');
  });
});
