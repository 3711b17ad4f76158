import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { assertFreshBuild, cleanEnv, killLeftovers, KiteProcess, startFakeKite, tempDir, waitFor, type FakeKite } from './helpers.js';

assertFreshBuild();

let fake: FakeKite;
beforeAll(async () => {
  fake = await startFakeKite();
});
afterAll(() => fake.close());
beforeEach(() => {
  fake.upgrades.length = 0;
});
afterEach(killLeftovers);

const event = (seq: number, extra: Record<string, unknown> = {}) => ({
  specversion: '1.0',
  id: `evt_${seq}`,
  source: 'http://localhost:8787/hooks/acme/stripe',
  type: 'com.stripe.payment_intent.succeeded',
  data: { seq, nested: { ok: true } },
  ...extra,
});
const send = (ws: WebSocket, frame: unknown) => ws.send(JSON.stringify(frame));
const eventFrame = (seq: number) => ({ type: 'event', seq, event: event(seq) });
const query = (i: number) => new URL(fake.upgrades[i]!.url, 'http://x').searchParams;

function listen(dir: string, extra: string[] = [], opts: { readStdout?: boolean } = {}): KiteProcess {
  return new KiteProcess(['listen', '--team', 'acme', '--url', fake.url, '--token', 'tok_listen', ...extra], {
    cwd: dir,
    env: cleanEnv(dir),
    ...opts,
  });
}

describe('cli listen', () => {
  it('listen - prints events as compact JSON lines and resumes with after=<last seq> when the connection drops', async () => {
    const dir = tempDir();
    fake.upgrade = (_req, i) => ({
      accept: (ws) => {
        if (i === 0) {
          send(ws, { type: 'ready', head: 5 });
          send(ws, eventFrame(6));
          send(ws, eventFrame(7));
          // Drop only once both lines are out, so the reconnect must resume after 7.
          void waitFor(() => kite.lines.length === 2, 'two lines').then(() => ws.terminate());
        } else {
          send(ws, { type: 'ready', head: 7 });
          send(ws, eventFrame(7)); // a repeat at the seam must not be printed twice
          send(ws, eventFrame(8));
        }
      },
    });
    const kite = listen(dir, ['--types', 'stripe.*', '--types', 'com.kite.agent.message']);
    await waitFor(() => kite.lines.length === 3, 'three events');
    expect(await kite.kill('SIGTERM')).toBe(0);

    expect(kite.lines).toEqual([6, 7, 8].map((seq) => JSON.stringify(event(seq))));
    expect(fake.upgrades).toHaveLength(2);
    for (const up of fake.upgrades) {
      expect(up.url.startsWith('/v1/teams/acme/listen?')).toBe(true);
      expect(up.headers['authorization']).toBe('Bearer tok_listen');
    }
    expect(query(0).get('types')).toBe('stripe.*,com.kite.agent.message');
    expect(query(0).has('after')).toBe(false);
    expect(query(1).get('after')).toBe('7');
    expect(query(1).get('types')).toBe('stripe.*,com.kite.agent.message');
    expect(kite.stderr).toMatch(/connection closed \(1006\); reconnecting in \d\.\d s/);
    expect(readFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'utf8')).toBe('8\n');
  });

  it('listen - a restart resumes after the saved cursor, and --after overrides it', async () => {
    const dir = tempDir();
    const cursorFile = path.join(dir, 'my.cursor');
    writeFileSync(cursorFile, '41\n');
    fake.upgrade = () => ({
      accept: (ws) => {
        send(ws, { type: 'ready', head: 42 });
        send(ws, eventFrame(42));
      },
    });
    const first = listen(dir, ['--cursor-file', cursorFile]);
    await waitFor(() => first.lines.length === 1, 'event 42');
    expect(await first.kill('SIGINT')).toBe(0);
    expect(query(0).get('after')).toBe('41');
    expect(readFileSync(cursorFile, 'utf8')).toBe('42\n');

    const second = listen(dir, ['--cursor-file', cursorFile]);
    await waitFor(() => fake.upgrades.length === 2, 'second connection');
    expect(query(1).get('after')).toBe('42');
    expect(await second.kill()).toBe(0);

    const replay = listen(dir, ['--cursor-file', cursorFile, '--after', '10']);
    await waitFor(() => fake.upgrades.length === 3, 'third connection');
    expect(query(2).get('after')).toBe('10');
    expect(await replay.kill()).toBe(0);
  });

  it('listen - with no saved position it remembers the head, so a restart does not skip what arrives meanwhile', async () => {
    const dir = tempDir();
    fake.upgrade = () => ({ accept: (ws) => send(ws, { type: 'ready', head: 7 }) });
    const kite = listen(dir);
    await waitFor(() => kite.stderr.includes('head 7'), 'ready');
    expect(await kite.kill()).toBe(0);
    expect(kite.lines).toEqual([]);
    expect(readFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'utf8')).toBe('7\n');
  });

  it('listen - the cursor holds the last event printed after a burst and a SIGTERM', async () => {
    const dir = tempDir();
    fake.upgrade = () => ({
      accept: (ws) => {
        send(ws, { type: 'ready', head: 0 });
        for (let seq = 1; seq <= 500; seq++) send(ws, eventFrame(seq));
      },
    });
    const kite = listen(dir, ['--after', '0']);
    await waitFor(() => kite.lines.length === 500, '500 events');
    expect(await kite.kill()).toBe(0);
    expect(readFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'utf8')).toBe('500\n');
  });

  it('listen - a close with 1008 (key revoked) is final: one line, exit 1, no reconnect', async () => {
    const dir = tempDir();
    fake.upgrade = () => ({
      accept: (ws) => {
        send(ws, { type: 'ready', head: 3 });
        ws.close(1008, 'key revoked');
      },
    });
    const kite = listen(dir, ['--quiet']);
    expect(await kite.exited).toBe(1);
    expect(kite.lines).toEqual([]);
    expect(kite.stderr).toBe('kite: Kite closed the connection (1008 policy violation: key revoked)\n');
    expect(fake.upgrades).toHaveLength(1);
  });

  it("listen - an upgrade refused with 401 is final and shows Kite's message", async () => {
    const dir = tempDir();
    fake.upgrade = () => ({ reject: { status: 401, body: { error: { code: 'unauthorized', message: 'Missing or invalid credentials.' } } } });
    const kite = listen(dir, ['--quiet']);
    expect(await kite.exited).toBe(1);
    expect(kite.stderr).toBe('kite: HTTP 401 unauthorized: Missing or invalid credentials.\n');
    expect(fake.upgrades).toHaveLength(1);
    expect(existsSync(path.join(dir, '.kite', 'cursors'))).toBe(false);
  });

  it('listen - an upgrade refused with 503 is retried until Kite is back', async () => {
    const dir = tempDir();
    fake.upgrade = (_req, i) =>
      i === 0
        ? { reject: { status: 503, body: { error: { code: 'database_unavailable', message: 'The database is unavailable; retry later.' } } } }
        : { accept: (ws) => (send(ws, { type: 'ready', head: 0 }), send(ws, eventFrame(1))) };
    const kite = listen(dir, ['--after', '0']);
    await waitFor(() => kite.lines.length === 1, 'event after retry');
    expect(await kite.kill()).toBe(0);
    expect(fake.upgrades).toHaveLength(2);
    expect(kite.stderr).toContain('HTTP 503 database_unavailable: The database is unavailable; retry later.; reconnecting in');
  });

  it('listen - a consumer that does not read makes it stop reading the socket rather than buffer without bound', async () => {
    const dir = tempDir();
    const COUNT = 300;
    const big = 'x'.repeat(128 * 1024);
    let server: WebSocket | undefined;
    fake.upgrade = () => ({
      accept: (ws) => {
        server = ws;
        send(ws, { type: 'ready', head: 0 });
        for (let seq = 1; seq <= COUNT; seq++) send(ws, { type: 'event', seq, event: event(seq, { data: big }) });
      },
    });
    const kite = listen(dir, ['--after', '0'], { readStdout: false });
    const ws = await waitFor(() => server, 'connection');
    // ~38 MiB queued. A client that kept reading would drain it in well under a second; one that
    // respects backpressure leaves most of it waiting on our side for as long as stdout is not read.
    const samples: number[] = [];
    const until = Date.now() + 1500;
    while (Date.now() < until) {
      samples.push(ws.bufferedAmount);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(Math.min(...samples)).toBeGreaterThan(16 * 1024 * 1024);

    kite.readStdout();
    await waitFor(() => kite.lines.length === COUNT, 'all events once stdout is read', 30_000);
    expect(kite.lines.map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(Array.from({ length: COUNT }, (_, i) => `evt_${i + 1}`));
    expect(await kite.kill()).toBe(0);
    expect(readFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'utf8')).toBe(`${COUNT}\n`);
  }, 60_000);

  it('listen - when the reader goes away (| head -n 1) it exits 0 and the cursor covers what was read', async () => {
    const dir = tempDir();
    let server: WebSocket | undefined;
    fake.upgrade = () => ({
      accept: (ws) => {
        server = ws;
        send(ws, { type: 'ready', head: 0 });
        send(ws, eventFrame(1));
      },
    });
    const kite = listen(dir, ['--after', '0']);
    await waitFor(() => kite.lines.length === 1, 'first event');
    kite.child.stdout.destroy(); // the reader is gone: the next writes fail with EPIPE
    for (let seq = 2; seq <= 50; seq++) send(server!, eventFrame(seq));
    expect(await kite.exited).toBe(0);
    expect(kite.stderr).not.toMatch(/Error|at /);
    const saved = Number(readFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'utf8'));
    expect(saved).toBeGreaterThanOrEqual(1);
    expect(saved).toBeLessThan(50);
  });

  it('listen - a cursor file that does not hold a seq stops the start with exit 1', async () => {
    const dir = tempDir();
    mkdirSync(path.join(dir, '.kite', 'cursors'), { recursive: true });
    writeFileSync(path.join(dir, '.kite', 'cursors', 'acme.cursor'), 'garbage');
    const kite = listen(dir);
    expect(await kite.exited).toBe(1);
    expect(kite.stderr).toMatch(/^kite: cursor file .*acme\.cursor does not hold a seq .*delete it or pass --after\n$/);
    expect(fake.upgrades).toHaveLength(0);
  });
});
