/**
 * How the HTTP server lets go of its clients on `kite.close()`: a request in flight still gets
 * its answer, and no connection, idle keep-alive ones included, outlives the close. Clients use
 * node:http with a keep-alive Agent, the way a webhook sender or a peer would pool connections.
 */
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_TOKEN, startTestKite, type TestKite } from '../support/kite.js';

let db: TestDatabase;
const agents: http.Agent[] = [];
const kites: TestKite[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  for (const agent of agents) agent.destroy();
  for (const kite of kites) await kite.close();
  await db?.drop();
});

async function start(): Promise<{ kite: TestKite; agent: http.Agent }> {
  const kite = await startTestKite(db.url);
  kites.push(kite);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return { kite, agent };
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
  /** The connection it came on, once the agent has it back as idle (or it was closed). */
  readonly socket: Socket;
}

/** One request through `agent`; resolves after the whole answer, with the agent holding the socket again. */
function request(agent: http.Agent, url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent, method: options.method ?? 'GET', headers: options.headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const socket = req.socket!;
        const answer = { status: res.statusCode!, headers: res.headers, body, socket };
        // The agent takes a kept-alive socket back on a later tick ('free'); a closing one never comes back.
        if (socket.destroyed || res.headers['connection'] === 'close') resolve(answer);
        else agent.once('free', () => resolve(answer));
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Resolves when `socket` is closed; fails the test after `ms`. */
function closedWithin(socket: Socket, ms: number): Promise<void> {
  if (socket.destroyed && socket.closed) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the connection was still open ${ms} ms after kite.close()`)), ms);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

describe('server shutdown', () => {
  it('server - close() closes an idle keep-alive connection', async () => {
    const { kite, agent } = await start();
    const answer = await request(agent, `${kite.url}/healthz`);
    expect(answer.status).toBe(200);
    // Kept alive and idle in the agent's pool: what a client would reuse for its next request.
    expect(answer.headers['connection']).not.toBe('close');
    expect(answer.socket.destroyed).toBe(false);
    expect(Object.values(agent.freeSockets).flat()).toContain(answer.socket);
    const closed = closedWithin(answer.socket, 5_000);
    await kite.close();
    await closed;
  });

  it('server - a client that goes away in the middle of its body does not hold close() up', async () => {
    const { kite } = await start();
    const url = new URL(kite.url);
    // Half a body, then gone: the server read part of it and will never see the rest.
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => {
        socket.write('POST /v1/teams HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"slug":');
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, 100);
      });
      socket.on('error', reject);
    });
    const started = Date.now();
    await Promise.race([kite.close(), new Promise((_, reject) => setTimeout(() => reject(new Error('kite.close() still waiting 10 s later')), 10_000))]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('server - a request in flight when close() starts is answered, with connection: close, before its connection is closed', async () => {
    const { kite, agent } = await start();
    // The connection is open and known to the server before the request under test.
    expect((await request(agent, `${kite.url}/healthz`)).status).toBe(200);
    // Hold the request in the database: its INSERT waits for this lock, so it is in flight for sure.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE teams IN EXCLUSIVE MODE');
      const answered = request(agent, `${kite.url}/v1/teams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ slug: 'late' }),
      });
      await waitForLockWaiter(blocker, 'teams');
      const closing = kite.close();
      await blocker.query('COMMIT');
      const answer = await answered;
      expect(answer.status, answer.body).toBe(201);
      expect(answer.headers['connection']).toBe('close');
      await closedWithin(answer.socket, 5_000);
      await closing;
    } finally {
      await blocker.end();
    }
    const [row] = await db.query<{ n: number }>("SELECT count(*)::int AS n FROM teams WHERE slug = 'late'");
    expect(row!.n).toBe(1);
  });
});

/** Polls (every 20 ms, for up to 10 s) until some backend waits for a lock on `table`. */
async function waitForLockWaiter(client: pg.Client, table: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await client.query('SELECT 1 FROM pg_locks WHERE relation = $1::regclass AND NOT granted', [table]);
    if (rows.length > 0) return;
    if (Date.now() > deadline) throw new Error(`no request waited for the lock on ${table}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
