/**
 * The forwarding rule's scope match in SQL (migration 0006, LIKE patterns) agrees with the JS
 * matcher used everywhere else (src/events/type-patterns.ts), on patterns and types chosen to
 * find the edges: `_` (a LIKE wildcard unless escaped), `*` anywhere, the optional `com.` prefix.
 */
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
  it('scopes - LIKE patterns built by kite_scopes_likes match exactly what the JS matcher matches', async () => {
    const rows = await db.query<{ scopes: string; type: string; matched: boolean }>(
      `SELECT s.scopes::text AS scopes, t.type, t.type LIKE ANY (kite_scopes_likes(s.scopes)) AS matched
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
});
