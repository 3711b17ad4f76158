import { describe, expect, it } from 'vitest';
import { backoffDelay, LISTEN_BACKOFF } from '../../src/cli/backoff.js';

const middle = () => 0.5; // no jitter

describe('listen backoff', () => {
  it('backoff - starts at 0.5 s and doubles up to 30 s', () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 50].map((n) => backoffDelay(n, LISTEN_BACKOFF, middle));
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
  });

  it('backoff - jitter stays within ±20% and never exceeds 30 s', () => {
    expect(backoffDelay(1, LISTEN_BACKOFF, () => 0)).toBe(400);
    expect(backoffDelay(1, LISTEN_BACKOFF, () => 0.999999)).toBe(600);
    expect(backoffDelay(6, LISTEN_BACKOFF, () => 0.999999)).toBe(19200);
    expect(backoffDelay(7, LISTEN_BACKOFF, () => 0.999999)).toBe(30000);
    expect(backoffDelay(1000, LISTEN_BACKOFF, () => 0)).toBe(24000);
  });
});
