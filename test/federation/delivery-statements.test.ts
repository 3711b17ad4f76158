/**
 * The peer actor's statements that find deliveries by ID (the mark, and the re-read of a retried
 * batch) on a real database with a realistic outbox: history delivered, a queue pending for many
 * peers, under `plan_cache_mode = force_generic_plan`: the plan made without the values, which the
 * statements had while they were named (they are planned at every execution now, see
 * delivery-statement-staleness.test.ts). Written with `status = 'pending'`, that plan ANDed a scan
 * of the whole queue index (every pending delivery of every peer) with the primary key lookup: 210
 * buffers to mark one event with 1,000 peers.
 * Counting the queue index's scans inside the transaction (pg_stat_get_xact_numscans) tells the
 * plans apart without timing.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MARK_DELIVERED } from '../../src/federation/delivered-marks.js';
import { MARK, ROWS_BY_ID } from '../../src/federation/peer-delivery.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { insertPeerRow } from '../support/outbox-rows.js';

let db: TestDatabase;
const peerId = randomUUID();
const otherPeerId = randomUUID();
const FENCE = 7;

beforeAll(async () => {
  db = await createTestDatabase();
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('acme') RETURNING id::int AS id`);
  const teamId = team!.id;
  for (const [id, instance] of [[peerId, 'kite-b'], [otherPeerId, 'kite-c']] as const) {
    await insertPeerRow(db.query, { id, teamId, instanceId: instance, scopes: ['stripe.*'] });
  }
  await db.query(`INSERT INTO peer_leases (peer_id, node_id, fence, expires_at) VALUES ($1, 'node-1', $2, now() + interval '1 hour')`, [peerId, FENCE]);
  // 24,000 events: the first 20,000 delivered long ago (history), the rest pending, half of them
  // for another peer.
  await db.query(
    `INSERT INTO events (team_id, seq, source, id, type, time, event)
     SELECT $1, g, '/s', 'e' || g, 'stripe.charge', now(), json_build_object('specversion', '1.0', 'id', 'e' || g, 'source', '/s', 'type', 'stripe.charge')
       FROM generate_series(1, 24000) g`,
    [teamId],
  );
  await db.query(
    `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status)
     SELECT CASE WHEN g > 22000 THEN $3::uuid ELSE $1::uuid END, $2, g, 'e' || g, '/s', 'stripe.charge', CASE WHEN g <= 20000 THEN 'delivered' ELSE 'pending' END
       FROM generate_series(1, 24000) g`,
    [peerId, teamId, otherPeerId],
  );
  // Not analyzed, as the tables are after the migrations until autovacuum's first ANALYZE (and as
  // the queue is whenever it grew since the last one): the planner takes the queue index for a
  // few pages, which is when the old plan ANDed it in.
});

afterAll(async () => {
  await db?.drop();
});

/** Runs `body` in a transaction that plans every named statement generically; rolls it back. */
async function withGenericPlans<T>(body: (client: pg.Client) => Promise<T>): Promise<{ result: T; queueIndexScans: number }> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('SET LOCAL plan_cache_mode = force_generic_plan');
    const result = await body(client);
    const scans = await client.query<{ n: string }>(`SELECT pg_stat_get_xact_numscans('federation_deliveries_queue'::regclass) AS n`);
    await client.query('ROLLBACK');
    return { result, queueIndexScans: Number(scans.rows[0]!.n) };
  } finally {
    await client.end();
  }
}

async function pendingIds(peer: string, count: number): Promise<number[]> {
  const rows = await db.query<{ id: string }>(`SELECT id FROM federation_deliveries WHERE peer_id = $1 AND status = 'pending' ORDER BY event_seq LIMIT $2`, [peer, count]);
  return rows.map((r) => Number(r.id));
}

describe('the peer actor\'s statements by delivery ID', () => {
  it('delivery statements - marking a batch retried or held reads the rows by primary key, never the whole queue, and still skips rows no longer pending', async () => {
    const [first, second, third] = await pendingIds(peerId, 3);
    const { result, queueIndexScans } = await withGenericPlans(async (client) => {
      await client.query(`UPDATE federation_deliveries SET status = 'delivered' WHERE id = $1`, [third]);
      const answers = [];
      for (const [ids, status] of [[[first!], 'pending'], [[second!, third!], 'dead_lettered']] as const) {
        answers.push((await client.query({ ...MARK, values: [ids, status, 500, 'HTTP 500', false, peerId, FENCE] })).rows[0]);
      }
      const rows = await client.query<{ status: string; attempts: number }>(`SELECT status, attempts FROM federation_deliveries WHERE id = ANY ($1) ORDER BY id`, [[first, second, third]]);
      return { answers, rows: rows.rows };
    });
    expect(queueIndexScans).toBe(0);
    expect(result.answers).toEqual([{ owned: 1, marked: 1 }, { owned: 1, marked: 1 }]);
    // The delivered row was not pending: the mark left it alone.
    expect(result.rows).toEqual([{ status: 'pending', attempts: 1 }, { status: 'dead_lettered', attempts: 1 }, { status: 'delivered', attempts: 0 }]);
  });

  it('delivery statements - marking delivered batches of several peers reads the rows by primary key, never the whole queue', async () => {
    const mine = await pendingIds(peerId, 2);
    const others = await pendingIds(otherPeerId, 2);
    const { result, queueIndexScans } = await withGenericPlans(async (client) => {
      const answer = await client.query({
        ...MARK_DELIVERED,
        // The other peer has no lease: its mark is refused, this one's goes through.
        values: [[peerId, otherPeerId], [FENCE, FENCE], [200, 200], [...mine, ...others], [1, 1, 2, 2]],
      });
      const statuses = await client.query<{ status: string }>(`SELECT status FROM federation_deliveries WHERE id = ANY ($1) ORDER BY id`, [[...mine, ...others]]);
      return { answer: answer.rows, statuses: statuses.rows.map((r) => r.status) };
    });
    expect(queueIndexScans).toBe(0);
    expect(result.answer).toEqual([{ n: 1, owned: true, marked: 2 }, { n: 2, owned: false, marked: 0 }]);
    expect(result.statuses).toEqual(['delivered', 'delivered', 'pending', 'pending']);
  });

  it('delivery statements - a stale fence marks nothing', async () => {
    const [id] = await pendingIds(peerId, 1);
    const { result } = await withGenericPlans(async (client) => (await client.query({ ...MARK, values: [[id], 'pending', 500, 'HTTP 500', false, peerId, FENCE + 1] })).rows[0]);
    expect(result).toEqual({ owned: 0, marked: 0 });
    expect(await pendingIds(peerId, 1)).toEqual([id]);
  });

  it('delivery statements - re-reading a retried batch reads its rows by primary key and only while all are pending', async () => {
    const ids = await pendingIds(peerId, 3);
    const { result, queueIndexScans } = await withGenericPlans(async (client) => {
      const reads = [];
      // Past the five custom plans, to the generic one, whatever plan_cache_mode says.
      for (let i = 0; i < 6; i++) reads.push((await client.query({ ...ROWS_BY_ID, values: [ids] })).rows.map((r: { id: string }) => Number(r.id)));
      await client.query(`UPDATE federation_deliveries SET status = 'delivered' WHERE id = $1`, [ids[1]]);
      const afterOneDelivered = (await client.query({ ...ROWS_BY_ID, values: [ids] })).rows.length;
      return { reads, afterOneDelivered };
    });
    expect(queueIndexScans).toBe(0);
    expect(result.reads).toEqual(Array.from({ length: 6 }, () => ids));
    expect(result.afterOneDelivered).toBe(2);
  });
});
