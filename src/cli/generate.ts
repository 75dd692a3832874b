// `generate`: load a model, complete a prompt, print the completion (or JSON with --json).

import { parseArgs } from 'node:util';
import { sourceName } from '../model/fetch';
import type { Command } from './command';
import { backendArg, intArg } from './args';
import { UsageError } from './errors';
import { resolveModelSource } from './model-source';


const USAGE = `generate --model <folder-or-hub-id> --prompt "..." [--max-new-tokens N] [--temperature T --top-k K --seed S] [--backend wasm|cpu|webgpu] [--hub-url URL] [--json]`;

function numArg(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number >= 0, got "${v}"`);
  return n;
}

async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      backend: { type: 'string' },
      'hub-url': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.model) throw new UsageError('missing --model <folder-or-hub-id>');
  if (values.prompt === undefined) throw new UsageError('missing --prompt "..."');
  const maxNewTokens = intArg('max-new-tokens', values['max-new-tokens'], 32, 1);
  const temperature = numArg('temperature', values.temperature, 0);
  const topK = intArg('top-k', values['top-k'], 0, 0);
  const seed = intArg('seed', values.seed, 0, 0);
  const backend = backendArg(values.backend);
  const source = resolveModelSource(values.model, values['hub-url']);

  // tfjs and transformers.js load only now, so argument errors are reported instantly.
  const [{ setupCliBackend }, { loadModel }] = await Promise.all([import('./backend'), import('../model/load')]);
  const setup = await setupCliBackend(backend);
  if ('rerunExit' in setup) return setup.rerunExit;

  const t0 = performance.now();
  const loaded = await loadModel(source);
  const promptIds = loaded.tokenizer.encode(values.prompt);
  if (promptIds.length === 0) throw new UsageError('--prompt is empty (it must contain at least one token)');
  const t1 = performance.now();
  const tokens = await loaded.model.generate(promptIds, {
    maxNewTokens,
    temperature,
    topK,
    seed: values.seed === undefined && temperature > 0 ? undefined : seed,
    eosTokenId: loaded.eosTokenId,
  });
  const t2 = performance.now();
  // The EOS token ends generation but is not part of the text.
  const textTokens = tokens.length && tokens[tokens.length - 1] === loaded.eosTokenId ? tokens.slice(0, -1) : tokens;
  const completion = loaded.tokenizer.decode(textTokens);
  if (values.json) {
    const out = {
      model: sourceName(source),
      backend: setup.backend,
      prompt: values.prompt,
      promptTokens: promptIds,
      completion,
      tokens,
      tokenStrings: loaded.tokenizer.tokenStrings(tokens),
      stoppedAtEos: textTokens.length !== tokens.length,
      sampling: temperature > 0 ? { temperature, topK, seed: values.seed === undefined ? null : seed } : 'greedy',
      dtypes: loaded.dtypes,
      timingsMs: { load: Math.round(t1 - t0), generate: Math.round(t2 - t1) },
    };
    process.stdout.write(JSON.stringify(out) + '\n');
  } else {
    process.stdout.write(completion + '\n');
  }
  loaded.model.dispose();
  return 0;
}

export const generate: Command = { name: 'generate', summary: 'complete a prompt with a model', usage: USAGE, run };
