import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestAt, pair, startInstance, type Instance } from '../support/federation.js';
import { listen, type TestListener } from '../support/listener.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { STRIPE_SECRET } from '../support/webhooks.js';

let tls: TestTls;
let a: Instance;
let b: Instance;
let ca: string;
const open: TestListener[] = [];

async function listenAt(instance: Instance, query: Record<string, string> = {}) {
  const listener = await listen(instance.kite.url, 'acme', instance.kite.api.token!, query, { ca });
  open.push(listener);
  return listener;
}

beforeAll(async () => {
  tls = makeTestTls();
  ca = readFileSync(tls.caFile, 'utf8');
  [a, b] = await Promise.all([startInstance('kite-a', tls), startInstance('kite-b', tls)]);
  for (const instance of [a, b]) {
    await instance.kite.api.createTeam('acme');
    await instance.kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
  }
  await pair(a, b, 'acme', { scopes: ['stripe.*', 'kite.agent.*'] }, { scopes: ['stripe.*'] });
});

afterAll(async () => {
  for (const l of open) l.close();
  await a?.stop();
  await b?.stop();
  if (tls) rmSync(tls.dir, { recursive: true, force: true });
});

describe('federation between two instances over TLS', () => {
  it('federation - an event ingested at A reaches a listener at B with its provenance', async () => {
    const atB = await listenAt(b);
    const sent = await ingestAt(a);
    await atB.waitFor(() => atB.events.some((e) => e.event!['id'] === sent.id), 'the event at B', 15_000);
    const event = atB.events.find((e) => e.event!['id'] === sent.id)!.event!;
    expect(event).toMatchObject({
      type: 'com.stripe.payment_intent.succeeded',
      source: 'https://kite-a.kite.test/hooks/acme/stripe',
      kitefedorigin: 'kite-a',
      kitefedchain: JSON.stringify(['kite-a']),
      kitefedhops: 1,
    });
  });

  it('federation - a cycle A↔B delivers once: B does not send it back to A', async () => {
    const atA = await listenAt(a, { types: 'stripe.*' });
    const atB = await listenAt(b, { types: 'stripe.*' });
    const sent = await ingestAt(a, 'charge.succeeded');
    await atB.waitFor(() => atB.events.some((e) => e.event!['id'] === sent.id), 'the event at B', 15_000);
    // B's copy would come back to A as a duplicate or a chain drop; a marker sent after it proves it did not.
    const marker = await ingestAt(a, 'charge.marker');
    await atA.waitFor(() => atA.events.some((e) => e.event!['id'] === marker.id), 'the marker at A');
    expect(atA.events.filter((e) => e.event!['id'] === sent.id)).toHaveLength(1);
    const deliveriesAtB = await b.db.query<{ n: number }>('SELECT count(*)::int AS n FROM federation_deliveries WHERE event_id = $1', [sent.id]);
    expect(deliveriesAtB[0]!.n).toBe(0);
  });

  it('federation - an event outside the peer\'s scopes and internal events stay home', async () => {
    const published = await a.kite.api.post('/v1/teams/acme/events', { type: 'com.example.local', data: {} });
    expect(published.status).toBe(202);
    const rows = await a.db.query<{ n: number }>("SELECT count(*)::int AS n FROM federation_deliveries WHERE event_type NOT LIKE 'com.stripe.%' AND event_type NOT LIKE 'com.kite.agent.%'");
    expect(rows[0]!.n).toBe(0);
  });

  it('federation - an agent message published at A crosses to an agent listening at B', async () => {
    const atB = await listenAt(b, { types: 'com.kite.agent.message' });
    const published = await a.kite.api.post('/v1/teams/acme/events', { type: 'com.kite.agent.message', data: { to: 'https://kite-b.kite.test/agents/agent-1', payload: { hello: 'b' } } });
    expect(published.status).toBe(202);
    await atB.waitFor(() => atB.events.length > 0, 'the agent message at B', 15_000);
    expect(atB.events[0]!.event).toMatchObject({ id: published.body.id, source: 'https://kite-a.kite.test/agents/admin', data: { payload: { hello: 'b' } } });
  });

  it('federation - the peer object shows what was delivered', async () => {
    // Wait until A's queue for B is empty, so the counts cannot move between the two reads.
    let peer: any;
    const deadline = Date.now() + 15_000;
    for (;;) {
      peer = (await a.kite.api.get('/v1/teams/acme/peers')).body.items[0];
      if (peer.pending === 0) break;
      if (Date.now() > deadline) throw new Error(`A still has ${peer.pending} pending deliveries`);
      await new Promise((resolve) => setTimeout(resolve, 50)); // polling the API, no event to await
    }
    expect(peer.state).toBe('healthy');
    expect(peer.delivered).toBeGreaterThan(0);
    const deliveries = await a.kite.api.get(`/v1/teams/acme/deliveries?peer=${peer.id}&status=delivered`);
    expect(deliveries.body.items.length).toBe(peer.delivered);
    expect(deliveries.body.items[0]).toMatchObject({ status: 'delivered', attempts: 1, lastStatusCode: 200 });
  });
});
