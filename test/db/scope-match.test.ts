/**
 * The forwarding rule's scope match in SQL agrees with the JS matcher used everywhere else
 * (src/events/type-patterns.ts), on patterns and types chosen to find the edges: `_` (a LIKE
 * wildcard unless escaped), `*` anywhere, the optional `com.` prefix. Migration 0007 finds exact
 * patterns through `peer_scope_types` (kept by a trigger) and only patterns with `*` with LIKE —
 * checked here piece by piece, then through the append function itself.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTypePatterns } from '../../src/events/type-patterns.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

const PATTERNS = [['*'], ['stripe.*'], ['com.stripe.*'], ['stripe.payment_intent.succeeded'], ['payment_intent*'], ['*.succeeded', 'github.*'],
  ['stripe.paymentXintent.*'], ['a*b*c'], ['com.kite.agent.message'], ['x-y.z']];
const TYPES = ['com.stripe.payment_intent.succeeded', 'stripe.payment_intent.succeeded', 'com.stripe.paymentXintent.created',
  'stripe.payment-intent.succeeded', 'com.github.push', 'payment_intent.created', 'paymentXintent.created', 'abc', 'aXbYc', 'ac',
  'com.kite.agent.message', 'kite.agent.message', 'com.com.stripe.x', 'x-y.z', 'com.x-y.z', 'x-y.zz'];

describe('scope match in SQL', () => {
  it('scopes - exact types (kite_scope_exact_types) and LIKE patterns (kite_scope_wild_likes) together match exactly what the JS matcher matches', async () => {
    const rows = await db.query<{ scopes: string; type: string; matched: boolean }>(
      `SELECT s.scopes::text AS scopes, t.type,
              t.type = ANY (kite_scope_exact_types(s.scopes)) OR t.type LIKE ANY (coalesce(kite_scope_wild_likes(s.scopes), '{}')) AS matched
         FROM unnest($1::jsonb[]) AS s (scopes), unnest($2::text[]) AS t (type)`,
      [PATTERNS.map((p) => JSON.stringify(p)), TYPES],
    );
    expect(rows).toHaveLength(PATTERNS.length * TYPES.length);
    const disagreements = rows.filter((r) => compileTypePatterns(JSON.parse(r.scopes) as string[])(r.type) !== r.matched);
    expect(disagreements).toEqual([]);
    // Not vacuous: both outcomes occur.
    expect(rows.some((r) => r.matched)).toBe(true);
    expect(rows.some((r) => !r.matched)).toBe(true);
  });

  it('scopes - the append function queues an event for exactly the peers whose scopes match it, through PATCHes and a removal', async () => {
    const [team] = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('scopes') RETURNING id::int AS id`);
    const peers = PATTERNS.map((patterns, i) => ({ id: randomUUID(), instance: `p${i}`, patterns }));
    for (const peer of peers) {
      await db.query(
        `INSERT INTO peers (id, team_id, instance_id, url, remote_team, scopes, max_hops, rate_limit, inbound_rate_limit, retry, outbound_key, inbound_key)
         VALUES ($1, $2, $3, 'https://x.example', 'x', $4, 8, '{}', '{}', '{}', 'k1', 'k2')`,
        [peer.id, team!.id, peer.instance, JSON.stringify(peer.patterns)],
      );
    }
    let n = 0;
    const appendAll = async () => {
      const ids = TYPES.map(() => `ev-${n++}`);
      await db.query(
        `SELECT * FROM kite_append_events($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::json, 'kite-self', 'https://self/federation')`,
        [TYPES.map(() => team!.id), TYPES.map(() => '/s'), ids, TYPES, TYPES.map(() => new Date().toISOString()),
          JSON.stringify(TYPES.map((type, i) => ({ specversion: '1.0', id: ids[i], source: '/s', type })))],
      );
      const rows = await db.query<{ peer_id: string; event_type: string }>(
        'SELECT peer_id, event_type FROM federation_deliveries WHERE event_id = ANY ($1) ORDER BY peer_id, event_type', [ids]);
      return rows.map((r) => `${r.peer_id} ${r.event_type}`);
    };
    // Internal types (`kite.*`) never leave the instance, whatever the scopes.
    const expected = (live: typeof peers) => live
      .flatMap((peer) => TYPES.filter((type) => !type.startsWith('kite.') && compileTypePatterns(peer.patterns)(type)).map((type) => `${peer.id} ${type}`))
      .sort();

    const first = await appendAll();
    expect(first).toEqual(expected(peers));
    expect(first.length).toBeGreaterThan(10); // not vacuous

    // Swap exact and wildcard scopes between two peers, remove a third: the trigger keeps up.
    [peers[1]!.patterns, peers[3]!.patterns] = [peers[3]!.patterns, peers[1]!.patterns];
    await db.query('UPDATE peers SET scopes = $2 WHERE id = $1', [peers[1]!.id, JSON.stringify(peers[1]!.patterns)]);
    await db.query('UPDATE peers SET scopes = $2 WHERE id = $1', [peers[3]!.id, JSON.stringify(peers[3]!.patterns)]);
    await db.query('UPDATE peers SET deleted_at = now() WHERE id = $1', [peers[4]!.id]);
    expect(await appendAll()).toEqual(expected(peers.filter((_, i) => i !== 4)));
  });
});
