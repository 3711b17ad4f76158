/**
 * Federation metrics, in two kinds (issue 6, "metrics that explain"):
 *
 * - Per node, counted where the work happens (normal Prometheus practice: sum them over nodes):
 *   deliveries by outcome, request round trips and batch sizes — reported by the peer actor through
 *   a PeerDeliveryObserver — and events dropped by the chain rule or the hop limit (receive-route.ts).
 * - Per instance, read from Postgres at scrape time: each peer's state, queue depth, held
 *   (dead-lettered) deliveries and oldest pending age. A peer's actor runs on one node of a cluster,
 *   but every node answers /metrics, so these come from the tables every node shares, never from
 *   the local actor: each node reports the same values (aggregate them with max, not sum).
 *
 * The scrape-time read is one grouped query (federation/peer-queue-stats.ts), shared by every
 * gauge of a scrape, cached for a second, and raced against a deadline: a slow or absent database
 * leaves the gauges empty and counts a collection failure, it never hangs /metrics.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AnswerKind } from '../federation/answer-kind.js';
import type { PeerQueueStats } from '../federation/peer-queue-stats.js';
import type { Metrics } from './metrics.js';

export interface ObservedPeer {
  readonly id: string;
  readonly instanceId: string;
}

/**
 * What one delivery request did to its events: `delivered` (2xx); `retried` (they stay queued
 * and are sent again: a retryable failure, a 429, or a 413 or other 4xx to a batch, which is split
 * or re-sent one by one); `dead_lettered` (held until a redrive or a good probe: a 4xx to a single
 * event, or 401/403/404, which dead-letters the peer).
 */
export type DeliveryRequestOutcome = 'delivered' | 'retried' | 'dead_lettered';

/** Told by the peer actor's delivery (federation/peer-delivery.ts) after each delivery request. */
export interface PeerDeliveryObserver {
  requestFinished(peer: ObservedPeer, outcome: DeliveryRequestOutcome, batchSize: number, seconds: number): void;
}

export const NO_DELIVERY_OBSERVER: PeerDeliveryObserver = { requestFinished: () => {} };

/**
 * The outcome label of a request from what its answer meant to the sender (answerKind of its
 * HTTP status, federation/answer-kind.ts, contract §5), read once by the sender: a rejection
 * dead-letters the peer; refused events are dead-lettered when sent alone, while a batch is split
 * or re-sent one by one; anything else but 2xx (no answer, 3xx, 408, 429, 5xx) is retried.
 */
export function requestOutcome(kind: AnswerKind, batchSize: number): DeliveryRequestOutcome {
  switch (kind) {
    case 'delivered': return 'delivered';
    case 'rejected': return 'dead_lettered';
    case 'refused': return batchSize === 1 ? 'dead_lettered' : 'retried';
    case 'rate-limited':
    case 'retryable': return 'retried';
  }
}

export function peerDeliveryObserver(metrics: Pick<Metrics, 'peerDeliveriesTotal' | 'peerDeliverySeconds' | 'peerBatchSize'>): PeerDeliveryObserver {
  return {
    requestFinished(peer, outcome, batchSize, seconds) {
      const labels = { peer: peer.id, peer_instance: peer.instanceId };
      if (batchSize > 0) metrics.peerDeliveriesTotal.inc({ ...labels, outcome }, batchSize);
      metrics.peerDeliverySeconds.observe(labels, seconds);
      metrics.peerBatchSize.observe(labels, batchSize);
    },
  };
}

// ── scrape-time gauges ─────────────────────────────────────────────────────────────────────

export const PEER_STATES = ['healthy', 'backing-off', 'rate-limited', 'dead-lettered'] as const;

export interface PeerGaugeOptions {
  /** A scrape within this long of the last read reuses it (several gauges, several scrapers). */
  readonly cacheMs?: number;
  /** Past this, the scrape goes on without the peer gauges. */
  readonly deadlineMs?: number;
}

/** `kite_cluster_nodes`: the live nodes this node counted at its last heartbeat (every 1.5 s). */
export function registerClusterGauge(registry: Registry, liveNodes: () => number): void {
  new Gauge({
    name: 'kite_cluster_nodes',
    help: 'Live nodes of this instance, this one included, as this node counted them at its last heartbeat (every 1.5 s).',
    registers: [registry],
    collect() {
      this.set(liveNodes());
    },
  });
}

/**
 * Registers the per-peer gauges, filled at scrape time from `load` (readPeerQueueStats on the pool).
 * One read serves every gauge of a scrape; a read still running is shared, never repeated, so a
 * hung database costs one query however often /metrics is scraped.
 */
export function registerPeerGauges(registry: Registry, load: () => Promise<readonly PeerQueueStats[]>, options: PeerGaugeOptions = {}): void {
  const cacheMs = options.cacheMs ?? 1000;
  const deadlineMs = options.deadlineMs ?? 2000;
  let last: { at: number; rows: readonly PeerQueueStats[] } | undefined;
  // The database read, shared until it settles: a hung database is asked once, however often scraped.
  let reading: Promise<readonly PeerQueueStats[]> | undefined;
  // One scrape's wait for it (with its deadline), shared by the gauges of that scrape.
  let attempt: Promise<readonly PeerQueueStats[] | undefined> | undefined;
  const rows = (): Promise<readonly PeerQueueStats[] | undefined> => {
    if (last && Date.now() - last.at < cacheMs) return Promise.resolve(last.rows);
    attempt ??= (async () => {
      reading ??= load()
        .then((loaded) => {
          last = { at: Date.now(), rows: loaded };
          return loaded;
        })
        .finally(() => (reading = undefined));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), deadlineMs)));
      try {
        const answer = await Promise.race([reading, deadline]);
        if (answer === undefined) failures.inc();
        return answer;
      } catch {
        failures.inc();
        return undefined;
      } finally {
        clearTimeout(timer);
        attempt = undefined;
      }
    })();
    return attempt;
  };
  const failures = new Counter({
    name: 'kite_peer_metrics_collect_failures_total',
    help: 'Scrapes on this node whose per-peer gauges were left out because the database failed or did not answer in time.',
    registers: [registry],
    // Collected alongside the gauges: waits for this scrape's read, so its failure counts in it.
    async collect() {
      await rows();
    },
  });
  const labelNames = ['peer', 'peer_instance'] as const;
  const gauge = (name: string, help: string, value: (row: PeerQueueStats) => number) =>
    new Gauge({
      name, help, labelNames, registers: [registry],
      async collect() {
        const snapshot = await rows();
        this.reset();
        for (const row of snapshot ?? []) this.set({ peer: row.id, peer_instance: row.instanceId }, value(row));
      },
    });
  new Gauge({
    name: 'kite_peer_state',
    help: 'Each peer\'s delivery state: 1 for its current state, 0 for the others. Read from the database at scrape time: every node of an instance reports the same value.',
    labelNames: ['peer', 'peer_instance', 'state'] as const,
    registers: [registry],
    async collect() {
      const snapshot = await rows();
      this.reset();
      for (const row of snapshot ?? []) {
        for (const state of PEER_STATES) this.set({ peer: row.id, peer_instance: row.instanceId, state }, row.state === state ? 1 : 0);
      }
    },
  });
  gauge('kite_peer_enabled', 'Whether delivery to the peer is enabled (1) or paused (0). Instance-wide, read at scrape time.', (r) => (r.enabled ? 1 : 0));
  gauge('kite_peer_queue_depth', 'Deliveries pending for each peer (its queue). Instance-wide, read from the database at scrape time.', (r) => r.pending);
  gauge('kite_peer_held_deliveries', 'Deliveries held as dead_lettered for each peer until a redrive or a good probe. Instance-wide, read at scrape time.', (r) => r.held);
  gauge('kite_peer_oldest_pending_age_seconds', 'Age of the oldest pending delivery of each peer (the head of its queue); 0 when none. Instance-wide, read at scrape time.', (r) => r.oldestPendingSeconds);
}
