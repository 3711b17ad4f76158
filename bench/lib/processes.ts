/**
 * Child processes for servers under test, and cleanup that always runs: on normal exit, on error,
 * and on Ctrl-C/SIGTERM (children are killed, databases dropped, then the process exits).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];
let handlersInstalled = false;

/** Registers fn to run at cleanup (last registered runs first); returns a function that unregisters it. */
export function onCleanup(fn: Cleanup): () => void {
  installSignalHandlers();
  cleanups.unshift(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export async function runCleanups(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.shift()!;
    try {
      await fn();
    } catch (err) {
      process.stderr.write(`cleanup failed: ${(err as Error).message}\n`);
    }
  }
}

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) process.exit(130); // second Ctrl-C: give up at once
    signalled = true;
    process.stderr.write(`\n${signal}: stopping servers and dropping bench databases…\n`);
    void runCleanups().finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** The compiled bench directory (dist/bench/). */
export const DIST_BENCH = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface Child {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Last lines the child wrote, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildOptions {
  readonly name: string;
  /** Arguments to `node` (flags, script, script args). */
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  readonly port: number;
  /** Polled until it answers 200. */
  readonly readyPath: string;
  readonly readyTimeoutMs?: number;
  /** The child serves HTTPS with a certificate from this CA (PEM): `url` is https://localhost:<port>. */
  readonly ca?: string;
}

export async function startChild(options: ChildOptions): Promise<Child> {
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  const proc: ChildProcess = spawn(process.execPath, [...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  let exitedNow = false;
  void exited.then(() => (exitedNow = true));
  const stop = async (graceMs = 15_000) => {
    if (exitedNow) return;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const unregister = onCleanup(() => stop(5_000));
  // A certificate names localhost (and 127.0.0.1); https URLs use the name, as peers do.
  const url = options.ca ? `https://localhost:${options.port}` : `http://127.0.0.1:${options.port}`;
  const dispatcher = options.ca ? new Agent({ connect: { ca: options.ca } }) : undefined;
  const child: Child = {
    name: options.name,
    pid: proc.pid!,
    port: options.port,
    url,
    output: () => tail,
    stop: async (graceMs) => {
      unregister();
      await stop(graceMs);
    },
  };
  const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (exitedNow) throw new Error(`${options.name} exited during start:\n${tail}`);
    try {
      const res = dispatcher
        ? await undiciFetch(`${url}${options.readyPath}`, { signal: AbortSignal.timeout(1000), dispatcher })
        : await fetch(`${url}${options.readyPath}`, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) void dispatcher?.close();
      if (res.status === 200) return child;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await child.stop(2000);
      throw new Error(`${options.name} did not become ready within ${options.readyTimeoutMs ?? 30_000} ms:\n${tail}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts one of the baseline servers in dist/bench/servers/ on a free port. */
export async function startBaseline(script: string, env: Record<string, string> = {}): Promise<Child> {
  const port = await freePort();
  return startChild({
    name: script,
    args: [path.join(DIST_BENCH, 'servers', `${script}.js`)],
    env: { ...env, BENCH_PORT: String(port) },
    port,
    readyPath: '/ready',
  });
}
