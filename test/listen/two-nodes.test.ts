import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestKite, type TestKite } from '../support/kite.js';
import { listen } from '../support/listener.js';
import { inParallel, sendStripe, STRIPE_SECRET } from '../support/webhooks.js';

let db: TestDatabase;
let nodeA: TestKite;
let nodeB: TestKite;
let keys: { agentKey: string };

beforeAll(async () => {
  db = await createTestDatabase();
  [nodeA, nodeB] = await Promise.all([startTestKite(db.url), startTestKite(db.url)]);
  keys = await nodeA.api.createTeam('acme');
  await nodeA.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
});

afterAll(async () => {
  await nodeA?.close();
  await nodeB?.close();
  await db?.drop();
});

describe('two nodes on one database', () => {
  it('cluster - two nodes migrating at once apply each migration exactly once', async () => {
    const rows = await db.query<{ version: number; n: number }>('SELECT version, count(*)::int AS n FROM kite_migrations GROUP BY version');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });

  it('cluster - 1,000 events ingested on both nodes reach listeners on either node exactly once, in seq order, across a reconnect', async () => {
    const onA = await listen(nodeA.url, 'acme', keys.agentKey);
    const onB = await listen(nodeB.url, 'acme', keys.agentKey);
    const start = onA.frames[0]!.head!;
    // The resuming listener: starts on A, drops midway, resumes on B with after=<last seq seen>.
    let resuming = await listen(nodeA.url, 'acme', keys.agentKey, { after: String(start) });
    const seenByResuming: number[] = [];
    let reconnected = false;

    const total = 1000;
    const ingest = inParallel(total, 16, (i) => sendStripe(i % 2 === 0 ? nodeA.url : nodeB.url, 'acme', 'stripe'));
    await resuming.waitFor(() => resuming.events.length >= 300, '300 events before the reconnect', 20_000);
    seenByResuming.push(...resuming.seqs);
    resuming.close();
    await resuming.waitForClose();
    // Frames that arrived between the snapshot and the close count too.
    seenByResuming.splice(0, seenByResuming.length, ...resuming.seqs);
    resuming = await listen(nodeB.url, 'acme', keys.agentKey, { after: String(seenByResuming[seenByResuming.length - 1]) });
    reconnected = true;

    const answers = await ingest;
    const seqs = answers.map((a) => a.seq);
    const end = Math.max(...seqs);
    expect(new Set(seqs).size).toBe(total);
    expect(end - start).toBe(total);

    const expected = Array.from({ length: total }, (_, i) => start + 1 + i);
    await onA.waitFor(() => onA.events.length >= total, 'node A listener', 20_000);
    await onB.waitFor(() => onB.events.length >= total, 'node B listener', 20_000);
    await resuming.waitFor(() => resuming.seqs.includes(end), 'resumed listener', 20_000);
    expect(reconnected).toBe(true);
    expect(onA.seqs).toEqual(expected);
    expect(onB.seqs).toEqual(expected);
    expect([...seenByResuming, ...resuming.seqs]).toEqual(expected);
    onA.close();
    onB.close();
    resuming.close();
  });

  it('cluster - revoking a key on one node closes its listeners on the other with 1008', async () => {
    const created = await nodeA.api.post('/v1/teams/acme/keys', { name: 'short-lived', role: 'agent' });
    const onB = await listen(nodeB.url, 'acme', created.body.key);
    const revoked = await nodeA.api.delete(`/v1/teams/acme/keys/${created.body.id}`);
    expect(revoked.status).toBe(204);
    expect(await onB.waitForClose()).toBe(1008);
  });
});
