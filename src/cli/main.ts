#!/usr/bin/env node
/**
 * The `kite` command (contract §8): finds the command, handles `--help` everywhere, and turns
 * failures into one line on stderr. Exit codes: 0 success or help, 1 the command failed (bad
 * config, HTTP error, server unreachable), 2 the command line is wrong.
 */
import { UsageError, formatHelp, parseCommand, table, wantsHelp } from './args.js';
import { isGroup, type Command, type CommandGroup, type Entry } from './command.js';
import { bench } from './commands/bench.js';
import { keys } from './commands/keys.js';
import { listen } from './commands/listen.js';
import { migrate } from './commands/migrate.js';
import { peers } from './commands/peers.js';
import { publish } from './commands/publish.js';
import { serve } from './commands/serve.js';
import { sources } from './commands/sources.js';
import { teams } from './commands/teams.js';
import { VERSION } from '../version.js';

const COMMANDS: Readonly<Record<string, Entry>> = {
  serve,
  migrate,
  teams,
  keys,
  sources,
  listen,
  publish,
  peers,
  bench,
};

/** `keys create|list|revoke`; a long list is cut (`peers add|list|show|…`) to keep the table narrow. */
function subcommandList(group: CommandGroup): string {
  const names = Object.keys(group.subcommands);
  let shown = names.join('|');
  for (let n = names.length - 1; shown.length > 24 && n > 1; n--) shown = `${names.slice(0, n).join('|')}|…`;
  return shown;
}

function topHelp(): string {
  const rows = Object.entries(COMMANDS).map(([name, entry]): [string, string] =>
    isGroup(entry)
      ? [`${name} ${subcommandList(entry)}`, entry.summary]
      : [name, entry.spec.summary],
  );
  return [
    'kite — webhooks in, CloudEvents out: signed ingest, durable events on Postgres, live listeners,',
    'and federation between Kite instances.',
    '',
    'Usage:',
    '  kite <command> [flags]',
    '',
    'Commands:',
    ...table(rows),
    '',
    "Run 'kite <command> --help' for a command's flags, environment and an example;",
    "'kite --version' prints the version.",
    '',
    'Client commands read KITE_URL (default http://127.0.0.1:8787) and KITE_TOKEN; without a token',
    'they use the admin token that `kite serve` saved in KITE_DATA_DIR (default ./.kite).',
    '',
    'Example:',
    '  kite serve                  # terminal 1: starts Kite, prints the admin token once',
    '  kite teams create acme      # terminal 2: uses ./.kite/admin-token',
    '  kite listen --team acme     # prints each new event of team acme as a JSON line',
    '',
  ].join('\n');
}

function groupHelp(group: CommandGroup): string {
  const rows = Object.entries(group.subcommands).map(([name, c]): [string, string] => [name, c.spec.summary]);
  const first = Object.values(group.subcommands)[0]!;
  return [
    `kite ${group.name} — ${group.summary}`,
    '',
    'Usage:',
    `  kite ${group.name} <${Object.keys(group.subcommands).join('|')}> [flags]`,
    '',
    'Subcommands:',
    ...table(rows),
    '',
    `Run 'kite ${group.name} <subcommand> --help' for its flags.`,
    '',
    'Example:',
    `  ${first.spec.examples[0]}`,
    '',
  ].join('\n');
}

/** Resolve argv to what to do: a help page to print, or a command with its own arguments. */
function dispatch(argv: readonly string[]): { help: string } | { command: Command; args: string[] } {
  let [name, ...rest] = argv;
  if (name === 'help') return dispatchHelp(rest);
  if (name === undefined) throw new UsageError('missing command', '');
  if (name === '--help' || name === '-h') return { help: topHelp() };
  if (name === '--version' || name === '-V') return { help: `kite ${VERSION}\n` };
  if (name.startsWith('-')) throw new UsageError(`unknown flag '${name}' (flags go after the command)`, '');
  const entry = COMMANDS[name];
  if (!entry) throw new UsageError(`unknown command '${name}'`, '');
  if (!isGroup(entry)) return { command: entry, args: rest };
  [name, ...rest] = rest;
  if (name === undefined) throw new UsageError(`missing subcommand: ${Object.keys(entry.subcommands).join(', ')}`, entry.name);
  if (name === '--help' || name === '-h') return { help: groupHelp(entry) };
  const command = entry.subcommands[name];
  if (!command) {
    if (wantsHelp(rest)) return { help: groupHelp(entry) };
    throw new UsageError(`unknown subcommand '${name}' (one of ${Object.keys(entry.subcommands).join(', ')})`, entry.name);
  }
  return { command, args: rest };
}

/** `kite help keys create` is `kite keys create --help`. */
function dispatchHelp(words: readonly string[]): ReturnType<typeof dispatch> {
  if (words.length === 0) return { help: topHelp() };
  const resolved = dispatch([...words, '--help']);
  if ('help' in resolved) return resolved;
  return { command: resolved.command, args: ['--help'] };
}

/** A command's help page: generated from its spec, plus what it adds at run time (bench). */
async function commandHelp(command: Command): Promise<string> {
  return formatHelp(command.spec) + (command.moreHelp ? await command.moreHelp() : '');
}

async function main(argv: readonly string[]): Promise<number> {
  const resolved = dispatch(argv);
  if ('help' in resolved) {
    process.stdout.write(resolved.help);
    return 0;
  }
  const parsed = parseCommand(resolved.args, resolved.command.spec);
  if (parsed === 'help') {
    process.stdout.write(await commandHelp(resolved.command));
    return 0;
  }
  return resolved.command.run(parsed);
}

function report(err: unknown): number {
  if (err instanceof UsageError) {
    const where = err.command ? `kite ${err.command} --help` : 'kite --help';
    process.stderr.write(`kite: ${err.message}. Run '${where}' for usage.\n`);
    return 2;
  }
  // ConfigError, CliError and anything unexpected: the message is the line, with no stack trace.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`kite: ${message.split('\n')[0]}\n`);
  return 1;
}

// A closed stdout (`kite keys list | head -1`) is not an error worth a stack trace. `listen`
// installs its own handler, which must run instead: it saves the cursor first.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (process.stdout.listenerCount('error') > 1) return;
  process.exit(err.code === 'EPIPE' ? 0 : 1);
});

main(process.argv.slice(2)).then(
  (code) => exitAfterStdout(code),
  (err: unknown) => exitAfterStdout(report(err)),
);

/** process.exit can drop piped output still queued; wait for it, then exit with `code`. */
function exitAfterStdout(code: number): void {
  process.stdout.write('', () => process.exit(code));
}
