/**
 * Federation scenarios around a peer that is not there (contract §5 "Outcomes the sender acts on",
 * §6 "Peer states"): B stopped and restarted, a paused peer, and a dead peer next to a live one.
 * Real instances over real TLS; every wait is on a condition with a deadline.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { pair } from '../support/federation.js';
import { expectStatus } from '../support/kite.js';
import { metricsOf, sample } from '../support/metrics.js';
import {
  deliveries, FAST_RETRY, getPeer, idsSeen, ingestMany, patchPeer, peerInState, Scenario, stateChange, stateChanges, stream, TEAM, until,
} from './scenario-kit.js';

let s: Scenario;

afterEach(async () => {
  await s?.stop();
});

describe('federation - a peer that is away', () => {
  it('federation - while B is down A backs off; once B is back on the same port all 50 events arrive once, in A\'s order', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const { aPeerId } = await pair(a, b, TEAM, { retry: FAST_RETRY });

    await s.down(b); // its database stays
    const sent = await ingestMany(a, 50);

    const backingOff = await peerInState(a, aPeerId, 'backing-off');
    expect(backingOff.lastError).toEqual(expect.any(String));
    const down = await stateChange(a, aPeerId, 'backing-off', 'retryable_failure');
    expect(down).toMatchObject({ peerId: aPeerId, instanceId: 'kite-b', from: 'healthy', to: 'backing-off', held: expect.any(Number) });
    expect(down.held).toBeGreaterThan(0);
    await expect(stream(b, 'stripe.*')).rejects.toThrow(); // B really is down: its API does not answer

    const b2 = await s.restart(b);
    const atB = await s.listen(b2); // after=0, types=stripe.*
    await atB.waitForEvents(50, 20_000);

    const back = await stateChange(a, aPeerId, 'healthy', 'delivered');
    expect(back).toMatchObject({ from: 'backing-off', instanceId: 'kite-b' });
    const peer = await until(async () => {
      const p = await getPeer(a, aPeerId);
      return p.pending === 0 ? p : undefined;
    }, 'A\'s queue for B to drain');
    expect(peer).toMatchObject({ state: 'healthy', pending: 0, delivered: 50, deadLettered: 0 });
    // Exactly once and in A's order: the listener's view and B's stored stream agree with A's seqs.
    expect(idsSeen(atB)).toEqual(sent.map((e) => e.id));
    expect((await stream(b2, 'stripe.*')).map((e) => e['id'])).toEqual(sent.map((e) => e.id));
  });

  it('federation - a paused peer queues its events, sends none, and delivers them all in order on resume', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const { aPeerId } = await pair(a, b, TEAM);

    const paused = await patchPeer(a, aPeerId, { enabled: false });
    expect(paused).toMatchObject({ enabled: false, state: 'healthy' });
    const sent = await ingestMany(a, 10);

    // The events are queued in the same transaction as their storage, so no wait is needed here.
    // Sent ones would show attempts ≥ 1: all 10 at 0, with ingest taking long enough for an
    // enabled peer to have sent the first ones, shows the pause holds.
    const queued = await getPeer(a, aPeerId);
    expect(queued).toMatchObject({ enabled: false, pending: 10, delivered: 0 });
    const rows = await deliveries(a, aPeerId);
    expect(rows.map((d) => [d.status, d.attempts])).toEqual(sent.map(() => ['pending', 0]));
    expect(await stream(b, 'stripe.*')).toEqual([]);

    const atB = await s.listen(b);
    expect((await patchPeer(a, aPeerId, { enabled: true })).enabled).toBe(true);
    await atB.waitForEvents(10, 10_000);
    expect(idsSeen(atB)).toEqual(sent.map((e) => e.id));
    await until(async () => (await getPeer(a, aPeerId)).delivered === 10, 'A to count 10 delivered');
  });

  it('federation - a deep queue (600 events, batches of 100) drains once, in A\'s order, after a pause', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    // A burst of 100 tokens caps each batch at 100: every batch is full, so the next one is read
    // while it is in flight (peer-delivery.ts, read-ahead) — six requests, five read ahead.
    const { aPeerId } = await pair(a, b, TEAM, { rateLimit: { perSecond: 100_000, burst: 100 } });
    await patchPeer(a, aPeerId, { enabled: false });
    const sent = await ingestMany(a, 600, 8);
    expect((await getPeer(a, aPeerId)).pending).toBe(600);

    const atB = await s.listen(b);
    await patchPeer(a, aPeerId, { enabled: true });
    await atB.waitForEvents(600, 20_000);
    expect(idsSeen(atB)).toEqual(sent.map((e) => e.id));
    expect((await stream(b, 'stripe.*')).map((e) => e['id'])).toEqual(sent.map((e) => e.id));
    const drained = await until(async () => {
      const p = await getPeer(a, aPeerId);
      return p.pending === 0 ? p : undefined;
    }, 'A\'s queue for B to drain');
    expect(drained).toMatchObject({ delivered: 600, deadLettered: 0 });
    const rows = await deliveries(a, aPeerId);
    expect(rows.every((d) => d.status === 'delivered' && d.attempts === 1)).toBe(true);
    // B deduplicates, so a batch read again while in flight would only show here: A counts the
    // events of every request answered 2xx.
    const metrics = await metricsOf(a.kite);
    expect(sample(metrics, 'kite_peer_deliveries_total', { peer: aPeerId, outcome: 'delivered' })).toBe(600);
  });

  it('federation - events that trickle in one at a time each reach B promptly: no wake-up is lost between batches', async () => {
    // After a batch that emptied the queue the actor does not read it again unless woken; a
    // wake-up lost in between would leave an event waiting for the node's 5 s pending sweep.
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    await pair(a, b, TEAM);
    const atB = await s.listen(b, { types: 'stripe.*' });
    const arrivedAt = new Map<string, number>();
    atB.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'event') arrivedAt.set(frame.event.id, Date.now());
    });
    const sent = await ingestMany(a, 60);
    await atB.waitForEvents(60, 20_000);
    const slowest = Math.max(...sent.map((e) => arrivedAt.get(e.id)! - e.storedAt));
    expect(slowest).toBeLessThan(2500);
  });

  it('federation - a row put back in the queue below the last delivery, without a notification, is found by the pending sweep', async () => {
    // The actor reads above the last event it delivered; the node's pending sweep, the safety net
    // for lost notifications (a redrive made on another node while this one's listener
    // reconnected), finds the idle actor's pending row and has it read from the bottom. Here the
    // row is requeued behind Kite's back, as such a redrive would leave it. The actor's own idle
    // poll is 60 s: within 15 s only the sweep (every 5 s) can deliver it.
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const { aPeerId } = await pair(a, b, TEAM);
    await ingestMany(a, 5);
    const [first] = await until(async () => {
      const rows = await deliveries(a, aPeerId, 'delivered');
      return rows.length === 5 && rows.sort((x, y) => Number(x.id) - Number(y.id)); // ids grow with the queue order
    }, 'the first 5 delivered');
    await a.db.query(`UPDATE federation_deliveries SET status = 'pending' WHERE id = $1`, [first.id]);
    const again = await until(async () => {
      const [row] = await a.db.query<{ status: string; attempts: number }>('SELECT status, attempts FROM federation_deliveries WHERE id = $1', [first.id]);
      return row!.status === 'delivered' && row!.attempts === 2 && row;
    }, 'the requeued row delivered again', 15_000);
    expect(again.attempts).toBe(2);
  });

  it('federation - a dead peer backs off without slowing delivery to a healthy one', async () => {
    s = new Scenario();
    const [a, b] = await Promise.all([s.instance('kite-a'), s.instance('kite-b')]);
    const { aPeerId } = await pair(a, b, TEAM);

    // A port nobody listens on: connections are refused at once.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // And a black hole: it accepts connections and never answers, so requests hang.
    const hung = await blackHole(s);
    const dead = expectStatus(await a.kite.api.post(`/v1/teams/${TEAM}/peers`, {
      instanceId: 'kite-dead', url: `https://localhost:${closedPort}`, scopes: ['*'], retry: FAST_RETRY,
    }), 201).body;
    const black = expectStatus(await a.kite.api.post(`/v1/teams/${TEAM}/peers`, {
      instanceId: 'kite-hung', url: `https://localhost:${hung}`, scopes: ['*'], retry: { ...FAST_RETRY, timeoutMs: 1000 },
    }), 201).body;

    const atB = await s.listen(b, { types: 'stripe.*' });
    const arrivedAt = new Map<string, number>();
    atB.socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'event') arrivedAt.set(frame.event.id, Date.now());
    });

    const sent = await ingestMany(a, 200, 4);
    await atB.waitForEvents(200, 20_000);

    const latencies = sent.map((e) => arrivedAt.get(e.id)! - e.storedAt).sort((x, y) => x - y);
    const p50 = latencies[Math.floor(latencies.length * 0.5)]!;
    const p99 = latencies[Math.ceil(latencies.length * 0.99) - 1]!;
    console.info(`isolation: stored at A → listener at B, p50 ${p50} ms, p99 ${p99} ms, max ${latencies.at(-1)} ms over 200 events`);
    expect(p99).toBeLessThan(1000);
    expect(idsSeen(atB)).toEqual(sent.map((e) => e.id));

    const deadPeer = await peerInState(a, dead.id, 'backing-off');
    expect(deadPeer).toMatchObject({ pending: 200, delivered: 0 });
    expect((await stateChanges(a, dead.id)).map((c) => c.reason)).toEqual(['retryable_failure']);
    // The hung peer holds its own queue (and its own connections) only.
    expect(await getPeer(a, black.id)).toMatchObject({ pending: 200, delivered: 0 });
    const live = await until(async () => {
      const p = await getPeer(a, aPeerId);
      return p.delivered === 200 ? p : undefined;
    }, 'A to count 200 delivered to B');
    expect(live).toMatchObject({ state: 'healthy', pending: 0 });
  });

  it('federation - a peer that accepts connections but never answers times out after retry.timeoutMs', async () => {
    s = new Scenario();
    const a = await s.instance('kite-a');
    const port = await blackHole(s);
    const peer = expectStatus(await a.kite.api.post(`/v1/teams/${TEAM}/peers`, {
      instanceId: 'kite-hung', url: `https://localhost:${port}`, scopes: ['*'], retry: { ...FAST_RETRY, timeoutMs: 1000 },
    }), 201).body;
    const started = Date.now();
    await ingestMany(a, 1);
    // Contract §6: "Each request has retry.timeoutMs" — 1 s here, so backing-off well within 4 s.
    const failed = await peerInState(a, peer.id, 'backing-off', 4_000);
    expect(failed.lastError).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});

/** A loopback port that accepts TCP connections and never sends a byte (not even a TLS hello). */
async function blackHole(scenario: Scenario): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => sockets.add(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scenario.onCleanup(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}
