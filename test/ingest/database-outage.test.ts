import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { withDatabase } from '../support/database-url.js';
import { startTestKite, type TestKite } from '../support/kite.js';
import { listen } from '../support/listener.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { stripeWebhook } from '../support/signers.js';
import { STRIPE_SECRET } from '../support/webhooks.js';

let db: TestDatabase;
let proxy: TcpProxy;
let kite: TestKite;
let agentKey: string;

async function post(hook = stripeWebhook(STRIPE_SECRET)) {
  const started = performance.now();
  const response = await fetch(`${kite.url}/hooks/acme/stripe`, { method: 'POST', body: hook.body, headers: hook.headers });
  return { status: response.status, body: (await response.json()) as any, ms: performance.now() - started };
}

/** Retries until the database is back and the webhook is answered 200 (a sender's retry loop). */
async function postUntilStored(hook: ReturnType<typeof stripeWebhook>, deadlineMs = 15_000) {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const answer = await post(hook);
    if (answer.status === 200) return answer;
    expect(answer.status).toBe(503);
    if (Date.now() > deadline) throw new Error('the database did not come back in time');
    await new Promise((resolve) => setTimeout(resolve, 100)); // a sender's retry interval, not a wait for our code
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  const target = new URL(db.url);
  proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  const port = await proxy.start();
  const viaProxy = new URL(db.url);
  viaProxy.hostname = '127.0.0.1';
  viaProxy.port = String(port);
  kite = await startTestKite(viaProxy.toString());
  ({ agentKey } = await kite.api.createTeam('acme'));
  await kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
});

afterAll(async () => {
  await proxy?.restore();
  await kite?.close();
  await proxy?.stop();
  await db?.drop();
});

describe('database outage', () => {
  it('outage - a refused database: ingest answers 503 within a second, readyz is 503, and all resumes by itself', async () => {
    const listener = await listen(kite.url, 'acme', agentKey);
    expect((await post()).status).toBe(200);
    expect((await kite.api.get('/readyz')).status).toBe(200);
    await proxy.cut();
    const during = await post();
    expect(during.status).toBe(503);
    expect(during.body.error.code).toBe('database_unavailable');
    expect(during.ms).toBeLessThan(1000);
    expect((await kite.api.get('/readyz')).status).toBe(503);
    await proxy.restore();
    const hook = stripeWebhook(STRIPE_SECRET);
    const after = await postUntilStored(hook);
    expect(after.body.duplicate).toBe(false);
    expect((await kite.api.get('/readyz')).status).toBe(200);
    // The listener, on its reconnected notification channel, still gets new events.
    await listener.waitFor(() => listener.seqs.includes(after.body.seq), 'the event stored after the outage', 15_000);
    listener.close();
  });

  it('outage - a hung database: ingest answers 503 within a second instead of hanging, and the retry is deduplicated', async () => {
    proxy.freeze();
    const hook = stripeWebhook(STRIPE_SECRET);
    const during = await post(hook);
    expect(during.status).toBe(503);
    expect(during.ms).toBeLessThan(1000);
    const ready = performance.now();
    expect((await kite.api.get('/readyz')).status).toBe(503);
    expect(performance.now() - ready).toBeLessThan(1000);
    // Other routes give up too (the client-side query timeout) and say why, rather than a 500.
    const poll = await kite.api.get('/v1/teams/acme/events');
    expect(poll.status).toBe(503);
    expect(poll.body.error.code).toBe('database_unavailable');
    await proxy.cut(); // connections that hung are reset, as a real failover would
    await proxy.restore();
    const retry = await postUntilStored(hook);
    // Whether or not the first attempt reached the table, the event is stored exactly once.
    const rows = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM events WHERE id = $1', [JSON.parse(hook.body).id]);
    expect(rows[0]!.n).toBe(1);
    expect(retry.status).toBe(200);
  });

  it('outage - a database that refuses connections with an error of its own (not accepting connections, 55000) is a 503 too, not a 500', async () => {
    const admin = new pg.Client({ connectionString: withDatabase(inject('serverUrl'), 'postgres') });
    await admin.connect();
    const allow = (yes: boolean) => admin.query(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS ${yes}`);
    try {
      // As a DBA would before maintenance: no new connections, and the open ones ended.
      await allow(false);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db.name]);
      const hook = stripeWebhook(STRIPE_SECRET);
      const during = await post(hook);
      expect(during.body.error?.code).toBe('database_unavailable');
      expect(during.status).toBe(503);
      expect(during.ms).toBeLessThan(1000);
      const poll = await kite.api.get('/v1/teams/acme/events');
      expect([poll.status, poll.body.error?.code]).toEqual([503, 'database_unavailable']);
      await allow(true);
      expect((await postUntilStored(hook)).status).toBe(200);
    } finally {
      await allow(true);
      await admin.end();
    }
  });

  it('outage - a key revoked while this node could not hear notifications still closes its listeners (1008)', async () => {
    const created = await kite.api.post('/v1/teams/acme/keys', { name: 'revoked-in-outage', role: 'agent' });
    const listener = await listen(kite.url, 'acme', created.body.key);
    await proxy.cut();
    // Revoked behind Kite's back: its notification connection is down, so no NOTIFY reaches it.
    await db.query('UPDATE api_keys SET revoked_at = now() WHERE id = $1', [created.body.id]);
    await proxy.restore();
    expect(await listener.waitForClose(15_000)).toBe(1008);
  });
});
