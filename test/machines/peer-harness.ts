/**
 * The peer machine under test: stub `deliver`/`probe` effects answering from a script, recorded
 * effects, and a SimulatedClock, so every wait is exact and nothing sleeps.
 *
 * A script step is an outcome, an Error (the effect crashes), or a Deferred the test settles by
 * hand (a request in flight). An exhausted deliver script answers `idle` (an empty queue); an
 * exhausted probe script answers `retryable`.
 */
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import type { DeliveryOutcome } from '../../machines/delivery-outcome.js';
import { peerMachine, type DeliverInput, type PeerInput, type PeerStateChange, type ProbeInput, type RetryPolicy } from '../../machines/peer.js';

export const POLICY: RetryPolicy = { maxAttempts: 5, initialDelayMs: 1_000, maxDelayMs: 60_000, timeoutMs: 10_000 };

export const delivered = (count = 1): DeliveryOutcome => ({ tag: 'delivered', count });
export const idle: DeliveryOutcome = { tag: 'idle' };
export const retryable = (statusCode = 503): DeliveryOutcome => ({ tag: 'retryable', error: `HTTP ${statusCode}`, statusCode });
/** A 429 answer. */
export const rateLimited = (retryAfterMs: number): DeliveryOutcome => ({ tag: 'rate-limited', retryAfterMs, error: 'HTTP 429' });
/** Our own token bucket for the peer is empty: no request, no error. */
export const bucketEmpty = (retryAfterMs: number): DeliveryOutcome => ({ tag: 'rate-limited', retryAfterMs });
export const rejected = (statusCode = 401): DeliveryOutcome => ({ tag: 'rejected', error: `HTTP ${statusCode}`, statusCode });

/** A request in flight: settles when the test says so; rejects like fetch when aborted. */
export class Deferred {
  resolve!: (outcome: DeliveryOutcome) => void;
  reject!: (error: Error) => void;
  signal: AbortSignal | undefined;
  readonly promise = new Promise<DeliveryOutcome>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });
}

export type Step = DeliveryOutcome | Error | Deferred;

/** Errors of every harness actor (a throwing action stops the actor): tests expect none. */
const actorErrors: unknown[] = [];
export function takeActorErrors(): unknown[] {
  return actorErrors.splice(0);
}

export interface Call<I> {
  input: I;
  signal: AbortSignal;
  /** The simulated time the effect started at. */
  at: number;
}

/** Lets the stub effects' promises settle and the machine take the resulting transitions. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

function answer(step: Step, signal: AbortSignal): Promise<DeliveryOutcome> {
  if (step instanceof Error) return Promise.reject(step);
  if (step instanceof Deferred) {
    step.signal = signal;
    signal.addEventListener('abort', () => step.reject(new Error('aborted')), { once: true });
    return step.promise;
  }
  return Promise.resolve(step);
}

export async function startPeer(options: { deliver?: Step[]; probe?: Step[]; input?: Partial<PeerInput>; idlePollMs?: number } = {}) {
  const clock = new SimulatedClock();
  const deliverScript = [...(options.deliver ?? [])];
  const probeScript = [...(options.probe ?? [])];
  const deliverCalls: Call<DeliverInput>[] = [];
  const probeCalls: Call<ProbeInput>[] = [];
  /** Every effect action in order, so tests can check what came before what. */
  const log: string[] = [];
  const reports: PeerStateChange[] = [];
  let held = 0;
  let released = 0;

  const machine = peerMachine.provide({
    actors: {
      deliver: fromPromise<DeliveryOutcome, DeliverInput>(({ input, signal }) => {
        deliverCalls.push({ input, signal, at: clock.now() });
        log.push('deliver');
        return answer(deliverScript.shift() ?? idle, signal);
      }),
      probe: fromPromise<DeliveryOutcome, ProbeInput>(({ input, signal }) => {
        probeCalls.push({ input, signal, at: clock.now() });
        log.push('probe');
        return answer(probeScript.shift() ?? retryable(502), signal);
      }),
    },
    actions: {
      reportStateChange: (_, change) => {
        reports.push(change);
        log.push(`report:${change.from}->${change.to}:${change.reason}`);
      },
      holdPending: () => {
        held++;
        log.push('holdPending');
      },
      releaseHeld: () => {
        released++;
        log.push('releaseHeld');
      },
    },
    ...(options.idlePollMs === undefined ? {} : { delays: { idlePoll: options.idlePollMs } }),
  });

  const actor = createActor(machine, {
    clock,
    input: { peerId: 'peer-1', retry: POLICY, random: () => 0.5, ...options.input },
  });
  actor.subscribe({ error: (err) => actorErrors.push(err) });
  actor.start();
  await flush();

  return {
    actor,
    clock,
    deliverCalls,
    probeCalls,
    reports,
    log,
    get held() {
      return held;
    },
    get released() {
      return released;
    },
    /** Appends steps to the deliver script. */
    script(...steps: Step[]) {
      deliverScript.push(...steps);
    },
    scriptProbe(...steps: Step[]) {
      probeScript.push(...steps);
    },
    value: () => actor.getSnapshot().value,
    context: () => actor.getSnapshot().context,
    /** The top-level state, as the peer object shows it. */
    state: () => {
      const value = actor.getSnapshot().value;
      return typeof value === 'string' ? value : Object.keys(value)[0];
    },
    async advance(ms: number) {
      clock.increment(ms);
      await flush();
    },
    async send(event: Parameters<typeof actor.send>[0]) {
      actor.send(event);
      await flush();
    },
  };
}

export type PeerHarness = Awaited<ReturnType<typeof startPeer>>;
