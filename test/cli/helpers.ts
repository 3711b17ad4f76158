/**
 * Helpers for the CLI tests: run the built `kite` (dist/src/cli/main.js) as a child process with
 * a clean environment, and a fake Kite to point it at.
 *
 * The fake Kite is a tiny real HTTP + WebSocket server on 127.0.0.1 — a stand-in for the real
 * server that lets us test the client alone: it records every request exactly as sent and answers
 * what each test tells it to. The real server has its own tests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const KITE_BIN = path.join(ROOT, 'dist/src/cli/main.js');

/** The tests run the compiled CLI; refuse to test a stale build rather than pass on old code. */
export function assertFreshBuild(): void {
  const stale: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const file = path.join(dir, name);
      if (statSync(file).isDirectory()) walk(file);
      else if (file.endsWith('.ts')) {
        const built = path.join(ROOT, 'dist', path.relative(ROOT, file)).replace(/\.ts$/, '.js');
        if (!existsSync(built) || statSync(built).mtimeMs < statSync(file).mtimeMs) stale.push(path.relative(ROOT, file));
      }
    }
  };
  walk(path.join(ROOT, 'src/cli'));
  if (stale.length) throw new Error(`dist is stale for ${stale.join(', ')}: run 'npx tsc -p tsconfig.build.json' (npm test does)`);
}

const tempDirs: string[] = [];

export function tempDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kite-cli-'));
  tempDirs.push(dir);
  return dir;
}

// Registered in every test file that imports these helpers.
afterAll(() => {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Only PATH is inherited: a developer's KITE_TOKEN must not leak into the tests. */
export function cleanEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env['PATH'] ?? '', HOME: dir, KITE_DATA_DIR: path.join(dir, '.kite'), ...extra };
}

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runKite(args: string[], opts: { cwd: string; env: Record<string, string>; input?: string }): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KITE_BIN, ...args], { cwd: opts.cwd, env: opts.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

export interface RunAgainstFake extends RunResult {
  /** The requests the fake received during the run, in order. */
  readonly sent: Recorded[];
}

/**
 * A runner of the built `kite` against a fake Kite, with a clean env that points it there
 * (KITE_URL, KITE_TOKEN tok_test; `opts.env` overrides): `answer` is what the fake says to every
 * request (or to each, when a function). The fake is given as a getter because test files start
 * it in beforeAll.
 */
export function kiteAgainst(fakeKite: () => FakeKite) {
  return async (args: string[], answer: Answer | ((req: Recorded) => Answer), opts: { env?: Record<string, string>; input?: string; dir?: string } = {}): Promise<RunAgainstFake> => {
    const fake = fakeKite();
    const dir = opts.dir ?? tempDir();
    fake.requests.length = 0;
    fake.answer = typeof answer === 'function' ? answer : () => answer;
    const env = cleanEnv(dir, { KITE_URL: fake.url, KITE_TOKEN: 'tok_test', ...opts.env });
    const result = await runKite(args, { cwd: dir, env, ...(opts.input !== undefined ? { input: opts.input } : {}) });
    return { ...result, sent: [...fake.requests] };
  };
}

const running = new Set<KiteProcess>();

/** For afterEach: a failed test must not leave a listener reconnecting in the background. */
export function killLeftovers(): void {
  for (const p of running) p.child.kill('SIGKILL');
  running.clear();
}

/** A long-running `kite` (listen) whose output is collected as it comes. */
export class KiteProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly lines: string[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;
  private partial = '';

  constructor(args: string[], opts: { cwd: string; env: Record<string, string>; readStdout?: boolean }) {
    this.child = spawn(process.execPath, [KITE_BIN, ...args], { cwd: opts.cwd, env: opts.env });
    this.child.stdin.end();
    this.child.stderr.on('data', (d: Buffer) => (this.stderr += d.toString()));
    running.add(this);
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code) => {
        running.delete(this);
        resolve(code);
      }),
    );
    if (opts.readStdout !== false) this.readStdout();
  }

  /** Start (or resume) consuming stdout; until then the pipe fills up like a slow consumer's. */
  readStdout(): void {
    this.child.stdout.on('data', (d: Buffer) => {
      const parts = (this.partial + d.toString()).split('\n');
      this.partial = parts.pop()!;
      this.lines.push(...parts);
    });
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    this.child.kill(signal);
    return this.exited;
  }
}

/** Poll `check` until it is truthy; fails with `what` after the deadline. */
export async function waitFor<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface Answer {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** What the fake does with a listen upgrade: refuse it with an HTTP answer, or accept it. */
export type UpgradeAnswer = { reject: Answer } | { accept: (ws: WebSocket) => void };

export interface FakeKite {
  readonly url: string;
  readonly requests: Recorded[];
  readonly upgrades: Recorded[];
  answer: (req: Recorded) => Answer;
  upgrade: (req: Recorded, index: number) => UpgradeAnswer;
  close(): Promise<void>;
}

export async function startFakeKite(): Promise<FakeKite> {
  const wss = new WebSocketServer({ noServer: true });
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() };
      fake.requests.push(recorded);
      const a = fake.answer(recorded);
      const body = a.body === undefined ? '' : JSON.stringify(a.body);
      res.writeHead(a.status, { ...(body ? { 'content-type': 'application/json' } : {}), ...a.headers });
      res.end(body);
    });
  });
  server.on('upgrade', (req, socket, head) => {
    const recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' };
    fake.upgrades.push(recorded);
    const decision = fake.upgrade(recorded, fake.upgrades.length - 1);
    if ('reject' in decision) {
      const body = JSON.stringify(decision.reject.body ?? {});
      const extra = Object.entries(decision.reject.headers ?? {}).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      socket.end(
        `HTTP/1.1 ${decision.reject.status} Refused\r\ncontent-type: application/json\r\n${extra}` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => decision.accept(ws));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const fake: FakeKite = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    upgrades: [],
    answer: () => ({ status: 500, body: { error: { code: 'internal_error', message: 'no answer configured' } } }),
    upgrade: () => ({ reject: { status: 500 } }),
    async close() {
      for (const ws of wss.clients) ws.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
