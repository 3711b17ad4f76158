/**
 * The copy of a stored event sent to a peer (contract §5): provenance stamped, everything else
 * unchanged. The fast path (text appended to the stored text) must mean exactly what the parse and
 * re-serialization (stampForPeer) means, for every shape of stored text.
 */
import { describe, expect, it } from 'vitest';
import { stampedCopyText, stampForPeer } from '../../src/federation/provenance.js';

const SELF = 'kite-a';

const texts: Record<string, string> = {
  compact: '{"specversion":"1.0","id":"e1","source":"/s","type":"t.x","data":{"a":[1,2,{"b":null}]}}',
  spaced: ' {\n  "specversion": "1.0", "id": "e2", "source": "/s", "type": "t.x",\n  "data": {"n": 1.50, "big": 1e21}\n}\n ',
  'braces in strings': '{"specversion":"1.0","id":"e3","source":"/s","type":"t.x","data":{"text":"} { ]"}}',
  'no data': '{"specversion":"1.0","id":"e4","source":"/s","type":"t.x"}',
  'kitefed in data only': '{"specversion":"1.0","id":"e5","source":"/s","type":"t.x","data":{"note":"kitefedhops is a word"}}',
  'escaped key': '{"specversion":"1.0","id":"e6","source":"/s","type":"t.x","\\u006bitefedhops":4}',
  'already forwarded': '{"specversion":"1.0","id":"e7","source":"/s","type":"t.x","kitefedorigin":"kite-z","kitefedchain":"[\\"kite-z\\"]","kitefedhops":1}',
  'unicode': '{"specversion":"1.0","id":"e8","source":"/s","type":"t.x","data":{"name":"Zoë ✓"}}',
};

describe('stampedCopyText', () => {
  for (const [name, text] of Object.entries(texts)) {
    it(`${name}: means what the parsed and stamped copy means`, () => {
      const copy = stampedCopyText(text, SELF);
      expect(JSON.parse(copy)).toEqual(stampForPeer(text, SELF));
    });
  }

  it('an event without provenance goes out as stored, with the three members appended', () => {
    const text = texts['spaced']!;
    const copy = stampedCopyText(text, SELF);
    expect(copy.startsWith(text.trimEnd().slice(0, -1).trimEnd())).toBe(true);
    expect(copy).toContain('"big": 1e21'); // not re-serialized
    expect(JSON.parse(copy)).toMatchObject({ kitefedorigin: SELF, kitefedchain: '["kite-a"]', kitefedhops: 1 });
  });

  it('an event forwarded before keeps its origin, extends its chain and counts one more hop', () => {
    expect(JSON.parse(stampedCopyText(texts['already forwarded']!, SELF))).toMatchObject({
      kitefedorigin: 'kite-z', kitefedchain: '["kite-z","kite-a"]', kitefedhops: 2,
    });
  });

  it('an escaped provenance key is honoured, not duplicated', () => {
    expect(JSON.parse(stampedCopyText(texts['escaped key']!, SELF)).kitefedhops).toBe(5);
  });
});
