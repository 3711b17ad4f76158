/**
 * The shape every command module exports, so `main.ts` can dispatch and print help without
 * knowing what a command does. `run` resolves to the exit code; it throws `UsageError` (exit 2)
 * or `CliError` (exit 1) for the one-line failures `main.ts` prints.
 */
import type { CommandSpec, Parsed } from './args.js';

export interface Command {
  readonly spec: CommandSpec;
  run(parsed: Parsed): Promise<number>;
  /** Text appended to the generated help page, for help that is only known at run time (bench). */
  moreHelp?(): Promise<string>;
}

/** `kite keys create|list|revoke`: a noun with verbs. */
export interface CommandGroup {
  readonly name: string;
  readonly summary: string;
  readonly subcommands: Readonly<Record<string, Command>>;
}

export type Entry = Command | CommandGroup;

export function isGroup(entry: Entry): entry is CommandGroup {
  return 'subcommands' in entry;
}
