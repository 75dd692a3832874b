// The real CLI in a child process: `node --import tsx src/cli/main.ts ...` (what `npm run cli` runs).

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHubServer, type HubServer } from '../helpers/hub-server';
import { expectOneLineError, runCli } from '../helpers/run-node';
import { FIXTURES, golden } from './parity-suite';

const TINY = `${FIXTURES}tiny-gpt2`;

const cli = runCli;

const g = golden.greedy[0];

describe('npm run cli -- generate', () => {
  let hub: HubServer;
  beforeAll(async () => {
    hub = await startHubServer({ 'mend/tiny': TINY });
  });
  afterAll(() => hub.close());

  it('prints the greedy completion of a local model (wasm, --json)', async () => {
    const r = await cli(['generate', '--model', TINY, '--prompt', g.prompt, '--max-new-tokens', String(g.max_new_tokens), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ backend: 'wasm', completion: g.text, tokens: g.output_ids, promptTokens: g.input_ids, sampling: 'greedy' });
    expect(out.tokenStrings).toHaveLength(g.output_ids.length);
  });

  it('prints just the completion without --json (cpu)', async () => {
    const r = await cli(['generate', '--model', TINY, '--prompt', g.prompt, '--max-new-tokens', '8', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(g.text + '\n');
  });

  it('loads a Hub id from the (local) Hub and samples reproducibly with a seed', async () => {
    const args = ['generate', '--model', 'mend/tiny', '--hub-url', hub.url, '--prompt', g.prompt, '--max-new-tokens', '5',
      '--temperature', '0.9', '--top-k', '10', '--seed', '7', '--backend', 'cpu', '--json'];
    const [a, b] = [await cli(args), await cli(args)];
    expect(a.code, a.stderr).toBe(0);
    const out = JSON.parse(a.stdout);
    expect(out).toMatchObject({ model: 'mend/tiny', backend: 'cpu', sampling: { temperature: 0.9, topK: 10, seed: 7 } });
    expect(out.tokens).toHaveLength(5);
    expect(JSON.parse(b.stdout).tokens).toEqual(out.tokens);
    expect(hub.requests).toContain('/mend/tiny/resolve/main/model.safetensors');
  });

  it('runs on WebGPU through Dawn (--backend webgpu)', async () => {
    const r = await cli(['generate', '--model', TINY, '--prompt', g.prompt, '--max-new-tokens', '3', '--backend', 'webgpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.backend).toBe('webgpu');
    expect(out.tokens).toEqual(g.output_ids.slice(0, 3));
  });

  it('bad arguments exit 2 with a one-line reason', async () => {
    const base = ['generate', '--model', TINY, '--prompt', 'x'];
    expectOneLineError(await cli([]), 2, /missing command \(generate(, [a-z]+)*\); usage: npm run cli -- help/);
    expect((await cli(['help'])).stdout).toMatch(/generate --model <folder-or-hub-id>/);
    expectOneLineError(await cli(['frobnicate']), 2, /unknown command "frobnicate"/);
    expectOneLineError(await cli(['generate', '--prompt', 'x']), 2, /missing --model/);
    expectOneLineError(await cli(['generate', '--model', TINY]), 2, /missing --prompt/);
    expectOneLineError(await cli([...base, '--bogus']), 2, /Unknown option '--bogus'/);
    expectOneLineError(await cli([...base, '--max-new-tokens', 'ten']), 2, /--max-new-tokens must be an integer >= 1, got "ten"/);
    expectOneLineError(await cli([...base, '--max-new-tokens', '0']), 2, /--max-new-tokens must be an integer >= 1/);
    expectOneLineError(await cli([...base, '--temperature', 'hot']), 2, /--temperature must be a number >= 0/);
    expectOneLineError(await cli([...base, '--backend', 'tpu']), 2, /--backend must be one of wasm, cpu, webgpu, got "tpu"/);
    expectOneLineError(await cli(['generate', '--model', '/no/such/folder', '--prompt', 'x']), 2, /--model \/no\/such\/folder: no such folder, and not a Hugging Face model id/);
    expectOneLineError(await cli(['generate', '--model', TINY, '--prompt', '']), 2, /--prompt is empty/);
  }, 300_000);

  it('a bad model exits 1 naming the file and the problem', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mendlab-cli-'));
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(TINY, f), join(dir, f));
    writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(TINY, 'model.safetensors')).subarray(0, 3000));
    expectOneLineError(await cli(['generate', '--model', dir, '--prompt', 'x', '--backend', 'cpu']), 1, /^error: model\.safetensors: .*run(s)? past the end/);

    const llama = join(dir, 'llama');
    mkdirSync(llama);
    writeFileSync(join(llama, 'config.json'), JSON.stringify({ model_type: 'llama', architectures: ['LlamaForCausalLM'] }));
    expectOneLineError(await cli(['generate', '--model', llama, '--prompt', 'x', '--backend', 'cpu']), 1, /^error: config\.json: unsupported architecture LlamaForCausalLM/);

    hub.rules.notFound.add('mend/tiny/tokenizer.json');
    expectOneLineError(await cli(['generate', '--model', 'mend/tiny', '--hub-url', hub.url, '--prompt', 'x', '--backend', 'cpu']), 1, /^error: tokenizer\.json: not found \(404\)/);
    hub.rules.notFound.clear();
  }, 300_000);
});
