/**
 * An open-loop CloudEvents publisher for federation benchmarks: sends `rate` events per second to
 * A's `cloudevents` source as signed (Standard Webhooks) batches of `batch` events, whatever the
 * answers' latency (more keep-alive connections open when all are busy). Each event is ~1 KB and
 * carries its send time (`bench_sent_at`, epoch ms) and a run-wide sequence number (`bench_n`),
 * which B's listeners read back; event n has type `bench.p<n mod peers>`, so it goes to one peer.
 */
import { createHmac } from 'node:crypto';
import { HttpConnection } from './http-load.js';
import { nowMs } from './stats.js';

const MAX_CONNECTIONS = 256;
const FILLER = 'x'.repeat(760);

export class CePublisher {
  /** Events written (in requests). */
  sent = 0;
  /** Events in requests answered 200. */
  accepted = 0;
  /** Answers (requests) by status. */
  readonly statuses: Record<number, number> = {};
  errors = 0;
  /** [first bench_n, count] of each batch answered 200 (kept when `track` is set). */
  readonly acceptedRanges: [number, number][] = [];
  private readonly idle: HttpConnection[] = [];
  private readonly all = new Set<HttpConnection>();
  private opening = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private n = 0;
  private msg = 0;
  private readonly key: Buffer;
  private readonly runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;

  constructor(
    private readonly port: number,
    private readonly pathname: string,
    secret: string,
    private readonly options: { batch: number; peers: number; track?: boolean },
  ) {
    this.key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  }

  async open(connections = 4): Promise<void> {
    for (let i = 0; i < connections; i++) this.add(await HttpConnection.open(this.port, () => void this.errors++));
  }

  /** Sends `rate` events per second (as rate/batch requests per second) until `stop()`. */
  start(rate: number): void {
    const t0 = performance.now();
    const base = this.sent;
    this.timer = setInterval(() => {
      const dueEvents = Math.floor(((performance.now() - t0) / 1000) * rate) - (this.sent - base);
      const due = Math.floor(dueEvents / this.options.batch);
      for (let i = 0; i < due; i++) {
        const conn = this.idle.pop();
        if (!conn) {
          for (let j = i; j < due; j++) this.grow();
          return;
        }
        this.send(conn);
      }
    }, 1);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Waits (≤ timeoutMs) for answers in flight, then closes the connections. */
  async close(timeoutMs = 10_000): Promise<void> {
    this.stop();
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const conn of this.all) conn.close();
    this.all.clear();
    this.idle.length = 0;
  }

  /** The request for the next `batch` events. */
  private request(): { bytes: Buffer; first: number; count: number } {
    const { batch, peers } = this.options;
    const first = this.n;
    const sentAt = nowMs().toFixed(3);
    const events: string[] = [];
    for (let i = 0; i < batch; i++) {
      const n = this.n++;
      events.push(
        `{"specversion":"1.0","id":"ce-${this.runId}-${n}","source":"/bench/publisher","type":"bench.p${n % peers}",` +
          `"datacontenttype":"application/json","data":{"bench_sent_at":${sentAt},"bench_n":${n},"order":"ord_${n}","note":"${FILLER}"}}`,
      );
    }
    const single = batch === 1;
    const body = single ? events[0]! : `[${events.join(',')}]`;
    const id = `msg_${this.runId}_${this.msg++}`;
    const ts = Math.floor(Date.now() / 1000);
    const signature = createHmac('sha256', this.key).update(`${id}.${ts}.`).update(body).digest('base64');
    const head =
      `POST ${this.pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${single ? 'application/cloudevents+json' : 'application/cloudevents-batch+json'}\r\n` +
      `webhook-id: ${id}\r\nwebhook-timestamp: ${ts}\r\nwebhook-signature: v1,${signature}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`;
    return { bytes: Buffer.from(head + body), first, count: batch };
  }

  private add(conn: HttpConnection): void {
    this.all.add(conn);
    this.idle.push(conn);
  }

  private send(conn: HttpConnection): void {
    const { bytes, first, count } = this.request();
    this.sent += count;
    this.inFlight++;
    conn.send(bytes, (status) => {
      this.inFlight--;
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      if (status === 200) {
        this.accepted += count;
        if (this.options.track) this.acceptedRanges.push([first, count]);
      }
      this.idle.push(conn);
    });
  }

  private grow(): void {
    if (this.opening >= 16 || this.all.size + this.opening >= MAX_CONNECTIONS) return;
    this.opening++;
    HttpConnection.open(this.port, () => void this.errors++).then(
      (conn) => {
        this.opening--;
        this.add(conn);
      },
      () => {
        this.opening--;
        this.errors++;
      },
    );
  }
}
