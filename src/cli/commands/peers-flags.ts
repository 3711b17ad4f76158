/**
 * The flags and the <id> of the `kite peers` subcommands, checked here before anything is sent
 * (https:// URL, slugs, numbers in the ranges the server accepts), so a typo is one line and
 * exit 2 rather than a round trip; and the body of a new peer built from them. Settings not given
 * are left out of the request: the server's defaults apply (contract §6).
 */
import { isStandardSecret } from '../../providers/standard-signature.js';
import { UsageError, booleanFlag, listFlag, requiredString, slug, stringFlag, type FlagSpec, type Parsed } from '../args.js';

/** The server's limits (src/federation/peer-input.ts, src/events/type-patterns.ts). */
const MAX_SCOPES = 64;
const MAX_SCOPE_LENGTH = 256;
const SCOPE_CHARS = /^[A-Za-z0-9._*-]+$/;
const MAX_RATE = 1_000_000;
const MAX_DELAY_MS = 86_400_000;
const MAX_TIMEOUT_MS = 600_000;

export function usage(p: Parsed, message: string): UsageError {
  return new UsageError(message, p.spec.command);
}

/** A whole number flag within [min, max], or undefined when not given. */
export function intFlag(p: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = stringFlag(p, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw usage(p, `--${name} must be a whole number from ${min} to ${max} (got '${raw}')`);
  }
  return value;
}

/** `PER_SEC[/BURST]`, e.g. `100`, `0.5/10`, `100/200`. Only the given parts are sent. */
function rateFlag(p: Parsed, name: string): { perSecond: number; burst?: number } | undefined {
  const raw = stringFlag(p, name);
  if (raw === undefined) return undefined;
  const match = /^(\d+(?:\.\d+)?|\.\d+)(?:\/(\d+))?$/.exec(raw);
  const perSecond = match ? Number(match[1]) : NaN;
  const burst = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !(perSecond > 0) || perSecond > MAX_RATE || (burst !== undefined && (burst < 1 || burst > MAX_RATE))) {
    throw usage(
      p,
      `--${name} must be PER_SEC or PER_SEC/BURST: events per second above 0 (fractions allowed), and a whole burst from 1, both at most ${MAX_RATE} (got '${raw}')`,
    );
  }
  return burst === undefined ? { perSecond } : { perSecond, burst };
}

/** The peer's base URL: https:// only (federation is sent over TLS), no credentials, query or fragment. */
function peerUrl(p: Parsed): string {
  const raw = requiredString(p, 'url');
  if (!/^https:\/\//i.test(raw)) {
    throw usage(p, `--url must be the peer's https:// URL: federation is only sent over TLS (got '${raw}')`);
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usage(p, `--url is not a valid URL (got '${raw}')`);
  }
  if (url.username || url.password || raw.includes('?') || raw.includes('#')) {
    throw usage(p, `--url must not carry credentials, a query or a fragment (got '${raw}')`);
  }
  return raw;
}

/**
 * `--scopes 'stripe.*,github.*'` (or another flag of type patterns, e.g. `--return-scopes`),
 * repeatable; the patterns of all of them, in order.
 */
export function scopesFlag(p: Parsed, name = 'scopes'): string[] {
  const scopes = listFlag(p, name).flatMap((v) => v.split(',').map((s) => s.trim()));
  if (scopes.length === 0) throw usage(p, `missing required flag --${name} <patterns>`);
  for (const scope of scopes) {
    if (scope === '') throw usage(p, `--${name} has an empty pattern; look for a doubled or trailing comma`);
    if (scope.length > MAX_SCOPE_LENGTH) throw usage(p, `--${name} pattern longer than ${MAX_SCOPE_LENGTH} characters`);
    if (!SCOPE_CHARS.test(scope)) {
      throw usage(p, `--${name} pattern '${scope}' may contain only letters, digits, '.', '_', '-' and '*'`);
    }
  }
  if (scopes.length > MAX_SCOPES) throw usage(p, `--${name} has ${scopes.length} patterns; at most ${MAX_SCOPES} are allowed`);
  return scopes;
}

/** A Standard Webhooks secret, by the same test the server applies: `whsec_` + base64. */
function keyFlag(p: Parsed, name: string): string | undefined {
  const key = stringFlag(p, name);
  if (key === undefined) return undefined;
  if (!isStandardSecret(key)) throw usage(p, `--${name} must be a Standard Webhooks secret: 'whsec_' followed by base64`);
  return key;
}

/** The settings either side chooses for its own half of a relationship (`peers add|invite|accept`). */
export const SETTINGS_FLAGS = {
  'max-hops': { type: 'string', value: '<n>', description: 'forward only events that crossed fewer than n instances, 1-16 (default 3)' },
  'rate-limit': { type: 'string', value: '<per-sec[/burst]>', description: 'events per second sent to the peer, and burst (default 100/200)' },
  'inbound-rate-limit': { type: 'string', value: '<per-sec[/burst]>', description: 'events per second accepted from the peer, and burst (default 1000/2000)' },
  'max-attempts': { type: 'string', value: '<n>', description: 'failed attempts before the peer is dead-lettered, 1-1000 (default 20)' },
  'initial-delay-ms': { type: 'string', value: '<ms>', description: 'first retry delay (default 1000)' },
  'max-delay-ms': { type: 'string', value: '<ms>', description: 'longest retry delay, and the probe interval when dead-lettered (default 300000)' },
  'timeout-ms': { type: 'string', value: '<ms>', description: 'timeout of each delivery request, at most 600000 (default 10000)' },
  disabled: { type: 'boolean', description: "register it paused: events queue but are not sent until 'kite peers resume'" },
} as const satisfies Record<string, FlagSpec>;

export const ID_ARG = [{ name: 'id', description: "the peer's id, as printed by 'kite peers add' or 'kite peers list'" }] as const;

export function peerId(p: Parsed): string {
  const id = p.positionals[0]!;
  if (id === '') throw usage(p, '<id> must not be empty');
  return id;
}

/**
 * The body of `POST /v1/teams/{team}/peers` from the flags of `peers add`, every setting not
 * given left out; `peers invite` and `peers accept` build theirs with it too.
 */
export function newPeerBody(p: Parsed): Record<string, unknown> {
  const body: Record<string, unknown> = {
    instanceId: slug(p, 'instance ID', requiredString(p, 'instance-id')),
    url: peerUrl(p),
  };
  const remoteTeam = stringFlag(p, 'remote-team');
  if (remoteTeam !== undefined) body['remoteTeam'] = slug(p, 'remote team', remoteTeam);
  body['scopes'] = scopesFlag(p);
  const maxHops = intFlag(p, 'max-hops', 1, 16);
  if (maxHops !== undefined) body['maxHops'] = maxHops;
  const rateLimit = rateFlag(p, 'rate-limit');
  if (rateLimit) body['rateLimit'] = rateLimit;
  const inboundRateLimit = rateFlag(p, 'inbound-rate-limit');
  if (inboundRateLimit) body['inboundRateLimit'] = inboundRateLimit;
  const retry: Record<string, number> = {};
  const retryFields = [
    ['max-attempts', 'maxAttempts', 1000],
    ['initial-delay-ms', 'initialDelayMs', MAX_DELAY_MS],
    ['max-delay-ms', 'maxDelayMs', MAX_DELAY_MS],
    ['timeout-ms', 'timeoutMs', MAX_TIMEOUT_MS],
  ] as const;
  for (const [flag, field, max] of retryFields) {
    const value = intFlag(p, flag, 1, max);
    if (value !== undefined) retry[field] = value;
  }
  if (retry['initialDelayMs'] !== undefined && retry['maxDelayMs'] !== undefined && retry['maxDelayMs'] < retry['initialDelayMs']) {
    throw usage(p, `--max-delay-ms (${retry['maxDelayMs']}) must not be below --initial-delay-ms (${retry['initialDelayMs']})`);
  }
  if (Object.keys(retry).length > 0) body['retry'] = retry;
  if (booleanFlag(p, 'disabled')) body['enabled'] = false;
  const outboundKey = keyFlag(p, 'outbound-key');
  if (outboundKey !== undefined) body['outboundKey'] = outboundKey;
  const inboundKey = keyFlag(p, 'inbound-key');
  if (inboundKey !== undefined) body['inboundKey'] = inboundKey;
  return body;
}
