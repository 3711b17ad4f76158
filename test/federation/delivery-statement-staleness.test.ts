/**
 * The marks and the re-read of a retried batch find deliveries by ID, `id = ANY ($1)`. While the
 * outbox is a few pages, a sequential scan is the cheaper plan for that, and a named statement
 * keeps the generic plan it made then for the life of its connection (until an ANALYZE of the
 * table): on a fresh database every mark went on scanning the whole outbox as it grew. In the
 * isolation bench (100 peers, 1,000 ev/s, 45 s on a fresh database) each mark read 275 buffers
 * and the marks were the largest user of A's Postgres. So both statements are planned at every
 * execution, with the table's size of the moment. This runs the statements as Kite does (on one
 * connection, more than five times while the outbox is small: past the point where Postgres
 * switches a named statement to its generic plan), grows the outbox, and counts the outbox's
 * sequential scans inside the transaction.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MARK_DELIVERED } from '../../src/federation/delivered-marks.js';
import { MARK, ROWS_BY_ID } from '../../src/federation/peer-delivery.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { insertPeerRow } from '../support/outbox-rows.js';

let db: TestDatabase;
let client: pg.Client;
const peerId = randomUUID();
const FENCE = 3;
let teamId: number;

beforeAll(async () => {
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

async function addDeliveries(from: number, to: number): Promise<void> {
  await client.query(
    `INSERT INTO events (team_id, seq, source, id, type, time, event)
     SELECT $1, g, '/s', 'e' || g, 'stripe.charge', now(), json_build_object('specversion', '1.0', 'id', 'e' || g, 'source', '/s', 'type', 'stripe.charge')
       FROM generate_series($2::bigint, $3::bigint) g`,
    [teamId, from, to],
  );
  await client.query(
    `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type)
     SELECT $1, $2, g, 'e' || g, '/s', 'stripe.charge' FROM generate_series($3::bigint, $4::bigint) g`,
    [peerId, teamId, from, to],
  );
}

async function pendingIds(count: number): Promise<number[]> {
  const result = await client.query<{ id: string }>(`SELECT id FROM federation_deliveries WHERE status = 'pending' ORDER BY event_seq LIMIT $1`, [count]);
  return result.rows.map((r) => Number(r.id));
}

async function outboxSeqScans(): Promise<number> {
  const result = await client.query<{ n: string }>(`SELECT seq_scan AS n FROM pg_stat_xact_user_tables WHERE relname = 'federation_deliveries'`);
  return Number(result.rows[0]?.n ?? 0);
}

describe('the peer actor\'s statements by delivery ID, as the outbox grows', () => {
  it('delivery statements - marks and a re-read on a grown outbox do not scan it, whatever ran while it was small', async () => {
    await client.query('BEGIN');
    try {
      const [team] = (await client.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('acme') RETURNING id::int AS id`)).rows;
      teamId = team!.id;
      await insertPeerRow((sql, params) => client.query(sql, params), { id: peerId, teamId, instanceId: 'kite-b', scopes: ['stripe.*'] });
      await client.query(`INSERT INTO peer_leases (peer_id, node_id, fence, expires_at) VALUES ($1, 'node-1', $2, now() + interval '1 hour')`, [peerId, FENCE]);
      // A fresh outbox: 100 deliveries, of which the actor marks 10 and re-reads
      // a batch 10 times, one at a time, as it would.
      await addDeliveries(1, 100);
      for (let i = 0; i < 10; i++) {
        const [id] = await pendingIds(1);
        await client.query({ ...ROWS_BY_ID, values: [[id]] });
        const retried = await client.query({ ...MARK, values: [[id], 'pending', 500, 'HTTP 500', false, peerId, FENCE] });
        const delivered = await client.query({ ...MARK_DELIVERED, values: [[peerId], [FENCE], [200], [id], [1]] });
        expect([retried.rows[0], delivered.rows[0]]).toEqual([{ owned: 1, marked: 1 }, { n: 1, owned: true, marked: 1 }]);
      }
      await addDeliveries(101, 60_000);

      const before = await outboxSeqScans();
      const ids = await pendingIds(2);
      const reread = await client.query({ ...ROWS_BY_ID, values: [ids] });
      const retried = await client.query({ ...MARK, values: [ids, 'pending', 500, 'HTTP 500', false, peerId, FENCE] });
      const delivered = await client.query({ ...MARK_DELIVERED, values: [[peerId], [FENCE], [200], ids, [1, 1]] });
      const after = await outboxSeqScans();

      expect(reread.rows.map((r: { id: string }) => Number(r.id))).toEqual(ids);
      expect([retried.rows[0], delivered.rows[0]]).toEqual([{ owned: 1, marked: 2 }, { n: 1, owned: true, marked: 2 }]);
      expect(after - before).toBe(0);
    } finally {
      await client.query('ROLLBACK');
    }
  });
});
