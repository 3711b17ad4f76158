/**
 * The peer machine's vocabulary: its input, context, events, the inputs of its two effects and
 * the state change it reports. Shared by the machine (peer.ts) and the supervisor in src/.
 */
import type { BackoffPolicy } from './backoff.js';

/** A peer's state as the API shows it and the database persists it: the machine's top level. */
export type PeerState = 'healthy' | 'backing-off' | 'rate-limited' | 'dead-lettered';

export interface RetryPolicy extends BackoffPolicy {
  maxAttempts: number;
  timeoutMs: number;
}

export interface PeerInput {
  peerId: string;
  retry: RetryPolicy;
  /** The persisted state a restarted node resumes the peer in; `healthy` when absent. */
  initialState?: PeerState;
  /** The persisted count of failed attempts since the last delivery; 0 when absent. */
  attempts?: number;
  /** The wait of a peer resumed in `rate-limited`; 1 s (the 429 default) when absent. */
  retryAfterMs?: number;
  /** A `Math.random`-like source for the jitter; `Math.random` when absent. */
  random?: () => number;
}

export interface PeerContext {
  peerId: string;
  retry: RetryPolicy;
  /** Failed attempts (retryable outcomes and crashed effects) since the last delivery. */
  attempts: number;
  /** The message of the last failure; null once something is delivered. */
  lastError: string | null;
  /** How long `rate-limited` waits before trying again: the last Retry-After. */
  retryAfterMs: number;
  random: () => number;
  /**
   * Where the actor starts: read once by `healthy.resuming`'s eventless transitions and cleared
   * there, so it can never disagree with the state value afterwards.
   */
  resumeIn: PeerState | null;
}

export type PeerEvent =
  /** Something was enqueued for the peer: wakes `healthy.idle`, ignored elsewhere. */
  | { type: 'WORK_AVAILABLE' }
  /** POST …/redrive: release what is held, reset attempts, deliver. */
  | { type: 'REDRIVE' }
  /** A PATCH changed url, remoteTeam or a key: a dead-lettered peer probes at once. */
  | { type: 'PROBE_NOW' }
  /** A PATCH changed `retry`: the next wait and the next exhaustion check use it. */
  | { type: 'CONFIG_UPDATED'; retry: RetryPolicy };

/** What the `deliver` effect gets: it takes the next batch itself (head of the queue first). */
export interface DeliverInput {
  peerId: string;
  /** Failed attempts so far (0 in `healthy`), for the delivery rows. */
  attempts: number;
  timeoutMs: number;
}

/** What the `probe` effect gets: it sends a signed empty batch. */
export interface ProbeInput {
  peerId: string;
  timeoutMs: number;
}

export type StateChangeReason =
  | 'retryable_failure'
  | 'rate_limited'
  | 'retries_exhausted'
  | 'rejected'
  | 'delivered'
  | 'probe_succeeded'
  | 'redrive';

/** The params of `reportStateChange`: one per change of the top-level state. */
export interface PeerStateChange {
  from: PeerState;
  to: PeerState;
  reason: StateChangeReason;
  /** After the transition: maxAttempts on exhaustion, 0 on return to healthy. */
  attempts: number;
  lastError: string | null;
}
