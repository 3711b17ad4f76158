/**
 * The bodies of `POST` and `PATCH /v1/teams/{team}/peers…` (contract §6): validation, defaults,
 * and merging a patch into a peer's settings.
 *
 * Three fields answer with their own code whatever is wrong with them, so a client can tell the
 * contract's refusals apart: `instanceId` → `invalid_peer` (missing, not a slug, or this
 * instance's own), `scopes` → `invalid_scopes` (missing, not an array, empty, or a bad pattern),
 * `url` → `insecure_peer_url` when it is a string that is not `https://…`. Everything else (a
 * missing or malformed `url`, an unknown field, a number out of range) is `invalid_input` naming
 * the field. Unknown fields are refused rather than ignored, so a typo (`maxhops`) is not
 * silently replaced by a default.
 */
import { z } from 'zod';
import type { PeerState, RetryPolicy } from '../../machines/peer-types.js';
import { KiteError } from '../errors.js';
import { checkTypePatterns } from '../events/type-patterns.js';
import { TEAM_SLUG } from '../teams/team-directory.js';
import { generatePeerKey, peerKeyProblem } from './peer-keys.js';

export type { PeerState, RetryPolicy };

export interface RateLimit {
  /** Tokens added per second (may be fractional, e.g. 0.5). */
  readonly perSecond: number;
  /** The bucket's size: how many events may go at once after a quiet spell. */
  readonly burst: number;
}

export const DEFAULT_MAX_HOPS = 3;
export const DEFAULT_RATE_LIMIT: RateLimit = Object.freeze({ perSecond: 100, burst: 200 });
export const DEFAULT_INBOUND_RATE_LIMIT: RateLimit = Object.freeze({ perSecond: 1000, burst: 2000 });
export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({ maxAttempts: 20, initialDelayMs: 1000, maxDelayMs: 300_000, timeoutMs: 10_000 });

/** What a peer's relationship is configured with; everything but the keys. */
export interface PeerSettings {
  readonly instanceId: string;
  readonly url: string;
  readonly remoteTeam: string;
  readonly scopes: readonly string[];
  readonly maxHops: number;
  readonly rateLimit: RateLimit;
  readonly inboundRateLimit: RateLimit;
  readonly retry: Readonly<RetryPolicy>;
  readonly enabled: boolean;
}

export interface NewPeer extends PeerSettings {
  readonly outboundKey: string;
  readonly inboundKey: string;
}

/** A PATCH: any field; the nested objects may be partial (missing fields keep their value). */
export interface PeerPatch {
  readonly instanceId?: string;
  readonly url?: string;
  readonly remoteTeam?: string;
  readonly scopes?: readonly string[];
  readonly maxHops?: number;
  readonly rateLimit?: Partial<RateLimit>;
  readonly inboundRateLimit?: Partial<RateLimit>;
  readonly retry?: Partial<RetryPolicy>;
  readonly enabled?: boolean;
  readonly outboundKey?: string;
  readonly inboundKey?: string;
}

const wholeMs = (max: number) => z.number().int('must be a whole number').min(1, 'must be at least 1').max(max, `must be at most ${max}`);

const rateLimitSchema = z.strictObject({
  perSecond: z.number().positive('must be above 0').max(1_000_000, 'must be at most 1000000'),
  burst: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000'),
}).partial();

const retrySchema = z.strictObject({
  maxAttempts: z.number().int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000'),
  initialDelayMs: wholeMs(86_400_000),
  maxDelayMs: wholeMs(86_400_000),
  timeoutMs: wholeMs(600_000),
}).partial();

const keySchema = z.string().superRefine((key, check) => {
  const problem = peerKeyProblem(key);
  if (problem) check.addIssue({ code: 'custom', message: problem });
});

// instanceId, url and scopes are checked by hand (their own error codes), the rest by zod.
const fieldsSchema = z.strictObject({
  instanceId: z.unknown(),
  url: z.unknown(),
  scopes: z.unknown(),
  remoteTeam: z.string().regex(TEAM_SLUG, 'must be a team slug (^[a-z0-9][a-z0-9-]{0,62}$)'),
  maxHops: z.number().int('must be a whole number').min(1, 'must be from 1 to 16').max(16, 'must be from 1 to 16'),
  rateLimit: rateLimitSchema,
  inboundRateLimit: rateLimitSchema,
  retry: retrySchema,
  enabled: z.boolean(),
  outboundKey: keySchema,
  inboundKey: keySchema,
}).partial();

/** The body of `POST …/peers`, with every default filled and missing keys generated. */
export function parseNewPeer(body: unknown, team: string, ownInstanceId: string): NewPeer {
  const object = requireObject(body);
  const instanceId = checkInstanceId(object['instanceId'], ownInstanceId);
  const url = checkUrl(object['url']);
  const scopes = checkScopes(object['scopes']);
  const rest = parseFields(object);
  const settings = mergeSettings(
    { instanceId, url, scopes, remoteTeam: team, maxHops: DEFAULT_MAX_HOPS, rateLimit: DEFAULT_RATE_LIMIT, inboundRateLimit: DEFAULT_INBOUND_RATE_LIMIT, retry: DEFAULT_RETRY, enabled: true },
    rest,
  );
  return { ...settings, outboundKey: rest.outboundKey ?? generatePeerKey(), inboundKey: rest.inboundKey ?? generatePeerKey() };
}

/** The body of `PATCH …/peers/{id}`; merge it with `mergeSettings`. */
export function parsePeerPatch(body: unknown, ownInstanceId: string): PeerPatch {
  const object = requireObject(body);
  const rest = parseFields(object);
  return {
    ...rest,
    ...('instanceId' in object ? { instanceId: checkInstanceId(object['instanceId'], ownInstanceId) } : {}),
    ...('url' in object ? { url: checkUrl(object['url']) } : {}),
    ...('scopes' in object ? { scopes: checkScopes(object['scopes']) } : {}),
  };
}

/**
 * Applies a patch (nested objects field by field) and checks what depends on several fields.
 *
 * A `maxDelayMs` below `initialDelayMs` is refused only when the request gives both: the contract
 * fills a partial `retry` with the defaults field by field, so `{"maxDelayMs": 500}` alone (fast
 * probes) is a valid request although the default `initialDelayMs` is 1000; the backoff,
 * min(maxDelayMs, initialDelayMs·2^(n−1)), is then `maxDelayMs` at every attempt.
 */
export function mergeSettings(current: PeerSettings, patch: PeerPatch): PeerSettings {
  const retry = { ...current.retry, ...patch.retry };
  const given = patch.retry ?? {};
  if (given.maxDelayMs !== undefined && given.initialDelayMs !== undefined && given.maxDelayMs < given.initialDelayMs) {
    throw new KiteError('invalid_input', `retry.maxDelayMs (${given.maxDelayMs}) must not be below retry.initialDelayMs (${given.initialDelayMs}).`);
  }
  return {
    instanceId: patch.instanceId ?? current.instanceId,
    url: patch.url ?? current.url,
    remoteTeam: patch.remoteTeam ?? current.remoteTeam,
    scopes: patch.scopes ?? current.scopes,
    maxHops: patch.maxHops ?? current.maxHops,
    rateLimit: { ...current.rateLimit, ...patch.rateLimit },
    inboundRateLimit: { ...current.inboundRateLimit, ...patch.inboundRateLimit },
    retry,
    enabled: patch.enabled ?? current.enabled,
  };
}

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new KiteError('invalid_input', 'body: must be a JSON object.');
  }
  return body as Record<string, unknown>;
}

function parseFields(object: Record<string, unknown>): Omit<PeerPatch, 'instanceId' | 'url' | 'scopes'> {
  const parsed = fieldsSchema.safeParse(object);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.length > 0 ? issue.path.join('.') : 'body';
    throw new KiteError('invalid_input', `${field}: ${issue.message}`);
  }
  const { instanceId: _i, url: _u, scopes: _s, ...rest } = parsed.data;
  return rest;
}

function checkInstanceId(value: unknown, ownInstanceId: string): string {
  if (typeof value !== 'string' || !TEAM_SLUG.test(value)) {
    throw new KiteError('invalid_peer', 'instanceId must be the peer\'s instance ID (^[a-z0-9][a-z0-9-]{0,62}$).');
  }
  if (value === ownInstanceId) {
    throw new KiteError('invalid_peer', `instanceId ${JSON.stringify(value)} is this instance's own ID; a peer is another instance.`);
  }
  return value;
}

/** An `https://` URL without credentials, query or fragment, kept without a trailing slash. */
function checkUrl(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) throw new KiteError('invalid_input', 'url: required, the peer\'s https:// URL.');
  if (!/^https:\/\//i.test(value)) {
    throw new KiteError('insecure_peer_url', 'url must start with https://: federation is only sent over TLS.');
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new KiteError('invalid_input', 'url: not a valid URL.');
  }
  if (value.length > 2048) throw new KiteError('invalid_input', 'url: must be at most 2048 characters.');
  if (url.username || url.password || value.includes('?') || value.includes('#')) {
    throw new KiteError('invalid_input', 'url: must not carry credentials, a query or a fragment.');
  }
  // Kept without a trailing slash: deliveries go to `${url}/hooks/…`.
  return url.origin + url.pathname.replace(/\/+$/, '');
}

function checkScopes(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0 || !value.every((s): s is string => typeof s === 'string')) {
    throw new KiteError('invalid_scopes', 'scopes must be a non-empty JSON array of event type patterns, e.g. ["stripe.*"].');
  }
  try {
    return checkTypePatterns(value, 'scopes');
  } catch (err) {
    if (err instanceof KiteError) throw new KiteError('invalid_scopes', err.message);
    throw err;
  }
}
