import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestKite } from '../support/kite.js';
import { stripeWebhook } from '../support/signers.js';
import { STRIPE_SECRET } from '../support/webhooks.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

describe('restart', () => {
  it('dedup - a webhook repeated after a restart (on another node) answers duplicate with the original seq', async () => {
    const first = await startTestKite(db.url);
    await first.api.createTeam('acme');
    await first.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
    const hook = stripeWebhook(STRIPE_SECRET, { id: 'evt_restart' });
    const before = await fetch(`${first.url}/hooks/acme/stripe`, { method: 'POST', body: hook.body, headers: hook.headers });
    const stored = (await before.json()) as { seq: number; duplicate: boolean };
    expect(stored.duplicate).toBe(false);
    await first.close();

    const second = await startTestKite(db.url);
    try {
      const again = stripeWebhook(STRIPE_SECRET, { id: 'evt_restart' });
      const repeat = await fetch(`${second.url}/hooks/acme/stripe`, { method: 'POST', body: again.body, headers: again.headers });
      expect(repeat.status).toBe(200);
      expect(await repeat.json()).toEqual({ id: 'evt_restart', seq: stored.seq, duplicate: true });
      const next = stripeWebhook(STRIPE_SECRET);
      const fresh = (await (await fetch(`${second.url}/hooks/acme/stripe`, { method: 'POST', body: next.body, headers: next.headers })).json()) as { seq: number };
      expect(fresh.seq).toBe(stored.seq + 1);
    } finally {
      await second.close();
    }
  });
});
