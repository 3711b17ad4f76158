/**
 * Keeps this node's share of the peer leases (docs/operations.md "Cluster mode").
 *
 * Every `intervalMs`, and at once when nudged (a peer was created or enabled, a node left), one
 * cycle: heartbeat (renew what it holds, count live nodes and enabled peers); stop the actors of
 * leases it lost; then give back what exceeds its fair share, ceil(peers / nodes), or claim up
 * to it. Cycles never overlap. A node whose heartbeat fails stops all its actors (it can no
 * longer prove it owns their leases, and their writes would fail anyway) and claims again once it
 * can: nothing is retried against a peer meanwhile, so no retry is spent on an outage that is
 * ours. A failure later in the cycle (a claim, a release, starting one actor) stops nothing: the
 * renewed leases are ours, and the next cycle tries again. A lease lapses `ttlMs` after its last
 * renewal, so a node killed with kill -9 has its peers taken over within ttlMs + intervalMs; a
 * node that stops gives them back at once.
 */
import type { Logger } from '../observability/logger.js';
import type { Heartbeat, HeldLease, LeaseStore } from './lease-store.js';

export interface LeaseHolder {
  /** Run the peer's actor under this lease; false when the peer cannot run (the lease goes back). */
  acquired(lease: HeldLease): Promise<boolean>;
  /** Stop the peer's actor and wait for its writes in flight. */
  relinquish(peerId: string): Promise<void>;
}

export class LeaseKeeper {
  private readonly held = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private cycling: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private unreachable = false;
  /** Live nodes of the instance, this one included, at the last heartbeat. */
  private nodes = 1;

  constructor(
    private readonly store: LeaseStore,
    private readonly holder: LeaseHolder,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  /** Live nodes of the instance, this one included, as of the last heartbeat (1 before the first). */
  liveNodes(): number {
    return this.nodes;
  }

  async start(): Promise<void> {
    this.nudge();
    await this.cycling;
    this.timer = setInterval(() => this.nudge(), this.intervalMs);
    this.timer.unref();
  }

  /** Run a cycle now (or right after the one running). */
  nudge(): void {
    if (this.stopped) return;
    if (this.cycling) {
      this.again = true;
      return;
    }
    this.cycling = this.cycle().finally(() => {
      this.cycling = undefined;
      if (this.again) {
        this.again = false;
        this.nudge();
      }
    });
  }

  /** The actor stopped on its own account (lease lost, database trouble): the lease is not ours to give. */
  forget(peerId: string): void {
    this.held.delete(peerId);
  }

  /** The peer was disabled or deleted: its actor is stopped; hand the lease back. */
  async giveBack(peerId: string): Promise<void> {
    const fence = this.held.get(peerId);
    if (fence === undefined) return;
    this.held.delete(peerId);
    await this.store.release([{ peerId, fence }]);
  }

  holds(peerId: string): boolean {
    return this.held.has(peerId);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.cycling;
    for (const peerId of [...this.held.keys()]) await this.relinquish(peerId);
    await this.store.leave().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'could not give the leases back; they lapse on their own'));
  }

  private async cycle(): Promise<void> {
    let beat: Heartbeat;
    try {
      beat = await this.store.heartbeat(this.leases());
    } catch (err) {
      // Only a failed heartbeat means this node cannot prove it owns its leases.
      if (!this.unreachable) this.log.warn({ err: (err as Error).message }, 'database unreachable: peer actors paused until their leases can be renewed');
      this.unreachable = true;
      for (const peerId of [...this.held.keys()]) await this.relinquish(peerId);
      return;
    }
    if (this.unreachable) this.log.info('database reachable again: claiming this node\'s share of the peers');
    this.unreachable = false;
    this.nodes = beat.liveNodes;
    try {
      const renewed = new Map(beat.renewed.map((l) => [l.peerId, l.fence]));
      for (const [peerId, fence] of [...this.held]) {
        if (renewed.get(peerId) === fence) continue;
        this.log.warn({ peer: peerId }, 'peer lease lost (taken over, or the peer was disabled); its actor stops here');
        await this.relinquish(peerId);
      }
      if (this.stopped) return;
      const share = Math.ceil(beat.enabledPeers / beat.liveNodes);
      if (this.held.size > share) await this.handOver(this.leases().slice(share));
      else if (this.held.size < share) await this.claim(share - this.held.size);
    } catch (err) {
      // The leases just renewed are still ours: their actors go on, and the next cycle retries
      // the claim or the hand-over (a lease released by no one lapses after ttlMs anyway).
      this.log.warn({ err: (err as Error).message }, 'lease cycle failed after the heartbeat; retrying at the next one');
    }
  }

  private async claim(count: number): Promise<void> {
    const claimed = await this.store.claim(count, [...this.held.keys()]);
    for (const lease of claimed) {
      this.held.set(lease.peerId, lease.fence);
      let running = false;
      try {
        running = await this.holder.acquired(lease);
      } catch (err) {
        this.log.warn({ err: (err as Error).message, peer: lease.peerId }, 'could not start the peer\'s actor; its lease goes back and is claimed again at the next cycle');
      }
      if (running) continue;
      // Not held without an actor: the peer would count toward this node's share undelivered.
      this.held.delete(lease.peerId);
      await this.store.release([lease]);
    }
    if (claimed.length > 0) this.log.info({ peers: claimed.map((l) => l.peerId) }, 'peer leases claimed');
  }

  /** Surplus over the fair share: stop those actors first, then release, so no two run at once. */
  private async handOver(surplus: HeldLease[]): Promise<void> {
    for (const { peerId } of surplus) await this.relinquish(peerId);
    await this.store.release(surplus);
    this.log.info({ peers: surplus.map((l) => l.peerId) }, 'peer leases handed over to spread the peers across nodes');
  }

  private async relinquish(peerId: string): Promise<void> {
    this.held.delete(peerId);
    await this.holder.relinquish(peerId);
  }

  private leases(): HeldLease[] {
    return [...this.held].map(([peerId, fence]) => ({ peerId, fence }));
  }
}
