import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestKite, type TestKite } from '../support/kite.js';
import { STANDARD_SECRET, standardWebhook, stripeWebhook } from '../support/signers.js';

const STRIPE_SECRET = 'whsec_stripe_test_secret';
const GITHUB_SECRET = 'github-secret';

let db: TestDatabase;
let kite: TestKite;

async function snapshot() {
  const [events] = await db.query<{ n: number; heads: number }>('SELECT (SELECT count(*)::int FROM events) AS n, (SELECT coalesce(sum(head), 0)::int FROM teams) AS heads');
  return events;
}

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  await kite.api.createTeam('acme');
  await kite.api.createTeam('other');
  await kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
  await kite.api.createSource('acme', 'gh', 'github', GITHUB_SECRET);
  await kite.api.createSource('acme', 'std', 'standard', STANDARD_SECRET);
  await kite.api.createSource('acme', 'ce', 'cloudevents', STANDARD_SECRET);
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('ingest', () => {
  it('ingest - a signed Stripe webhook is stored as the contract\'s CloudEvent and answered with its seq', async () => {
    const created = 1_790_000_000;
    const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_1', type: 'payment_intent.succeeded', created });
    const answer = await kite.api.as(undefined).post('/hooks/acme/stripe', hook.body, hook.headers);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ id: 'evt_1', seq: expect.any(Number), duplicate: false });
    const [row] = await db.query<{ event: any }>('SELECT event FROM events WHERE id = $1', ['evt_1']);
    expect(row!.event).toMatchObject({
      specversion: '1.0',
      id: 'evt_1',
      source: 'http://kite.test/hooks/acme/stripe',
      type: 'com.stripe.payment_intent.succeeded',
      time: new Date(created * 1000).toISOString(),
      datacontenttype: 'application/json',
      data: JSON.parse(hook.body),
    });
  });

  it('ingest - a webhook whose body Postgres cannot store (a NUL character) is refused with 400 alone; valid ones sent with it are stored', async () => {
    const bad = stripeWebhook(STRIPE_SECRET, { data: { object: { id: 'pi_nul', note: 'a\u0000b' } } });
    const good = Array.from({ length: 10 }, () => stripeWebhook(STRIPE_SECRET));
    const before = await snapshot();
    const answers = await Promise.all([bad, ...good].map((hook) => kite.api.as(undefined).post('/hooks/acme/stripe', hook.body, hook.headers)));
    expect(answers[0]!.status).toBe(400);
    expect(answers[0]!.body.error.code).toBe('invalid_input');
    expect(answers.slice(1).map((a) => a.status)).toEqual(Array(10).fill(200));
    expect((await snapshot())!.n).toBe(before!.n + 10);
  });

  it('ingest - a CloudEvent nested too deeply to store is refused with 400, not 500', async () => {
    // Written out: JSON.stringify itself cannot go this deep.
    const depth = 20_000;
    const body = `{"specversion":"1.0","id":"deep-1","source":"urn:deep","type":"com.deep.test","data":${'['.repeat(depth)}"deep"${']'.repeat(depth)}}`;
    const id = 'msg_deep_1';
    const when = new Date();
    const headers = { 'content-type': 'application/cloudevents+json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(when.getTime() / 1000)), 'webhook-signature': new Webhook(STANDARD_SECRET).sign(id, when, body) };
    const answer = await kite.api.as(undefined).post('/hooks/acme/ce', body, headers);
    expect([answer.status, answer.body.error?.code]).toEqual([400, 'invalid_body']);
  });

  it('ingest - a repeat of a stored webhook answers duplicate with the stored seq and stores nothing', async () => {
    const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_dup' });
    const first = await kite.api.as(undefined).post('/hooks/acme/stripe', hook.body, hook.headers);
    const before = await snapshot();
    const again = stripeWebhook(STRIPE_SECRET, { id: 'evt_dup' }); // re-signed, same id
    const second = await kite.api.as(undefined).post('/hooks/acme/stripe', again.body, again.headers);
    expect(second.status).toBe(200);
    expect(second.body).toEqual({ id: 'evt_dup', seq: first.body.seq, duplicate: true });
    expect(await snapshot()).toEqual(before);
  });

  it('ingest - a GitHub delivery signed by @octokit/webhooks-methods maps event, action and delivery id', async () => {
    const body = JSON.stringify({ action: 'opened', issue: { number: 7 } });
    const answer = await kite.api.as(undefined).post('/hooks/acme/gh', body, {
      'content-type': 'application/json',
      'x-github-event': 'issues',
      'x-github-delivery': 'delivery-1',
      'x-hub-signature-256': await githubSign(GITHUB_SECRET, body),
    });
    expect(answer.status).toBe(200);
    const [row] = await db.query<{ event: any }>('SELECT event FROM events WHERE id = $1', ['delivery-1']);
    expect(row!.event.type).toBe('com.github.issues.opened');
    expect(row!.event.source).toBe('http://kite.test/hooks/acme/gh');
  });

  it('ingest - a Standard Webhooks message maps com.<source>.<type> and webhook-id', async () => {
    const hook = standardWebhook(STANDARD_SECRET, { type: 'user.created', timestamp: '2026-01-02T03:04:05Z', data: { id: 1 } }, 'msg_std_1');
    const answer = await kite.api.as(undefined).post('/hooks/acme/std', hook.body, hook.headers);
    expect(answer.status).toBe(200);
    const [row] = await db.query<{ event: any }>('SELECT event FROM events WHERE id = $1', ['msg_std_1']);
    expect(row!.event.type).toBe('com.std.user.created');
    expect(row!.event.time).toBe('2026-01-02T03:04:05.000Z');
  });

  it('ingest - a CloudEvents batch answers one item per event, kite extensions stripped', async () => {
    const batch = [
      { specversion: '1.0', id: 'ce-1', source: 'urn:test', type: 'com.example.a', data: { n: 1 }, kitefedhops: 5 },
      { specversion: '1.0', id: 'ce-2', source: 'urn:test', type: 'com.example.b', data: { n: 2 } },
    ];
    const hook = standardWebhook(STANDARD_SECRET, batch, undefined, new Date(), 'application/cloudevents-batch+json');
    const answer = await kite.api.as(undefined).post('/hooks/acme/ce', hook.body, hook.headers);
    expect(answer.status).toBe(200);
    expect(answer.body.items).toEqual([
      { id: 'ce-1', seq: expect.any(Number), duplicate: false },
      { id: 'ce-2', seq: answer.body.items[0].seq + 1, duplicate: false },
    ]);
    const [row] = await db.query<{ event: any }>('SELECT event FROM events WHERE id = $1', ['ce-1']);
    expect(row!.event.source).toBe('urn:test');
    expect(row!.event).not.toHaveProperty('kitefedhops');
  });

  it('ingest - an empty CloudEvents batch stores nothing and answers an empty list', async () => {
    const before = await snapshot();
    const hook = standardWebhook(STANDARD_SECRET, [], undefined, new Date(), 'application/cloudevents-batch+json');
    const answer = await kite.api.as(undefined).post('/hooks/acme/ce', hook.body, hook.headers);
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ items: [] });
    expect(await snapshot()).toEqual(before);
  });

  describe('bad input gets its status and changes nothing', () => {
    const stripeCases: [string, () => { path: string; body: string | Buffer; headers: Record<string, string> }, number, string][] = [
      ['wrong secret', () => ({ path: '/hooks/acme/stripe', ...stripeWebhook('whsec_wrong') }), 401, 'invalid_signature'],
      ['missing signature', () => ({ path: '/hooks/acme/stripe', body: stripeWebhook(STRIPE_SECRET).body, headers: { 'content-type': 'application/json' } }), 401, 'invalid_signature'],
      ['timestamp 301 s old', () => ({ path: '/hooks/acme/stripe', ...stripeWebhook(STRIPE_SECRET, {}, Math.floor(Date.now() / 1000) - 301) }), 401, 'invalid_signature'],
      ['tampered body', () => {
        const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_tamper' });
        return { path: '/hooks/acme/stripe', body: hook.body.replace('2000', '9999'), headers: hook.headers };
      }, 401, 'invalid_signature'],
      ['unknown team', () => ({ path: '/hooks/nope/stripe', ...stripeWebhook(STRIPE_SECRET) }), 404, 'not_found'],
      ['unknown source', () => ({ path: '/hooks/acme/nope', ...stripeWebhook(STRIPE_SECRET) }), 404, 'not_found'],
      ['a source of another team', () => ({ path: '/hooks/other/stripe', ...stripeWebhook(STRIPE_SECRET) }), 404, 'not_found'],
      ['signed body that is not JSON', () => {
        const t = Math.floor(Date.now() / 1000);
        const body = 'not json';
        const v1 = createHmac('sha256', STRIPE_SECRET).update(`${t}.${body}`).digest('hex');
        return { path: '/hooks/acme/stripe', body, headers: { 'stripe-signature': `t=${t},v1=${v1}` } };
      }, 400, 'invalid_json'],
      ['signed JSON without an id', () => {
        const t = Math.floor(Date.now() / 1000);
        const body = JSON.stringify({ type: 'x', created: t });
        const v1 = createHmac('sha256', STRIPE_SECRET).update(`${t}.${body}`).digest('hex');
        return { path: '/hooks/acme/stripe', body, headers: { 'stripe-signature': `t=${t},v1=${v1}` } };
      }, 400, 'invalid_body'],
      ['a body over 1 MiB', () => ({ path: '/hooks/acme/stripe', ...stripeWebhook(STRIPE_SECRET, { data: { blob: 'x'.repeat(1024 * 1024) } }) }), 413, 'payload_too_large'],
    ];
    for (const [name, make, status, code] of stripeCases) {
      it(`ingest - ${name} → ${status} ${code}`, async () => {
        const before = await snapshot();
        const { path, body, headers } = make();
        const answer = await kite.api.as(undefined).post(path, body, headers);
        expect(answer.status).toBe(status);
        expect(answer.body.error.code).toBe(code);
        expect(answer.body.error.message).toEqual(expect.any(String));
        expect(await snapshot()).toEqual(before);
      });
    }

    it('ingest - a CloudEvent with a kite. type → 400 reserved_type', async () => {
      const before = await snapshot();
      const hook = standardWebhook(STANDARD_SECRET, { specversion: '1.0', id: 'x', source: 'urn:x', type: 'kite.federation.fake' }, undefined, new Date(), 'application/cloudevents+json');
      const answer = await kite.api.as(undefined).post('/hooks/acme/ce', hook.body, hook.headers);
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toBe('reserved_type');
      expect(await snapshot()).toEqual(before);
    });

    it('ingest - a chunked body over the limit is refused without reading it all', async () => {
      const before = await snapshot();
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 'a');
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          // Would send 64 MiB if the server kept reading.
          if (sent >= 64 * 1024 * 1024) return controller.close();
          sent += chunk.length;
          controller.enqueue(chunk);
        },
      });
      const response = await fetch(`${kite.url}/hooks/acme/stripe`, { method: 'POST', body: stream, duplex: 'half', headers: { 'stripe-signature': 't=1,v1=00' } } as RequestInit).catch((err: Error) => err);
      if (response instanceof Error) {
        // The server may close the connection while the client is still sending: that is a refusal too.
        expect(sent).toBeLessThan(64 * 1024 * 1024);
      } else {
        expect(response.status).toBe(413);
      }
      expect(sent).toBeLessThan(64 * 1024 * 1024);
      expect(await snapshot()).toEqual(before);
    });
  });

  it('ingest - concurrent webhooks to one team get distinct consecutive seqs', async () => {
    const hooks = Array.from({ length: 200 }, () => stripeWebhook(STRIPE_SECRET));
    // A 503 (the commit deadline passed on a loaded machine) is retried as a sender would; the
    // retry of a webhook that was stored after all answers its seq as a duplicate.
    const post = async (h: (typeof hooks)[number]) => {
      for (let attempt = 0; ; attempt++) {
        const answer = await kite.api.as(undefined).post('/hooks/acme/stripe', h.body, h.headers);
        if (answer.status !== 503 || attempt === 5) return { ...answer, retried: attempt > 0 };
      }
    };
    const answers = await Promise.all(hooks.map(post));
    expect(answers.every((a) => a.status === 200 && (a.body.duplicate === false || a.retried))).toBe(true);
    const seqs = answers.map((a) => a.body.seq as number).sort((a, b) => a - b);
    expect(new Set(seqs).size).toBe(200);
    expect(seqs[199]! - seqs[0]!).toBe(199);
  });
});
