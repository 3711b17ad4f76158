/**
 * Contract §5 "Receiving": `POST /hooks/{team}/kite` takes events from a registered peer, signed
 * with its inbound key (by `standardwebhooks`' own `Webhook.sign`, code we did not write), keeps
 * their provenance, drops what has been here before, and limits each peer's rate. Every refused
 * request must leave the database exactly as it was.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusedWithoutChange } from '../support/assertions.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { expectStatus, startTestKite, type ApiAnswer, type TestKite } from '../support/kite.js';
import { sample, waitForMetrics } from '../support/metrics.js';
import { Webhook } from 'standardwebhooks';

const SELF = 'instance-a';
const KEY_0 = 'whsec_cmVjZWl2ZS1rZXktMC0wMTIzNDU2Nzg5YWJjZGVm';
const KEY_1 = 'whsec_cmVjZWl2ZS1rZXktMS0wMTIzNDU2Nzg5YWJjZGVm';
const KEY_2 = 'whsec_cmVjZWl2ZS1rZXktMi0wMTIzNDU2Nzg5YWJjZGVm';
// The peers here never match what they send, so nothing is forwarded back out.
const SCOPES = ['never-matches.*'];

let db: TestDatabase;
const refused = refusedWithoutChange(() => db);
let kite: TestKite;
/** instance-b is a peer of acme; instance-x only of other. */
let peerB: { id: string; inboundKey: string; outboundKey: string };
let peerX: { id: string; inboundKey: string };

interface SendOptions {
  readonly peer?: string | undefined;
  readonly key?: string;
  readonly when?: Date;
  readonly batch?: boolean;
  readonly team?: string;
  /** Another node of the same instance (same database) to send to. */
  readonly node?: TestKite;
}

function cloudEvent(fields: Record<string, unknown> = {}) {
  return { specversion: '1.0', id: `evt_${randomUUID()}`, source: 'https://b.kite.example.com/hooks/acme/stripe', type: 'com.stripe.charge.succeeded', data: { amount: 100 }, ...fields };
}

/**
 * Posts events to /hooks/{team}/kite as a peer would: Standard Webhooks headers signed by the
 * library's `Webhook.sign`, plus `kite-peer`. A string body is sent as is (to send broken JSON).
 */
function send(body: unknown, options: SendOptions = {}): Promise<ApiAnswer> {
  const batch = options.batch ?? Array.isArray(body);
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const id = `msg_${randomUUID()}`;
  const when = options.when ?? new Date();
  const headers: Record<string, string> = {
    'content-type': batch ? 'application/cloudevents-batch+json' : 'application/cloudevents+json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(when.getTime() / 1000)),
    'webhook-signature': new Webhook(options.key ?? peerB.inboundKey).sign(id, when, text),
  };
  const peer = 'peer' in options ? options.peer : 'instance-b';
  if (peer !== undefined) headers['kite-peer'] = peer;
  return (options.node ?? kite).api.as(undefined).post(`/hooks/${options.team ?? 'acme'}/kite`, text, headers);
}

/** Polls `check` until true (a notification's effect, which has no other signal): at most 5 s. */
async function until(check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s');
  }
}

async function stored(id: string): Promise<any[]> {
  const rows = await db.query<{ event: any; seq: string }>("SELECT e.seq, e.event FROM events e JOIN teams t ON t.id = e.team_id WHERE t.slug = 'acme' AND e.id = $1", [id]);
  return rows.map((r) => ({ seq: Number(r.seq), event: r.event }));
}

async function createPeer(team: string, fields: Record<string, unknown>) {
  return expectStatus(await kite.api.post(`/v1/teams/${team}/peers`, { url: 'https://peer.example.com', scopes: SCOPES, ...fields }), 201).body;
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url, { KITE_INSTANCE_ID: SELF });
  await kite.api.createTeam('acme');
  await kite.api.createTeam('other');
  peerB = await createPeer('acme', { instanceId: 'instance-b' });
  peerX = await createPeer('other', { instanceId: 'instance-x' });
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('federation - receiving', () => {
  it('federation - an event signed with the peer\'s inbound key is stored as sent, provenance included, and answered with items', async () => {
    const event = cloudEvent({ kitefedorigin: 'instance-c', kitefedchain: '["instance-c","instance-b"]', kitefedhops: 2, time: '2026-03-04T05:06:07.000Z', subject: 'ch_1' });
    const answer = await send(event);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ items: [{ id: event.id, seq: expect.any(Number), duplicate: false }] });
    const [row] = await stored(event.id);
    expect(row!.seq).toBe(answer.body.items[0].seq);
    expect(row!.event).toEqual(event);
  });

  it('federation - a kitefedhops sent as a string of digits is stored as the JSON integer it holds', async () => {
    const event = cloudEvent({ kitefedorigin: 'instance-c', kitefedchain: '["instance-c"]', kitefedhops: '1', time: '2026-03-04T05:06:07.000Z' });
    expectStatus(await send(event), 200);
    const [row] = await stored(event.id);
    expect(row!.event).toEqual({ ...event, kitefedhops: 1 });
    expect(Object.keys(row!.event)).toEqual(Object.keys(event));
  });

  it('federation - kite extensions other than the provenance are dropped from a peer\'s event, as from any sender\'s', async () => {
    const event = cloudEvent({ kitefedorigin: 'instance-c', kitefedchain: '["instance-c"]', kitefedhops: 1, kitefoo: 'x', time: '2026-03-04T05:06:07.000Z' });
    expectStatus(await send(event), 200);
    const [row] = await stored(event.id);
    expect(row!.event).toEqual({ ...event, kitefoo: undefined });
    expect(row!.event).not.toHaveProperty('kitefoo');
  });

  it('federation - a batch is answered in the request\'s order, and a repeat is a duplicate with the stored seq', async () => {
    const events = [cloudEvent(), cloudEvent({ type: 'com.github.push' }), cloudEvent()];
    const first = expectStatus(await send(events), 200);
    expect(first.body.items.map((i: { id: string }) => i.id)).toEqual(events.map((e) => e.id));
    const seqs = first.body.items.map((i: { seq: number }) => i.seq);
    expect(seqs[1]).toBe(seqs[0] + 1);
    expect(seqs[2]).toBe(seqs[0] + 2);
    expect(first.body.items.every((i: { duplicate: boolean }) => !i.duplicate)).toBe(true);
    const fresh = cloudEvent();
    const again = expectStatus(await send([events[2], fresh, events[0]]), 200);
    expect(again.body.items).toEqual([
      { id: events[2]!.id, seq: seqs[2], duplicate: true },
      { id: fresh.id, seq: expect.any(Number), duplicate: false },
      { id: events[0]!.id, seq: seqs[0], duplicate: true },
    ]);
    for (const e of [...events, fresh]) expect(await stored(e.id)).toHaveLength(1);
  });

  it('federation - the same event twice in one batch is stored once', async () => {
    const event = cloudEvent();
    const answer = expectStatus(await send([event, event]), 200);
    expect(answer.body.items).toEqual([
      { id: event.id, seq: expect.any(Number), duplicate: false },
      { id: event.id, seq: answer.body.items[0].seq, duplicate: true },
    ]);
    expect(await stored(event.id)).toHaveLength(1);
  });

  it('federation - an empty batch is a probe: 200 with no items, and nothing stored', async () => {
    const before = await db.query('SELECT count(*)::int AS n FROM events');
    const answer = await send([]);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ items: [] });
    expect(await db.query('SELECT count(*)::int AS n FROM events')).toEqual(before);
  });

  it('federation - an event whose chain already holds this instance is accepted with seq null and not stored', async () => {
    const looped = cloudEvent({ kitefedorigin: SELF, kitefedchain: `["${SELF}","instance-b"]`, kitefedhops: 2 });
    const single = expectStatus(await send(looped), 200);
    expect(single.body).toEqual({ items: [{ id: looped.id, seq: null, duplicate: false }] });
    expect(await stored(looped.id)).toEqual([]);
    const before = cloudEvent({ kitefedorigin: 'instance-b', kitefedchain: '["instance-b"]', kitefedhops: 1 });
    const middle = cloudEvent({ kitefedorigin: 'instance-c', kitefedchain: `["instance-c","${SELF}","instance-b"]`, kitefedhops: 3 });
    const after = cloudEvent();
    const batch = expectStatus(await send([before, middle, after]), 200);
    expect(batch.body.items).toEqual([
      { id: before.id, seq: expect.any(Number), duplicate: false },
      { id: middle.id, seq: null, duplicate: false },
      { id: after.id, seq: batch.body.items[0].seq + 1, duplicate: false },
    ]);
    expect(await stored(middle.id)).toEqual([]);
    expect(await stored(after.id)).toHaveLength(1);
  });

  it('federation - a chain that names this instance only as a substring of another ID is stored', async () => {
    const event = cloudEvent({ kitefedorigin: 'instance-ab', kitefedchain: '["instance-ab"]', kitefedhops: 1 });
    const answer = expectStatus(await send(event), 200);
    expect(answer.body.items[0].seq).toEqual(expect.any(Number));
  });

  it('federation - a paused peer\'s events are still received (pausing stops only what is sent to it)', async () => {
    await createPeer('acme', { instanceId: 'instance-paused', inboundKey: KEY_0, enabled: false });
    const answer = await send(cloudEvent(), { peer: 'instance-paused', key: KEY_0 });
    expect(answer.status).toBe(200);
  });
});

describe('federation - refused senders', () => {
  it('federation - a wrong key, an unknown peer, another team\'s peer and no kite-peer all get the same 401 and store nothing', async () => {
    const wrongKey = await refused(() => send(cloudEvent(), { key: KEY_2 }), 401, 'invalid_signature');
    const unknownPeer = await refused(() => send(cloudEvent(), { peer: 'instance-nobody' }), 401, 'invalid_signature');
    const otherTeams = await refused(() => send(cloudEvent(), { peer: 'instance-x', key: peerX.inboundKey }), 401, 'invalid_signature');
    const noHeader = await refused(() => send(cloudEvent(), { peer: undefined }), 401, 'invalid_signature');
    const ourOutboundKey = await refused(() => send(cloudEvent(), { key: peerB.outboundKey }), 401, 'invalid_signature');
    for (const answer of [unknownPeer, otherTeams, noHeader, ourOutboundKey]) expect(answer.body).toEqual(wrongKey.body);
  });

  it('federation - the same peer and key to another team, or to a team that does not exist, get 401', async () => {
    await refused(() => send(cloudEvent(), { team: 'other' }), 401, 'invalid_signature');
    await refused(() => send(cloudEvent(), { team: 'nope' }), 401, 'invalid_signature');
  });

  it('federation - a timestamp more than 300 s old or ahead (310 s) gets 401, and one 290 s old is accepted', async () => {
    await refused(() => send(cloudEvent(), { when: new Date(Date.now() - 310_000) }), 401, 'invalid_signature');
    await refused(() => send(cloudEvent(), { when: new Date(Date.now() + 310_000) }), 401, 'invalid_signature');
    expect((await send(cloudEvent(), { when: new Date(Date.now() - 290_000) })).status).toBe(200);
  });

  it('federation - a deleted peer gets 401', async () => {
    const peer = await createPeer('acme', { instanceId: 'instance-gone', inboundKey: KEY_0 });
    expect((await send(cloudEvent(), { peer: 'instance-gone', key: KEY_0 })).status).toBe(200);
    expect((await kite.api.delete(`/v1/teams/acme/peers/${peer.id}`)).status).toBe(204);
    await refused(() => send(cloudEvent(), { peer: 'instance-gone', key: KEY_0 }), 401, 'invalid_signature');
  });

  it('federation - after an inbound key rotation the previous key still verifies; after a second, only the newest previous does', async () => {
    const peer = await createPeer('acme', { instanceId: 'instance-rotating', inboundKey: KEY_0 });
    const as = (key: string) => send(cloudEvent(), { peer: 'instance-rotating', key });
    expect((await as(KEY_0)).status).toBe(200);
    expectStatus(await kite.api.request('PATCH', `/v1/teams/acme/peers/${peer.id}`, { inboundKey: KEY_1 }), 200);
    expect((await as(KEY_0)).status).toBe(200);
    expect((await as(KEY_1)).status).toBe(200);
    expectStatus(await kite.api.request('PATCH', `/v1/teams/acme/peers/${peer.id}`, { inboundKey: KEY_2 }), 200);
    await refused(() => as(KEY_0), 401, 'invalid_signature');
    expect((await as(KEY_1)).status).toBe(200);
    expect((await as(KEY_2)).status).toBe(200);
    // 24 hours after the rotation the previous key stops verifying. The row is aged behind Kite's
    // back, as another node's write: its notification tells Kite to read the peer again (the
    // receive route remembers a sender for up to a second), so wait until that has arrived.
    await db.query("UPDATE peers SET inbound_key_rotated_at = now() - interval '24 hours 1 minute' WHERE id = $1", [peer.id]);
    await db.query("SELECT pg_notify('kite_config', 'peer:' || team_id || ':' || id) FROM peers WHERE id = $1", [peer.id]);
    await until(async () => (await as(KEY_1)).status === 401);
    await refused(() => as(KEY_1), 401, 'invalid_signature');
    expect((await as(KEY_2)).status).toBe(200);
  });

  it('federation - a key changed on another node verifies at once: a failed signature reads the sender again', async () => {
    await createPeer('acme', { instanceId: 'instance-elsewhere', inboundKey: KEY_0 });
    const as = (key: string) => send(cloudEvent(), { peer: 'instance-elsewhere', key });
    expect((await as(KEY_0)).status).toBe(200); // now remembered
    // Another node's PATCH, whose notification has not arrived: only the row changed.
    await db.query("UPDATE peers SET inbound_key = $1 WHERE instance_id = 'instance-elsewhere'", [KEY_1]);
    expect((await as(KEY_1)).status).toBe(200);
    await refused(() => as(KEY_2), 401, 'invalid_signature');
  });

  it('federation - a peer deleted on another node is refused once its notification arrives', async () => {
    const peer = await createPeer('acme', { instanceId: 'instance-deleted-elsewhere', inboundKey: KEY_0 });
    const as = () => send(cloudEvent(), { peer: 'instance-deleted-elsewhere', key: KEY_0 });
    expect((await as()).status).toBe(200);
    await db.query(
      `WITH gone AS (UPDATE peers SET deleted_at = now() WHERE id = $1 RETURNING team_id, id)
       SELECT pg_notify('kite_config', 'peer:' || team_id || ':' || id) FROM gone`, [peer.id]);
    await until(async () => (await as()).status === 401);
    await refused(as, 401, 'invalid_signature');
  });
});

describe('federation - refused bodies', () => {
  it('federation - a kite. type is refused with 400 reserved_type and nothing of the batch is stored', async () => {
    await refused(() => send([cloudEvent(), cloudEvent({ type: 'kite.federation.peer_state_changed' })]), 400, 'reserved_type');
  });

  it('federation - a body that is not JSON gets 400 invalid_json, and a batch that is not an array 400', async () => {
    await refused(() => send('{"specversion":', { batch: false }), 400, 'invalid_json');
    await refused(() => send(cloudEvent(), { batch: true }), 400, 'invalid_body');
  });

  it('federation - an event without an id gets 400', async () => {
    const { id: _id, ...noId } = cloudEvent();
    await refused(() => send([noId]), 400, 'invalid_body');
  });

  const badProvenance: [string, Record<string, unknown>][] = [
    ['a kitefedchain that is not JSON', { kitefedchain: 'instance-b' }],
    ['a kitefedchain that is a JSON object', { kitefedchain: '{"a":1}' }],
    ['a kitefedchain holding a number', { kitefedchain: '[1]' }],
    ['a negative kitefedhops', { kitefedhops: -1 }],
    ['a fractional kitefedhops', { kitefedhops: 1.5 }],
    ['a kitefedorigin that is not an instance ID', { kitefedorigin: 'Instance B' }],
  ];
  for (const [what, fields] of badProvenance) {
    it(`federation - ${what} is refused with 400 invalid_body`, async () => {
      await refused(() => send(cloudEvent(fields)), 400, 'invalid_body');
    });
  }

  it('federation - a body over the limit gets 413 and stores nothing', async () => {
    await refused(() => send(cloudEvent({ data: { blob: 'x'.repeat(1024 * 1024) } })), 413, 'payload_too_large');
  });
});

describe('federation - inbound rate limit', () => {
  it('federation - a batch larger than the burst is admitted into debt, and the next request gets 429 with Retry-After', async () => {
    await createPeer('acme', { instanceId: 'instance-slow', inboundKey: KEY_1, inboundRateLimit: { perSecond: 1, burst: 2 } });
    const events = Array.from({ length: 5 }, () => cloudEvent());
    const admitted = await send(events, { peer: 'instance-slow', key: KEY_1 });
    expect(admitted.status).toBe(200);
    expect(admitted.body.items).toHaveLength(5);
    const limited = await refused(() => send([cloudEvent()], { peer: 'instance-slow', key: KEY_1 }), 429, 'rate_limited');
    const retryAfter = limited.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    // Five events from a burst of two leave a debt of three: a token is back after about 4 s.
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(4);
    // A probe is refused too while the bucket is empty, and other peers are not affected.
    await refused(() => send([], { peer: 'instance-slow', key: KEY_1 }), 429, 'rate_limited');
    expect((await send([cloudEvent()])).status).toBe(200);
  });

  it('federation - the limit holds across the instance\'s nodes: two nodes on one database admit the burst once between them, give or take a request', async () => {
    const peer = await createPeer('acme', { instanceId: 'instance-spread', inboundKey: KEY_0, inboundRateLimit: { perSecond: 0.01, burst: 4 } });
    const second = await startTestKite(db.url, { KITE_INSTANCE_ID: SELF });
    try {
      const nodes = [kite, second];
      // A lone node keeps the limit to itself: each must know of the other first (its heartbeat).
      for (const node of nodes) await waitForMetrics(node, (text) => sample(text, 'kite_cluster_nodes') === 2, 'both nodes counted');
      const sharedLevel = async () => (await db.query<{ tokens: number }>('SELECT tokens FROM peer_inbound_buckets WHERE peer_id = $1', [peer.id]))[0]?.tokens;
      // As a load balancer spreading requests would: alternately to each node. Each node admits
      // from its own bucket and then takes from the shared one, in the background: each request
      // waits for the previous one's take to reach the shared bucket.
      const answers: number[] = [];
      for (let i = 0; i < 8; i++) {
        const before = await sharedLevel();
        const answer = await send([cloudEvent()], { peer: 'instance-spread', key: KEY_0, node: nodes[i % 2] });
        answers.push(answer.status);
        if (answer.status === 200) await until(async () => (await sharedLevel()) !== before);
      }
      // Four from the burst, one more from the node that had not yet heard of the other's last
      // take; buckets of their own would have admitted all eight.
      expect(answers).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
      expect(await sharedLevel()).toBeCloseTo(-1, 1);
    } finally {
      await second.close();
    }
  });

  it('federation - a lone node keeps a peer\'s limit to itself: nothing is written to the shared bucket', async () => {
    const peer = await createPeer('acme', { instanceId: 'instance-alone', inboundKey: KEY_1, inboundRateLimit: { perSecond: 100, burst: 100 } });
    // (A node stopped by an earlier test leaves the count at this node's next heartbeat.)
    await waitForMetrics(kite, (text) => sample(text, 'kite_cluster_nodes') === 1, 'this node alone');
    expect((await send([cloudEvent(), cloudEvent()], { peer: 'instance-alone', key: KEY_1 })).status).toBe(200);
    expect(await db.query('SELECT tokens FROM peer_inbound_buckets WHERE peer_id = $1', [peer.id])).toEqual([]);
  });

  it('federation - within the burst, requests go through one after another', async () => {
    await createPeer('acme', { instanceId: 'instance-steady', inboundKey: KEY_2, inboundRateLimit: { perSecond: 0.01, burst: 3 } });
    for (let i = 0; i < 3; i++) expect((await send([cloudEvent()], { peer: 'instance-steady', key: KEY_2 })).status).toBe(200);
    await refused(() => send([cloudEvent()], { peer: 'instance-steady', key: KEY_2 }), 429, 'rate_limited');
  });
});
