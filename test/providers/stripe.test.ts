import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import { stripeProvider } from '../../src/providers/stripe.js';
import type { SourceContext } from '../../src/providers/types.js';
import { codeIfThrown, codeOf } from '../support/assertions.js';

const NOW = new Date('2026-11-27T19:36:43.000Z');
const NOW_S = NOW.getTime() / 1000;
const SECRET = 'whsec_test_stripe_secret';
const SOURCE: SourceContext = { team: 'acme', sourceName: 'pay', sourceUrl: 'https://kite.example.com/hooks/acme/pay', secret: SECRET };
// Signatures come from Stripe's own SDK, so verification is checked against code we did not write.
const stripe = new Stripe('sk_test_x');

const PAYLOAD = '{\n  "id": "evt_1", "object": "event", "type": "payment_intent.succeeded", "created": 1795807003,\n  "data": {"object": {"id": "pi_1", "amount": 12345678901234567890}}\n}\n';

function sign(payload: string, opts: { secret?: string; timestamp?: number } = {}): string {
  return stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? SECRET, timestamp: opts.timestamp ?? NOW_S });
}

function parse(body: string, signature: string | undefined) {
  const headers: Record<string, string> = signature === undefined ? {} : { 'stripe-signature': signature };
  return stripeProvider.parse({ headers, body: Buffer.from(body), receivedAt: NOW }, SOURCE);
}

describe('stripe provider', () => {
  it('accepts a Stripe-signed event and maps type, id, time, source and data exactly', () => {
    const { batch, events } = parse(PAYLOAD, sign(PAYLOAD));
    expect(batch).toBe(false);
    expect(events).toHaveLength(1);
    const event = events[0]!;
    expect(event).toMatchObject({ id: 'evt_1', type: 'com.stripe.payment_intent.succeeded', source: SOURCE.sourceUrl, time: '2026-11-27T19:16:43.000Z' });
    const stored = JSON.parse(event.json);
    expect(stored).toEqual({
      specversion: '1.0', id: 'evt_1', source: SOURCE.sourceUrl, type: 'com.stripe.payment_intent.succeeded',
      time: '2026-11-27T19:16:43.000Z', datacontenttype: 'application/json', data: JSON.parse(PAYLOAD),
    });
  });

  it('stores the body bytes verbatim as data, so big integers keep every digit', () => {
    const { events } = parse(PAYLOAD, sign(PAYLOAD));
    expect(events[0]!.json).toContain('"amount": 12345678901234567890');
  });

  it('accepts a header with several v1 signatures when one of them matches, ignoring v0', () => {
    const good = sign(PAYLOAD).split(',').find((part) => part.startsWith('v1='))!;
    const stale = sign(PAYLOAD, { secret: 'whsec_old' }).split(',').find((part) => part.startsWith('v1='))!;
    const header = `t=${NOW_S},v0=deadbeef,${stale},${good}`;
    expect(parse(PAYLOAD, header).events[0]!.id).toBe('evt_1');
  });

  it('rejects a signature made with another secret', () => {
    expect(codeOf(() => parse(PAYLOAD, sign(PAYLOAD, { secret: 'whsec_other' })))).toBe('invalid_signature');
  });

  it('rejects a body changed after signing', () => {
    expect(codeOf(() => parse(PAYLOAD.replace('evt_1', 'evt_2'), sign(PAYLOAD)))).toBe('invalid_signature');
  });

  it('rejects a request without Stripe-Signature', () => {
    expect(codeOf(() => parse(PAYLOAD, undefined))).toBe('invalid_signature');
  });

  it('rejects a header with only a v0 signature', () => {
    const v0 = stripe.webhooks.generateTestHeaderString({ payload: PAYLOAD, secret: SECRET, timestamp: NOW_S, scheme: 'v0' });
    expect(codeOf(() => parse(PAYLOAD, v0))).toBe('invalid_signature');
  });

  it('counts the tolerance in whole seconds, as Stripe\'s library does: exactly 300 s old is accepted late in that second, 301 s is not', () => {
    const late = new Date(NOW.getTime() + 980); // the request arrives 980 ms into the second
    const at = (timestamp: number) => codeIfThrown(() => stripeProvider.parse({ headers: { 'stripe-signature': sign(PAYLOAD, { timestamp }) }, body: Buffer.from(PAYLOAD), receivedAt: late }, SOURCE));
    expect(at(NOW_S - 300)).toBeUndefined();
    expect(at(NOW_S + 300)).toBeUndefined();
    expect(at(NOW_S - 301)).toBe('invalid_signature');
    expect(at(NOW_S + 301)).toBe('invalid_signature');
  });

  it('rejects signatures 301 s old or 301 s ahead, and accepts 299 s either way', () => {
    expect(codeOf(() => parse(PAYLOAD, sign(PAYLOAD, { timestamp: NOW_S - 301 })))).toBe('invalid_signature');
    expect(codeOf(() => parse(PAYLOAD, sign(PAYLOAD, { timestamp: NOW_S + 301 })))).toBe('invalid_signature');
    expect(parse(PAYLOAD, sign(PAYLOAD, { timestamp: NOW_S - 299 })).events).toHaveLength(1);
    expect(parse(PAYLOAD, sign(PAYLOAD, { timestamp: NOW_S + 299 })).events).toHaveLength(1);
  });

  it('answers invalid_json for a validly signed body that is not JSON', () => {
    expect(codeOf(() => parse('not json', sign('not json')))).toBe('invalid_json');
  });

  it('checks the signature before the body, so unsigned garbage is a 401', () => {
    expect(codeOf(() => parse('not json', 't=1,v1=abc'))).toBe('invalid_signature');
    expect(codeOf(() => parse('not json', undefined))).toBe('invalid_signature');
  });

  it('answers invalid_body for signed JSON that is not a Stripe event', () => {
    const cases = [
      '[1,2]',
      '"evt_1"',
      '{"type":"a.b","created":1795807003}',
      '{"id":"","type":"a.b","created":1795807003}',
      '{"id":"evt_1","type":5,"created":1795807003}',
      '{"id":"evt_1","type":"a.b","created":"1795807003"}',
      '{"id":"evt_1","type":"a.b"}',
    ];
    for (const body of cases) expect(codeOf(() => parse(body, sign(body))), body).toBe('invalid_body');
  });

  it('accepts any non-empty secret without surrounding whitespace', () => {
    expect(stripeProvider.validateSecret('whsec_abc')).toBeNull();
    expect(stripeProvider.validateSecret('')).toMatch(/empty/);
    expect(stripeProvider.validateSecret('whsec_abc\n')).toMatch(/whitespace/);
  });
});
