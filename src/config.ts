/**
 * The only reader of `process.env` (contract §2). One zod schema, parsed once at start into a
 * frozen, typed object that is passed down. A bad value stops the start with one line naming the
 * variable and what is wrong (`ConfigError.message`).
 */
import { accessSync, constants, statSync } from 'node:fs';
import { z } from 'zod';
import { caFileProblem, tlsPairProblem } from './config-pem.js';

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

const SLUG = /^[a-z0-9][a-z0-9-]{0,62}$/;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** Decimal digits only: `Number()` would also take `1e4`, `0x10` and ` 80`. */
function wholeNumber(min: number, max: number) {
  const range = max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `${min}–${max}`;
  return z
    .string()
    .regex(/^\d{1,16}$/, `must be a whole number, ${range}`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `must be ${range}`);
}

const envSchema = z.object({
  KITE_INSTANCE_ID: z.string().regex(SLUG, 'must match ^[a-z0-9][a-z0-9-]{0,62}$').default('kite-local'),
  KITE_PUBLIC_URL: z
    .url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' })
    .refine((u) => !u.endsWith('/'), 'must not end with a slash')
    // Source URLs and provenance are this URL plus a path: a query, fragment or credentials in it
    // would end up in the middle of every one of them.
    .refine((u) => {
      const url = URL.parse(u); // null when not a URL at all: that has its own message
      return !url || (!url.search && !url.hash && !url.username && !url.password && !/[?#]/.test(u));
    }, 'must be a plain base URL: no query, fragment or credentials')
    .default('http://localhost:8787'),
  KITE_HOST: z.string().min(1, 'must not be empty').default('127.0.0.1'),
  KITE_PORT: wholeNumber(0, 65535).default(8787),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
    .optional(),
  KITE_DATA_DIR: z.string().min(1, 'must not be empty').default('./.kite'),
  KITE_ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  KITE_TLS_CERT_FILE: z.string().min(1).optional(),
  KITE_TLS_KEY_FILE: z.string().min(1).optional(),
  KITE_FEDERATION_CA_FILE: z.string().min(1).optional(),
  KITE_LOG_LEVEL: z.enum(LOG_LEVELS, { message: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
  KITE_MAX_BODY_BYTES: wholeNumber(1024, Number.MAX_SAFE_INTEGER).default(1024 * 1024),
});

export interface Config {
  readonly instanceId: string;
  readonly publicUrl: string;
  readonly host: string;
  readonly port: number;
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
  readonly adminToken: string | undefined;
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  readonly federationCaFile: string | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number];
  readonly maxBodyBytes: number;
}

// Values never echoed in an error line: they are, or may contain, secrets.
const SECRET_VARIABLES = new Set(['KITE_ADMIN_TOKEN', 'DATABASE_URL', 'KITE_TOKEN']);

function describeIssue(error: z.ZodError, present: Record<string, string | undefined>): string {
  const issue = error.issues[0]!;
  const variable = String(issue.path[0] ?? 'environment');
  const value = present[variable];
  // A URL with credentials (user:password@) is not echoed either.
  const secret = SECRET_VARIABLES.has(variable) || (value !== undefined && /\/\/[^/]*@/.test(value));
  const got = value === undefined || secret ? '' : ` (got ${JSON.stringify(value)})`;
  return `Invalid configuration: ${variable}: ${issue.message}${got}`;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parse the environment; throws ConfigError with one line such as `KITE_PORT: must be 0–65535`. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty strings count as unset, as in most twelve-factor tools.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) throw new ConfigError(describeIssue(parsed.error, present));
  const e = parsed.data;
  if (Boolean(e.KITE_TLS_CERT_FILE) !== Boolean(e.KITE_TLS_KEY_FILE)) {
    const missing = e.KITE_TLS_CERT_FILE ? 'KITE_TLS_KEY_FILE' : 'KITE_TLS_CERT_FILE';
    throw new ConfigError(`Invalid configuration: ${missing}: must be set together with ${missing === 'KITE_TLS_KEY_FILE' ? 'KITE_TLS_CERT_FILE' : 'KITE_TLS_KEY_FILE'}`);
  }
  for (const variable of ['KITE_TLS_CERT_FILE', 'KITE_TLS_KEY_FILE', 'KITE_FEDERATION_CA_FILE'] as const) {
    const file = e[variable];
    if (file && !isReadableFile(file)) throw new ConfigError(`Invalid configuration: ${variable}: cannot read the file ${JSON.stringify(file)}`);
  }
  const pemProblem = (e.KITE_TLS_CERT_FILE && e.KITE_TLS_KEY_FILE ? tlsPairProblem(e.KITE_TLS_CERT_FILE, e.KITE_TLS_KEY_FILE) : undefined)
    ?? (e.KITE_FEDERATION_CA_FILE ? caFileProblem(e.KITE_FEDERATION_CA_FILE) : undefined);
  if (pemProblem) throw new ConfigError(`Invalid configuration: ${pemProblem}`);
  return Object.freeze({
    instanceId: e.KITE_INSTANCE_ID,
    publicUrl: e.KITE_PUBLIC_URL,
    host: e.KITE_HOST,
    port: e.KITE_PORT,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.KITE_DATA_DIR,
    adminToken: e.KITE_ADMIN_TOKEN,
    tls: e.KITE_TLS_CERT_FILE && e.KITE_TLS_KEY_FILE ? Object.freeze({ certFile: e.KITE_TLS_CERT_FILE, keyFile: e.KITE_TLS_KEY_FILE }) : undefined,
    federationCaFile: e.KITE_FEDERATION_CA_FILE,
    logLevel: e.KITE_LOG_LEVEL,
    maxBodyBytes: e.KITE_MAX_BODY_BYTES,
  });
}

const clientSchema = z.object({
  KITE_URL: z.url({ protocol: /^https?$/, message: 'must be an http:// or https:// URL' }).optional(),
  KITE_PUBLIC_URL: z.string().optional(),
  KITE_TOKEN: z.string().min(1).optional(),
  KITE_ADMIN_TOKEN: z.string().min(1).optional(),
  KITE_DATA_DIR: z.string().min(1).default('./.kite'),
});

/** What the CLI's client commands need: where Kite is and which token to send. */
export interface ClientConfig {
  readonly url: string;
  /** KITE_TOKEN, else KITE_ADMIN_TOKEN; the CLI falls back to the admin token file in dataDir. */
  readonly token: string | undefined;
  readonly dataDir: string;
}

export function loadClientConfig(env: Record<string, string | undefined> = process.env): ClientConfig {
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = clientSchema.safeParse(present);
  if (!parsed.success) throw new ConfigError(describeIssue(parsed.error, present));
  const e = parsed.data;
  return Object.freeze({
    url: (e.KITE_URL ?? e.KITE_PUBLIC_URL ?? 'http://127.0.0.1:8787').replace(/\/+$/, ''),
    token: e.KITE_TOKEN ?? e.KITE_ADMIN_TOKEN,
    dataDir: e.KITE_DATA_DIR,
  });
}
