// Edit sessions: apply / undo / redo / revert, batch edits, history JSON, edited-model export.
export { EditSession, gpuBytesInUse } from './session';
export type { HistoryEntry, SessionOptions } from './session';
export { EditInputError, tokenizeFact, MAX_TARGET_TOKENS } from './facts';
export type { TextTokenizer } from './facts';
export { parseHistory, HistoryFormatError, HISTORY_FORMAT, HISTORY_VERSION } from './history';
export type { HistoryJSON, HistoryEntryJSON } from './history';
export { weightsChecksum } from './checksum';
