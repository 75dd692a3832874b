// A damaged saved history (IndexedDB) or share link on the shipped model is reported and reset, not a blank page.
// Runs in the 'wasm' project only: it is storage and page behaviour, nothing in it depends on the backend (the
// history journey itself, with reload, share link and export/import, runs on both backends in edit.spec.ts).
import type { Page } from '@playwright/test';
import { APP_DIR, expect, test, waitForModel } from './fixtures';
import { NEIGHBOUR } from './edit-steps';
import { startStaticServer, type StaticServer } from './static-server';

let server: StaticServer;
test.beforeAll(async () => {
  server = await startStaticServer({ '/': APP_DIR });
});
test.afterAll(async () => server.close());

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
