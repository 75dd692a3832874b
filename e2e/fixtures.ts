// Shared Playwright fixtures: one static server per test worker (the built app + tests/fixtures), the golden
// outputs of the tiny model, a helper that saves screenshots under test-results/screens/, and an accessibility
// audit (axe-core) whose findings go to test-results/a11y/.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test as base, expect, type Page } from '@playwright/test';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
export const APP_DIR = join(ROOT, 'out/e2e-app');
export const FIXTURES_DIR = join(ROOT, 'tests/fixtures');
export const SCREENS_DIR = join(ROOT, 'test-results/screens');
export const A11Y_DIR = join(ROOT, 'test-results/a11y');
const AXE_PATH = createRequire(import.meta.url).resolve('axe-core/axe.min.js');

/** One axe-core finding, trimmed to what a person fixing it needs. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** The WCAG 2.1 A/AA rules plus axe's best practices (landmarks, heading order, one main region ...). */
const AXE_TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'];

/**
 * Runs axe-core on the page as it is now. Every finding is written to test-results/a11y/<project>-<state>.json;
 * serious and critical ones fail the test (moderate and minor ones are reported there for a person to judge).
 */
async function runAxe(page: Page, file: string): Promise<AxeViolation[]> {
  // addScriptTag inlines the file; a page whose CSP refuses inline scripts gets it through evaluate instead
  await page.addScriptTag({ path: AXE_PATH }).catch(() => undefined);
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(readFileSync(AXE_PATH, 'utf8'));
  const violations = await page.evaluate(async (tags) => {
    type Axe = { run(ctx: Document, o: object): Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[] }> };
    const r = await (window as unknown as { axe: Axe }).axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 8).map((n) => n.target.join(' ')) }));
  }, AXE_TAGS);
  mkdirSync(A11Y_DIR, { recursive: true });
  writeFileSync(file, JSON.stringify(violations, null, 2) + '\n');
  return violations;
}

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

export const test = base.extend<{ shot: (name: string) => Promise<void>; audit: (state: string) => Promise<AxeViolation[]> }, { server: StaticServer }>({
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
  audit: async ({ page }, use, testInfo) => {
    await use(async (state: string) => {
      const violations = await runAxe(page, join(A11Y_DIR, `${testInfo.project.name}-${state}.json`));
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(serious, `axe: serious or critical accessibility violations in state "${state}"`).toEqual([]);
      return violations;
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
