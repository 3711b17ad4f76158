/**
 * HMAC-SHA256 and constant-time comparison on node:crypto. Every provider verifies through these:
 * the native implementation is many times faster than the pure-JS hashing inside the providers'
 * own SDKs, and verification runs on every ingest request.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type HmacInput = string | Buffer;

/**
 * HMAC-SHA256 over the concatenation of `parts`. Parts are fed one by one so a signed content such
 * as `<timestamp>.<raw body>` never has to be copied into a new buffer.
 */
export function hmacSha256(key: HmacInput, parts: readonly HmacInput[]): Buffer {
  const hmac = createHmac('sha256', key);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

/** Lower-case hex digest, as Stripe and GitHub send it. */
export function hmacSha256Hex(key: HmacInput, parts: readonly HmacInput[]): string {
  return hmacSha256(key, parts).toString('hex');
}

/** Standard base64 digest (with padding), as Standard Webhooks sends it. */
export function hmacSha256Base64(key: HmacInput, parts: readonly HmacInput[]): string {
  return hmacSha256(key, parts).toString('base64');
}

/**
 * Constant-time equality. timingSafeEqual throws on a length mismatch, and a signature's length is
 * public anyway, so unequal lengths answer false at once. Strings are compared as UTF-8 bytes, so
 * an encoded signature is compared exactly as sent (no lenient decoding of trailing garbage).
 */
export function safeEqual(a: HmacInput, b: HmacInput): boolean {
  const left = typeof a === 'string' ? Buffer.from(a, 'utf8') : a;
  const right = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
  if (left.length !== right.length) return false;
  return timingSafeEqual(left, right);
}

/**
 * Why a shared secret cannot be used as an HMAC key, or null. Surrounding whitespace is refused
 * because it is almost always a copy-paste slip that would make every signature fail silently.
 */
export function hmacSecretProblem(secret: string): string | null {
  if (secret.length === 0) return 'The secret must not be empty.';
  if (secret.trim() !== secret) return 'The secret has leading or trailing whitespace.';
  return null;
}
