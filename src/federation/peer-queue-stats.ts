/**
 * Each live peer's delivery state and queue, read from the tables every node of an instance
 * shares: what the per-peer gauges of /metrics show (observability/federation-metrics.ts).
 */
import type { Pool } from '../db/pool.js';

export interface PeerQueueStats {
  readonly id: string;
  readonly instanceId: string;
  readonly state: string;
  readonly enabled: boolean;
  readonly pending: number;
  readonly held: number;
  /** Age of the head of the queue (the pending delivery sent next); 0 when nothing is pending. */
  readonly oldestPendingSeconds: number;
}

/**
 * Live peers (paused ones included) with their queue, in one grouped query: the partial indexes
 * on pending and dead_lettered deliveries make each count an index-only range. The oldest pending
 * delivery is the head of the queue (lowest event seq: redriven deliveries go back ahead of newer
 * ones), found with one probe of the `federation_deliveries_queue` index — the same delivery
 * the status page ages (ui/status-snapshot.ts).
 */
const PEER_QUEUE_STATS_SQL = `
  SELECT p.id, p.instance_id, p.state, p.enabled,
         (SELECT count(*) FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'pending')::int AS pending,
         (SELECT count(*) FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'dead_lettered')::int AS held,
         coalesce((SELECT extract(epoch FROM now() - d.created_at) FROM federation_deliveries d
                    WHERE d.peer_id = p.id AND d.status = 'pending' ORDER BY d.event_seq LIMIT 1), 0)::float8 AS oldest
    FROM peers p
   WHERE p.deleted_at IS NULL`;

export async function readPeerQueueStats(pool: Pool): Promise<PeerQueueStats[]> {
  const result = await pool.query<{ id: string; instance_id: string; state: string; enabled: boolean; pending: number; held: number; oldest: number }>(PEER_QUEUE_STATS_SQL);
  return result.rows.map((r) => ({
    id: r.id, instanceId: r.instance_id, state: r.state, enabled: r.enabled, pending: r.pending, held: r.held,
    // now() is when this read's transaction began: a delivery committed since can look younger.
    oldestPendingSeconds: Math.max(0, r.oldest),
  }));
}
