// Both editing methods for a model folder / URL / Hub repo, set up the way the training pipeline evaluated them,
// for every front end (worker, CLI, benchmarks):
//   mend  editor_config.json + editor.safetensors beside the model (refused with a clear message if they do not
//         fit the model; absent → null with the reason, so the app can still offer fine-tuning);
//   ft    Adam on the weights and with the steps / learning rate of eval.json "ft_config" when the model has one,
//         else on the MEND editor's weights (or the last three blocks' MLPs, MEND's choice for GPT models),
//         20 steps at 1e-3. Explicit options override.
import { ModelFileError, type GPT2 } from '../model';
import {
  fetchModelFile, fetchOptionalFile, parseJsonFile, ProgressTracker, sourceName, type FetchOptions, type ModelSource,
} from '../model/fetch';
import { FinetuneEditor, finetuneDefaultsFromEval } from './finetune';
import { MendEditor } from './mend';
import { EDITOR_CONFIG_FILE, EDITOR_WEIGHTS_FILE, parseMendEditorConfig } from './mend_files';

export const FT_DEFAULTS = { steps: 20, learningRate: 1e-3 } as const;

export interface LoadedEditors {
  mend: MendEditor | null;
  /** why there is no MEND editor (null when there is one) */
  mendMissing: string | null;
  ft: FinetuneEditor;
}

export interface LoadEditorsOptions extends FetchOptions {
  /** override eval.json's fine-tuning settings */
  ftSteps?: number;
  ftLearningRate?: number;
  /** skip loading the MEND editor (e.g. a CLI run with --method ft) */
  skipMend?: boolean;
}

/** The MLP weights of the last three blocks: MEND's edited weights for GPT models (mend-spec.md §3). */
export function lastBlocksMlp(model: GPT2): string[] {
  const n = model.config.nLayer;
  const names: string[] = [];
  for (let i = Math.max(0, n - 3); i < n; i++) names.push(`transformer.h.${i}.mlp.c_fc.weight`, `transformer.h.${i}.mlp.c_proj.weight`);
  return names;
}

function hasWeight(model: GPT2, name: string): boolean {
  try {
    model.getWeight(name);
    return true;
  } catch {
    return false;
  }
}

export async function loadEditors(source: ModelSource, model: GPT2, opts: LoadEditorsOptions = {}): Promise<LoadedEditors> {
  const tracker = new ProgressTracker(sourceName(source), opts.onProgress);
  /** An informative JSON file: absent or unreadable → null (it must not block editing). */
  const optionalJson = async (file: string): Promise<unknown> => {
    try {
      const bytes = await fetchOptionalFile(source, file, tracker, opts);
      return bytes ? parseJsonFile(bytes, file) : null;
    } catch {
      return null;
    }
  };

  let mend: MendEditor | null = null;
  let mendMissing: string | null = 'not loaded';
  if (!opts.skipMend) {
    const configBytes = await fetchOptionalFile(source, EDITOR_CONFIG_FILE, tracker, opts);
    if (configBytes) {
      // A present but unfit editor is an error (ModelFileError naming the file), not a silent "no editor".
      const configJson = parseJsonFile(configBytes, EDITOR_CONFIG_FILE);
      parseMendEditorConfig(configJson); // refuse a bad config before downloading the (larger) weights
      const weights = await fetchModelFile(source, EDITOR_WEIGHTS_FILE, tracker, opts);
      mend = MendEditor.fromFiles(configJson, weights, model);
      mendMissing = null;
    } else {
      mendMissing = `not found beside the model (${sourceName(source)})`;
    }
  }

  const evalJson = (await optionalJson('eval.json')) as { ft_config?: { weights?: unknown } } | null;
  const usable = (w: unknown): w is string[] => Array.isArray(w) && w.length > 0 && w.every((n) => typeof n === 'string' && hasWeight(model, n));
  const weights = usable(evalJson?.ft_config?.weights) ? evalJson!.ft_config!.weights : mend ? [...mend.weightNames] : lastBlocksMlp(model);
  const dflt = finetuneDefaultsFromEval(evalJson) ?? FT_DEFAULTS;
  const ft = new FinetuneEditor({
    weightNames: weights,
    steps: opts.ftSteps ?? dflt.steps,
    learningRate: opts.ftLearningRate ?? dflt.learningRate,
  });
  return { mend, mendMissing, ft };
}

/** Throws the reason as a ModelFileError when MEND is required but the model has no editor. */
export function requireMend(e: LoadedEditors): MendEditor {
  if (!e.mend) throw new ModelFileError(EDITOR_CONFIG_FILE, e.mendMissing ?? 'no MEND editor');
  return e.mend;
}
