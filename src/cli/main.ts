// MEND Lab command line: `npm run cli -- <command> [options]`.
// Failures print one line "error: <reason>" on stderr (no stack trace) and exit non-zero:
// 2 for bad arguments, 1 for anything else (missing/bad model files, backend problems).

import type { Command } from './command';
import { UsageError } from './errors';
import { edit } from './edit';
import { evaluate } from './eval';
import { sequential } from './sequential';
import { scan } from './scan';
import { generate } from './generate';

const COMMANDS: Record<string, Command> = { [generate.name]: generate, [edit.name]: edit, [evaluate.name]: evaluate, [sequential.name]: sequential, [scan.name]: scan };

function help(): string {
  const lines = ['usage: npm run cli -- <command> [options]', '', 'commands:'];
  for (const c of Object.values(COMMANDS)) lines.push(`  ${c.name.padEnd(10)} ${c.summary}`, `             ${c.usage}`);
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) throw new UsageError(`missing command (${Object.keys(COMMANDS).join(', ')}); usage: npm run cli -- help`);
  if (name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(help() + '\n');
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: npm run cli -- ${command.usage}\n`);
    return 0;
  }
  return command.run(rest);
}

function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    // node:util parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for unknown/malformed options
    const usage = e instanceof UsageError || String((e as { code?: string })?.code ?? '').startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`error: ${oneLine(e)}\n`);
    process.exit(usage ? 2 : 1);
  },
);
