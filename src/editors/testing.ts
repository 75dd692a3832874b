// Test support: a synthetic MEND editor (random but well-conditioned weights) in the exact artifact format of
// docs/formats.md, written with the engine's safetensors writer. Unit tests use it until (and besides) the
// PyTorch-trained fixture; the parity test uses only the PyTorch fixture. Not imported by app code.
import { writeSafetensors, type GPT2, type TensorToWrite } from '../model';
import { mulberry32 } from '../model';

export interface SyntheticEditorOptions {
  rank?: number;
  seed?: number;
  sign?: 1 | -1;
  lrScale?: number;
  /** edit_lrs[k] = editLr · (1 + k/10), so every weight has its own step */
  editLr?: number;
  /** scale of U (0 gives the identity-initialised editor) */
  uScale?: number;
}

export interface EditorFiles {
  config: Record<string, unknown>;
  weights: Uint8Array;
}

/** editor_config.json (as an object) + editor.safetensors bytes for `weights` of `model`. */
export function syntheticEditorFiles(model: GPT2, weights: string[], opts: SyntheticEditorOptions = {}): EditorFiles {
  const rank = opts.rank ?? 4;
  const rand = mulberry32(opts.seed ?? 1);
  const uniform = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
  const shapes = weights.map((w) => model.getWeight(w).shape as [number, number]);
  const groups = new Map<string, string[]>();
  weights.forEach((w, k) => {
    const key = `${shapes[k][0]}x${shapes[k][1]}`;
    groups.set(key, [...(groups.get(key) ?? []), w]);
  });
  const tensors: TensorToWrite[] = [];
  const editors: Record<string, unknown> = {};
  for (const [key, ws] of groups) {
    const [xDim, deltaDim] = key.split('x').map(Number);
    const D = xDim + deltaDim;
    const M = ws.length;
    editors[key] = { x_dim: xDim, delta_dim: deltaDim, rank, n_modes: M, weights: ws };
    const p = `editors.${key}.`;
    // Means and stds of the order of real x (activations ~1) and δ (gradients ~1e-3) rows.
    tensors.push({ name: p + 'x_mean', shape: [xDim], data: uniform(xDim, -0.1, 0.1) });
    tensors.push({ name: p + 'x_std', shape: [xDim], data: uniform(xDim, 0.5, 1.5) });
    tensors.push({ name: p + 'delta_mean', shape: [deltaDim], data: uniform(deltaDim, -1e-4, 1e-4) });
    tensors.push({ name: p + 'delta_std', shape: [deltaDim], data: uniform(deltaDim, 1e-3, 3e-3) });
    const u = opts.uScale ?? 0.2;
    for (let l = 0; l < 2; l++) {
      tensors.push({ name: `${p}layers.${l}.U`, shape: [D, rank], data: uniform(D * rank, -u, u) });
      tensors.push({ name: `${p}layers.${l}.V`, shape: [rank, D], data: uniform(rank * D, -1 / Math.sqrt(D), 1 / Math.sqrt(D)) });
      tensors.push({ name: `${p}layers.${l}.bias`, shape: [D], data: uniform(D, -0.05, 0.05) });
      tensors.push({ name: `${p}layers.${l}.mode_scale`, shape: [M, D], data: uniform(M * D, 0.8, 1.2) });
      tensors.push({ name: `${p}layers.${l}.mode_shift`, shape: [M, D], data: uniform(M * D, -0.05, 0.05) });
    }
  }
  const editLr = opts.editLr ?? 1e-2;
  tensors.push({ name: 'edit_lrs', shape: [weights.length], data: Float32Array.from(weights, (_, k) => editLr * (1 + k / 10)) });
  const c = model.config;
  const config = {
    format: 'mendlab-editor', version: 1,
    model: { model_type: 'gpt2', n_embd: c.nEmbd, n_inner: c.nInner, n_layer: c.nLayer, vocab_size: c.vocabSize },
    edited_weights: weights,
    weight_shapes: shapes,
    editors,
    sign: opts.sign ?? -1,
    lr_scale: opts.lrScale ?? 1,
    norm_eps: 1e-7,
    loss: 'mean NLL over target tokens', tokenisation: 'prompt ++ target, tokenised separately',
    training: { note: 'synthetic editor for unit tests (random weights)' },
  };
  return { config, weights: writeSafetensors(tensors) };
}
