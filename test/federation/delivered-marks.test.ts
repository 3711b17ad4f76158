/**
 * The marks of delivered batches (delivered-marks.ts) on a real database: marks asked for together
 * go out in fewer statements, and each still marks exactly its own rows, only while its lease
 * carries its fence, and only rows still pending; the peers' delivered counters and per-minute
 * counts add up; a failed statement rejects only its own marks.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveredMarks } from '../../src/federation/delivered-marks.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';
import { insertEventsWithDeliveries, insertPeerRow } from '../support/outbox-rows.js';
import { countingPool, failingOncePool } from '../support/pool-wrappers.js';

let db: TestDatabase;
let pool: pg.Pool;
const peers = [randomUUID(), randomUUID(), randomUUID()];
const fences = [11, 12, 13];

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 4);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('marks') RETURNING id::int AS id`);
  for (const [i, id] of peers.entries()) {
    await insertPeerRow(db.query, { id, teamId: team!.id, instanceId: `peer-${i}` });
    await db.query(`INSERT INTO peer_leases (peer_id, node_id, fence, expires_at) VALUES ($1, 'node-1', $2, now() + interval '1 hour')`, [id, fences[i]]);
  }
  // 60 events; event n goes to peer n % 3, all pending.
  await insertEventsWithDeliveries(db.query, { teamId: team!.id, count: 60, peers });
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

async function pendingIds(peer: string, count: number): Promise<number[]> {
  const rows = await db.query<{ id: string }>(`SELECT id FROM federation_deliveries WHERE peer_id = $1 AND status = 'pending' ORDER BY event_seq LIMIT $2`, [peer, count]);
  return rows.map((r) => Number(r.id));
}

async function counters(): Promise<{ delivered: number[]; perMinute: number[] }> {
  const delivered = await db.query<{ delivered: string }>(`SELECT delivered FROM peers WHERE id = ANY ($1) ORDER BY array_position($1, id)`, [peers]);
  const minutes = await db.query<{ peer_id: string; n: string }>(`SELECT peer_id, sum(delivered) AS n FROM peer_delivery_minutes GROUP BY peer_id`);
  const perPeer = new Map(minutes.map((r) => [r.peer_id, Number(r.n)]));
  return { delivered: delivered.map((r) => Number(r.delivered)), perMinute: peers.map((p) => perPeer.get(p) ?? 0) };
}

describe('delivered marks', () => {
  it('federation - marks asked for together share statements, and each marks its own rows, counted once, with the peer\'s answer', async () => {
    const counting = countingPool(pool);
    const marks = new DeliveredMarks(counting.pool);
    const [p0, p1, p2] = peers as [string, string, string];
    const [a0, b0] = [await pendingIds(p0, 3), await pendingIds(p0, 6).then((ids) => ids.slice(3))];
    const a1 = await pendingIds(p1, 2);
    const a2 = await pendingIds(p2, 4);
    const before = await counters();
    const results = await Promise.all([
      marks.mark({ peerId: p0, fence: fences[0]!, ids: a0, statusCode: 200 }),
      marks.mark({ peerId: p1, fence: fences[1]!, ids: a1, statusCode: 202 }),
      marks.mark({ peerId: p2, fence: fences[2]!, ids: a2, statusCode: 200 }),
      marks.mark({ peerId: p0, fence: fences[0]!, ids: b0, statusCode: 200 }),
    ]);
    expect(results).toEqual([{ owned: true, marked: 3 }, { owned: true, marked: 2 }, { owned: true, marked: 4 }, { owned: true, marked: 3 }]);
    // Two went out at once; the two asked for meanwhile went together.
    expect(counting.statements).toBe(3);
    const rows = await db.query<{ id: string; status: string; attempts: number; last_status_code: number; delivered_at: Date | null }>(
      `SELECT id, status, attempts, last_status_code, delivered_at FROM federation_deliveries WHERE id = ANY ($1) ORDER BY id`,
      [[...a0, ...b0, ...a1, ...a2]],
    );
    expect(rows.every((r) => r.status === 'delivered' && r.attempts === 1 && r.delivered_at !== null)).toBe(true);
    expect(rows.filter((r) => r.last_status_code === 202).map((r) => Number(r.id)).sort()).toEqual([...a1].sort());
    const after = await counters();
    expect(after.delivered.map((n, i) => n - before.delivered[i]!)).toEqual([6, 2, 4]);
    expect(after.perMinute.map((n, i) => n - before.perMinute[i]!)).toEqual([6, 2, 4]);
    // Another peer's rows under a peer's mark are not its to mark.
    const stray = await pendingIds(p1, 1);
    expect(await marks.mark({ peerId: p0, fence: fences[0]!, ids: stray, statusCode: 200 })).toEqual({ owned: true, marked: 0 });
    expect(await pendingIds(p1, 1)).toEqual(stray);
  });

  it('federation - a stale fence marks nothing of its own while the other marks of its statement go through; rows no longer pending are left alone', async () => {
    const [p0, p1] = peers as [string, string];
    const stale = await pendingIds(p0, 2);
    const [held, fresh] = await pendingIds(p1, 2);
    await db.query(`UPDATE federation_deliveries SET status = 'dead_lettered' WHERE id = $1`, [held]);
    const before = await counters();
    const counting = countingPool(pool);
    const marks = new DeliveredMarks(counting.pool);
    // The first two go out alone (two statements in flight); these two then share the third.
    const first = [marks.mark({ peerId: p1, fence: fences[1]!, ids: [], statusCode: 200 }), marks.mark({ peerId: p1, fence: fences[1]!, ids: [], statusCode: 200 })];
    const results = await Promise.all([
      marks.mark({ peerId: p0, fence: fences[0]! + 100, ids: stale, statusCode: 200 }),
      marks.mark({ peerId: p1, fence: fences[1]!, ids: [held!, fresh!], statusCode: 200 }),
    ]);
    await Promise.all(first);
    expect(counting.statements).toBe(3);
    expect(results).toEqual([{ owned: false, marked: 0 }, { owned: true, marked: 1 }]);
    expect(await pendingIds(p0, 2)).toEqual(stale);
    const statuses = await db.query<{ status: string }>(`SELECT status FROM federation_deliveries WHERE id = ANY ($1) ORDER BY id`, [[held, fresh]]);
    expect(statuses.map((r) => r.status)).toEqual(['dead_lettered', 'delivered']);
    const after = await counters();
    expect(after.delivered.map((n, i) => n - before.delivered[i]!)).toEqual([0, 1, 0]);
  });

  it('federation - a failed statement rejects every mark in it, and the next marks go on', async () => {
    const flaky = failingOncePool(pool);
    const marks = new DeliveredMarks(flaky);
    const [, , p2] = peers as [string, string, string];
    const ids = await pendingIds(p2, 1);
    await expect(marks.mark({ peerId: p2, fence: fences[2]!, ids, statusCode: 200 })).rejects.toThrow('connection lost');
    expect(await pendingIds(p2, 1)).toEqual(ids);
    expect(await marks.mark({ peerId: p2, fence: fences[2]!, ids, statusCode: 200 })).toEqual({ owned: true, marked: 1 });
  });
});
