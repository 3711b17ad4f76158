/**
 * Contract §3 Admin: a team's webhook sources — add, list, remove — and what ingest sees after.
 * Every refused request must leave the database exactly as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_TOKEN, startTestKite, type TestKite } from '../support/kite.js';
import { STANDARD_SECRET, standardWebhook, stripeWebhook } from '../support/signers.js';
import { refusedWithoutChange } from '../support/assertions.js';

const STRIPE_SECRET = 'whsec_sources_stripe_secret';
const GITHUB_SECRET = 'sources-github-secret';
const CE_SECRET = 'whsec_c291cmNlcy1jbG91ZGV2ZW50cy1zZWNyZXQ=';

let db: TestDatabase;
const refused = refusedWithoutChange(() => db);
let kite: TestKite;
let acme: { adminKey: string; agentKey: string; agentKeyId: string };
let other: { adminKey: string; agentKey: string; agentKeyId: string };

function sendStripe(team: string, source: string, secret: string, id?: string) {
  const hook = stripeWebhook(secret, id ? { id } : {});
  return kite.api.as(undefined).post(`/hooks/${team}/${source}`, hook.body, hook.headers);
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  acme = await kite.api.createTeam('acme');
  other = await kite.api.createTeam('other');
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('admin - sources', () => {
  const providers: [string, string, string][] = [
    ['stripe', 'pay', STRIPE_SECRET],
    ['github', 'code', GITHUB_SECRET],
    ['standard', 'std', STANDARD_SECRET],
    ['cloudevents', 'ce', CE_SECRET],
  ];
  for (const [provider, name, secret] of providers) {
    it(`admin - a ${provider} source answers 201 with its absolute ingest url and is stored`, async () => {
      const answer = await kite.api.post('/v1/teams/acme/sources', { name, provider, secret });
      expect(answer.status).toBe(201);
      expect(answer.body).toMatchObject({ name, provider, url: `http://kite.test/hooks/acme/${name}` });
      expect(answer.body).not.toHaveProperty('secret');
      expect(JSON.stringify(answer.body)).not.toContain(secret);
      const rows = await db.query('SELECT s.name, s.provider FROM sources s JOIN teams t ON t.id = s.team_id WHERE t.slug = $1 AND s.name = $2', ['acme', name]);
      expect(rows).toEqual([{ name, provider }]);
    });
  }

  it('admin - a created stripe source accepts webhooks signed with its secret', async () => {
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'live', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
    const answer = await sendStripe('acme', 'live', STRIPE_SECRET);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ seq: expect.any(Number), duplicate: false });
  });

  it('admin - a team admin key may add a source to its own team', async () => {
    const answer = await kite.api.as(acme.adminKey).post('/v1/teams/acme/sources', { name: 'by-key', provider: 'github', secret: GITHUB_SECRET });
    expect(answer.status).toBe(201);
    expect(answer.body.url).toBe('http://kite.test/hooks/acme/by-key');
  });

  it('admin - the url follows KITE_PUBLIC_URL, including a path prefix', async () => {
    const db2 = await createTestDatabase();
    const kite2 = await startTestKite(db2.url, { KITE_PUBLIC_URL: 'https://hooks.example.com/kite' });
    try {
      await kite2.api.createTeam('acme');
      const answer = await kite2.api.post('/v1/teams/acme/sources', { name: 'pay', provider: 'stripe', secret: STRIPE_SECRET });
      expect(answer.status).toBe(201);
      expect(answer.body.url).toBe('https://hooks.example.com/kite/hooks/acme/pay');
    } finally {
      await kite2.close();
      await db2.drop();
    }
  });

  it('admin - the source name "kite" is refused with 400 reserved_name', async () => {
    await refused(() => kite.api.post('/v1/teams/acme/sources', { name: 'kite', provider: 'standard', secret: STANDARD_SECRET }), 400, 'reserved_name');
  });

  it('admin - an existing source name answers 409 and keeps the old source', async () => {
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'taken', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
    await refused(() => kite.api.post('/v1/teams/acme/sources', { name: 'taken', provider: 'github', secret: 'another-secret' }), 409);
    expect((await sendStripe('acme', 'taken', STRIPE_SECRET)).status).toBe(200);
  });

  it('admin - the same source name in another team is not a conflict', async () => {
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'shared', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
    const answer = await kite.api.post('/v1/teams/other/sources', { name: 'shared', provider: 'stripe', secret: STRIPE_SECRET });
    expect(answer.status).toBe(201);
    expect(answer.body.url).toBe('http://kite.test/hooks/other/shared');
  });

  const badInputs: [string, unknown][] = [
    ['an unknown provider', { name: 'p1', provider: 'paypal', secret: 'x-secret' }],
    ['a provider named __proto__', { name: 'p2', provider: '__proto__', secret: 'x-secret' }],
    ['a missing provider', { name: 'p3', secret: 'x-secret' }],
    ['a standard source with a secret that is not whsec_…', { name: 'p4', provider: 'standard', secret: 'plain-secret' }],
    ['a cloudevents source with a secret that is not whsec_…', { name: 'p5', provider: 'cloudevents', secret: 'plain-secret' }],
    ['a missing secret', { name: 'p6', provider: 'stripe' }],
    ['an empty secret', { name: 'p7', provider: 'stripe', secret: '' }],
    ['an upper-case name', { name: 'Pay', provider: 'stripe', secret: STRIPE_SECRET }],
    ['a name with a slash', { name: 'a/b', provider: 'stripe', secret: STRIPE_SECRET }],
    ['a missing name', { provider: 'stripe', secret: STRIPE_SECRET }],
  ];
  for (const [what, body] of badInputs) {
    it(`admin - ${what} is refused with 400 and stores nothing`, async () => {
      await refused(() => kite.api.post('/v1/teams/acme/sources', body), 400);
    });
  }

  it('admin - listing sources answers {"items"} with name, provider and url, and never a secret', async () => {
    const answer = await kite.api.get('/v1/teams/acme/sources');
    expect(answer.status).toBe(200);
    const byName = new Map<string, any>(answer.body.items.map((s: { name: string }) => [s.name, s]));
    for (const [provider, name] of providers) {
      expect(byName.get(name)).toMatchObject({ name, provider, url: `http://kite.test/hooks/acme/${name}` });
    }
    for (const item of answer.body.items) expect(item).not.toHaveProperty('secret');
    const text = JSON.stringify(answer.body);
    for (const secret of [STRIPE_SECRET, GITHUB_SECRET, STANDARD_SECRET, CE_SECRET]) expect(text).not.toContain(secret);
    // Only this team's sources.
    expect(answer.body.items.every((s: { url: string }) => s.url.startsWith('http://kite.test/hooks/acme/'))).toBe(true);
  });

  it('admin - deleting a source answers 204, and a webhook to it then gets 404 and stores nothing', async () => {
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'doomed', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
    expect((await sendStripe('acme', 'doomed', STRIPE_SECRET)).status).toBe(200); // cached by ingest now
    const answer = await kite.api.delete('/v1/teams/acme/sources/doomed');
    expect(answer.status).toBe(204);
    expect(answer.body).toBeUndefined();
    expect(await db.query("SELECT 1 FROM sources WHERE name = 'doomed'")).toEqual([]);
    await refused(() => sendStripe('acme', 'doomed', STRIPE_SECRET), 404);
    const listed = await kite.api.get('/v1/teams/acme/sources');
    expect(listed.body.items.map((s: { name: string }) => s.name)).not.toContain('doomed');
  });

  it('admin - a source deleted and added again verifies with its new secret only', async () => {
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'rotated', provider: 'stripe', secret: 'whsec_old_secret' })).status).toBe(201);
    expect((await sendStripe('acme', 'rotated', 'whsec_old_secret')).status).toBe(200);
    expect((await kite.api.delete('/v1/teams/acme/sources/rotated')).status).toBe(204);
    expect((await kite.api.post('/v1/teams/acme/sources', { name: 'rotated', provider: 'stripe', secret: 'whsec_new_secret' })).status).toBe(201);
    await refused(() => sendStripe('acme', 'rotated', 'whsec_old_secret'), 401, 'invalid_signature');
    expect((await sendStripe('acme', 'rotated', 'whsec_new_secret')).status).toBe(200);
  });

  it('admin - a source deleted on one node stops accepting webhooks on another node of the instance', async () => {
    const nodeB = await startTestKite(db.url);
    try {
      expect((await kite.api.post('/v1/teams/acme/sources', { name: 'remote', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
      // Node B caches the source on its first webhook.
      const first = stripeWebhook(STRIPE_SECRET, { id: 'evt_remote_1' });
      expect((await nodeB.api.as(undefined).post('/hooks/acme/remote', first.body, first.headers)).status).toBe(200);
      expect((await kite.api.delete('/v1/teams/acme/sources/remote')).status).toBe(204);
      // Node B learns of the deletion through Postgres; re-sending the same event id stores nothing meanwhile.
      const deadline = Date.now() + 5000;
      let status = 0;
      for (;;) {
        const again = stripeWebhook(STRIPE_SECRET, { id: 'evt_remote_1' });
        status = (await nodeB.api.as(undefined).post('/hooks/acme/remote', again.body, again.headers)).status;
        if (status !== 200 || Date.now() > deadline) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(status).toBe(404);
      await refused(async () => {
        const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_remote_2' });
        return nodeB.api.as(undefined).post('/hooks/acme/remote', hook.body, hook.headers);
      }, 404);
    } finally {
      await nodeB.close();
    }
  });

  it('admin - deleting an unknown source answers 404', async () => {
    await refused(() => kite.api.delete('/v1/teams/acme/sources/never-was'), 404);
  });

  it('admin - deleting another team\'s source through this team answers 404 and keeps it', async () => {
    expect((await kite.api.post('/v1/teams/other/sources', { name: 'theirs', provider: 'stripe', secret: STRIPE_SECRET })).status).toBe(201);
    await refused(() => kite.api.delete('/v1/teams/acme/sources/theirs'), 404);
    expect((await sendStripe('other', 'theirs', STRIPE_SECRET)).status).toBe(200);
  });

  it('admin - an agent key cannot add, list or delete sources (403)', async () => {
    await refused(() => kite.api.as(acme.agentKey).post('/v1/teams/acme/sources', { name: 'sneaky', provider: 'stripe', secret: STRIPE_SECRET }), 403);
    await refused(() => kite.api.as(acme.agentKey).get('/v1/teams/acme/sources'), 403);
    await refused(() => kite.api.as(acme.agentKey).delete('/v1/teams/acme/sources/pay'), 403);
  });

  it('admin - a key of another team gets 403 on the source routes', async () => {
    await refused(() => kite.api.as(other.adminKey).post('/v1/teams/acme/sources', { name: 'sneaky', provider: 'stripe', secret: STRIPE_SECRET }), 403);
    await refused(() => kite.api.as(other.adminKey).get('/v1/teams/acme/sources'), 403);
    await refused(() => kite.api.as(other.adminKey).delete('/v1/teams/acme/sources/pay'), 403);
  });

  it('admin - the source routes without a token or with a bad one get 401', async () => {
    await refused(() => kite.api.as(undefined).post('/v1/teams/acme/sources', { name: 'anon', provider: 'stripe', secret: STRIPE_SECRET }), 401);
    await refused(() => kite.api.as(undefined).get('/v1/teams/acme/sources'), 401);
    await refused(() => kite.api.as(`${ADMIN_TOKEN}x`).delete('/v1/teams/acme/sources/pay'), 401);
  });

  it('admin - the admin token on an unknown team gets 404 on the source routes', async () => {
    await refused(() => kite.api.post('/v1/teams/nope/sources', { name: 'pay', provider: 'stripe', secret: STRIPE_SECRET }), 404);
    await refused(() => kite.api.get('/v1/teams/nope/sources'), 404);
    await refused(() => kite.api.delete('/v1/teams/nope/sources/pay'), 404);
  });

  it('admin - a standard source with a whsec_ secret verifies a Standard Webhooks message', async () => {
    const hook = standardWebhook(STANDARD_SECRET, { type: 'user.created', data: {} });
    const answer = await kite.api.as(undefined).post('/hooks/acme/std', hook.body, hook.headers);
    expect(answer.status).toBe(200);
  });
});
