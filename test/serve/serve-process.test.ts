/**
 * `kite serve` as a real process, the way `npm start` runs it: on the embedded Postgres in a
 * fresh data dir, then SIGTERM. Needs the build (npm test builds first).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../support/database.js';
import { listen } from '../support/listener.js';

const CLI = path.resolve('dist/src/cli/main.js');
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Served {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stderr: () => string;
  readonly exited: Promise<number | null>;
}

async function serve(env: Record<string, string>): Promise<Served> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { PATH: process.env['PATH'] ?? '', KITE_PORT: String(port), KITE_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kite serve did not start: ${stderr}`)), 60_000);
    const check = () => {
      if (stderr.includes('is listening on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => reject(new Error(`kite serve exited with ${code}: ${stderr}`)));
  });
  return { child, url: `http://127.0.0.1:${port}`, stderr: () => stderr, exited };
}

describe('kite serve', () => {
  it('serve - first start on the embedded Postgres prints the admin token and a curl that works; data survives a restart; SIGTERM closes listeners with 1001 and exits 0', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'kite-serve-'));
    dirs.push(dataDir);
    await chmod(dataDir, 0o755);
    const first = await serve({ KITE_DATA_DIR: dataDir });
    const token = /Admin token[^\n]*\n\s+(\S+)/.exec(first.stderr())?.[1];
    expect(token).toMatch(/^kite_admin_/);
    expect(readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim()).toBe(token);

    // Run the printed curl with a shell, exactly as a user would paste it.
    const curl = first.stderr().slice(first.stderr().indexOf('curl -sS')).split('\n').filter((l) => l.trim()).slice(0, 4).join('\n');
    const listener = await listen(first.url, 'demo', token!);
    const output = await new Promise<string>((resolve, reject) => {
      const sh = spawn('sh', ['-c', curl], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      sh.stdout.on('data', (c: Buffer) => (out += c.toString()));
      sh.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}`))));
    });
    expect(JSON.parse(output)).toMatchObject({ seq: 1, duplicate: false });
    await listener.waitForEvents(1);
    expect(listener.events[0]!.event!['type']).toBe('com.github.issues.opened');

    first.child.kill('SIGTERM');
    expect(await listener.waitForClose(15_000)).toBe(1001);
    expect(await first.exited).toBe(0);
    // The embedded Postgres was stopped cleanly: no postmaster is left holding the data dir.
    expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);

    const second = await serve({ KITE_DATA_DIR: dataDir });
    expect(second.stderr()).not.toContain('Admin token'); // printed once, on the first start only
    const events = await fetch(`${second.url}/v1/teams/demo/events`, { headers: { authorization: `Bearer ${token}` } });
    expect(((await events.json()) as { items: unknown[] }).items).toHaveLength(1);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }, 120_000);

  it('serve - a bad configuration stops the start with one line naming the variable', async () => {
    const child = spawn(process.execPath, [CLI, 'serve'], { env: { PATH: process.env['PATH'] ?? '', KITE_PORT: 'abc' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).not.toBe(0);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('KITE_PORT');
  });

  it('serve and migrate - a DATABASE_URL where no database answers stops the start with one line naming DATABASE_URL and where it points, never the password', async () => {
    const nobody = await freePort();
    for (const command of ['serve', 'migrate']) {
      const env = { PATH: process.env['PATH'] ?? '', DATABASE_URL: `postgres://kite:s3cret-pw@127.0.0.1:${nobody}/kite`, KITE_PORT: '0' };
      const child = spawn(process.execPath, [CLI, command], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code, command).not.toBe(0);
      const lines = stderr.trim().split('\n');
      expect(lines, command).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`DATABASE_URL: cannot use the database at 127\\.0\\.0\\.1:${nobody}/kite: .*ECONNREFUSED`));
      expect(lines[0]).not.toContain('s3cret-pw');
    }
  });

  it('serve - a first start that makes the admin token and then fails (its port taken) still shows the token once; the next start does not', async () => {
    const db = await createTestDatabase();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'kite-serve-'));
    dirs.push(dataDir);
    const taken = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    try {
      const child = spawn(process.execPath, [CLI, 'serve'], { env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url, KITE_DATA_DIR: dataDir, KITE_PORT: String(port), KITE_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      expect(await new Promise<number | null>((resolve) => child.once('exit', resolve))).not.toBe(0);
      expect(stderr).toMatch(/KITE_PORT/);
      const token = /Admin token[^\n]*\n\s+(\S+)/.exec(stderr)?.[1];
      expect(token).toMatch(/^kite_admin_/);
      expect(readFileSync(path.join(dataDir, 'admin-token'), 'utf8').trim()).toBe(token);
      // Shown once: the next (successful) start keeps it and does not print it again.
      const second = await serve({ DATABASE_URL: db.url, KITE_DATA_DIR: dataDir });
      expect(second.stderr()).not.toContain(token!);
      const answer = await fetch(`${second.url}/v1/teams`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"slug":"acme"}' });
      expect(answer.status).toBe(201);
      second.child.kill('SIGTERM');
      await second.exited;
    } finally {
      taken.close();
      await db.drop();
    }
  });

  it('migrate - prints what it applied on stdout, one line each, and its logs on stderr; a second run prints that all is up to date', async () => {
    const db = await createTestDatabase({ empty: true });
    try {
      const run = async () => {
        const child = spawn(process.execPath, [CLI, 'migrate'], { env: { PATH: process.env['PATH'] ?? '', DATABASE_URL: db.url }, stdio: ['ignore', 'pipe', 'pipe'] });
        children.push(child);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
        child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
        const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
        return { code, stdout, stderr };
      };
      const first = await run();
      expect(first.code).toBe(0);
      const lines = first.stdout.trim().split('\n');
      expect(lines.length).toBeGreaterThan(5);
      expect(lines.every((l) => /^applied \d{4}_[a-z0-9_]+\.sql$/.test(l)), first.stdout).toBe(true);
      expect(first.stderr).toContain('migration applied');
      const second = await run();
      expect([second.code, second.stdout]).toEqual([0, 'already up to date\n']);
    } finally {
      await db.drop();
    }
  });

  it('serve - a DATABASE_URL whose server accepts connections and never answers fails the start in about 10 s, naming DATABASE_URL, instead of hanging', async () => {
    const silent = createServer(() => {}); // takes the connection, says nothing
    const port = await new Promise<number>((resolve) => silent.listen(0, '127.0.0.1', () => resolve((silent.address() as { port: number }).port)));
    try {
      const started = Date.now();
      const env = { PATH: process.env['PATH'] ?? '', DATABASE_URL: `postgres://kite@127.0.0.1:${port}/kite`, KITE_PORT: '0' };
      const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^kite: DATABASE_URL: cannot use the database at 127\\.0\\.0\\.1:${port}/kite: .*timeout`))]);
    } finally {
      silent.close();
    }
  }, 30_000);
});
