// Errors the CLI reports as a one-line reason (no stack trace). UsageError → exit code 2, anything else → 1.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}
