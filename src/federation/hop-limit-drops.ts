import type { Pool } from '../db/pool.js';

/**
 * For `kite_federation_dropped_total{reason="hop_limit"}`: how many
 * `kite.federation.delivery_failed` events with reason `hop_limit` the append function stored for
 * these events, by the peer each was not forwarded to.
 *
 * Why like this: the drop is decided inside `kite_append_events` (migration 0003), whose
 * result carries only (ord, seq, duplicate). Its drop events are numbered right after their
 * group commit's own events, so they lie between our first fresh seq and the team's head, and name
 * the dropped event in `data`: one read of that primary-key range, right after the commit, counts
 * exactly ours. Only events received from a peer can reach a hop limit (ingest and publish strip
 * `kite*` extensions, so their hops are 0, and maxHops is at least 1), so the receive route, which
 * already knows it appended federated events, is the only caller, and the count is per node like
 * the chain drops. It runs after the answer is sent and costs one indexed read per received
 * request that stored something (a named statement: planned once per connection).
 */
const HOP_DROPS_SQL = `
  SELECT e.event -> 'data' ->> 'peerId' AS peer_id, e.event -> 'data' ->> 'instanceId' AS instance_id, count(*)::int AS n
    FROM events e
   WHERE e.team_id = $1 AND e.seq > $2 AND e.seq <= (SELECT head FROM teams WHERE id = $1)
     AND e.type = 'kite.federation.delivery_failed' AND e.source = $3
     AND e.event -> 'data' ->> 'reason' = 'hop_limit'
     AND (e.event -> 'data' ->> 'eventSource', e.event -> 'data' ->> 'eventId') IN (SELECT * FROM unnest($4::text[], $5::text[]))
   GROUP BY 1, 2`;

export interface HopDrop {
  readonly peerId: string;
  readonly instanceId: string;
  readonly count: number;
}

export async function hopLimitDrops(
  pool: Pool, teamId: number, federationSource: string, fresh: readonly { seq: number; source: string; id: string }[],
): Promise<HopDrop[]> {
  if (fresh.length === 0) return [];
  const firstSeq = Math.min(...fresh.map((e) => e.seq));
  const result = await pool.query<{ peer_id: string; instance_id: string; n: number }>({
    name: 'kite_hop_limit_drops',
    text: HOP_DROPS_SQL,
    values: [teamId, firstSeq, federationSource, fresh.map((e) => e.source), fresh.map((e) => e.id)],
  });
  return result.rows.map((r) => ({ peerId: r.peer_id, instanceId: r.instance_id, count: r.n }));
}
