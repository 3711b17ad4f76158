/**
 * Federation scenarios about pace (contract §5 "Outcomes the sender acts on", §6 "Peer states"):
 * a peer that answers 429 with Retry-After is waited for, without counting attempts; and our own
 * `rateLimit` bounds how fast we send. Measured at a proxy in front of B, over real TLS.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FlakyPeer } from '../support/flaky-peer.js';
import { pair } from '../support/federation.js';
import { getPeer, idsSeen, ingestMany, patchPeer, peerInState, Scenario, stateChange, stateChanges, TEAM, until } from './scenario-kit.js';

let s: Scenario;

afterEach(async () => {
  await s?.stop();
});

describe('federation - pace', () => {
  it('federation - a 429 with Retry-After: 1 makes A wait about a second each time, without counting attempts', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    // A stand-in for B's load balancer, shedding load: the first two deliveries get 429.
    const proxy = new FlakyPeer(b.url, s.tls);
    await proxy.start();
    s.onCleanup(() => proxy.stop());
    let shed = 0;
    proxy.decide = () => (shed++ < 2 ? { status: 429, headers: { 'retry-after': '1' } } : 'pass');
    // Two failed attempts would dead-letter this peer: a 429 must not count as one.
    const { aPeerId } = await pair(a, b, TEAM, { url: proxy.url, retry: { maxAttempts: 2, initialDelayMs: 50, maxDelayMs: 500 } });
    const atB = await s.listen(b);

    const sent = await ingestMany(a, 5);
    const limited = await peerInState(a, aPeerId, 'rate-limited');
    expect(limited.lastError).toMatch(/429/);
    expect(await stateChange(a, aPeerId, 'rate-limited', 'rate_limited')).toMatchObject({ from: 'healthy', instanceId: 'kite-b' });
    const [row] = await a.db.query<{ attempts: number }>('SELECT attempts FROM peers WHERE id = $1', [aPeerId]);
    expect(row!.attempts).toBe(0);

    await atB.waitForEvents(5, 10_000);
    expect(idsSeen(atB)).toEqual(sent.map((e) => e.id));
    await stateChange(a, aPeerId, 'healthy', 'delivered');
    expect((await stateChanges(a, aPeerId)).map((c) => [c.to, c.reason])).toEqual([['rate-limited', 'rate_limited'], ['healthy', 'delivered']]);

    const [first, second, third] = proxy.requests;
    expect([first!.status, second!.status, third!.status]).toEqual([429, 429, 200]);
    // A retry re-sends the same request: same webhook-id.
    expect(second!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(third!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    for (const [before, after] of [[first!, second!], [second!, third!]] as const) {
      expect(after.at - before.at).toBeGreaterThanOrEqual(950);
      expect(after.at - before.at).toBeLessThan(2_500);
    }
    await until(async () => (await getPeer(a, aPeerId)).delivered === 5, 'A to count 5 delivered');
  });

  it('federation - rateLimit 20/s with a burst of 5 spreads 60 events over ≥ 2.5 s and never more than ~25 in a second', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const proxy = new FlakyPeer(b.url, s.tls); // passes everything; records when each event went
    await proxy.start();
    s.onCleanup(() => proxy.stop());
    const { aPeerId } = await pair(a, b, TEAM, { url: proxy.url, rateLimit: { perSecond: 20, burst: 5 } });
    const atB = await s.listen(b);
    // One event first, so the TLS connection to the proxy is open before the measured ones: a
    // handshake would delay the first arrival and make the spread look shorter than it was sent.
    const [warmUp] = await ingestMany(a, 1);
    await atB.waitForEvents(1);
    await proxy.waitFor(() => proxy.requests.length === 1 && proxy.requests[0]!.status !== undefined, 'the warm-up answered');

    const sent = await ingestMany(a, 60, 10);
    await atB.waitForEvents(61, 15_000);
    expect(idsSeen(atB)).toEqual([warmUp!, ...sent].map((e) => e.id));

    // B's listener can see the last events before the proxy has relayed B's answer.
    await proxy.waitFor(() => proxy.requests.every((r) => r.status !== undefined), 'every answer relayed');
    const requests = proxy.requests.slice(1).filter((r) => r.events.length > 0);
    expect(requests.map((r) => r.status)).toEqual(requests.map(() => 200));
    // A batch never holds more events than there are tokens, and there are never more than the burst.
    expect(Math.max(...requests.map((r) => r.events.length))).toBeLessThanOrEqual(5);
    const span = requests.at(-1)!.at - requests[0]!.at;
    // 5 at once, then 55 at 20/s: 2.75 s in theory.
    expect(span).toBeGreaterThanOrEqual(2_500);
    // At most burst + perSecond = 25 in any 1 s window when sent. Measured on arrival, one request
    // held up in transit carries up to a burst (5) across the window's edge (28 seen in CI on a
    // loaded machine), so allow that; the overdraft below bounds the rate over the whole run.
    let busiest = 0;
    for (const start of requests) {
      const inWindow = requests.filter((r) => r.at >= start.at && r.at < start.at + 1000).reduce((n, r) => n + r.events.length, 0);
      busiest = Math.max(busiest, inWindow);
    }
    console.info(`rate limit: 60 events in ${requests.length} requests over ${span} ms; busiest 1 s window ${busiest} events`);
    expect(busiest).toBeLessThanOrEqual(30);
    expect(overdraft(requests, { perSecond: 20, burst: 5 })).toBeLessThanOrEqual(2);
    // Waiting for tokens is `rate-limited`, never a failure.
    const reasons = (await stateChanges(a, aPeerId)).map((c) => c.reason);
    expect(reasons).toContain('rate_limited');
    expect(reasons).not.toContain('retryable_failure');
    await until(async () => (await getPeer(a, aPeerId)).delivered === 61, 'A to count 61 delivered');
    // Pacing is one stay in rate-limited, not a flip to healthy and back (two internal events) per
    // request: 55 paced events made ~110 state changes before. A few runs can come from the
    // ingest arriving in bursts, hence not exactly one.
    console.info(`rate limit: state changes ${JSON.stringify(reasons)}`);
    expect(reasons.filter((r) => r === 'rate_limited').length).toBeLessThanOrEqual(4);
  });

  it('federation - the last event taking the last token leaves the peer healthy with nothing pending, not rate-limited', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const { aPeerId } = await pair(a, b, TEAM, { enabled: false, rateLimit: { perSecond: 0.2, burst: 3 } });
    const atB = await s.listen(b);
    await ingestMany(a, 3);
    await patchPeer(a, aPeerId, { enabled: true });
    await atB.waitForEvents(3, 10_000);
    await until(async () => (await getPeer(a, aPeerId)).delivered === 3, 'A to count 3 delivered');
    // The next token is 5 s away; nothing waits for it.
    expect(await getPeer(a, aPeerId)).toMatchObject({ state: 'healthy', pending: 0 });
    expect(await stateChanges(a, aPeerId)).toEqual([]);
  });

  it('federation - a batch refused with 400 is re-sent one event at a time within the rate limit', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const proxy = new FlakyPeer(b.url, s.tls); // a gateway refusing any request that carries a marked event
    await proxy.start();
    s.onCleanup(() => proxy.stop());
    proxy.decide = (request) => (request.events.some((e) => String(e['id']).startsWith('evt_refused_')) ? { status: 400 } : 'pass');
    // A slow refill (500 ms a token) next to the time A may need to open the connection that
    // carries the batch (DNS, TCP, TLS: up to ~250 ms seen on a loaded machine), during which A's
    // bucket refills: at 10/s that made the first re-sends rightly come 40 ms apart.
    const limit = { perSecond: 2, burst: 5 };
    const { aPeerId } = await pair(a, b, TEAM, { url: proxy.url, rateLimit: limit, enabled: false });
    const sent = await ingestMany(a, 5, 1, (i) => (i === 4 ? `evt_refused_${i}` : undefined));
    const atB = await s.listen(b);
    await patchPeer(a, aPeerId, { enabled: true });
    await atB.waitForEvents(4, 10_000);
    expect(idsSeen(atB)).toEqual(sent.slice(0, 4).map((e) => e.id));
    await proxy.waitFor(() => proxy.requests.length === 6 && proxy.requests.every((r) => r.status !== undefined), 'the batch and its 5 re-sends');
    expect(proxy.requests.map((r) => r.events.length)).toEqual([5, 1, 1, 1, 1, 1]);
    // One token per event sent: the refused batch took the whole burst, so the re-sends must wait
    // for new tokens (500 ms each here) instead of going out at once. Measured among the re-sends
    // (a bucket holding one token at the first): the batch's own arrival is no reference, as the
    // connection was opened after A took its tokens. One event of slack for arrival jitter and
    // for what the bucket gained while the connection opened; re-sends all at once would be 4 over.
    const spread = proxy.requests.map((r) => r.at - proxy.requests[0]!.at);
    console.info(`400 re-sends at +${spread.join(', +')} ms`);
    expect(overdraft(proxy.requests.slice(1), { perSecond: limit.perSecond, burst: 1 })).toBeLessThanOrEqual(1);
    // And over the whole run: four more tokens take 2 s after the first re-send, less what the
    // bucket gained while the connection opened (well under a token).
    expect(spread.at(-1)! - spread[1]!).toBeGreaterThanOrEqual(1_000);
  });
});

/**
 * How far the requests went over a token bucket that starts full at the first request: the most,
 * at any request, by which the events sent so far exceed burst + perSecond·elapsed. 0 when the
 * sender kept to its rateLimit (contract §6: one token per event; a batch never holds more
 * events than there are tokens). Measured on arrival, so allow a little for jitter.
 */
function overdraft(requests: readonly { at: number; events: readonly unknown[] }[], limit: { perSecond: number; burst: number }): number {
  let sent = 0;
  let worst = 0;
  for (const r of requests) {
    sent += r.events.length;
    const allowed = limit.burst + (limit.perSecond * (r.at - requests[0]!.at)) / 1000;
    worst = Math.max(worst, sent - allowed);
  }
  return worst;
}
