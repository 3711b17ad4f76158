import { describe, expect, it } from 'vitest';
import { backoffDelay, jitter } from '../../machines/backoff.js';

const policy = { initialDelayMs: 1_000, maxDelayMs: 300_000 };
const middle = () => 0.5;
const lowest = () => 0;
const highest = () => 0.9999999;

describe('backoff', () => {
  it('backoff - the first retry waits initialDelayMs and each further attempt doubles it', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy, middle))).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000]);
  });

  it('backoff - the wait is capped at maxDelayMs, even when 2^(n−1) overflows', () => {
    expect(backoffDelay(9, policy, middle)).toBe(256_000);
    expect(backoffDelay(10, policy, middle)).toBe(300_000);
    expect(backoffDelay(20, policy, middle)).toBe(300_000);
    expect(backoffDelay(5_000, policy, middle)).toBe(300_000);
  });

  it('backoff - random 0 takes 20% off and random 0.999… adds 20%', () => {
    expect(backoffDelay(1, policy, lowest)).toBe(800);
    expect(backoffDelay(1, policy, highest)).toBe(1_200);
    expect(backoffDelay(3, policy, lowest)).toBe(3_200);
    expect(backoffDelay(3, policy, highest)).toBe(4_800);
  });

  it('backoff - jitter applies after the cap: a capped wait lies within maxDelayMs ±20%', () => {
    expect(backoffDelay(30, policy, lowest)).toBe(240_000);
    expect(backoffDelay(30, policy, highest)).toBe(360_000);
  });

  it('backoff - every random in [0, 1) stays within ±20% of the base', () => {
    for (let i = 0; i <= 100; i++) {
      const r = Math.min(i / 100, 0.9999999);
      for (const n of [1, 4, 12]) {
        const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (n - 1));
        const wait = backoffDelay(n, policy, () => r);
        expect(wait).toBeGreaterThanOrEqual(base * 0.8);
        expect(wait).toBeLessThanOrEqual(base * 1.2);
      }
    }
  });

  it('backoff - the wait grows with random (the jitter is not inverted)', () => {
    expect(backoffDelay(2, policy, () => 0.25)).toBe(1_800);
    expect(backoffDelay(2, policy, () => 0.75)).toBe(2_200);
  });

  it('backoff - an attempt below 1 (a peer resumed with no recorded attempt) waits as the first retry', () => {
    expect(backoffDelay(0, policy, middle)).toBe(1_000);
    expect(backoffDelay(-3, policy, middle)).toBe(1_000);
  });

  it('backoff - the result is a whole number of milliseconds', () => {
    expect(Number.isInteger(backoffDelay(1, { initialDelayMs: 333, maxDelayMs: 10_000 }, () => 0.123))).toBe(true);
  });
});

describe('jitter', () => {
  it('jitter - the probe interval is maxDelayMs ±20%: random 0 gives −20%, 0.999… gives +20%', () => {
    expect(jitter(300_000, lowest)).toBe(240_000);
    expect(jitter(300_000, middle)).toBe(300_000);
    expect(jitter(300_000, highest)).toBe(360_000);
  });

  it('jitter - a random source out of range is clamped, never beyond ±20%', () => {
    expect(jitter(1_000, () => -1)).toBe(800);
    expect(jitter(1_000, () => 2)).toBe(1_200);
  });
});
