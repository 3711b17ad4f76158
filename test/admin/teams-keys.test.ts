/**
 * Contract §3 Admin: teams and team API keys, and §4's rule that revoking a key closes its
 * listeners with 1008. Every refused request must leave the database exactly as it was.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_TOKEN, type ApiAnswer, startTestKite, type TestKite } from '../support/kite.js';
import { listen, type TestListener } from '../support/listener.js';
import { expectError, refusedWithoutChange } from '../support/assertions.js';

let db: TestDatabase;
const refused = refusedWithoutChange(() => db);
let kite: TestKite;
let acme: { adminKey: string; agentKey: string; agentKeyId: string };
let other: { adminKey: string; agentKey: string; agentKeyId: string };
const openListeners: TestListener[] = [];

function expectOk(answer: ApiAnswer, status: number): ApiAnswer {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  return answer;
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  acme = await kite.api.createTeam('acme');
  other = await kite.api.createTeam('other');
});

afterAll(async () => {
  for (const listener of openListeners) listener.close();
  await kite?.close();
  await db?.drop();
});

describe('admin - teams', () => {
  it('admin - the admin token creates a team: 201 {"slug"} and the team exists', async () => {
    const answer = await kite.api.post('/v1/teams', { slug: 'new-team-1' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ slug: 'new-team-1' });
    const rows = await db.query('SELECT slug, head::int AS head FROM teams WHERE slug = $1', ['new-team-1']);
    expect(rows).toEqual([{ slug: 'new-team-1', head: 0 }]);
  });

  it('admin - creating a team that exists answers 409 and changes nothing', async () => {
    await refused(() => kite.api.post('/v1/teams', { slug: 'acme' }), 409);
  });

  const badSlugs: [string, unknown][] = [
    ['an upper-case slug', { slug: 'Acme' }],
    ['a slug starting with a dash', { slug: '-x' }],
    ['a 64-character slug', { slug: 'a'.repeat(64) }],
    ['a missing slug', {}],
    ['a slug that is not a string', { slug: 7 }],
    ['a slug with a space', { slug: 'a b' }],
  ];
  for (const [name, body] of badSlugs) {
    it(`admin - ${name} is refused with 400 and creates nothing`, async () => {
      await refused(() => kite.api.post('/v1/teams', body), 400);
    });
  }

  it('admin - a 63-character slug is the longest accepted', async () => {
    const slug = 'b'.repeat(63);
    expect((await kite.api.post('/v1/teams', { slug })).status).toBe(201);
  });

  it('admin - a body that is not JSON is refused with 400', async () => {
    await refused(() => kite.api.post('/v1/teams', '{"slug":', { 'content-type': 'application/json' }), 400);
  });

  it('admin - creating a team without a token gets 401', async () => {
    await refused(() => kite.api.as(undefined).post('/v1/teams', { slug: 'no-token' }), 401);
  });

  it('admin - creating a team with a bad token gets 401', async () => {
    await refused(() => kite.api.as('not-a-real-token-0000000000').post('/v1/teams', { slug: 'bad-token' }), 401);
  });

  it('admin - creating a team with a malformed Authorization header gets 401', async () => {
    await refused(() => kite.api.as(undefined).post('/v1/teams', { slug: 'malformed' }, { authorization: `Basic ${ADMIN_TOKEN}` }), 401);
  });

  it('admin - a team admin key cannot create teams (403: admin token only)', async () => {
    await refused(() => kite.api.as(acme.adminKey).post('/v1/teams', { slug: 'by-team-key' }), 403);
  });

  it('admin - an agent key cannot create teams (403)', async () => {
    await refused(() => kite.api.as(acme.agentKey).post('/v1/teams', { slug: 'by-agent-key' }), 403);
  });
});

describe('admin - keys', () => {
  it('admin - creating a key answers 201 {"id","name","role","key"} and the key works as a bearer', async () => {
    const answer = await kite.api.post('/v1/teams/acme/keys', { name: 'ci-admin', role: 'admin' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ id: expect.any(String), name: 'ci-admin', role: 'admin', key: expect.any(String) });
    expect(answer.body.key.length).toBeGreaterThanOrEqual(32);
    // The new admin key may do admin things in its team…
    const listed = await kite.api.as(answer.body.key).get('/v1/teams/acme/keys');
    expect(listed.status).toBe(200);
    expect(listed.body.items.map((k: { id: string }) => k.id)).toContain(answer.body.id);
  });

  it('admin - a team admin key creates an agent key that can read events but not manage keys', async () => {
    const answer = await kite.api.as(acme.adminKey).post('/v1/teams/acme/keys', { name: 'bot-7', role: 'agent' });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ name: 'bot-7', role: 'agent' });
    expect((await kite.api.as(answer.body.key).get('/v1/teams/acme/events')).status).toBe(200);
    expectError(await kite.api.as(answer.body.key).get('/v1/teams/acme/keys'), 403);
  });

  it('admin - listing keys shows no secret, and the plaintext key is nowhere in api_keys', async () => {
    const created = await kite.api.post('/v1/teams/acme/keys', { name: 'secret-check', role: 'agent' });
    expect(created.status).toBe(201);
    const key: string = created.body.key;

    const listed = await kite.api.get('/v1/teams/acme/keys');
    expect(listed.status).toBe(200);
    const item = listed.body.items.find((k: { id: string }) => k.id === created.body.id);
    expect(item).toMatchObject({ id: created.body.id, name: 'secret-check', role: 'agent' });
    for (const listedKey of listed.body.items) {
      expect(listedKey).not.toHaveProperty('key');
      expect(listedKey).not.toHaveProperty('hash');
    }
    expect(JSON.stringify(listed.body)).not.toContain(key);

    // Every column of every row, as text (bytea as hex): neither the key nor its bytes appear.
    const rows = await db.query<{ row: string }>('SELECT row_to_json(k)::text AS row FROM api_keys k');
    const everything = rows.map((r) => r.row).join('\n');
    expect(everything).toContain(created.body.id); // the row is there…
    expect(everything).not.toContain(key); // …without the key
    expect(everything.toLowerCase()).not.toContain(Buffer.from(key, 'utf8').toString('hex'));
    const [stored] = await db.query<{ hash: Buffer }>('SELECT hash FROM api_keys WHERE id = $1', [created.body.id]);
    expect(stored!.hash.length).toBeGreaterThan(0);
    expect(stored!.hash.toString('utf8')).not.toBe(key);
  });

  it('admin - revoking a key answers 204, the key then gets 401 and is no longer listed', async () => {
    const created = await kite.api.post('/v1/teams/acme/keys', { name: 'to-revoke', role: 'admin' });
    expect(created.status).toBe(201);
    expect((await kite.api.as(created.body.key).get('/v1/teams/acme/keys')).status).toBe(200);

    const revoked = await kite.api.delete(`/v1/teams/acme/keys/${created.body.id}`);
    expect(revoked.status).toBe(204);
    expect(revoked.body).toBeUndefined();

    expectError(await kite.api.as(created.body.key).get('/v1/teams/acme/keys'), 401);
    expectError(await kite.api.as(created.body.key).get('/v1/teams/acme/events'), 401);
    const listed = await kite.api.get('/v1/teams/acme/keys');
    expect(listed.body.items.map((k: { id: string }) => k.id)).not.toContain(created.body.id);
  });

  it('admin - revoking a key twice answers 404 the second time', async () => {
    const created = await kite.api.post('/v1/teams/acme/keys', { name: 'twice', role: 'agent' });
    expect((await kite.api.delete(`/v1/teams/acme/keys/${created.body.id}`)).status).toBe(204);
    await refused(() => kite.api.delete(`/v1/teams/acme/keys/${created.body.id}`), 404);
  });

  it('admin - revoking an unknown key id answers 404 and changes nothing', async () => {
    await refused(() => kite.api.delete(`/v1/teams/acme/keys/${randomUUID()}`), 404);
    await refused(() => kite.api.delete('/v1/teams/acme/keys/not-a-key-id'), 404);
  });

  it('admin - a key of another team cannot be revoked through this team (404) and keeps working', async () => {
    await refused(() => kite.api.delete(`/v1/teams/acme/keys/${other.agentKeyId}`), 404);
    expect((await kite.api.as(other.agentKey).get('/v1/teams/other/events')).status).toBe(200);
  });

  const badKeys: [string, unknown][] = [
    ['an unknown role', { name: 'x', role: 'owner' }],
    ['a missing role', { name: 'x' }],
    ['a missing name', { role: 'agent' }],
    ['an empty name', { name: '', role: 'agent' }],
  ];
  for (const [name, body] of badKeys) {
    it(`admin - creating a key with ${name} is refused with 400`, async () => {
      await refused(() => kite.api.post('/v1/teams/acme/keys', body), 400);
    });
  }

  it('admin - an agent key cannot create, list or revoke keys (403)', async () => {
    await refused(() => kite.api.as(acme.agentKey).post('/v1/teams/acme/keys', { name: 'escalate', role: 'admin' }), 403);
    await refused(() => kite.api.as(acme.agentKey).get('/v1/teams/acme/keys'), 403);
    await refused(() => kite.api.as(acme.agentKey).delete(`/v1/teams/acme/keys/${acme.agentKeyId}`), 403);
  });

  it('admin - a team key of another team gets 403 on this team\'s key routes', async () => {
    await refused(() => kite.api.as(acme.adminKey).post('/v1/teams/other/keys', { name: 'intruder', role: 'admin' }), 403);
    await refused(() => kite.api.as(acme.adminKey).get('/v1/teams/other/keys'), 403);
    await refused(() => kite.api.as(acme.adminKey).delete(`/v1/teams/other/keys/${other.agentKeyId}`), 403);
    await refused(() => kite.api.as(acme.agentKey).get('/v1/teams/other/events'), 403);
  });

  it('admin - the key routes without a token, or with a bad one, get 401', async () => {
    await refused(() => kite.api.as(undefined).post('/v1/teams/acme/keys', { name: 'anon', role: 'admin' }), 401);
    await refused(() => kite.api.as(undefined).get('/v1/teams/acme/keys'), 401);
    await refused(() => kite.api.as('kite_wrong').delete(`/v1/teams/acme/keys/${acme.agentKeyId}`), 401);
  });

  it('admin - the admin token on an unknown team gets 404', async () => {
    await refused(() => kite.api.post('/v1/teams/nope/keys', { name: 'x', role: 'admin' }), 404);
    await refused(() => kite.api.get('/v1/teams/nope/keys'), 404);
    await refused(() => kite.api.delete(`/v1/teams/nope/keys/${randomUUID()}`), 404);
  });

  it('admin - revoking a key closes its open listeners with 1008 and leaves another key\'s listener open', async () => {
    const doomed = await kite.api.post('/v1/teams/acme/keys', { name: 'doomed', role: 'agent' });
    const keeper = await kite.api.post('/v1/teams/acme/keys', { name: 'keeper', role: 'agent' });
    expect(doomed.status).toBe(201);
    expect(keeper.status).toBe(201);
    const doomedA = await listen(kite.url, 'acme', doomed.body.key);
    const doomedB = await listen(kite.url, 'acme', doomed.body.key, { types: 'com.x.*' });
    const kept = await listen(kite.url, 'acme', keeper.body.key);
    openListeners.push(doomedA, doomedB, kept);

    expect((await kite.api.delete(`/v1/teams/acme/keys/${doomed.body.id}`)).status).toBe(204);
    expect(await doomedA.waitForClose()).toBe(1008);
    expect(await doomedB.waitForClose()).toBe(1008);

    // The other listener is still open and still receives events.
    expect(kept.closeCode).toBeUndefined();
    const published = await kite.api.as(acme.agentKey).post('/v1/teams/acme/events', { type: 'com.example.after-revoke', data: {} });
    expect(published.status).toBe(202);
    await kept.waitFor(() => kept.seqs.includes(published.body.seq), `seq ${published.body.seq}`);
    expect(kept.closeCode).toBeUndefined();

    // And the revoked key cannot open a new listener.
    await expect(listen(kite.url, 'acme', doomed.body.key)).rejects.toMatchObject({ status: 401 });
  });

  it('admin - revoking a key on one node closes its listeners on another node of the instance with 1008', async () => {
    const nodeB = await startTestKite(db.url);
    try {
      const doomed = expectOk(await kite.api.post('/v1/teams/acme/keys', { name: 'doomed-remote', role: 'agent' }), 201);
      const keeper = expectOk(await kite.api.post('/v1/teams/acme/keys', { name: 'keeper-remote', role: 'agent' }), 201);
      const onB = await listen(nodeB.url, 'acme', doomed.body.key);
      const keptOnB = await listen(nodeB.url, 'acme', keeper.body.key);
      openListeners.push(onB, keptOnB);

      expect((await kite.api.delete(`/v1/teams/acme/keys/${doomed.body.id}`)).status).toBe(204);
      expect(await onB.waitForClose()).toBe(1008);
      expectError(await nodeB.api.as(doomed.body.key).get('/v1/teams/acme/events'), 401);

      const published = expectOk(await nodeB.api.as(keeper.body.key).post('/v1/teams/acme/events', { type: 'com.example.remote', data: {} }), 202);
      await keptOnB.waitFor(() => keptOnB.seqs.includes(published.body.seq), `seq ${published.body.seq}`);
      expect(keptOnB.closeCode).toBeUndefined();
    } finally {
      await nodeB.close();
    }
  });
});
