/**
 * Federation metrics (issue 6, "metrics that explain"): the per-peer gauges read from Postgres at
 * scrape time, on two real instances paired over TLS (B behind a TCP proxy so it can go down),
 * the drop counters of the receiving node, and the delivery observer's counters and histograms.
 */
import { rmSync } from 'node:fs';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerQueueStats } from '../../src/federation/peer-queue-stats.js';
import { answerKind } from '../../src/federation/answer-kind.js';
import { peerDeliveryObserver, registerPeerGauges, requestOutcome } from '../../src/observability/federation-metrics.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { hasEvent, ingestAt, peerKey, startInstance, type Instance } from '../support/federation.js';
import { expectStatus } from '../support/kite.js';
import { standardWebhook } from '../support/signers.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { STRIPE_SECRET } from '../support/webhooks.js';
import { metricsOf, sample, waitForMetrics } from '../support/metrics.js';

describe('the delivery observer', () => {
  it('metrics - the observer counts events by outcome and observes each request\'s round trip and batch size', async () => {
    const metrics = createMetrics();
    const observer = peerDeliveryObserver(metrics);
    const peer = { id: 'p-1', instanceId: 'kite-b' };
    observer.requestFinished(peer, 'delivered', 10, 0.02);
    observer.requestFinished(peer, 'delivered', 1, 0.004);
    observer.requestFinished(peer, 'retried', 5, 3);
    observer.requestFinished(peer, 'dead_lettered', 1, 0.03);
    observer.requestFinished({ id: 'p-2', instanceId: 'kite-c' }, 'delivered', 100, 0.5);
    const text = await metrics.registry.metrics();
    const p1 = { peer: 'p-1', peer_instance: 'kite-b' };
    expect(sample(text, 'kite_peer_deliveries_total', { ...p1, outcome: 'delivered' })).toBe(11);
    expect(sample(text, 'kite_peer_deliveries_total', { ...p1, outcome: 'retried' })).toBe(5);
    expect(sample(text, 'kite_peer_deliveries_total', { ...p1, outcome: 'dead_lettered' })).toBe(1);
    expect(sample(text, 'kite_peer_deliveries_total', { peer: 'p-2', outcome: 'delivered' })).toBe(100);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_count', p1)).toBe(4);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_sum', p1)).toBeCloseTo(3.054, 6);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_bucket', { ...p1, le: '0.005' })).toBe(1);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_bucket', { ...p1, le: '0.05' })).toBe(3);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_bucket', { ...p1, le: '2.5' })).toBe(3);
    expect(sample(text, 'kite_peer_delivery_duration_seconds_bucket', { ...p1, le: '5' })).toBe(4);
    expect(sample(text, 'kite_peer_batch_size_count', p1)).toBe(4);
    expect(sample(text, 'kite_peer_batch_size_sum', p1)).toBe(17);
    expect(sample(text, 'kite_peer_batch_size_bucket', { ...p1, le: '1' })).toBe(2);
    expect(sample(text, 'kite_peer_batch_size_bucket', { ...p1, le: '5' })).toBe(3);
    expect(sample(text, 'kite_peer_batch_size_bucket', { ...p1, le: '10' })).toBe(4);
    expect(sample(text, 'kite_peer_batch_size_bucket', { peer: 'p-2', le: '50' })).toBe(0);
    expect(sample(text, 'kite_peer_batch_size_bucket', { peer: 'p-2', le: '100' })).toBe(1);
    expect(text).toMatch(/# TYPE kite_peer_delivery_duration_seconds histogram/);
    expect(text).toMatch(/# TYPE kite_peer_deliveries_total counter/);
  });

  it('metrics - a request\'s outcome follows the contract\'s table of answers', () => {
    const cases: Array<[number | null, number, string]> = [
      [200, 10, 'delivered'], [202, 1, 'delivered'],
      [null, 5, 'retried'], [302, 5, 'retried'], [408, 1, 'retried'], [429, 1, 'retried'], [500, 1, 'retried'], [503, 20, 'retried'],
      [401, 5, 'dead_lettered'], [403, 1, 'dead_lettered'], [404, 7, 'dead_lettered'],
      [400, 1, 'dead_lettered'], [413, 1, 'dead_lettered'], [422, 1, 'dead_lettered'],
      [400, 3, 'retried'], [413, 50, 'retried'],
    ];
    for (const [status, size, outcome] of cases) expect(`${status}/${size}: ${requestOutcome(answerKind(status), size)}`).toBe(`${status}/${size}: ${outcome}`);
  });
});

describe('scrape-time peer gauges', () => {
  const row: PeerQueueStats = { id: 'p-1', instanceId: 'kite-b', state: 'backing-off', enabled: true, pending: 7, held: 2, oldestPendingSeconds: 12.5 };

  it('metrics - one database read serves every gauge of a scrape, and scrapes within the cache window', async () => {
    const registry = new Registry();
    let reads = 0;
    registerPeerGauges(registry, async () => {
      reads++;
      return [row];
    }, { cacheMs: 60_000 });
    const text = await registry.metrics();
    await registry.metrics();
    expect(reads).toBe(1);
    const labels = { peer: 'p-1', peer_instance: 'kite-b' };
    expect(sample(text, 'kite_peer_state', { ...labels, state: 'backing-off' })).toBe(1);
    for (const state of ['healthy', 'rate-limited', 'dead-lettered']) expect(sample(text, 'kite_peer_state', { ...labels, state })).toBe(0);
    expect(sample(text, 'kite_peer_queue_depth', labels)).toBe(7);
    expect(sample(text, 'kite_peer_held_deliveries', labels)).toBe(2);
    expect(sample(text, 'kite_peer_oldest_pending_age_seconds', labels)).toBe(12.5);
    expect(sample(text, 'kite_peer_enabled', labels)).toBe(1);
  });

  it('metrics - a hung database leaves the peer gauges out within the deadline and is asked only once', async () => {
    const registry = new Registry();
    let reads = 0;
    let release: (rows: PeerQueueStats[]) => void = () => {};
    registerPeerGauges(registry, () => {
      reads++;
      // The first read hangs until released; later ones answer at once.
      return reads === 1 ? new Promise((resolve) => (release = resolve)) : Promise.resolve([row]);
    }, { cacheMs: 0, deadlineMs: 100 });
    const started = Date.now();
    const first = await registry.metrics();
    const second = await registry.metrics();
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(reads).toBe(1);
    for (const text of [first, second]) expect(sample(text, 'kite_peer_queue_depth')).toBeUndefined();
    expect(sample(second, 'kite_peer_metrics_collect_failures_total')).toBe(2);
    // Once the database answers, the next scrape reads afresh.
    release([]);
    await new Promise((resolve) => setTimeout(resolve, 10));
    const healed = await registry.metrics();
    expect(reads).toBe(2);
    expect(sample(healed, 'kite_peer_queue_depth', { peer: 'p-1' })).toBe(7);
  });

  it('metrics - a failed read counts a failure and shows no stale values', async () => {
    const registry = new Registry();
    let fail = false;
    registerPeerGauges(registry, async () => {
      if (fail) throw new Error('connection refused');
      return [row];
    }, { cacheMs: 0 });
    expect(sample(await registry.metrics(), 'kite_peer_queue_depth', { peer: 'p-1' })).toBe(7);
    fail = true;
    const text = await registry.metrics();
    expect(sample(text, 'kite_peer_queue_depth')).toBeUndefined();
    expect(sample(text, 'kite_peer_metrics_collect_failures_total')).toBe(1);
  });
});

describe('per-peer metrics on two instances over TLS', () => {
  let tls: TestTls;
  let a: Instance;
  let b: Instance;
  let proxy: TcpProxy;
  const aToB = peerKey();
  const bToA = peerKey();
  let aPeer: string; // B, as a peer of A
  let bPeer: string; // A, as a peer of B
  let cPeer: string; // a third instance, as a peer of B, that nothing reaches within its hop limit
  // Long enough for B to go through its retries (1.5 s apart) to dead-lettered and back.
  const PEER_WAIT_MS = 15_000;

  beforeAll(async () => {
    tls = makeTestTls();
    [a, b] = await Promise.all([startInstance('kite-a', tls), startInstance('kite-b', tls)]);
    for (const instance of [a, b]) {
      await instance.kite.api.createTeam('acme');
      await instance.kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
    }
    // A reaches B through the proxy, so B can go away and come back on the same URL.
    const bPort = Number(new URL(b.url).port);
    proxy = new TcpProxy('127.0.0.1', bPort);
    await proxy.start();
    const retry = { maxAttempts: 3, initialDelayMs: 1_500, maxDelayMs: 1_500, timeoutMs: 2_000 };
    aPeer = expectStatus(await a.kite.api.post('/v1/teams/acme/peers', {
      instanceId: 'kite-b', url: `https://localhost:${proxy.port}`, scopes: ['*'], outboundKey: aToB, inboundKey: bToA, retry,
    }), 201).body.id;
    bPeer = expectStatus(await b.kite.api.post('/v1/teams/acme/peers', {
      instanceId: 'kite-a', url: a.url, scopes: ['*'], outboundKey: bToA, inboundKey: aToB,
    }), 201).body.id;
    cPeer = expectStatus(await b.kite.api.post('/v1/teams/acme/peers', {
      instanceId: 'kite-c', url: 'https://localhost:9', scopes: ['*'], maxHops: 1, enabled: false,
    }), 201).body.id;
  });

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await proxy?.stop();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });

  it('metrics - a healthy peer with an empty queue shows state healthy, depth 0 and age 0', async () => {
    const labels = { peer: aPeer, peer_instance: 'kite-b' };
    const text = await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_state', { ...labels, state: 'healthy' }) === 1, 'B healthy at A', PEER_WAIT_MS);
    expect(sample(text, 'kite_peer_state', { ...labels, state: 'dead-lettered' })).toBe(0);
    expect(sample(text, 'kite_peer_queue_depth', labels)).toBe(0);
    expect(sample(text, 'kite_peer_held_deliveries', labels)).toBe(0);
    expect(sample(text, 'kite_peer_oldest_pending_age_seconds', labels)).toBe(0);
    expect(sample(text, 'kite_peer_enabled', labels)).toBe(1);
    expect(text).toMatch(/# HELP kite_peer_queue_depth .+/);
  });

  it('metrics - the receiving node counts hop-limit drops by the peer not sent to, and chain drops by the sender', async () => {
    // A's event reaches B with hops 1: B stores it, and C (maxHops 1) is not sent it.
    const { id } = await ingestAt(a);
    await waitForMetrics(b.kite, (t) => sample(t, 'kite_federation_dropped_total', { reason: 'hop_limit', peer: cPeer, peer_instance: 'kite-c' }) === 1, 'a hop-limit drop at B', PEER_WAIT_MS);
    expect(await hasEvent(b, id)).toBe(true);
    // An event whose chain holds B has been at B before: answered, not stored, counted against A.
    const event = {
      specversion: '1.0', id: 'evt-cycle-1', source: 'https://kite-x.kite.test/hooks/acme/stripe', type: 'com.stripe.charge.succeeded',
      datacontenttype: 'application/json', data: {}, kitefedorigin: 'kite-x', kitefedchain: JSON.stringify(['kite-x', 'kite-b', 'kite-a']), kitefedhops: 3,
    };
    const signed = standardWebhook(aToB, event, 'msg-cycle-1', new Date(), 'application/cloudevents+json');
    const answer = await b.kite.api.as(undefined).post('/hooks/acme/kite', signed.body, { ...signed.headers, 'kite-peer': 'kite-a' });
    expect(answer.status).toBe(200);
    expect(answer.body.items).toEqual([{ id: 'evt-cycle-1', seq: null, duplicate: false }]);
    const text = await metricsOf(b.kite);
    expect(sample(text, 'kite_federation_dropped_total', { reason: 'chain', peer: bPeer, peer_instance: 'kite-a' })).toBe(1);
    expect(sample(text, 'kite_federation_dropped_total', { reason: 'hop_limit', peer: cPeer })).toBe(1);
    // A never received anything it would drop.
    expect(sample(await metricsOf(a.kite), 'kite_federation_dropped_total')).toBeUndefined();
  });

  it('metrics - queue depth and oldest age grow while the peer is paused and drain when it resumes', async () => {
    const labels = { peer: aPeer, peer_instance: 'kite-b' };
    expectStatus(await a.kite.api.request('PATCH', `/v1/teams/acme/peers/${aPeer}`, { enabled: false }), 200);
    const ids = [(await ingestAt(a)).id, (await ingestAt(a)).id, (await ingestAt(a)).id];
    await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_queue_depth', labels) === 3 && sample(t, 'kite_peer_enabled', labels) === 0, 'three queued while paused', PEER_WAIT_MS);
    await waitForMetrics(a.kite, (t) => (sample(t, 'kite_peer_oldest_pending_age_seconds', labels) ?? 0) >= 1, 'the oldest pending delivery aging', PEER_WAIT_MS);
    const before = await metricsOf(a.kite);
    const delivered = sample(before, 'kite_peer_deliveries_total', { ...labels, outcome: 'delivered' }) ?? 0;
    const requests = sample(before, 'kite_peer_batch_size_count', labels) ?? 0;
    expectStatus(await a.kite.api.request('PATCH', `/v1/teams/acme/peers/${aPeer}`, { enabled: true }), 200);
    const after = await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_queue_depth', labels) === 0 && sample(t, 'kite_peer_oldest_pending_age_seconds', labels) === 0, 'the queue drained', PEER_WAIT_MS);
    for (const id of ids) expect(await hasEvent(b, id)).toBe(true);
    // The owner node's actor observed the requests that drained the queue.
    expect(sample(after, 'kite_peer_deliveries_total', { ...labels, outcome: 'delivered' })).toBe(delivered + 3);
    const sent = (sample(after, 'kite_peer_batch_size_count', labels) ?? 0) - requests;
    expect(sent).toBeGreaterThanOrEqual(1);
    expect(sample(after, 'kite_peer_batch_size_sum', labels)! - (sample(before, 'kite_peer_batch_size_sum', labels) ?? 0)).toBe(3);
    expect(sample(after, 'kite_peer_delivery_duration_seconds_count', labels)! - (sample(before, 'kite_peer_delivery_duration_seconds_count', labels) ?? 0)).toBe(sent);
  });

  it('metrics - a peer that is down goes backing-off then dead-lettered with its events held, and back to healthy when it returns', async () => {
    const labels = { peer: aPeer, peer_instance: 'kite-b' };
    await proxy.cut();
    const first = (await ingestAt(a)).id;
    await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_state', { ...labels, state: 'backing-off' }) === 1 && (sample(t, 'kite_peer_queue_depth', labels) ?? 0) >= 1, 'B backing-off at A', PEER_WAIT_MS);
    await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_state', { ...labels, state: 'dead-lettered' }) === 1 && sample(t, 'kite_peer_held_deliveries', labels) === 1, 'B dead-lettered with one held', PEER_WAIT_MS);
    const second = (await ingestAt(a)).id;
    const held = await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_held_deliveries', labels) === 2, 'the next event held too', PEER_WAIT_MS);
    expect(sample(held, 'kite_peer_queue_depth', labels)).toBe(0);
    expect(sample(held, 'kite_peer_state', { ...labels, state: 'healthy' })).toBe(0);
    // B is back: the next probe (every maxDelayMs) finds it and everything held is delivered.
    await proxy.restore();
    await waitForMetrics(a.kite, (t) => sample(t, 'kite_peer_state', { ...labels, state: 'healthy' }) === 1 && sample(t, 'kite_peer_held_deliveries', labels) === 0 && sample(t, 'kite_peer_queue_depth', labels) === 0, 'B healthy again with nothing held', PEER_WAIT_MS);
    for (const id of [first, second]) await expect.poll(() => hasEvent(b, id), { timeout: 10_000 }).toBe(true);
  });
});
