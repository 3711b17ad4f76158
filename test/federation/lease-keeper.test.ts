/**
 * The lease keeper (lease-keeper.ts) on a real database, with a recording holder in place of the
 * supervisor: a failure after the heartbeat (here, one peer's actor failing to start) must not
 * stop the actors whose leases were just renewed, as if the database were gone.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaseKeeper, type LeaseHolder } from '../../src/federation/lease-keeper.js';
import { LeaseStore, type HeldLease } from '../../src/federation/lease-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let pool: pg.Pool;
let peerIds: string[];

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createTestPool(db.url, 4);
  const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('keeper') RETURNING id::int AS id`);
  const rows = await db.query<{ id: string }>(
    `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
     SELECT gen_random_uuid(), $1, 'peer-' || g, 'https://b.example', 'keeper', '["x.*"]', 3, '{}', '{}', '{}', 'k1', 'k2'
       FROM generate_series(1, 3) g RETURNING id`,
    [team!.id],
  );
  peerIds = rows.map((r) => r.id).sort();
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

/** Runs actors in a set; `failOnce` makes the first start of that peer's actor throw. */
class RecordingHolder implements LeaseHolder {
  readonly running = new Set<string>();
  readonly stopped: string[] = [];
  private readonly waiters: (() => void)[] = [];

  constructor(private failOnce: string | undefined) {}

  async acquired(lease: HeldLease): Promise<boolean> {
    if (lease.peerId === this.failOnce) {
      this.failOnce = undefined;
      throw new Error('could not load the peer');
    }
    this.running.add(lease.peerId);
    this.waiters.splice(0).forEach((wake) => wake());
    return true;
  }

  async relinquish(peerId: string): Promise<void> {
    this.running.delete(peerId);
    this.stopped.push(peerId);
  }

  /** Resolves once `count` actors run. */
  async runningCount(count: number): Promise<void> {
    while (this.running.size < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
}

describe('lease keeper', () => {
  it('cluster - a peer whose actor fails to start is claimed again at the next cycle, and the other actors keep running', async () => {
    const flaky = peerIds[1]!;
    const holder = new RecordingHolder(flaky);
    const keeper = new LeaseKeeper(new LeaseStore(pool, 'node-keeper', 60_000), holder, createLogger('silent'), 50);
    try {
      await keeper.start();
      await holder.runningCount(3);
      expect([...holder.running].sort()).toEqual(peerIds);
      // Nothing was stopped on the way: the failure was one actor's, not the database's.
      expect(holder.stopped).toEqual([]);
      const leases = await db.query<{ peer_id: string; node_id: string }>('SELECT peer_id, node_id FROM peer_leases ORDER BY peer_id');
      expect(leases).toEqual(peerIds.map((id) => ({ peer_id: id, node_id: 'node-keeper' })));
    } finally {
      await keeper.stop();
    }
  });
});
