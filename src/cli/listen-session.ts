/**
 * A WebSocket listener that stays connected (contract §4). Modes, held in `mode` alone:
 *  - connecting: a handshake is in flight;
 *  - open: frames arrive; the `ready` frame resets the backoff;
 *  - waiting: the connection dropped; a backoff timer will reconnect;
 *  - stopped: `stop()` was called or a failure was final; `run()` has settled.
 * `paused` is flow control, not a mode: while the consumer of events is behind, the socket is not
 * read, TCP pushes back on the server, and memory here stays bounded.
 *
 * Every reconnect asks for `after=<position>`, the seq of the last event handed to `onEvent`, so
 * nothing is missed or repeated across drops. Final failures: a close with 1008 (the key was
 * revoked) and an upgrade answered 400/401/403/404; retrying those would only fail again.
 */
import WebSocket from 'ws';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { backoffDelay, LISTEN_BACKOFF, type BackoffPolicy } from './backoff.js';
import { CliError } from './args.js';
import { describeHttpError } from './api-client.js';

export interface ListenOptions {
  readonly url: string;
  readonly token: string;
  readonly team: string;
  readonly types?: string;
  readonly after?: number;
  onEvent(seq: number, event: unknown): void;
  onReady?(head: number): void;
  onStatus(message: string): void;
  readonly backoff?: BackoffPolicy;
  /** A silent dead connection (no FIN) is detected by a missing pong after this long. */
  readonly pingIntervalMs?: number;
}

const FINAL_UPGRADE_STATUSES = new Set([400, 401, 403, 404]);

export class ListenSession {
  private mode: 'idle' | 'connecting' | 'open' | 'waiting' | 'stopped' = 'idle';
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private paused = false;
  private position: number | undefined;
  private settle: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(private readonly opts: ListenOptions) {
    this.position = opts.after;
  }

  /** Resolves after `stop()`, rejects with a CliError on a final failure. */
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
      this.connect();
    });
  }

  pause(): void {
    this.paused = true;
    this.ws?.pause();
  }

  resume(): void {
    this.paused = false;
    this.ws?.resume();
  }

  /** Close politely; resolves once the socket is closed (or dropped after a second). */
  stop(): Promise<void> {
    if (this.mode === 'stopped') return Promise.resolve();
    this.mode = 'stopped';
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = undefined;
    this.settle?.resolve();
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const force = setTimeout(() => ws.terminate(), 1000);
      ws.once('close', () => {
        clearTimeout(force);
        resolve();
      });
      ws.close(1000, 'listener stopped');
    });
  }

  listenUrl(): string {
    const url = new URL(`${this.opts.url}/v1/teams/${encodeURIComponent(this.opts.team)}/listen`);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    if (this.opts.types) url.searchParams.set('types', this.opts.types);
    if (this.position !== undefined) url.searchParams.set('after', String(this.position));
    return url.toString();
  }

  private connect(): void {
    this.mode = 'connecting';
    const ws = new WebSocket(this.listenUrl(), {
      headers: { authorization: `Bearer ${this.opts.token}` },
      handshakeTimeout: 10_000,
      followRedirects: false,
    });
    this.ws = ws;
    let lastError = '';
    let alive = true;
    let pinger: NodeJS.Timeout | undefined;
    // Handlers compare against this.ws: events of a socket we have given up on are ignored.
    ws.on('error', (err) => {
      lastError = (err as NodeJS.ErrnoException).code ?? err.message;
    });
    ws.on('unexpected-response', (req: ClientRequest, res: IncomingMessage) => {
      void this.onRejectedUpgrade(ws, req, res);
    });
    ws.on('open', () => {
      if (this.ws !== ws) return;
      this.mode = 'open';
      if (this.paused) ws.pause();
      pinger = setInterval(() => {
        if (this.paused) return; // pongs are not read while paused; silence proves nothing
        if (!alive) return void ws.terminate();
        alive = false;
        ws.ping();
      }, this.opts.pingIntervalMs ?? 30_000);
    });
    ws.on('pong', () => (alive = true));
    ws.on('message', (data, isBinary) => {
      alive = true;
      if (this.ws === ws && !isBinary) this.onFrame(data.toString());
    });
    ws.on('close', (code, reason) => {
      clearInterval(pinger);
      if (this.ws !== ws || this.mode === 'stopped') return;
      const why = reason.length ? `: ${reason.toString()}` : '';
      if (code === 1008) {
        // Kite sends 1008 when the key is revoked; its reason says so, else we say what it likely means.
        return this.fail(`Kite closed the connection (1008 policy violation${why || '; the key was probably revoked'})`);
      }
      this.retry(code === 1006 && lastError ? `connection failed (${lastError})` : `connection closed (${code}${why})`);
    });
  }

  private onFrame(text: string): void {
    let frame: { type?: unknown; seq?: unknown; head?: unknown; event?: unknown };
    try {
      frame = JSON.parse(text);
    } catch {
      return this.opts.onStatus('ignored a frame that is not JSON');
    }
    if (frame.type === 'ready' && typeof frame.head === 'number') {
      this.attempt = 0;
      // Without any position yet, the head is where we stand: a reconnect must not skip past it.
      if (this.position === undefined) this.position = frame.head;
      this.opts.onReady?.(frame.head);
    } else if (frame.type === 'event' && typeof frame.seq === 'number') {
      if (this.position !== undefined && frame.seq <= this.position) return; // already printed
      this.position = frame.seq;
      this.opts.onEvent(frame.seq, frame.event);
    }
    // Other frame types are for newer clients; ignoring them keeps this one working.
  }

  private async onRejectedUpgrade(ws: WebSocket, req: ClientRequest, res: IncomingMessage): Promise<void> {
    const status = res.statusCode ?? 0;
    const body = await readBody(res);
    req.destroy();
    if (this.ws !== ws || this.mode === 'stopped') return;
    const message = describeHttpError(status, body, 'GET', this.listenUrl().replace(/^ws/, 'http'));
    if (FINAL_UPGRADE_STATUSES.has(status)) return this.fail(message);
    const retryAfter = Number(res.headers['retry-after']);
    this.retry(message, Number.isFinite(retryAfter) ? retryAfter * 1000 : 0);
  }

  private retry(reason: string, atLeastMs = 0): void {
    this.ws = undefined;
    this.mode = 'waiting';
    const delay = Math.max(atLeastMs, backoffDelay(++this.attempt, this.opts.backoff ?? LISTEN_BACKOFF));
    this.opts.onStatus(`${reason}; reconnecting in ${(delay / 1000).toFixed(1)} s`);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  private fail(message: string): void {
    this.ws = undefined;
    this.mode = 'stopped';
    this.settle?.reject(new CliError(message));
  }
}

/** The error body of a refused upgrade; capped, and given up on after 2 s. */
function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const timer = setTimeout(done, 2000);
    res.on('data', (chunk: Buffer) => {
      if ((size += chunk.length) <= 64 * 1024) chunks.push(chunk);
    });
    res.on('end', done);
    res.on('error', done);
  });
}
