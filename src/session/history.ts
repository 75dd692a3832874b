// The edit history as JSON: what was edited, how, in which order, and how far it is applied (the rest can be
// redone). It stores requests, not weights: importing replays the edits on the importing model, so a history file
// is small and portable between backends. (Replayed weights equal the originals only up to float rounding of the
// backend; within one session, undo/redo is bit-exact because it reuses the buffers.)
//
//   {
//     "format": "mendlab-history", "version": 1,
//     "model": {"n_embd": 256, "n_inner": 1024, "n_layer": 6, "n_positions": 256, "vocab_size": 4096},
//     "position": 2,                       // entries[0 .. position-1] are applied, the rest were undone
//     "entries": [{
//       "method": "mend" | "ft",
//       "facts": [{"prompt": "...", "target": " ...", "prompt_ids": [..], "target_ids": [..]}],   // one = single edit
//       "options": {"weights": ["transformer.h.3.mlp.c_fc.weight", ...], "steps": 20, "learning_rate": 0.001},
//       "stats": {...}, "timings_ms": {"capture": .., "editor": .., "update": .., "total": ..},     // informative
//       "created_at": "2026-11-26T14:00:00.000Z"
//     }]
//   }
import type { GPT2Config } from '../model';
import type { EditMethod, Fact } from '../editors/types';
import { MAX_FACTS_PER_EDIT } from './facts';

export const HISTORY_FORMAT = 'mendlab-history';
export const HISTORY_VERSION = 1;

export interface HistoryFact extends Fact {
  prompt_ids: number[];
  target_ids: number[];
}

export interface HistoryEntryJSON {
  method: EditMethod;
  facts: HistoryFact[];
  options: { weights: string[]; steps?: number; learning_rate?: number };
  stats: Record<string, number>;
  timings_ms: { capture: number; editor: number; update: number; total: number };
  created_at: string;
}

export interface HistoryJSON {
  format: typeof HISTORY_FORMAT;
  version: typeof HISTORY_VERSION;
  model: { n_embd: number; n_inner: number; n_layer: number; n_positions: number; vocab_size: number };
  position: number;
  entries: HistoryEntryJSON[];
}

export function modelSignature(c: GPT2Config): HistoryJSON['model'] {
  return { n_embd: c.nEmbd, n_inner: c.nInner, n_layer: c.nLayer, n_positions: c.nPositions, vocab_size: c.vocabSize };
}

/** Malformed or incompatible history files; the message says what and where ("entries[2].facts[0].target: ..."). */
export class HistoryFormatError extends Error {
  constructor(message: string) {
    super(`edit history: ${message}`);
    this.name = 'HistoryFormatError';
  }
}

/**
 * Bounds on an imported history. A real session has tens of edits of short facts; these limits are far above that
 * and keep a hostile or corrupted file from making the importer replay for hours or tokenise megabytes.
 * (Share links have their own, smaller bounds in src/store/share-link.ts.)
 */
export const HISTORY_LIMITS = {
  /** size of the file / pasted text, checked before JSON.parse */
  bytes: 4 * 1024 * 1024,
  entries: 1000,
  /** one edit holds at most this many facts, whichever way it arrives (src/session/facts.ts) */
  factsPerEntry: MAX_FACTS_PER_EDIT,
  textChars: 20_000,
  tokenIds: 4096,
  weightsPerEntry: 512,
} as const;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const isNumberRecord = (v: unknown) => isObject(v) && Object.values(v).every((x) => typeof x === 'number' || x === null);

/** Validates the structure of a parsed history file and its fit to `model` (not yet the tokenizer or methods). */
export function parseHistory(json: unknown, model: GPT2Config): HistoryJSON {
  const fail = (msg: string): never => {
    throw new HistoryFormatError(msg);
  };
  if (!isObject(json)) fail('not a JSON object');
  const h = json as Record<string, unknown>;
  if (h.format !== HISTORY_FORMAT) fail(`"format" is ${JSON.stringify(h.format)}, expected "${HISTORY_FORMAT}"`);
  if (h.version !== HISTORY_VERSION) fail(`"version" ${JSON.stringify(h.version)} is not supported (this build reads ${HISTORY_VERSION})`);
  if (!isObject(h.model)) fail('"model" is missing');
  const want = modelSignature(model);
  for (const [k, v] of Object.entries(want)) {
    const got = (h.model as Record<string, unknown>)[k];
    if (got !== v) fail(`it was made on a model with ${k} ${JSON.stringify(got)}, this model has ${k} ${v}`);
  }
  if (!Array.isArray(h.entries)) fail('"entries" must be a list');
  const entries = h.entries as unknown[];
  if (entries.length > HISTORY_LIMITS.entries) fail(`it has ${entries.length} entries; at most ${HISTORY_LIMITS.entries} can be imported`);
  const isIdList = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.length <= HISTORY_LIMITS.tokenIds && v.every((x) => Number.isInteger(x) && x >= 0 && x < model.vocabSize);
  const text = (v: unknown) => typeof v === 'string' && v !== '' && v.length <= HISTORY_LIMITS.textChars;
  entries.forEach((e, i) => {
    const at = `entries[${i}]`;
    if (!isObject(e)) fail(`${at} is not an object`);
    const entry = e as Record<string, unknown>;
    if (entry.method !== 'mend' && entry.method !== 'ft') fail(`${at}.method must be "mend" or "ft", got ${JSON.stringify(entry.method)}`);
    if (!Array.isArray(entry.facts) || entry.facts.length === 0) fail(`${at}.facts must be a non-empty list`);
    if ((entry.facts as unknown[]).length > HISTORY_LIMITS.factsPerEntry) fail(`${at}.facts has more than ${HISTORY_LIMITS.factsPerEntry} facts`);
    (entry.facts as unknown[]).forEach((f, j) => {
      const fat = `${at}.facts[${j}]`;
      if (!isObject(f)) fail(`${fat} is not an object`);
      const fact = f as Record<string, unknown>;
      if (!text(fact.prompt)) fail(`${fat}.prompt must be a non-empty string of at most ${HISTORY_LIMITS.textChars} characters`);
      if (!text(fact.target)) fail(`${fat}.target must be a non-empty string of at most ${HISTORY_LIMITS.textChars} characters`);
      if (!isIdList(fact.prompt_ids)) fail(`${fat}.prompt_ids must be a non-empty list of token ids below vocab_size ${model.vocabSize}`);
      if (!isIdList(fact.target_ids)) fail(`${fat}.target_ids must be a non-empty list of token ids below vocab_size ${model.vocabSize}`);
    });
    if (!isObject(entry.options)) fail(`${at}.options is missing`);
    const o = entry.options as Record<string, unknown>;
    if (!Array.isArray(o.weights) || o.weights.length === 0 || o.weights.length > HISTORY_LIMITS.weightsPerEntry || !o.weights.every((w) => typeof w === 'string')) {
      fail(`${at}.options.weights must be a non-empty list of weight names`);
    }
    if (entry.method === 'ft') {
      if (!Number.isInteger(o.steps) || (o.steps as number) < 1 || (o.steps as number) > 10_000) fail(`${at}.options.steps must be a positive integer (at most 10000)`);
      if (typeof o.learning_rate !== 'number' || !(o.learning_rate > 0 && o.learning_rate < 1e3)) fail(`${at}.options.learning_rate must be a positive number below 1000`);
    }
    if (entry.stats !== undefined && !isNumberRecord(entry.stats)) fail(`${at}.stats must map names to numbers`);
    if (entry.timings_ms !== undefined && !isNumberRecord(entry.timings_ms)) fail(`${at}.timings_ms must map names to numbers`);
  });
  if (!Number.isInteger(h.position) || (h.position as number) < 0 || (h.position as number) > entries.length) {
    fail(`"position" must be an integer between 0 and ${entries.length}, got ${JSON.stringify(h.position)}`);
  }
  return json as HistoryJSON;
}

/**
 * Parses an imported history file's text (or bytes): refuses oversized input before JSON.parse, then validates it
 * like parseHistory. Every failure is a HistoryFormatError.
 */
export function parseHistoryText(input: string | Uint8Array, model: GPT2Config): HistoryJSON {
  const bytes = typeof input === 'string' ? new TextEncoder().encode(input).byteLength : input.byteLength;
  if (bytes > HISTORY_LIMITS.bytes) {
    throw new HistoryFormatError(`the file is ${bytes} bytes; at most ${HISTORY_LIMITS.bytes} can be imported`);
  }
  let json: unknown;
  try {
    json = JSON.parse(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input));
  } catch (e) {
    throw new HistoryFormatError(`not valid JSON (${(e as Error).message})`);
  }
  return parseHistory(json, model);
}
