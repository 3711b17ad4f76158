import { describe, expect, it } from 'vitest';
import { buildEventJson, isReservedType, keepStructuredEvent, parseEventTime, toIsoTime } from '../../src/events/cloudevent-json.js';

const BASE = { id: 'evt_1', source: 'https://kite.example.com/hooks/acme/pay', type: 'com.stripe.charge.succeeded', time: '2026-11-27T19:36:43.000Z' };

describe('stored CloudEvent JSON', () => {
  it('splices the data text verbatim after the context attributes, trimmed', () => {
    const json = buildEventJson({ ...BASE, dataJson: '\n  {"amount": 12345678901234567890, "b":[1, 2]}\r\n' });
    expect(json).toBe(
      '{"specversion":"1.0","id":"evt_1","source":"https://kite.example.com/hooks/acme/pay","type":"com.stripe.charge.succeeded",' +
      '"time":"2026-11-27T19:36:43.000Z","datacontenttype":"application/json","data":{"amount": 12345678901234567890, "b":[1, 2]}}',
    );
    expect(() => JSON.parse(json)).not.toThrow();
  });

  it('escapes attribute values so a quote in an id cannot break the JSON', () => {
    const json = buildEventJson({ ...BASE, id: 'a"b\\c\n', dataJson: 'null' });
    expect(JSON.parse(json).id).toBe('a"b\\c\n');
  });

  it('adds extensions before data and refuses names CloudEvents does not allow', () => {
    const json = buildEventJson({ ...BASE, dataJson: '{}', extensions: { kitefedorigin: 'a', kitefedchain: '["a"]', kitefedhops: 1 } });
    expect(JSON.parse(json)).toMatchObject({ kitefedorigin: 'a', kitefedchain: '["a"]', kitefedhops: 1, data: {} });
    expect(() => buildEventJson({ ...BASE, dataJson: '{}', extensions: { 'Bad-Name': 1 } })).toThrow();
    expect(() => buildEventJson({ ...BASE, dataJson: '  ' })).toThrow();
  });

  it('formats times as ISO 8601 UTC with milliseconds, from a Date or unix seconds', () => {
    expect(toIsoTime(1795807003)).toBe('2026-11-27T19:16:43.000Z');
    expect(toIsoTime(1795807003.5)).toBe('2026-11-27T19:16:43.500Z');
    expect(toIsoTime(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe('2026-01-02T03:04:05.006Z');
  });

  it('reads RFC 3339 strings and unix seconds, and nothing looser', () => {
    expect(parseEventTime('2026-11-27T20:36:43+01:00')).toBe('2026-11-27T19:36:43.000Z');
    expect(parseEventTime('2024-02-29t00:00:00.1234567z')).toBe('2024-02-29T00:00:00.123Z');
    expect(parseEventTime(0)).toBe('1970-01-01T00:00:00.000Z');
    for (const bad of ['2026-02-29T00:00:00Z', '2026-04-31T00:00:00Z', '2026-01-01T24:00:00Z', '2026-01-01', 'March 7, 2020', '', 1795807003000, Number.NaN, null, true]) {
      expect(parseEventTime(bad), String(bad)).toBeNull();
    }
  });

  it('reserves exactly the kite. prefix', () => {
    expect(isReservedType('kite.federation.peer_state_changed')).toBe(true);
    expect(isReservedType('com.kite.agent.message')).toBe(false);
    expect(isReservedType('kitefoo')).toBe(false);
  });

  it('keeps a structured event as sent but drops null attributes and refuses a __proto__ attribute', () => {
    const raw = JSON.parse('{"specversion":"1.0","id":"1","source":"/s","type":"t","subject":null,"data":null}');
    const kept = keepStructuredEvent(raw, { receivedAt: new Date(0), stripKiteExtensions: true });
    expect(JSON.parse(kept.json)).toEqual({ specversion: '1.0', id: '1', source: '/s', type: 't', data: null, time: '1970-01-01T00:00:00.000Z' });
    const polluted = JSON.parse('{"specversion":"1.0","id":"1","source":"/s","type":"t","__proto__":{"x":1}}');
    expect(() => keepStructuredEvent(polluted, { receivedAt: new Date(0), stripKiteExtensions: true })).toThrow(/attribute name/);
  });
});
