import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { isStandardSecret, signStandard, verifyStandardSignature } from '../../src/providers/standard-signature.js';
import { codeIfThrown } from '../support/assertions.js';

const NOW_S = Date.parse('2026-11-27T19:36:43.000Z') / 1000;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OTHER = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
const BODY = Buffer.from('{"type":"invoice.paid","data":{"n":1}}');
const ID = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';

/** Headers signed by the Standard Webhooks reference library, not by our code. */
function signedHeaders(opts: { secret?: string; timestamp?: number; body?: Buffer } = {}): Record<string, string> {
  const timestamp = opts.timestamp ?? NOW_S;
  const signature = new Webhook(opts.secret ?? SECRET).sign(ID, new Date(timestamp * 1000), opts.body ?? BODY);
  return { 'webhook-id': ID, 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
}

describe('standard webhooks signatures', () => {
  it('accepts a request signed by the reference library', () => {
    expect(codeIfThrown(() => verifyStandardSignature(signedHeaders(), BODY, [SECRET], NOW_S))).toBeUndefined();
  });

  it('accepts a header with several v1 entries when one of them matches', () => {
    const headers = signedHeaders();
    headers['webhook-signature'] = `v1,${'A'.repeat(43)}= v2,whatever ${headers['webhook-signature']}`;
    expect(codeIfThrown(() => verifyStandardSignature(headers, BODY, [SECRET], NOW_S))).toBeUndefined();
  });

  it('verifies with any of several secrets, as during a key rotation', () => {
    expect(codeIfThrown(() => verifyStandardSignature(signedHeaders({ secret: OTHER }), BODY, [SECRET, OTHER], NOW_S))).toBeUndefined();
  });

  it('rejects a signature made with another secret', () => {
    expect(codeIfThrown(() => verifyStandardSignature(signedHeaders({ secret: OTHER }), BODY, [SECRET], NOW_S))).toBe('invalid_signature');
  });

  it('rejects a body changed after signing', () => {
    const tampered = Buffer.from('{"type":"invoice.paid","data":{"n":2}}');
    expect(codeIfThrown(() => verifyStandardSignature(signedHeaders(), tampered, [SECRET], NOW_S))).toBe('invalid_signature');
  });

  it('rejects a request missing any of the three headers', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = signedHeaders();
      delete headers[name];
      expect(codeIfThrown(() => verifyStandardSignature(headers, BODY, [SECRET], NOW_S)), name).toBe('invalid_signature');
    }
  });

  it('rejects timestamps 301 s old or ahead and accepts 299 s either way', () => {
    const at = (offset: number) => codeIfThrown(() => verifyStandardSignature(signedHeaders({ timestamp: NOW_S + offset }), BODY, [SECRET], NOW_S));
    expect(at(-301)).toBe('invalid_signature');
    expect(at(301)).toBe('invalid_signature');
    expect(at(-299)).toBeUndefined();
    expect(at(299)).toBeUndefined();
  });

  it('counts the tolerance in whole seconds, as the Standard Webhooks libraries do: exactly 300 s either way is accepted late in that second', () => {
    const at = (offset: number) => codeIfThrown(() => verifyStandardSignature(signedHeaders({ timestamp: NOW_S + offset }), BODY, [SECRET], NOW_S + 0.98));
    expect(at(-300)).toBeUndefined();
    expect(at(300)).toBeUndefined();
    expect(at(-301)).toBe('invalid_signature');
    expect(at(301)).toBe('invalid_signature');
  });

  it('rejects a timestamp that is not whole unix seconds', () => {
    const headers = { ...signedHeaders(), 'webhook-timestamp': `${NOW_S}.0` };
    expect(codeIfThrown(() => verifyStandardSignature(headers, BODY, [SECRET], NOW_S))).toBe('invalid_signature');
  });

  it('treats a malformed stored secret as one that verifies nothing', () => {
    expect(codeIfThrown(() => verifyStandardSignature(signedHeaders(), BODY, ['not-a-secret'], NOW_S))).toBe('invalid_signature');
  });

  it('signs so that the reference library verifies each of one or two keys', () => {
    const now = Math.floor(Date.now() / 1000);
    const header = signStandard([SECRET, OTHER], ID, now, BODY);
    expect(header.split(' ')).toHaveLength(2);
    const headers = { 'webhook-id': ID, 'webhook-timestamp': String(now), 'webhook-signature': header };
    expect(() => new Webhook(SECRET).verify(BODY, headers)).not.toThrow();
    expect(() => new Webhook(OTHER).verify(BODY, headers)).not.toThrow();
    expect(signStandard(SECRET, ID, NOW_S, BODY)).toBe(new Webhook(SECRET).sign(ID, new Date(NOW_S * 1000), BODY));
  });

  it('recognises whsec_ secrets with base64 keys, padded or not', () => {
    expect(isStandardSecret(SECRET)).toBe(true);
    expect(isStandardSecret(OTHER)).toBe(true);
    expect(isStandardSecret('whsec_dGVzdA')).toBe(true);
    expect(isStandardSecret('whsec_')).toBe(false);
    expect(isStandardSecret('whsec_not base64!')).toBe(false);
    expect(isStandardSecret('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw')).toBe(false);
  });
});
