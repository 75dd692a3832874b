// Shared Playwright fixtures: one static server per test worker (the built app + tests/fixtures), the golden
// outputs of the tiny model, and a helper that saves screenshots under test-results/screens/.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, type Page } from '@playwright/test';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
export const APP_DIR = join(ROOT, 'out/e2e-app');
export const FIXTURES_DIR = join(ROOT, 'tests/fixtures');
export const SCREENS_DIR = join(ROOT, 'test-results/screens');

export interface GoldenGreedy {
  prompt: string;
  max_new_tokens: number;
  output_ids: number[];
  text: string;
  min_top2_margin?: number;
}

export function readGolden(model = 'tiny-gpt2'): { greedy: GoldenGreedy[] } {
  return JSON.parse(readFileSync(join(FIXTURES_DIR, model, 'golden.json'), 'utf8'));
}

/** The greedy case whose top-2 logit margin is widest, so float differences between backends cannot flip it. */
export function safestGreedy(model = 'tiny-gpt2'): GoldenGreedy {
  const cases = readGolden(model).greedy;
  return cases.reduce((a, b) => ((b.min_top2_margin ?? 0) > (a.min_top2_margin ?? 0) ? b : a));
}

export const test = base.extend<{ shot: (name: string) => Promise<void> }, { server: StaticServer }>({
  server: [
    async ({}, use) => {
      // models/ is replaced by an empty folder so these tests never depend on (or wait for) whatever model the
      // build ships; tests of the shipped model serve their own models/.
      const noModels = mkdtempSync(join(tmpdir(), 'mendlab-e2e-empty-'));
      const server = await startStaticServer({ '/': APP_DIR, '/fixtures/': FIXTURES_DIR, '/models/': noModels });
      await use(server);
      await server.close();
      rmSync(noModels, { recursive: true, force: true });
    },
    { scope: 'worker' },
  ],
  shot: async ({ page }, use, testInfo) => {
    await use(async (name: string) => {
      await page.screenshot({ path: join(SCREENS_DIR, `${testInfo.project.name}-${name}.png`), fullPage: true });
    });
  },
});

export { expect };

/** Open the app with the given query parameters and wait until the model worker reports its backend. */
export async function openApp(page: Page, server: StaticServer, query: Record<string, string>): Promise<void> {
  const q = new URLSearchParams(query).toString();
  await page.goto(`${server.url}${q ? `?${q}` : ''}`);
  await expect(page.getByTestId('backend-badge')).not.toHaveText('Starting…');
}

export async function waitForModel(page: Page): Promise<void> {
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', /ready|error/);
  const error = page.getByTestId('model-error');
  if (await error.count()) throw new Error(`model failed to load: ${await error.innerText()}`);
  await expect(page.getByTestId('model-summary')).toBeVisible();
}

/** Type a prompt, generate greedily and return the completion text once generation has finished. */
export async function generate(page: Page, prompt: string, maxNewTokens: number): Promise<string> {
  await page.getByTestId('max-new-tokens').fill(String(maxNewTokens));
  await page.getByTestId('temperature').fill('0');
  // the generation panel's prompt (the edit form below has a field labelled "Prompt" too)
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('generate').click();
  const box = page.getByTestId('completion-box');
  await expect(box).toHaveAttribute('data-phase', /ready|error/);
  const err = page.getByTestId('generation-error');
  if (await err.count()) throw new Error(await err.innerText());
  return (await page.getByTestId('completion').textContent()) ?? '';
}
