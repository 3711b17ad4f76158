/**
 * A row of `peers` (migration 0002) as the rest of federation sees it: the record, its delivery
 * counts, the column list every peer query selects and the mapping from row to record.
 */
import { KiteError } from '../errors.js';
import type { PeerSettings, PeerState, RateLimit, RetryPolicy } from './peer-input.js';

export interface PeerRecord extends PeerSettings {
  readonly id: string;
  readonly teamId: number;
  readonly outboundKey: string;
  readonly outboundKeyPrevious: string | null;
  readonly outboundKeyRotatedAt: Date | null;
  readonly inboundKey: string;
  readonly inboundKeyPrevious: string | null;
  readonly inboundKeyRotatedAt: Date | null;
  readonly state: PeerState;
  /** Failed attempts since the last delivery (the actor's persisted count). */
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly deletedAt: Date | null;
}

export interface DeliveryCounts {
  readonly pending: number;
  readonly delivered: number;
  readonly deadLettered: number;
}

export type PeerWithCounts = PeerRecord & DeliveryCounts;

export const PEER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const COLUMNS = `p.id, p.team_id, p.instance_id, p.url, p.remote_team, p.scopes, p.max_hops, p.rate_limit,
  p.inbound_rate_limit, p.retry, p.enabled, p.outbound_key, p.outbound_key_previous, p.outbound_key_rotated_at,
  p.inbound_key, p.inbound_key_previous, p.inbound_key_rotated_at, p.state, p.attempts, p.last_error,
  p.created_at, p.deleted_at`;

// Pending and held are counted on their partial indexes, so discarded rows count nowhere;
// delivered is the peer's counter (migration 0005).
export const COUNTS = `LEFT JOIN LATERAL (
    SELECT (SELECT count(*) FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'pending') AS pending,
           p.delivered AS delivered,
           (SELECT count(*) FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'dead_lettered') AS dead_lettered
    ) c ON true`;

export interface PeerRow {
  id: string; team_id: number; instance_id: string; url: string; remote_team: string; scopes: string[];
  max_hops: number; rate_limit: RateLimit; inbound_rate_limit: RateLimit; retry: RetryPolicy; enabled: boolean;
  outbound_key: string; outbound_key_previous: string | null; outbound_key_rotated_at: Date | null;
  inbound_key: string; inbound_key_previous: string | null; inbound_key_rotated_at: Date | null;
  state: PeerState; attempts: number; last_error: string | null; created_at: Date; deleted_at: Date | null;
}

export type CountedRow = PeerRow & { pending: number; delivered: number; dead_lettered: number };

export function toRecord(row: PeerRow): PeerRecord {
  return {
    id: row.id, teamId: row.team_id, instanceId: row.instance_id, url: row.url, remoteTeam: row.remote_team,
    scopes: row.scopes, maxHops: row.max_hops, rateLimit: row.rate_limit, inboundRateLimit: row.inbound_rate_limit,
    retry: row.retry, enabled: row.enabled,
    outboundKey: row.outbound_key, outboundKeyPrevious: row.outbound_key_previous, outboundKeyRotatedAt: row.outbound_key_rotated_at,
    inboundKey: row.inbound_key, inboundKeyPrevious: row.inbound_key_previous, inboundKeyRotatedAt: row.inbound_key_rotated_at,
    state: row.state, attempts: row.attempts, lastError: row.last_error, createdAt: row.created_at, deletedAt: row.deleted_at,
  };
}

export function toCounted(row: CountedRow): PeerWithCounts {
  return { ...toRecord(row), pending: row.pending ?? 0, delivered: row.delivered ?? 0, deadLettered: row.dead_lettered ?? 0 };
}

export function unknownPeer(id: string): KiteError {
  return new KiteError('not_found', `Peer ${JSON.stringify(id)} does not exist in this team.`);
}
