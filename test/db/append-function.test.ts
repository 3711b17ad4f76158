/**
 * The append function (migration 0007) on a real database: its cost must not grow with the
 * outbox's history. Its plans are generic (planned once per connection, without the values), and
 * migration 0006 found the peers to wake with `federation_deliveries.event_seq > head`, a plan
 * that scanned every delivery ever stored on every append. Counting sequential scans of the
 * table inside the transaction (pg_stat_xact_user_tables) tells the plan apart without timing.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let teamId: number;
const peerId = randomUUID();

const APPEND = `SELECT ord, seq, duplicate
  FROM kite_append_events($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::json, 'kite-a', 'https://a.example/federation')`;

beforeAll(async () => {
  db = await createTestDatabase();
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('acme') RETURNING id::int AS id`);
  teamId = team!.id;
  await db.query(
    `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
     VALUES ($1, $2, 'kite-b', 'https://b.example', 'acme', '["stripe.*"]', 8, '{}', '{}', '{}', 'k1', 'k2')`,
    [peerId, teamId],
  );
  // History: 20,000 delivered rows, analyzed, as a long-running instance has (many more).
  await db.query(
    `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status)
     SELECT $1, $2, -g, 'old-' || g, '/old', 'stripe.old', 'delivered' FROM generate_series(1, 20000) g`,
    [peerId, teamId],
  );
  await db.query('ANALYZE federation_deliveries');
});

afterAll(async () => {
  await db?.drop();
});

function batch(prefix: string, types: string[]): unknown[] {
  const ids = types.map((_, i) => `${prefix}-${i}`);
  const events = types.map((type, i) => JSON.stringify({ specversion: '1.0', id: ids[i], source: '/s', type, data: { i } }));
  return [types.map(() => teamId), types.map(() => '/s'), ids, types, types.map(() => new Date().toISOString()), `[${events.join(',')}]`];
}

describe('the append function', () => {
  it('append - storing events never scans the outbox\'s history, and still wakes the peers that got deliveries', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    const client = new pg.Client({ connectionString: db.url });
    await Promise.all([listener.connect(), client.connect()]);
    try {
      await listener.query('LISTEN kite_federation');
      const woken = new Promise<string>((resolve) => listener.on('notification', (n) => resolve(n.payload ?? '')));
      await client.query('BEGIN');
      // Several calls: a plpgsql function's generic plan is the one used from the first call on.
      const answers = [];
      for (let call = 0; call < 6; call++) {
        answers.push((await client.query(APPEND, batch(`e${call}`, ['stripe.charge.succeeded', 'github.push']))).rows);
      }
      const [{ seq_scan: scans }] = (await client.query<{ seq_scan: string }>(
        `SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'federation_deliveries'`,
      )).rows as [{ seq_scan: string }];
      await client.query('COMMIT');

      expect(Number(scans)).toBe(0);
      expect(answers.flat().map((r) => [r.seq, r.duplicate])).toEqual(Array.from({ length: 12 }, (_, i) => [String(i + 1), false]));
      // Only the stripe events match the peer's scope: one delivery each, and one wake-up.
      const queued = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM federation_deliveries WHERE status = 'pending'`);
      expect(queued[0]!.n).toBe(6);
      expect(await woken).toBe(peerId);
    } finally {
      await Promise.all([listener.end(), client.end()]);
    }
  });

  it('append - an event whose keys are spelled with \\u escapes still has its provenance read', async () => {
    // `kitefedorigin` written as `\u006bitefedorigin`: the fast path (no `kitefed` in the text)
    // must not skip it, or an event could come back to the instance it started from.
    const event = '{"specversion":"1.0","id":"esc-1","source":"/s","type":"stripe.charge.refunded","\\u006bitefedorigin":"kite-b","data":{}}';
    const rows = await db.query<{ seq: string }>(APPEND, [[teamId], ['/s'], ['esc-1'], ['stripe.charge.refunded'], [new Date().toISOString()], `[${event}]`]);
    expect(rows).toHaveLength(1);
    const deliveries = await db.query(`SELECT 1 FROM federation_deliveries WHERE event_id = 'esc-1'`);
    expect(deliveries).toEqual([]); // its origin is the peer itself: not sent back
    const control = '{"specversion":"1.0","id":"esc-2","source":"/s","type":"stripe.charge.refunded","data":{"note":"caf\\u00e9"}}';
    await db.query(APPEND, [[teamId], ['/s'], ['esc-2'], ['stripe.charge.refunded'], [new Date().toISOString()], `[${control}]`]);
    expect(await db.query(`SELECT 1 FROM federation_deliveries WHERE event_id = 'esc-2'`)).toHaveLength(1);
  });

  it('append - finding the peers of a batch costs per event, not per event × peer (300 exact peers and a wildcard one)', async () => {
    const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('many') RETURNING id::int AS id`);
    await db.query(
      `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
       SELECT gen_random_uuid(), $1, CASE WHEN g < 300 THEN 'exact-' || g ELSE 'wild' END, 'https://x.example', 'x',
              CASE WHEN g < 300 THEN jsonb_build_array('t.p' || g) ELSE '["t.*"]' END, 8, '{}', '{}', '{}', 'k1', 'k2'
         FROM generate_series(0, 300) g`,
      [team!.id],
    );
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query('BEGIN');
      const types = Array.from({ length: 50 }, (_, i) => `t.p${i * 6}`);
      const ids = types.map((_, i) => `many-${i}`);
      await client.query(APPEND, [types.map(() => team!.id), types.map(() => '/s'), ids, types, types.map(() => new Date().toISOString()),
        JSON.stringify(types.map((type, i) => ({ specversion: '1.0', id: ids[i], source: '/s', type })))]);
      const [stats] = (await client.query<{ idx_scan: string }>(
        `SELECT idx_scan FROM pg_stat_xact_user_tables WHERE relname = 'peer_scope_types'`,
      )).rows;
      const queued = (await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM federation_deliveries WHERE event_id LIKE 'many-%'`)).rows[0]!.n;
      await client.query('COMMIT');
      // Each event: its exact peer and the wildcard one.
      expect(queued).toBe(100);
      // One probe per event for its exact peers, one per (event, wildcard peer): about 100. A plan
      // that joined the other way round probed once per (peer, event): 15,000 and more.
      expect(Number(stats!.idx_scan)).toBeLessThanOrEqual(200);
    } finally {
      await client.end();
    }
  });
});
