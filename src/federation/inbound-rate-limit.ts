/**
 * The inbound limit of contract §5 "Receiving": one token bucket per sending peer. A request is
 * admitted whenever its peer's bucket holds a token, and then takes one token per event it
 * carries, possibly into debt, so a batch larger than the burst is admitted once and paid for
 * afterwards instead of being refused forever.
 *
 * Shared by the instance's nodes without a round trip before the append: a node admits from its
 * own bucket in memory, then takes the same tokens from the peer's row in Postgres (migration
 * 0009) in the background, several peers in one statement, and sets its bucket to the row's level
 * then, less what it took meanwhile. Behind a load balancer that spreads a peer's requests over
 * N nodes, each node's bucket thus also counts the others' takes: the instance admits the peer's
 * limit give or take a request per node, where buckets of their own admitted N times it. Asking
 * the row before each append was exact but cost the receiver its group commits' batching (p50
 * 13–20 → 25–34 ms at 100 peers × 10 ev/s). When the row cannot be reached the node's own bucket
 * goes on alone; a node that knows of no other live node does not ask it at all. When a second
 * node starts, the row has refilled meanwhile: the instance may admit a burst more, once.
 */
import type { Pool } from '../db/pool.js';
import { KiteError } from '../errors.js';
import type { RateLimit } from './peer-input.js';
import { StatementBatcher } from './statement-batcher.js';
import { TokenBucket } from './token-bucket.js';

/** The instance-wide buckets: takes tokens and answers the level left. */
export interface SharedBuckets {
  take(peerId: string, limit: RateLimit, count: number): Promise<number>;
}

interface Entry {
  readonly bucket: TokenBucket;
  perSecond: number;
  burst: number;
  /** Tokens taken here and not yet answered for by the shared bucket. */
  unsynced: number;
}

export class InboundRateLimiter {
  private readonly buckets = new Map<string, Entry>();

  private readonly now: () => number;
  private readonly shareWhen: () => boolean;

  /**
   * `shareWhen`: whether takes go to `shared` too. Kite passes "other nodes are live": a lone
   * node's own bucket is the whole instance's, and the shared one's statements only cost it (p50
   * 19–22 → 27–35 ms at 100 peers × 10 ev/s on 2 cores when taken always).
   */
  constructor(
    private readonly shared: SharedBuckets | undefined,
    options: { readonly now?: () => number; readonly shareWhen?: () => boolean } = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.shareWhen = options.shareWhen ?? (() => true);
  }

  /** Throws 429 `rate_limited` with `Retry-After` (whole seconds, at least 1) when the bucket is empty. */
  admit(peerId: string, limit: RateLimit): void {
    const { bucket } = this.entry(peerId, limit);
    if (bucket.available() >= 1) return;
    const seconds = Math.max(1, Math.ceil(bucket.msUntil(1) / 1000));
    throw new KiteError('rate_limited', `This peer is over its inbound rate limit; retry in ${seconds} s.`, { 'retry-after': String(seconds) });
  }

  /**
   * Takes `count` tokens from an admitted request (the bucket may go negative), here at once and
   * in the shared bucket in the background. Resolves when the shared bucket answered (tests).
   */
  take(peerId: string, limit: RateLimit, count: number): Promise<void> {
    if (count <= 0) return Promise.resolve();
    const entry = this.entry(peerId, limit);
    entry.bucket.take(count);
    if (!this.shared || !this.shareWhen()) return Promise.resolve();
    entry.unsynced += count;
    return this.shared.take(peerId, limit, count).then(
      (level) => {
        entry.unsynced -= count;
        // The shared level counts every node's takes up to this one; ours made since go on top.
        if (Number.isFinite(level)) entry.bucket.set(level - entry.unsynced);
      },
      // Unreachable: this node's own bucket goes on alone (the takes it missed are not retried).
      () => {
        entry.unsynced -= count;
      },
    );
  }

  /** Drops a deleted peer's bucket. */
  forget(peerId: string): void {
    this.buckets.delete(peerId);
  }

  private entry(peerId: string, limit: RateLimit): Entry {
    let entry = this.buckets.get(peerId);
    if (!entry) {
      entry = { bucket: new TokenBucket(limit.perSecond, limit.burst, this.now), perSecond: limit.perSecond, burst: limit.burst, unsynced: 0 };
      this.buckets.set(peerId, entry);
    } else if (entry.perSecond !== limit.perSecond || entry.burst !== limit.burst) {
      // A PATCH changed the limit: it applies from now on, to the tokens already there.
      entry.bucket.reconfigure(limit.perSecond, limit.burst);
      entry.perSecond = limit.perSecond;
      entry.burst = limit.burst;
    }
    return entry;
  }
}

interface SharedTake {
  readonly peerId: string;
  readonly limit: RateLimit;
  readonly count: number;
}

/** The peers' rows in `peer_inbound_buckets`, taken from several at once (statement-batcher.ts). */
export class PostgresInboundBuckets implements SharedBuckets {
  private readonly batcher: StatementBatcher<SharedTake, number>;

  constructor(private readonly pool: Pool) {
    this.batcher = new StatementBatcher({ maxInFlight: 2, maxWeight: 1_000, weight: () => 1, run: (batch) => this.run(batch) });
  }

  take(peerId: string, limit: RateLimit, count: number): Promise<number> {
    return this.batcher.submit({ peerId, limit, count });
  }

  private async run(batch: readonly SharedTake[]): Promise<number[]> {
    const result = await this.pool.query<{ peer_id: string; tokens: number }>({
      name: 'kite_inbound_take',
      text: 'SELECT peer_id, tokens FROM kite_inbound_take($1::uuid[], $2::float8[], $3::float8[], $4::int[])',
      values: [batch.map((t) => t.peerId), batch.map((t) => t.limit.perSecond), batch.map((t) => t.limit.burst), batch.map((t) => t.count)],
    });
    const levels = new Map(result.rows.map((r) => [r.peer_id, r.tokens]));
    return batch.map((t) => levels.get(t.peerId) ?? Number.NaN);
  }
}
