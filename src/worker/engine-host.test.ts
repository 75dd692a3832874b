// The worker's engine operations in Node (tfjs WASM), without the Worker wrapper: the same calls the page makes
// through messages, checked against the PyTorch golden outputs of the tiny model served over HTTP.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as host from './engine-host';
import type { FileProgress, ProgressEvent } from './protocol';

const ROOT = new URL('../../', import.meta.url).pathname;
const FIXTURES = join(ROOT, 'tests/fixtures');
const WASM_DIR = join(ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist/');
const golden = JSON.parse(readFileSync(join(FIXTURES, 'tiny-gpt2/golden.json'), 'utf8'));

let server: Server;
let base: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const file = join(FIXTURES, decodeURIComponent(req.url ?? '/'));
    if (!file.startsWith(FIXTURES) || !existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(readFileSync(file).byteLength) });
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise<void>((ok) => server.close(() => ok())));

describe('engine host (what the worker runs)', () => {
  it('starts WASM when there is no WebGPU, and explains why', async () => {
    const info = await host.init('auto', WASM_DIR);
    expect(info).toMatchObject({ backend: 'wasm', requested: 'auto', webgpuAvailable: false });
    expect(info.fallbackReason).toMatch(/WebGPU/);
  });

  it('loads a model folder by URL with per-file progress and a summary', async () => {
    const events: ProgressEvent[] = [];
    const summary = await host.load({ kind: 'url', url: `${base}tiny-gpt2/`, label: 'tiny' }, (e) => events.push(e));
    const config = JSON.parse(readFileSync(join(FIXTURES, 'tiny-gpt2/config.json'), 'utf8'));
    expect(summary).toMatchObject({ label: 'tiny', nLayer: config.n_layer, nEmbd: config.n_embd, vocabSize: config.vocab_size, dtypes: ['F32'], fromCache: false });
    // wte + wpe + per layer (ln_1, attn, ln_2, mlp) + ln_f, from the config alone
    const { n_embd: d, n_layer: L, vocab_size: V, n_positions: P } = config;
    const inner = config.n_inner ?? 4 * d;
    expect(summary.parameters).toBe(V * d + P * d + L * (2 * d + d * 3 * d + 3 * d + d * d + d + 2 * d + d * inner + inner + inner * d + d) + 2 * d);

    const finals = events.filter((e): e is { stage: 'download'; file: FileProgress } => e.stage === 'download' && e.file.done).map((e) => e.file);
    const weights = finals.find((f) => f.file === 'model.safetensors')!;
    expect(weights.total).toBe(readFileSync(join(FIXTURES, 'tiny-gpt2/model.safetensors')).byteLength);
    expect(weights.loaded).toBe(weights.total);
    expect(finals.map((f) => f.file).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
  });

  it('generates the golden greedy text, streaming it token by token', async () => {
    for (const g of golden.greedy) {
      const streamed: string[] = [];
      const r = await host.generate(g.prompt, { maxNewTokens: g.max_new_tokens, temperature: 0, topK: 0 }, (e) => {
        if (e.stage === 'token') streamed.push(e.text);
      });
      expect(r.promptTokens).toEqual(g.input_ids);
      expect(r.newTokens).toEqual(g.output_ids);
      expect(r.completion).toBe(g.text);
      expect(streamed.length).toBe(g.output_ids.length);
      expect(streamed.at(-1)).toBe(g.text);
    }
  });

  it('samples reproducibly with a seed, and top-k = 1 sampling is the greedy text', async () => {
    const g = golden.greedy[0];
    const sample = (seed: number, topK: number) => host.generate(g.prompt, { maxNewTokens: 6, temperature: 1, topK, seed }, () => {});
    const [a, b] = [await sample(7, 0), await sample(7, 0)];
    expect(a.newTokens).toEqual(b.newTokens);
    expect((await sample(3, 1)).newTokens).toEqual(g.output_ids.slice(0, 6));
  });

  it('lists the most likely next tokens, the greedy choice first', async () => {
    const g = golden.greedy[0];
    const top = await host.topk(g.prompt, 5);
    expect(top.map((t) => t.id)[0]).toBe(g.output_ids[0]);
    expect(top.every((t, i) => i === 0 || t.prob <= top[i - 1].prob)).toBe(true);
    expect(typeof top[0].text).toBe('string');
  });

  it('refuses an empty prompt in words', async () => {
    await expect(host.generate('', { maxNewTokens: 1, temperature: 0, topK: 0 }, () => {})).rejects.toThrow('The prompt is empty');
  });

  it('reports a missing model with the file and the 404, and then has no model', async () => {
    await expect(host.load({ kind: 'url', url: `${base}nope/`, label: 'nope' }, () => {})).rejects.toThrow('config.json: not found (404)');
    await expect(host.topk('a', 1)).rejects.toThrow('No model is loaded');
  });
});
