/**
 * The federation outbox, written inside the transaction that stores the events (an
 * EventAppender `inTransaction` hook): for every newly stored event and every peer of its team,
 * the forwarding rule decides, and a `federation_deliveries` row is inserted — `pending`, or
 * `dead_lettered` straight away while the peer is dead-lettered (it holds what arrives meanwhile).
 * Hop-limit drops become `kite.federation.delivery_failed` events in the same transaction.
 * A crash can therefore never leave an event without its deliveries, or the reverse.
 */
import type { PoolClient } from '../db/pool.js';
import type { AppendRequest, StoredInBatch, TransactionHook } from '../ingest/event-appender.js';
import { decideForwarding, type ForwardingPeer } from './forwarding-rule.js';
import { deliveryFailedEvent } from './internal-events.js';
import { readProvenance } from './provenance.js';

interface OutboxPeer extends ForwardingPeer {
  readonly teamId: number;
  readonly deadLettered: boolean;
}

export interface OutboxOptions {
  readonly publicUrl: string;
  /** After commit: these peers have new deliveries (wake their actors). */
  readonly onQueued: (peerIds: readonly string[]) => void;
}

export function federationOutbox(options: OutboxOptions): TransactionHook {
  return async (client, stored) => {
    const outgoing = stored.filter((s) => !s.event.type.startsWith('kite.'));
    if (outgoing.length === 0) return undefined;
    const peers = await peersOf(client, [...new Set(outgoing.map((s) => s.teamId))]);
    if (peers.length === 0) return undefined;
    const rows = { peer: [] as string[], team: [] as number[], seq: [] as number[], id: [] as string[], source: [] as string[], type: [] as string[], status: [] as string[] };
    const internal: AppendRequest[] = [];
    for (const s of outgoing) {
      const provenance = readProvenance(s.event.json);
      for (const peer of peers) {
        if (peer.teamId !== s.teamId) continue;
        const decision = decideForwarding(s.event.type, provenance, peer);
        if (decision === 'forward') addRow(rows, peer, s);
        else if (decision === 'hop_limit') internal.push({ teamId: s.teamId, event: hopLimitEvent(options.publicUrl, peer, s) });
      }
    }
    if (rows.peer.length > 0) {
      await client.query(
        `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status)
         SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])`,
        [rows.peer, rows.team, rows.seq, rows.id, rows.source, rows.type, rows.status],
      );
    }
    const queued = [...new Set(rows.peer)];
    if (queued.length > 0) {
      // Other nodes (the one running a peer's actor) learn of new work at commit.
      await client.query("SELECT pg_notify('kite_federation', $1)", [queued.join(',')]);
    }
    return { internal, afterCommit: queued.length > 0 ? () => options.onQueued(queued) : undefined };
  };
}

async function peersOf(client: PoolClient, teamIds: number[]): Promise<OutboxPeer[]> {
  const result = await client.query<{ id: string; team_id: number; instance_id: string; scopes: string[]; max_hops: number; state: string }>(
    'SELECT id, team_id, instance_id, scopes, max_hops, state FROM peers WHERE team_id = ANY ($1::bigint[]) AND deleted_at IS NULL',
    [teamIds],
  );
  return result.rows.map((r) => ({ id: r.id, teamId: r.team_id, instanceId: r.instance_id, scopes: r.scopes, maxHops: r.max_hops, deadLettered: r.state === 'dead-lettered' }));
}

function addRow(rows: Record<'peer' | 'team' | 'seq' | 'id' | 'source' | 'type' | 'status', unknown[]>, peer: OutboxPeer, s: StoredInBatch): void {
  rows.peer.push(peer.id);
  rows.team.push(s.teamId);
  rows.seq.push(s.seq);
  rows.id.push(s.event.id);
  rows.source.push(s.event.source);
  rows.type.push(s.event.type);
  rows.status.push(peer.deadLettered ? 'dead_lettered' : 'pending');
}

function hopLimitEvent(publicUrl: string, peer: OutboxPeer, s: StoredInBatch) {
  return deliveryFailedEvent(publicUrl, {
    peerId: peer.id, instanceId: peer.instanceId, eventId: s.event.id, eventSource: s.event.source, eventType: s.event.type,
    reason: 'hop_limit', statusCode: null, attempts: 0,
  });
}
