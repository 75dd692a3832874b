// Option parsing shared by the CLI subcommands: integers and the default model folder.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from './errors';

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
