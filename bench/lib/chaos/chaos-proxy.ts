/**
 * The flaky network between instance A and its peer B: an HTTPS proxy (the test certificate, so
 * A trusts it like any peer) registered on A as B's URL, forwarding to B's node.
 *
 * Modes, switched by the fault schedule:
 * - `pass`: forward and relay B's answer unchanged;
 * - `drop`: new TCP connections are reset (RST) before the TLS handshake, and requests on open
 *   ones have their connection closed before B sees them;
 * - `delay`: hold each request `delayMs`, then forward it — even when A has given up by then
 *   (timeout), as a load balancer would, so B may store what A will send again;
 * - `error5xx`: answer 500, 502 or 503 without forwarding;
 * - `storm429`: answer 429 with `Retry-After: 1` without forwarding;
 * - `reset-mid-body`: forward, let B store the events and answer 200, then send A the status line
 *   and half of B's body and cut the connection (a TLS socket cannot send a bare RST; the close
 *   comes short of Content-Length, which A's client reports the same way): A cannot know B has
 *   them.
 * - `swallow`: answer 200 without forwarding — a broken peer that loses what it acknowledged.
 *   Never in a random schedule: the negative control uses it to show the checker sees a loss.
 * While B's node is down, forwarding fails and the proxy answers 502.
 *
 * `catchNext(stage)` holds one request so the harness can kill A exactly there: at `request`,
 * before B sees it (A's delivery is in flight), or at `answer`, once B has stored it and answered
 * 2xx but before A hears so (A cannot mark the delivery done). Released, a held request goes on.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { request, type Agent } from 'undici';
import type { TlsFiles } from './tls-files.js';

export type ProxyMode =
  | { readonly kind: 'pass' }
  | { readonly kind: 'drop' }
  | { readonly kind: 'delay'; readonly delayMs: number }
  | { readonly kind: 'error5xx' }
  | { readonly kind: 'storm429' }
  | { readonly kind: 'reset-mid-body' }
  | { readonly kind: 'swallow' };

export type CatchStage = 'request' | 'answer';

/** A request held by catchNext: let it go on (to B, or its answer to A). */
export type Release = () => void;

export type ProxyOutcome = 'passed' | 'dropped' | 'delayed' | 'error5xx' | 'storm429' | 'resetMidBody' | 'swallowed' | 'upstreamDown';

const HOP_BY_HOP = new Set(['host', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);

export class ChaosProxy {
  mode: ProxyMode = { kind: 'pass' };
  /** Requests handled, by what happened to them. */
  readonly counts: Record<ProxyOutcome, number> = { passed: 0, dropped: 0, delayed: 0, error5xx: 0, storm429: 0, resetMidBody: 0, swallowed: 0, upstreamDown: 0 };
  private server: https.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private statusTurn = 0;
  private catcher: { stage: CatchStage; caught: (release: Release) => void } | undefined;
  /** Events B answered `duplicate: true`: re-sent by A after B had stored them (B's dedup at work). */
  duplicatesAtB = 0;

  constructor(
    /** B's node, e.g. https://localhost:1234. */
    private readonly target: string,
    private readonly tls: TlsFiles,
    private readonly agent: Agent,
  ) {}

  get url(): string {
    return `https://localhost:${this.port}`;
  }

  async start(): Promise<string> {
    const server = https.createServer({ cert: readFileSync(this.tls.certFile), key: readFileSync(this.tls.keyFile) }, (req, res) => {
      void this.handle(req, res);
    });
    server.on('connection', (socket: Socket) => {
      if (this.mode.kind === 'drop') {
        this.counts.dropped++;
        socket.resetAndDestroy();
        return;
      }
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    // A reset mid-handshake or mid-body is the point here, not an error of the proxy.
    server.on('tlsClientError', () => {});
    server.on('clientError', (_err, socket) => socket.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    if (this.server?.listening) await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  /**
   * Resolves with a release function when the next request reaches `stage` (in `pass` mode), or
   * with undefined after `timeoutMs` when none did (A had nothing to send, or B was down).
   */
  catchNext(stage: CatchStage, timeoutMs: number): Promise<Release | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.catcher = undefined;
        resolve(undefined);
      }, timeoutMs);
      this.catcher = {
        stage,
        caught: (release) => {
          clearTimeout(timer);
          resolve(release);
        },
      };
    });
  }

  /** Holds the request here when a catch for this stage is armed. */
  private async hold(stage: CatchStage): Promise<void> {
    const catcher = this.catcher;
    if (catcher?.stage !== stage) return;
    this.catcher = undefined;
    await new Promise<void>((release) => catcher.caught(release));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req).catch(() => undefined);
    if (body === undefined) return; // the sender went away mid-request
    const mode = this.mode;
    switch (mode.kind) {
      case 'drop':
        this.counts.dropped++;
        req.socket.destroy();
        return;
      case 'error5xx': {
        this.counts.error5xx++;
        const status = [500, 502, 503][this.statusTurn++ % 3]!;
        answer(res, status, {}, JSON.stringify({ error: { code: 'chaos', message: `The chaos proxy answered ${status}.` } }));
        return;
      }
      case 'storm429':
        this.counts.storm429++;
        answer(res, 429, { 'retry-after': '1' }, JSON.stringify({ error: { code: 'rate_limited', message: 'The chaos proxy is storming.' } }));
        return;
      case 'swallow':
        this.counts.swallowed++;
        answer(res, 200, {}, JSON.stringify({ items: [] }));
        return;
      case 'delay':
        this.counts.delayed++;
        await new Promise((resolve) => setTimeout(resolve, mode.delayMs));
        break;
      case 'reset-mid-body':
      case 'pass':
        break;
    }
    // A probe (an empty batch) carries no events: catching it would aim a kill at nothing.
    const carriesEvents = body.toString('utf8').trim() !== '[]';
    if (mode.kind === 'pass' && carriesEvents) await this.hold('request');
    let upstream: { status: number; headers: Record<string, string>; text: string };
    try {
      upstream = await this.forward(req, body);
    } catch {
      this.counts.upstreamDown++;
      answer(res, 502, {}, JSON.stringify({ error: { code: 'bad_gateway', message: 'B is unreachable.' } }));
      return;
    }
    this.duplicatesAtB += countDuplicates(upstream.text);
    if (mode.kind === 'pass' && carriesEvents && upstream.status >= 200 && upstream.status < 300) await this.hold('answer');
    if (mode.kind === 'reset-mid-body') {
      this.counts.resetMidBody++;
      const bytes = Buffer.from(upstream.text);
      res.writeHead(upstream.status, { ...upstream.headers, 'content-length': String(bytes.length) });
      res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => req.socket.destroy());
      return;
    }
    if (mode.kind === 'pass') this.counts.passed++;
    answer(res, upstream.status, upstream.headers, upstream.text);
  }

  private async forward(req: IncomingMessage, body: Buffer): Promise<{ status: number; headers: Record<string, string>; text: string }> {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    const upstream = await request(this.target + (req.url ?? '/'), { method: 'POST', headers, body, dispatcher: this.agent, headersTimeout: 30_000, bodyTimeout: 30_000 });
    const text = await upstream.body.text();
    const relayed: Record<string, string> = { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') };
    if (upstream.headers['retry-after'] !== undefined) relayed['retry-after'] = String(upstream.headers['retry-after']);
    return { status: upstream.statusCode, headers: relayed, text };
  }
}

function countDuplicates(text: string): number {
  try {
    const parsed = JSON.parse(text) as { items?: { duplicate?: boolean }[] };
    return parsed.items?.filter((item) => item.duplicate === true).length ?? 0;
  } catch {
    return 0;
  }
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('aborted', () => reject(new Error('aborted')));
  });
}

function answer(res: ServerResponse, status: number, headers: Record<string, string>, text: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}
