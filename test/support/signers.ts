/**
 * Signs test webhooks with the providers' own libraries, so our verification is checked against
 * code we did not write.
 */
import { randomUUID } from 'node:crypto';
import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';

const stripe = new Stripe('sk_test_kite');

export function stripeWebhook(secret: string, fields: { id?: string; type?: string; created?: number; data?: unknown } = {}, timestamp?: number) {
  const payload = JSON.stringify({
    id: fields.id ?? `evt_${randomUUID()}`,
    object: 'event',
    type: fields.type ?? 'payment_intent.succeeded',
    created: fields.created ?? Math.floor(Date.now() / 1000),
    data: fields.data ?? { object: { id: 'pi_1', amount: 2000 } },
  });
  const header = stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
  return { body: payload, headers: { 'content-type': 'application/json', 'stripe-signature': header } };
}

export function standardWebhook(secret: string, payload: unknown, id = `msg_${randomUUID()}`, when = new Date(), contentType = 'application/json') {
  const body = JSON.stringify(payload);
  const signature = new Webhook(secret).sign(id, when, body);
  return {
    body,
    headers: { 'content-type': contentType, 'webhook-id': id, 'webhook-timestamp': String(Math.floor(when.getTime() / 1000)), 'webhook-signature': signature },
  };
}

export const STANDARD_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
