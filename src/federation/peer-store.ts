/**
 * A team's peers (table `peers`, migration 0002) and the reads of their deliveries that the
 * Peers API shows. The rest of federation reads peers through here: the forwarding rule
 * (`listLivePeers`), the supervisor of peer actors (`listAllEnabledPeers`, `findPeer`,
 * `onPeerChanged`), the receive route (`findLivePeerByInstance`, `inboundKeys`) and outbound
 * delivery (`outboundKeys`).
 *
 * Every change (create, patch, delete, redrive) runs in one transaction that also sends
 * `pg_notify('kite_config', 'peer:<team id>:<peer id>')`, delivered to every node at commit; after
 * the commit, listeners of `onPeerChanged` on this node hear it at once. A node also receives its
 * own NOTIFY, so whoever listens to both must treat a change as "re-read the peer", idempotently.
 *
 * A deleted peer keeps its row (`deleted_at`) so its delivery history stays readable; it is
 * "live" while `deleted_at` is null, whether enabled or paused.
 */
import { randomUUID } from 'node:crypto';
import { inTransaction, type Pool, type PoolClient } from '../db/pool.js';
import { KiteError } from '../errors.js';
import { keysInForce } from './peer-keys.js';
import type { NewPeer, PeerSettings, PeerState, RateLimit, RetryPolicy } from './peer-input.js';

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

export interface PeerChange {
  readonly kind: 'created' | 'updated' | 'deleted' | 'redriven';
  readonly teamId: number;
  readonly peerId: string;
}

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

export type PeerChangeListener = (change: PeerChange) => void;

/** What a PATCH produces from the peer as it is (see peer-routes.ts). */
export interface PeerUpdate {
  readonly settings: PeerSettings;
  readonly outboundKey?: string;
  readonly inboundKey?: string;
}

/** Keys that verify a peer's requests to us at `now`: current, then previous within 24 h. */
export function inboundKeys(peer: PeerRecord, now: Date): string[] {
  return keysInForce({ current: peer.inboundKey, previous: peer.inboundKeyPrevious, rotatedAt: peer.inboundKeyRotatedAt }, now);
}

/** Keys to sign our requests to a peer with at `now` (all of them, one signature entry each). */
export function outboundKeys(peer: PeerRecord, now: Date): string[] {
  return keysInForce({ current: peer.outboundKey, previous: peer.outboundKeyPrevious, rotatedAt: peer.outboundKeyRotatedAt }, now);
}

export const PEER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const COLUMNS = `p.id, p.team_id, p.instance_id, p.url, p.remote_team, p.scopes, p.max_hops, p.rate_limit,
  p.inbound_rate_limit, p.retry, p.enabled, p.outbound_key, p.outbound_key_previous, p.outbound_key_rotated_at,
  p.inbound_key, p.inbound_key_previous, p.inbound_key_rotated_at, p.state, p.attempts, p.last_error,
  p.created_at, p.deleted_at`;

// One pass over the peer's deliveries (index on (peer_id, event_seq)); discarded rows count nowhere.
const COUNTS = `LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE d.status = 'pending') AS pending,
           count(*) FILTER (WHERE d.status = 'delivered') AS delivered,
           count(*) FILTER (WHERE d.status = 'dead_lettered') AS dead_lettered
      FROM federation_deliveries d WHERE d.peer_id = p.id) c ON true`;

interface PeerRow {
  id: string; team_id: number; instance_id: string; url: string; remote_team: string; scopes: string[];
  max_hops: number; rate_limit: RateLimit; inbound_rate_limit: RateLimit; retry: RetryPolicy; enabled: boolean;
  outbound_key: string; outbound_key_previous: string | null; outbound_key_rotated_at: Date | null;
  inbound_key: string; inbound_key_previous: string | null; inbound_key_rotated_at: Date | null;
  state: PeerState; attempts: number; last_error: string | null; created_at: Date; deleted_at: Date | null;
}

type CountedRow = PeerRow & { pending: number; delivered: number; dead_lettered: number };

function toRecord(row: PeerRow): PeerRecord {
  return {
    id: row.id, teamId: row.team_id, instanceId: row.instance_id, url: row.url, remoteTeam: row.remote_team,
    scopes: row.scopes, maxHops: row.max_hops, rateLimit: row.rate_limit, inboundRateLimit: row.inbound_rate_limit,
    retry: row.retry, enabled: row.enabled,
    outboundKey: row.outbound_key, outboundKeyPrevious: row.outbound_key_previous, outboundKeyRotatedAt: row.outbound_key_rotated_at,
    inboundKey: row.inbound_key, inboundKeyPrevious: row.inbound_key_previous, inboundKeyRotatedAt: row.inbound_key_rotated_at,
    state: row.state, attempts: row.attempts, lastError: row.last_error, createdAt: row.created_at, deletedAt: row.deleted_at,
  };
}

function toCounted(row: CountedRow): PeerWithCounts {
  return { ...toRecord(row), pending: row.pending ?? 0, delivered: row.delivered ?? 0, deadLettered: row.dead_lettered ?? 0 };
}

function isLiveInstanceConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505'
    && (err as { constraint?: unknown }).constraint === 'peers_live_instance';
}

function conflict(instanceId: string): KiteError {
  return new KiteError('conflict', `Instance ${JSON.stringify(instanceId)} is already a peer of this team.`);
}

function unknownPeer(id: string): KiteError {
  return new KiteError('not_found', `Peer ${JSON.stringify(id)} does not exist in this team.`);
}

/** A redrive of a paused peer that was not `healthy`: the change its `peer_state_changed` reports. */
export interface RedriveOfPaused {
  readonly peerId: string;
  readonly instanceId: string;
  readonly from: PeerRecord['state'];
  readonly held: number;
}

export class PeerStore {
  private readonly listeners = new Set<PeerChangeListener>();

  constructor(
    private readonly pool: Pool,
    /** Told when a change listener throws; the change itself has committed. */
    private readonly onListenerError: (err: unknown) => void = () => {},
    /**
     * Records `peer_state_changed` for a redrive of a paused peer, in the redrive's transaction:
     * no actor runs for it, so none reports the change (an enabled peer's actor does).
     */
    private readonly recordRedrive?: (client: PoolClient, teamId: number, change: RedriveOfPaused) => Promise<unknown>,
  ) {}

  /** Any peer by id, deleted or not (a deleted one has `deletedAt`), for re-reading after a change. */
  async findPeer(id: string): Promise<PeerRecord | undefined> {
    if (!PEER_ID.test(id)) return undefined;
    const result = await this.pool.query<PeerRow>(`SELECT ${COLUMNS} FROM peers p WHERE p.id = $1`, [id]);
    return result.rows[0] && toRecord(result.rows[0]);
  }

  /** The team's peers that are not deleted, enabled or paused (the forwarding rule's peers). */
  async listLivePeers(teamId: number): Promise<PeerRecord[]> {
    const result = await this.pool.query<PeerRow>(
      `SELECT ${COLUMNS} FROM peers p WHERE p.team_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id`, [teamId]);
    return result.rows.map(toRecord);
  }

  /** Every live, enabled peer of every team (the peers that need a delivery actor). */
  async listAllEnabledPeers(): Promise<PeerRecord[]> {
    const result = await this.pool.query<PeerRow>(
      `SELECT ${COLUMNS} FROM peers p WHERE p.deleted_at IS NULL AND p.enabled ORDER BY p.team_id, p.created_at, p.id`);
    return result.rows.map(toRecord);
  }

  async findLivePeerByInstance(teamId: number, instanceId: string): Promise<PeerRecord | undefined> {
    const result = await this.pool.query<PeerRow>(
      `SELECT ${COLUMNS} FROM peers p WHERE p.team_id = $1 AND p.instance_id = $2 AND p.deleted_at IS NULL`, [teamId, instanceId]);
    return result.rows[0] && toRecord(result.rows[0]);
  }

  /** Hears every change made through this store on this node, right after it commits. */
  onPeerChanged(listener: PeerChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Throws 409 when the instance is already a live peer of the team. */
  async create(teamId: number, peer: NewPeer): Promise<PeerWithCounts> {
    const id = randomUUID();
    const row = await this.changing('created', teamId, id, async (client) => {
      const result = await client.query<PeerRow>(
        `INSERT INTO peers AS p (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit,
                                 retry, enabled, outbound_key, inbound_key)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11, $12, $13)
         ON CONFLICT (team_id, instance_id) WHERE deleted_at IS NULL DO NOTHING
         RETURNING ${COLUMNS}`,
        [id, teamId, peer.instanceId, peer.url, peer.remoteTeam, JSON.stringify(peer.scopes), peer.maxHops,
          JSON.stringify(peer.rateLimit), JSON.stringify(peer.inboundRateLimit), JSON.stringify(peer.retry), peer.enabled,
          peer.outboundKey, peer.inboundKey],
      );
      if (!result.rows[0]) throw conflict(peer.instanceId);
      return result.rows[0];
    });
    return { ...toRecord(row), pending: 0, delivered: 0, deadLettered: 0 };
  }

  async listWithCounts(teamId: number): Promise<PeerWithCounts[]> {
    const result = await this.pool.query<CountedRow>(
      `SELECT ${COLUMNS}, c.* FROM peers p ${COUNTS}
        WHERE p.team_id = $1 AND p.deleted_at IS NULL ORDER BY p.created_at, p.id`, [teamId]);
    return result.rows.map(toCounted);
  }

  /** A live peer of the team; 404 when unknown, deleted or another team's. */
  async getWithCounts(teamId: number, id: string, client: Pool | PoolClient = this.pool): Promise<PeerWithCounts> {
    if (!PEER_ID.test(id)) throw unknownPeer(id);
    const result = await client.query<CountedRow>(
      `SELECT ${COLUMNS}, c.* FROM peers p ${COUNTS}
        WHERE p.id = $1 AND p.team_id = $2 AND p.deleted_at IS NULL`, [id, teamId]);
    if (!result.rows[0]) throw unknownPeer(id);
    return toCounted(result.rows[0]);
  }

  /** True for a peer of the team, deleted ones included (their history stays readable). */
  async existsInTeam(teamId: number, id: string): Promise<boolean> {
    if (!PEER_ID.test(id)) return false;
    const result = await this.pool.query('SELECT 1 FROM peers WHERE id = $1 AND team_id = $2', [id, teamId]);
    return result.rows.length > 0;
  }

  /**
   * Changes a live peer. `update` sees the peer as locked in this transaction; a key it returns
   * that differs from the current one rotates it: the current becomes `*_previous` from now on.
   */
  async update(teamId: number, id: string, update: (current: PeerRecord) => PeerUpdate): Promise<PeerWithCounts> {
    if (!PEER_ID.test(id)) throw unknownPeer(id);
    let instanceId = '';
    try {
      return await this.changing('updated', teamId, id, async (client) => {
        const locked = await client.query<PeerRow>(
          `SELECT ${COLUMNS} FROM peers p WHERE p.id = $1 AND p.team_id = $2 AND p.deleted_at IS NULL FOR UPDATE`, [id, teamId]);
        if (!locked.rows[0]) throw unknownPeer(id);
        const current = toRecord(locked.rows[0]);
        const next = update(current);
        const s = next.settings;
        instanceId = s.instanceId;
        const rotateOut = next.outboundKey !== undefined && next.outboundKey !== current.outboundKey;
        const rotateIn = next.inboundKey !== undefined && next.inboundKey !== current.inboundKey;
        await client.query(
          `UPDATE peers SET instance_id = $3, url = $4, remote_team = $5, scopes = $6::jsonb, max_hops = $7,
                  rate_limit = $8::jsonb, inbound_rate_limit = $9::jsonb, retry = $10::jsonb, enabled = $11,
                  outbound_key_previous = CASE WHEN $12 THEN outbound_key ELSE outbound_key_previous END,
                  outbound_key_rotated_at = CASE WHEN $12 THEN now() ELSE outbound_key_rotated_at END,
                  outbound_key = CASE WHEN $12 THEN $13 ELSE outbound_key END,
                  inbound_key_previous = CASE WHEN $14 THEN inbound_key ELSE inbound_key_previous END,
                  inbound_key_rotated_at = CASE WHEN $14 THEN now() ELSE inbound_key_rotated_at END,
                  inbound_key = CASE WHEN $14 THEN $15 ELSE inbound_key END
            WHERE id = $1 AND team_id = $2`,
          [id, teamId, s.instanceId, s.url, s.remoteTeam, JSON.stringify(s.scopes), s.maxHops, JSON.stringify(s.rateLimit),
            JSON.stringify(s.inboundRateLimit), JSON.stringify(s.retry), s.enabled,
            rotateOut, next.outboundKey ?? null, rotateIn, next.inboundKey ?? null],
        );
        return this.getWithCounts(teamId, id, client);
      });
    } catch (err) {
      if (isLiveInstanceConflict(err)) throw conflict(instanceId);
      throw err;
    }
  }

  /** Marks the peer deleted and discards what it had not delivered; 404 when not live. */
  async remove(teamId: number, id: string): Promise<void> {
    if (!PEER_ID.test(id)) throw unknownPeer(id);
    await this.changing('deleted', teamId, id, async (client) => {
      // The team's row lock orders this against appends, which enqueue deliveries under it: an
      // append that committed first has its rows discarded below; a later one sees the peer deleted.
      await client.query('SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE', [teamId]);
      const result = await client.query(
        'UPDATE peers SET deleted_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL', [id, teamId]);
      if (result.rowCount === 0) throw unknownPeer(id);
      await client.query(
        `UPDATE federation_deliveries SET status = 'discarded'
          WHERE peer_id = $1 AND status IN ('pending', 'dead_lettered')`, [id]);
    });
  }

  /**
   * Puts every dead-lettered delivery of a live peer back in its queue (which is ordered by event
   * seq, so they go ahead of newer ones) and the peer back to `healthy`. Returns how many.
   */
  async redrive(teamId: number, id: string): Promise<number> {
    if (!PEER_ID.test(id)) throw unknownPeer(id);
    return this.changing('redriven', teamId, id, async (client) => {
      // Under the team's row lock, like appends: an append that read the peer as dead-lettered
      // (and so holds its new deliveries as dead_lettered) commits before this, or reads it healthy.
      await client.query('SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE', [teamId]);
      const peer = await client.query<{ previous: PeerRecord['state']; enabled: boolean; instance_id: string }>(
        `WITH before AS (SELECT state, enabled, instance_id FROM peers WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL FOR UPDATE)
         UPDATE peers p SET state = 'healthy', attempts = 0 FROM before WHERE p.id = $1
         RETURNING before.state AS previous, before.enabled, before.instance_id`, [id, teamId]);
      const before = peer.rows[0];
      if (!before) throw unknownPeer(id);
      const requeued = await client.query(
        `UPDATE federation_deliveries SET status = 'pending', refused_alone = false WHERE peer_id = $1 AND status = 'dead_lettered'`, [id]);
      if (!before.enabled && before.previous !== 'healthy' && this.recordRedrive) {
        const held = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM federation_deliveries WHERE peer_id = $1 AND status = 'pending'`, [id]);
        await this.recordRedrive(client, teamId, { peerId: id, instanceId: before.instance_id, from: before.previous, held: held.rows[0]!.n });
      }
      return requeued.rowCount ?? 0;
    });
  }

  /** The team's deliveries, newest first; `discarded` ones (of deleted peers) are not listed. */
  async listDeliveries(teamId: number, filter: DeliveryFilter): Promise<DeliveryRecord[]> {
    const result = await this.pool.query<DeliveryRow>(
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

  private async changing<T>(kind: PeerChange['kind'], teamId: number, peerId: string, change: (client: PoolClient) => Promise<T>): Promise<T> {
    const result = await inTransaction(this.pool, async (client) => {
      const changed = await change(client);
      await client.query("SELECT pg_notify('kite_config', $1)", [`peer:${teamId}:${peerId}`]);
      return changed;
    });
    for (const listener of this.listeners) {
      try {
        listener({ kind, teamId, peerId });
      } catch (err) {
        this.onListenerError(err);
      }
    }
    return result;
  }
}
