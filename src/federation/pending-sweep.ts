/**
 * The safety net under wake-ups, once per node instead of once per actor: every `intervalMs`,
 * one query asks which of this node's idle actors have pending deliveries, and those are told
 * that a wake-up was missed (they read their queue from the bottom). Wake-ups can be missed: the
 * notification listener reconnecting, a redrive made on another node meanwhile, a row put back
 * by hand. Each actor used to poll its own queue every 5 s for that: with 1,000 idle peers, 200
 * queries and as many actor transitions a second, a third of a node's work at 300 events/s.
 * Actors that are not idle are left alone: they read their queue on their own.
 */
import type { Pool } from '../db/pool.js';
import type { Logger } from '../observability/logger.js';

export interface SweptActors {
  /** IDs of the peers whose actors wait for work on this node. */
  idlePeers(): string[];
  /** The actor, if still idle, reads its queue from the bottom (peer-actor.ts). */
  wakeupMissed(peerId: string): void;
}

export class PendingSweep {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly pool: Pool,
    private readonly actors: SweptActors,
    private readonly log: Logger,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      // One sweep at a time: a slow database must not stack them up.
      this.running ??= this.sweep().then(() => undefined).finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One pass; returns the peers found idle with pending deliveries. */
  async sweep(): Promise<string[]> {
    const idle = this.actors.idlePeers();
    if (idle.length === 0) return [];
    try {
      // One probe of the queue index per peer (EXISTS stops at the first entry).
      const result = await this.pool.query<{ id: string }>({
        name: 'kite_pending_sweep',
        text: `SELECT p.id FROM unnest($1::uuid[]) AS p (id)
                WHERE EXISTS (SELECT 1 FROM federation_deliveries d WHERE d.peer_id = p.id AND d.status = 'pending')`,
        values: [idle],
      });
      const found = result.rows.map((r) => r.id);
      for (const id of found) this.actors.wakeupMissed(id);
      if (found.length > 0) this.log.debug({ peers: found.length }, 'idle peers with pending deliveries woken');
      return found;
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'pending sweep failed; the next one retries');
      return [];
    }
  }
}
