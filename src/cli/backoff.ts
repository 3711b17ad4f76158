/**
 * Reconnect delays for `kite listen`: one pure function of (attempt, policy, random), so the
 * schedule is testable without a clock. Jitter spreads the reconnects of many listeners after a
 * server restart instead of having them all knock at the same instant.
 */

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Fraction of the delay added or removed at random: 0.2 means ±20%. */
  readonly jitter: number;
}

/** 0.5 s doubling to 30 s, ±20%: quick after a blip, gentle on a server that is down for long. */
export const LISTEN_BACKOFF: BackoffPolicy = Object.freeze({ initialMs: 500, maxMs: 30_000, jitter: 0.2 });

/** Delay before reconnect attempt `attempt` (1 for the first retry). Never above `maxMs`. */
export function backoffDelay(attempt: number, policy: BackoffPolicy = LISTEN_BACKOFF, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempt - 1);
  const base = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(exponent, 30));
  const jittered = base * (1 - policy.jitter + 2 * policy.jitter * random());
  return Math.round(Math.min(policy.maxMs, jittered));
}
