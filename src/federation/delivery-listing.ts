/**
 * The read of a team's federation deliveries that the Peers API shows (`GET …/deliveries`),
 * filtered by peer and status.
 */
import type { Pool } from '../db/pool.js';

export const DELIVERY_STATUSES = ['pending', 'delivered', 'dead_lettered'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface DeliveryFilter {
  readonly peerId?: string;
  readonly status?: DeliveryStatus;
  readonly limit: number;
}

export interface DeliveryRecord {
  /** Kite's opaque id of the delivery (a bigint in the table, a string in the API). */
  readonly id: string;
  readonly eventId: string;
  readonly eventSource: string;
  readonly eventType: string;
  readonly peerId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastStatusCode: number | null;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly deliveredAt: Date | null;
}

interface DeliveryRow {
  id: number; event_id: string; event_source: string; event_type: string; peer_id: string; status: DeliveryStatus;
  attempts: number; last_status_code: number | null; last_error: string | null; created_at: Date; delivered_at: Date | null;
}

/** The team's deliveries, newest first; `discarded` ones (of deleted peers) are not listed. */
export async function listDeliveries(pool: Pool, teamId: number, filter: DeliveryFilter): Promise<DeliveryRecord[]> {
  const result = await pool.query<DeliveryRow>(
    `SELECT id, event_id, event_source, event_type, peer_id, status, attempts, last_status_code, last_error, created_at, delivered_at
       FROM federation_deliveries
      WHERE team_id = $1 AND status <> 'discarded'
        AND ($2::uuid IS NULL OR peer_id = $2::uuid) AND ($3::text IS NULL OR status = $3::text)
      ORDER BY id DESC LIMIT $4`,
    [teamId, filter.peerId ?? null, filter.status ?? null, filter.limit],
  );
  return result.rows.map((r) => ({
    id: String(r.id), eventId: r.event_id, eventSource: r.event_source, eventType: r.event_type, peerId: r.peer_id,
    status: r.status, attempts: r.attempts, lastStatusCode: r.last_status_code, lastError: r.last_error,
    createdAt: r.created_at, deliveredAt: r.delivered_at,
  }));
}
