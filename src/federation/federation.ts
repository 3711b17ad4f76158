/**
 * Federation on one node, assembled: the supervisor of peer actors, and how peer changes and
 * wake-ups reach them (this node's API at once; every node's through `kite_config`
 * "peer:<team>:<peer>" and `kite_federation` "<peer id>,…" notifications, both idempotent).
 * The outbox itself is written by the append function (migration 0003), in the transaction that
 * stores the events, and its `kite_federation` notification wakes the actors — on this node too.
 */
import type { Config } from '../config.js';
import type { Pool } from '../db/pool.js';
import type { Logger } from '../observability/logger.js';
import type { NormalizedEvent } from '../providers/types.js';
import type { PeerStore } from './peer-store.js';
import { PeerSupervisor } from './peer-supervisor.js';
import { supervisedPeers } from './supervised-peers.js';

export interface FederationDeps {
  readonly config: Config;
  readonly pool: Pool;
  readonly logger: Logger;
  readonly peers: PeerStore;
  readonly appendInternal: (teamId: number, event: NormalizedEvent) => Promise<unknown>;
}

export interface Federation {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** A `kite_federation` notification: these peers have new deliveries ('*': maybe any). */
  wake(peerIds: readonly string[]): void;
  /** A `kite_config` "peer:…" notification or a local change. */
  peerChanged(peerId: string, redrive?: boolean): void;
}

export function createFederation(deps: FederationDeps): Federation {
  const log = deps.logger.child({ component: 'federation' });
  const supervisor = new PeerSupervisor({
    pool: deps.pool,
    logger: log,
    selfInstanceId: deps.config.instanceId,
    publicUrl: deps.config.publicUrl,
    federationCaFile: deps.config.federationCaFile,
    peers: supervisedPeers(deps.peers),
    appendInternal: deps.appendInternal,
  });
  let unsubscribe: (() => void) | undefined;
  const peerChanged = (peerId: string, redrive = false) => {
    supervisor.changed(peerId, { redrive }).catch((err: unknown) => log.warn({ err: (err as Error).message, peer: peerId }, 'could not apply a peer change; the next one retries'));
  };
  return {
    async start() {
      unsubscribe = deps.peers.onPeerChanged((change) => peerChanged(change.peerId, change.kind === 'redriven'));
      await supervisor.start();
    },
    async stop() {
      unsubscribe?.();
      await supervisor.stop();
    },
    wake: (peerIds) => supervisor.wake(peerIds),
    peerChanged,
  };
}
