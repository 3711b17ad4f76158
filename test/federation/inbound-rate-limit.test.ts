/**
 * The node's side of the shared inbound limit (inbound-rate-limit.ts): it admits from its own
 * bucket and sets it to the shared bucket's answer, less what it took meanwhile; without an
 * answer its own bucket goes on alone. The shared bucket here is a stand-in we control (its
 * Postgres side is driven through two real nodes in receive.test.ts); time is frozen.
 */
import { describe, expect, it } from 'vitest';
import { KiteError } from '../../src/errors.js';
import { InboundRateLimiter, type SharedBuckets } from '../../src/federation/inbound-rate-limit.js';

const LIMIT = { perSecond: 1, burst: 5 };
const frozen = () => 0;

/** A shared bucket whose answers the test releases one by one. */
class HeldShared implements SharedBuckets {
  readonly asked: { count: number; answer: (level: number) => void; fail: () => void }[] = [];
  take(_peerId: string, _limit: unknown, count: number): Promise<number> {
    return new Promise((resolve, reject) => this.asked.push({ count, answer: resolve, fail: () => reject(new Error('database away')) }));
  }
}

function admitted(limiter: InboundRateLimiter): boolean {
  try {
    limiter.admit('p', LIMIT);
    return true;
  } catch (err) {
    expect(err).toBeInstanceOf(KiteError);
    return false;
  }
}

describe('inbound rate limit, shared', () => {
  it('federation - a node takes what other nodes took into account once the shared bucket answers, keeping its own takes made meanwhile', async () => {
    const shared = new HeldShared();
    const limiter = new InboundRateLimiter(shared, { now: frozen });
    const first = limiter.take('p', LIMIT, 1);
    const second = limiter.take('p', LIMIT, 1);
    // Locally 3 of 5 left. The shared bucket says 1 was left after our first take (other nodes
    // took 3): with our second take still unanswered, 0 here.
    shared.asked[0]!.answer(1);
    await first;
    expect(admitted(limiter)).toBe(false);
    shared.asked[1]!.answer(0);
    await second;
    expect(admitted(limiter)).toBe(false);
  });

  it('federation - when the shared bucket cannot answer, the node\'s own bucket goes on alone', async () => {
    const shared = new HeldShared();
    const limiter = new InboundRateLimiter(shared, { now: frozen });
    const take = limiter.take('p', LIMIT, 4);
    shared.asked[0]!.fail();
    await take;
    expect(admitted(limiter)).toBe(true);
    await Promise.all([limiter.take('p', LIMIT, 1), Promise.resolve(shared.asked[1]!.fail())]);
    expect(admitted(limiter)).toBe(false);
  });
});
