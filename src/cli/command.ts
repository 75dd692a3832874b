// A CLI subcommand: `npm run cli -- <name> [options]`. Add new ones (edit, eval) to COMMANDS in main.ts.

export interface Command {
  name: string;
  /** one line for the command list */
  summary: string;
  /** the option synopsis shown by `help` and on usage errors */
  usage: string;
  /** runs with the arguments after the command name; resolves to the exit code */
  run(argv: string[]): Promise<number>;
}
