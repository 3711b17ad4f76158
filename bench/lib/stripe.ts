/**
 * Stripe-like webhook requests, signed as Stripe does (`Stripe-Signature: t=…,v1=hex hmac`), as
 * complete HTTP/1.1 request bytes ready to write to a socket. Ingest pre-signs them in bulk before
 * the measured run (SignedSupply), so the generator's HMAC cost is not counted.
 */
import { createHmac } from 'node:crypto';

const FILLER = 'x'.repeat(560);

/**
 * A Stripe `payment_intent.succeeded` event of ~1 KB. `sentAt` (epoch ms), when given, is the
 * second key, so a listener finds it near the start of the event's data.
 */
export function stripeEventBody(id: string, sentAt?: number): string {
  const created = Math.floor(Date.now() / 1000);
  const stamp = sentAt === undefined ? '' : `"bench_sent_at":${sentAt.toFixed(3)},`;
  return (
    `{"id":"${id}",${stamp}"object":"event","api_version":"2024-06-20","created":${created},` +
    `"type":"payment_intent.succeeded","livemode":false,"pending_webhooks":1,` +
    `"request":{"id":"req_${id.slice(4)}","idempotency_key":null},` +
    `"data":{"object":{"id":"pi_${id.slice(4)}","object":"payment_intent","amount":2000,"amount_received":2000,` +
    `"currency":"usd","customer":"cus_Q1benchCustomer","status":"succeeded","capture_method":"automatic",` +
    `"payment_method":"pm_1benchPaymentMethod","payment_method_types":["card"],` +
    `"metadata":{"order_id":"order_${id.slice(4)}","note":"${FILLER}"}}}}`
  );
}

/** The full HTTP request for `body`, signed with `secret` at the current time. */
export function signedRequest(pathname: string, body: string, secret: string): Buffer {
  const t = Math.floor(Date.now() / 1000);
  const signature = createHmac('sha256', secret).update(`${t}.`).update(body).digest('hex');
  const bodyBytes = Buffer.byteLength(body);
  return Buffer.from(
    `POST ${pathname} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `User-Agent: kite-bench\r\nStripe-Signature: t=${t},v1=${signature}\r\nContent-Length: ${bodyBytes}\r\n\r\n${body}`,
  );
}

let runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
let counter = 0;

/** A unique Stripe-style event id (`evt_…`). */
export function nextEventId(): string {
  return `evt_${runId}_${(counter++).toString(36)}`;
}

/** Starts a new id space (ids from an earlier run are never reused). */
export function resetEventIds(): void {
  runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  counter = 0;
}

/**
 * Pre-signed, unique requests. `fill(n)` signs ahead of time; `next()` takes one, and signs on the
 * spot (counted in `signedLate`) only if the supply ran out.
 */
export class SignedSupply {
  private items: Buffer[] = [];
  private head = 0;
  signedLate = 0;

  constructor(
    private readonly pathname: string,
    private readonly secret: string,
  ) {}

  get available(): number {
    return this.items.length - this.head;
  }

  /** Makes sure at least n unused requests are ready. Stripe accepts timestamps within 300 s. */
  fill(n: number): void {
    if (this.head > 0) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    while (this.items.length < n) this.items.push(signedRequest(this.pathname, stripeEventBody(nextEventId()), this.secret));
  }

  /** Drops everything signed so far (e.g. before a long pause, so no timestamp goes stale). */
  clear(): void {
    this.items = [];
    this.head = 0;
  }

  next(): Buffer {
    if (this.head < this.items.length) {
      const item = this.items[this.head]!;
      this.items[this.head++] = EMPTY; // let it be collected
      return item;
    }
    this.signedLate++;
    return signedRequest(this.pathname, stripeEventBody(nextEventId()), this.secret);
  }
}

const EMPTY = Buffer.alloc(0);
