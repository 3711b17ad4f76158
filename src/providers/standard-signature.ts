/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com), on node:crypto.
 *
 * Headers `webhook-id`, `webhook-timestamp` (unix seconds) and `webhook-signature` (space-separated
 * `v1,<base64 hmac-sha256>` entries, any one of which may match). The key is the base64 part of a
 * `whsec_<base64>` secret; the signed content is `<id>.<timestamp>.<raw body>`. Verification takes
 * several secrets and signing several keys because federation rotates keys without downtime: for
 * 24 hours it verifies with the current and the previous inbound key and signs with both outbound.
 */
import { KiteError } from '../errors.js';
import { hmacSha256Base64, safeEqual, type HmacInput } from './hmac.js';

export const STANDARD_TOLERANCE_SECONDS = 300;

const SECRET_PREFIX = 'whsec_';
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{2,3})?$/;
const TIMESTAMP = /^\d{1,12}$/;

/** `whsec_` followed by non-empty standard base64 (padding optional, as Svix secrets omit it). */
export function isStandardSecret(secret: string): boolean {
  if (!secret.startsWith(SECRET_PREFIX)) return false;
  const encoded = secret.slice(SECRET_PREFIX.length);
  return encoded.length > 0 && BASE64.test(encoded);
}

function secretKey(secret: string): Buffer {
  if (!isStandardSecret(secret)) throw new Error('not a whsec_ secret');
  return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
}

function signature(key: Buffer, id: string, timestamp: string, body: HmacInput): string {
  return hmacSha256Base64(key, [id, '.', timestamp, '.', body]);
}

/**
 * Throws KiteError `invalid_signature` unless the request carries all three headers, a timestamp
 * within 300 s of `nowSeconds` either way, and a `v1` signature made with one of `secrets`.
 * Secrets that are not `whsec_…` are skipped rather than thrown on, so a malformed stored key
 * reads as "no key verifies", never as a 500.
 */
export function verifyStandardSignature(
  headers: Readonly<Record<string, string>>,
  body: Buffer,
  secrets: readonly string[],
  nowSeconds: number,
): void {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  const header = headers['webhook-signature'];
  if (!id || !timestamp || !header) throw new KiteError('invalid_signature', 'Missing webhook-id, webhook-timestamp or webhook-signature header.');
  if (!TIMESTAMP.test(timestamp)) throw new KiteError('invalid_signature', 'webhook-timestamp is not unix seconds.');
  // Whole seconds, as the providers' own libraries count: a timestamp exactly 300 s old is in.
  if (Math.abs(Math.floor(nowSeconds) - Number(timestamp)) > STANDARD_TOLERANCE_SECONDS) {
    throw new KiteError('invalid_signature', 'webhook-timestamp is more than 300 seconds from now.');
  }
  const offered: string[] = [];
  for (const entry of header.split(' ')) {
    if (entry.startsWith('v1,')) offered.push(entry.slice(3));
  }
  for (const secret of secrets) {
    if (!isStandardSecret(secret)) continue;
    const expected = signature(secretKey(secret), id, timestamp, body);
    // Every offered entry is compared, matched or not, so timing says nothing about which one.
    let match = false;
    for (const candidate of offered) match = safeEqual(expected, candidate) || match;
    if (match) return;
  }
  throw new KiteError('invalid_signature');
}

/** The `webhook-signature` header value: one `v1,<base64>` entry per key, space separated. */
export function signStandard(
  secret: string | readonly string[],
  id: string,
  timestampSeconds: number,
  body: HmacInput,
): string {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  const timestamp = String(Math.floor(timestampSeconds));
  return secrets.map((s) => 'v1,' + signature(secretKey(s), id, timestamp, body)).join(' ');
}
