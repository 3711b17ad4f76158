/**
 * A minimal HTTP/1.1 keep-alive client on raw sockets, and a closed-loop load generator on it:
 * each connection writes a pre-built request, waits for the answer, writes the next. No per-request
 * header building or parsing library, so the generator stays cheap next to the server it measures.
 */
import net from 'node:net';
import { Samples } from './stats.js';

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = [Buffer.from('\r\nContent-Length:'), Buffer.from('\r\ncontent-length:')];

export type OnResponse = (status: number, body: Buffer) => void;

/** One keep-alive connection; `send` may be called again once the previous answer arrived. */
export class HttpConnection {
  busy = false;
  private pending: Buffer | undefined;
  private onResponse: OnResponse | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  static open(port: number, onError: (err: Error) => void): Promise<HttpConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.on('error', onError);
        resolve(new HttpConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  send(request: Buffer, onResponse: OnResponse): void {
    this.busy = true;
    this.onResponse = onResponse;
    this.socket.write(request);
  }

  close(): void {
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    while (buf.length > 0) {
      const headerEnd = buf.indexOf(HEADER_END);
      if (headerEnd < 0) break;
      let length = 0;
      for (const needle of CONTENT_LENGTH) {
        const at = buf.indexOf(needle);
        if (at >= 0 && at < headerEnd) {
          length = parseInt(buf.toString('latin1', at + needle.length, buf.indexOf(13, at + needle.length)), 10);
          break;
        }
      }
      const end = headerEnd + 4 + length;
      if (buf.length < end) break;
      const status = (buf[9]! - 48) * 100 + (buf[10]! - 48) * 10 + (buf[11]! - 48);
      const body = buf.subarray(headerEnd + 4, end);
      buf = buf.subarray(end);
      const callback = this.onResponse;
      this.onResponse = undefined;
      this.busy = false;
      callback?.(status, body);
    }
    if (buf.length > 0) this.pending = Buffer.from(buf);
  }
}

export interface LoadOptions {
  readonly port: number;
  readonly connections: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  readonly nextRequest: () => Buffer;
  /** Called with (elapsed fraction of the measured window, responses/s so far) every 250 ms. */
  readonly onTick?: (fraction: number, rate: number) => void;
  /** Called when the measured window starts and ends (e.g. to read CPU counters). */
  readonly onWindow?: (edge: 'start' | 'end') => void | Promise<void>;
}

export interface LoadResult {
  /** Answers received inside the measured window. */
  readonly measured: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Latencies (ms) of answers inside the measured window. */
  readonly latency: Samples;
  /** Every answer of the stage (warm-up and tail included), by status. */
  readonly statuses: Record<number, number>;
  /** Answers with `"duplicate":true` in the body. */
  readonly duplicates: number;
  readonly errors: number;
}

/** Runs `connections` closed loops for warm-up + duration, then waits (≤ 5 s) for answers in flight. */
export async function runClosedLoop(options: LoadOptions): Promise<LoadResult> {
  let errors = 0;
  const conns = await Promise.all(
    Array.from({ length: options.connections }, () => HttpConnection.open(options.port, () => void errors++)),
  );
  const latency = new Samples();
  const statuses: Record<number, number> = {};
  let duplicates = 0;
  let measuring = false;
  let stopping = false;
  let measured = 0;
  let inFlight = 0;
  let allDone: (() => void) | undefined;
  const duplicateMark = Buffer.from('"duplicate":true');

  const fire = (conn: HttpConnection) => {
    const started = performance.now();
    inFlight++;
    conn.send(options.nextRequest(), (status, body) => {
      inFlight--;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (body.length > 0 && body.indexOf(duplicateMark) >= 0) duplicates++;
      if (measuring) {
        measured++;
        latency.add(performance.now() - started);
      }
      if (!stopping) fire(conn);
      else if (inFlight === 0) allDone?.();
    });
  };
  for (const conn of conns) fire(conn);
  await sleep(options.warmupMs);
  await options.onWindow?.('start');
  measuring = true;
  const t0 = performance.now();
  const tick = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    options.onTick?.(Math.min(1, elapsed / (options.durationMs / 1000)), measured / Math.max(elapsed, 1e-3));
  }, 250);
  await sleep(options.durationMs);
  measuring = false;
  const seconds = (performance.now() - t0) / 1000;
  await options.onWindow?.('end');
  clearInterval(tick);
  stopping = true;
  if (inFlight > 0) {
    await Promise.race([new Promise<void>((resolve) => (allDone = resolve)), sleep(5000)]);
  }
  for (const conn of conns) conn.close();
  return { measured, seconds, perSecond: measured / seconds, latency, statuses, duplicates, errors: errors + inFlight };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
