// Load the tiny golden model by URL, generate greedily, and compare with the PyTorch reference text.
// Runs in both projects: 'webgpu' (the badge must say WebGPU) and 'wasm' (no WebGPU in the browser, so the
// app must fall back to WASM and say so).
import { expect, generate, openApp, safestGreedy, test, waitForModel } from './fixtures';

const golden = safestGreedy('tiny-gpt2');

test('loads the tiny model by URL and generates the golden greedy completion', async ({ page, server, shot }, testInfo) => {
  const expected = testInfo.project.name === 'webgpu' ? 'WebGPU' : 'WASM';
  await openApp(page, server, { model: `${server.url}fixtures/tiny-gpt2/` });
  await expect(page.getByTestId('backend-badge')).toHaveText(expected);
  await waitForModel(page);
  await shot('model-loaded');

  const completion = await generate(page, golden.prompt, golden.max_new_tokens);
  expect(completion).toBe(golden.text);
  await expect(page.getByTestId('generation-stats')).toContainText(`${golden.output_ids.length} tokens`);

  // The chart shows the first generated token as the most likely next token (greedy = argmax).
  const rows = page.getByTestId('topk-row');
  await expect(rows).toHaveCount(10);
  await expect(rows.first()).toHaveAttribute('data-token-id', String(golden.output_ids[0]));
  const labels = await rows.evaluateAll((els) => els.map((e) => e.getAttribute('aria-label') ?? ''));
  const probs = labels.map((l) => Number(/: ([\d.e+-]+)%$/.exec(l)?.[1]) / 100);
  expect(probs.every((p) => p > 0 && p <= 1)).toBe(true);
  expect(probs.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(1.0001);
  for (let i = 1; i < probs.length; i++) expect(probs[i]).toBeLessThanOrEqual(probs[i - 1]);
  await shot('generated');

  if (expected === 'WASM') {
    // No WebGPU adapter in this browser: the page explains the fallback in words.
    await expect(page.getByTestId('backend-note')).toContainText('does not offer WebGPU');
  } else {
    await expect(page.getByTestId('backend-note')).toHaveCount(0);
  }
});
