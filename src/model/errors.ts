// One error type for everything that can go wrong while loading a model, so every message
// names the file and the problem ("model.safetensors: header length 9999 runs past the end ...").
// The UI shows `message` as is; `file` and `problem` are there for code that wants to branch.

export class ModelFileError extends Error {
  readonly file: string;
  readonly problem: string;

  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(`${file}: ${problem}`, options);
    this.name = 'ModelFileError';
    this.file = file;
    this.problem = problem;
  }
}
