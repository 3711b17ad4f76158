/**
 * Kite could not use the database that DATABASE_URL names at start (nothing listening, no such
 * database, credentials refused): one line naming the variable and where it points, never the
 * password, instead of pg's bare `connect ECONNREFUSED 127.0.0.1:5999` (contract §2: bad
 * configuration names its variable).
 */
import { isDatabaseUnavailable } from '../errors.js';

export function databaseUrlError(err: unknown, databaseUrl: string): unknown {
  if (!isDatabaseUnavailable(err)) return err;
  const url = URL.parse(databaseUrl);
  const where = url ? `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname || ''}` : 'the database';
  const wrapped = new Error(`DATABASE_URL: cannot use the database at ${where}: ${(err as Error).message}`, { cause: err });
  return Object.assign(wrapped, { code: (err as { code?: unknown }).code });
}
