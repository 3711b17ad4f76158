/**
 * The queue reader (queue-reader.ts) on a real database: reads asked for together go out in fewer
 * statements, and each still gets exactly its own peer's head of queue, in event seq order, with
 * its limit, its floor (`afterSeq`) and its excluded rows applied.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QueueReader } from '../../src/federation/queue-reader.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';
import { insertEventsWithDeliveries, insertPeerRow } from '../support/outbox-rows.js';
import { countingPool, failingOncePool } from '../support/pool-wrappers.js';

let db: TestDatabase;
let pool: pg.Pool;
const peers = [randomUUID(), randomUUID(), randomUUID()];
/** Delivery IDs of each peer's pending rows, in seq order. */
const pendingIds = new Map<string, number[]>();

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 4);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('reader') RETURNING id::int AS id`);
  for (const [i, id] of peers.entries()) {
    await insertPeerRow(db.query, { id, teamId: team!.id, instanceId: `peer-${i}` });
  }
  // 30 events; event n goes to peer n % 3; every fifth delivery is already delivered.
  await insertEventsWithDeliveries(db.query, { teamId: team!.id, count: 30, peers, deliveredEvery: 5 });
  for (const id of peers) {
    const mine = await db.query<{ id: string }>(`SELECT id FROM federation_deliveries WHERE peer_id = $1 AND status = 'pending' ORDER BY event_seq`, [id]);
    pendingIds.set(id, mine.map((r) => Number(r.id)));
  }
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('queue reader', () => {
  it('federation - reads asked for together share statements, and each gets its own peer\'s rows with its limit, floor and exclusions', async () => {
    const counting = countingPool(pool);
    const reader = new QueueReader(counting.pool);
    const [p0, p1, p2] = peers as [string, string, string];
    const ids0 = pendingIds.get(p0)!;
    const ids1 = pendingIds.get(p1)!;
    const ids2 = pendingIds.get(p2)!;
    const seqOf = async (id: number) => Number((await db.query<{ event_seq: string }>('SELECT event_seq FROM federation_deliveries WHERE id = $1', [id]))[0]!.event_seq);
    const floor1 = await seqOf(ids1[2]!);
    const reads = await Promise.all([
      reader.read({ peerId: p0, limit: 3, exclude: [], afterSeq: 0 }),
      reader.read({ peerId: p1, limit: 100, exclude: [], afterSeq: floor1 }),
      reader.read({ peerId: p2, limit: 2, exclude: [ids2[0]!], afterSeq: 0 }),
      reader.read({ peerId: p0, limit: 100, exclude: ids0.slice(0, 2), afterSeq: 0 }),
      reader.read({ peerId: randomUUID(), limit: 10, exclude: [], afterSeq: 0 }),
      reader.read({ peerId: p2, limit: 1, exclude: [], afterSeq: 0 }),
    ]);
    const ids = reads.map((rows) => rows.map((r) => Number(r.id)));
    expect(ids).toEqual([ids0.slice(0, 3), ids1.slice(3), ids2.slice(1, 3), ids0.slice(2), [], ids2.slice(0, 1)]);
    // Rows come with their event's stored text, in seq order.
    expect(reads[0]!.map((r) => JSON.parse(r.json).id)).toEqual(reads[0]!.map((r) => r.event_id));
    for (const rows of reads) expect(rows.map((r) => Number(r.event_seq))).toEqual([...rows.map((r) => Number(r.event_seq))].sort((a, b) => a - b));
    // Two went out at once; the four asked for meanwhile went together.
    expect(counting.statements).toBe(3);
  });

  it('federation - a statement asks for at most 2,000 rows: large reads waiting together are split', async () => {
    const counting = countingPool(pool);
    const reader = new QueueReader(counting.pool);
    const [p0] = peers as [string];
    const reads = await Promise.all(Array.from({ length: 6 }, () => reader.read({ peerId: p0, limit: 1_000, exclude: [], afterSeq: 0 })));
    for (const rows of reads) expect(rows.map((r) => Number(r.id))).toEqual(pendingIds.get(p0));
    // Two at once, then the four waiting two by two (2,000 rows each).
    expect(counting.statements).toBe(4);
  });

  it('federation - a failed statement rejects every read in it, and the next reads go on', async () => {
    const flaky = failingOncePool(pool);
    const reader = new QueueReader(flaky);
    const [p0] = peers as [string];
    await expect(reader.read({ peerId: p0, limit: 1, exclude: [], afterSeq: 0 })).rejects.toThrow('connection lost');
    expect((await reader.read({ peerId: p0, limit: 1, exclude: [], afterSeq: 0 })).map((r) => Number(r.id))).toEqual(pendingIds.get(p0)!.slice(0, 1));
  });
});
