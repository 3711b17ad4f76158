/**
 * Contract §6 Peers API: create (validation, defaults, keys shown once), list, show, patch (key
 * rotation), delete, redrive, and the deliveries listing; plus what the rest of federation reads
 * from the peer store (keys in force, change notifications). Every refused request must leave
 * the peers, their deliveries and everything else exactly as they were.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool.js';
import { parseNewPeer } from '../../src/federation/peer-input.js';
import { outboundKeys, inboundKeys } from '../../src/federation/peer-keys.js';
import { PeerStore, type PeerChange } from '../../src/federation/peer-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { refusedWithoutChange } from '../support/assertions.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_TOKEN, expectStatus, startTestKite, type ApiAnswer, type TestKite } from '../support/kite.js';

const SELF = 'instance-a';
const KEY_A = 'whsec_cGVlcnMtYXBpLWtleS1hLTAxMjM0NTY3ODlhYmNkZWY=';
const KEY_B = 'whsec_cGVlcnMtYXBpLWtleS1iLTAxMjM0NTY3ODlhYmNkZWY=';
const KEY_C = 'whsec_cGVlcnMtYXBpLWtleS1jLTAxMjM0NTY3ODlhYmNkZWY=';
const PEER_FIELDS = ['id', 'instanceId', 'url', 'remoteTeam', 'scopes', 'maxHops', 'rateLimit', 'inboundRateLimit', 'retry', 'enabled', 'state', 'pending', 'delivered', 'deadLettered', 'lastError', 'createdAt'].sort();
const DELIVERY_FIELDS = ['id', 'eventId', 'eventSource', 'eventType', 'peerId', 'status', 'attempts', 'lastStatusCode', 'lastError', 'createdAt', 'deliveredAt'].sort();
const DEFAULTS = {
  maxHops: 3,
  rateLimit: { perSecond: 100, burst: 200 },
  inboundRateLimit: { perSecond: 1000, burst: 2000 },
  retry: { maxAttempts: 20, initialDelayMs: 1000, maxDelayMs: 300000, timeoutMs: 10000 },
};
// Peers of these tests never match the events published here, so nothing else enqueues deliveries.
const SCOPES = ['nothing-published-here.*'];

type Keys = { adminKey: string; agentKey: string; agentKeyId: string };
let db: TestDatabase;
let kite: TestKite;
let acme: Keys;
let other: Keys;
let teamIds: Record<string, number>;
const refusedElsewhere = refusedWithoutChange(() => db);
let nextInstance = 0;

/** Peers and deliveries, including keys and rotation times: what the generic snapshot does not cover. */
async function federationSnapshot(): Promise<unknown> {
  return db.query(`SELECT
    (SELECT coalesce(json_agg(p ORDER BY p.id), '[]') FROM peers p) AS peers,
    (SELECT coalesce(json_agg(d ORDER BY d.id), '[]') FROM federation_deliveries d) AS deliveries`);
}

/** Refused with this status (and code), and nothing changed, peers and deliveries included. */
async function refused(request: () => Promise<ApiAnswer>, status: number, code?: string): Promise<ApiAnswer> {
  const before = await federationSnapshot();
  const answer = await refusedElsewhere(request, status, code);
  expect(await federationSnapshot()).toEqual(before);
  return answer;
}

function uniqueInstance(prefix = 'peer'): string {
  nextInstance += 1;
  return `${prefix}-${nextInstance}`;
}

function patch(path: string, body: unknown, api = kite.api) {
  return api.request('PATCH', path, body);
}

async function createPeer(team = 'acme', fields: Record<string, unknown> = {}): Promise<any> {
  const body = { instanceId: uniqueInstance(), url: 'https://b.kite.example.com', scopes: SCOPES, ...fields };
  return expectStatus(await kite.api.post(`/v1/teams/${team}/peers`, body), 201).body;
}

/** Publishes an event in the team and returns its seq (deliveries need a stored event). */
async function publish(team: string): Promise<{ seq: number; id: string }> {
  const answer = expectStatus(await kite.api.post(`/v1/teams/${team}/events`, { type: 'com.test.published', data: {} }), 202);
  return { seq: answer.body.seq, id: answer.body.id };
}

/** A delivery row as the outbox and the peer actors would leave it. */
async function addDelivery(team: string, peerId: string, status: string, extra: { attempts?: number; lastStatusCode?: number; lastError?: string } = {}): Promise<number> {
  const { seq } = await publish(team);
  const [row] = await db.query<{ id: number }>(
    `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type, status, attempts, last_status_code, last_error, delivered_at)
     SELECT $1, e.team_id, e.seq, e.id, e.source, e.type, $4, $5, $6, $7, CASE WHEN $4 = 'delivered' THEN now() END
       FROM events e WHERE e.team_id = $2 AND e.seq = $3
     RETURNING id`,
    [peerId, teamIds[team], seq, status, extra.attempts ?? 0, extra.lastStatusCode ?? null, extra.lastError ?? null],
  );
  // The actor's mark counts a delivery on its peer too (migration 0005).
  if (status === 'delivered') await db.query('UPDATE peers SET delivered = delivered + 1 WHERE id = $1', [peerId]);
  return Number(row!.id);
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url, { KITE_INSTANCE_ID: SELF });
  acme = await kite.api.createTeam('acme');
  other = await kite.api.createTeam('other');
  const rows = await db.query<{ slug: string; id: string }>('SELECT slug, id FROM teams');
  teamIds = Object.fromEntries(rows.map((r) => [r.slug, Number(r.id)]));
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('peers - create', () => {
  it('peers - a minimal create answers 201 with the peer object, every default, and two generated keys', async () => {
    const answer = await kite.api.post('/v1/teams/acme/peers', { instanceId: 'instance-b', url: 'https://b.kite.example.com', scopes: ['stripe.*'] });
    expect(answer.status).toBe(201);
    expect(Object.keys(answer.body).sort()).toEqual([...PEER_FIELDS, 'inboundKey', 'outboundKey'].sort());
    expect(answer.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      instanceId: 'instance-b',
      url: 'https://b.kite.example.com',
      remoteTeam: 'acme',
      scopes: ['stripe.*'],
      ...DEFAULTS,
      enabled: true,
      state: 'healthy',
      pending: 0,
      delivered: 0,
      deadLettered: 0,
      lastError: null,
      createdAt: expect.any(String),
      outboundKey: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
      inboundKey: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    expect(new Date(answer.body.createdAt).toISOString()).toBe(answer.body.createdAt);
    for (const key of [answer.body.outboundKey, answer.body.inboundKey]) expect(Buffer.from(key.slice(6), 'base64')).toHaveLength(32);
    expect(answer.body.outboundKey).not.toBe(answer.body.inboundKey);
    const [row] = await db.query('SELECT outbound_key, inbound_key, team_id::int AS team_id FROM peers WHERE id = $1', [answer.body.id]);
    expect(row).toEqual({ outbound_key: answer.body.outboundKey, inbound_key: answer.body.inboundKey, team_id: teamIds['acme'] });
  });

  it('peers - two creates generate different keys', async () => {
    const a = await createPeer();
    const b = await createPeer();
    expect(new Set([a.outboundKey, a.inboundKey, b.outboundKey, b.inboundKey]).size).toBe(4);
  });

  it('peers - every field given is stored as given, keys included', async () => {
    const body = {
      instanceId: 'instance-full', url: 'https://full.example.com/kite', remoteTeam: 'elsewhere', scopes: ['stripe.*', 'com.github.*'],
      maxHops: 7, rateLimit: { perSecond: 5, burst: 10 }, inboundRateLimit: { perSecond: 0.5, burst: 3 },
      retry: { maxAttempts: 4, initialDelayMs: 50, maxDelayMs: 60000, timeoutMs: 2000 }, enabled: false,
      outboundKey: KEY_A, inboundKey: KEY_B,
    };
    const answer = expectStatus(await kite.api.post('/v1/teams/acme/peers', body), 201);
    expect(answer.body).toMatchObject({ ...body, state: 'healthy' });
    const fetched = expectStatus(await kite.api.get(`/v1/teams/acme/peers/${answer.body.id}`), 200);
    const { outboundKey: _o, inboundKey: _i, ...visible } = body;
    expect(fetched.body).toMatchObject(visible);
  });

  it('peers - a partial rateLimit, inboundRateLimit or retry takes the default for each missing field', async () => {
    const peer = await createPeer('acme', { rateLimit: { burst: 5 }, inboundRateLimit: { perSecond: 7 }, retry: { maxAttempts: 3, timeoutMs: 500 } });
    expect(peer.rateLimit).toEqual({ perSecond: 100, burst: 5 });
    expect(peer.inboundRateLimit).toEqual({ perSecond: 7, burst: 2000 });
    expect(peer.retry).toEqual({ maxAttempts: 3, initialDelayMs: 1000, maxDelayMs: 300000, timeoutMs: 500 });
  });

  it('peers - maxHops 1 and 16, the ends of its range, are accepted', async () => {
    expect((await createPeer('acme', { maxHops: 1 })).maxHops).toBe(1);
    expect((await createPeer('acme', { maxHops: 16 })).maxHops).toBe(16);
  });

  it('peers - a trailing slash of the url is dropped, since deliveries go to {url}/hooks/…', async () => {
    expect((await createPeer('acme', { url: 'https://slash.example.com/prefix/' })).url).toBe('https://slash.example.com/prefix');
  });

  it('peers - a team admin key may create a peer of its own team', async () => {
    const answer = await kite.api.as(acme.adminKey).post('/v1/teams/acme/peers', { instanceId: uniqueInstance(), url: 'https://k.example.com', scopes: SCOPES });
    expect(answer.status).toBe(201);
  });

  for (const url of ['http://b.kite.example.com', 'ftp://b.kite.example.com', 'b.kite.example.com', 'wss://b.kite.example.com']) {
    it(`peers - the url ${url} is refused with 400 insecure_peer_url`, async () => {
      await refused(() => kite.api.post('/v1/teams/acme/peers', { instanceId: uniqueInstance(), url, scopes: SCOPES }), 400, 'insecure_peer_url');
    });
  }

  const badScopes: [string, unknown][] = [['empty', []], ['missing', undefined], ['a string', 'stripe.*'], ['holding a number', [1]], ['holding an empty pattern', ['']], ['holding a pattern with a space', ['stripe .*']]];
  for (const [what, scopes] of badScopes) {
    it(`peers - scopes ${what} are refused with 400 invalid_scopes`, async () => {
      await refused(() => kite.api.post('/v1/teams/acme/peers', { instanceId: uniqueInstance(), url: 'https://b.example.com', scopes }), 400, 'invalid_scopes');
    });
  }

  it('peers - this instance\'s own ID as instanceId is refused with 400 invalid_peer', async () => {
    await refused(() => kite.api.post('/v1/teams/acme/peers', { instanceId: SELF, url: 'https://b.example.com', scopes: SCOPES }), 400, 'invalid_peer');
  });

  for (const [what, instanceId] of [['not a slug', 'Instance B'], ['missing', undefined], ['a number', 7]] as const) {
    it(`peers - an instanceId ${what} is refused with 400 invalid_peer`, async () => {
      await refused(() => kite.api.post('/v1/teams/acme/peers', { instanceId, url: 'https://b.example.com', scopes: SCOPES }), 400, 'invalid_peer');
    });
  }

  it('peers - an instance already a peer of the team answers 409 and keeps the first', async () => {
    const first = await createPeer('acme', { instanceId: 'instance-twice' });
    await refused(() => kite.api.post('/v1/teams/acme/peers', { instanceId: 'instance-twice', url: 'https://other.example.com', scopes: ['*'] }), 409, 'conflict');
    expect(expectStatus(await kite.api.get(`/v1/teams/acme/peers/${first.id}`), 200).body.url).toBe('https://b.kite.example.com');
  });

  it('peers - the same instance may be a peer of two teams', async () => {
    await createPeer('acme', { instanceId: 'instance-shared' });
    expect((await createPeer('other', { instanceId: 'instance-shared' })).instanceId).toBe('instance-shared');
  });

  it('peers - an instance whose peer was deleted may be added again', async () => {
    const first = await createPeer('acme', { instanceId: 'instance-again' });
    expect((await kite.api.delete(`/v1/teams/acme/peers/${first.id}`)).status).toBe(204);
    const second = await createPeer('acme', { instanceId: 'instance-again' });
    expect(second.id).not.toBe(first.id);
  });

  const badInputs: [string, Record<string, unknown>][] = [
    ['maxHops 0', { maxHops: 0 }],
    ['maxHops 17', { maxHops: 17 }],
    ['maxHops 2.5', { maxHops: 2.5 }],
    ['maxHops as a string', { maxHops: '3' }],
    ['a remoteTeam that is not a slug', { remoteTeam: 'Acme Corp' }],
    ['a rateLimit burst of 0', { rateLimit: { burst: 0 } }],
    ['a rateLimit perSecond of 0', { rateLimit: { perSecond: 0 } }],
    ['a negative inboundRateLimit perSecond', { inboundRateLimit: { perSecond: -1 } }],
    ['an unknown field in rateLimit', { rateLimit: { perMinute: 5 } }],
    ['retry maxAttempts 0', { retry: { maxAttempts: 0 } }],
    ['a retry maxDelayMs below its initialDelayMs', { retry: { initialDelayMs: 5000, maxDelayMs: 1000 } }],
    ['enabled as a string', { enabled: 'yes' }],
    ['an outboundKey that is not whsec_…', { outboundKey: 'plain-secret' }],
    ['an inboundKey with nothing after whsec_', { inboundKey: 'whsec_' }],
    ['an unknown top-level field', { maxhops: 2 }],
    ['a url with a query', { url: 'https://b.example.com/?x=1' }],
    ['a url with credentials', { url: 'https://user:pw@b.example.com' }],
    ['a missing url', { url: undefined }],
  ];
  for (const [what, fields] of badInputs) {
    it(`peers - ${what} is refused with 400 invalid_input and stores nothing`, async () => {
      const body = { instanceId: uniqueInstance(), url: 'https://b.example.com', scopes: SCOPES, ...fields };
      await refused(() => kite.api.post('/v1/teams/acme/peers', body), 400, 'invalid_input');
    });
  }

  it('peers - a partial retry with only a maxDelayMs below the default initialDelayMs is filled with the defaults and accepted (contract §6), on POST and on PATCH', async () => {
    const created = await createPeer('acme', { instanceId: uniqueInstance(), retry: { maxDelayMs: 500 } });
    expect(created.retry).toEqual({ maxAttempts: 20, initialDelayMs: 1000, maxDelayMs: 500, timeoutMs: 10000 });
    const patched = await kite.api.request('PATCH', `/v1/teams/acme/peers/${created.id}`, { retry: { maxDelayMs: 200 } });
    expect(patched.status).toBe(200);
    expect((patched.body as { retry: unknown }).retry).toEqual({ maxAttempts: 20, initialDelayMs: 1000, maxDelayMs: 200, timeoutMs: 10000 });
    // The same with initialDelayMs alone, above the current maximum.
    const raised = await kite.api.request('PATCH', `/v1/teams/acme/peers/${created.id}`, { retry: { initialDelayMs: 400000 } });
    expect((raised.body as { retry: unknown }).retry).toEqual({ maxAttempts: 20, initialDelayMs: 400000, maxDelayMs: 200, timeoutMs: 10000 });
    // Both given, and contradicting each other: a mistake, refused, and nothing changes.
    await refused(() => kite.api.request('PATCH', `/v1/teams/acme/peers/${created.id}`, { retry: { initialDelayMs: 5000, maxDelayMs: 1000 } }), 400, 'invalid_input');
    expect((await kite.api.get(`/v1/teams/acme/peers/${created.id}`)).body).toMatchObject({ retry: { initialDelayMs: 400000, maxDelayMs: 200 } });
  });

  it('peers - a body that is not JSON is refused with 400 invalid_json, and a JSON array with 400', async () => {
    await refused(() => kite.api.post('/v1/teams/acme/peers', '{"instanceId":'), 400, 'invalid_json');
    await refused(() => kite.api.post('/v1/teams/acme/peers', [{ instanceId: 'x' }]), 400);
  });

  it('peers - an agent key, another team\'s key, no token and an unknown team are refused with 403, 403, 401, 404', async () => {
    const body = { instanceId: uniqueInstance(), url: 'https://b.example.com', scopes: SCOPES };
    await refused(() => kite.api.as(acme.agentKey).post('/v1/teams/acme/peers', body), 403);
    await refused(() => kite.api.as(other.adminKey).post('/v1/teams/acme/peers', body), 403);
    await refused(() => kite.api.as(undefined).post('/v1/teams/acme/peers', body), 401);
    await refused(() => kite.api.as(`${ADMIN_TOKEN}x`).post('/v1/teams/acme/peers', body), 401);
    await refused(() => kite.api.post('/v1/teams/nope/peers', body), 404);
  });
});

describe('peers - list and show', () => {
  it('peers - listing answers {"items"} of peer objects of this team only, and never a key', async () => {
    const mine = await createPeer('acme');
    const theirs = await createPeer('other');
    const answer = expectStatus(await kite.api.get('/v1/teams/acme/peers'), 200);
    expect(Object.keys(answer.body)).toEqual(['items']);
    const ids = answer.body.items.map((p: { id: string }) => p.id);
    expect(ids).toContain(mine.id);
    expect(ids).not.toContain(theirs.id);
    for (const item of answer.body.items) expect(Object.keys(item).sort()).toEqual(PEER_FIELDS);
    const keys = await db.query<{ outbound_key: string; inbound_key: string }>('SELECT outbound_key, inbound_key FROM peers');
    const text = JSON.stringify(answer.body);
    for (const row of keys) {
      expect(text).not.toContain(row.outbound_key.slice(6));
      expect(text).not.toContain(row.inbound_key.slice(6));
    }
    expect(answer.body.items.find((p: { id: string }) => p.id === mine.id)).toEqual(
      (({ outboundKey: _o, inboundKey: _i, ...rest }) => rest)(mine),
    );
  });

  it('peers - showing a peer answers its object without keys', async () => {
    const peer = await createPeer('acme');
    const answer = expectStatus(await kite.api.get(`/v1/teams/acme/peers/${peer.id}`), 200);
    expect(Object.keys(answer.body).sort()).toEqual(PEER_FIELDS);
    expect(JSON.stringify(answer.body)).not.toContain(peer.outboundKey.slice(6));
    expect(JSON.stringify(answer.body)).not.toContain(peer.inboundKey.slice(6));
  });

  it('peers - an unknown id, a malformed id and another team\'s peer answer 404', async () => {
    const theirs = await createPeer('other');
    await refused(() => kite.api.get('/v1/teams/acme/peers/00000000-0000-4000-8000-000000000000'), 404, 'not_found');
    await refused(() => kite.api.get('/v1/teams/acme/peers/not-a-uuid'), 404, 'not_found');
    await refused(() => kite.api.get(`/v1/teams/acme/peers/${theirs.id}`), 404, 'not_found');
  });

  it('peers - the counts show the peer\'s pending, delivered and dead-lettered deliveries', async () => {
    const peer = await createPeer('acme', { enabled: false });
    for (const status of ['pending', 'pending', 'pending', 'delivered', 'delivered', 'dead_lettered', 'discarded']) await addDelivery('acme', peer.id, status);
    const shown = expectStatus(await kite.api.get(`/v1/teams/acme/peers/${peer.id}`), 200).body;
    expect(shown).toMatchObject({ pending: 3, delivered: 2, deadLettered: 1 });
    const listed = expectStatus(await kite.api.get('/v1/teams/acme/peers'), 200).body.items.find((p: { id: string }) => p.id === peer.id);
    expect(listed).toMatchObject({ pending: 3, delivered: 2, deadLettered: 1 });
  });

  it('peers - an agent key cannot list or show peers (403)', async () => {
    const peer = await createPeer('acme');
    await refused(() => kite.api.as(acme.agentKey).get('/v1/teams/acme/peers'), 403);
    await refused(() => kite.api.as(acme.agentKey).get(`/v1/teams/acme/peers/${peer.id}`), 403);
  });
});

describe('peers - patch', () => {
  it('peers - a patch changes the fields given, keeps the others, and answers the peer object without keys', async () => {
    const peer = await createPeer('acme', { retry: { maxAttempts: 5 } });
    const answer = await patch(`/v1/teams/acme/peers/${peer.id}`, {
      url: 'https://moved.example.com', scopes: ['github.*'], maxHops: 9, remoteTeam: 'theirs', enabled: false,
      rateLimit: { burst: 50 }, retry: { timeoutMs: 3000 },
    });
    expect(answer.status).toBe(200);
    expect(Object.keys(answer.body).sort()).toEqual(PEER_FIELDS);
    expect(answer.body).toMatchObject({
      id: peer.id, instanceId: peer.instanceId, url: 'https://moved.example.com', scopes: ['github.*'], maxHops: 9, remoteTeam: 'theirs', enabled: false,
      // A partial nested object keeps the peer's current value for each missing field.
      rateLimit: { perSecond: 100, burst: 50 },
      inboundRateLimit: DEFAULTS.inboundRateLimit,
      retry: { maxAttempts: 5, initialDelayMs: 1000, maxDelayMs: 300000, timeoutMs: 3000 },
      createdAt: peer.createdAt,
    });
    expect(expectStatus(await kite.api.get(`/v1/teams/acme/peers/${peer.id}`), 200).body).toEqual(answer.body);
  });

  it('peers - enabled false pauses a peer and true resumes it', async () => {
    const peer = await createPeer('acme');
    expect(expectStatus(await patch(`/v1/teams/acme/peers/${peer.id}`, { enabled: false }), 200).body.enabled).toBe(false);
    expect(expectStatus(await patch(`/v1/teams/acme/peers/${peer.id}`, { enabled: true }), 200).body.enabled).toBe(true);
  });

  it('peers - a patch is refused with the same codes as a create, and changes nothing', async () => {
    const peer = await createPeer('acme');
    const path = `/v1/teams/acme/peers/${peer.id}`;
    await refused(() => patch(path, { url: 'http://b.example.com' }), 400, 'insecure_peer_url');
    await refused(() => patch(path, { scopes: [] }), 400, 'invalid_scopes');
    await refused(() => patch(path, { instanceId: SELF }), 400, 'invalid_peer');
    await refused(() => patch(path, { maxHops: 17 }), 400, 'invalid_input');
    await refused(() => patch(path, { inboundKey: 'not-a-key' }), 400, 'invalid_input');
    await refused(() => patch(path, { state: 'healthy' }), 400, 'invalid_input');
  });

  it('peers - patching instanceId to one already a peer of the team answers 409', async () => {
    const a = await createPeer('acme');
    const b = await createPeer('acme');
    await refused(() => patch(`/v1/teams/acme/peers/${b.id}`, { instanceId: a.instanceId }), 409, 'conflict');
    const renamed = expectStatus(await patch(`/v1/teams/acme/peers/${b.id}`, { instanceId: uniqueInstance('renamed') }), 200);
    expect(renamed.body.instanceId).toMatch(/^renamed-/);
  });

  it('peers - patching an unknown, deleted or other team\'s peer answers 404', async () => {
    const gone = await createPeer('acme');
    expect((await kite.api.delete(`/v1/teams/acme/peers/${gone.id}`)).status).toBe(204);
    const theirs = await createPeer('other');
    await refused(() => patch('/v1/teams/acme/peers/00000000-0000-4000-8000-000000000000', { enabled: false }), 404);
    await refused(() => patch(`/v1/teams/acme/peers/${gone.id}`, { enabled: false }), 404);
    await refused(() => patch(`/v1/teams/acme/peers/${theirs.id}`, { enabled: false }), 404);
    await refused(() => patch(`/v1/teams/acme/peers/${theirs.id}`, { enabled: false }, kite.api.as(acme.adminKey)), 404);
    await refused(() => patch(`/v1/teams/other/peers/${theirs.id}`, { enabled: false }, kite.api.as(acme.adminKey)), 403);
  });

  it('peers - rotating a key keeps the replaced one as previous; a second rotation keeps only the newest previous', async () => {
    const peer = await createPeer('acme', { outboundKey: KEY_A, inboundKey: KEY_A });
    const path = `/v1/teams/acme/peers/${peer.id}`;
    const first = expectStatus(await patch(path, { outboundKey: KEY_B, inboundKey: KEY_B }), 200);
    expect(JSON.stringify(first.body)).not.toContain(KEY_B.slice(6));
    const [afterFirst] = await db.query<any>('SELECT * FROM peers WHERE id = $1', [peer.id]);
    expect(afterFirst).toMatchObject({ outbound_key: KEY_B, outbound_key_previous: KEY_A, inbound_key: KEY_B, inbound_key_previous: KEY_A });
    expect(afterFirst.outbound_key_rotated_at).toBeInstanceOf(Date);
    expect(afterFirst.inbound_key_rotated_at).toBeInstanceOf(Date);
    expectStatus(await patch(path, { inboundKey: KEY_C }), 200);
    const [afterSecond] = await db.query<any>('SELECT * FROM peers WHERE id = $1', [peer.id]);
    expect(afterSecond).toMatchObject({ outbound_key: KEY_B, outbound_key_previous: KEY_A, inbound_key: KEY_C, inbound_key_previous: KEY_B });
    expect(afterSecond.inbound_key_rotated_at.getTime()).toBeGreaterThanOrEqual(afterFirst.inbound_key_rotated_at.getTime());
    // Sending the current key again is not a rotation: the previous key and its time stay.
    expectStatus(await patch(path, { inboundKey: KEY_C }), 200);
    const [unchanged] = await db.query<any>('SELECT inbound_key_previous, inbound_key_rotated_at FROM peers WHERE id = $1', [peer.id]);
    expect(unchanged).toEqual({ inbound_key_previous: KEY_B, inbound_key_rotated_at: afterSecond.inbound_key_rotated_at });
  });
});

describe('peers - delete and redrive', () => {
  it('peers - delete answers 204, the peer is gone from show and list, its undelivered deliveries are discarded and its history stays readable', async () => {
    const peer = await createPeer('acme', { enabled: false });
    const delivered = await addDelivery('acme', peer.id, 'delivered', { attempts: 1, lastStatusCode: 200 });
    const pending = await addDelivery('acme', peer.id, 'pending');
    const held = await addDelivery('acme', peer.id, 'dead_lettered', { attempts: 20, lastStatusCode: 503, lastError: 'HTTP 503' });
    const answer = await kite.api.delete(`/v1/teams/acme/peers/${peer.id}`);
    expect(answer.status).toBe(204);
    expect(answer.body).toBeUndefined();
    await refused(() => kite.api.get(`/v1/teams/acme/peers/${peer.id}`), 404);
    expect(expectStatus(await kite.api.get('/v1/teams/acme/peers'), 200).body.items.map((p: { id: string }) => p.id)).not.toContain(peer.id);
    const rows = await db.query<{ id: string; status: string }>('SELECT id, status FROM federation_deliveries WHERE peer_id = $1 ORDER BY id', [peer.id]);
    expect(rows.map((r) => [Number(r.id), r.status])).toEqual([[delivered, 'delivered'], [pending, 'discarded'], [held, 'discarded']]);
    const history = expectStatus(await kite.api.get(`/v1/teams/acme/deliveries?peer=${peer.id}`), 200);
    expect(history.body.items).toEqual([expect.objectContaining({ id: String(delivered), peerId: peer.id, status: 'delivered', attempts: 1, lastStatusCode: 200 })]);
    await refused(() => kite.api.delete(`/v1/teams/acme/peers/${peer.id}`), 404);
  });

  it('peers - deleting an unknown or other team\'s peer answers 404 and keeps it', async () => {
    const theirs = await createPeer('other');
    await refused(() => kite.api.delete('/v1/teams/acme/peers/00000000-0000-4000-8000-000000000000'), 404);
    await refused(() => kite.api.delete(`/v1/teams/acme/peers/${theirs.id}`), 404);
    expect((await kite.api.get(`/v1/teams/other/peers/${theirs.id}`)).status).toBe(200);
  });

  it('peers - redrive puts every dead-lettered delivery back in the queue, answers how many, and makes the peer healthy', async () => {
    const peer = await createPeer('acme', { enabled: false });
    await db.query("UPDATE peers SET state = 'dead-lettered', attempts = 20, last_error = 'HTTP 503' WHERE id = $1", [peer.id]);
    const held = [await addDelivery('acme', peer.id, 'dead_lettered'), await addDelivery('acme', peer.id, 'dead_lettered'), await addDelivery('acme', peer.id, 'dead_lettered')];
    const done = await addDelivery('acme', peer.id, 'delivered');
    const answer = await kite.api.post(`/v1/teams/acme/peers/${peer.id}/redrive`);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ requeued: 3 });
    const rows = await db.query<{ id: string; status: string }>('SELECT id, status FROM federation_deliveries WHERE peer_id = $1 ORDER BY event_seq', [peer.id]);
    expect(rows.map((r) => [Number(r.id), r.status])).toEqual([...held.map((id) => [id, 'pending']), [done, 'delivered']]);
    const shown = expectStatus(await kite.api.get(`/v1/teams/acme/peers/${peer.id}`), 200).body;
    expect(shown).toMatchObject({ state: 'healthy', pending: 3, delivered: 1, deadLettered: 0 });
    const [row] = await db.query('SELECT attempts FROM peers WHERE id = $1', [peer.id]);
    expect(row).toEqual({ attempts: 0 });
    expect(expectStatus(await kite.api.post(`/v1/teams/acme/peers/${peer.id}/redrive`), 200).body).toEqual({ requeued: 0 });
  });

  it('peers - redrive of an unknown, deleted or other team\'s peer answers 404, and an agent key gets 403', async () => {
    const gone = await createPeer('acme');
    expect((await kite.api.delete(`/v1/teams/acme/peers/${gone.id}`)).status).toBe(204);
    const theirs = await createPeer('other');
    await refused(() => kite.api.post(`/v1/teams/acme/peers/${gone.id}/redrive`), 404);
    await refused(() => kite.api.post(`/v1/teams/acme/peers/${theirs.id}/redrive`), 404);
    await refused(() => kite.api.post('/v1/teams/acme/peers/nope/redrive'), 404);
    await refused(() => kite.api.as(acme.agentKey).post(`/v1/teams/acme/peers/${gone.id}/redrive`), 403);
  });
});

describe('peers - deliveries listing', () => {
  let peerA: any;
  let peerB: any;
  const ids: number[] = [];

  beforeAll(async () => {
    await kite.api.createTeam('deliv');
    const rows = await db.query<{ id: string }>("SELECT id FROM teams WHERE slug = 'deliv'");
    teamIds['deliv'] = Number(rows[0]!.id);
    peerA = await createPeer('deliv', { enabled: false });
    peerB = await createPeer('deliv', { enabled: false });
    for (const [peer, status] of [[peerA, 'delivered'], [peerB, 'pending'], [peerA, 'dead_lettered'], [peerA, 'pending'], [peerB, 'delivered'], [peerA, 'discarded']] as const) {
      ids.push(await addDelivery('deliv', peer.id, status, status === 'dead_lettered' ? { attempts: 3, lastStatusCode: 422, lastError: 'HTTP 422' } : {}));
    }
  });

  it('deliveries - items are newest first, with exactly the contract\'s fields, and discarded ones are not listed', async () => {
    const answer = expectStatus(await kite.api.get('/v1/teams/deliv/deliveries'), 200);
    expect(Object.keys(answer.body)).toEqual(['items']);
    expect(answer.body.items.map((d: { id: string }) => d.id)).toEqual(ids.slice(0, 5).reverse().map(String));
    for (const item of answer.body.items) expect(Object.keys(item).sort()).toEqual(DELIVERY_FIELDS);
    const [event] = await db.query<any>('SELECT e.id, e.source, e.type FROM federation_deliveries d JOIN events e ON e.team_id = d.team_id AND e.seq = d.event_seq WHERE d.id = $1', [ids[2]]);
    expect(answer.body.items.find((d: { id: string }) => d.id === String(ids[2]))).toEqual({
      id: String(ids[2]), eventId: event.id, eventSource: event.source, eventType: event.type, peerId: peerA.id, status: 'dead_lettered',
      attempts: 3, lastStatusCode: 422, lastError: 'HTTP 422', createdAt: expect.any(String), deliveredAt: null,
    });
    const delivered = answer.body.items.find((d: { id: string }) => d.id === String(ids[0]));
    expect(new Date(delivered.deliveredAt).toISOString()).toBe(delivered.deliveredAt);
  });

  it('deliveries - ?peer= and ?status= filter, together and apart', async () => {
    const list = async (query: string) => expectStatus(await kite.api.get(`/v1/teams/deliv/deliveries?${query}`), 200).body.items.map((d: { id: string }) => Number(d.id));
    expect(await list(`peer=${peerA.id}`)).toEqual([ids[3], ids[2], ids[0]]);
    expect(await list(`peer=${peerB.id}`)).toEqual([ids[4], ids[1]]);
    expect(await list('status=delivered')).toEqual([ids[4], ids[0]]);
    expect(await list('status=pending')).toEqual([ids[3], ids[1]]);
    expect(await list('status=dead_lettered')).toEqual([ids[2]]);
    expect(await list(`peer=${peerA.id}&status=pending`)).toEqual([ids[3]]);
    expect(await list(`peer=${peerB.id}&status=dead_lettered`)).toEqual([]);
  });

  it('deliveries - limit takes the newest n, and defaults to 100', async () => {
    expect(expectStatus(await kite.api.get('/v1/teams/deliv/deliveries?limit=2'), 200).body.items.map((d: { id: string }) => Number(d.id))).toEqual([ids[4], ids[3]]);
    const bulk = await createPeer('deliv', { enabled: false });
    const events = await Promise.all(Array.from({ length: 101 }, () => publish('deliv')));
    await db.query(
      `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type)
       SELECT $1, e.team_id, e.seq, e.id, e.source, e.type FROM events e WHERE e.team_id = $2 AND e.seq = ANY ($3::bigint[]) ORDER BY e.seq`,
      [bulk.id, teamIds['deliv'], events.map((e) => e.seq)],
    );
    expect(expectStatus(await kite.api.get(`/v1/teams/deliv/deliveries?peer=${bulk.id}`), 200).body.items).toHaveLength(100);
    expect(expectStatus(await kite.api.get(`/v1/teams/deliv/deliveries?peer=${bulk.id}&limit=1000`), 200).body.items).toHaveLength(101);
  });

  for (const limit of ['0', '1001', 'abc', '-1', '2.5']) {
    it(`deliveries - limit=${limit} is refused with 400 invalid_limit`, async () => {
      await refused(() => kite.api.get(`/v1/teams/deliv/deliveries?limit=${limit}`), 400, 'invalid_limit');
    });
  }

  for (const status of ['bogus', 'discarded', 'DELIVERED']) {
    it(`deliveries - status=${status} is refused with 400`, async () => {
      await refused(() => kite.api.get(`/v1/teams/deliv/deliveries?status=${status}`), 400, 'invalid_input');
    });
  }

  it('deliveries - an unknown peer, a malformed one and another team\'s peer answer 404', async () => {
    const theirs = await createPeer('other');
    await refused(() => kite.api.get('/v1/teams/deliv/deliveries?peer=00000000-0000-4000-8000-000000000000'), 404, 'not_found');
    await refused(() => kite.api.get('/v1/teams/deliv/deliveries?peer=nope'), 404, 'not_found');
    await refused(() => kite.api.get(`/v1/teams/deliv/deliveries?peer=${theirs.id}`), 404, 'not_found');
  });

  it('deliveries - an agent key gets 403 and another team\'s key 403', async () => {
    await refused(() => kite.api.as(acme.agentKey).get('/v1/teams/acme/deliveries'), 403);
    await refused(() => kite.api.as(other.adminKey).get('/v1/teams/acme/deliveries'), 403);
  });
});

describe('peers - what the rest of federation reads', () => {
  let pool: Pool;
  let store: PeerStore;

  beforeAll(() => {
    pool = createPool(db.url, createLogger('silent'), 2);
    store = new PeerStore(pool);
  });

  afterAll(async () => {
    await pool?.end();
  });

  it('peers - outbound and inbound keys in force are the current one, plus the previous one for 24 hours after a rotation', async () => {
    const created = await createPeer('acme', { outboundKey: KEY_A, inboundKey: KEY_B });
    let record = (await store.findPeer(created.id))!;
    const now = new Date();
    expect(outboundKeys(record, now)).toEqual([KEY_A]);
    expect(inboundKeys(record, now)).toEqual([KEY_B]);
    expectStatus(await patch(`/v1/teams/acme/peers/${created.id}`, { outboundKey: KEY_C, inboundKey: KEY_A }), 200);
    record = (await store.findPeer(created.id))!;
    const rotatedAt = record.outboundKeyRotatedAt!.getTime();
    expect(outboundKeys(record, new Date(rotatedAt + 1000))).toEqual([KEY_C, KEY_A]);
    expect(inboundKeys(record, new Date(rotatedAt + 1000))).toEqual([KEY_A, KEY_B]);
    expect(outboundKeys(record, new Date(rotatedAt + 24 * 3600_000 - 1000))).toEqual([KEY_C, KEY_A]);
    expect(outboundKeys(record, new Date(rotatedAt + 24 * 3600_000 + 1000))).toEqual([KEY_C]);
    expect(inboundKeys(record, new Date(rotatedAt + 24 * 3600_000 + 1000))).toEqual([KEY_A]);
  });

  it('peers - the store finds live peers by team and instance and still finds a deleted one by id; only the live, unpaused one is enabled', async () => {
    const live = await createPeer('other', { instanceId: 'instance-lookup' });
    const paused = await createPeer('other', { enabled: false });
    const gone = await createPeer('other');
    expect((await kite.api.delete(`/v1/teams/other/peers/${gone.id}`)).status).toBe(204);
    expect((await store.findLivePeerByInstance(teamIds['other']!, 'instance-lookup'))?.id).toBe(live.id);
    expect(await store.findLivePeerByInstance(teamIds['acme']!, 'instance-lookup')).toBeUndefined();
    expect(await store.findLivePeerByInstance(teamIds['other']!, gone.instanceId)).toBeUndefined();
    const liveIds = (await store.listLivePeers(teamIds['other']!)).map((p) => p.id);
    expect(liveIds).toEqual(expect.arrayContaining([live.id, paused.id]));
    expect(liveIds).not.toContain(gone.id);
    const enabledIds = (await db.query<{ id: string }>('SELECT id FROM peers WHERE deleted_at IS NULL AND enabled')).map((p) => p.id);
    expect(enabledIds).toContain(live.id);
    expect(enabledIds).not.toContain(paused.id);
    expect(enabledIds).not.toContain(gone.id);
    const deleted = await store.findPeer(gone.id);
    expect(deleted?.deletedAt).toBeInstanceOf(Date);
    expect(deleted).toMatchObject({ id: gone.id, teamId: teamIds['other'], instanceId: gone.instanceId, outboundKey: gone.outboundKey, inboundKey: gone.inboundKey, state: 'healthy', attempts: 0 });
  });

  it('peers - create, patch, redrive and delete each notify kite_config with peer:<team id>:<peer id> at commit', async () => {
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const payloads: string[] = [];
    client.on('notification', (n) => { if (n.channel === 'kite_config') payloads.push(n.payload ?? ''); });
    await client.query('LISTEN kite_config');
    try {
      const peer = await createPeer('acme');
      const expected = `peer:${teamIds['acme']}:${peer.id}`;
      expectStatus(await patch(`/v1/teams/acme/peers/${peer.id}`, { enabled: false }), 200);
      expectStatus(await kite.api.post(`/v1/teams/acme/peers/${peer.id}/redrive`), 200);
      expect((await kite.api.delete(`/v1/teams/acme/peers/${peer.id}`)).status).toBe(204);
      await refused(() => patch(`/v1/teams/acme/peers/${peer.id}`, { enabled: true }), 404);
      const deadline = Date.now() + 5000;
      while (payloads.filter((p) => p === expected).length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(payloads.filter((p) => p.startsWith('peer:'))).toEqual([expected, expected, expected, expected]);
    } finally {
      await client.end();
    }
  });

  it('peers - onPeerChanged hears each change made through the store right after it commits, and a refused one not at all', async () => {
    const heard: PeerChange[] = [];
    const stop = store.onPeerChanged((change) => heard.push(change));
    const teamId = teamIds['acme']!;
    const created = await store.create(teamId, parseNewPeer({ instanceId: uniqueInstance(), url: 'https://s.example.com', scopes: SCOPES }, 'acme', SELF));
    expect(heard).toEqual([{ kind: 'created', teamId, peerId: created.id }]);
    await store.update(teamId, created.id, (current) => ({ settings: { ...current, enabled: false } }));
    await store.redrive(teamId, created.id);
    await store.remove(teamId, created.id);
    await expect(store.remove(teamId, created.id)).rejects.toMatchObject({ code: 'not_found' });
    expect(heard.map((c) => c.kind)).toEqual(['created', 'updated', 'redriven', 'deleted']);
    stop();
    await store.create(teamId, parseNewPeer({ instanceId: uniqueInstance(), url: 'https://s.example.com', scopes: SCOPES }, 'acme', SELF));
    expect(heard).toHaveLength(4);
  });
});
