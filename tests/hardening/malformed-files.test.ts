// Every malformed model folder, editor and history import from the generator goes through the real loaders
// (loadModel, loadEditors, EditSession.importHistory). Each must be refused with an Error whose message names the
// file and says what is wrong; nothing may crash, hang or be accepted; and a model loaded before (with an edit
// applied) must be exactly as it was afterwards: same weights checksum, same logits, same history.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend, loadModel, localSource, type LoadedModel } from '../../src/model';
import { loadEditors, type LoadedEditors } from '../../src/editors';
import { EditSession, weightsChecksum } from '../../src/session';
import { countByClass, generateMalformedCases, type FileCase, type HistoryCase, type MalformedCase } from './malformed-files';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const TINY = join(FIXTURES, 'tiny-gpt2');
const MEND = join(FIXTURES, 'mend-tiny');
/** a refusal must come well within this; a loader that loops on a hostile length would hit it */
const CASE_TIMEOUT_MS = 15_000;

const readFolder = (dir: string) =>
  Object.fromEntries(readdirSync(dir).filter((f) => f !== 'golden.json').map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));

/** A hash of the exact bits of the last-position logits for a few prompts. */
async function logitsChecksum(m: LoadedModel): Promise<string> {
  let h = 0x811c9dc5;
  for (const p of ['The capital of France is', 'Water is made of', 'Hello']) {
    const bits = new Uint32Array((await m.model.logits(m.tokenizer.encode(p))).slice().buffer);
    for (let i = 0; i < bits.length; i++) h = Math.imul(h ^ bits[i], 0x01000193);
  }
  return (h >>> 0).toString(16);
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  const t = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`HANG: ${what} took over ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS)));
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

describe('malformed files are refused by the real loaders', () => {
  let loaded: LoadedModel;
  let editors: LoadedEditors;
  let session: EditSession;
  let cases: MalformedCase[];
  let work: string;
  let before: { weights: string; logits: string; history: string; tensors: number };
  const results: Array<{ c: MalformedCase; message: string | null; error: unknown }> = [];

  beforeAll(async () => {
    await initBackend('cpu');
    loaded = await loadModel(localSource(MEND));
    editors = await loadEditors(localSource(MEND), loaded.model);
    session = new EditSession({ model: loaded.model, tokenizer: loaded.tokenizer, editors: { mend: editors.mend!, ft: editors.ft } });
    await session.apply({ prompt: 'The capital of France is', target: ' Rome' });
    cases = generateMalformedCases({ model: readFolder(TINY), editorModel: readFolder(MEND), history: session.exportHistory() as unknown as Record<string, unknown> });
    work = mkdtempSync(join(tmpdir(), 'mendlab-malformed-'));
    before = {
      weights: await weightsChecksum(loaded.model), logits: await logitsChecksum(loaded),
      history: JSON.stringify(session.exportHistory().entries.map((e) => e.facts)), tensors: tf.memory().numTensors,
    };
  });

  afterAll(() => {
    session?.dispose();
    editors?.mend?.dispose();
    loaded?.model.dispose();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Writes the base folder with the case's files over it, in a fresh directory. */
  function folderFor(c: FileCase, index: number): string {
    const dir = join(work, String(index));
    const baseDir = c.kind === 'model' ? TINY : MEND;
    const files = { ...readFolder(baseDir), ...c.files };
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    for (const [name, bytes] of Object.entries(files)) if (bytes) writeFileSync(join(dir, name), bytes);
    return dir;
  }

  async function run(c: MalformedCase, index: number): Promise<unknown> {
    if (c.kind === 'history') return session.importHistory((c as HistoryCase).input);
    const dir = folderFor(c, index);
    try {
      if (c.kind === 'model') {
        const m = await loadModel(localSource(dir));
        m.model.dispose(); // accepted: the assertion below fails the case
        return m;
      }
      const e = await loadEditors(localSource(dir), loaded.model);
      e.mend?.dispose();
      return e;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('generates at least 200 distinct cases, the same ones for the same seed', () => {
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const again = generateMalformedCases({ model: readFolder(TINY), editorModel: readFolder(MEND), history: session.exportHistory() as unknown as Record<string, unknown> });
    expect(again.map((c) => c.name)).toEqual(cases.map((c) => c.name));
  });

  it('refuses every case with a message naming the file and the problem', async () => {
    for (const [i, c] of cases.entries()) {
      let error: unknown = null;
      try {
        await withTimeout(Promise.resolve(run(c, i)), c.name);
      } catch (e) {
        error = e;
      }
      results.push({ c, error, message: error instanceof Error ? error.message : null });
    }
    const counts = countByClass(cases);
    const lines = [...counts].map(([cls, n]) => `  ${cls.padEnd(44)} ${String(n).padStart(4)}`);
    console.log(`malformed inputs refused, by class (${cases.length} cases):\n${lines.join('\n')}`);

    const failures: string[] = [];
    for (const { c, error, message } of results) {
      if (error === null) failures.push(`${c.name}: ACCEPTED (no error)`);
      else if (message === null) failures.push(`${c.name}: threw a non-Error ${String(error)}`);
      else if (message.startsWith('HANG')) failures.push(message);
      else {
        const file = c.kind === 'history' ? 'edit history' : (c as FileCase).file;
        if (!message.includes(file)) failures.push(`${c.name}: message does not name ${file}: ${message}`);
        if (!c.problem.test(message)) failures.push(`${c.name}: message does not match ${c.problem}: ${message}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('leaves the loaded model, its edit and the session exactly as they were', async () => {
    expect(await weightsChecksum(loaded.model)).toBe(before.weights);
    expect(await logitsChecksum(loaded)).toBe(before.logits);
    expect(JSON.stringify(session.exportHistory().entries.map((e) => e.facts))).toBe(before.history);
    expect(session.applied).toHaveLength(1);
    // and the refused loads left no tensors behind
    expect(tf.memory().numTensors).toBe(before.tensors);
  });
});
