/**
 * The provider side: signed Stripe webhooks, each with its own event id, sent at a steady rate
 * along seeded routes — which instance and team (each route's share of the rate), then which of
 * the instance's nodes. A webhook not answered 200 — connection refused or reset by a kill -9, a
 * 503, a timeout — is sent again, to the instance's next node, the way Stripe retries: a repeat of
 * a stored event must then answer `duplicate: true` with the stored seq.
 *
 * What the checker trusts is only `answered`: the webhooks Kite acknowledged with a 200.
 */
import { createHmac } from 'node:crypto';
import { request, type Agent } from 'undici';
import type { Random } from './prng.js';

export const STRIPE_SECRET = 'whsec_chaos_0123456789abcdefghijklmnop';
/** Forwarded to B (the peer's scope is `stripe.payment_intent.*`)… */
export const IN_SCOPE_TYPE = 'payment_intent.succeeded';
/** …and kept on A. */
export const OUT_OF_SCOPE_TYPE = 'charge.refunded';

export type Instance = 'a' | 'b';

export interface Webhook {
  readonly id: string;
  /** The instance it was sent to, and the team whose source took it. */
  readonly instance: Instance;
  readonly team: string;
  readonly type: string;
  readonly toPeer: boolean;
  attempts: number;
  /** The 200 that acknowledged it, when one came. */
  answered?: { readonly seq: number; readonly duplicate: boolean; readonly node: string };
  lastError?: string;
}

export interface LoadTarget {
  readonly name: string;
  readonly url: string;
}

/** Webhooks to one team's Stripe source on one instance. */
export interface LoadRoute {
  readonly instance: Instance;
  readonly team: string;
  readonly path: string;
  readonly targets: readonly LoadTarget[];
  /** Its part of the rate (the shares of all routes add up to 1). */
  readonly share: number;
}

const REQUEST_TIMEOUT_MS = 5_000;
const RETRY_PAUSE_MS = 100;

export class WebhookLoad {
  readonly webhooks: Webhook[] = [];
  /** Tries not answered 200, by outcome (`503 database_unavailable`, `500 internal_error`, `refused`, `timeout`, …). */
  readonly failures: Record<string, number> = {};
  /** The slowest 503 `database_unavailable`, ms: Kite promises one within about 900 ms. */
  slowestUnavailableMs = 0;
  private inFlight = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private giveUpAt = Infinity;

  constructor(
    private readonly routes: readonly LoadRoute[],
    private readonly random: Random,
    private readonly agent: Agent,
    private readonly runId: string,
  ) {}

  /** Sends `perSecond` new webhooks a second (in ticks of 50 ms) until stop(). */
  start(perSecond: number): void {
    const tickMs = 50;
    let due = 0;
    this.timer = setInterval(() => {
      due += (perSecond * tickMs) / 1000;
      for (; due >= 1; due--) this.sendNew();
    }, tickMs);
  }

  /** No new webhooks; those not yet answered keep being retried until `retryForMs` has passed. */
  async stop(retryForMs: number): Promise<void> {
    clearInterval(this.timer);
    this.giveUpAt = Date.now() + retryForMs;
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /** Stops everything at once (the run failed): no new webhooks, no more retries. */
  abort(): void {
    clearInterval(this.timer);
    this.giveUpAt = 0;
  }

  get answered(): Webhook[] {
    return this.webhooks.filter((w) => w.answered);
  }

  private sendNew(): void {
    const route = this.pickRoute();
    const toPeer = this.random.next() < 0.75;
    const webhook: Webhook = {
      id: `evt_${this.runId}_${this.webhooks.length}`, instance: route.instance, team: route.team,
      type: toPeer ? IN_SCOPE_TYPE : OUT_OF_SCOPE_TYPE, toPeer, attempts: 0,
    };
    this.webhooks.push(webhook);
    const first = this.random.int(0, route.targets.length - 1);
    const done = this.deliver(webhook, route, first).finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  private pickRoute(): LoadRoute {
    let left = this.random.next();
    for (const route of this.routes) {
      left -= route.share;
      if (left < 0) return route;
    }
    return this.routes.at(-1)!;
  }

  private async deliver(webhook: Webhook, route: LoadRoute, firstTarget: number): Promise<void> {
    const body = JSON.stringify({ id: webhook.id, object: 'event', type: webhook.type, created: Math.floor(Date.now() / 1000), data: { object: { id: `obj_${webhook.id}` } } });
    const targets = route.targets;
    for (let turn = firstTarget; Date.now() < this.giveUpAt; turn++) {
      const target = targets[turn % targets.length]!;
      webhook.attempts++;
      const sentAt = Date.now();
      try {
        const answer = await request(`${target.url}${route.path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'stripe-signature': sign(body) },
          body,
          dispatcher: this.agent,
          headersTimeout: REQUEST_TIMEOUT_MS,
          bodyTimeout: REQUEST_TIMEOUT_MS,
        });
        const text = await answer.body.text();
        if (answer.statusCode === 200) {
          const parsed = JSON.parse(text) as { seq: number; duplicate: boolean };
          webhook.answered = { seq: parsed.seq, duplicate: parsed.duplicate, node: target.name };
          return;
        }
        webhook.lastError = `HTTP ${answer.statusCode}: ${text.slice(0, 200)}`;
        const code = errorCode(text);
        this.failures[`${answer.statusCode} ${code}`] = (this.failures[`${answer.statusCode} ${code}`] ?? 0) + 1;
        if (code === 'database_unavailable') this.slowestUnavailableMs = Math.max(this.slowestUnavailableMs, Date.now() - sentAt);
        // A 4xx is Kite refusing the webhook for good: the harness sent something wrong.
        if (answer.statusCode >= 400 && answer.statusCode < 500) return;
      } catch (err) {
        webhook.lastError = (err as Error).message;
        const outcome = noAnswer(err);
        this.failures[outcome] = (this.failures[outcome] ?? 0) + 1;
      }
      // The instance's other node is tried at once; only after all failed is there a pause.
      if ((turn - firstTarget) % targets.length === targets.length - 1) await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
    }
  }
}

/** Why a try got no HTTP answer: `refused` (node down), `timeout` (no answer in 5 s: a hang), `cut` (connection lost). */
function noAnswer(err: unknown): string {
  const code = String((err as { code?: unknown }).code ?? '');
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return 'cut';
}

/** The `error.code` of a Kite error body, or `-`. */
function errorCode(text: string): string {
  try {
    const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
    return typeof code === 'string' ? code : '-';
  } catch {
    return '-';
  }
}

/** Stripe-Signature as Stripe computes it (the providers tests check it against Stripe's library). */
function sign(body: string): string {
  const t = Math.floor(Date.now() / 1000);
  return `t=${t},v1=${createHmac('sha256', STRIPE_SECRET).update(`${t}.${body}`).digest('hex')}`;
}
