/**
 * One Kite node as a real child process (`node dist/src/cli/main.js serve`) serving HTTPS, that
 * the harness can kill -9 and start again on the same port and database.
 *
 * States: stopped → starting → running → (kill9 | terminate) → stopped → starting … A restart keeps
 * the port, so peers, the proxy and listeners find the node where it was, as behind a fixed
 * address in production.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request, type Agent } from 'undici';
import type { Build } from './paths.js';
import type { TlsFiles } from './tls-files.js';

export interface NodeSpec {
  /** For messages: `a1`, `b1`. */
  readonly name: string;
  readonly instanceId: string;
  readonly publicUrl: string;
  readonly databaseUrl: string;
  readonly port: number;
  readonly adminToken: string;
  readonly tls: TlsFiles;
  readonly build: Build;
}

const READY_TIMEOUT_MS = 30_000;

export class KiteNode {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  /** What the harness asked of the running child: any exit but these is a crash. */
  private expecting: 'running' | 'killed' | 'clean exit' = 'running';
  private tail = '';
  /** Exits the harness did not cause (a crash), with the output just before. */
  readonly crashes: string[] = [];

  constructor(
    readonly spec: NodeSpec,
    private readonly agent: Agent,
  ) {}

  get name(): string {
    return this.spec.name;
  }

  /** https://localhost:<port>: the certificate names localhost. */
  get url(): string {
    return `https://localhost:${this.spec.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Starts the node and resolves with the milliseconds until /readyz answered 200. */
  async start(): Promise<number> {
    if (this.child) throw new Error(`${this.name} is already running`);
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', this.spec.build.orphanGuard, this.spec.build.cli, 'serve'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        DATABASE_URL: this.spec.databaseUrl,
        KITE_INSTANCE_ID: this.spec.instanceId,
        KITE_PUBLIC_URL: this.spec.publicUrl,
        KITE_HOST: '127.0.0.1',
        KITE_PORT: String(this.spec.port),
        KITE_ADMIN_TOKEN: this.spec.adminToken,
        KITE_TLS_CERT_FILE: this.spec.tls.certFile,
        KITE_TLS_KEY_FILE: this.spec.tls.keyFile,
        KITE_FEDERATION_CA_FILE: this.spec.tls.caFile,
        KITE_LOG_LEVEL: process.env['KITE_CHAOS_LOG_LEVEL'] ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    const keep = (chunk: Buffer) => {
      this.tail = (this.tail + chunk.toString('utf8')).slice(-6000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    this.expecting = 'running';
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.child = undefined;
        const fine = this.expecting === 'killed' || (this.expecting === 'clean exit' && code === 0);
        if (!fine) this.crashes.push(`${this.name} exited (code ${code}, signal ${signal}${this.expecting === 'clean exit' ? ' after SIGTERM' : ''}):\n${this.tail}`);
        resolve();
      });
    });
    await this.waitReady(child, started);
    return Date.now() - started;
  }

  /** SIGKILL: no shutdown code runs, in-flight requests and transactions are cut wherever they are. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expecting = 'killed';
    child.kill('SIGKILL');
    await this.exited;
  }

  /**
   * SIGTERM: the graceful stop (drain ingest, hand its peers over). An exit code other than 0, or
   * no exit within 15 s (then SIGKILL), is recorded as a crash.
   */
  async terminate(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.expecting = 'clean exit';
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.kill('SIGTERM');
    await this.exited;
    clearTimeout(timer);
  }

  private async waitReady(child: ChildProcess, started: number): Promise<void> {
    for (;;) {
      if (this.child !== child) throw new Error(`${this.name} exited during start:\n${this.tail}`);
      try {
        const answer = await request(`${this.url}/readyz`, { dispatcher: this.agent, signal: AbortSignal.timeout(1000) });
        await answer.body.text();
        if (answer.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() - started > READY_TIMEOUT_MS) {
        await this.kill9();
        throw new Error(`${this.name} was not ready within ${READY_TIMEOUT_MS} ms:\n${this.tail}`);
      }
      // Polling is the only way to know: the node says nothing else when it is ready.
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}
