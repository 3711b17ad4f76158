import { CloudEvent, HTTP } from 'cloudevents';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { cloudeventsProvider, parseCloudEvents } from '../../src/providers/cloudevents.js';
import type { SourceContext } from '../../src/providers/types.js';
import { codeOf } from '../support/assertions.js';

const NOW = new Date('2026-11-27T19:36:43.000Z');
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SOURCE: SourceContext = { team: 'acme', sourceName: 'ce', sourceUrl: 'https://kite.example.com/hooks/acme/ce', secret: SECRET };

/** Signs with the Standard Webhooks reference library and parses with the cloudevents provider. */
function parse(body: string | Buffer, headers: Record<string, string>, secret = SECRET) {
  const signature = new Webhook(secret).sign('msg_1', NOW, body);
  const all = { ...headers, 'webhook-id': 'msg_1', 'webhook-timestamp': String(NOW.getTime() / 1000), 'webhook-signature': signature };
  return cloudeventsProvider.parse({ headers: all, body: Buffer.from(body), receivedAt: NOW }, SOURCE);
}

/** A message as the CloudEvents SDK (code we did not write) puts it on the wire. */
function message(mode: 'binary' | 'structured', attributes: Record<string, unknown>) {
  const msg = HTTP[mode](new CloudEvent(attributes as never));
  return { body: String(msg.body), headers: msg.headers as Record<string, string> };
}

const BASE = { id: 'e1', source: 'https://shop.example.com/orders', type: 'com.example.order.created', data: { order: 42 } };
const STRUCTURED = 'application/cloudevents+json';

describe('cloudevents provider', () => {
  it('keeps a structured event as sent, with its own source, id, time and extensions', () => {
    const { body, headers } = message('structured', { ...BASE, time: '2026-11-27T19:00:00.000Z', subject: 'o-42', tenant: 'eu' });
    const { batch, events } = parse(body, headers);
    expect(batch).toBe(false);
    expect(events[0]).toMatchObject({ id: 'e1', source: BASE.source, type: BASE.type, time: '2026-11-27T19:00:00.000Z' });
    expect(JSON.parse(events[0]!.json)).toEqual({ ...BASE, specversion: '1.0', time: '2026-11-27T19:00:00.000Z', subject: 'o-42', tenant: 'eu' });
  });

  it('fills time with the receipt time when the event has none', () => {
    const body = JSON.stringify({ ...BASE, specversion: '1.0' });
    const { events } = parse(body, { 'content-type': STRUCTURED });
    expect(events[0]!.time).toBe(NOW.toISOString());
    expect(JSON.parse(events[0]!.json).time).toBe(NOW.toISOString());
  });

  it('normalises the stored time attribute but keeps the event time as sent', () => {
    const body = JSON.stringify({ ...BASE, specversion: '1.0', time: '2026-11-27T20:00:00+01:00' });
    const { events } = parse(body, { 'content-type': STRUCTURED });
    expect(events[0]!.time).toBe('2026-11-27T19:00:00.000Z');
    expect(JSON.parse(events[0]!.json).time).toBe('2026-11-27T20:00:00+01:00');
  });

  it('reads a binary-mode event from ce-* headers, with the body as data and Content-Type as datacontenttype', () => {
    const { body, headers } = message('binary', { ...BASE, time: '2026-11-27T19:00:00Z', tenant: 'eu' });
    const { batch, events } = parse(body, headers);
    expect(batch).toBe(false);
    expect(JSON.parse(events[0]!.json)).toEqual({
      ...BASE, specversion: '1.0', time: '2026-11-27T19:00:00.000Z', tenant: 'eu', datacontenttype: 'application/json; charset=utf-8',
    });
  });

  it('keeps non-JSON binary data as text or base64 according to its content type', () => {
    const ce = { 'ce-specversion': '1.0', 'ce-id': 'b1', 'ce-source': '/s', 'ce-type': 't.x' };
    const text = JSON.parse(parse('hello', { ...ce, 'content-type': 'text/plain' }).events[0]!.json);
    expect(text).toMatchObject({ data: 'hello', datacontenttype: 'text/plain' });
    const bytes = Buffer.from([0, 1, 2, 127]) // valid UTF-8: the reference library signs the body as a string;
    const binary = JSON.parse(parse(bytes, { ...ce, 'content-type': 'application/octet-stream' }).events[0]!.json);
    expect(binary).toMatchObject({ data_base64: bytes.toString('base64') });
    expect(binary.data).toBeUndefined();
  });

  it('percent-decodes binary-mode header values', () => {
    const headers = { 'ce-specversion': '1.0', 'ce-id': 'b1', 'ce-source': '/s', 'ce-type': 't.x', 'ce-subject': 'caf%C3%A9', 'content-type': 'application/json' };
    expect(JSON.parse(parse('{}', headers).events[0]!.json).subject).toBe('café');
  });

  it('reads a batch into one event per element, in order', () => {
    const batch = [{ ...BASE, specversion: '1.0' }, { ...BASE, id: 'e2', specversion: '1.0' }];
    const result = parse(JSON.stringify(batch), { 'content-type': 'application/cloudevents-batch+json; charset=utf-8' });
    expect(result.batch).toBe(true);
    expect(result.events.map((e) => e.id)).toEqual(['e1', 'e2']);
  });

  it('accepts an empty batch as a valid request with no events', () => {
    expect(parse('[]', { 'content-type': 'application/cloudevents-batch+json' })).toEqual({ batch: true, events: [] });
  });

  it('strips kite-prefixed extensions in every mode and keeps the others', () => {
    const attributes = { ...BASE, kitefedorigin: 'evil', kitefedhops: 0, kite: 'x', mykite: 'kept' };
    for (const mode of ['structured', 'binary'] as const) {
      const { body, headers } = message(mode, attributes);
      const stored = JSON.parse(parse(body, headers).events[0]!.json);
      expect(Object.keys(stored).filter((k) => k.startsWith('kite')), mode).toEqual([]);
      expect(stored.mykite, mode).toBe('kept');
    }
    const batch = JSON.stringify([{ ...attributes, specversion: '1.0' }]);
    const stored = JSON.parse(parse(batch, { 'content-type': 'application/cloudevents-batch+json' }).events[0]!.json);
    expect(stored.kitefedorigin).toBeUndefined();
  });

  it('keeps kite-prefixed extensions when federation parses with stripping off', () => {
    const body = JSON.stringify([{ ...BASE, specversion: '1.0', kitefedorigin: 'a', kitefedchain: '["a"]', kitefedhops: 1 }]);
    const request = { headers: { 'content-type': 'application/cloudevents-batch+json' }, body: Buffer.from(body), receivedAt: NOW };
    const stored = JSON.parse(parseCloudEvents(request, { stripKiteExtensions: false }).events[0]!.json);
    expect(stored).toMatchObject({ kitefedorigin: 'a', kitefedchain: '["a"]', kitefedhops: 1 });
  });

  it('refuses the whole request when any event has a kite. type', () => {
    const batch = [{ ...BASE, specversion: '1.0' }, { ...BASE, id: 'e2', specversion: '1.0', type: 'kite.federation.delivery_failed' }];
    expect(codeOf(() => parse(JSON.stringify(batch), { 'content-type': 'application/cloudevents-batch+json' }))).toBe('reserved_type');
    const { body, headers } = message('binary', { ...BASE, type: 'kite.x' });
    expect(codeOf(() => parse(body, headers))).toBe('reserved_type');
  });

  it('answers invalid_body for events missing required attributes or of another spec version', () => {
    const cases = [
      { ...BASE, specversion: '0.3' },
      { ...BASE },
      { ...BASE, specversion: '1.0', id: '' },
      { ...BASE, specversion: '1.0', source: 7 },
      { ...BASE, specversion: '1.0', type: null },
      { ...BASE, specversion: '1.0', time: 'yesterday' },
      { ...BASE, specversion: '1.0', data_base64: 'AA==' },
      { ...BASE, specversion: '1.0', 'Bad-Name': 1 },
      { ...BASE, specversion: '1.0', data_base64: '%%%' },
      { ...BASE, specversion: '1.0', data_base64: 'AA==AA' },
      { ...BASE, specversion: '1.0', nested: { a: 1 } },
    ];
    for (const event of cases) {
      expect(codeOf(() => parse(JSON.stringify(event), { 'content-type': STRUCTURED })), JSON.stringify(event)).toBe('invalid_body');
    }
    expect(codeOf(() => parse('{"a":1}', { 'content-type': 'application/cloudevents-batch+json' }))).toBe('invalid_body');
    expect(codeOf(() => parse('[1]', { 'content-type': 'application/cloudevents-batch+json' }))).toBe('invalid_body');
    expect(codeOf(() => parse('{}', { 'content-type': 'text/plain' }))).toBe('invalid_body');
  });

  it('answers invalid_json for a signed body that is not JSON', () => {
    expect(codeOf(() => parse('{', { 'content-type': STRUCTURED }))).toBe('invalid_json');
  });

  it('checks the Standard Webhooks signature first, so unsigned or wrongly signed events are a 401', () => {
    const request = { headers: { 'content-type': STRUCTURED }, body: Buffer.from('garbage'), receivedAt: NOW };
    expect(codeOf(() => cloudeventsProvider.parse(request, SOURCE))).toBe('invalid_signature');
    const other = 'whsec_' + Buffer.alloc(24, 1).toString('base64');
    expect(codeOf(() => parse(JSON.stringify({ ...BASE, specversion: '1.0' }), { 'content-type': STRUCTURED }, other))).toBe('invalid_signature');
  });
});
