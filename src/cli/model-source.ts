// --model for the CLI: an existing local folder, or a Hugging Face id "owner/name[@revision]".
// The Hub base URL can be pointed elsewhere with --hub-url or MENDLAB_HUB_URL (tests use a local server).

import { existsSync, statSync } from 'node:fs';
import { DEFAULT_HUB_URL, isHubId, localSource, parseHubSpec, type ModelSource } from '../model/fetch';
import { UsageError } from './errors';

export function resolveModelSource(spec: string, hubUrl?: string): ModelSource {
  if (existsSync(spec)) {
    if (!statSync(spec).isDirectory()) throw new UsageError(`--model ${spec}: is a file, expected a model folder`);
    return localSource(spec);
  }
  if (isHubId(spec.split('@')[0])) return parseHubSpec(spec, hubUrl ?? process.env.MENDLAB_HUB_URL ?? DEFAULT_HUB_URL);
  throw new UsageError(`--model ${spec}: no such folder, and not a Hugging Face model id (owner/name)`);
}
