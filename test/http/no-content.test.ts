/**
 * A 204 (every `DELETE`, contract §3) is a bare status line and headers: no `Content-Length`
 * (RFC 9110 forbids it on a 204) and no body, on a connection that stays open for the next
 * request. uWebSockets.js's `endWithoutBody(undefined, false)` wrote `Content-Length:
 * 9223372036854775808` and dropped the connection: undici's `body.text()` threw a length mismatch
 * and keep-alive clients lost the socket.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ADMIN_TOKEN, startTestKite, type TestKite } from '../support/kite.js';

let db: TestDatabase;
let kite: TestKite;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  expect((await kite.api.post('/v1/teams', { slug: 'acme' })).status).toBe(201);
});

afterAll(async () => {
  agent.destroy();
  await kite?.close();
  await db?.drop();
});

async function newKey(): Promise<string> {
  return (await kite.api.post('/v1/teams/acme/keys', { name: `k-${Math.random().toString(36).slice(2)}`, role: 'agent' })).body.id;
}

function send(method: string, path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.request(kite.url + path, { agent, method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => setImmediate(() => resolve({ status: res.statusCode!, headers: res.headers, body, socket: req.socket! })));
    });
    req.on('error', reject);
    req.end();
  });
}

it('http - a DELETE answers 204 without Content-Length or body, and the keep-alive connection serves the next request', async () => {
  const deleted = await send('DELETE', `/v1/teams/acme/keys/${await newKey()}`);
  expect(deleted.status).toBe(204);
  expect(deleted.headers['content-length']).toBeUndefined();
  expect(deleted.body).toBe('');
  const next = await send('GET', '/healthz');
  expect(next.status).toBe(200);
  expect(next.socket).toBe(deleted.socket);
  expect(deleted.socket.destroyed).toBe(false);
});

it('http - undici reads a 204\'s (empty) body without a length mismatch', async () => {
  const answer = await undiciRequest(`${kite.url}/v1/teams/acme/keys/${await newKey()}`, { method: 'DELETE', headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(answer.statusCode).toBe(204);
  await expect(answer.body.text()).resolves.toBe('');
});
