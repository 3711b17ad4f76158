/**
 * One peer's running actor (machines/peer.ts) under one lease, with its effects: delivery and
 * probes (peer-delivery.ts), holding and releasing deliveries, persisting its state and storing
 * `kite.federation.peer_state_changed`.
 *
 * Database writes of the actor's synchronous actions (hold, release, state) are chained and every
 * delivery waits for the chain, so a redrive's release is visible before the next read. Every
 * write is fenced by the lease (lease-store.ts). When a write finds the lease gone, or an effect
 * fails on our side (the database, not the peer), the actor reports `ended` and goes quiet
 * instead of counting a failed attempt: the supervisor stops it, and a fresh actor resumes from
 * the persisted state once this node holds the lease again.
 */
import { createActor, fromPromise, type Actor } from 'xstate';
import type { DeliveryOutcome } from '../../machines/delivery-outcome.js';
import { peerMachine } from '../../machines/peer.js';
import type { DeliverInput, PeerStateChange, ProbeInput } from '../../machines/peer-types.js';
import { inTransaction, type Pool, type PoolClient } from '../db/pool.js';
import type { PeerDeliveryObserver } from '../observability/federation-metrics.js';
import type { Logger } from '../observability/logger.js';
import type { NormalizedEvent } from '../providers/types.js';
import type { DeliveredMarks } from './delivered-marks.js';
import { peerStateChangedEvent } from './internal-events.js';
import { fenceCheck, LeaseLostError } from './lease-store.js';
import { PeerDelivery } from './peer-delivery.js';
import { PeerHttp } from './peer-http.js';
import type { QueueReader } from './queue-reader.js';
import type { SupervisedPeer } from './supervised-peers.js';
import { lockTeamRow } from './team-lock.js';
import { TokenBucket } from './token-bucket.js';

export interface PeerActorDeps {
  readonly pool: Pool;
  readonly logger: Logger;
  readonly selfInstanceId: string;
  readonly publicUrl: string;
  readonly federationCaFile: string | undefined;
  /** Stores an internal event on `client`, in the caller's transaction (with the state it reports). */
  readonly appendInternal: (client: PoolClient, teamId: number, event: NormalizedEvent) => Promise<unknown>;
  readonly observer?: PeerDeliveryObserver;
  /** The node's queue reader, shared by its actors. */
  readonly reader: QueueReader;
  /** The node's marks of delivered batches, shared by its actors. */
  readonly marks: DeliveredMarks;
  /** The actor cannot go on under this lease: `lost` (taken over) or trouble on our side. */
  readonly ended: (peerId: string, why: 'lease-lost' | 'node-trouble', err: unknown) => void;
}

/** The provided peer machine, built once per node: its effects find the peer's PeerActor by ID. */
export type ProvidedPeerMachine = ReturnType<typeof providePeerMachine>;

/**
 * How long an idle actor waits before reading its queue with no wake-up: a last resort only.
 * The node's pending sweep (pending-sweep.ts) is the safety net, every 5 s for all its actors.
 */
export const IDLE_POLL_MS = 60_000;

/**
 * One `provide()` for every peer (a provided machine is a full copy of its definition, ~35 KB):
 * effects and actions look their PeerActor up by the peer ID in the input or context.
 */
export function providePeerMachine(find: (peerId: string) => PeerActor | undefined) {
  const effect = <Input extends DeliverInput | ProbeInput>(kind: 'deliver' | 'probe') =>
    fromPromise<DeliveryOutcome, Input>(async ({ input, signal }) => {
      const actor = find(input.peerId);
      return actor ? actor.run(kind, signal, input.timeoutMs) : quietUntil(signal);
    });
  return peerMachine.provide({
    delays: { idlePoll: IDLE_POLL_MS },
    actors: { deliver: effect<DeliverInput>('deliver'), probe: effect<ProbeInput>('probe') },
    actions: {
      reportStateChange: ({ context }, change: PeerStateChange) => find(context.peerId)?.stateChanged(change),
      holdPending: ({ context }) => find(context.peerId)?.switchTo('dead-lettered'),
      releaseHeld: ({ context }) => find(context.peerId)?.switchTo('healthy'),
    },
  });
}

export class PeerActor {
  private readonly actor: Actor<ProvidedPeerMachine>;
  private readonly bucket: TokenBucket;
  private readonly delivery: PeerDelivery;
  private readonly log: Logger;
  private http: PeerHttp;
  private writes: Promise<unknown> = Promise.resolve();
  private ended = false;
  /** Wake-ups received, so a delivery can tell whether one came while it ran. */
  private wakes = 0;
  /** `wakes` when the last delivery started: a later one means something may have been enqueued. */
  private wakesAtDelivery = -1;
  /** Whether the last delivery delivered: the next one continues the same run of the queue. */
  private lastDelivered = false;

  constructor(
    private peer: SupervisedPeer,
    readonly fence: number,
    machine: ProvidedPeerMachine,
    private readonly deps: PeerActorDeps,
  ) {
    this.bucket = new TokenBucket(peer.rateLimit.perSecond, peer.rateLimit.burst);
    this.http = new PeerHttp(peer.url, peer.retry.timeoutMs, deps.federationCaFile);
    this.log = deps.logger.child({ peer: peer.id, instanceId: peer.instanceId });
    this.delivery = new PeerDelivery({
      pool: deps.pool,
      selfInstanceId: deps.selfInstanceId,
      publicUrl: deps.publicUrl,
      fence,
      peer: () => this.peer,
      signingKeys: () => this.peer.signingKeys(),
      http: () => this.http,
      bucket: this.bucket,
      appendInternal: deps.appendInternal,
      reader: deps.reader,
      marks: deps.marks,
      ...(deps.observer ? { observer: deps.observer } : {}),
    });
    this.actor = createActor(machine, {
      input: { peerId: peer.id, retry: peer.retry, initialState: peer.state, attempts: peer.attempts },
    });
    this.actor.subscribe({ error: (err) => this.log.error({ err }, 'peer actor failed') });
  }

  /**
   * The `deliver` or `probe` effect, after the bookkeeping writes before it. A wake-up that comes
   * while a delivery runs is lost on the machine (`delivering` ignores WORK_AVAILABLE), so a read
   * that found the queue empty is repeated if one came meanwhile: else an event committed just
   * after that read would wait for the next one, or for the node's 5 s pending sweep. Conversely,
   * right after a batch that emptied the queue as read, with no wake-up since the delivery
   * started, the queue is not read again: an event committed after that read wakes us (its
   * NOTIFY comes after its commit), and a lost notification is what the node's pending sweep is
   * for.
   */
  async run(kind: 'deliver' | 'probe', signal: AbortSignal, timeoutMs: number): Promise<DeliveryOutcome> {
    await this.writes;
    // A write that failed ended the actor: send nothing (it would count an attempt never made).
    if (this.ended) return quietUntil(signal);
    try {
      if (kind === 'probe') return await this.delivery.probe(signal, timeoutMs);
      let seen = this.wakes;
      // Neither continuing a run of the queue nor woken: a timer (the idle poll, a backoff) — the
      // safety net, so it reads from the bottom of the queue, not above the last delivery.
      if (!this.lastDelivered && this.wakesAtDelivery === seen) this.delivery.forgetFloor();
      if (this.delivery.takeDrained() && this.wakesAtDelivery === seen) {
        await this.delivery.settle();
        // A wake-up during that wait would be lost on the machine, still `delivering`: read.
        if (this.wakes === seen) return { tag: 'idle' };
        seen = this.wakes;
      }
      this.wakesAtDelivery = seen;
      this.lastDelivered = false;
      let outcome = await this.delivery.deliverNext(signal, timeoutMs);
      while (outcome.tag === 'idle' && this.wakes !== seen && !signal.aborted) {
        seen = this.wakes;
        outcome = await this.delivery.deliverNext(signal, timeoutMs);
      }
      this.lastDelivered = outcome.tag === 'delivered';
      return outcome;
    } catch (err) {
      if (signal.aborted) throw err;
      this.end(err);
      return quietUntil(signal);
    }
  }

  stateChanged(change: PeerStateChange): void {
    this.log.info({ from: change.from, to: change.to, reason: change.reason, lastError: change.lastError }, 'peer state changed');
    this.chained(() => this.persistState(change));
  }

  switchTo(to: 'dead-lettered' | 'healthy'): void {
    this.chained(() => this.switchHolding(to));
  }

  private chained(write: () => Promise<unknown>): void {
    // A hold or release changes the queue: a batch read ahead before it may skip released rows.
    this.delivery.forgetReadAhead();
    this.writes = this.writes.then(() => (this.ended ? undefined : write())).catch((err: unknown) => this.end(err));
  }

  start(): void {
    this.actor.start();
  }

  wake(): void {
    this.wakes++;
    this.actor.send({ type: 'WORK_AVAILABLE' });
  }

  /** Waiting for work (the sweep's question): not delivering, waiting out a delay nor holding. */
  isIdle(): boolean {
    return this.actor.getSnapshot().matches({ healthy: 'idle' });
  }

  /**
   * A wake-up may have been lost (the node's listener reconnected, or the pending sweep found
   * rows while idle): a redrive made elsewhere may have put rows back below the last delivery,
   * so read the queue from the bottom.
   */
  notificationsMissed(): void {
    this.delivery.forgetReadAhead();
    this.wake();
  }

  probeNow(): void {
    this.actor.send({ type: 'PROBE_NOW' });
  }

  /** The peer's row changed (PATCH, redrive, rotation): apply it to the running actor. */
  update(peer: SupervisedPeer, redrive: boolean): void {
    const before = this.peer;
    this.peer = peer;
    // An answer of the old settings still to be reported (a one-at-a-time re-send's failure) no
    // longer says anything about the new ones.
    this.delivery.forgetReadAhead();
    this.bucket.reconfigure(peer.rateLimit.perSecond, peer.rateLimit.burst);
    if (before.url !== peer.url || before.retry.timeoutMs !== peer.retry.timeoutMs) {
      void this.http.close();
      this.http = new PeerHttp(peer.url, peer.retry.timeoutMs, this.deps.federationCaFile);
    }
    this.actor.send({ type: 'CONFIG_UPDATED', retry: peer.retry });
    if (redrive) this.actor.send({ type: 'REDRIVE' });
    else if (before.url !== peer.url || before.remoteTeam !== peer.remoteTeam || before.outboundKey !== peer.outboundKey || before.inboundKey !== peer.inboundKey) {
      this.actor.send({ type: 'PROBE_NOW' });
    }
    this.wake();
  }

  /** Stops the actor (aborting its request in flight) and waits for its writes. */
  async stop(): Promise<void> {
    this.ended = true;
    this.actor.stop();
    void this.http.close();
    await this.writes.catch(() => {});
    // The last delivered batch's mark may still be committing: let it, so a node that hands the
    // peer over does not leave the next owner a batch to send again.
    await this.delivery.settle().catch(() => {});
  }

  private end(err: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.deps.ended(this.peer.id, err instanceof LeaseLostError ? 'lease-lost' : 'node-trouble', err);
  }

  /**
   * Holds (or releases) the peer's deliveries and records its state in one transaction under the
   * team's row lock — the lock every append takes before the outbox reads the peer's state. So an
   * append commits either before (and its rows are held or released here) or after (and it sees
   * the new state), never in between, which would leave rows held by a healthy peer.
   */
  private async switchHolding(to: 'dead-lettered' | 'healthy'): Promise<void> {
    const peer = this.peer;
    await inTransaction(this.deps.pool, async (client) => {
      await lockTeamRow(client, peer.teamId);
      const lease = await client.query('SELECT 1 FROM peer_leases WHERE peer_id = $1 AND fence = $2 FOR SHARE', [peer.id, this.fence]);
      if (lease.rowCount === 0) throw new LeaseLostError(peer.id);
      const [from, into] = to === 'dead-lettered' ? ['pending', 'dead_lettered'] : ['dead_lettered', 'pending'];
      // Events the peer refused on their own stay held until a redrive (which releases them all).
      await client.query('UPDATE federation_deliveries SET status = $3 WHERE peer_id = $1 AND status = $2 AND NOT refused_alone', [peer.id, from, into]);
      await client.query('UPDATE peers SET state = $2 WHERE id = $1', [peer.id, to]);
    });
  }

  /**
   * The state and its `peer_state_changed` event commit together, fenced by the lease. The team's
   * row is locked first, as a redrive and the append function lock it, so the three never wait
   * on each other in a cycle (the append below takes it anyway).
   */
  private async persistState(change: PeerStateChange): Promise<void> {
    const peer = this.peer;
    // A delivered batch's mark may still be committing (it overlaps the next send): let it, so
    // the `held` count below does not include that batch.
    await this.delivery.settle();
    await inTransaction(this.deps.pool, async (client) => {
      await lockTeamRow(client, peer.teamId);
      const result = await client.query<{ owned: number; held: number }>(
        `WITH ${fenceCheck(1, 2)},
         updated AS (
           UPDATE peers SET state = $3, attempts = $4, last_error = $5 WHERE id = $1 AND EXISTS (SELECT 1 FROM lease) RETURNING 1
         )
         SELECT (SELECT count(*) FROM updated)::int AS owned,
                (SELECT count(*) FROM federation_deliveries WHERE peer_id = $1 AND status IN ('pending', 'dead_lettered'))::int AS held`,
        [peer.id, this.fence, change.to, change.attempts, change.lastError],
      );
      const { owned, held } = result.rows[0]!;
      if (owned === 0) throw new LeaseLostError(peer.id);
      await this.deps.appendInternal(client, peer.teamId, peerStateChangedEvent(this.deps.publicUrl, {
        peerId: peer.id, instanceId: peer.instanceId, from: change.from, to: change.to, reason: change.reason, held,
      }));
    });
  }
}

/** An effect that must neither succeed nor fail: it waits to be aborted by the actor's stop. */
function quietUntil(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
}
