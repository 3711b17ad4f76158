/**
 * Shared assertions about errors: the API's error answer, "a refused request changes nothing",
 * and the code of the KiteError a function throws.
 */
import { expect } from 'vitest';
import { KiteError } from '../../src/errors.js';
import type { TestDatabase } from './database.js';
import type { ApiAnswer } from './kite.js';

/** Everything a request could change: teams (with heads), keys (with hashes and revocation), sources, events. */
export async function databaseSnapshot(db: TestDatabase): Promise<unknown> {
  const [row] = await db.query(`
    SELECT
      (SELECT coalesce(json_agg(t ORDER BY t.id), '[]') FROM (SELECT id, slug, head FROM teams) t) AS teams,
      (SELECT coalesce(json_agg(k ORDER BY k.id), '[]')
         FROM (SELECT id, team_id, name, role, encode(hash, 'hex') AS hash, revoked_at FROM api_keys) k) AS keys,
      (SELECT coalesce(json_agg(s ORDER BY s.team_id, s.name), '[]')
         FROM (SELECT team_id, name, provider, secret, created_at FROM sources) s) AS sources,
      (SELECT count(*)::int FROM events) AS events`);
  return row;
}

/** `{"error": {"code": "<snake_case>", "message": "<sentence>"}}` as JSON, with this status (and code). */
export function expectError(answer: ApiAnswer, status: number, code?: string): void {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
  expect(answer.body).toEqual({ error: { code: expect.stringMatching(/^[a-z][a-z0-9_]*$/), message: expect.any(String) } });
  expect(answer.body.error.message.length).toBeGreaterThan(0);
  if (code) expect(answer.body.error.code).toBe(code);
}

/** A checker that a request is refused with this status/code and leaves the database as it was. */
export function refusedWithoutChange(db: () => TestDatabase) {
  return async (request: () => Promise<ApiAnswer>, status: number, code?: string): Promise<ApiAnswer> => {
    const before = await databaseSnapshot(db());
    const answer = await request();
    expectError(answer, status, code);
    expect(await databaseSnapshot(db())).toEqual(before);
    return answer;
  };
}

/** The code of the KiteError `fn` throws; fails if it throws anything else or returns. */
export function codeOf(fn: () => unknown): string {
  const code = codeIfThrown(fn);
  if (code === undefined) throw new Error('expected a KiteError');
  return code;
}

/** The code of the KiteError `fn` throws, or undefined when it returns; anything else thrown fails. */
export function codeIfThrown(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (err instanceof KiteError) return err.code;
    throw err;
  }
}
