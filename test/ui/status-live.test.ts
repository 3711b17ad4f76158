/**
 * The status page's server side against a real Kite on a real Postgres: the files it serves, who
 * may open its socket and what each sees, the numbers of a snapshot, and when snapshots are sent.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { buildStatusSnapshot, RATE_MINUTES, type StatusScope, type StatusSnapshot } from '../../src/ui/status-snapshot.js';
import { createTestDatabase, createTestPool, type TestDatabase } from '../support/database.js';
import { peerKey } from '../support/federation.js';
import { ADMIN_TOKEN, expectStatus, startTestKite, type TestKite } from '../support/kite.js';
import { sendStripe, STRIPE_SECRET } from '../support/webhooks.js';

/** A `/ui/live` client that keeps every frame and its close, and waits on them with a deadline. */
class UiClient {
  readonly frames: any[] = [];
  close: { code: number; reason: string } | undefined;
  private readonly waiters = new Set<() => void>();
  readonly socket: WebSocket;

  constructor(url: string, token?: string) {
    this.socket = new WebSocket(`${url.replace(/^http/, 'ws')}/ui/live`);
    this.socket.on('open', () => {
      if (token !== undefined) this.socket.send(JSON.stringify({ type: 'auth', token }));
    });
    this.socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()));
      this.wake();
    });
    this.socket.on('close', (code, reason) => {
      this.close = { code, reason: reason.toString() };
      this.wake();
    });
  }

  snapshots(): (StatusSnapshot & { type: 'snapshot' })[] {
    return this.frames.filter((f) => f.type === 'snapshot');
  }

  waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 10_000): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const value = probe();
        if (value === undefined) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(value);
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; frames: ${JSON.stringify(this.frames).slice(0, 500)}, close: ${JSON.stringify(this.close)}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  closed(): Promise<{ code: number; reason: string }> {
    return this.waitFor(() => this.close, 'the socket to close');
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

let db: TestDatabase;
let kite: TestKite;
let acme: { adminKey: string; agentKey: string };
let acmePeerId: string;
const clients: UiClient[] = [];
const client = (token?: string) => {
  const c = new UiClient(kite.url, token);
  clients.push(c);
  return c;
};

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  acme = await kite.api.createTeam('acme');
  await kite.api.createTeam('other');
  await kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
  // A paused peer: its deliveries stay pending, so the numbers below hold still.
  acmePeerId = expectStatus(await kite.api.post('/v1/teams/acme/peers', {
    instanceId: 'kite-far', url: 'https://localhost:9', scopes: ['*'], enabled: false, outboundKey: peerKey(), inboundKey: peerKey(),
  }), 201).body.id;
  expectStatus(await kite.api.post('/v1/teams/other/peers', { instanceId: 'kite-other', url: 'https://localhost:9', scopes: ['*'], enabled: false }), 201);
});

afterAll(async () => {
  for (const c of clients) c.socket.terminate();
  await kite?.close();
  await db?.drop();
});

describe('status page - served files', () => {
  it('status page - /ui, its script and style are served without credentials, with a strict content security policy', async () => {
    const api = kite.api.as(undefined);
    const page = await api.get('/ui');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(page.body).toContain('<script type="module" src="/ui/status.js">');
    const script = await api.get('/ui/status.js');
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.body).toContain("new WebSocket(url)");
    expect((await api.get('/ui/status.css')).headers.get('content-type')).toBe('text/css; charset=utf-8');
    // The socket's path without an upgrade says so.
    expect((await api.get('/ui/live')).status).toBe(426);
  });
});

describe('status page - the live socket', () => {
  it('status page - a wrong token and an agent key are closed with 1008 and see nothing', async () => {
    const wrong = client('kite_not-a-key');
    expect(await wrong.closed()).toEqual({ code: 1008, reason: 'unauthorized' });
    const agent = client(acme.agentKey);
    expect(await agent.closed()).toEqual({ code: 1008, reason: 'forbidden' });
    expect([...wrong.frames, ...agent.frames]).toEqual([]);
  });

  it('status page - the admin token sees every team and the node\'s listener count; a team admin key only its team', async () => {
    const admin = client(ADMIN_TOKEN);
    const all = await admin.waitFor(() => admin.snapshots()[0], 'a snapshot');
    expect(admin.frames[0]).toEqual({ type: 'hello', team: null });
    expect(all.instance).toEqual({ instanceId: 'kite-local', publicUrl: 'http://kite.test', version: expect.any(String) });
    expect(all.teams.map((t) => t.slug)).toEqual(['acme', 'other']);
    expect(all.listeners).toBe(0);

    const team = client(acme.adminKey);
    const mine = await team.waitFor(() => team.snapshots()[0], 'a snapshot');
    expect(team.frames[0]).toEqual({ type: 'hello', team: 'acme' });
    expect(mine.teams.map((t) => t.slug)).toEqual(['acme']);
    expect(mine.teams[0]!.peers.map((p) => p.instanceId)).toEqual(['kite-far']);
    expect(mine.listeners).toBeNull();
    expect(JSON.stringify(mine)).not.toContain('kite-other');
  });

  it('status page - a new event reaches the open page as a new snapshot, and a revoked key is closed with 1008', async () => {
    const key = expectStatus(await kite.api.post('/v1/teams/acme/keys', { name: 'status-viewer', role: 'admin' }), 201).body;
    const team = client(key.key);
    const first = await team.waitFor(() => team.snapshots()[0], 'a snapshot');
    const before = first.teams[0]!.peers[0]!.pending;
    await sendStripe(kite.url, 'acme', 'stripe');
    await team.waitFor(() => team.snapshots().find((s) => s.teams[0]!.peers[0]!.pending === before + 1), 'the pending count to grow');
    expectStatus(await kite.api.delete(`/v1/teams/acme/keys/${key.id}`), 204);
    expect(await team.closed()).toEqual({ code: 1008, reason: 'key revoked' });
  });
});

describe('status page - snapshot numbers', () => {
  it('status page - counts, state, last error, the oldest pending age and deliveries per minute come from the database', async () => {
    const acmeId = (await db.query<{ id: number }>("SELECT id FROM teams WHERE slug = 'acme'"))[0]!.id;
    for (let i = 0; i < 4; i++) await sendStripe(kite.url, 'acme', 'stripe');
    const rows = await db.query<{ id: number }>('SELECT id FROM federation_deliveries WHERE peer_id = $1 ORDER BY id', [acmePeerId]);
    expect(rows.length).toBeGreaterThanOrEqual(5); // with the one the test above sent
    // As if the actor had delivered three of them, two in this minute and one 3 minutes before,
    // and held one (a mark keeps `peers.delivered` and `peer_delivery_minutes`, migration 0005);
    // the oldest pending one was queued 2 minutes ago.
    await db.query(`UPDATE federation_deliveries SET status = 'delivered', delivered_at = now() WHERE id = ANY ($1)`, [[rows[0]!.id, rows[1]!.id, rows[2]!.id]]);
    await db.query('UPDATE peers SET delivered = 3 WHERE id = $1', [acmePeerId]);
    await db.query(`INSERT INTO peer_delivery_minutes (peer_id, minute, delivered)
      VALUES ($1, date_trunc('minute', now()), 2), ($1, date_trunc('minute', now()) - interval '3 minutes', 1),
             ($1, date_trunc('minute', now()) - interval '30 minutes', 9)`, [acmePeerId]);
    await db.query(`UPDATE federation_deliveries SET status = 'dead_lettered' WHERE id = $1`, [rows[3]!.id]);
    await db.query(`UPDATE federation_deliveries SET created_at = now() - interval '2 minutes' WHERE id = $1`, [rows[4]!.id]);
    await db.query(`UPDATE peers SET state = 'backing-off', attempts = 3, last_error = 'connect ECONNREFUSED' WHERE id = $1`, [acmePeerId]);
    const pending = rows.length - 4;

    const pool = createTestPool(db.url, 2);
    const snapshot = await buildStatusSnapshot({
      pool,
      instance: { instanceId: 'kite-local', publicUrl: 'http://kite.test', version: '0' },
      listeners: () => ({ count: 7, teamIds: [acmeId] }),
    }, { kind: 'team', teamId: acmeId } satisfies StatusScope).finally(() => pool.end());
    const peer = snapshot.teams[0]!.peers[0]!;
    expect(peer).toMatchObject({ id: acmePeerId, state: 'backing-off', attempts: 3, enabled: false, lastError: 'connect ECONNREFUSED', pending, delivered: 3, deadLettered: 1 });
    expect(peer.deliveredPerMinute).toHaveLength(RATE_MINUTES);
    expect(peer.deliveredPerMinute.at(-1)).toBe(2); // this minute
    expect(peer.deliveredPerMinute.at(-4)).toBe(1); // 3 minutes before
    expect(peer.deliveredPerMinute.reduce((a, b) => a + b, 0)).toBe(3); // the 30-minute-old count is outside the window
    expect(peer.oldestPendingSeconds).toBeGreaterThanOrEqual(120);
    expect(peer.oldestPendingSeconds).toBeLessThan(180);
    expect(snapshot.teams[0]!.listening).toBe(true);
    expect(snapshot.listeners).toBeNull(); // a team's view does not count other teams' listeners
  });
});
