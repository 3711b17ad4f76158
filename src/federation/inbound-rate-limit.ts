/**
 * The inbound limit of contract §5 "Receiving": one token bucket per sending peer. A request is
 * admitted whenever its peer's bucket holds a token, and then takes one token per event it
 * carries, possibly into debt, so a batch larger than the burst is admitted once and paid for
 * afterwards instead of being refused forever.
 *
 * Shared by the instance's nodes without a round trip before the append: a node admits from its
 * own bucket in memory, then takes the same tokens from the peer's row in Postgres
 * (inbound-buckets.ts) in the background, several peers in one statement, and sets its bucket to the row's level
 * then, less what it took meanwhile. Behind a load balancer that spreads a peer's requests over
 * N nodes, each node's bucket thus also counts the others' takes: the instance admits the peer's
 * limit give or take a request per node, where buckets of their own admitted N times it. Asking
 * the row before each append was exact but cost the receiver its group commits' batching (p50
 * 13–20 → 25–34 ms at 100 peers × 10 ev/s). When the row cannot be reached the node's own bucket
 * goes on alone; a node that knows of no other live node does not ask it at all. When a second
 * node starts, the row has refilled meanwhile: the instance may admit a burst more, once.
 */
import { KiteError } from '../errors.js';
import type { RateLimit } from './peer-input.js';
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
