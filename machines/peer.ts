/**
 * One peer's delivery loop (contract §5 "Outcomes the sender acts on", §6 "Peer states").
 *
 * Modes, the top level being the peer's persisted `state`:
 * - healthy: `delivering` runs `deliver` again and again while it delivers; `idle` waits for
 *   WORK_AVAILABLE (or `idlePoll`, a safety net). `resuming` is the transient start that puts a
 *   restarted peer back in its persisted state without reporting a change.
 * - backing-off: `waiting` for `retryDelay` (exponential, jittered), then `retrying`.
 * - rate-limited: `waiting` exactly `rateLimitDelay` (the Retry-After), then `retrying`. Never
 *   counts as an attempt. A delivery that used our own bucket's last token with more waiting
 *   (`pacedMs`) stays here and waits for the next token: pacing at the limit is one state, not a
 *   healthy ↔ rate-limited flip (and two internal events) per event.
 * - dead-lettered: holds the queue (`holdPending` on entry); `holding` until the first probe
 *   (`firstProbeDelay` = maxDelayMs), then `probing` / `waiting` (`probeDelay`, jittered) until a
 *   probe is delivered or a REDRIVE comes.
 *
 * Effects are named and provided by the supervisor: actors `deliver` and `probe` (both honour
 * their AbortSignal: leaving a state stops the invoked actor, which aborts it), actions
 * `reportStateChange`, `holdPending`, `releaseHeld`. A rejected effect counts as `retryable`.
 */
import { and, assign, fromPromise, setup, type ActionArgs, type EventObject } from 'xstate';
import { backoffDelay, jitter } from './backoff.js';
import { DEFAULT_RETRY_AFTER_MS, type DeliveryOutcome } from './delivery-outcome.js';
import type { DeliverInput, PeerContext, PeerEvent, PeerInput, PeerState, PeerStateChange, ProbeInput, StateChangeReason } from './peer-types.js';

export type * from './peer-types.js';

/** The longest delay a timer takes (2^31 − 1 ms, 24.8 days). */
export const MAX_TIMER_MS = 2_147_483_647;

function notProvided(name: string): never {
  throw new Error(`peer machine: "${name}" not provided`);
}

/** The outcome a `deliver`/`probe` done event carries (guards and actions see the machine's event type). */
function outcomeOf(event: EventObject): DeliveryOutcome | undefined {
  return (event as { output?: DeliveryOutcome }).output;
}

/** The failure an event reports: a failed outcome's message, or a crashed effect's error. */
function failureOf(event: EventObject): string | null {
  if ('error' in event) {
    const { error } = event as { error: unknown };
    return error instanceof Error ? error.message : String(error);
  }
  const outcome = outcomeOf(event);
  if (outcome && 'error' in outcome && outcome.error !== undefined) return outcome.error;
  return null;
}

/** `reportStateChange` with the context after the transition's own assignments. */
function report(from: PeerState, to: PeerState, reason: StateChangeReason) {
  return {
    type: 'reportStateChange' as const,
    params: ({ context }: { context: PeerContext }): PeerStateChange => ({
      from, to, reason, attempts: context.attempts, lastError: context.lastError,
    }),
  };
}

const deliverInput = ({ context }: { context: PeerContext }): DeliverInput => ({
  peerId: context.peerId, attempts: context.attempts, timeoutMs: context.retry.timeoutMs,
});

/**
 * What a `deliver` answer does outside healthy: the same table for backing-off and rate-limited,
 * except that staying put is a new wait in the state's own `waiting`, with no report.
 */
function afterRetry(from: 'backing-off' | 'rate-limited') {
  return {
    onDone: [
      ...(from === 'rate-limited' ? [{ guard: 'deliveredPaced', target: 'waiting', actions: ['markDelivered', 'waitPaced'] } as const] : []),
      { guard: 'delivered', target: '#peer.healthy.delivering', actions: ['markDelivered', report(from, 'healthy', 'delivered')] },
      { guard: 'idle', target: '#peer.healthy.idle', actions: ['resetAttempts', report(from, 'healthy', 'delivered')] },
      { guard: and(['retryable', 'exhaustsRetries']), target: '#peer.dead-lettered', actions: ['countFailure', report(from, 'dead-lettered', 'retries_exhausted')] },
      from === 'backing-off'
        ? { guard: 'retryable', target: 'waiting', actions: ['countFailure'] } as const
        : { guard: 'retryable', target: '#peer.backing-off', actions: ['countFailure', report(from, 'backing-off', 'retryable_failure')] } as const,
      from === 'rate-limited'
        ? { guard: 'rateLimited', target: 'waiting', actions: ['waitRetryAfter'] } as const
        : { guard: 'rateLimited', target: '#peer.rate-limited', actions: ['waitRetryAfter', report(from, 'rate-limited', 'rate_limited')] } as const,
      { guard: 'rejected', target: '#peer.dead-lettered', actions: ['noteFailure', report(from, 'dead-lettered', 'rejected')] },
    ],
    onError: [
      { guard: 'exhaustsRetries', target: '#peer.dead-lettered', actions: ['countFailure', report(from, 'dead-lettered', 'retries_exhausted')] },
      from === 'backing-off'
        ? { target: 'waiting', actions: ['countFailure'] } as const
        : { target: '#peer.backing-off', actions: ['countFailure', report(from, 'backing-off', 'retryable_failure')] } as const,
    ],
  } as const;
}

/** REDRIVE from a state other than healthy: release, reset, deliver. */
function redriveFrom(from: Exclude<PeerState, 'healthy'>) {
  return {
    target: '#peer.healthy.delivering',
    actions: ['releaseHeld', 'resetAttempts', report(from, 'healthy', 'redrive')],
  } as const;
}

export const peerMachine = setup({
  types: {
    context: {} as PeerContext,
    events: {} as PeerEvent,
    input: {} as PeerInput,
  },
  actors: {
    deliver: fromPromise<DeliveryOutcome, DeliverInput>(async () => notProvided('deliver')),
    probe: fromPromise<DeliveryOutcome, ProbeInput>(async () => notProvided('probe')),
  },
  actions: {
    reportStateChange: (_: ActionArgs<PeerContext, PeerEvent, PeerEvent>, _change: PeerStateChange) => notProvided('reportStateChange'),
    holdPending: () => notProvided('holdPending'),
    releaseHeld: () => notProvided('releaseHeld'),
    markDelivered: assign({ attempts: 0, lastError: null }),
    resetAttempts: assign({ attempts: 0 }),
    countFailure: assign(({ context, event }) => ({ attempts: context.attempts + 1, lastError: failureOf(event) ?? context.lastError })),
    noteFailure: assign(({ context, event }) => ({ lastError: failureOf(event) ?? context.lastError })),
    waitRetryAfter: assign(({ context, event }) => {
      const outcome = outcomeOf(event);
      const retryAfterMs = outcome?.tag === 'rate-limited' ? outcome.retryAfterMs : DEFAULT_RETRY_AFTER_MS;
      return { retryAfterMs, lastError: failureOf(event) ?? context.lastError };
    }),
    waitPaced: assign(({ context, event }) => {
      const outcome = outcomeOf(event);
      return { retryAfterMs: outcome?.tag === 'delivered' && outcome.pacedMs !== undefined ? outcome.pacedMs : context.retryAfterMs };
    }),
    updateRetry: assign(({ context, event }) => ({ retry: event.type === 'CONFIG_UPDATED' ? event.retry : context.retry })),
    resumed: assign({ resumeIn: null }),
  },
  guards: {
    delivered: ({ event }) => outcomeOf(event)?.tag === 'delivered',
    deliveredPaced: ({ event }) => {
      const outcome = outcomeOf(event);
      return outcome?.tag === 'delivered' && outcome.pacedMs !== undefined;
    },
    idle: ({ event }) => outcomeOf(event)?.tag === 'idle',
    retryable: ({ event }) => outcomeOf(event)?.tag === 'retryable',
    rateLimited: ({ event }) => outcomeOf(event)?.tag === 'rate-limited',
    rejected: ({ event }) => outcomeOf(event)?.tag === 'rejected',
    /** This failure would be attempt number maxAttempts (or beyond, after a CONFIG_UPDATED). */
    exhaustsRetries: ({ context }) => context.attempts + 1 >= context.retry.maxAttempts,
    resumesIn: ({ context }, params: { state: PeerState }) => context.resumeIn === params.state,
  },
  delays: {
    retryDelay: ({ context }) => backoffDelay(context.attempts, context.retry, context.random),
    // A timer cannot wait longer than MAX_TIMER_MS: asked for more (a Retry-After of years, or a
    // bucket refilling once a month), Node's fires after 1 ms, and the peer was asked ~100 times a second.
    rateLimitDelay: ({ context }) => Math.min(context.retryAfterMs, MAX_TIMER_MS),
    firstProbeDelay: ({ context }) => context.retry.maxDelayMs,
    probeDelay: ({ context }) => jitter(context.retry.maxDelayMs, context.random),
    idlePoll: 5_000,
  },
}).createMachine({
  id: 'peer',
  context: ({ input }) => ({
    peerId: input.peerId,
    retry: input.retry,
    attempts: input.attempts ?? 0,
    lastError: null,
    retryAfterMs: input.retryAfterMs ?? DEFAULT_RETRY_AFTER_MS,
    random: input.random ?? Math.random,
    resumeIn: input.initialState ?? 'healthy',
  }),
  initial: 'healthy',
  on: { CONFIG_UPDATED: { actions: 'updateRetry' } },
  states: {
    healthy: {
      initial: 'resuming',
      states: {
        resuming: {
          always: [
            { guard: { type: 'resumesIn', params: { state: 'backing-off' } }, target: '#peer.backing-off', actions: 'resumed' },
            { guard: { type: 'resumesIn', params: { state: 'rate-limited' } }, target: '#peer.rate-limited', actions: 'resumed' },
            { guard: { type: 'resumesIn', params: { state: 'dead-lettered' } }, target: '#peer.dead-lettered', actions: 'resumed' },
            { target: 'delivering', actions: 'resumed' },
          ],
        },
        delivering: {
          invoke: {
            id: 'deliver',
            src: 'deliver',
            input: deliverInput,
            onDone: [
              // Re-entering restarts the invoke: the next batch at once.
              { guard: 'delivered', target: 'delivering', reenter: true, actions: 'markDelivered' },
              { guard: 'idle', target: 'idle' },
              { guard: and(['retryable', 'exhaustsRetries']), target: '#peer.dead-lettered', actions: ['countFailure', report('healthy', 'dead-lettered', 'retries_exhausted')] },
              { guard: 'retryable', target: '#peer.backing-off', actions: ['countFailure', report('healthy', 'backing-off', 'retryable_failure')] },
              { guard: 'rateLimited', target: '#peer.rate-limited', actions: ['waitRetryAfter', report('healthy', 'rate-limited', 'rate_limited')] },
              { guard: 'rejected', target: '#peer.dead-lettered', actions: ['noteFailure', report('healthy', 'dead-lettered', 'rejected')] },
            ],
            onError: [
              { guard: 'exhaustsRetries', target: '#peer.dead-lettered', actions: ['countFailure', report('healthy', 'dead-lettered', 'retries_exhausted')] },
              { target: '#peer.backing-off', actions: ['countFailure', report('healthy', 'backing-off', 'retryable_failure')] },
            ],
          },
          // The batch in flight finishes; the next one starts with what the redrive requeued.
          on: { REDRIVE: { actions: ['releaseHeld', 'resetAttempts'] } },
        },
        idle: {
          after: { idlePoll: 'delivering' },
          on: {
            WORK_AVAILABLE: 'delivering',
            REDRIVE: { target: 'delivering', actions: ['releaseHeld', 'resetAttempts'] },
          },
        },
      },
    },
    'backing-off': {
      initial: 'waiting',
      on: { REDRIVE: redriveFrom('backing-off') },
      states: {
        waiting: { after: { retryDelay: 'retrying' } },
        retrying: { invoke: { id: 'deliver', src: 'deliver', input: deliverInput, ...afterRetry('backing-off') } },
      },
    },
    'rate-limited': {
      initial: 'waiting',
      on: { REDRIVE: redriveFrom('rate-limited') },
      states: {
        waiting: { after: { rateLimitDelay: 'retrying' } },
        retrying: { invoke: { id: 'deliver', src: 'deliver', input: deliverInput, ...afterRetry('rate-limited') } },
      },
    },
    'dead-lettered': {
      entry: 'holdPending',
      initial: 'holding',
      on: { REDRIVE: redriveFrom('dead-lettered') },
      states: {
        holding: {
          after: { firstProbeDelay: 'probing' },
          on: { PROBE_NOW: 'probing' },
        },
        probing: {
          invoke: {
            id: 'probe',
            src: 'probe',
            input: ({ context }) => ({ peerId: context.peerId, timeoutMs: context.retry.timeoutMs }),
            onDone: [
              { guard: 'delivered', target: '#peer.healthy.delivering', actions: ['markDelivered', 'releaseHeld', report('dead-lettered', 'healthy', 'probe_succeeded')] },
              { target: 'waiting', actions: 'noteFailure' },
            ],
            onError: { target: 'waiting', actions: 'noteFailure' },
          },
          // The probe in flight went to the old address or with the old key: start over.
          on: { PROBE_NOW: { target: 'probing', reenter: true } },
        },
        waiting: {
          after: { probeDelay: 'probing' },
          on: { PROBE_NOW: 'probing' },
        },
      },
    },
  },
});

export type PeerMachine = typeof peerMachine;
