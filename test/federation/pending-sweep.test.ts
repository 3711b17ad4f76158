/**
 * The pending sweep (pending-sweep.ts) on a real database: of the node's idle actors, exactly
 * those whose peer has a pending delivery are told they missed a wake-up; delivered or held
 * deliveries, and peers whose actors are busy, are left alone.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PendingSweep, type SweptActors } from '../../src/federation/pending-sweep.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let pool: pg.Pool;
const peer = { pending: randomUUID(), delivered: randomUUID(), held: randomUUID(), busy: randomUUID(), empty: randomUUID() };

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 2);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('sweep') RETURNING id::int AS id`);
  let n = 0;
  for (const id of Object.values(peer)) {
    await db.query(
      `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
       VALUES ($1, $2, $3, 'https://b.example', 'sweep', '["x.*"]', 3, '{}', '{}', '{}', 'k1', 'k2')`,
      [id, team!.id, `peer-${n++}`],
    );
  }
  const rows: [string, string][] = [[peer.pending, 'delivered'], [peer.pending, 'pending'], [peer.delivered, 'delivered'], [peer.held, 'dead_lettered'], [peer.busy, 'pending']];
  for (const [i, [peerId, status]] of rows.entries()) {
    await db.query(
      `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status) VALUES ($1, $2, $3, $4, '/s', 'x.y', $5)`,
      [peerId, team!.id, i + 1, `e${i}`, status],
    );
  }
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('pending sweep', () => {
  it('federation - the sweep wakes exactly the idle actors whose peer has pending deliveries', async () => {
    const woken: string[] = [];
    const actors: SweptActors = {
      idlePeers: () => [peer.pending, peer.delivered, peer.held, peer.empty],
      wakeupMissed: (id) => woken.push(id),
    };
    const sweep = new PendingSweep(pool, actors, createLogger('silent'), 60_000);
    expect(await sweep.sweep()).toEqual([peer.pending]);
    expect(woken).toEqual([peer.pending]);
  });
});
