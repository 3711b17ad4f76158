/**
 * Flag parsing and help text shared by every command. Each command describes itself once in a
 * `CommandSpec`; the same object drives `parseArgs` (strict: unknown flags are errors), the
 * required-flag check and the `--help` page, so the help can never drift from what is accepted.
 */
import { parseArgs } from 'node:util';

/** Bad command line: printed as one line plus a hint to use --help, exit code 2. */
export class UsageError extends Error {
  constructor(message: string, readonly command: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure after the command line was accepted (HTTP error, unreachable server…): exit 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  readonly short?: string;
  /** Repeatable (`--types a --types b`); the values arrive as an array. */
  readonly multiple?: boolean;
  /** Placeholder in the help, e.g. `<team>`. */
  readonly value?: string;
  readonly description: string;
  readonly required?: boolean;
}

export interface CommandSpec {
  /** Full command path as typed, e.g. `keys create`. */
  readonly command: string;
  readonly summary: string;
  readonly usage: string;
  readonly details?: readonly string[];
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Exactly these positionals are required, in this order. */
  readonly positionals?: readonly { readonly name: string; readonly description: string }[];
  readonly env?: readonly (readonly [name: string, description: string])[];
  readonly examples: readonly string[];
  /** Hand argv to the command unparsed (apart from --help): for placeholders and wrappers. */
  readonly passthrough?: boolean;
}

export type FlagValue = string | boolean | string[] | undefined;

export interface Parsed {
  readonly spec: CommandSpec;
  readonly values: Readonly<Record<string, FlagValue>>;
  readonly positionals: readonly string[];
}

const HELP: FlagSpec = { type: 'boolean', short: 'h', description: 'show this help and exit' };

/** Parse argv for one command. Returns 'help' when --help/-h is present (even beside bad flags). */
export function parseCommand(argv: readonly string[], spec: CommandSpec): Parsed | 'help' {
  if (spec.passthrough) return wantsHelp(argv) ? 'help' : { spec, values: {}, positionals: [...argv] };
  const options = Object.fromEntries(
    Object.entries({ ...spec.flags, help: HELP }).map(([name, f]) => [
      name,
      { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) },
    ]),
  );
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: true });
  } catch (err) {
    // `kite keys create --bogus --help` should still show the help rather than scold.
    if (wantsHelp(argv)) return 'help';
    throw new UsageError(describeParseError(err), spec.command);
  }
  if (parsed.values['help'] === true) return 'help';
  for (const [name, flag] of Object.entries(spec.flags)) {
    if (flag.required && parsed.values[name] === undefined) {
      throw new UsageError(`missing required flag --${name}${flag.value ? ` ${flag.value}` : ''}`, spec.command);
    }
  }
  const expected = spec.positionals ?? [];
  if (parsed.positionals.length < expected.length) {
    throw new UsageError(`missing argument <${expected[parsed.positionals.length]!.name}>`, spec.command);
  }
  if (parsed.positionals.length > expected.length) {
    throw new UsageError(`unexpected argument '${parsed.positionals[expected.length]}'`, spec.command);
  }
  return { spec, values: parsed.values as Record<string, FlagValue>, positionals: parsed.positionals };
}

export function wantsHelp(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h');
}

/** parseArgs errors are long and multi-line; a usage error is one short line. */
function describeParseError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown) return `unknown flag '${unknown[1]}'`;
  const missing = /^Option '(\S+)[^']*' argument missing/.exec(message);
  if (missing) return `${missing[1]} needs a value`;
  const ambiguous = /^Option '([^' ]+)[^']*' argument is ambiguous/.exec(message);
  if (ambiguous) return `${ambiguous[1]} needs a value (for a value starting with '-', write ${ambiguous[1]}=-…)`;
  return message.split('\n')[0]!.replace(/\.$/, '');
}

export function stringFlag(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  if (Array.isArray(v)) return v[v.length - 1];
  return typeof v === 'string' ? v : undefined;
}

export function requiredString(p: Parsed, name: string): string {
  const v = stringFlag(p, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} must not be empty`, p.spec.command);
  return v;
}

export function listFlag(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

export function booleanFlag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Teams and source names are slugs (contract §1); catching a typo here saves a round trip. */
export function slug(p: Parsed, what: string, value: string): string {
  if (!SLUG.test(value)) {
    throw new UsageError(`${what} '${value}' is not a slug (lowercase letters, digits and '-', at most 63)`, p.spec.command);
  }
  return value;
}

export function oneOf<T extends string>(p: Parsed, flag: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${flag} must be one of ${allowed.join(', ')} (got '${value}')`, p.spec.command);
  }
  return value as T;
}

/** A seq as used by `after`: a non-negative whole number. */
export function seqFlag(p: Parsed, name: string): number | undefined {
  const v = stringFlag(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--${name} must be a whole number ≥ 0 (got '${v}')`, p.spec.command);
  }
  return Number(v);
}

export function formatHelp(spec: CommandSpec): string {
  const out: string[] = [`kite ${spec.command} — ${spec.summary}`, '', 'Usage:', `  ${spec.usage}`];
  if (spec.details?.length) out.push('', ...spec.details);
  if (spec.positionals?.length) {
    out.push('', 'Arguments:', ...table(spec.positionals.map((a) => [`<${a.name}>`, a.description])));
  }
  const flags = Object.entries({ ...spec.flags, help: HELP }).map(([name, f]): [string, string] => [
    `${f.short ? `-${f.short}, ` : '    '}--${name}${f.value ? ` ${f.value}` : ''}`,
    `${f.description}${f.required ? ' (required)' : ''}${f.multiple ? ' (repeatable)' : ''}`,
  ]);
  out.push('', 'Flags:', ...table(flags));
  if (spec.env?.length) out.push('', 'Environment:', ...table(spec.env.map(([n, d]) => [n, d])));
  out.push('', spec.examples.length > 1 ? 'Examples:' : 'Example:', ...spec.examples.map((e) => `  ${e}`));
  return `${out.join('\n')}\n`;
}

export function table(rows: readonly (readonly [string, string])[]): string[] {
  const width = Math.max(...rows.map(([left]) => left.length)) + 2;
  return rows.map(([left, right]) => `  ${left.padEnd(width)}${right}`);
}
