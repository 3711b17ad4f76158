import { describe, expect, it } from 'vitest';
import { parsePublishedEvent } from '../../src/events/publish-input.js';
import { codeOf } from '../support/assertions.js';

const NOW = new Date('2026-11-27T19:36:43.000Z');
const AGENT = 'https://kite.example.com/agents/bot';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function publish(body: unknown, contentType = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return parsePublishedEvent(Buffer.from(text), contentType, AGENT, NOW);
}

describe('publishing an event', () => {
  it('fills specversion, id, source and time around a minimal {type, data}', () => {
    const event = publish({ type: 'com.kite.agent.message', data: { to: 'x', payload: 1 } });
    expect(event.id).toMatch(UUID);
    expect(event).toMatchObject({ source: AGENT, type: 'com.kite.agent.message', time: NOW.toISOString() });
    expect(JSON.parse(event.json)).toEqual({
      type: 'com.kite.agent.message', data: { to: 'x', payload: 1 }, specversion: '1.0', id: event.id, source: AGENT, time: NOW.toISOString(),
    });
  });

  it('gives every event without an id a fresh one', () => {
    expect(publish({ type: 't' }).id).not.toBe(publish({ type: 't' }).id);
  });

  it('keeps id, time, data, datacontenttype and extensions as sent', () => {
    const sent = { specversion: '1.0', id: 'm-1', type: 't.x', time: '2026-11-27T20:00:00+01:00', datacontenttype: 'text/plain', data: 'hi', trace: 'abc' };
    const event = publish(sent, 'application/cloudevents+json; charset=utf-8');
    expect(event).toMatchObject({ id: 'm-1', time: '2026-11-27T19:00:00.000Z', source: AGENT });
    expect(JSON.parse(event.json)).toEqual({ ...sent, source: AGENT });
  });

  it('accepts a source equal to the agent\'s own and refuses any other', () => {
    expect(publish({ type: 't', source: AGENT }).source).toBe(AGENT);
    expect(codeOf(() => publish({ type: 't', source: 'https://kite.example.com/agents/other' }))).toBe('invalid_source');
    expect(codeOf(() => publish({ type: 't', source: 5 }))).toBe('invalid_source');
  });

  it('removes kite-prefixed extensions, which only Kite may set', () => {
    const stored = JSON.parse(publish({ type: 't', kitefedorigin: 'forged', kitefedhops: 0, other: 1 }).json);
    expect(stored.kitefedorigin).toBeUndefined();
    expect(stored.kitefedhops).toBeUndefined();
    expect(stored.other).toBe(1);
  });

  it('refuses kite. types as reserved', () => {
    expect(codeOf(() => publish({ type: 'kite.federation.peer_state_changed' }))).toBe('reserved_type');
  });

  it('answers invalid_body without a usable type, with another specversion or with data and data_base64', () => {
    for (const body of [{}, { type: '' }, { type: 7 }, { type: 't', specversion: '0.3' }, { type: 't', id: '' }, { type: 't', data: 1, data_base64: 'AA==' }, [{ type: 't' }]]) {
      expect(codeOf(() => publish(body)), JSON.stringify(body)).toBe('invalid_body');
    }
  });

  it('answers invalid_json for a body that is not JSON', () => {
    expect(codeOf(() => publish('{"type":'))).toBe('invalid_json');
  });

  it('answers unsupported_media_type for other content types', () => {
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/cloudevents-batch+json', '']) {
      expect(codeOf(() => publish({ type: 't' }, type)), type).toBe('unsupported_media_type');
    }
    expect(publish({ type: 't' }, 'Application/JSON; charset=UTF-8').type).toBe('t');
  });
});
