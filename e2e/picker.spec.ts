// The model picker's behaviour around the shipped-model list and broken models. These are about the page,
// not the backend, so they run once: playwright.config.ts keeps them out of the 'webgpu' project (SwiftShader is slow).
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { APP_DIR, expect, FIXTURES_DIR, generate, safestGreedy, test, waitForModel } from './fixtures';
import { startStaticServer, type StaticServer } from './static-server';

const TINY = join(FIXTURES_DIR, 'tiny-gpt2');
const TINY_FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

/** A models/ folder served in place of the build's own: a models.json plus model folders made by the test. */
function makeModelsDir(models: unknown | null, folders: Record<string, (dir: string) => void>): string {
  const root = mkdtempSync(join(tmpdir(), 'mendlab-e2e-models-'));
  if (models !== null) writeFileSync(join(root, 'models.json'), JSON.stringify(models));
  for (const [name, make] of Object.entries(folders)) {
    const dir = join(root, name);
    mkdirSync(dir);
    make(dir);
  }
  return root;
}
const copyTiny = (dir: string) => TINY_FILES.forEach((f) => copyFileSync(join(TINY, f), join(dir, f)));

let server: StaticServer | null = null;
let modelsDir: string | null = null;
test.afterEach(async () => {
  await server?.close();
  if (modelsDir) rmSync(modelsDir, { recursive: true, force: true });
  server = modelsDir = null;
});

async function serveWithModels(models: unknown | null, folders: Record<string, (dir: string) => void> = {}): Promise<string> {
  modelsDir = makeModelsDir(models, folders);
  server = await startStaticServer({ '/': APP_DIR, '/models/': modelsDir, '/fixtures/': FIXTURES_DIR });
  return server.url;
}

test('the shipped default model (models.json) loads on open and generates', async ({ page, shot }) => {
  const url = await serveWithModels([{ id: 'other', path: 'models/missing/' }, { id: 'tiny', name: 'Tiny test GPT', path: 'models/tiny/', default: true }], { tiny: copyTiny });
  await page.goto(url);
  await waitForModel(page);
  await expect(page.getByTestId('model-summary')).toContainText('models/tiny/');
  await expect(page.getByLabel('Shipped model', { exact: true })).toHaveValue('tiny');
  const golden = safestGreedy();
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
  // Loading the default does not rewrite the address bar; an explicit choice would.
  expect(new URL(page.url()).search).toBe('');
  await shot('shipped-model');
});

test('sharded and fp16 checkpoints load by URL, listing exactly the files they have', async ({ page }) => {
  const url = await serveWithModels(null);
  const golden = safestGreedy();
  await page.goto(`${url}?model=${encodeURIComponent(`${url}fixtures/tiny-gpt2-sharded/`)}`);
  await waitForModel(page);
  const files = await page.getByTestId('file-progress').evaluateAll((els) => els.map((e) => e.getAttribute('data-file')).sort());
  expect(files).toEqual([
    'config.json', 'generation_config.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors',
    'model-00003-of-00003.safetensors', 'model.safetensors.index.json', 'tokenizer.json', 'tokenizer_config.json',
  ]);
  await expect(page.getByTestId('model-summary')).toContainText('(F32 weights)');
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);

  await page.goto(`${url}?model=${encodeURIComponent(`${url}fixtures/tiny-gpt2-fp16/`)}`);
  await waitForModel(page);
  await expect(page.getByTestId('model-summary')).toContainText('(F16 weights)');
  await expect(page.getByTestId('model-summary')).toContainText('37.1 k parameters');
});

test('without models.json the page says no model is shipped, and still offers the Hub', async ({ page, shot }) => {
  const url = await serveWithModels(null);
  await page.goto(url);
  await expect(page.getByTestId('catalog-status')).toContainText('No model is shipped with this build yet');
  await expect(page.getByTestId('model-status')).toContainText('No model loaded yet');
  await expect(page.getByTestId('hub-id')).toBeEnabled();
  await expect(page.getByTestId('generate')).toBeDisabled();
  await shot('no-shipped-model');
});

test('a listed model whose folder is missing gives an error naming config.json', async ({ page, shot }) => {
  const url = await serveWithModels([{ id: 'facts-gpt', path: 'models/facts-gpt/' }]);
  await page.goto(url);
  const error = page.getByTestId('model-error');
  await expect(error).toContainText('Could not load facts-gpt (models/facts-gpt/).');
  await expect(error).toContainText('config.json: not found (404)');
  await shot('shipped-model-missing');
});

test('a truncated safetensors header is reported with the file name', async ({ page, shot }) => {
  const url = await serveWithModels([{ id: 'broken', path: 'models/broken/' }], {
    broken: (dir) => {
      copyTiny(dir);
      const bytes = readFileSync(join(dir, 'model.safetensors'));
      writeFileSync(join(dir, 'model.safetensors'), bytes.subarray(0, 40)); // the JSON header is cut off
    },
  });
  await page.goto(url);
  const error = page.getByTestId('model-error');
  await expect(error).toContainText('model.safetensors:');
  await expect(page.getByTestId('generate')).toBeDisabled();
  await shot('broken-safetensors');
});

test('a model of another architecture is refused before its weights are downloaded', async ({ page }) => {
  const url = await serveWithModels([{ id: 'llama', path: 'models/llama/' }], {
    llama: (dir) => {
      copyTiny(dir);
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: 'llama', architectures: ['LlamaForCausalLM'] }));
    },
  });
  await page.goto(url);
  await expect(page.getByTestId('model-error')).toContainText('config.json:');
  await expect(page.getByTestId('model-error')).toContainText(/unsupported|not supported/i);
  expect(server!.requests).not.toContain('/models/llama/model.safetensors');
});

test('an invalid Hub id is refused in the form, before any download', async ({ page }) => {
  const url = await serveWithModels(null);
  await page.goto(url);
  await page.getByLabel('Hugging Face model id').fill('not a/valid/id');
  await page.getByTestId('load-hub').click();
  await expect(page.getByTestId('hub-id-error')).toContainText('is not a Hugging Face model id');
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'idle');

  // The same from a link: the page explains instead of loading something else.
  await page.goto(`${url}?model=gpt2`);
  await expect(page.getByTestId('model-error')).toContainText('The link asks for model=gpt2');
});

test('keyboard only: Tab to the prompt, Ctrl+Enter generates', async ({ page }) => {
  const url = await serveWithModels([{ id: 'tiny', path: 'models/tiny/' }], { tiny: copyTiny });
  await page.goto(url);
  await waitForModel(page);
  const prompt = page.getByTestId('prompt');
  for (let i = 0; i < 20 && !(await prompt.evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
  await expect(prompt).toBeFocused();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('Tokyo is');
  await page.keyboard.press('Control+Enter');
  await expect(page.getByTestId('completion-box')).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('topk-row')).toHaveCount(10);
});

test('phone width: one column, nothing wider than the screen', async ({ page, shot }) => {
  await page.setViewportSize({ width: 390, height: 844 });
  const url = await serveWithModels([{ id: 'tiny', path: 'models/tiny/' }], { tiny: copyTiny });
  await page.goto(url);
  await waitForModel(page);
  await generate(page, 'The symbol of gold is', 8);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot('phone');
});

test('sampling settings reach the model: seeded samples repeat, differ from greedy, and top-k 1 is greedy', async ({ page }) => {
  const url = await serveWithModels(null);
  await page.goto(`${url}?model=${encodeURIComponent(`${url}fixtures/tiny-gpt2/`)}`);
  const golden = safestGreedy();
  await waitForModel(page);
  await expect(page.getByTestId('top-k')).toBeDisabled(); // meaningless while greedy
  await expect(page.getByTestId('seed')).toBeDisabled();
  const sample = async (temperature: string, topK: string, seed: string) => {
    await page.getByTestId('temperature').fill(temperature);
    await page.getByTestId('top-k').fill(topK);
    await page.getByTestId('seed').fill(seed);
    await page.getByTestId('max-new-tokens').fill(String(golden.max_new_tokens));
    await page.getByTestId('prompt').fill(golden.prompt);
    await page.getByTestId('generate').click();
    await expect(page.getByTestId('completion-box')).toHaveAttribute('data-phase', 'ready');
    return (await page.getByTestId('completion').textContent()) ?? '';
  };
  const hot = await sample('1.5', '0', '11');
  expect(hot).not.toBe(golden.text);
  expect(await sample('1.5', '0', '11')).toBe(hot);
  expect(await sample('0.8', '1', '5')).toBe(golden.text);
});
