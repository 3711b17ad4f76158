/**
 * The pg pool, tuned so that a database that went away is noticed within a second instead of
 * hanging requests: short connect timeout, TCP keep-alive, and a statement timeout as a backstop.
 */
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// bigint columns (seq, ids) come back as JS numbers: they stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

export function createPool(url: string, logger: Logger, max = 16): Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max,
    connectionTimeoutMillis: 800,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 5_000,
    statement_timeout: 30_000,
    // A hung server (not a refused one) must not hold a connection forever: give up client-side.
    query_timeout: 5_000,
    application_name: 'kite',
  });
  // An idle client losing its connection must not crash the process; the pool drops it.
  pool.on('error', (err) => logger.warn({ err: err.message }, 'idle database connection lost'));
  return pool;
}

/** Run fn in a transaction on one client; rolls back on any error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
