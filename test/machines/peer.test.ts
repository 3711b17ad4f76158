import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_TIMER_MS, peerMachine, type PeerState } from '../../machines/peer.js';
import type { DeliveryOutcome } from '../../machines/delivery-outcome.js';
import { bucketEmpty, Deferred, delivered, flush, idle, POLICY, rateLimited, rejected, retryable, startPeer, takeActorErrors } from './peer-harness.js';

afterEach(() => {
  expect(takeActorErrors()).toEqual([]);
});

describe('peer - shape', () => {
  it('peer - the top-level states are exactly the four peer states of the contract', () => {
    expect(Object.keys(peerMachine.root.states).sort()).toEqual(['backing-off', 'dead-lettered', 'healthy', 'rate-limited']);
  });
});

describe('peer - healthy', () => {
  it('peer - a healthy peer delivers batch after batch at once, then idles when nothing is pending', async () => {
    const p = await startPeer({ deliver: [delivered(3), delivered(1), idle] });
    expect(p.deliverCalls.map((c) => c.at)).toEqual([0, 0, 0]);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.reports).toEqual([]);
    expect(p.deliverCalls[0]!.input).toEqual({ peerId: 'peer-1', attempts: 0, timeoutMs: POLICY.timeoutMs });
  });

  it('peer - an idle peer delivers again on WORK_AVAILABLE', async () => {
    const p = await startPeer();
    expect(p.value()).toEqual({ healthy: 'idle' });
    p.script(delivered(), idle);
    await p.send({ type: 'WORK_AVAILABLE' });
    expect(p.deliverCalls).toHaveLength(3);
    expect(p.value()).toEqual({ healthy: 'idle' });
  });

  it('peer - an idle peer re-checks its queue after idlePoll (5 s) without WORK_AVAILABLE', async () => {
    const p = await startPeer();
    await p.advance(4_999);
    expect(p.deliverCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(2);
    expect(p.value()).toEqual({ healthy: 'idle' });
    await p.advance(5_000);
    expect(p.deliverCalls).toHaveLength(3);
  });

  it('peer - the supervisor can provide its own idlePoll delay', async () => {
    const p = await startPeer({ idlePollMs: 250 });
    await p.advance(250);
    expect(p.deliverCalls).toHaveLength(2);
  });

  it('peer - WORK_AVAILABLE while a delivery is in flight starts no second one', async () => {
    const inFlight = new Deferred();
    const p = await startPeer({ deliver: [inFlight] });
    await p.send({ type: 'WORK_AVAILABLE' });
    expect(p.deliverCalls).toHaveLength(1);
    expect(inFlight.signal?.aborted).toBe(false);
    inFlight.resolve(idle);
    await flush();
    expect(p.value()).toEqual({ healthy: 'idle' });
  });

  it('peer - a retryable failure counts attempt 1 and backs off (retryable_failure)', async () => {
    const p = await startPeer({ deliver: [delivered(), retryable(503)] });
    expect(p.value()).toEqual({ 'backing-off': 'waiting' });
    expect(p.context().attempts).toBe(1);
    expect(p.context().lastError).toBe('HTTP 503');
    expect(p.reports).toEqual([{ from: 'healthy', to: 'backing-off', reason: 'retryable_failure', attempts: 1, lastError: 'HTTP 503' }]);
  });

  it('peer - a crashed deliver effect counts as a retryable failure with its message', async () => {
    const p = await startPeer({ deliver: [new Error('connect ECONNREFUSED 10.0.0.7:443')] });
    expect(p.state()).toBe('backing-off');
    expect(p.context().attempts).toBe(1);
    expect(p.reports).toEqual([{ from: 'healthy', to: 'backing-off', reason: 'retryable_failure', attempts: 1, lastError: 'connect ECONNREFUSED 10.0.0.7:443' }]);
  });

  it('peer - a 429 waits Retry-After and does not count as an attempt', async () => {
    const p = await startPeer({ deliver: [rateLimited(7_000)] });
    expect(p.value()).toEqual({ 'rate-limited': 'waiting' });
    expect(p.context().attempts).toBe(0);
    expect(p.reports).toEqual([{ from: 'healthy', to: 'rate-limited', reason: 'rate_limited', attempts: 0, lastError: 'HTTP 429' }]);
    await p.advance(6_999);
    expect(p.deliverCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(2);
    expect(p.deliverCalls[1]!.at).toBe(7_000);
  });

  it('peer - a Retry-After longer than a timer can wait is waited for the longest a timer can (24.8 days), not retried at once', async () => {
    const p = await startPeer({ deliver: [rateLimited(99_999_999 * 1000)] });
    await p.advance(MAX_TIMER_MS - 1);
    expect(p.deliverCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(2);
  });

  it('peer - the Retry-After wait is exact: random has no say in it', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000)], input: { random: () => 0 } });
    await p.advance(999);
    expect(p.deliverCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(2);
  });

  it('peer - pacing at our own rate limit stays rate-limited: a send that took the last token waits for the next, with no report, until the queue is done', async () => {
    const paced = (pacedMs: number): DeliveryOutcome => ({ tag: 'delivered', count: 1, pacedMs });
    const p = await startPeer({ deliver: [bucketEmpty(50), paced(50), paced(50), delivered(1), idle] });
    expect(p.state()).toBe('rate-limited');
    await p.advance(50); // a token: one event, and the bucket is empty again
    expect(p.state()).toBe('rate-limited');
    expect(p.value()).toEqual({ 'rate-limited': 'waiting' });
    await p.advance(49);
    expect(p.deliverCalls).toHaveLength(2);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(3);
    await p.advance(50); // the last send leaves tokens: back to healthy, which finds nothing more
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.reports.map((r) => [r.from, r.to, r.reason])).toEqual([['healthy', 'rate-limited', 'rate_limited'], ['rate-limited', 'healthy', 'delivered']]);
    expect(p.context().attempts).toBe(0);
  });

  it('peer - our own empty token bucket (rate-limited without an error) leaves lastError alone', async () => {
    const p = await startPeer({ deliver: [bucketEmpty(250)] });
    expect(p.state()).toBe('rate-limited');
    expect(p.context().lastError).toBeNull();
    expect(p.reports[0]!.reason).toBe('rate_limited');
  });

  it.each([401, 403, 404])('peer - a %i dead-letters the peer at once (rejected) and holds its events', async (status) => {
    const p = await startPeer({ deliver: [delivered(), rejected(status)] });
    expect(p.value()).toEqual({ 'dead-lettered': 'holding' });
    expect(p.held).toBe(1);
    expect(p.context().attempts).toBe(0);
    expect(p.reports).toEqual([{ from: 'healthy', to: 'dead-lettered', reason: 'rejected', attempts: 0, lastError: `HTTP ${status}` }]);
    expect(p.log).toEqual(['deliver', 'deliver', 'report:healthy->dead-lettered:rejected', 'holdPending']);
  });

  it('peer - with maxAttempts 1 the first retryable failure exhausts retries', async () => {
    const p = await startPeer({ deliver: [retryable(500)], input: { retry: { ...POLICY, maxAttempts: 1 } } });
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports).toEqual([{ from: 'healthy', to: 'dead-lettered', reason: 'retries_exhausted', attempts: 1, lastError: 'HTTP 500' }]);
    expect(p.held).toBe(1);
  });
});

describe('peer - backing-off', () => {
  it('peer - backing-off retries after initialDelayMs·2^(n−1), staying backing-off without another report', async () => {
    const p = await startPeer({ deliver: [retryable(), retryable(), retryable(), delivered(), idle] });
    await p.advance(999);
    expect(p.deliverCalls).toHaveLength(1);
    await p.advance(1); // retry 1 at 1 s fails: attempt 2
    await p.advance(2_000); // retry 2 at 3 s fails: attempt 3
    expect(p.context().attempts).toBe(3);
    expect(p.deliverCalls.map((c) => c.input.attempts)).toEqual([0, 1, 2]);
    await p.advance(3_999);
    expect(p.deliverCalls).toHaveLength(3);
    await p.advance(1); // retry 3 at 7 s delivers
    expect(p.deliverCalls.map((c) => c.at)).toEqual([0, 1_000, 3_000, 7_000, 7_000]);
    expect(p.reports.map((r) => r.reason)).toEqual(['retryable_failure', 'delivered']);
  });

  it('peer - a delivery after backing off returns to healthy (delivered), resets attempts and clears lastError', async () => {
    const p = await startPeer({ deliver: [retryable(502), retryable(502), delivered(2)] });
    await p.advance(1_000);
    await p.advance(2_000);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.context()).toMatchObject({ attempts: 0, lastError: null });
    expect(p.reports.at(-1)).toEqual({ from: 'backing-off', to: 'healthy', reason: 'delivered', attempts: 0, lastError: null });
    // The retry's delivery was followed at once by the next batch (the queue's `idle`).
    expect(p.deliverCalls).toHaveLength(4);
  });

  it('peer - an idle answer after backing off returns to healthy (delivered) and idles', async () => {
    const p = await startPeer({ deliver: [retryable(), idle] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.context().attempts).toBe(0);
    expect(p.reports.map((r) => [r.from, r.to, r.reason])).toEqual([
      ['healthy', 'backing-off', 'retryable_failure'],
      ['backing-off', 'healthy', 'delivered'],
    ]);
  });

  it('peer - backoff jitter: random 0 retries 20% early, random 0.999… 20% late', async () => {
    const early = await startPeer({ deliver: [retryable()], input: { random: () => 0 } });
    await early.advance(799);
    expect(early.deliverCalls).toHaveLength(1);
    await early.advance(1);
    expect(early.deliverCalls).toHaveLength(2);

    const late = await startPeer({ deliver: [retryable()], input: { random: () => 0.9999999 } });
    await late.advance(1_199);
    expect(late.deliverCalls).toHaveLength(1);
    await late.advance(1);
    expect(late.deliverCalls).toHaveLength(2);
  });

  it('peer - the backoff wait is capped at maxDelayMs', async () => {
    const retry = { ...POLICY, maxAttempts: 10, initialDelayMs: 1_000, maxDelayMs: 3_000 };
    const p = await startPeer({ deliver: [retryable(), retryable(), retryable(), retryable()], input: { retry } });
    await p.advance(1_000); // attempt 2, next wait 2 s
    await p.advance(2_000); // attempt 3, next wait min(3 s, 4 s)
    await p.advance(2_999);
    expect(p.deliverCalls).toHaveLength(3);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(4);
    await p.advance(3_000); // attempt 4 → still 3 s
    expect(p.deliverCalls.map((c) => c.at)).toEqual([0, 1_000, 3_000, 6_000, 9_000]);
  });

  it('peer - retries are exhausted at maxAttempts: dead-lettered (retries_exhausted)', async () => {
    const retry = { ...POLICY, maxAttempts: 3 };
    const p = await startPeer({ deliver: [retryable(500), retryable(500), retryable(504)], input: { retry } });
    await p.advance(1_000);
    expect(p.state()).toBe('backing-off');
    await p.advance(2_000);
    expect(p.value()).toEqual({ 'dead-lettered': 'holding' });
    expect(p.context().attempts).toBe(3);
    expect(p.held).toBe(1);
    expect(p.reports).toEqual([
      { from: 'healthy', to: 'backing-off', reason: 'retryable_failure', attempts: 1, lastError: 'HTTP 500' },
      { from: 'backing-off', to: 'dead-lettered', reason: 'retries_exhausted', attempts: 3, lastError: 'HTTP 504' },
    ]);
  });

  it('peer - a crash while backing off counts as another attempt, and can exhaust retries', async () => {
    const retry = { ...POLICY, maxAttempts: 2 };
    const p = await startPeer({ deliver: [retryable(), new Error('socket hang up')], input: { retry } });
    await p.advance(1_000);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports.at(-1)).toEqual({ from: 'backing-off', to: 'dead-lettered', reason: 'retries_exhausted', attempts: 2, lastError: 'socket hang up' });
  });

  it('peer - a 429 while backing off goes rate-limited and keeps the attempt count', async () => {
    const p = await startPeer({ deliver: [retryable(), rateLimited(2_500)] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ 'rate-limited': 'waiting' });
    expect(p.context().attempts).toBe(1);
    expect(p.reports.at(-1)).toEqual({ from: 'backing-off', to: 'rate-limited', reason: 'rate_limited', attempts: 1, lastError: 'HTTP 429' });
    await p.advance(2_500);
    expect(p.deliverCalls.at(-1)!.at).toBe(3_500);
  });

  it('peer - a rejection while backing off dead-letters (rejected)', async () => {
    const p = await startPeer({ deliver: [retryable(), rejected(403)] });
    await p.advance(1_000);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports.at(-1)).toEqual({ from: 'backing-off', to: 'dead-lettered', reason: 'rejected', attempts: 1, lastError: 'HTTP 403' });
  });

  it('peer - WORK_AVAILABLE does not cut a backoff short', async () => {
    const p = await startPeer({ deliver: [retryable()] });
    await p.send({ type: 'WORK_AVAILABLE' });
    await p.advance(500);
    await p.send({ type: 'WORK_AVAILABLE' });
    expect(p.deliverCalls).toHaveLength(1);
    expect(p.value()).toEqual({ 'backing-off': 'waiting' });
  });
});

describe('peer - rate-limited', () => {
  it('peer - after the wait, a delivery returns to healthy (delivered)', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), delivered()] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.reports.at(-1)).toEqual({ from: 'rate-limited', to: 'healthy', reason: 'delivered', attempts: 0, lastError: null });
  });

  it('peer - after the wait, an idle answer returns to healthy (delivered)', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), idle] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.reports.map((r) => r.reason)).toEqual(['rate_limited', 'delivered']);
  });

  it('peer - another 429 stays rate-limited with the new wait and no new report', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), rateLimited(4_000), delivered()] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ 'rate-limited': 'waiting' });
    expect(p.reports).toHaveLength(1);
    await p.advance(3_999);
    expect(p.deliverCalls).toHaveLength(2);
    await p.advance(1);
    expect(p.deliverCalls).toHaveLength(4);
    expect(p.state()).toBe('healthy');
  });

  it('peer - rate limits never count as attempts, however many there are', async () => {
    const retry = { ...POLICY, maxAttempts: 2 };
    const p = await startPeer({ deliver: Array.from({ length: 10 }, () => rateLimited(100)), input: { retry } });
    for (let i = 0; i < 9; i++) await p.advance(100);
    expect(p.deliverCalls).toHaveLength(10);
    expect(p.state()).toBe('rate-limited');
    expect(p.context().attempts).toBe(0);
    expect(p.deliverCalls.every((c) => c.input.attempts === 0)).toBe(true);
    expect(p.reports).toHaveLength(1);
  });

  it('peer - a retryable failure after a rate limit counts an attempt and backs off', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), retryable(503)] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ 'backing-off': 'waiting' });
    expect(p.reports.at(-1)).toEqual({ from: 'rate-limited', to: 'backing-off', reason: 'retryable_failure', attempts: 1, lastError: 'HTTP 503' });
  });

  it('peer - a crash after a rate limit counts an attempt and backs off', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), new Error('db down')] });
    await p.advance(1_000);
    expect(p.state()).toBe('backing-off');
    expect(p.context()).toMatchObject({ attempts: 1, lastError: 'db down' });
  });

  it('peer - a retryable failure after a rate limit exhausts retries when it is the last attempt', async () => {
    const retry = { ...POLICY, maxAttempts: 2 };
    const p = await startPeer({ deliver: [retryable(), rateLimited(500), retryable()], input: { retry } });
    await p.advance(1_000);
    await p.advance(500);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports.at(-1)).toMatchObject({ from: 'rate-limited', to: 'dead-lettered', reason: 'retries_exhausted', attempts: 2 });
  });

  it('peer - a rejection after a rate limit dead-letters (rejected)', async () => {
    const p = await startPeer({ deliver: [rateLimited(1_000), rejected(404)] });
    await p.advance(1_000);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports.at(-1)).toEqual({ from: 'rate-limited', to: 'dead-lettered', reason: 'rejected', attempts: 0, lastError: 'HTTP 404' });
    expect(p.held).toBe(1);
  });
});

describe('peer - dead-lettered', () => {
  const deadLettered = (probe: (DeliveryOutcome | Error | Deferred)[] = [], random = () => 0.5) =>
    startPeer({ deliver: [rejected(401)], probe, input: { random } });

  it('peer - the first probe goes out maxDelayMs after dead-lettering, without jitter', async () => {
    const p = await deadLettered([], () => 0);
    await p.advance(POLICY.maxDelayMs - 1);
    expect(p.probeCalls).toHaveLength(0);
    await p.advance(1);
    expect(p.probeCalls).toHaveLength(1);
    expect(p.probeCalls[0]!.input).toEqual({ peerId: 'peer-1', timeoutMs: POLICY.timeoutMs });
  });

  it('peer - a failed probe keeps the peer dead-lettered and schedules the next one maxDelayMs −20% later (random 0)', async () => {
    const p = await deadLettered([retryable(502)], () => 0);
    await p.advance(60_000);
    expect(p.value()).toEqual({ 'dead-lettered': 'waiting' });
    expect(p.context().lastError).toBe('HTTP 502');
    await p.advance(47_999);
    expect(p.probeCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.probeCalls).toHaveLength(2);
    expect(p.reports).toHaveLength(1);
    expect(p.held).toBe(1);
  });

  it('peer - the next probe comes maxDelayMs +20% later with random 0.999…', async () => {
    const p = await deadLettered([retryable(502)], () => 0.9999999);
    await p.advance(60_000);
    await p.advance(71_999);
    expect(p.probeCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.probeCalls).toHaveLength(2);
  });

  it.each<[string, DeliveryOutcome | Error]>([
    ['retryable', retryable(500)],
    ['rate-limited', rateLimited(1_000)],
    ['rejected', rejected(401)],
    ['idle', idle],
    ['a crash', new Error('probe crashed')],
  ])('peer - a probe answered %s keeps the peer dead-lettered', async (_, answer) => {
    const p = await deadLettered([answer]);
    await p.advance(60_000);
    expect(p.value()).toEqual({ 'dead-lettered': 'waiting' });
    expect(p.released).toBe(0);
    expect(p.reports).toHaveLength(1);
    expect(p.deliverCalls).toHaveLength(1);
  });

  it('peer - a 2xx probe releases the held events, then returns to healthy (probe_succeeded) and delivers', async () => {
    const p = await deadLettered([retryable(502), delivered(0)]);
    await p.advance(60_000);
    await p.advance(60_000);
    expect(p.released).toBe(1);
    expect(p.reports.at(-1)).toEqual({ from: 'dead-lettered', to: 'healthy', reason: 'probe_succeeded', attempts: 0, lastError: null });
    expect(p.log.slice(-4)).toEqual(['probe', 'releaseHeld', 'report:dead-lettered->healthy:probe_succeeded', 'deliver']);
    expect(p.value()).toEqual({ healthy: 'idle' });
  });

  it('peer - a probe success resets the attempts left by exhaustion', async () => {
    const p = await startPeer({ deliver: [retryable()], probe: [delivered(0)], input: { retry: { ...POLICY, maxAttempts: 1 } } });
    expect(p.context().attempts).toBe(1);
    await p.advance(60_000);
    expect(p.state()).toBe('healthy');
    expect(p.context().attempts).toBe(0);
  });

  it('peer - REDRIVE releases the held events and returns to healthy (redrive) at once', async () => {
    const p = await deadLettered();
    p.script(delivered(), idle);
    await p.send({ type: 'REDRIVE' });
    expect(p.released).toBe(1);
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.deliverCalls).toHaveLength(3);
    expect(p.reports.at(-1)).toEqual({ from: 'dead-lettered', to: 'healthy', reason: 'redrive', attempts: 0, lastError: 'HTTP 401' });
    expect(p.log.slice(-4)).toEqual(['releaseHeld', 'report:dead-lettered->healthy:redrive', 'deliver', 'deliver']);
    // No probe is left scheduled.
    await p.advance(120_000);
    expect(p.probeCalls).toHaveLength(0);
  });

  it('peer - REDRIVE during a probe aborts the probe in flight', async () => {
    const probe = new Deferred();
    const p = await deadLettered([probe]);
    await p.advance(60_000);
    expect(probe.signal?.aborted).toBe(false);
    await p.send({ type: 'REDRIVE' });
    expect(probe.signal?.aborted).toBe(true);
    expect(p.state()).toBe('healthy');
  });

  it('peer - PROBE_NOW probes at once while waiting for the first probe', async () => {
    const p = await deadLettered([delivered(0)]);
    await p.advance(10);
    await p.send({ type: 'PROBE_NOW' });
    expect(p.probeCalls.map((c) => c.at)).toEqual([10]);
    expect(p.reports.at(-1)!.reason).toBe('probe_succeeded');
  });

  it('peer - PROBE_NOW probes at once while waiting for the next probe, and the schedule restarts after it', async () => {
    const p = await deadLettered([retryable(), retryable()]);
    await p.advance(60_000);
    await p.advance(5_000);
    await p.send({ type: 'PROBE_NOW' });
    expect(p.probeCalls.map((c) => c.at)).toEqual([60_000, 65_000]);
    await p.advance(59_999);
    expect(p.probeCalls).toHaveLength(2);
    await p.advance(1);
    expect(p.probeCalls).toHaveLength(3);
  });

  it('peer - PROBE_NOW during a probe aborts it and sends a new one (the old one used the old config)', async () => {
    const first = new Deferred();
    const p = await deadLettered([first, delivered(0)]);
    await p.advance(60_000);
    await p.send({ type: 'PROBE_NOW' });
    expect(first.signal?.aborted).toBe(true);
    expect(p.probeCalls).toHaveLength(2);
    expect(p.state()).toBe('healthy');
    expect(p.released).toBe(1);
  });

  it('peer - WORK_AVAILABLE is ignored while dead-lettered', async () => {
    const p = await deadLettered();
    await p.send({ type: 'WORK_AVAILABLE' });
    expect(p.deliverCalls).toHaveLength(1);
    expect(p.value()).toEqual({ 'dead-lettered': 'holding' });
  });
});

describe('peer - REDRIVE outside dead-lettered', () => {
  it('peer - REDRIVE while backing off goes healthy (redrive) at once and resets attempts', async () => {
    const p = await startPeer({ deliver: [retryable(), retryable()] });
    await p.advance(1_000);
    expect(p.context().attempts).toBe(2);
    await p.send({ type: 'REDRIVE' });
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.deliverCalls.at(-1)).toMatchObject({ at: 1_000, input: { attempts: 0 } });
    expect(p.reports.at(-1)).toEqual({ from: 'backing-off', to: 'healthy', reason: 'redrive', attempts: 0, lastError: 'HTTP 503' });
    expect(p.released).toBe(1);
  });

  it('peer - REDRIVE while rate-limited goes healthy (redrive) without waiting out Retry-After', async () => {
    const p = await startPeer({ deliver: [rateLimited(30_000)] });
    await p.send({ type: 'REDRIVE' });
    expect(p.deliverCalls.map((c) => c.at)).toEqual([0, 0]);
    expect(p.reports.map((r) => [r.from, r.to, r.reason])).toEqual([
      ['healthy', 'rate-limited', 'rate_limited'],
      ['rate-limited', 'healthy', 'redrive'],
    ]);
  });

  it('peer - REDRIVE while healthy and idle requeues, delivers, and reports no state change', async () => {
    const p = await startPeer();
    p.script(delivered(), idle);
    await p.send({ type: 'REDRIVE' });
    expect(p.released).toBe(1);
    expect(p.deliverCalls).toHaveLength(3);
    expect(p.reports).toEqual([]);
  });

  it('peer - REDRIVE while healthy and delivering lets the batch in flight finish', async () => {
    const inFlight = new Deferred();
    const p = await startPeer({ deliver: [inFlight] });
    await p.send({ type: 'REDRIVE' });
    expect(inFlight.signal?.aborted).toBe(false);
    expect(p.released).toBe(1);
    expect(p.reports).toEqual([]);
    inFlight.resolve(delivered());
    await flush();
    expect(p.deliverCalls).toHaveLength(2);
  });
});

describe('peer - aborting effects', () => {
  it('peer - leaving backing-off while a retry is in flight aborts it (its signal fires), and its late answer is ignored', async () => {
    const retry = new Deferred();
    const p = await startPeer({ deliver: [retryable(), retry] });
    await p.advance(1_000);
    expect(p.value()).toEqual({ 'backing-off': 'retrying' });
    expect(retry.signal?.aborted).toBe(false);
    await p.send({ type: 'REDRIVE' });
    expect(retry.signal?.aborted).toBe(true);
    retry.resolve(rejected(401)); // too late: the actor was stopped
    await flush();
    expect(p.value()).toEqual({ healthy: 'idle' });
    expect(p.held).toBe(0);
  });

  it('peer - leaving rate-limited while a retry is in flight aborts it', async () => {
    const retry = new Deferred();
    const p = await startPeer({ deliver: [rateLimited(1_000), retry] });
    await p.advance(1_000);
    await p.send({ type: 'REDRIVE' });
    expect(retry.signal?.aborted).toBe(true);
  });

  it('peer - stopping the actor aborts the delivery in flight and cancels its timers', async () => {
    const inFlight = new Deferred();
    const p = await startPeer({ deliver: [inFlight] });
    p.actor.stop();
    expect(inFlight.signal?.aborted).toBe(true);
    await p.advance(60_000);
    expect(p.deliverCalls).toHaveLength(1);
  });

  it('peer - a finished delivery is not aborted when the machine moves on', async () => {
    const p = await startPeer({ deliver: [retryable()] });
    expect(p.deliverCalls[0]!.signal.aborted).toBe(false);
  });
});

describe('peer - CONFIG_UPDATED', () => {
  it('peer - CONFIG_UPDATED changes the policy for the next wait, in any state', async () => {
    const p = await startPeer({ deliver: [retryable(), retryable()] });
    await p.send({ type: 'CONFIG_UPDATED', retry: { ...POLICY, initialDelayMs: 100 } });
    expect(p.context().retry.initialDelayMs).toBe(100);
    expect(p.value()).toEqual({ 'backing-off': 'waiting' });
    await p.advance(1_000); // the wait in progress keeps its timer
    expect(p.deliverCalls).toHaveLength(2);
    await p.advance(199);
    expect(p.deliverCalls).toHaveLength(2);
    await p.advance(1); // attempt 2 waits 100·2 ms under the new policy
    expect(p.deliverCalls).toHaveLength(3);
  });

  it('peer - lowering maxAttempts makes the next failure exhaust retries', async () => {
    const p = await startPeer({ deliver: [retryable(), retryable(), retryable()] });
    await p.advance(1_000);
    await p.send({ type: 'CONFIG_UPDATED', retry: { ...POLICY, maxAttempts: 2 } });
    await p.advance(2_000);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports.at(-1)!.reason).toBe('retries_exhausted');
  });

  it('peer - CONFIG_UPDATED while dead-lettered changes the interval of the next probe', async () => {
    const p = await startPeer({ deliver: [rejected()], input: { random: () => 0.5 } });
    await p.send({ type: 'CONFIG_UPDATED', retry: { ...POLICY, maxDelayMs: 10_000 } });
    await p.advance(10_000); // the first probe's timer was set on entry, with the old maxDelayMs
    expect(p.probeCalls).toHaveLength(0);
    await p.advance(50_000);
    await p.advance(9_999);
    expect(p.probeCalls).toHaveLength(1);
    await p.advance(1);
    expect(p.probeCalls.map((c) => c.at)).toEqual([60_000, 70_000]);
  });
});

describe('peer - restore', () => {
  it('peer - a restarted node resumes a healthy peer delivering at once, with no report', async () => {
    const p = await startPeer({ deliver: [delivered()], input: { initialState: 'healthy' } });
    expect(p.deliverCalls).toHaveLength(2);
    expect(p.reports).toEqual([]);
  });

  it('peer - resumes backing-off with its persisted attempts, waits backoffDelay(attempts), with no report', async () => {
    const p = await startPeer({ deliver: [delivered()], input: { initialState: 'backing-off', attempts: 3 } });
    expect(p.value()).toEqual({ 'backing-off': 'waiting' });
    expect(p.deliverCalls).toHaveLength(0);
    expect(p.reports).toEqual([]);
    await p.advance(3_999);
    expect(p.deliverCalls).toHaveLength(0);
    await p.advance(1);
    expect(p.deliverCalls[0]!.input.attempts).toBe(3);
    expect(p.reports).toEqual([{ from: 'backing-off', to: 'healthy', reason: 'delivered', attempts: 0, lastError: null }]);
  });

  it('peer - a resumed backing-off peer exhausts retries counting its persisted attempts', async () => {
    const p = await startPeer({ deliver: [retryable()], input: { initialState: 'backing-off', attempts: 4 } });
    await p.advance(8_000);
    expect(p.state()).toBe('dead-lettered');
    expect(p.reports).toEqual([{ from: 'backing-off', to: 'dead-lettered', reason: 'retries_exhausted', attempts: 5, lastError: 'HTTP 503' }]);
  });

  it('peer - resumes rate-limited, waiting the persisted Retry-After (1 s when unknown), with no report', async () => {
    const unknown = await startPeer({ input: { initialState: 'rate-limited' } });
    expect(unknown.value()).toEqual({ 'rate-limited': 'waiting' });
    await unknown.advance(999);
    expect(unknown.deliverCalls).toHaveLength(0);
    await unknown.advance(1);
    expect(unknown.deliverCalls).toHaveLength(1);
    expect(unknown.reports.map((r) => r.reason)).toEqual(['delivered']);

    const known = await startPeer({ input: { initialState: 'rate-limited', retryAfterMs: 3_000 } });
    await known.advance(2_999);
    expect(known.deliverCalls).toHaveLength(0);
    await known.advance(1);
    expect(known.deliverCalls).toHaveLength(1);
  });

  it('peer - resumes dead-lettered: holds again (events stored while down), first probe maxDelayMs later, no report', async () => {
    const p = await startPeer({ probe: [delivered(0)], input: { initialState: 'dead-lettered', attempts: 5 } });
    expect(p.value()).toEqual({ 'dead-lettered': 'holding' });
    expect(p.held).toBe(1);
    expect(p.deliverCalls).toHaveLength(0);
    expect(p.reports).toEqual([]);
    await p.advance(59_999);
    expect(p.probeCalls).toHaveLength(0);
    await p.advance(1);
    expect(p.reports).toEqual([{ from: 'dead-lettered', to: 'healthy', reason: 'probe_succeeded', attempts: 0, lastError: null }]);
  });

  it('peer - the resume hint does not linger in the context', async () => {
    const p = await startPeer({ input: { initialState: 'backing-off', attempts: 1 } });
    expect(p.context().resumeIn).toBeNull();
  });
});

describe('peer - state change reports', () => {
  it('peer - reportStateChange is called exactly once per top-level change, with the right reason, across a long run', async () => {
    const retry = { ...POLICY, maxAttempts: 4 };
    const p = await startPeer({
      deliver: [
        delivered(), retryable(), // healthy → backing-off
        retryable(), // stays backing-off
        rateLimited(500), // → rate-limited
        rateLimited(500), // stays
        retryable(), // → backing-off (attempt 3)
        retryable(), // attempt 4: exhausted → dead-lettered
      ],
      probe: [retryable(), delivered(0)],
      input: { retry },
    });
    await p.advance(1_000);
    await p.advance(2_000);
    await p.advance(500);
    await p.advance(500);
    await p.advance(4_000);
    expect(p.state()).toBe('dead-lettered');
    await p.advance(60_000);
    await p.advance(60_000);
    const changes: [PeerState, PeerState, string][] = p.reports.map((r) => [r.from, r.to, r.reason]);
    expect(changes).toEqual([
      ['healthy', 'backing-off', 'retryable_failure'],
      ['backing-off', 'rate-limited', 'rate_limited'],
      ['rate-limited', 'backing-off', 'retryable_failure'],
      ['backing-off', 'dead-lettered', 'retries_exhausted'],
      ['dead-lettered', 'healthy', 'probe_succeeded'],
    ]);
    expect(p.reports.map((r) => r.attempts)).toEqual([1, 2, 3, 4, 0]);
    expect(p.held).toBe(1);
    expect(p.released).toBe(1);
  });
});

describe('peer - defaults', () => {
  it('peer - a deliver the supervisor forgot to provide fails loudly with "not provided"', async () => {
    const clock = new SimulatedClock();
    const reports: unknown[] = [];
    const machine = peerMachine.provide({
      actions: { reportStateChange: (_, change) => void reports.push(change), holdPending: () => {}, releaseHeld: () => {} },
    });
    const actor = createActor(machine, { clock, input: { peerId: 'p', retry: POLICY } }).start();
    await flush();
    expect(actor.getSnapshot().context.lastError).toMatch(/"deliver" not provided/);
    actor.stop();
  });

  it('peer - an action the supervisor forgot to provide stops the actor with "not provided"', async () => {
    const machine = peerMachine.provide({
      actors: { deliver: fromPromise(async () => rejected(401)), probe: fromPromise(async () => idle) },
    });
    const actor = createActor(machine, { clock: new SimulatedClock(), input: { peerId: 'p', retry: POLICY } });
    const errors: unknown[] = [];
    actor.subscribe({ error: (err) => errors.push(err) });
    actor.start();
    await flush();
    expect(actor.getSnapshot().status).toBe('error');
    expect(String(errors[0])).toMatch(/"reportStateChange" not provided/);
  });
});
