// Security on the page (hardening, issue 7): the built app carries a Content-Security-Policy that limits fetches to
// its own origin and the Hugging Face Hub, in the page and in the model worker (which does the downloads); the app
// works under it; and text from the user or the model is shown as text, never run as HTML.
import { expect, generate, openApp, safestGreedy, test, waitForModel } from './fixtures';
import { applyEdit, openTiny } from './hardening-steps';

test('the CSP is present, the app works under it, and fetches to other origins are blocked in the page and the worker', async ({ page, server }) => {
  // every CSP violation the page sees, from the very start
  await page.addInitScript(() => {
    const seen: string[] = [];
    (window as unknown as { cspViolations: string[] }).cspViolations = seen;
    document.addEventListener('securitypolicyviolation', (e) => seen.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  await openApp(page, server, { model: 'fixtures/tiny-gpt2/' });
  await waitForModel(page);

  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(csp).toContain("connect-src 'self' https://huggingface.co https://*.huggingface.co https://*.hf.co http://127.0.0.1:*");
  expect(csp).toContain("worker-src 'self' blob:");
  expect(csp).toContain("object-src 'none'");

  // the app works under it: the golden greedy completion of the tiny model
  const golden = safestGreedy();
  expect(await generate(page, golden.prompt, golden.max_new_tokens)).toBe(golden.text);
  expect(await page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations)).toEqual([]);

  // another origin (same server, but "localhost" is not 127.0.0.1 to the browser): refused by the policy
  const elsewhere = new URL('fixtures/tiny-gpt2/config.json', server.url.replace('127.0.0.1', 'localhost')).href;
  const fromPage = await page.evaluate(async (url) => {
    const violation = new Promise<string>((ok) => document.addEventListener('securitypolicyviolation', (e) => ok(`${e.violatedDirective} ${e.blockedURI}`), { once: true }));
    const result = await fetch(url).then(() => 'fetched', (e: Error) => `blocked: ${e.message}`);
    return { result, violation: await violation };
  }, elsewhere);
  expect(fromPage.result).toMatch(/^blocked/);
  expect(fromPage.violation).toBe(`connect-src ${elsewhere}`);

  // the model worker inherits the policy (it is started from a blob: module, see src/worker/client.ts)
  const worker = page.workers().find((w) => w.url().startsWith('blob:'));
  expect(worker, 'the model worker runs from a blob: URL').toBeTruthy();
  const fromWorker = await worker!.evaluate(async (url) => {
    const violation = Promise.race([
      new Promise<string>((ok) => self.addEventListener('securitypolicyviolation', (e) => ok(`${(e as SecurityPolicyViolationEvent).violatedDirective}`), { once: true })),
      new Promise<string>((ok) => setTimeout(() => ok('no event within 5 s'), 5000)),
    ]);
    const result = await fetch(url).then(() => 'fetched', (e: Error) => `blocked: ${e.message}`);
    return { result, violation: await violation };
  }, elsewhere);
  expect(fromWorker).toEqual({ result: expect.stringMatching(/^blocked/), violation: 'connect-src' });
  // while the app's own origin stays reachable from the worker
  const own = await worker!.evaluate((url) => fetch(url).then((r) => r.status), new URL('fixtures/tiny-gpt2/config.json', server.url).href);
  expect(own).toBe(200);
});

test('prompts, targets, paraphrases and neighbours containing HTML are shown literally and run nothing', async ({ page, server }) => {
  test.setTimeout(360_000);
  await openTiny(page, server.url);
  const prompt = 'The symbol for <img src=x onerror="window.xss=1"> is';
  const target = ' <b>Tb</b>';
  const paraphrase = '<script>window.xss=2</script> Chlorine is abbreviated as';
  const neighbour = '<svg onload="window.xss=3"></svg> The symbol for Sodium is';
  await page.getByTestId('add-paraphrase').fill(paraphrase);
  await page.getByTestId('add-paraphrase').press('Enter');
  await page.getByTestId('add-neighbour').fill(neighbour);
  await page.getByTestId('add-neighbour').press('Enter');
  await applyEdit(page, { prompt, target }, 'mend');

  // shown literally: in the history, the results and the check lists
  await expect(page.getByTestId('history-item')).toContainText(`“${prompt}” → “${target}”`);
  await expect(page.getByTestId('edit-results')).toContainText(prompt);
  await expect(page.getByTestId('paraphrase-list')).toContainText(paraphrase);
  await expect(page.getByTestId('neighbour-list')).toContainText(neighbour);
  await expect(page.getByTestId('paraphrase-row')).toContainText(paraphrase);
  await expect(page.getByTestId('neighbour-row')).toContainText(neighbour);
  // and never parsed: no element from them exists, no handler ran
  expect(await page.locator('img[src="x"], svg[onload], b:text-is("Tb")').count()).toBe(0);
  expect(await page.locator('script:not([src])').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { xss?: number }).xss)).toBeUndefined();
  // the same after a reload, when the text comes back from IndexedDB and the replay
  await page.reload();
  await expect(page.getByTestId('history-item')).toContainText(`“${prompt}” → “${target}”`);
  expect(await page.locator('img[src="x"], svg[onload]').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { xss?: number }).xss)).toBeUndefined();
});

test('oversized history files and share links are refused on the page with a clear message, changing nothing', async ({ page, server }) => {
  await openTiny(page, server.url);
  await expect(page.getByTestId('history-empty')).toBeVisible();
  // a history file of 1001 (empty) edits: refused before it reaches the worker
  const many = { format: 'mendlab-history', version: 1, position: 0, entries: Array.from({ length: 1001 }, () => ({})) };
  await page.getByTestId('import-file').setInputFiles({ name: 'many.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(many)) });
  await expect(page.getByTestId('edit-notice')).toContainText('the edit history has 1001 edits; at most 1000 can be imported');
  // a 4.2 MB file: refused from its size, before it is read
  const big = { format: 'mendlab-history', version: 1, position: 0, entries: [], padding: 'x'.repeat(4 * 1024 * 1024) };
  await page.getByTestId('import-file').setInputFiles({ name: 'big.json', mimeType: 'application/json', buffer: Buffer.from(JSON.stringify(big)) });
  await expect(page.getByTestId('edit-notice')).toContainText('it is 4.2 MB; at most 4 MiB can be imported');
  await expect(page.getByTestId('history-empty')).toBeVisible();

  // a share link of 21 edits (src/store/share-link.ts's bound)
  const e = Array.from({ length: 21 }, (_, i) => ['m', `The symbol for element ${i} is`, ' X']);
  const param = Buffer.from(JSON.stringify({ v: 1, p: 21, e })).toString('base64url');
  await openTiny(page, server.url, { edits: param });
  await expect(page.getByTestId('edit-notice')).toContainText('share link: at most 20 edits fit in a link');
  await expect(page.getByTestId('history-empty')).toBeVisible();
});
