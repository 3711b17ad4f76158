/**
 * The shared inbound buckets (inbound-buckets.ts, migration 0009) on a real database: a new bucket
 * starts full, takes go into debt, several peers' takes share a statement and each gets its own
 * peer's level, the same peer twice in one statement pays for both, and a bucket refills from the
 * database's clock up to its burst (the clock is moved by moving the row's refill time back).
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresInboundBuckets } from '../../src/federation/inbound-buckets.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';
import { insertPeerRow } from '../support/outbox-rows.js';
import { countingPool } from '../support/pool-wrappers.js';

let db: TestDatabase;
let pool: pg.Pool;
const peers = [randomUUID(), randomUUID()];
// Slow enough that the test's own run time refills nothing measurable, even on a loaded machine.
const LIMIT = { perSecond: 0.002, burst: 10 };

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 4);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('inbound') RETURNING id::int AS id`);
  for (const [i, id] of peers.entries()) await insertPeerRow(db.query, { id, teamId: team!.id, instanceId: `peer-${i}` });
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('shared inbound buckets', () => {
  it('federation - a new bucket starts full, takes go into debt, and takes asked together share a statement with each peer\'s own level', async () => {
    const counting = countingPool(pool);
    const buckets = new PostgresInboundBuckets(counting.pool);
    const [p0, p1] = peers as [string, string];
    const levels = await Promise.all([
      buckets.take(p0, LIMIT, 4),
      buckets.take(p1, LIMIT, 1),
      buckets.take(p0, LIMIT, 12),
      buckets.take(p1, LIMIT, 2),
    ]);
    // Two went out alone; the other two together. Statements in flight at once may take a row's
    // lock in either order, so each answer is the level after the takes committed before it: the
    // lowest answer per peer is its level after all of them.
    expect(counting.statements).toBe(3);
    expect(Math.min(levels[0]!, levels[2]!)).toBeCloseTo(10 - 16, 2);
    expect(Math.min(levels[1]!, levels[3]!)).toBeCloseTo(10 - 3, 2);
    expect([levels[0], levels[2]].map((l) => Math.round(l!)).sort((a, b) => a - b)).toEqual(levels[0]! < levels[2]! ? [-6, -2] : [-6, 6]);
  });

  it('federation - the same peer twice in one statement pays for both, and a bucket refills at its rate up to its burst', async () => {
    const [p0] = peers as [string];
    await db.query(`UPDATE peer_inbound_buckets SET tokens = 0, refilled_at = clock_timestamp() - interval '3000 seconds' WHERE peer_id = $1`, [p0]);
    const counting = countingPool(pool);
    const buckets = new PostgresInboundBuckets(counting.pool);
    // Two go out alone; the last two share the third statement.
    const levels = await Promise.all([1, 1, 1, 1].map((n) => buckets.take(p0, LIMIT, n)));
    expect(counting.statements).toBe(3);
    // 3,000 s at 0.002/s refilled 6; then 4 taken. The shared statement answers the level after both
    // of its takes; the two alone answer 5 and 4, in whichever order they took the row.
    expect(levels[3]).toBe(levels[2]);
    expect(Math.min(...levels)).toBeCloseTo(6 - 4, 2);
    for (const level of levels) expect([5, 4, 3, 2]).toContain(Math.round(level));
    await db.query(`UPDATE peer_inbound_buckets SET refilled_at = clock_timestamp() - interval '100000 seconds' WHERE peer_id = $1`, [p0]);
    expect(await buckets.take(p0, LIMIT, 0)).toBe(LIMIT.burst);
  });
});
