// Option parsing shared by the CLI subcommands: integers, choices, the backend, the default model folder and the
// benchmark file beside a model.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseFactsIndex, type FactsIndex } from '../eval/suggest';
import type { BackendName } from '../model';
import { UsageError } from './errors';

/** The tfjs backends the CLI can run on (webgpu through Dawn, src/cli/dawn.ts). */
export const CLI_BACKENDS = ['wasm', 'cpu', 'webgpu'] as const satisfies readonly BackendName[];

/** One of `allowed`, `dflt` when not given; anything else is a usage error naming the choices. */
export function choiceArg<T extends string>(name: string, v: string | undefined, allowed: readonly T[], dflt: T): T {
  const x = (v ?? dflt) as T;
  if (!allowed.includes(x)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got "${v}"`);
  return x;
}

export const backendArg = (v: string | undefined): BackendName => choiceArg('backend', v, CLI_BACKENDS, 'wasm');

/**
 * The local model folder (--model, else the app's default) and its benchmark file (--benchmark, else benchmark.json
 * beside the model), for the commands that replay the held-out benchmark (eval, sequential, scan).
 */
export function benchmarkArgs(model: string | undefined, benchmark: string | undefined): { folder: string; benchPath: string } {
  const folder = model ?? defaultModelFolder();
  if (!existsSync(join(folder, 'config.json'))) throw new UsageError(`--model ${folder}: not a model folder (no config.json)`);
  const benchPath = benchmark ?? join(folder, 'benchmark.json');
  if (!existsSync(benchPath)) {
    throw new UsageError(`${benchPath} not found: write it with /usr/bin/python3 training/export_benchmark.py --model ${folder}`);
  }
  return { folder, benchPath };
}

/**
 * The model the app opens by default (public/models/models.json), used when --model is not given. Accepts the
 * documented {"default": name, "models": [...]} object and a plain list with "default": true; paths are tried
 * relative to public/models/ and to public/.
 */
export function defaultModelFolder(): string {
  const list = join('public', 'models', 'models.json');
  if (!existsSync(list)) throw new UsageError('missing --model <folder-or-hub-id> (and no public/models/models.json to take a default from)');
  let entry: { name?: string; id?: string; path?: string; default?: boolean } | undefined;
  try {
    const json = JSON.parse(readFileSync(list, 'utf8'));
    const models: Array<typeof entry> = Array.isArray(json) ? json : json.models ?? [];
    entry = models.find((m) => m?.default === true || (m?.name !== undefined && m.name === json.default)) ?? models[0];
  } catch (e) {
    throw new UsageError(`missing --model, and public/models/models.json is unreadable (${(e as Error).message})`);
  }
  const path = entry?.path;
  if (!path) throw new UsageError('missing --model, and public/models/models.json lists no model');
  const folder = [join('public', 'models', path), join('public', path)].find((p) => existsSync(join(p, 'config.json')));
  if (!folder) throw new UsageError(`missing --model, and the default model "${path}" from public/models/models.json is not there`);
  return folder;
}

export function intArg(name: string, v: string | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`);
  return Number(v);
}

/**
 * The facts index beside a local model (facts.json), for the commands that scan it (scan, sequential --scan): a
 * missing or unreadable one is a usage error, prefixed with `prefix` (the option that asked for it, if any).
 */
export function readFactsIndex(folder: string, prefix = ''): FactsIndex {
  const file = join(folder, 'facts.json');
  if (!existsSync(file)) throw new UsageError(`${prefix}${folder} has no facts index (facts.json): there are no taught facts to scan`);
  try {
    return parseFactsIndex(JSON.parse(readFileSync(file, 'utf8')));
  } catch (e) {
    throw new UsageError(`${prefix}${file}: ${(e as Error).message}`);
  }
}
