/**
 * Prometheus metrics (served at /metrics). One registry per running Kite, so several in-process
 * instances in tests do not share counters.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'kite_process_' });
  const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
  return {
    registry,
    ingestTotal: new Counter({
      name: 'kite_ingest_requests_total',
      help: 'Webhooks received, by team, source and outcome (stored, duplicate, or an error code).',
      labelNames: ['team', 'source', 'outcome'] as const,
      registers: [registry],
    }),
    ingestSeconds: new Histogram({
      name: 'kite_ingest_duration_seconds',
      help: 'Time from receiving a webhook to answering it, by team, source and outcome.',
      labelNames: ['team', 'source', 'outcome'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    eventsStoredTotal: new Counter({
      name: 'kite_events_stored_total',
      help: 'Events newly stored (not duplicates), all origins.',
      registers: [registry],
    }),
    groupCommitSize: new Histogram({
      name: 'kite_group_commit_batch_size',
      help: 'Events written per group commit.',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000],
      registers: [registry],
    }),
    groupCommitSeconds: new Histogram({
      name: 'kite_group_commit_duration_seconds',
      help: 'Time of one group commit (append function and fsync).',
      labelNames: ['outcome'] as const,
      buckets: latencyBuckets,
      registers: [registry],
    }),
    listeners: new Gauge({
      name: 'kite_listeners',
      help: 'Open WebSocket listeners on this node.',
      registers: [registry],
    }),
    deliveriesTotal: new Counter({
      name: 'kite_listener_deliveries_total',
      help: 'Event frames sent to listeners.',
      registers: [registry],
    }),
    broadcastLagSeconds: new Histogram({
      name: 'kite_broadcast_lag_seconds',
      help: 'Time from an event\'s commit on this node to its broadcast to live listeners.',
      buckets: latencyBuckets,
      registers: [registry],
    }),
    slowListenersClosedTotal: new Counter({
      name: 'kite_slow_listeners_closed_total',
      help: 'Listeners closed with 1013 because their send buffer passed 8 MiB.',
      registers: [registry],
    }),
    // Federation, counted on this node (see federation-metrics.ts for the per-peer gauges read at scrape time).
    peerDeliveriesTotal: new Counter({
      name: 'kite_peer_deliveries_total',
      help: 'Events in delivery requests sent to each peer by this node, by outcome: delivered (2xx), retried (sent again later), dead_lettered (held until a redrive).',
      labelNames: ['peer', 'peer_instance', 'outcome'] as const,
      registers: [registry],
    }),
    peerDeliverySeconds: new Histogram({
      name: 'kite_peer_delivery_duration_seconds',
      help: 'Round trip of one delivery request to a peer from this node (send to answer or failure), whatever the outcome.',
      labelNames: ['peer', 'peer_instance'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    peerBatchSize: new Histogram({
      name: 'kite_peer_batch_size',
      help: 'Events per delivery request to a peer from this node.',
      labelNames: ['peer', 'peer_instance'] as const,
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers: [registry],
    }),
    federationDroppedTotal: new Counter({
      name: 'kite_federation_dropped_total',
      help: 'Events received from peers on this node and not forwarded further: reason="chain" (already stored here, not stored again; peer is the sender) or reason="hop_limit" (stored but not forwarded; peer is the one it was not sent to).',
      labelNames: ['reason', 'peer', 'peer_instance'] as const,
      registers: [registry],
    }),
    httpRequestsTotal: new Counter({
      name: 'kite_http_requests_total',
      help: 'HTTP API requests by route and status.',
      labelNames: ['route', 'status'] as const,
      registers: [registry],
    }),
  };
}
