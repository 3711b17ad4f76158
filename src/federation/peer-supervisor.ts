/**
 * Runs one peer actor (machines/peer.ts) per enabled peer on this node and gives it its effects:
 * delivery and probes (peer-delivery.ts), holding and releasing deliveries, persisting its state
 * and storing `kite.federation.peer_state_changed`.
 *
 * Per peer, database writes of the actor's synchronous actions (hold, release, state) are chained
 * and every delivery waits for the chain, so a redrive's release is visible before the next read.
 * Peer changes (API on this node, `kite_config` notifications from others) reconcile the actor:
 * spawned when enabled, stopped when disabled or deleted (aborting its request in flight), told
 * CONFIG_UPDATED, PROBE_NOW or REDRIVE otherwise.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type { DeliveryOutcome } from '../../machines/delivery-outcome.js';
import { peerMachine } from '../../machines/peer.js';
import type { DeliverInput, PeerState, PeerStateChange, ProbeInput, RetryPolicy } from '../../machines/peer-types.js';
import { inTransaction, type Pool } from '../db/pool.js';
import type { Logger } from '../observability/logger.js';
import type { NormalizedEvent } from '../providers/types.js';
import { peerStateChangedEvent } from './internal-events.js';
import { PeerDelivery } from './peer-delivery.js';
import { PeerHttp } from './peer-http.js';
import { TokenBucket } from './token-bucket.js';

export interface SupervisedPeer {
  readonly id: string;
  readonly teamId: number;
  readonly instanceId: string;
  readonly url: string;
  readonly remoteTeam: string;
  readonly enabled: boolean;
  readonly deleted: boolean;
  readonly state: PeerState;
  readonly attempts: number;
  readonly retry: RetryPolicy;
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  /** The current keys: a change of either (a rotation) is worth a probe when dead-lettered. */
  readonly outboundKey: string;
  readonly inboundKey: string;
  /** Keys to sign with now: the current one, plus the previous one during a rotation's 24 hours. */
  signingKeys(): string[];
}

export interface PeerSource {
  loadEnabled(): Promise<SupervisedPeer[]>;
  load(id: string): Promise<SupervisedPeer | undefined>;
}

export interface SupervisorDeps {
  readonly pool: Pool;
  readonly logger: Logger;
  readonly selfInstanceId: string;
  readonly publicUrl: string;
  readonly federationCaFile: string | undefined;
  readonly peers: PeerSource;
  readonly appendInternal: (teamId: number, event: NormalizedEvent) => Promise<unknown>;
}

interface Running {
  peer: SupervisedPeer;
  readonly actor: Actor<typeof peerMachine>;
  http: PeerHttp;
  readonly bucket: TokenBucket;
  writes: Promise<unknown>;
}

export class PeerSupervisor {
  private readonly running = new Map<string, Running>();
  private stopped = false;

  constructor(private readonly deps: SupervisorDeps) {}

  async start(): Promise<void> {
    for (const peer of await this.deps.peers.loadEnabled()) this.spawn(peer);
  }

  /** New deliveries were queued for these peers. */
  wake(peerIds: readonly string[]): void {
    const ids = peerIds.includes('*') ? [...this.running.keys()] : peerIds;
    for (const id of ids) this.running.get(id)?.actor.send({ type: 'WORK_AVAILABLE' });
  }

  /** A peer was created, changed, redriven or deleted (here or on another node). */
  async changed(peerId: string, what: { redrive?: boolean } = {}): Promise<void> {
    const peer = await this.deps.peers.load(peerId);
    const current = this.running.get(peerId);
    if (!peer || peer.deleted || !peer.enabled) {
      if (current) this.stopOne(peerId);
      return;
    }
    if (!current) {
      this.spawn(peer);
      return;
    }
    const before = current.peer;
    current.peer = peer;
    current.bucket.reconfigure(peer.rateLimit.perSecond, peer.rateLimit.burst);
    if (before.url !== peer.url || before.retry.timeoutMs !== peer.retry.timeoutMs) {
      void current.http.close();
      current.http = new PeerHttp(peer.url, peer.retry.timeoutMs, this.deps.federationCaFile);
    }
    current.actor.send({ type: 'CONFIG_UPDATED', retry: peer.retry });
    if (what.redrive) current.actor.send({ type: 'REDRIVE' });
    else if (before.url !== peer.url || before.remoteTeam !== peer.remoteTeam || before.outboundKey !== peer.outboundKey || before.inboundKey !== peer.inboundKey) {
      current.actor.send({ type: 'PROBE_NOW' });
    }
    current.actor.send({ type: 'WORK_AVAILABLE' });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const all = [...this.running.values()];
    for (const id of [...this.running.keys()]) this.stopOne(id);
    await Promise.all(all.map((r) => r.writes.catch(() => {})));
  }

  private stopOne(peerId: string): void {
    const running = this.running.get(peerId);
    if (!running) return;
    this.running.delete(peerId);
    running.actor.stop(); // aborts the request in flight through the invoked actor's signal
    void running.http.close();
  }

  private spawn(initial: SupervisedPeer): void {
    if (this.stopped || this.running.has(initial.id)) return;
    const bucket = new TokenBucket(initial.rateLimit.perSecond, initial.rateLimit.burst);
    const log = this.deps.logger.child({ peer: initial.id, instanceId: initial.instanceId });
    // `running` is assigned below; the effects only run after the actor starts.
    let running!: Running;
    const delivery = new PeerDelivery({
      pool: this.deps.pool,
      selfInstanceId: this.deps.selfInstanceId,
      publicUrl: this.deps.publicUrl,
      peer: () => running.peer,
      signingKeys: () => running.peer.signingKeys(),
      http: () => running.http,
      bucket,
      appendInternal: this.deps.appendInternal,
    });
    const chained = (write: () => Promise<unknown>) => {
      running.writes = running.writes.then(write).catch((err: unknown) => log.error({ err }, 'peer bookkeeping write failed'));
    };
    const machine = peerMachine.provide({
      actors: {
        deliver: fromPromise<DeliveryOutcome, DeliverInput>(async ({ input, signal }) => {
          await running.writes;
          return delivery.deliverNext(signal, input.timeoutMs);
        }),
        probe: fromPromise<DeliveryOutcome, ProbeInput>(async ({ input, signal }) => {
          await running.writes;
          return delivery.probe(signal, input.timeoutMs);
        }),
      },
      actions: {
        reportStateChange: (_, change: PeerStateChange) => {
          log.info({ from: change.from, to: change.to, reason: change.reason, lastError: change.lastError }, 'peer state changed');
          chained(() => this.persistState(running.peer, change));
        },
        holdPending: () => chained(() => this.switchHolding(running.peer, 'dead-lettered')),
        releaseHeld: () => chained(() => this.switchHolding(running.peer, 'healthy')),
      },
    });
    const actor = createActor(machine, {
      input: { peerId: initial.id, retry: initial.retry, initialState: initial.state, attempts: initial.attempts },
    });
    running = { peer: initial, actor, http: new PeerHttp(initial.url, initial.retry.timeoutMs, this.deps.federationCaFile), bucket, writes: Promise.resolve() };
    actor.subscribe({ error: (err) => log.error({ err }, 'peer actor failed') });
    this.running.set(initial.id, running);
    actor.start();
  }

  /**
   * Holds (or releases) the peer's deliveries and records its state in one transaction under the
   * team's row lock — the lock every append takes before the outbox reads the peer's state. So an
   * append commits either before (and its rows are held or released here) or after (and it sees
   * the new state), never in between, which would leave rows held by a healthy peer.
   */
  private async switchHolding(peer: SupervisedPeer, to: 'dead-lettered' | 'healthy'): Promise<void> {
    await inTransaction(this.deps.pool, async (client) => {
      await client.query('SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE', [peer.teamId]);
      const [from, into] = to === 'dead-lettered' ? ['pending', 'dead_lettered'] : ['dead_lettered', 'pending'];
      // Events the peer refused on their own stay held until a redrive (which releases them all).
      await client.query('UPDATE federation_deliveries SET status = $3 WHERE peer_id = $1 AND status = $2 AND NOT refused_alone', [peer.id, from, into]);
      await client.query('UPDATE peers SET state = $2 WHERE id = $1', [peer.id, to]);
    });
  }

  private async persistState(peer: SupervisedPeer, change: PeerStateChange): Promise<void> {
    const { pool } = this.deps;
    await pool.query('UPDATE peers SET state = $2, attempts = $3, last_error = $4 WHERE id = $1', [peer.id, change.to, change.attempts, change.lastError]);
    const held = await pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM federation_deliveries WHERE peer_id = $1 AND status IN ('pending', 'dead_lettered')",
      [peer.id],
    );
    await this.deps.appendInternal(peer.teamId, peerStateChangedEvent(this.deps.publicUrl, {
      peerId: peer.id, instanceId: peer.instanceId, from: change.from, to: change.to, reason: change.reason, held: held.rows[0]?.n ?? 0,
    }));
  }
}
