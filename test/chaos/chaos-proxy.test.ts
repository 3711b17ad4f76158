/**
 * The chaos proxy must do to A's requests what each mode claims, or a "passing" chaos run would
 * prove less than it says. An HTTPS stand-in for B counts what reaches it.
 */
import { readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ChaosProxy } from '../../bench/lib/chaos/chaos-proxy.js';
import { trustingAgent } from '../../bench/lib/chaos/tls-files.js';
import { makeTestTls } from '../support/tls.js';

const tls = makeTestTls();
const agent = trustingAgent(tls);
let reached = 0;
const b = https.createServer({ cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) }, (req, res) => {
  req.resume();
  req.on('end', () => {
    reached++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ items: [{ id: 'e1', seq: 7, duplicate: false }, { id: 'e2', seq: null, duplicate: true }] }));
  });
});
let proxy: ChaosProxy;

beforeAll(async () => {
  await new Promise<void>((resolve) => b.listen(0, '127.0.0.1', resolve));
  proxy = new ChaosProxy(`https://localhost:${(b.address() as AddressInfo).port}`, tls, agent);
  await proxy.start();
});
afterAll(async () => {
  await proxy.stop();
  b.closeAllConnections();
  await new Promise((resolve) => b.close(resolve));
  await agent.close();
  rmSync(tls.dir, { recursive: true, force: true });
});
beforeEach(() => {
  reached = 0;
});

/** A's side of one delivery: the status, or the error its client saw. */
async function send(timeoutMs = 5_000, body = '[{"id":"e1"}]'): Promise<{ status?: number; retryAfter?: string; error?: string; ms: number }> {
  const started = Date.now();
  try {
    const answer = await request(`${proxy.url}/hooks/chaos/kite`, { method: 'POST', body, dispatcher: agent, signal: AbortSignal.timeout(timeoutMs) });
    await answer.body.text();
    return { status: answer.statusCode, retryAfter: answer.headers['retry-after'] as string | undefined, ms: Date.now() - started };
  } catch (err) {
    return { error: (err as Error).message, ms: Date.now() - started };
  }
}

async function eventually(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('chaos proxy', () => {
  it('chaos proxy - pass relays B\'s answer and counts the events B had already', async () => {
    proxy.mode = { kind: 'pass' };
    const before = proxy.duplicatesAtB;
    expect(await send()).toMatchObject({ status: 200 });
    expect(reached).toBe(1);
    expect(proxy.duplicatesAtB - before).toBe(1);
  });

  it('chaos proxy - drop, 5xx and 429 storms never reach B', async () => {
    proxy.mode = { kind: 'drop' };
    const dropped = proxy.counts.dropped;
    expect((await send()).error).toBeDefined(); // on the open keep-alive connection
    const fresh = trustingAgent(tls);
    await expect(request(`${proxy.url}/hooks/chaos/kite`, { method: 'POST', body: '[]', dispatcher: fresh })).rejects.toThrow(); // a new connection
    await fresh.close();
    expect(proxy.counts.dropped - dropped).toBe(2);
    proxy.mode = { kind: 'error5xx' };
    const statuses = [(await send()).status, (await send()).status, (await send()).status];
    expect(statuses.sort()).toEqual([500, 502, 503]);
    proxy.mode = { kind: 'storm429' };
    expect(await send()).toMatchObject({ status: 429, retryAfter: '1' });
    expect(reached).toBe(0);
  });

  it('chaos proxy - reset mid-body: B got the request and answered, A gets an error', async () => {
    proxy.mode = { kind: 'reset-mid-body' };
    const seen = await send();
    expect(seen.status).toBeUndefined();
    expect(seen.error).toBeDefined();
    expect(reached).toBe(1);
  });

  it('chaos proxy - a catch at "answer" holds B\'s 2xx from A until released; at "request" B sees nothing until then', async () => {
    proxy.mode = { kind: 'pass' };
    const caught = proxy.catchNext('answer', 5_000);
    const sent = send();
    const release = await caught;
    expect(release).toBeDefined();
    expect(reached).toBe(1);
    release!();
    expect((await sent).status).toBe(200);

    const early = proxy.catchNext('request', 5_000);
    const second = send();
    const letGo = await early;
    expect(reached).toBe(1);
    letGo!();
    expect((await second).status).toBe(200);
    expect(reached).toBe(2);
    const probeOnly = proxy.catchNext('request', 300);
    expect((await send(5_000, '[]')).status).toBe(200); // a probe is never caught…
    expect(await probeOnly).toBeUndefined(); // …so the catch gives up
  });

  it('chaos proxy - a delay longer than A waits still reaches B: A times out, B has it', async () => {
    proxy.mode = { kind: 'delay', delayMs: 600 };
    const seen = await send(200);
    expect(seen.error, JSON.stringify(seen)).toBeDefined();
    expect(reached).toBe(0);
    await eventually(() => reached === 1, 'the delayed request to reach B');
    const patient = await send();
    expect(patient.status).toBe(200);
    expect(patient.ms).toBeGreaterThanOrEqual(590);
  });
});
