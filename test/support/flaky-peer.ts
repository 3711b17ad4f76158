/**
 * A flaky HTTPS proxy in front of a Kite instance: a stand-in for a peer's load balancer, so a
 * federation test can make the receiving side answer 429, 400 or anything else on demand while
 * the real instance behind it stays untouched.
 *
 * Modes: every request is first recorded (time, headers, the CloudEvents it carries), then
 * `decide(request, index)` answers it itself (`{ status, headers }`) or lets it through to the
 * target (`'pass'`, the default), whose answer is relayed unchanged. It serves the test
 * certificate from `makeTestTls()`, so Kite (trusting the test CA) reaches it like any peer.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request } from 'undici';
import type { TestTls } from './tls.js';

export interface SeenRequest {
  /** Date.now() when the whole body had arrived. */
  readonly at: number;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** The events in the body: one for a single event, the array for a batch, [] for a probe. */
  readonly events: Record<string, any>[];
  /** The status the sender got back. */
  status?: number;
}

export type Verdict = 'pass' | { status: number; headers?: Record<string, string>; body?: string };

export class FlakyPeer {
  readonly requests: SeenRequest[] = [];
  /** Changed by tests at will: how the next requests are answered. */
  decide: (request: SeenRequest, index: number) => Verdict = () => 'pass';
  /** While set, every request is recorded and then held until the promise settles. */
  hold: Promise<void> | undefined;
  private server: https.Server | undefined;
  private readonly agent: Agent;
  private readonly waiters = new Set<() => void>();
  port = 0;

  constructor(
    /** The real instance behind the proxy, e.g. https://localhost:1234. */
    private readonly target: string,
    private readonly tls: TestTls,
  ) {
    this.agent = new Agent({ connect: { ca: readFileSync(tls.caFile, 'utf8') } });
  }

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  /** Events that reached the target and were answered 2xx, in the order they were sent. */
  get passedEventIds(): string[] {
    return this.requests.filter((r) => r.status !== undefined && r.status >= 200 && r.status < 300).flatMap((r) => r.events.map((e) => e['id'] as string));
  }

  async start(): Promise<string> {
    this.server = https.createServer({ cert: readFileSync(this.tls.certFile), key: readFileSync(this.tls.keyFile) }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        void this.handle(req.url ?? '/', req.method ?? 'POST', req.headers, Buffer.concat(chunks), res);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this.url;
  }

  /** Resolves when predicate() holds (checked after every request); rejects after timeoutMs. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`proxy: timed out waiting for ${what}; saw ${this.requests.length} requests`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    if (this.server?.listening) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
    await this.agent.close().catch(() => {});
  }

  private async handle(path: string, method: string, headers: IncomingHttpHeaders, body: Buffer, res: import('node:http').ServerResponse): Promise<void> {
    const seen: SeenRequest = { at: Date.now(), path, headers, events: parseEvents(body) };
    const index = this.requests.push(seen) - 1;
    try {
      if (this.hold) {
        for (const waiter of [...this.waiters]) waiter(); // "a request arrived" is worth a check
        await this.hold;
      }
      const verdict = this.decide(seen, index);
      if (verdict !== 'pass') {
        seen.status = verdict.status;
        res.writeHead(verdict.status, { 'content-type': 'application/json', ...verdict.headers });
        res.end(verdict.body ?? JSON.stringify({ error: { code: 'proxy', message: `The proxy answered ${verdict.status}.` } }));
        return;
      }
      const forwarded: Record<string, string> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (typeof value === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(name)) forwarded[name] = value;
      }
      const answer = await request(this.target + path, { method: method as 'POST', headers: forwarded, body, dispatcher: this.agent });
      const text = await answer.body.text();
      const relayed: Record<string, string> = { 'content-type': String(answer.headers['content-type'] ?? 'application/json') };
      if (answer.headers['retry-after'] !== undefined) relayed['retry-after'] = String(answer.headers['retry-after']);
      seen.status = answer.statusCode;
      res.writeHead(answer.statusCode, relayed);
      res.end(text);
    } catch (err) {
      // The target is down: what a load balancer says then.
      seen.status = 502;
      res.writeHead(502, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'bad_gateway', message: String(err) } }));
    } finally {
      for (const waiter of [...this.waiters]) waiter();
    }
  }
}

function parseEvents(body: Buffer): Record<string, any>[] {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (Array.isArray(parsed)) return parsed as Record<string, any>[];
    return parsed && typeof parsed === 'object' ? [parsed as Record<string, any>] : [];
  } catch {
    return [];
  }
}
