/**
 * The peer actors this node runs: one PeerActor (peer-actor.ts) for each peer whose lease it
 * holds (lease-keeper.ts decides which), reconciled with peer changes.
 *
 * Peer changes (API on this node, `kite_config` notifications from others) reach the actor at
 * once: stopped and its lease given back when the peer is disabled or deleted, told to reconfigure,
 * probe or redrive otherwise. A change to a peer this node does not run asks the keeper for a
 * cycle, so a new or re-enabled peer is claimed without waiting for the next heartbeat.
 */
import type { Logger } from '../observability/logger.js';
import type { LeaseHolder } from './lease-keeper.js';
import type { HeldLease } from './lease-store.js';
import { PeerActor, providePeerMachine, type PeerActorDeps, type ProvidedPeerMachine } from './peer-actor.js';
import type { PeerSource } from './supervised-peers.js';

/** What the supervisor needs of the lease keeper. */
export interface Leases {
  nudge(): void;
  forget(peerId: string): void;
  giveBack(peerId: string): Promise<void>;
}

export interface SupervisorDeps extends Omit<PeerActorDeps, 'ended'> {
  readonly logger: Logger;
  readonly peers: PeerSource;
  readonly leases: () => Leases;
}

export class PeerSupervisor implements LeaseHolder {
  private readonly running = new Map<string, PeerActor>();
  private readonly machine: ProvidedPeerMachine = providePeerMachine((peerId) => this.running.get(peerId));

  constructor(private readonly deps: SupervisorDeps) {}

  /** Peer IDs whose actors run here. */
  runningPeers(): string[] {
    return [...this.running.keys()];
  }

  async acquired(lease: HeldLease): Promise<boolean> {
    const peer = await this.deps.peers.load(lease.peerId);
    if (!peer || peer.deleted || !peer.enabled) return false;
    await this.relinquish(lease.peerId); // an actor of an older lease of ours, should one remain
    const actor = new PeerActor(peer, lease.fence, this.machine, { ...this.deps, ended: (peerId, why, err) => this.ended(peerId, actor, why, err) });
    this.running.set(peer.id, actor); // before start: the shared machine's effects find it here
    actor.start();
    return true;
  }

  async relinquish(peerId: string): Promise<void> {
    const actor = this.running.get(peerId);
    if (!actor) return;
    this.running.delete(peerId);
    await actor.stop();
  }

  /** New deliveries were queued for these peers ('*': maybe any). */
  wake(peerIds: readonly string[]): void {
    const ids = peerIds.includes('*') ? [...this.running.keys()] : peerIds;
    for (const id of ids) this.running.get(id)?.wake();
  }

  /** This node's listener reconnected: notifications may have been lost (peer-actor.ts). */
  notificationsMissed(): void {
    for (const actor of this.running.values()) actor.notificationsMissed();
  }

  /** Peers whose actors wait for work here (pending-sweep.ts). */
  idlePeers(): string[] {
    const ids: string[] = [];
    for (const [id, actor] of this.running) if (actor.isIdle()) ids.push(id);
    return ids;
  }

  /** The sweep found pending deliveries for an idle actor: it missed their wake-up. */
  wakeupMissed(peerId: string): void {
    const actor = this.running.get(peerId);
    if (actor?.isIdle()) actor.notificationsMissed();
  }

  /** A dead-lettered peer's actor probes at once (ignored in other states). */
  probeNow(peerId: string): void {
    this.running.get(peerId)?.probeNow();
  }

  /** A peer was created, changed, redriven or deleted (here or on another node). */
  async changed(peerId: string, what: { redrive?: boolean } = {}): Promise<void> {
    const actor = this.running.get(peerId);
    if (!actor) {
      this.deps.leases().nudge();
      return;
    }
    const peer = await this.deps.peers.load(peerId);
    if (!peer || peer.deleted || !peer.enabled) {
      await this.relinquish(peerId);
      await this.deps.leases().giveBack(peerId);
      return;
    }
    actor.update(peer, what.redrive ?? false);
  }

  /** The actor ended itself: stop it; the keeper claims the peer again if the lease is still ours. */
  private ended(peerId: string, actor: PeerActor, why: 'lease-lost' | 'node-trouble', err: unknown): void {
    const log = this.deps.logger.child({ peer: peerId });
    if (why === 'lease-lost') log.warn('peer lease taken over by another node; this actor stops');
    else log.warn({ err: (err as Error).message }, 'peer actor paused by a database failure; it resumes from its persisted state');
    if (this.running.get(peerId) !== actor) return;
    this.running.delete(peerId);
    this.deps.leases().forget(peerId);
    // Not claimed again before the keeper's next cycle: a failing database is not hammered.
    void actor.stop();
  }
}
