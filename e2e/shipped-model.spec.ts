// The model the app ships (public/models/, listed in models.json) loads on open, on WebGPU and on the WASM
// fallback, and answers a fact it was trained on. The fact and its phrasing come from the model's own
// facts.json (a training-split subject with a training-split template), so nothing here is hard-coded.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP_DIR, expect, generate, test, waitForModel } from './fixtures';
import { startStaticServer, type StaticServer } from './static-server';

const ROOT = new URL('..', import.meta.url).pathname;
const catalog = JSON.parse(readFileSync(join(ROOT, 'public/models/models.json'), 'utf8')) as { id: string; name?: string; path: string; default?: boolean }[];
const shipped = catalog.find((m) => m.default) ?? catalog[0];

interface Facts {
  relations: Record<string, { templates: { template: string; split: string }[] }>;
  subjects: Record<string, { split: string; facts: Record<string, string> }>;
  target_prefix: string;
}
const facts = JSON.parse(readFileSync(join(ROOT, 'public', shipped.path, 'facts.json'), 'utf8')) as Facts;

/** A training subject's fact, asked with a training template: the surest thing the model knows. */
function knownFact(relation: string): { prompt: string; answer: string } {
  const template = facts.relations[relation].templates.find((t) => t.split === 'train')!.template;
  const [subject, info] = Object.entries(facts.subjects).find(([, s]) => s.split === 'train' && s.facts[relation])!;
  return { prompt: template.replace('{s}', subject), answer: facts.target_prefix + info.facts[relation] };
}

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test(`the shipped model (${shipped.id}) loads on open and answers a fact it was trained on`, async ({ page, shot }, testInfo) => {
  await page.goto(server.url);
  await expect(page.getByTestId('backend-badge')).toHaveText(testInfo.project.name === 'webgpu' ? 'WebGPU' : 'WASM');
  await waitForModel(page);
  await expect(page.getByTestId('model-summary')).toContainText(shipped.path);
  await expect(page.getByLabel('Shipped model', { exact: true })).toHaveValue(shipped.id);

  const fact = knownFact('capital');
  const completion = await generate(page, fact.prompt, 4);
  expect(completion.startsWith(fact.answer)).toBe(true);
  await shot('shipped-model-fact');
});
