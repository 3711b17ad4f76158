/**
 * The team row lock that federation's writes share with appends.
 *
 * `kite_append_events` (migrations 0003–0007) locks each team's row (`FOR NO KEY UPDATE`) before
 * its outbox reads the team's peers and enqueues their deliveries, and holds it until commit.
 * A write that changes what an append would read or enqueue (a peer's state, its held or
 * discarded deliveries) takes the same lock first, for two reasons:
 * - an append commits entirely before it (and its rows are held, released or discarded with the
 *   rest) or entirely after it (and sees the new state), never in between;
 * - it and the append function take their locks in the same order, team row first, so they never
 *   wait on each other in a cycle (a deadlock).
 */
import type { PoolClient } from '../db/pool.js';

/** Locks the team's row until `client`'s transaction ends. Call it before any other lock. */
export async function lockTeamRow(client: PoolClient, teamId: number): Promise<void> {
  await client.query('SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE', [teamId]);
}
