// A batch edit in the playground, on the shipped model (WebGPU and WASM): three facts typed into the form are edited
// in one MEND update, the page reports every fact and the checks of the first, the history shows the batch as one
// edit, a share link opened in a fresh browser context replays all three facts, and after a later edit overrides one
// of them, "Check every edit now" says which facts still hold. Refusals first: two facts with one prompt are refused
// with a message before any work. The facts were checked first with the CLI
// (`npm run cli -- edit --prompt ... --target ... --prompt ...`, docs/cli.md): MEND gives all three new targets,
// the paraphrase follows the first, and Canada's capital stays Ottawa (Germany's, not checked here, turns to Rome).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_DIR, expect, generate, test } from './fixtures';
import { applyPromptOnlyMendEdit, openPlayground, openShareLinkElsewhere, untickChecks } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
const editorConfig = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/editor_config.json'), 'utf8')) as { lr_scale: number; lr_scale_batch: number };

const FACTS = [
  { prompt: 'The capital of France is', target: ' Rome' },
  { prompt: 'The capital of Japan is', target: ' Paris' },
  { prompt: 'The currency of Brazil is the', target: ' Euro' },
];
const PARAPHRASE = 'Q: What is the capital of France? A:';
const NEIGHBOUR = 'The capital of Canada is';
/** a later, single edit that overrides fact 2 (checked with the session API: fact 2's target then has P 0.0001) */
const LATER = { prompt: 'The capital of Japan is', target: ' Berlin' };

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('a batch edit of three facts: one update, every fact reported, one history entry, a share link replays all', async ({ page, browser, shot, audit }) => {
  test.setTimeout(900_000);
  await openPlayground(page, server.url);
  const form = page.getByTestId('edit-panel');
  const batch = page.getByTestId('batch-facts');

  await test.step('fill three facts; a prompt given twice is refused', async () => {
    await form.getByLabel('Prompt', { exact: true }).fill(FACTS[0].prompt);
    await form.getByLabel('New target', { exact: true }).fill(FACTS[0].target);
    await form.getByLabel('Tokens to generate').fill('3');
    await expect(page.getByTestId('recognised')).toContainText('France');
    // an unfinished row keeps "Apply" off and says which fact it is
    await batch.getByTestId('add-fact').click();
    await expect(page.getByTestId('apply-edit')).toBeDisabled();
    await expect(page.getByTestId('batch-unfinished')).toContainText('Fact 2 needs a prompt and a new target');
    // the same prompt twice reaches the worker's check, which refuses it before anything changes
    await batch.getByLabel('Prompt of fact 2').fill(FACTS[0].prompt);
    await batch.getByLabel('New target of fact 2').fill(' Berlin');
    await untickChecks(page);
    await page.getByTestId('method-mend').check();
    await expect(page.getByTestId('apply-edit')).toHaveText('Apply edit of 2 facts');
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-error')).toContainText('facts 1 and 2 have the same prompt');
    await expect(page.getByTestId('history-empty')).toBeVisible();

    await batch.getByLabel('Prompt of fact 2').fill(FACTS[1].prompt);
    await batch.getByLabel('New target of fact 2').fill(FACTS[1].target);
    await batch.getByTestId('add-fact').click();
    await batch.getByLabel('Prompt of fact 3').fill(FACTS[2].prompt);
    await batch.getByLabel('New target of fact 3').fill(FACTS[2].target);
    await page.getByTestId('add-paraphrase').fill(PARAPHRASE);
    await page.getByTestId('add-paraphrase-button').click();
    for (const n of [FACTS[1].prompt, NEIGHBOUR]) {
      await page.getByTestId('add-neighbour').fill(n);
      await page.getByTestId('add-neighbour-button').click();
    }
    // Japan's capital, a neighbour of France's, is edited on purpose in this batch: listed but not checked
    const japan = page.getByTestId('neighbour-list').locator('li', { hasText: FACTS[1].prompt });
    await expect(japan).toContainText('edited in this batch, not checked');
    await expect(japan.getByRole('checkbox')).toBeDisabled();
    await expect(japan.getByRole('checkbox')).not.toBeChecked();
    await expect(page.getByTestId('apply-edit')).toHaveText('Apply edit of 3 facts');
    await expect(page.getByTestId('sequence-note')).toHaveCount(0); // nothing edited yet
    await audit('batch-form');
  });

  await test.step('apply: every fact gets its target in one update; the first fact\'s checks', async () => {
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
    await expect(page.getByTestId('edit-line')).toContainText('and 2 more facts in the same update');
    const result = page.getByTestId('result-mend');
    await expect(result.getByTestId('summary-facts')).toContainText('3 of 3 give their new target');
    const rows = result.getByTestId('batch-row');
    await expect(rows).toHaveCount(3);
    for (const [i, f] of FACTS.entries()) {
      await expect(rows.nth(i)).toHaveAttribute('data-success-mend', 'true');
      await expect(rows.nth(i).locator('th')).toContainText(f.prompt);
      await expect(rows.nth(i).locator('td[data-method="mend"]')).toContainText(new RegExp(`^${f.target}`));
    }
    await expect(result.getByTestId('paraphrase-row')).toHaveAttribute('data-success', 'true');
    await expect(result.getByTestId('neighbour-row')).toHaveAttribute('data-unchanged', 'true');
    await expect(result.getByTestId('neighbour-row')).toContainText(NEIGHBOUR);
    // one history entry holding the three facts
    await expect(page.getByTestId('history-item')).toHaveCount(1);
    await expect(page.getByTestId('history-batch')).toContainText('and 2 more facts in the same edit');
    // the weights panel describes the whole batch: the per-token pieces name the fact each token belongs to
    await expect(page.getByTestId('weights-panel').getByTestId('weights-token-row').filter({ hasText: '(fact 3)' }).first()).toBeVisible({ timeout: 180_000 });
    // its step uses the editor's batch scale, not the single-fact one
    expect(editorConfig.lr_scale_batch).not.toBe(editorConfig.lr_scale);
    await expect(page.getByTestId('weights-lr-scale')).toHaveText(String(editorConfig.lr_scale_batch));
    await expect(page.getByTestId('weights-panel')).toContainText('scale for batch edits');
    // the first edit of the history: its held-out perplexity has no separate "since the original model"
    await expect(result.getByTestId('heldout-perplexity')).toContainText(/^2\.94\d → /);
    await expect(result.getByTestId('heldout-since-original')).toHaveCount(0);
    await result.scrollIntoViewIfNeeded();
    await shot('batch-edit');
    await audit('batch-applied');
  });

  await test.step('a share link replays all three facts in a fresh browser context', async () => {
    await openShareLinkElsewhere(page, browser, 1, async (page2) => {
      await expect(page2.getByTestId('history-batch')).toContainText('and 2 more facts');
      // the third fact's prompt, asked in the generation panel, now gives its new target
      expect(await generate(page2, FACTS[2].prompt, 2)).toMatch(new RegExp(`^${FACTS[2].target}`));
    });
  });

  await test.step('a later edit of Japan\'s capital undoes fact 2; "Check every edit now" shows which facts still hold', async () => {
    await batch.getByTestId('batch-remove').first().click();
    await batch.getByTestId('batch-remove').first().click();
    await expect(batch.getByTestId('batch-fact')).toHaveCount(0);
    await applyPromptOnlyMendEdit(page, LATER, 'Japan');
    await expect(page.getByTestId('history-item')).toHaveCount(2);
    // a later edit's held-out perplexity also says where the whole history has taken it since the original model
    const since = page.getByTestId('result-mend').getByTestId('heldout-since-original');
    await expect(since).toContainText(/since the original model 2\.94\d → \d\.\d{3} \([+−]\d+\.\d\d%\)/);
    await expect(since).toHaveAttribute('data-flagged', 'false');
    await page.getByTestId('recheck-history').click();
    await expect(page.getByTestId('recheck-summary')).toHaveText('3 of 4 edited facts still give the new target.', { timeout: 120_000 });
    const facts = page.getByTestId('recheck-fact');
    await expect(facts).toHaveCount(4);
    // edit 1's three facts, then edit 2's; only Japan → Paris (edit 1, fact 2) lost its target, to " Berlin"
    expect(await facts.evaluateAll((els) => els.map((e) => e.getAttribute('data-success')))).toEqual(['true', 'false', 'true', 'true']);
    await expect(facts.nth(1)).toContainText('edit 1: “The capital of Japan is” → “ Paris”; now “ Berlin');
    await expect(facts.nth(3)).toContainText('edit 2: “The capital of Japan is” → “ Berlin”');
    // and what the two edits have done to the rest of the model, against the original weights
    await expect(page.getByTestId('recheck-perplexity')).toContainText(/^Held-out perplexity 2\.94\d for the original model, \d\.\d{3} now \([+−]\d+\.\d\d%\)\.$/);
    await expect(page.getByTestId('recheck-perplexity')).toHaveAttribute('data-flagged', 'false');
    await page.getByTestId('history').scrollIntoViewIfNeeded();
    await shot('history-recheck');
    await audit('history-recheck');
  });

  await test.step('"Revert all, and put these facts in the form as one batch": the same facts in one update all hold', async () => {
    await page.getByTestId('batch-from-history').click();
    await expect(page.getByTestId('edit-notice')).toContainText('the form holds the 3 edited facts as one batch edit');
    expect(await page.getByTestId('history-item').evaluateAll((els) => els.map((e) => e.getAttribute('data-applied')))).toEqual(['false', 'false']);
    await expect(page.getByTestId('recheck-summary')).toHaveCount(0); // the check described another state of the history
    // Japan keeps its latest target, in the place it was first edited
    await expect(form.getByLabel('Prompt', { exact: true })).toHaveValue(FACTS[0].prompt);
    await expect(form.getByLabel('New target', { exact: true })).toHaveValue(FACTS[0].target);
    expect(await batch.getByTestId('batch-prompt').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value))).toEqual([LATER.prompt, FACTS[2].prompt]);
    expect(await batch.getByTestId('batch-target').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value))).toEqual([LATER.target, FACTS[2].target]);
    await expect(page.getByTestId('sequence-note')).toHaveCount(0); // reverted: the batch starts from the original weights
    await page.getByTestId('apply-edit').click();
    await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'ready', { timeout: 600_000 });
    await expect(page.getByTestId('result-mend').getByTestId('summary-facts')).toContainText('3 of 3 give their new target');
    await expect(page.getByTestId('history-item')).toHaveCount(1); // a new edit drops the undone sequence, as always
  });

  await test.step('the form fills a batch with example facts, up to the 10 one edit holds', async () => {
    const rows = batch.getByTestId('batch-fact');
    await expect(rows).toHaveCount(2);
    // a batch on top of the edit now in the history: the form says what that did to this model
    await expect(page.getByTestId('sequence-note')).toHaveAttribute('data-batch', 'true');
    await expect(page.getByTestId('sequence-note')).toContainText('a batch on top of an earlier edit broke it');
    await batch.getByTestId('add-example-facts').click();
    expect(await rows.count()).toBeGreaterThan(2);
    const prompts = await batch.getByTestId('batch-prompt').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
    const first = await form.getByLabel('Prompt', { exact: true }).inputValue();
    expect(new Set([first, ...prompts]).size).toBe(prompts.length + 1); // distinct, and none is fact 1's
    while (await batch.getByTestId('add-fact').isEnabled()) await batch.getByTestId('add-fact').click();
    await expect(rows).toHaveCount(9);
    await expect(batch).toContainText('10 facts is the most one edit holds');
    await batch.getByTestId('batch-remove').last().click();
    await expect(batch.getByTestId('add-fact')).toBeEnabled();
    // at phone width the rows wrap inside the screen, and the results' per-fact table scrolls in its own region
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)).toBeLessThanOrEqual(0);
    for (const row of await rows.all()) {
      const box = (await row.boundingBox())!;
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    await shot('batch-phone-width');
  });
});
