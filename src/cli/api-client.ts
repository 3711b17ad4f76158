/**
 * How client commands reach a running Kite: where (`--url`, KITE_URL, KITE_PUBLIC_URL, default
 * http://127.0.0.1:8787) and as whom (`--token`, KITE_TOKEN, KITE_ADMIN_TOKEN, else the admin
 * token file the server writes on first start). Every HTTP failure becomes one `CliError` line,
 * so a user never sees a stack trace for "the team exists already".
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError, UsageError, stringFlag, type FlagSpec, type Parsed } from './args.js';

export interface Client {
  readonly url: string;
  readonly token: string;
  readonly dataDir: string;
}

export const CLIENT_FLAGS = {
  url: { type: 'string', value: '<url>', description: 'Kite base URL (default: KITE_URL, KITE_PUBLIC_URL, http://127.0.0.1:8787)' },
  token: { type: 'string', value: '<token>', description: 'bearer token: a team key or the admin token' },
} as const satisfies Record<string, FlagSpec>;

export const TEAM_FLAG = {
  team: { type: 'string', value: '<team>', description: 'team slug', required: true },
} as const satisfies Record<string, FlagSpec>;

export const CLIENT_ENV = [
  ['KITE_URL', 'base URL of the Kite to talk to (else KITE_PUBLIC_URL)'],
  ['KITE_TOKEN', 'bearer token (else KITE_ADMIN_TOKEN)'],
  ['KITE_DATA_DIR', 'without a token, read <dir>/admin-token (default ./.kite)'],
] as const;

/**
 * `peers add` needs `--url` for the peer's own URL, so there the Kite to talk to is `--kite-url`:
 * same meaning as `--url` elsewhere, another name.
 */
export const KITE_URL_FLAG = {
  'kite-url': { ...CLIENT_FLAGS.url, description: 'Kite base URL to send the request to (default: KITE_URL, KITE_PUBLIC_URL, http://127.0.0.1:8787)' },
  token: CLIENT_FLAGS.token,
} as const satisfies Record<string, FlagSpec>;

/**
 * Resolve URL and token for a client command; flags win over the environment. `urlFlag` names
 * the flag that holds Kite's base URL (`url`, or `kite-url` where `--url` means something else).
 */
export async function resolveClient(p: Parsed, urlFlag: 'url' | 'kite-url' = 'url'): Promise<Client> {
  // Loaded on use: zod is the slowest import, and `kite --help` should not pay for it.
  const { loadClientConfig } = await import('../config.js');
  const config = loadClientConfig();
  const flagUrl = stringFlag(p, urlFlag);
  if (flagUrl !== undefined && !/^https?:\/\/[^/]/.test(flagUrl)) {
    throw new UsageError(`--${urlFlag} must be an http:// or https:// URL (got '${flagUrl}')`, p.spec.command);
  }
  const url = (flagUrl ?? config.url).replace(/\/+$/, '');
  const token = stringFlag(p, 'token') ?? config.token ?? (await readAdminTokenFile(config.dataDir));
  return { url, token, dataDir: config.dataDir };
}

async function readAdminTokenFile(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'admin-token');
  let token = '';
  try {
    token = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  if (!token) {
    throw new CliError(`no token: pass --token, set KITE_TOKEN, or run 'kite serve' once so ${file} exists`);
  }
  return token;
}

/** Path segments come from the user; encode them so a stray '/' cannot reach another route. */
export function teamPath(team: string, ...rest: string[]): string {
  return ['/v1/teams', team, ...rest].map((s, i) => (i === 0 ? s : encodeURIComponent(s))).join('/');
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly contentType?: string;
  readonly timeoutMs?: number;
}

/** One authenticated JSON request. Resolves to the parsed body (undefined for 204). */
export async function apiRequest<T = unknown>(client: Client, method: string, route: string, opts: RequestOptions = {}): Promise<T> {
  const target = `${client.url}${route}`;
  const headers: Record<string, string> = { authorization: `Bearer ${client.token}`, accept: 'application/json' };
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
  let res: Response;
  try {
    res = await fetch(target, {
      method,
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
  } catch (err) {
    throw new CliError(describeNetworkError(err, client.url, opts.timeoutMs ?? 30_000));
  }
  const text = await res.text();
  if (!res.ok) throw new CliError(describeHttpError(res.status, text, method, target));
  if (res.status === 204 || text === '') return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CliError(`${method} ${target} answered ${res.status} with a body that is not JSON`);
  }
}

/** Kite errors are `{"error":{"code","message"}}`; anything else (a proxy page) is cut to one line. */
export function describeHttpError(status: number, text: string, method: string, target: string): string {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    if (body.error && typeof body.error.message === 'string') {
      return `HTTP ${status} ${String(body.error.code ?? 'error')}: ${body.error.message}`;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const snippet = text.replace(/\s+/g, ' ').trim().slice(0, 200);
  return `${method} ${target} failed with HTTP ${status}${snippet ? `: ${snippet}` : ''}`;
}

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

function describeNetworkError(err: unknown, base: string, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError') return `no answer from Kite at ${base} within ${timeoutMs / 1000} s`;
  const reason = e.cause?.code ?? e.cause?.message ?? (err instanceof Error ? err.message : String(err));
  // Kite answered, but TLS did not verify: a private CA, most often. Not a matter of running it.
  if (TLS_TRUST_CODES.has(reason) || /certificate/i.test(reason)) {
    return `Kite at ${base} answered with a certificate this machine does not trust (${reason}); for a private CA, run with NODE_EXTRA_CA_CERTS=<its PEM file>`;
  }
  // Plain HTTP to a port that speaks only TLS: the server drops the connection without an answer.
  if (base.startsWith('http://') && (reason === 'UND_ERR_SOCKET' || reason === 'ECONNRESET')) {
    return `Kite at ${base} closed the connection without an answer (${reason}); if it serves HTTPS (KITE_TLS_CERT_FILE), use an https:// URL`;
  }
  return `cannot reach Kite at ${base} (${reason}); is 'kite serve' running? Use --url or KITE_URL to point elsewhere`;
}

/** Resource commands print the server's answer as indented JSON: readable, and still fine for jq. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
