/**
 * The inbound limit of contract §5 "Receiving": one token bucket per sending peer on this node
 * (`inboundRateLimit`, in memory, so an instance of N nodes admits up to N times the rate). A
 * request is admitted whenever its peer's bucket holds a token, and then takes one token per
 * event it carries, possibly into debt, so a batch larger than the burst is admitted once and
 * paid for afterwards instead of being refused forever.
 */
import { KiteError } from '../errors.js';
import type { RateLimit } from './peer-input.js';
import { TokenBucket } from './token-bucket.js';

interface Entry {
  readonly bucket: TokenBucket;
  perSecond: number;
  burst: number;
}

export class InboundRateLimiter {
  private readonly buckets = new Map<string, Entry>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Throws 429 `rate_limited` with `Retry-After` (whole seconds, at least 1) when the bucket is empty. */
  admit(peerId: string, limit: RateLimit): void {
    const { bucket } = this.entry(peerId, limit);
    if (bucket.available() >= 1) return;
    const seconds = Math.max(1, Math.ceil(bucket.msUntil(1) / 1000));
    throw new KiteError('rate_limited', `This peer is over its inbound rate limit; retry in ${seconds} s.`, { 'retry-after': String(seconds) });
  }

  /** Takes `count` tokens from an admitted request (the bucket may go negative). */
  take(peerId: string, limit: RateLimit, count: number): void {
    if (count > 0) this.entry(peerId, limit).bucket.take(count);
  }

  /** Drops a deleted peer's bucket. */
  forget(peerId: string): void {
    this.buckets.delete(peerId);
  }

  private entry(peerId: string, limit: RateLimit): Entry {
    let entry = this.buckets.get(peerId);
    if (!entry) {
      entry = { bucket: new TokenBucket(limit.perSecond, limit.burst, this.now), perSecond: limit.perSecond, burst: limit.burst };
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
