/**
 * Contract §3 Events: polling a team's stream (`GET /v1/teams/{team}/events`) and publishing one
 * CloudEvent (`POST /v1/teams/{team}/events`), including §7's agent messages and §4's delivery of
 * published events to listeners. Every refused request must leave the database as it was.
 */
import { randomUUID } from 'node:crypto';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectStatus, startTestKite, type TestKite } from '../support/kite.js';
import { listen, type TestListener } from '../support/listener.js';
import { stripeWebhook } from '../support/signers.js';
import { databaseSnapshot, refusedWithoutChange } from '../support/assertions.js';

const STRIPE_SECRET = 'whsec_events_api_stripe';
const GITHUB_SECRET = 'events-api-github';
const BULK = 120;

type Keys = { adminKey: string; agentKey: string; agentKeyId: string };
let db: TestDatabase;
const refused = refusedWithoutChange(() => db);
let kite: TestKite;
let feed: Keys;
let pub: Keys;
let other: Keys;
/** The feed team's events as ingested, in order: [seq, type]. */
const feedEvents: [number, string][] = [];
const openListeners: TestListener[] = [];

async function ingestStripe(team: string, type: string): Promise<number> {
  const hook = stripeWebhook(STRIPE_SECRET, { type });
  return expectStatus(await kite.api.as(undefined).post(`/hooks/${team}/pay`, hook.body, hook.headers), 200).body.seq;
}

async function ingestGithub(team: string, event: string, action?: string): Promise<number> {
  const body = JSON.stringify(action ? { action } : { ref: 'refs/heads/main' });
  const answer = await kite.api.as(undefined).post(`/hooks/${team}/gh`, body, {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': randomUUID(),
    'x-hub-signature-256': await githubSign(GITHUB_SECRET, body),
  });
  return expectStatus(answer, 200).body.seq;
}

function storedEvent(team: string, seq: number) {
  return db.query<{ event: any }>('SELECT e.event FROM events e JOIN teams t ON t.id = e.team_id WHERE t.slug = $1 AND e.seq = $2', [team, seq]).then((rows) => rows[0]?.event);
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  feed = await kite.api.createTeam('feed');
  pub = await kite.api.createTeam('pub');
  other = await kite.api.createTeam('other');
  await kite.api.createTeam('bulk');
  await kite.api.createSource('feed', 'pay', 'stripe', STRIPE_SECRET);
  await kite.api.createSource('feed', 'gh', 'github', GITHUB_SECRET);
  await kite.api.createSource('other', 'pay', 'stripe', STRIPE_SECRET);

  // Sequential, so seqs are known: stripe and github interleaved, and one published event.
  feedEvents.push([await ingestStripe('feed', 'payment_intent.succeeded'), 'com.stripe.payment_intent.succeeded']);
  feedEvents.push([await ingestGithub('feed', 'issues', 'opened'), 'com.github.issues.opened']);
  feedEvents.push([await ingestStripe('feed', 'charge.refunded'), 'com.stripe.charge.refunded']);
  feedEvents.push([await ingestGithub('feed', 'push'), 'com.github.push']);
  feedEvents.push([await ingestStripe('feed', 'invoice.paid'), 'com.stripe.invoice.paid']);
  const published = await kite.api.as(feed.agentKey).post('/v1/teams/feed/events', { type: 'example.stripe-like', data: {} });
  feedEvents.push([expectStatus(published, 202).body.seq, 'example.stripe-like']);
  await ingestStripe('other', 'payment_intent.succeeded');

  const answers = await Promise.all(
    Array.from({ length: BULK }, (_, i) => kite.api.post('/v1/teams/bulk/events', { type: 'com.example.bulk', id: `bulk-${i}`, data: { i } })),
  );
  for (const answer of answers) expectStatus(answer, 202);
});

afterAll(async () => {
  for (const listener of openListeners) listener.close();
  await kite?.close();
  await db?.drop();
});

describe('events - polling', () => {
  it('events - GET answers {"items":[{"seq","event"}],"next"} in seq order, from the start by default', async () => {
    const answer = await kite.api.as(feed.agentKey).get('/v1/teams/feed/events');
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(['items', 'next']);
    expect(answer.body.items.map((i: { seq: number }) => i.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(feedEvents.map(([seq]) => seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(answer.body.items.map((i: { event: { type: string } }) => i.event.type)).toEqual(feedEvents.map(([, type]) => type));
    expect(answer.body.next).toBe(6);
    for (const item of answer.body.items) {
      expect(Object.keys(item).sort()).toEqual(['event', 'seq']);
      expect(item.event).toEqual(await storedEvent('feed', item.seq));
      expect(item.event).toMatchObject({ specversion: '1.0', id: expect.any(String), source: expect.any(String), time: expect.any(String) });
    }
  });

  it('events - after=0 is the same as no after', async () => {
    const implicit = await kite.api.get('/v1/teams/feed/events');
    const explicit = await kite.api.get('/v1/teams/feed/events?after=0');
    expect(explicit.status).toBe(200);
    expect(explicit.body).toEqual(implicit.body);
  });

  it('events - after=N answers only events with seq > N, and next is the last seq returned', async () => {
    const answer = await kite.api.get('/v1/teams/feed/events?after=2&limit=2');
    expect(answer.status).toBe(200);
    expect(answer.body.items.map((i: { seq: number }) => i.seq)).toEqual([3, 4]);
    expect(answer.body.next).toBe(4);
    const rest = await kite.api.get(`/v1/teams/feed/events?after=${answer.body.next}`);
    expect(rest.body.items.map((i: { seq: number }) => i.seq)).toEqual([5, 6]);
    expect(rest.body.next).toBe(6);
  });

  it('events - when nothing is after the cursor, items is empty and next is the given after', async () => {
    const atHead = await kite.api.get('/v1/teams/feed/events?after=6');
    expect(atHead.status).toBe(200);
    expect(atHead.body).toEqual({ items: [], next: 6 });
    const beyond = await kite.api.get('/v1/teams/feed/events?after=999');
    expect(beyond.body).toEqual({ items: [], next: 999 });
    const filtered = await kite.api.get('/v1/teams/feed/events?after=5&types=stripe.*');
    expect(filtered.body).toEqual({ items: [], next: 5 });
  });

  it('events - a team with no events answers an empty list with next 0', async () => {
    await kite.api.createTeam('empty');
    const answer = await kite.api.get('/v1/teams/empty/events');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ items: [], next: 0 });
  });

  it('events - only the team\'s own events are listed', async () => {
    const answer = await kite.api.as(other.agentKey).get('/v1/teams/other/events');
    expect(answer.status).toBe(200);
    expect(answer.body.items).toHaveLength(1);
    expect(answer.body.items[0].event.source).toBe('http://kite.test/hooks/other/pay');
  });

  it('events - limit defaults to 100', async () => {
    const answer = await kite.api.get('/v1/teams/bulk/events');
    expect(answer.status).toBe(200);
    expect(answer.body.items).toHaveLength(100);
    expect(answer.body.items.map((i: { seq: number }) => i.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(answer.body.next).toBe(100);
    const rest = await kite.api.get(`/v1/teams/bulk/events?after=${answer.body.next}`);
    expect(rest.body.items.map((i: { seq: number }) => i.seq)).toEqual(Array.from({ length: BULK - 100 }, (_, i) => i + 101));
    expect(rest.body.next).toBe(BULK);
  });

  it('events - limit=1 and limit=1000 are accepted and respected', async () => {
    const one = await kite.api.get('/v1/teams/bulk/events?limit=1&after=7');
    expect(one.status).toBe(200);
    expect(one.body).toMatchObject({ items: [{ seq: 8 }], next: 8 });
    const max = await kite.api.get('/v1/teams/bulk/events?limit=1000');
    expect(max.status).toBe(200);
    expect(max.body.items).toHaveLength(BULK);
    expect(max.body.next).toBe(BULK);
  });

  for (const limit of ['0', '1001', 'abc', '-1', '1.5', '']) {
    it(`events - limit=${JSON.stringify(limit)} is refused with 400`, async () => {
      await refused(() => kite.api.get(`/v1/teams/bulk/events?limit=${limit}`), 400);
    });
  }

  for (const after of ['-1', 'abc']) {
    it(`events - after=${after} is refused with 400`, async () => {
      await refused(() => kite.api.get(`/v1/teams/feed/events?after=${after}`), 400);
    });
  }

  for (const types of ['stripe.*', 'com.stripe.*']) {
    it(`events - types=${types} keeps only Stripe events, in seq order`, async () => {
      const answer = await kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent(types)}`);
      expect(answer.status).toBe(200);
      const expected = feedEvents.filter(([, type]) => type.startsWith('com.stripe.'));
      expect(answer.body.items.map((i: { seq: number; event: { type: string } }) => [i.seq, i.event.type])).toEqual(expected);
      expect(answer.body.next).toBe(expected[expected.length - 1]![0]);
    });
  }

  it('events - types takes a comma-separated list and exact types', async () => {
    const answer = await kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('github.push,com.stripe.invoice.*')}`);
    expect(answer.status).toBe(200);
    expect(answer.body.items.map((i: { event: { type: string } }) => i.event.type)).toEqual(['com.github.push', 'com.stripe.invoice.paid']);
    const dashed = await kite.api.get('/v1/teams/feed/events?types=example.stripe-like');
    expect(dashed.body.items.map((i: { seq: number }) => i.seq)).toEqual([6]);
  });

  it('events - a star matches dots too, and a pattern must match the whole type', async () => {
    const star = await kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('*.opened')}`);
    expect(star.body.items.map((i: { event: { type: string } }) => i.event.type)).toEqual(['com.github.issues.opened']);
    const partial = await kite.api.get('/v1/teams/feed/events?types=stripe');
    expect(partial.body).toEqual({ items: [], next: 0 });
    // "stripe.*" must not match "example.stripe-like" (no leading com. to strip there).
    const unanchored = await kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('stripe*')}`);
    expect(unanchored.body.items.map((i: { event: { type: string } }) => i.event.type)).not.toContain('example.stripe-like');
  });

  it('events - types with a limit counts only matching events', async () => {
    const answer = await kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('github.*')}&limit=1`);
    expect(answer.body.items.map((i: { seq: number }) => i.seq)).toEqual([2]);
    expect(answer.body.next).toBe(2);
  });

  it('events - a malformed types parameter is refused with 400', async () => {
    await refused(() => kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('a,,b')}`), 400);
    await refused(() => kite.api.get(`/v1/teams/feed/events?types=${encodeURIComponent('a$b')}`), 400);
  });

  it('events - an agent key and the team\'s admin key may poll', async () => {
    expect((await kite.api.as(feed.agentKey).get('/v1/teams/feed/events')).status).toBe(200);
    expect((await kite.api.as(feed.adminKey).get('/v1/teams/feed/events')).status).toBe(200);
  });

  it('events - another team\'s key gets 403, no key 401, and the admin token on an unknown team 404', async () => {
    await refused(() => kite.api.as(other.agentKey).get('/v1/teams/feed/events'), 403);
    await refused(() => kite.api.as(other.adminKey).get('/v1/teams/feed/events'), 403);
    await refused(() => kite.api.as(undefined).get('/v1/teams/feed/events'), 401);
    await refused(() => kite.api.as('kite_nope').get('/v1/teams/feed/events'), 401);
    await refused(() => kite.api.get('/v1/teams/nope/events'), 404);
  });
});

describe('events - publishing', () => {
  it('events - an agent publishes: 202 {"id","seq","duplicate":false}, source is its key\'s agent URL', async () => {
    const answer = await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', {
      specversion: '1.0', id: 'agent-evt-1', type: 'com.example.task.done', time: '2026-03-04T05:06:07Z', data: { ok: true },
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toEqual({ id: 'agent-evt-1', seq: expect.any(Number), duplicate: false });
    const stored = await storedEvent('pub', answer.body.seq);
    expect(stored).toMatchObject({
      specversion: '1.0', id: 'agent-evt-1', source: 'http://kite.test/agents/agent-1', type: 'com.example.task.done', data: { ok: true },
    });
    expect(new Date(stored.time).toISOString()).toBe('2026-03-04T05:06:07.000Z');
  });

  it('events - the admin token publishes as http://kite.test/agents/admin, a team admin key as its name', async () => {
    const byToken = expectStatus(await kite.api.post('/v1/teams/pub/events', { type: 'com.example.by-admin', data: {} }), 202);
    expect((await storedEvent('pub', byToken.body.seq)).source).toBe('http://kite.test/agents/admin');
    const byKey = expectStatus(await kite.api.as(pub.adminKey).post('/v1/teams/pub/events', { type: 'com.example.by-key', data: {} }), 202);
    expect((await storedEvent('pub', byKey.body.seq)).source).toBe('http://kite.test/agents/ops');
  });

  it('events - a body that names the agent\'s own source is accepted', async () => {
    const answer = await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { source: 'http://kite.test/agents/agent-1', type: 'com.example.own-source', data: {} });
    expect(answer.status).toBe(202);
    expect((await storedEvent('pub', answer.body.seq)).source).toBe('http://kite.test/agents/agent-1');
  });

  it('events - a different source in the body is refused with 400 invalid_source', async () => {
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { source: 'http://kite.test/agents/ops', type: 'com.example.spoof', data: {} }), 400, 'invalid_source');
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { source: 'http://kite.test/hooks/pub/pay', type: 'com.stripe.fake', data: {} }), 400, 'invalid_source');
  });

  it('events - a kite. type is refused with 400 reserved_type', async () => {
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { type: 'kite.x', data: {} }), 400, 'reserved_type');
    await refused(() => kite.api.post('/v1/teams/pub/events', { type: 'kite.federation.peer_state_changed', data: {} }), 400, 'reserved_type');
  });

  it('events - id and time are filled when absent', async () => {
    const before = Date.now();
    const answer = await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { type: 'com.example.minimal', data: { n: 1 } });
    const after = Date.now();
    expect(answer.status).toBe(202);
    expect(answer.body.id).toEqual(expect.any(String));
    expect(answer.body.id.length).toBeGreaterThan(0);
    const stored = await storedEvent('pub', answer.body.seq);
    expect(stored.id).toBe(answer.body.id);
    expect(stored.specversion).toBe('1.0');
    expect(stored.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    const time = Date.parse(stored.time);
    expect(time).toBeGreaterThanOrEqual(before - 1000);
    expect(time).toBeLessThanOrEqual(after + 1000);
    // Two events without ids get different ids.
    const second = expectStatus(await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { type: 'com.example.minimal', data: { n: 2 } }), 202);
    expect(second.body.id).not.toBe(answer.body.id);
    expect(second.body.duplicate).toBe(false);
  });

  it('events - application/cloudevents+json is accepted', async () => {
    const answer = await kite.api.as(pub.agentKey).post(
      '/v1/teams/pub/events',
      JSON.stringify({ specversion: '1.0', type: 'com.example.ce-media', data: {} }),
      { 'content-type': 'application/cloudevents+json' },
    );
    expect(answer.status).toBe(202);
  });

  it('events - a repeat of the same id answers 202 duplicate with the same seq and stores nothing', async () => {
    const first = expectStatus(await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { id: 'once-only', type: 'com.example.once', data: { v: 1 } }), 202);
    expect(first.body.duplicate).toBe(false);
    const before = await databaseSnapshot(db);
    const again = await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { id: 'once-only', type: 'com.example.once', data: { v: 1 } });
    expect(again.status).toBe(202);
    expect(again.body).toEqual({ id: 'once-only', seq: first.body.seq, duplicate: true });
    expect(await databaseSnapshot(db)).toEqual(before);
  });

  it('events - the same id from another agent is another event (dedup is per source)', async () => {
    const a = expectStatus(await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { id: 'shared-id', type: 'com.example.x', data: {} }), 202);
    const b = expectStatus(await kite.api.as(pub.adminKey).post('/v1/teams/pub/events', { id: 'shared-id', type: 'com.example.x', data: {} }), 202);
    expect(b.body.duplicate).toBe(false);
    expect(b.body.seq).not.toBe(a.body.seq);
  });

  it('events - bad bodies are refused with 400 and store nothing', async () => {
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', '{"type":', { 'content-type': 'application/json' }), 400);
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', [{ type: 'com.example.batch' }]), 400);
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { data: {} }), 400);
    await refused(() => kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { type: 'com.example.t', time: 'yesterday' }), 400);
  });

  it('events - another team\'s key gets 403, no key 401, and nothing is stored', async () => {
    await refused(() => kite.api.as(other.agentKey).post('/v1/teams/pub/events', { type: 'com.example.intruder', data: {} }), 403);
    await refused(() => kite.api.as(other.adminKey).post('/v1/teams/pub/events', { type: 'com.example.intruder', data: {} }), 403);
    await refused(() => kite.api.as(undefined).post('/v1/teams/pub/events', { type: 'com.example.anon', data: {} }), 401);
    await refused(() => kite.api.post('/v1/teams/nope/events', { type: 'com.example.nowhere', data: {} }), 404);
  });

  it('events - a published event reaches a listener with the same seq', async () => {
    const listener = await listen(kite.url, 'pub', pub.agentKey);
    openListeners.push(listener);
    const answer = expectStatus(await kite.api.as(pub.adminKey).post('/v1/teams/pub/events', { id: 'to-listener', type: 'com.example.live', data: { hello: 'world' } }), 202);
    await listener.waitFor(() => listener.events.some((f) => f.event?.id === 'to-listener'), 'the published event');
    const frame = listener.events.find((f) => f.event?.id === 'to-listener')!;
    expect(frame.seq).toBe(answer.body.seq);
    expect(frame.event).toEqual(await storedEvent('pub', answer.body.seq));
    expect(frame.event).toMatchObject({ source: 'http://kite.test/agents/ops', type: 'com.example.live', data: { hello: 'world' } });
    // A duplicate is not broadcast again.
    expectStatus(await kite.api.as(pub.adminKey).post('/v1/teams/pub/events', { id: 'to-listener', type: 'com.example.live', data: { hello: 'world' } }), 202);
    const marker = expectStatus(await kite.api.as(pub.adminKey).post('/v1/teams/pub/events', { id: 'marker', type: 'com.example.live', data: {} }), 202);
    await listener.waitFor(() => listener.seqs.includes(marker.body.seq), 'the marker');
    expect(listener.events.filter((f) => f.event?.id === 'to-listener')).toHaveLength(1);
  });

  it('events - a com.kite.agent.message round-trips data.to and data.payload unchanged', async () => {
    const listener = await listen(kite.url, 'pub', pub.adminKey, { types: 'com.kite.agent.message' });
    openListeners.push(listener);
    const data = {
      to: 'http://kite.test/agents/ops',
      payload: { text: 'héllo ✓ 🪁', n: 1.5, big: 9007199254740991, nested: { list: [1, 'two', null, false, { deep: [] }] }, empty: {}, nothing: null },
    };
    const answer = expectStatus(await kite.api.as(pub.agentKey).post('/v1/teams/pub/events', { type: 'com.kite.agent.message', data }), 202);
    expect(answer.body.duplicate).toBe(false);

    const polled = await kite.api.as(pub.adminKey).get(`/v1/teams/pub/events?after=${answer.body.seq - 1}&types=com.kite.agent.message`);
    expect(polled.body.items).toHaveLength(1);
    expect(polled.body.items[0].seq).toBe(answer.body.seq);
    expect(polled.body.items[0].event).toMatchObject({ type: 'com.kite.agent.message', source: 'http://kite.test/agents/agent-1' });
    expect(polled.body.items[0].event.data).toEqual(data);

    await listener.waitFor(() => listener.seqs.includes(answer.body.seq), 'the agent message');
    expect(listener.events.every((f) => f.event?.type === 'com.kite.agent.message')).toBe(true);
    expect(listener.events.find((f) => f.seq === answer.body.seq)!.event!.data).toEqual(data);
  });
});
