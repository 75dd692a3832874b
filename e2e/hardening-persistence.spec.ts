// Persistence under faults (hardening, issue 7): closing the tab in the middle of an edit leaves the saved history
// and the user's own checks whole (the interrupted edit is simply absent), and a damaged saved store is reset with a
// message and a download of what could still be read: a record of the wrong shape, and a whole database of an
// unknown version.
import { readFileSync } from 'node:fs';
import type { Page } from '@playwright/test';
import { expect, test } from './fixtures';
import { applyEdit, FT_EDIT, openTiny, savesOf, startEdit, TINY_MODEL } from './hardening-steps';

const MY_PARAPHRASE = 'In chemistry, Chlorine is written as';
const MY_NEIGHBOUR = 'The symbol for Sodium is';

/** Every record of the playground store, as the page reads it now ({} when the database does not exist). */
function readStore(page: Page): Promise<Record<string, unknown>> {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((ok, fail) => {
      const r = indexedDB.open('mendlab');
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    try {
      if (!db.objectStoreNames.contains('playground')) return {};
      const store = db.transaction('playground').objectStore('playground');
      const get = <T,>(r: IDBRequest<T>) => new Promise<T>((ok) => (r.onsuccess = () => ok(r.result)));
      const [keys, values] = await Promise.all([get(store.getAllKeys()), get(store.getAll())]);
      return Object.fromEntries(keys.map((k, i) => [String(k), values[i]]));
    } finally {
      db.close();
    }
  });
}

async function addOwnChecks(page: Page): Promise<void> {
  const saves = await savesOf(page);
  await page.getByTestId('add-paraphrase').fill(MY_PARAPHRASE);
  await page.getByTestId('add-paraphrase').press('Enter');
  await page.getByTestId('add-neighbour').fill(MY_NEIGHBOUR);
  await page.getByTestId('add-neighbour').press('Enter');
  await expect.poll(() => savesOf(page)).toBeGreaterThanOrEqual(saves + 2);
}

test('closing the tab in the middle of an edit keeps the earlier history and own checks whole', async ({ page, server }) => {
  test.setTimeout(480_000);
  const context = page.context();
  await openTiny(page, server.url);
  await addOwnChecks(page);
  await applyEdit(page, { prompt: 'The symbol for Chlorine is', target: ' Cl' }, 'mend', { tokens: 1 });
  const saved = await readStore(page);

  // a second, slower edit (fine-tuning, 20 Adam steps) is running when the tab goes away
  await startEdit(page, FT_EDIT, 'ft');
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'running');
  await page.close({ runBeforeUnload: false });

  const reopened = await context.newPage();
  await openTiny(reopened, server.url);
  await expect(reopened.getByTestId('history-item')).toHaveCount(1);
  await expect(reopened.getByTestId('history-item')).toContainText('“The symbol for Chlorine is” → “ Cl”');
  await expect(reopened.getByTestId('paraphrase-list')).toContainText(MY_PARAPHRASE);
  await expect(reopened.getByTestId('neighbour-list')).toContainText(MY_NEIGHBOUR);
  await expect(reopened.getByTestId('edit-notice')).toHaveCount(0); // nothing damaged, nothing reset
  await expect(reopened.getByTestId('salvage')).toHaveCount(0);
  // the store holds what was saved before the interrupted edit (the replay on reopening saves it again, with new
  // timings, so the edits are compared by what they are)
  const key = Object.keys(saved)[0];
  expect(Object.keys(saved)).toHaveLength(1);
  await expect.poll(async () => essence((await readStore(reopened))[key])).toEqual(essence(saved[key]));
  expect(essence(saved[key]).entries).toHaveLength(1);
});

/** A saved record without the parts that change on every replay (timings, dates, measurements). */
function essence(record: unknown) {
  const r = record as { history: { position: number; entries: Array<{ method: string; facts: unknown; options: unknown }> }; ownParaphrases: string[]; ownNeighbours: string[] };
  return {
    position: r.history.position,
    entries: r.history.entries.map((e) => ({ method: e.method, facts: e.facts, options: e.options })),
    ownParaphrases: r.ownParaphrases,
    ownNeighbours: r.ownNeighbours,
  };
}

/** Puts `value` under every key of the playground store. */
async function damageRecords(page: Page, value: unknown): Promise<void> {
  await page.evaluate(async (v) => {
    const db = await new Promise<IDBDatabase>((ok, fail) => {
      const r = indexedDB.open('mendlab', 1);
      r.onsuccess = () => ok(r.result);
      r.onerror = () => fail(r.error);
    });
    const tx = db.transaction('playground', 'readwrite');
    const store = tx.objectStore('playground');
    const keys = await new Promise<IDBValidKey[]>((ok) => (store.getAllKeys().onsuccess = (e) => ok((e.target as IDBRequest<IDBValidKey[]>).result)));
    for (const k of keys) store.put(v, k);
    await new Promise((ok) => (tx.oncomplete = ok));
    db.close();
  }, value);
}

async function downloadSalvage(page: Page, path: string): Promise<{ key: string; reason: string; records: Record<string, unknown> }> {
  await expect(page.getByTestId('salvage')).toBeVisible();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('salvage-download').click()]);
  await download.saveAs(path);
  const json = JSON.parse(readFileSync(path, 'utf8'));
  expect(json.format).toBe('mendlab-salvage');
  return json;
}

test('a damaged store is reset with a message, keeping a download of what could be read', async ({ page, server }, testInfo) => {
  test.setTimeout(180_000);
  await openTiny(page, server.url);
  await addOwnChecks(page);
  const [key] = Object.keys(await readStore(page));
  expect(key).toContain(TINY_MODEL);

  // 1. a record of an unknown shape: reported, reset, and its content offered as a download
  const damaged = { version: 9, history: { entries: 'lost' }, ownParaphrases: [MY_PARAPHRASE], ownNeighbours: [MY_NEIGHBOUR, 7] };
  await damageRecords(page, damaged);
  await page.reload();
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('edit-notice')).toContainText('damaged');
  await expect(page.getByTestId('history-empty')).toBeVisible();
  const first = await downloadSalvage(page, testInfo.outputPath('salvage-record.json'));
  expect(first.key).toBe(key);
  expect(first.reason).toBe('the saved record has an unknown format');
  expect(first.records).toEqual({ [key]: damaged });
  // the damaged record is gone: the page has written a clean, empty one in its place
  await expect.poll(() => readStore(page)).toEqual({ [key]: { version: 1, history: null, ownParaphrases: [], ownNeighbours: [] } });

  // the app saves again normally afterwards
  await addOwnChecks(page);
  expect((await readStore(page))[key]).toMatchObject({ ownParaphrases: [MY_PARAPHRASE], ownNeighbours: [MY_NEIGHBOUR] });

  // 2. the whole database replaced by one of an unknown (newer) version: opening it fails; what it holds is offered
  //    for download, the database is deleted, and the app starts a clean one
  await page.evaluate(async () => {
    await new Promise((ok) => (indexedDB.deleteDatabase('mendlab').onsuccess = ok));
    const r = indexedDB.open('mendlab', 5);
    r.onupgradeneeded = () => r.result.createObjectStore('playground').put({ from: 'a newer MEND Lab' }, 'models/elsewhere/');
    await new Promise((ok) => (r.onsuccess = ok));
    r.result.close();
  });
  await page.reload();
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('edit-notice')).toContainText('damaged');
  const second = await downloadSalvage(page, testInfo.outputPath('salvage-database.json'));
  expect(second.reason).toMatch(/^the browser storage could not be read \(.*version.*\)$/i);
  expect(second.records).toEqual({ 'models/elsewhere/': { from: 'a newer MEND Lab' } });
  await addOwnChecks(page);
  expect(await readStore(page)).toEqual({ [key]: { version: 1, history: null, ownParaphrases: [MY_PARAPHRASE], ownNeighbours: [MY_NEIGHBOUR] } });
  // and the next visit finds a healthy store: no notice, the checks are back
  await page.reload();
  await expect(page.getByTestId('model-status')).toHaveAttribute('data-phase', 'ready');
  await expect(page.getByTestId('neighbour-list')).toContainText(MY_NEIGHBOUR);
  await expect(page.getByTestId('edit-notice')).toHaveCount(0);
});

test('a model worker that dies mid-edit is restarted: the history is re-applied and the interrupted edit reported', async ({ page, server }) => {
  test.setTimeout(480_000);
  await openTiny(page, server.url);
  await applyEdit(page, { prompt: 'The symbol for Chlorine is', target: ' Cl' }, 'mend', { tokens: 1 });
  await page.evaluate(() => ((window as unknown as { pageMarker: number }).pageMarker = 7)); // gone if the page reloads
  await startEdit(page, FT_EDIT, 'ft');
  await expect(page.getByTestId('edit-status')).toHaveAttribute('data-phase', 'running');

  // an error escapes the worker (thrown from a timer, outside its request handling), as a crash inside it would
  const worker = page.workers().find((w) => w.url().startsWith('blob:'))!;
  await worker.evaluate(() => void setTimeout(() => {
    throw new Error('simulated crash');
  }, 0));
  // The error lands when the worker's event loop is next free: mid-edit on SwiftShader; on WASM the fine-tuning can
  // finish first. Either way the notice must say which, and the history must hold exactly the completed edits.
  const notice = page.getByTestId('system-notice');
  await expect(notice).toHaveAttribute('data-kind', 'info');
  await expect(notice).toContainText(/The model worker stopped; the model was reloaded and your (1 edit re-applied\. The edit that was running did not complete; apply it again\.|2 edits re-applied\.)/);
  const completed = (await notice.textContent())!.includes('1 edit re-applied') ? 1 : 2;
  await expect(page.getByTestId('history-item')).toHaveCount(completed);
  await expect(page.getByTestId('history-item').first()).toContainText('“The symbol for Chlorine is” → “ Cl”');
  expect(await page.evaluate(() => (window as unknown as { pageMarker?: number }).pageMarker)).toBe(7);
  // the restarted worker edits again
  await applyEdit(page, FT_EDIT, 'ft', { tokens: 1 });
  await expect(page.getByTestId('history-item')).toHaveCount(completed + 1);
});
