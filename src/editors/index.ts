// Editing methods behind one interface (types.ts): MEND (mend.ts, artifacts validated in mend_files.ts) and the
// fine-tuning baseline (finetune.ts); loadEditors sets both up for a model source; changes.ts installs/reverts.
export type { EditMethod, EditResult, EditTimings, Fact, ModelEditor, TokenizedFact, WeightChange } from './types';
export { MendEditor } from './mend';
export type { CapturedRows, EditorOutput } from './mend';
export { FinetuneEditor, finetuneDefaultsFromEval } from './finetune';
export type { FinetuneOptions } from './finetune';
export { loadEditors, requireMend, lastBlocksMlp, FT_DEFAULTS } from './load';
export type { LoadedEditors, LoadEditorsOptions } from './load';
export { parseMendEditorConfig, checkEditorAgainstModel, checkEditorTensors, EDITOR_CONFIG_FILE, EDITOR_WEIGHTS_FILE } from './mend_files';
export type { MendEditorConfig, MendShapeEditorConfig } from './mend_files';
export { assertFiniteWeights, disposeChanges, EditRefusedError, gpuSync, holdWeight, installWeight, reapplyChanges, revertChanges } from './changes';
