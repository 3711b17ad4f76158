/**
 * Generating and hashing bearer credentials. Keys are 256 random bits, so a plain SHA-256 is a
 * safe and cheap way to store them (no password-style stretching needed), and a hash lookup is
 * an index probe.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

export function generateApiKey(): string {
  return `kite_${randomBytes(32).toString('base64url')}`;
}

export function generateAdminToken(): string {
  return `kite_admin_${randomBytes(32).toString('base64url')}`;
}

export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

export function sameHash(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The bearer token from `Authorization: Bearer …`, else from `?token=` (for WebSocket clients that cannot set headers). */
export function bearerToken(headers: Readonly<Record<string, string>>, query?: URLSearchParams): string | undefined {
  const header = headers['authorization'];
  if (header) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? match[1] : undefined;
  }
  return query?.get('token') ?? undefined;
}
