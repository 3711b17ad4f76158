/**
 * What the status page shows, read from Postgres so it is right on any node of a cluster (a
 * peer's actor may run on another node; its state, attempts and last error are persisted in
 * `peers`, its queue in `federation_deliveries`). Listener counts are this node's own.
 *
 * A scope is the whole instance (the admin token) or one team (a team admin key). Three queries
 * per snapshot, whatever the number of peers: peers with their counts (pending and held on their
 * partial indexes, delivered from the peer's counter), deliveries per minute over the last
 * RATE_MINUTES minutes (from `peer_delivery_minutes`), and
 * the last `kite.federation.*` events among each team's most recent RECENT_WINDOW events.
 */
import type { AppContext } from '../app-context.js';
import type { Pool } from '../db/pool.js';

export type StatusScope = { readonly kind: 'instance' } | { readonly kind: 'team'; readonly teamId: number };

export const RATE_MINUTES = 10;
const RECENT_EVENTS = 20;
/** Internal events are looked for among this many of a team's newest events (bounded work). */
const RECENT_WINDOW = 5000;
/** An instance with more teams than this shows the first ones by slug. */
const MAX_TEAMS = 200;

export interface PeerStatus {
  readonly id: string;
  readonly instanceId: string;
  readonly url: string;
  readonly enabled: boolean;
  readonly state: string;
  readonly attempts: number;
  readonly pending: number;
  readonly delivered: number;
  readonly deadLettered: number;
  /**
   * Whole seconds since the oldest pending delivery (the head of the queue: lowest event seq) was
   * queued; null when none is pending.
   */
  readonly oldestPendingSeconds: number | null;
  /** Deliveries per minute, oldest minute first; the last entry is the current (partial) minute. */
  readonly deliveredPerMinute: readonly number[];
  readonly lastError: string | null;
}

export interface TeamStatus {
  readonly slug: string;
  /** Whether some listener of this team is connected to this node. */
  readonly listening: boolean;
  readonly peers: readonly PeerStatus[];
}

export interface FederationEvent {
  readonly team: string;
  readonly seq: number;
  readonly type: string;
  readonly time: string;
  readonly data: unknown;
}

export interface StatusSnapshot {
  readonly instance: { readonly instanceId: string; readonly publicUrl: string; readonly version: string };
  /** Listeners connected to this node (all teams); only in the instance scope. */
  readonly listeners: number | null;
  readonly teams: readonly TeamStatus[];
  readonly teamsTruncated: boolean;
  readonly events: readonly FederationEvent[];
}

interface TeamRow { id: number; slug: string }
interface PeerRow {
  id: string; team_id: number; instance_id: string; url: string; enabled: boolean; state: string; attempts: number;
  last_error: string | null; pending: number; delivered: number; dead_lettered: number; oldest_pending_seconds: number | null;
}
interface RateRow { peer_id: string; minute: number; n: number }
interface EventRow { slug: string; seq: string; type: string; time: Date; data: unknown }

const TEAMS = `SELECT id, slug FROM teams WHERE ($1::bigint IS NULL OR id = $1) ORDER BY slug LIMIT ${MAX_TEAMS + 1}`;

const PEERS = `
  SELECT p.id, p.team_id, p.instance_id, p.url, p.enabled, p.state, p.attempts, p.last_error,
         c.pending::int, c.delivered::int, c.dead_lettered::int,
         floor(extract(epoch FROM now() - c.oldest_pending))::int AS oldest_pending_seconds
    FROM peers p
    -- Pending and held on their partial indexes, delivered from the peer's counter (migration 0005).
    -- The oldest pending delivery is the head of the queue, as on /metrics (federation/
    -- peer-queue-stats.ts): the lowest event seq, one probe of the \`federation_deliveries_queue\`
    -- index; redriven deliveries go back ahead of newer ones.
    LEFT JOIN LATERAL (
      SELECT count(*) AS pending, p.delivered AS delivered,
             (SELECT q.created_at FROM federation_deliveries q
               WHERE q.peer_id = p.id AND q.status = 'pending' ORDER BY q.event_seq LIMIT 1) AS oldest_pending,
             (SELECT count(*) FROM federation_deliveries h WHERE h.peer_id = p.id AND h.status = 'dead_lettered') AS dead_lettered
        FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'pending') c ON true
   WHERE p.deleted_at IS NULL AND p.team_id = ANY ($1::bigint[])
   ORDER BY p.created_at, p.id`;

// Minute buckets counted back from the current minute (0), from the counts the actors keep
// (migration 0005) instead of scanning deliveries.
const RATES = `
  SELECT m.peer_id, floor(extract(epoch FROM date_trunc('minute', now()) - m.minute) / 60)::int AS minute, m.delivered AS n
    FROM peer_delivery_minutes m
    JOIN peers p ON p.id = m.peer_id AND p.deleted_at IS NULL AND p.team_id = ANY ($1::bigint[])
   WHERE m.minute > date_trunc('minute', now()) - make_interval(mins => $2)`;

const EVENTS = `
  SELECT t.slug, f.seq, f.type, f.time, f.data
    FROM teams t
    CROSS JOIN LATERAL (
      SELECT e.seq, e.type, e.time, e.event -> 'data' AS data
        FROM events e
       WHERE e.team_id = t.id AND e.seq > t.head - ${RECENT_WINDOW} AND e.type LIKE 'kite.federation.%'
       ORDER BY e.seq DESC LIMIT ${RECENT_EVENTS}) f
   WHERE t.id = ANY ($1::bigint[])
   ORDER BY f.time DESC, f.seq DESC LIMIT ${RECENT_EVENTS}`;

export interface SnapshotSources {
  readonly pool: Pool;
  readonly instance: StatusSnapshot['instance'];
  /** Listeners connected to this node, and the teams they listen to. */
  readonly listeners: () => { readonly count: number; readonly teamIds: readonly number[] };
}

export function snapshotSources(ctx: AppContext): SnapshotSources {
  return {
    pool: ctx.pool,
    instance: { instanceId: ctx.config.instanceId, publicUrl: ctx.config.publicUrl, version: ctx.version },
    listeners: () => ({ count: ctx.hub.listenerCount, teamIds: ctx.hub.activeTeams() }),
  };
}

export async function buildStatusSnapshot(sources: SnapshotSources, scope: StatusScope): Promise<StatusSnapshot> {
  const { pool } = sources;
  const teamRows = (await pool.query<TeamRow>(TEAMS, [scope.kind === 'team' ? scope.teamId : null])).rows;
  const teamsTruncated = teamRows.length > MAX_TEAMS;
  const teams = teamRows.slice(0, MAX_TEAMS).map((t) => ({ ...t, id: Number(t.id) }));
  const teamIds = teams.map((t) => t.id);
  const [peerRows, rateRows, eventRows] = await Promise.all([
    pool.query<PeerRow>(PEERS, [teamIds]),
    pool.query<RateRow>(RATES, [teamIds, RATE_MINUTES]),
    pool.query<EventRow>(EVENTS, [teamIds]),
  ]);
  const rates = new Map<string, number[]>();
  for (const row of rateRows.rows) {
    const perMinute = rates.get(row.peer_id) ?? new Array<number>(RATE_MINUTES).fill(0);
    const index = RATE_MINUTES - 1 - row.minute;
    if (index >= 0 && index < RATE_MINUTES) perMinute[index] = row.n;
    rates.set(row.peer_id, perMinute);
  }
  const listeners = sources.listeners();
  const listening = new Set(listeners.teamIds);
  const peersByTeam = new Map<number, PeerStatus[]>();
  for (const row of peerRows.rows) {
    const list = peersByTeam.get(Number(row.team_id)) ?? [];
    list.push({
      id: row.id, instanceId: row.instance_id, url: row.url, enabled: row.enabled, state: row.state, attempts: row.attempts,
      pending: row.pending ?? 0, delivered: row.delivered ?? 0, deadLettered: row.dead_lettered ?? 0,
      oldestPendingSeconds: row.oldest_pending_seconds === null ? null : Math.max(0, row.oldest_pending_seconds),
      deliveredPerMinute: rates.get(row.id) ?? new Array<number>(RATE_MINUTES).fill(0),
      lastError: row.last_error,
    });
    peersByTeam.set(Number(row.team_id), list);
  }
  return {
    instance: sources.instance,
    listeners: scope.kind === 'instance' ? listeners.count : null,
    teams: teams.map((t) => ({ slug: t.slug, listening: listening.has(t.id), peers: peersByTeam.get(t.id) ?? [] })),
    teamsTruncated,
    events: eventRows.rows.map((e) => ({ team: e.slug, seq: Number(e.seq), type: e.type, time: e.time.toISOString(), data: e.data })),
  };
}
