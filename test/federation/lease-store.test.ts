/**
 * The lease SQL (lease-store.ts) on a real database, with several nodes claiming at once: as when
 * a node dies and the others take its peers over, or a cluster starts.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseStore } from '../../src/federation/lease-store.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let pool: pg.Pool;
const PEERS = 400;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 8);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('leases') RETURNING id::int AS id`);
  await db.query(
    `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
     SELECT gen_random_uuid(), $1, 'peer-' || g, 'https://b.example', 'leases', '["x.*"]', 3, '{}', '{}', '{}', 'k1', 'k2'
       FROM generate_series(1, $2::int) g`,
    [team!.id, PEERS],
  );
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

describe('lease store', () => {
  it('cluster - nodes claiming the same lapsed leases at once never deadlock, and each lease gets one owner', async () => {
    for (let round = 0; round < 10; round++) {
      // Every lease lapsed, held by a node that died.
      await db.query('DELETE FROM peer_leases');
      await db.query(
        `INSERT INTO peer_leases (peer_id, node_id, fence, expires_at)
         SELECT id, 'dead-node', nextval('peer_lease_fence'), now() - interval '1 second' FROM peers`,
      );
      const nodes = Array.from({ length: 4 }, () => new LeaseStore(pool, `node-${randomUUID()}`, 60_000));
      const claimed = await Promise.all(nodes.map((n) => n.claim(PEERS, [])));
      const all = claimed.flat().map((l) => l.peerId);
      expect(new Set(all).size).toBe(all.length);
      expect(all.length).toBe(PEERS);
    }
  });
});
