/**
 * The receive route's sender cache alone (sender-cache.ts), with its lookup counted and its clock
 * set by hand: what it remembers, for how long, and what makes it read again.
 */
import { describe, expect, it } from 'vitest';
import type { PeerRecord } from '../../src/federation/peer-record.js';
import { SenderCache } from '../../src/federation/sender-cache.js';

function setup() {
  let now = 0;
  const rows = new Map<string, PeerRecord>([['1:kite-b', { id: 'peer-b', instanceId: 'kite-b' } as PeerRecord]]);
  const lookups: string[] = [];
  const cache = new SenderCache(async (teamId, instanceId) => {
    lookups.push(`${teamId}:${instanceId}`);
    return rows.get(`${teamId}:${instanceId}`);
  }, 1000, () => now);
  return { cache, rows, lookups, advance: (ms: number) => (now += ms) };
}

describe('SenderCache', () => {
  it('remembers a found peer for the TTL, then reads it again', async () => {
    const { cache, lookups, advance } = setup();
    expect(await cache.find(1, 'kite-b')).toEqual({ peer: expect.objectContaining({ id: 'peer-b' }), cached: false });
    advance(999);
    expect((await cache.find(1, 'kite-b')).cached).toBe(true);
    advance(1);
    expect((await cache.find(1, 'kite-b')).cached).toBe(false);
    expect(lookups).toEqual(['1:kite-b', '1:kite-b']);
  });

  it('does not remember an unknown sender, so a peer added meanwhile is found at once', async () => {
    const { cache, rows, lookups } = setup();
    expect((await cache.find(1, 'kite-c')).peer).toBeUndefined();
    rows.set('1:kite-c', { id: 'peer-c', instanceId: 'kite-c' } as PeerRecord);
    expect((await cache.find(1, 'kite-c')).peer?.id).toBe('peer-c');
    expect(lookups).toEqual(['1:kite-c', '1:kite-c']);
  });

  it('reads again after forget(peer id), clear(), or when asked for a fresh read; a vanished peer is dropped', async () => {
    const { cache, rows, lookups } = setup();
    await cache.find(1, 'kite-b');
    cache.forget('peer-b');
    await cache.find(1, 'kite-b');
    cache.clear();
    await cache.find(1, 'kite-b');
    expect((await cache.find(1, 'kite-b', true)).cached).toBe(false);
    expect(lookups).toHaveLength(4);
    rows.delete('1:kite-b');
    expect((await cache.find(1, 'kite-b', true)).peer).toBeUndefined();
    expect((await cache.find(1, 'kite-b')).peer).toBeUndefined();
    expect(lookups).toHaveLength(6);
  });

  it('keeps teams apart: the same instance ID in another team is another entry', async () => {
    const { cache } = setup();
    await cache.find(1, 'kite-b');
    expect((await cache.find(2, 'kite-b')).peer).toBeUndefined();
  });
});
