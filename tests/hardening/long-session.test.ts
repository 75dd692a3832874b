// A long session: 500 sequential MEND edits with undo/redo in between, on the cpu backend and a micro GPT-2 (one
// block, n_embd 16) so it runs in well under two minutes. Memory must stay flat (the live tensor count and bytes
// are exactly "base + the buffers the applied history holds", never more), and the history must stay consistent:
// ids increase, undo/redo/export agree, and revert restores the original weights bit for bit.
import * as tf from '@tensorflow/tfjs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  expectedTensorShapes, GPT2, initBackend, loadModelFiles, localSource, mulberry32, parseGPT2Config, Tokenizer,
} from '../../src/model';
import { MendEditor } from '../../src/editors';
import { syntheticEditorFiles } from '../../src/editors/testing';
import { EditSession, weightsChecksum } from '../../src/session';

const FIXTURE = join(new URL('../fixtures/', import.meta.url).pathname, 'tiny-gpt2');
const EDITS = 500;
const WEIGHTS = ['transformer.h.0.mlp.c_fc.weight', 'transformer.h.0.mlp.c_proj.weight'];
const SUBJECTS = ['France', 'Spain', 'Peru', 'Chad', 'Laos', 'Fiji', 'Oman', 'Mali', 'Iran', 'Cuba'];
const OBJECTS = [' Paris', ' Rome', ' stone', ' water', ' blue', ' Lima', ' tea', ' salt'];

/** A random one-block GPT-2 with the fixture's tokenizer (vocab 300). */
function microModel(): GPT2 {
  const config = parseGPT2Config({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 300, n_positions: 32, n_embd: 16, n_layer: 1, n_head: 2,
  });
  const rand = mulberry32(7);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, shape] of expectedTensorShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const ln = /ln_\w+\.weight$/.test(name);
    tensors.set(name, { shape, data: Float32Array.from({ length: n }, () => (ln ? 1 : (rand() - 0.5) * 0.2)) });
  }
  return new GPT2(config, tensors);
}

describe('a long edit session (500 edits)', () => {
  let model: GPT2;
  let tokenizer: Tokenizer;
  let editor: MendEditor;

  beforeAll(async () => {
    await initBackend('cpu');
    const files = await loadModelFiles(localSource(FIXTURE));
    tokenizer = Tokenizer.fromObjects(files.tokenizerJson, files.tokenizerConfig);
    model = microModel();
    const ed = syntheticEditorFiles(model, WEIGHTS, { rank: 2, seed: 5, editLr: 0.01 });
    editor = MendEditor.fromFiles(ed.config, ed.weights, model);
  });
  afterAll(() => {
    editor?.dispose();
    model?.dispose();
  });

  it('keeps memory flat and the history consistent over 500 edits with undo and redo in between', async () => {
    const session = new EditSession({ model, tokenizer, editors: { mend: editor } });
    const original = await weightsChecksum(model);
    const start = tf.memory();
    const rand = mulberry32(42);
    let kept = 0;
    let perEdit: { tensors: number; bytes: number } | null = null;
    const samples: Array<{ i: number; tensors: number; bytes: number; applied: number }> = [];
    const t0 = performance.now();

    for (let i = 0; i < EDITS; i++) {
      const fact = { prompt: `The capital of ${SUBJECTS[i % SUBJECTS.length]} is`, target: OBJECTS[Math.floor(rand() * OBJECTS.length)] };
      const entry = await session.apply(fact);
      expect(entry.id).toBe(i + 1); // ids are never reused, also after undo
      // keep one edit in 50; undo the others (sometimes after an undo/redo round trip, which must be exact)
      if (i % 50 === 49) {
        kept++;
      } else {
        if (i % 7 === 0) {
          const c = await weightsChecksum(model, WEIGHTS);
          expect(session.undo()).toBe(entry);
          expect(session.redo()).toBe(entry);
          expect(await weightsChecksum(model, WEIGHTS)).toBe(c);
        }
        expect(session.undo()).toBe(entry);
        expect(session.undone).toHaveLength(1); // the next apply discards it (and frees its buffers)
      }
      expect(session.applied).toHaveLength(kept);
      if (kept === 1 && !perEdit && i % 50 === 49) {
        const m = tf.memory();
        perEdit = { tensors: m.numTensors - start.numTensors, bytes: m.numBytes - start.numBytes };
      }
      if (i % 25 === 24) {
        const m = tf.memory();
        samples.push({ i, tensors: m.numTensors, bytes: m.numBytes, applied: session.applied.length });
      }
    }
    const seconds = (performance.now() - t0) / 1000;

    // flat: every sample is exactly the start plus what the kept edits hold (no growth with the number of edits)
    expect(perEdit).not.toBeNull();
    expect(perEdit!.bytes).toBeGreaterThan(0);
    for (const s of samples) {
      const redoHeld = s.i % 50 !== 49 ? 1 : 0; // the undone edit waiting in the redo stack
      expect({ i: s.i, tensors: s.tensors - redoHeld * perEdit!.tensors, bytes: s.bytes - redoHeld * perEdit!.bytes })
        .toEqual({ i: s.i, tensors: start.numTensors + s.applied * perEdit!.tensors, bytes: start.numBytes + s.applied * perEdit!.bytes });
    }

    // the history: the kept edits, in order, and an export that says so
    expect(kept).toBe(EDITS / 50);
    const ids = session.applied.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const h = session.exportHistory();
    expect(h.position).toBe(kept);
    expect(h.entries).toHaveLength(kept + session.undone.length);
    for (const e of session.applied) expect(e.damage && Number.isFinite(e.damage.perplexityAfter)).toBe(true);

    session.revert();
    expect(await weightsChecksum(model)).toBe(original);
    session.reset();
    expect(tf.memory().numTensors).toBe(start.numTensors);
    expect(tf.memory().numBytes).toBe(start.numBytes);
    console.log(`long session: ${EDITS} edits (${EDITS - kept} undone, ${kept} kept) in ${seconds.toFixed(1)} s; ` +
      `${samples.length} memory samples flat at ${start.numTensors} tensors + ${perEdit!.tensors} per kept edit`);
  }, 240_000);
});
