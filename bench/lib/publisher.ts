/**
 * An open-loop webhook publisher: sends signed Stripe webhooks at a steady rate, whatever the
 * answers' latency (more keep-alive connections are opened when all are busy). Each body carries
 * its send time (`bench_sent_at`, epoch ms) for the listeners to compute ingest→listener latency;
 * bodies are signed at send time since the stamp is part of what is signed (HMAC of ~1 KB is ~2 µs).
 */
import { HttpConnection } from './http-load.js';
import { nowMs } from './stats.js';
import { nextEventId, signedRequest, stripeEventBody } from './stripe.js';

// Webhook senders open more connections when answers are slow; so does this publisher, so a slow
// server still gets the offered rate (and its latency shows it) instead of a capped one.
const MAX_CONNECTIONS = 1024;
const MAX_OPENING = 16;

export class Publisher {
  /** Requests written. */
  sent = 0;
  /** Answers by status. */
  readonly statuses: Record<number, number> = {};
  errors = 0;
  /** Times every connection was busy when a request was due (it was sent a tick later). */
  stalls = 0;
  private readonly idle: HttpConnection[] = [];
  private readonly all = new Set<HttpConnection>();
  private opening = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;

  constructor(
    private readonly port: number,
    private readonly pathname: string,
    private readonly secret: string,
  ) {}

  get answered(): number {
    let n = 0;
    for (const count of Object.values(this.statuses)) n += count;
    return n;
  }

  async open(connections = 4): Promise<void> {
    for (let i = 0; i < connections; i++) this.add(await HttpConnection.open(this.port, () => void this.errors++));
  }

  /** Sends `rate` requests per second from now until `stop()`. */
  start(rate: number): void {
    const t0 = performance.now();
    const base = this.sent;
    this.timer = setInterval(() => {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate) - (this.sent - base);
      for (let i = 0; i < due; i++) {
        const conn = this.idle.pop();
        if (!conn) {
          this.stalls++;
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
  async close(timeoutMs = 5000): Promise<void> {
    this.stop();
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    for (const conn of this.all) conn.close();
    this.all.clear();
    this.idle.length = 0;
  }

  private add(conn: HttpConnection): void {
    this.all.add(conn);
    this.idle.push(conn);
  }

  private send(conn: HttpConnection): void {
    this.sent++;
    this.inFlight++;
    const request = signedRequest(this.pathname, stripeEventBody(nextEventId(), nowMs()), this.secret);
    conn.send(request, (status) => {
      this.inFlight--;
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      this.idle.push(conn);
    });
  }

  private grow(): void {
    if (this.opening >= MAX_OPENING || this.all.size + this.opening >= MAX_CONNECTIONS) return;
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
