/**
 * Real pools, seen through: for tests of code that batches its statements (queue-reader.ts,
 * delivered-marks.ts), how many statements it sent, or a first statement that fails as a lost
 * connection would.
 */
import type pg from 'pg';

/** `pool`, counting the statements sent through it in `counter.statements`. */
export function countingPool(pool: pg.Pool): { pool: pg.Pool; readonly statements: number } {
  const counter = {
    statements: 0,
    pool: { query: (config: pg.QueryConfig) => (counter.statements++, pool.query(config)) } as unknown as pg.Pool,
  };
  return counter;
}

/** `pool`, whose first statement fails with "connection lost" without reaching the database. */
export function failingOncePool(pool: pg.Pool): pg.Pool {
  let fail = true;
  return {
    query: (config: pg.QueryConfig) => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error('connection lost'));
      }
      return pool.query(config);
    },
  } as unknown as pg.Pool;
}
