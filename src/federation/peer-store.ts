/**
 * A team's peers (table `peers`, migration 0002): the store the rest of federation reads and
 * changes them through. The forwarding rule reads `listLivePeers`, the supervisor of peer actors
 * `findPeer` and `onPeerChanged`, the receive route `findLivePeerByInstance`, and the Peers API
 * the rest, including the deliveries listing (delivery-listing.ts). The record, its row mapping
 * and the keys in force live in peer-record.ts and peer-keys.ts; the SQL of the reads in
 * peer-queries.ts.
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
import { listDeliveries, type DeliveryFilter, type DeliveryRecord } from './delivery-listing.js';
import type { NewPeer, PeerSettings } from './peer-input.js';
import * as queries from './peer-queries.js';
import { COLUMNS, PEER_ID, toRecord, unknownPeer, type PeerRecord, type PeerRow, type PeerWithCounts } from './peer-record.js';
import { SenderCache } from './sender-cache.js';
import { lockTeamRow } from './team-lock.js';

export interface PeerChange {
  readonly kind: 'created' | 'updated' | 'deleted' | 'redriven';
  readonly teamId: number;
  readonly peerId: string;
}

export type PeerChangeListener = (change: PeerChange) => void;

/** What a PATCH produces from the peer as it is (see peer-routes.ts). */
export interface PeerUpdate {
  readonly settings: PeerSettings;
  readonly outboundKey?: string;
  readonly inboundKey?: string;
}

/** A redrive of a paused peer that was not `healthy`: the change its `peer_state_changed` reports. */
export interface RedriveOfPaused {
  readonly peerId: string;
  readonly instanceId: string;
  readonly from: PeerRecord['state'];
  readonly held: number;
}

function isLiveInstanceConflict(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === '23505'
    && (err as { constraint?: unknown }).constraint === 'peers_live_instance';
}

function conflict(instanceId: string): KiteError {
  return new KiteError('conflict', `Instance ${JSON.stringify(instanceId)} is already a peer of this team.`);
}

export class PeerStore {
  private readonly listeners = new Set<PeerChangeListener>();
  private readonly senders = new SenderCache((teamId, instanceId) => queries.findLivePeerByInstance(this.pool, teamId, instanceId));

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

  // The reads, on the pool: peer-queries.ts says what each returns.
  findPeer(id: string): Promise<PeerRecord | undefined> {
    return queries.findPeer(this.pool, id);
  }

  listLivePeers(teamId: number): Promise<PeerRecord[]> {
    return queries.listLivePeers(this.pool, teamId);
  }

  findLivePeerByInstance(teamId: number, instanceId: string): Promise<PeerRecord | undefined> {
    return queries.findLivePeerByInstance(this.pool, teamId, instanceId);
  }

  /**
   * The receive route's lookup of a request's sender, remembered for a second (sender-cache.ts
   * says why that is safe); `cached` tells the route a failed signature deserves a fresh read.
   */
  findSender(teamId: number, instanceId: string, fresh = false): Promise<{ peer: PeerRecord | undefined; cached: boolean }> {
    return this.senders.find(teamId, instanceId, fresh);
  }

  /** A `kite_config` peer notification (any node's change, this one's included): read it again. */
  changedElsewhere(peerId: string): void {
    this.senders.forget(peerId);
  }

  /** Notifications may have been missed (the listener reconnected): forget every remembered sender. */
  notificationsMissed(): void {
    this.senders.clear();
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

  listWithCounts(teamId: number): Promise<PeerWithCounts[]> {
    return queries.listWithCounts(this.pool, teamId);
  }

  getWithCounts(teamId: number, id: string, client: Pool | PoolClient = this.pool): Promise<PeerWithCounts> {
    return queries.getWithCounts(client, teamId, id);
  }

  existsInTeam(teamId: number, id: string): Promise<boolean> {
    return queries.existsInTeam(this.pool, teamId, id);
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
      await lockTeamRow(client, teamId);
      // Deliveries before the peer's row: the actor's mark of a delivered batch locks them in that
      // order (rows, then its counter on `peers`), so the reverse here could deadlock with it. An
      // unknown peer rolls the discard back with the rest.
      await client.query(
        `UPDATE federation_deliveries SET status = 'discarded'
          WHERE peer_id = $1 AND status IN ('pending', 'dead_lettered')`, [id]);
      const result = await client.query(
        'UPDATE peers SET deleted_at = now() WHERE id = $1 AND team_id = $2 AND deleted_at IS NULL', [id, teamId]);
      if (result.rowCount === 0) throw unknownPeer(id);
    });
  }

  /** Asks whichever node runs the peer's actor to probe it now (`kite_config` "probe:<peer id>"). */
  async requestProbe(peerId: string): Promise<void> {
    await this.pool.query("SELECT pg_notify('kite_config', $1)", [`probe:${peerId}`]);
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
      await lockTeamRow(client, teamId);
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

  listDeliveries(teamId: number, filter: DeliveryFilter): Promise<DeliveryRecord[]> {
    return listDeliveries(this.pool, teamId, filter);
  }

  private async changing<T>(kind: PeerChange['kind'], teamId: number, peerId: string, change: (client: PoolClient) => Promise<T>): Promise<T> {
    const result = await inTransaction(this.pool, async (client) => {
      const changed = await change(client);
      await client.query("SELECT pg_notify('kite_config', $1)", [`peer:${teamId}:${peerId}`]);
      return changed;
    });
    this.senders.forget(peerId);
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
