import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { standardProvider } from '../../src/providers/standard.js';
import type { SourceContext } from '../../src/providers/types.js';
import { codeOf } from '../support/assertions.js';

const NOW = new Date('2026-11-27T19:36:43.000Z');
const NOW_S = NOW.getTime() / 1000;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SOURCE: SourceContext = { team: 'acme', sourceName: 'billing', sourceUrl: 'https://kite.example.com/hooks/acme/billing', secret: SECRET };
const ID = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';

/** Signed by the Standard Webhooks reference library. */
function parse(body: string, opts: { secret?: string; timestamp?: number; headers?: Record<string, string> } = {}) {
  const timestamp = opts.timestamp ?? NOW_S;
  const signature = new Webhook(opts.secret ?? SECRET).sign(ID, new Date(timestamp * 1000), body);
  const headers = { 'webhook-id': ID, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature, ...opts.headers };
  return standardProvider.parse({ headers, body: Buffer.from(body), receivedAt: NOW }, SOURCE);
}

describe('standard provider', () => {
  it('maps type under the source name, id from webhook-id, time from timestamp, and the body as data', () => {
    const body = '{"type":"invoice.paid","timestamp":"2026-11-27T19:30:00.123456+01:00","data":{"id":"inv_1"}}';
    const { batch, events } = parse(body);
    expect(batch).toBe(false);
    expect(events[0]).toMatchObject({ id: ID, type: 'com.billing.invoice.paid', time: '2026-11-27T18:30:00.123Z', source: SOURCE.sourceUrl });
    expect(JSON.parse(events[0]!.json)).toEqual({
      specversion: '1.0', id: ID, source: SOURCE.sourceUrl, type: 'com.billing.invoice.paid',
      time: '2026-11-27T18:30:00.123Z', datacontenttype: 'application/json', data: JSON.parse(body),
    });
  });

  it('reads a numeric timestamp as unix seconds', () => {
    expect(parse('{"type":"a","timestamp":1795807003}').events[0]!.time).toBe('2026-11-27T19:16:43.000Z');
  });

  it('uses the receipt time when the payload has no timestamp or a null one', () => {
    expect(parse('{"type":"a"}').events[0]!.time).toBe(NOW.toISOString());
    expect(parse('{"type":"a","timestamp":null}').events[0]!.time).toBe(NOW.toISOString());
  });

  it('answers invalid_body for a timestamp that is not a time', () => {
    for (const timestamp of ['"yesterday"', '"2026-02-30T00:00:00Z"', '"March 7, 2020"', 'true', '1795807003000']) {
      expect(codeOf(() => parse(`{"type":"a","timestamp":${timestamp}}`)), timestamp).toBe('invalid_body');
    }
  });

  it('rejects a wrong secret, an expired signature and a missing header before reading the body', () => {
    expect(codeOf(() => parse('{"type":"a"}', { secret: 'whsec_' + Buffer.alloc(24, 1).toString('base64') }))).toBe('invalid_signature');
    expect(codeOf(() => parse('{"type":"a"}', { timestamp: NOW_S - 301 }))).toBe('invalid_signature');
    expect(codeOf(() => parse('garbage', { headers: { 'webhook-signature': '' } }))).toBe('invalid_signature');
  });

  it('answers invalid_json for a signed body that is not JSON, and invalid_body without a type', () => {
    expect(codeOf(() => parse('{"type":'))).toBe('invalid_json');
    expect(codeOf(() => parse('{"data":{}}'))).toBe('invalid_body');
    expect(codeOf(() => parse('{"type":""}'))).toBe('invalid_body');
    expect(codeOf(() => parse('["type"]'))).toBe('invalid_body');
  });

  it('only accepts whsec_ secrets', () => {
    expect(standardProvider.validateSecret(SECRET)).toBeNull();
    expect(standardProvider.validateSecret('plain-secret')).toMatch(/whsec_/);
  });
});
