/**
 * A token bucket: `perSecond` tokens flow in up to `burst`. Outbound (`rateLimit`) a batch never
 * takes more tokens than there are; inbound (`inboundRateLimit`) a request is admitted whenever
 * the bucket is not empty and may take it into debt (contract §5), so a large batch is never
 * refused forever. Time is injected so tests need no sleeping.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  constructor(
    private perSecond: number,
    private burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.updatedAt = now();
  }

  /** Tokens available now (may be negative after a debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  take(count: number): void {
    this.refill();
    this.tokens -= count;
  }

  /** Milliseconds until at least `count` tokens are available (0 when they are). */
  msUntil(count = 1): number {
    this.refill();
    if (this.tokens >= count) return 0;
    return Math.ceil(((count - this.tokens) / this.perSecond) * 1000);
  }

  reconfigure(perSecond: number, burst: number): void {
    this.refill();
    this.perSecond = perSecond;
    this.burst = burst;
    this.tokens = Math.min(this.tokens, burst);
  }

  /** Sets the tokens there now (a shared bucket's level, read back: inbound-rate-limit.ts). */
  set(tokens: number): void {
    this.refill();
    this.tokens = Math.min(this.burst, tokens);
  }

  private refill(): void {
    const now = this.now();
    const elapsed = (now - this.updatedAt) / 1000;
    this.updatedAt = now;
    this.tokens = Math.min(this.burst, this.tokens + elapsed * this.perSecond);
  }
}
