/**
 * Stripe webhooks: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=<hex>…]` where each v1 is
 * hex hmac-sha256(secret, "<t>.<raw body>") and one match suffices. Stripe sends several v1 entries
 * while an endpoint secret is being rolled; other schemes (v0, test-mode extras) are ignored.
 * The secret (`whsec_…`) is used as-is as the HMAC key: unlike Standard Webhooks it is not decoded.
 */
import { KiteError } from '../errors.js';
import { buildEventJson, nonEmptyString, parseEventTime, parseJsonObject } from '../events/cloudevent-json.js';
import { hmacSecretProblem, hmacSha256Hex, safeEqual } from './hmac.js';
import type { IncomingWebhook, ParsedWebhook, Provider, SourceContext } from './types.js';

export const STRIPE_TOLERANCE_SECONDS = 300;

/** Throws KiteError `invalid_signature` unless `header` carries a fresh v1 signature of `body`. */
export function verifyStripeSignature(header: string | undefined, body: Buffer, secret: string, nowSeconds: number): void {
  if (!header) throw new KiteError('invalid_signature', 'Missing Stripe-Signature header.');
  let timestamp: string | undefined;
  const offered: string[] = [];
  for (const item of header.split(',')) {
    const eq = item.indexOf('=');
    if (eq < 0) continue;
    const key = item.slice(0, eq).trim();
    const value = item.slice(eq + 1).trim();
    if (key === 't') {
      // Two timestamps would leave it ambiguous which one was signed.
      if (timestamp !== undefined) throw new KiteError('invalid_signature', 'Stripe-Signature has more than one timestamp.');
      timestamp = value;
    } else if (key === 'v1') {
      offered.push(value);
    }
  }
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp) || offered.length === 0) {
    throw new KiteError('invalid_signature', 'Stripe-Signature needs t=<unix seconds> and a v1 signature.');
  }
  // Whole seconds, as the providers' own libraries count: a timestamp exactly 300 s old is in.
  if (Math.abs(Math.floor(nowSeconds) - Number(timestamp)) > STRIPE_TOLERANCE_SECONDS) {
    throw new KiteError('invalid_signature', 'The Stripe-Signature timestamp is more than 300 seconds from now.');
  }
  const expected = hmacSha256Hex(secret, [timestamp, '.', body]);
  let match = false;
  for (const candidate of offered) match = safeEqual(expected, candidate) || match;
  if (!match) throw new KiteError('invalid_signature');
}

export const stripeProvider: Provider = {
  name: 'stripe',

  validateSecret: hmacSecretProblem,

  parse(request: IncomingWebhook, source: SourceContext): ParsedWebhook {
    verifyStripeSignature(request.headers['stripe-signature'], request.body, source.secret, request.receivedAt.getTime() / 1000);
    const text = request.body.toString('utf8');
    const payload = parseJsonObject(text);
    const id = nonEmptyString(payload.id);
    const type = nonEmptyString(payload.type);
    if (id === undefined || type === undefined) {
      throw new KiteError('invalid_body', 'A Stripe event needs a string id and type.');
    }
    const time = typeof payload.created === 'number' ? parseEventTime(payload.created) : null;
    if (time === null) throw new KiteError('invalid_body', 'A Stripe event needs created as unix seconds.');
    const event = { id, source: source.sourceUrl, type: `com.stripe.${type}`, time };
    return { batch: false, events: [{ ...event, json: buildEventJson({ ...event, dataJson: text }) }] };
  },
};
