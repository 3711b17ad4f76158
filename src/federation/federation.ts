/**
 * Federation on one node, assembled: the lease keeper (which peers this node runs), the
 * supervisor of their actors, and how peer changes and wake-ups reach them (this node's API at
 * once; every node's through `kite_config` "peer:<team>:<peer>" / "leases:<node>" and
 * `kite_federation` "<peer id>,…" notifications, all idempotent).
 * The outbox itself is written by the append function (migration 0003), in the transaction that
 * stores the events, and its `kite_federation` notification wakes the actors — on this node too.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Config } from '../config.js';
import type { Pool, PoolClient } from '../db/pool.js';
import type { PeerDeliveryObserver } from '../observability/federation-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { NormalizedEvent } from '../providers/types.js';
import { DeliveredMarks } from './delivered-marks.js';
import { LeaseKeeper } from './lease-keeper.js';
import { LeaseStore } from './lease-store.js';
import type { PeerStore } from './peer-store.js';
import { PendingSweep } from './pending-sweep.js';
import { QueueReader } from './queue-reader.js';
import { PeerSupervisor } from './peer-supervisor.js';
import { supervisedPeers } from './supervised-peers.js';

/** A lease lapses this long after its last renewal: a killed node's peers move within TTL + heartbeat. */
export const LEASE_TTL_MS = 5_000;
export const HEARTBEAT_MS = 1_500;
/** How often the node looks for idle actors with pending deliveries (a missed wake-up). */
export const PENDING_SWEEP_MS = 5_000;

export interface FederationDeps {
  readonly config: Config;
  readonly pool: Pool;
  readonly logger: Logger;
  readonly peers: PeerStore;
  /** Stores an internal event on `client`, in the caller's transaction (with the state it reports). */
  readonly appendInternal: (client: PoolClient, teamId: number, event: NormalizedEvent) => Promise<unknown>;
  /** Metrics of every delivery request. */
  readonly observer?: PeerDeliveryObserver;
}

export interface Federation {
  /** This node's name in `kite_nodes` and `peer_leases`: unique per process. */
  readonly nodeId: string;
  start(): Promise<void>;
  /** Stops this node's actors and gives their leases back at once. */
  stop(): Promise<void>;
  /** A `kite_federation` notification: these peers have new deliveries ('*': maybe any). */
  wake(peerIds: readonly string[]): void;
  /** A `kite_config` "peer:…" notification or a local change. */
  peerChanged(peerId: string, redrive?: boolean): void;
  /** A `kite_config` "probe:<peer id>" notification: the peer's actor, if it runs here, probes now. */
  probeNow(peerId: string): void;
  /** A `kite_config` "leases:…" notification: a node gave peers back. */
  leasesReleased(): void;
  /** Peer IDs whose actors run on this node. */
  runningPeers(): string[];
  /** Live nodes of the instance, this one included, as of this node's last heartbeat. */
  liveNodes(): number;
  /** The notification listener reconnected: what it missed is read again. */
  notificationsMissed(): void;
}

export function createFederation(deps: FederationDeps): Federation {
  const log = deps.logger.child({ component: 'federation' });
  const nodeId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  let keeper!: LeaseKeeper;
  const supervisor = new PeerSupervisor({
    pool: deps.pool,
    logger: log,
    selfInstanceId: deps.config.instanceId,
    publicUrl: deps.config.publicUrl,
    federationCaFile: deps.config.federationCaFile,
    appendInternal: deps.appendInternal,
    reader: new QueueReader(deps.pool),
    marks: new DeliveredMarks(deps.pool),
    ...(deps.observer ? { observer: deps.observer } : {}),
    peers: supervisedPeers(deps.peers),
    leases: () => keeper,
  });
  keeper = new LeaseKeeper(new LeaseStore(deps.pool, nodeId, LEASE_TTL_MS), supervisor, log.child({ node: nodeId }), HEARTBEAT_MS);
  const sweep = new PendingSweep(deps.pool, supervisor, log, PENDING_SWEEP_MS);
  let unsubscribe: (() => void) | undefined;
  const peerChanged = (peerId: string, redrive = false) => {
    supervisor.changed(peerId, { redrive }).catch((err: unknown) => log.warn({ err: (err as Error).message, peer: peerId }, 'could not apply a peer change; the next one retries'));
  };
  return {
    nodeId,
    async start() {
      unsubscribe = deps.peers.onPeerChanged((change) => peerChanged(change.peerId, change.kind === 'redriven'));
      await keeper.start();
      sweep.start();
    },
    async stop() {
      unsubscribe?.();
      await sweep.stop();
      await keeper.stop();
    },
    wake: (peerIds) => supervisor.wake(peerIds),
    peerChanged,
    leasesReleased: () => keeper.nudge(),
    probeNow: (peerId) => supervisor.probeNow(peerId),
    runningPeers: () => supervisor.runningPeers(),
    liveNodes: () => keeper.liveNodes(),
    notificationsMissed: () => supervisor.notificationsMissed(),
  };
}
