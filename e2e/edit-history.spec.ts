// The editing playground's history on the shipped model, WASM only (it is page behaviour: the replays run on
// whichever backend, and the WebGPU project already checks the edit itself in edit.spec.ts): a reload keeps it, a
// share link opened in a fresh browser context reproduces it, export then import reproduces it, and a damaged
// saved store is reported and reset.
import { readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { APP_DIR, expect, test, waitForModel } from './fixtures';
import { applyEdit, EDIT, historyReady, NEIGHBOUR, ORIGINAL, PARAPHRASE } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

test('the history survives a reload, travels by share link, and by export + import', async ({ page, browser, shot }, testInfo) => {
  test.setTimeout(300_000);
  await applyEdit(page, server.url); // waits until the edit reached IndexedDB

  // the history and our own checks come back after a reload (the edit is replayed)
  await page.reload();
  await waitForModel(page);
  await historyReady(page, 1);
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
  await expect(page.getByTestId('paraphrase-list')).toContainText(PARAPHRASE);
  await expect(page.getByTestId('neighbour-list')).toContainText(NEIGHBOUR);
  await shot('after-reload');

  // a share link opened in a fresh browser context (no shared storage) reproduces the edit
  await page.getByTestId('share-link').click();
  const link = await page.getByTestId('share-url').inputValue();
  expect(link.length).toBeLessThan(2000);
  const other = await browser.newContext();
  try {
    const page2 = await other.newPage();
    await page2.goto(link);
    await waitForModel(page2);
    await historyReady(page2, 1);
    await expect(page2.getByTestId('history-item')).toContainText(EDIT.target.trim());
    await expect(page2.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
    await expect(page2.getByTestId('edit-notice')).toContainText('share link');
    expect(new URL(page2.url()).searchParams.has('edits')).toBe(false); // a reload will not replay it again
  } finally {
    await other.close();
  }

  // export, undo, clear, then import the file: the same history, applied again
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('export-history').click()]);
  const file = testInfo.outputPath('history.json');
  await download.saveAs(file);
  expect(JSON.parse(readFileSync(file, 'utf8')).entries[0].facts[0].target).toBe(EDIT.target);
  await page.getByRole('button', { name: 'Undo' }).click();
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${ORIGINAL}`));
  await page.getByTestId('clear-history').click();
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await page.getByTestId('import-file').setInputFiles(file);
  await historyReady(page, 1);
  // exported while the edit was applied, so it is applied again
  await expect(page.getByTestId('history-item')).toHaveAttribute('data-applied', 'true');
  await expect(page.getByTestId('now-text')).toHaveText(new RegExp(`^${EDIT.target}`));
  await shot('after-import');
});

/** Overwrites every saved playground record in this origin's IndexedDB with `value`. */
async function damageStore(page: Page, value: unknown): Promise<number> {
  return page.evaluate(async (v) => {
    const db = await new Promise<IDBDatabase>((ok, fail) => {
      const r = indexedDB.open('mendlab', 1);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    const tx = db.transaction('playground', 'readwrite');
    const store = tx.objectStore('playground');
    const keys = await new Promise<IDBValidKey[]>((ok) => {
      const r = store.getAllKeys();
      r.onsuccess = () => ok(r.result);
    });
    for (const k of keys) store.put(v, k);
    await new Promise((ok) => (tx.oncomplete = ok));
    db.close();
    return keys.length;
  }, value);
}

/** Runs `action` and waits until the page has written its state to IndexedDB once more. */
async function andSaved(page: Page, action: () => Promise<void>): Promise<void> {
  const history = page.getByTestId('history');
  await expect(history).toHaveAttribute('data-saves', /\d+/);
  const before = Number(await history.getAttribute('data-saves'));
  await action();
  await expect.poll(async () => Number(await history.getAttribute('data-saves'))).toBeGreaterThan(before);
}

test('a damaged saved history is reported and reset, not a blank page', async ({ page, shot }) => {
  test.setTimeout(180_000);
  await page.goto(server.url);
  await waitForModel(page);
  await andSaved(page, () => page.getByTestId('add-neighbour').fill(NEIGHBOUR).then(() => page.getByTestId('add-neighbour').press('Enter')));

  // a record of the wrong shape
  expect(await damageStore(page, 'not a record')).toBe(1);
  await page.reload();
  await waitForModel(page);
  await expect(page.getByTestId('edit-notice')).toContainText('damaged');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Apply edit' })).toBeVisible();
  await shot('damaged-store');

  // a record of the right shape whose history the worker refuses
  await andSaved(page, () => page.getByTestId('add-neighbour').fill(NEIGHBOUR).then(() => page.getByTestId('add-neighbour').press('Enter')));
  await damageStore(page, { version: 1, history: { format: 'mendlab-history', version: 1, entries: 'x' }, ownParaphrases: [], ownNeighbours: [] });
  await page.reload();
  await waitForModel(page);
  await expect(page.getByTestId('edit-notice')).toContainText('reset');
  await expect(page.getByTestId('history-empty')).toBeVisible();

  // a damaged share link is refused with its reason and changes nothing
  await page.goto(`${server.url}?edits=not*base64`);
  await waitForModel(page);
  await expect(page.getByTestId('edit-notice')).toContainText('share link');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  await expect(page.getByRole('button', { name: 'Apply edit' })).toBeVisible();
});
