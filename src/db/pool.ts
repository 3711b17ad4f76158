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
  // Nor a client that loses it while the pool ends it (shutdown with a query still running: the
  // pool has already removed its own listener then). The query in flight is rejected anyway.
  pool.on('connect', (client) => {
    client.on('error', (err) => logger.debug({ err: err.message }, 'database connection lost'));
  });
  return pool;
}

/**
 * Checks a client out of the pool with an 'error' listener for as long as it is held: pg emits
 * 'error' on a client whose connection dies, and a checked-out client has no pool listener, so
 * without one a lost database would crash the process instead of failing the query in flight.
 * The returned release() removes the listener; pass an error to destroy a broken client.
 */
export async function checkOut(pool: Pool): Promise<{ client: PoolClient; release: (err?: Error) => void }> {
  const client = await pool.connect();
  const swallow = () => {}; // the query in flight is rejected with the same error
  client.on('error', swallow);
  return {
    client,
    release: (err) => {
      client.off('error', swallow);
      client.release(err);
    },
  };
}

/** Run fn in a transaction on one client; rolls back on any error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const { client, release } = await checkOut(pool);
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    release();
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    release(isBrokenConnection(err) ? (err as Error) : undefined);
    throw err;
  }
}

/**
 * A statement that failed on the server (it has a SQLSTATE code) leaves a usable connection; a
 * lost or timed-out one must not go back to the pool.
 */
export function isBrokenConnection(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code !== 'string' || code.startsWith('08') || code.startsWith('57P');
}
