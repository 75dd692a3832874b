// Edit sessions: apply / undo / redo / revert, batch edits, history JSON, edited-model export.
export { EditSession, gpuBytesInUse } from './session';
export type { HistoryEntry, SessionOptions } from './session';
export { EditInputError, tokenizeFact, checkText, checkBatch, MAX_FACTS_PER_EDIT, MAX_TARGET_TOKENS, MAX_TEXT_CHARS } from './facts';
export type { TextTokenizer } from './facts';
export { parseHistory, parseHistoryText, HistoryFormatError, HISTORY_FORMAT, HISTORY_VERSION, HISTORY_LIMITS } from './history';
export type { HistoryJSON, HistoryEntryJSON } from './history';
export { weightsChecksum } from './checksum';
export { damageProseFromFacts, DEFAULT_HELDOUT_PROSE, DEFAULT_MAX_PERPLEXITY_RATIO, perplexity } from './damage';
export type { DamageCheckOptions, DamageReport } from './damage';
export { EditRefusedError } from '../editors/changes';
