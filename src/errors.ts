/**
 * Every error Kite answers with, in one registry: a snake_case code, its HTTP status and a
 * default message. Handlers throw `KiteError`s; `src/http/respond.ts` is the one place that turns
 * them into `{"error": {"code", "message"}}` responses, and every `catch` of an unknown value goes
 * through `coerceError` so nothing leaks a stack trace or a secret to a client.
 */

export const ERRORS = {
  invalid_input: { status: 400, message: 'The request is not valid.' },
  invalid_body: { status: 400, message: 'The body is not what this provider sends.' },
  invalid_json: { status: 400, message: 'The body is not valid JSON.' },
  invalid_limit: { status: 400, message: 'limit is out of range.' },
  invalid_source: { status: 400, message: 'source is set by Kite and may not be given.' },
  invalid_provider: { status: 400, message: 'Unknown provider.' },
  reserved_name: { status: 400, message: 'This name is reserved.' },
  reserved_type: { status: 400, message: 'Event types starting with "kite." are reserved.' },
  insecure_peer_url: { status: 400, message: 'A peer url must start with https://.' },
  invalid_scopes: { status: 400, message: 'scopes must be a non-empty array of event type patterns.' },
  invalid_peer: { status: 400, message: 'instanceId must be another instance\'s ID.' },
  unauthorized: { status: 401, message: 'Missing or invalid credentials.' },
  invalid_signature: { status: 401, message: 'Missing, invalid or expired signature.' },
  forbidden: { status: 403, message: 'These credentials may not do this.' },
  not_found: { status: 404, message: 'Not found.' },
  method_not_allowed: { status: 405, message: 'Method not allowed on this route.' },
  conflict: { status: 409, message: 'It exists already.' },
  upgrade_required: { status: 426, message: 'This route is a WebSocket: send an Upgrade request.' },
  payload_too_large: { status: 413, message: 'The body is larger than the limit.' },
  unsupported_media_type: { status: 415, message: 'Unsupported content type.' },
  rate_limited: { status: 429, message: 'Too many requests.' },
  internal_error: { status: 500, message: 'Internal error.' },
  database_unavailable: { status: 503, message: 'The database is unavailable; retry later.' },
  shutting_down: { status: 503, message: 'This node is shutting down; retry on another.' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERRORS;

export class KiteError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. Retry-After on a 429. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, headers: Record<string, string> = {}) {
    super(message ?? ERRORS[code].message);
    this.name = 'KiteError';
    this.code = code;
    this.status = ERRORS[code].status;
    this.headers = headers;
  }
}

/** Postgres/pg error codes and socket errors that mean "the database is not there right now". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH',
  '57P01', '57P02', '57P03', '57P04', // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped
  '08000', '08003', '08006', '08001', '08004', // connection exceptions
  '53300', // too_many_connections
  // Refused at connect time by the server itself: the database is gone or renamed (3D000), or our
  // credentials no longer work (28P01, 28000). Nothing a client's request did; it may come back.
  '3D000', '28P01', '28000',
]);

export function isDatabaseUnavailable(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.has(code)) return true;
  const message = String((err as { message?: unknown }).message ?? '');
  // 55000 (object_not_in_prerequisite_state) is too broad a code; at connect time its message
  // says the database takes no connections (ALTER DATABASE … ALLOW_CONNECTIONS false).
  return /Connection terminated|timeout exceeded when trying to connect|connection timeout|Query read timeout|Client has encountered a connection error|database unavailable|is not currently accepting connections|^timeout expired$/i.test(message);
}

/**
 * Postgres refused a value of the request itself: a data exception (class 22: a NUL character, an
 * invalid Unicode escape, …) or a program limit (class 54: a dedup key too long to index, data
 * nested too deeply). The client sent something Kite cannot store: a 400, never retried by a
 * provider as a 500 would be.
 */
export function isRefusedValue(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^(22|54)[0-9A-Z]{3}$/.test(code);
}

/** The one way to turn anything caught into a KiteError; an internal error keeps what caused it (for the log). */
export function coerceError(err: unknown): KiteError {
  if (err instanceof KiteError) return err;
  if (isDatabaseUnavailable(err)) return new KiteError('database_unavailable');
  if (isRefusedValue(err)) {
    return new KiteError('invalid_input', `A value in the request cannot be stored: ${String((err as Error).message).slice(0, 200)}.`);
  }
  return Object.assign(new KiteError('internal_error'), { cause: err });
}
