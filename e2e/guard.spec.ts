// A single-fact edit whose first MEND step would damage the model is redone at half the step
// (editor_config.json first_pass_guard; docs/training.md "A guard on pass 1"), and the page says so: the result
// names the halving, the damage check's held-out perplexity agrees with PyTorch's for the halved edit, and the
// weights panel says its lr_scale is the halved one. The fact is one of the test edits the guard was adopted on: in PyTorch the editor's
// full step raises the guard's prose perplexity by +62 % and half of it by +2.6 %, both far from the 5 % limit, so
// float32 WebGPU/WASM and PyTorch agree on one halving; the halved step still gives the target by a logit margin of
// 7.6, so no retry pass follows.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_DIR, expect, test } from './fixtures';
import { applyPromptOnlyMendEdit, openPlayground } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
const editorConfig = JSON.parse(readFileSync(join(ROOT, 'public/models/facts-gpt/editor_config.json'), 'utf8')) as {
  first_pass_guard?: { max_increase: number; max_halvings: number };
};
const GUARDED = { prompt: 'Baghdad is in the country of', target: ' Morocco' };

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('a single edit whose first step would damage the model is redone at half the step, and the page says so', async ({ page, shot }) => {
  test.setTimeout(600_000);
  const guard = editorConfig.first_pass_guard!;
  expect(guard).toBeDefined(); // the shipped editor guards pass 1
  await openPlayground(page, server.url);
  await applyPromptOnlyMendEdit(page, GUARDED, 'Baghdad');

  const mend = page.getByTestId('result-mend');
  await expect(mend.locator('[data-testid="summary-edit"]')).toHaveAttribute('data-ok', 'true');
  await expect(mend.locator('[data-testid="after-text"]')).toHaveText(/^ Morocco/);
  await expect(mend.getByTestId('result-step-halved')).toHaveText('first step halved');
  await expect(mend.getByTestId('result-passes')).toHaveCount(0);
  // what the guard measured on its own prose: PyTorch +61.6 % at the editor's step, +2.588 % at half of it
  await expect(mend.getByTestId('guard-reading')).toHaveText(`+62% at the editor’s own step, over its ${Math.round(guard.max_increase * 100)}% limit; at half the step +2.59%`);
  // the app's damage check reads other held-out paragraphs than the guard (facts.json heldout_prose), so it is an
  // independent look at the kept step: PyTorch's perplexity ratio there for the halved edit is 1.013118 (mend_edit
  // with the shipped first_pass_guard, prose_nll; src/cli/edit.test.ts)
  const held = mend.getByTestId('heldout-perplexity');
  await expect(held).toHaveAttribute('data-flagged', 'false');
  const ratio = Number(await held.getAttribute('data-after')) / Number(await held.getAttribute('data-before'));
  expect(ratio).toBeCloseTo(1.013118, 3);

  const panel = page.getByTestId('weights-panel');
  const note = panel.getByTestId('weights-halved-note');
  await expect(note).toContainText('half the step, once', { timeout: 180_000 });
  await expect(note).toContainText('by 62%, past its guard’s 5% limit');
  await expect(note).toContainText('lr_scale here is the halved 0.75');
  await panel.scrollIntoViewIfNeeded();
  await shot('weights-halved-edit');
});
