/**
 * The SQL of cluster mode (migration 0004): a node's heartbeat, and the claim, renewal and
 * release of peer leases. A lease's `fence` is a fresh number on every claim; the fenced writes
 * of a peer's actor (`FENCE_CHECK`) succeed only while the lease still carries it.
 */
import type { Pool } from '../db/pool.js';

export interface HeldLease {
  readonly peerId: string;
  readonly fence: number;
}

export interface Heartbeat {
  /** The leases of `held` that are still this node's, with the same fence, renewed. */
  readonly renewed: HeldLease[];
  /** Live nodes, this one included. */
  readonly liveNodes: number;
  /** Enabled, not deleted peers of every team: the work to share out. */
  readonly enabledPeers: number;
}

/** A fenced write found the lease taken over (or released): this actor must stop at once. */
export class LeaseLostError extends Error {
  constructor(peerId: string) {
    super(`peer ${peerId}: this node no longer holds its lease`);
    this.name = 'LeaseLostError';
  }
}

/**
 * A CTE that locks the lease row while it still carries the fence ($peer, $fence): a claim by
 * another node waits for the fenced write to commit, and a write after the claim finds nothing.
 */
export function fenceCheck(peerParam: number, fenceParam: number): string {
  return `lease AS (SELECT 1 FROM peer_leases WHERE peer_id = $${peerParam} AND fence = $${fenceParam} FOR SHARE)`;
}

export class LeaseStore {
  constructor(
    private readonly pool: Pool,
    readonly nodeId: string,
    private readonly ttlMs: number,
  ) {}

  /**
   * Announces this node for another `ttlMs`, renews the leases it holds (only those of peers
   * still enabled: a disabled peer's lease lapses even if its notification was missed) and reads
   * the cluster's shape, in one statement. Node rows dead for a day, and per-minute delivery
   * counts older than a day (migration 0005), are swept on the way.
   */
  async heartbeat(held: readonly HeldLease[]): Promise<Heartbeat> {
    const result = await this.pool.query<{ live_nodes: number; enabled_peers: number; renewed: HeldLease[] }>(
      `WITH node AS (
         INSERT INTO kite_nodes (node_id, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')
         ON CONFLICT (node_id) DO UPDATE SET expires_at = EXCLUDED.expires_at
       ), swept AS (
         DELETE FROM kite_nodes WHERE expires_at < now() - interval '1 day'
       ), swept_minutes AS (
         DELETE FROM peer_delivery_minutes WHERE minute < now() - interval '1 day'
       ), renewed AS (
         UPDATE peer_leases l SET expires_at = now() + $2 * interval '1 millisecond'
           FROM unnest($3::uuid[], $4::bigint[]) AS h (peer_id, fence), peers p
          WHERE l.peer_id = h.peer_id AND l.fence = h.fence AND l.node_id = $1
            AND p.id = l.peer_id AND p.enabled AND p.deleted_at IS NULL
         RETURNING l.peer_id, l.fence
       )
       SELECT (SELECT count(*) FROM kite_nodes WHERE expires_at > now() AND node_id <> $1)::int + 1 AS live_nodes,
              (SELECT count(*) FROM peers WHERE enabled AND deleted_at IS NULL)::int AS enabled_peers,
              (SELECT coalesce(json_agg(json_build_object('peerId', peer_id, 'fence', fence)), '[]') FROM renewed) AS renewed`,
      [this.nodeId, this.ttlMs, held.map((l) => l.peerId), held.map((l) => l.fence)],
    );
    const row = result.rows[0]!;
    return { liveNodes: row.live_nodes, enabledPeers: row.enabled_peers, renewed: row.renewed.map((l) => ({ peerId: l.peerId, fence: Number(l.fence) })) };
  }

  /**
   * Claims up to `limit` enabled peers whose lease is missing, expired, or an older one of this
   * node's (after it paused its actors), except those in `running`. Chosen at random so that
   * nodes claiming at once spread the peers; a lease another node claimed first is left alone.
   * The chosen rows are written in peer ID order: nodes claiming the same lapsed leases at once
   * (a node died, the cluster starts) then wait on each other instead of deadlocking.
   */
  async claim(limit: number, running: readonly string[]): Promise<HeldLease[]> {
    if (limit <= 0) return [];
    const result = await this.pool.query<{ peer_id: string; fence: number }>(
      `INSERT INTO peer_leases AS l (peer_id, node_id, fence, expires_at)
       SELECT c.id, $1, nextval('peer_lease_fence'), now() + $2 * interval '1 millisecond'
         FROM (SELECT p.id
                 FROM peers p LEFT JOIN peer_leases cur ON cur.peer_id = p.id
                WHERE p.enabled AND p.deleted_at IS NULL
                  AND (cur.peer_id IS NULL OR cur.expires_at < now() OR cur.node_id = $1)
                  AND NOT (p.id = ANY ($4::uuid[]))
                ORDER BY random()
                LIMIT $3) c
        ORDER BY c.id
       ON CONFLICT (peer_id) DO UPDATE SET node_id = EXCLUDED.node_id, fence = EXCLUDED.fence, expires_at = EXCLUDED.expires_at
        WHERE l.expires_at < now() OR l.node_id = EXCLUDED.node_id
       RETURNING l.peer_id, l.fence`,
      [this.nodeId, this.ttlMs, limit, running],
    );
    return result.rows.map((r) => ({ peerId: r.peer_id, fence: Number(r.fence) }));
  }

  /** Gives leases back at once and tells every node, so another claims them without waiting. */
  async release(leases: readonly HeldLease[]): Promise<void> {
    if (leases.length === 0) return;
    await this.pool.query(
      `WITH gone AS (
         DELETE FROM peer_leases l USING unnest($2::uuid[], $3::bigint[]) AS h (peer_id, fence)
          WHERE l.peer_id = h.peer_id AND l.fence = h.fence AND l.node_id = $1
         RETURNING 1
       )
       SELECT pg_notify('kite_config', 'leases:' || $1) FROM (SELECT count(*) AS n FROM gone) g WHERE g.n > 0`,
      [this.nodeId, leases.map((l) => l.peerId), leases.map((l) => l.fence)],
    );
  }

  /** This node stops: it leaves the cluster and gives back every lease it still has. */
  async leave(): Promise<void> {
    await this.pool.query(
      `WITH node AS (DELETE FROM kite_nodes WHERE node_id = $1), gone AS (DELETE FROM peer_leases WHERE node_id = $1)
       SELECT pg_notify('kite_config', 'leases:' || $1)`,
      [this.nodeId],
    );
  }
}
