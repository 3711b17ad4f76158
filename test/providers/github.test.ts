import { sign } from '@octokit/webhooks-methods';
import { describe, expect, it } from 'vitest';
import { githubProvider } from '../../src/providers/github.js';
import type { SourceContext } from '../../src/providers/types.js';
import { codeOf } from '../support/assertions.js';

const NOW = new Date('2026-11-27T19:36:43.000Z');
const SECRET = 'It\'s a Secret to Everybody';
const SOURCE: SourceContext = { team: 'acme', sourceName: 'gh', sourceUrl: 'https://kite.example.com/hooks/acme/gh', secret: SECRET };
const PAYLOAD = '{"action":"opened","number":7,"pull_request":{"id":1}}';
const DELIVERY = '72d3162e-cc78-11e3-81ab-4c9367dc0958';

function headersFor(signature: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  const headers: Record<string, string> = { 'x-github-event': 'pull_request', 'x-github-delivery': DELIVERY, 'content-type': 'application/json', ...extra };
  if (signature !== undefined) headers['x-hub-signature-256'] = signature;
  return headers;
}

function parse(body: string, headers: Record<string, string>) {
  return githubProvider.parse({ headers, body: Buffer.from(body), receivedAt: NOW }, SOURCE);
}

// Signatures come from Octokit's own implementation, so verification is checked against code we did not write.
describe('github provider', () => {
  it('accepts an Octokit-signed delivery and maps type, id, time, source and data exactly', async () => {
    const { batch, events } = parse(PAYLOAD, headersFor(await sign(SECRET, PAYLOAD)));
    expect(batch).toBe(false);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ id: DELIVERY, type: 'com.github.pull_request.opened', time: NOW.toISOString(), source: SOURCE.sourceUrl });
    expect(JSON.parse(events[0]!.json)).toEqual({
      specversion: '1.0', id: DELIVERY, source: SOURCE.sourceUrl, type: 'com.github.pull_request.opened',
      time: '2026-11-27T19:36:43.000Z', datacontenttype: 'application/json', data: JSON.parse(PAYLOAD),
    });
  });

  it('uses the event name alone when the payload has no action, or an empty one', async () => {
    for (const body of ['{"zen":"Keep it simple."}', '{"action":""}', '{"action":3}']) {
      const { events } = parse(body, headersFor(await sign(SECRET, body), { 'x-github-event': 'ping' }));
      expect(events[0]!.type, body).toBe('com.github.ping');
    }
  });

  it('reads the payload field of a form-encoded delivery', async () => {
    const form = new URLSearchParams({ payload: PAYLOAD }).toString();
    const { events } = parse(form, headersFor(await sign(SECRET, form), { 'content-type': 'application/x-www-form-urlencoded' }));
    expect(JSON.parse(events[0]!.json).data).toEqual(JSON.parse(PAYLOAD));
  });

  it('rejects a signature made with another secret', async () => {
    expect(codeOf(() => parse(PAYLOAD, headersFor('')))).toBe('invalid_signature');
    const wrong = await sign('another secret', PAYLOAD);
    expect(codeOf(() => parse(PAYLOAD, headersFor(wrong)))).toBe('invalid_signature');
  });

  it('rejects a body changed after signing', async () => {
    const signature = await sign(SECRET, PAYLOAD);
    expect(codeOf(() => parse(PAYLOAD.replace('7', '8'), headersFor(signature)))).toBe('invalid_signature');
  });

  it('rejects a delivery without X-Hub-Signature-256, or with only the SHA-1 header', async () => {
    expect(codeOf(() => parse(PAYLOAD, headersFor(undefined)))).toBe('invalid_signature');
    const sha1Only = headersFor(undefined, { 'x-hub-signature': 'sha1=0000' });
    expect(codeOf(() => parse(PAYLOAD, sha1Only))).toBe('invalid_signature');
  });

  it('answers invalid_json for a validly signed body that is not JSON', async () => {
    const signature = await sign(SECRET, '<xml/>');
    expect(codeOf(() => parse('<xml/>', headersFor(signature)))).toBe('invalid_json');
  });

  it('checks the signature before the headers and body, so unsigned garbage is a 401', () => {
    expect(codeOf(() => parse('garbage', {}))).toBe('invalid_signature');
  });

  it('answers invalid_body for a signed delivery missing X-GitHub-Event or X-GitHub-Delivery', async () => {
    const signature = await sign(SECRET, PAYLOAD);
    const noEvent = headersFor(signature);
    delete noEvent['x-github-event'];
    const noDelivery = headersFor(signature, { 'x-github-delivery': '' });
    expect(codeOf(() => parse(PAYLOAD, noEvent))).toBe('invalid_body');
    expect(codeOf(() => parse(PAYLOAD, noDelivery))).toBe('invalid_body');
  });

  it('answers invalid_body for signed JSON that is not an object', async () => {
    const signature = await sign(SECRET, '[]');
    expect(codeOf(() => parse('[]', headersFor(signature)))).toBe('invalid_body');
  });
});

