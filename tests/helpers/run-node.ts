// Runs one of our Node entry points (the CLI, the bench) in a child process, the way `npm run cli` / `npm run bench`
// do (`node --import tsx <entry>`), and collects its exit code and output. Shared by every test that drives a real
// entry point, so they all spawn it the same way.
import { spawn } from 'node:child_process';
import { expect } from 'vitest';

export const ROOT = new URL('../../', import.meta.url).pathname;

export interface Run { code: number | null; stdout: string; stderr: string }

/** `node --import tsx ENTRY ...args` from the repository root; `env` is added to this process's environment. */
export function runEntry(entry: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { cwd: ROOT, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `npm run cli -- ...args`. */
export const runCli = (args: string[], env: Record<string, string> = {}) => runEntry('src/cli/main.ts', args, env);

/** A failed run as the CLI promises it: exit `code`, exactly one "error: ..." line on stderr matching `pattern`,
 * no stack trace, nothing on stdout. */
export function expectOneLineError(r: Run, code: number, pattern: RegExp) {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).toBe('');
}
