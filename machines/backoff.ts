/**
 * The peer machine's waits, as pure functions of (attempt, policy, random) so tests can pin the
 * jitter: `random` is a `Math.random`-like source in [0, 1).
 */

export interface BackoffPolicy {
  initialDelayMs: number;
  maxDelayMs: number;
}

/** The share of a delay that jitter may add or take away. */
export const JITTER = 0.2;

/** `ms` ±20%: random 0 gives −20%, random → 1 gives (almost) +20%. Whole milliseconds. */
export function jitter(ms: number, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(ms * (1 - JITTER + 2 * JITTER * r));
}

/**
 * The wait before retry number `attempt` (1 for the first retry after one failure):
 * min(maxDelayMs, initialDelayMs·2^(attempt−1)) with ±20% jitter. The jitter applies after the
 * cap (contract §6, "Peer states"), so a capped wait lies in [0.8, 1.2)·maxDelayMs.
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  // A peer restored in backing-off with no recorded attempts waits as after its first failure.
  const n = Math.max(1, Math.floor(attempt));
  // 2^(n−1) overflows to Infinity for huge n, which the cap absorbs.
  const base = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (n - 1));
  return jitter(base, random);
}
