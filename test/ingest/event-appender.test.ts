/**
 * Group commit on a real database: one flush per team at a time while its queue is shallow (a
 * second one would only wait for the team's row lock, paying the append function's fixed cost for
 * a batch of one), several when it is deep, other teams' flushes alongside, and each team's events
 * stored in the order they were handed in.
 */
import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPool, type Pool } from '../../src/db/pool.js';
import { EventAppender } from '../../src/ingest/event-appender.js';
import type { NormalizedEvent } from '../../src/providers/types.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

let db: TestDatabase;
let pool: Pool;
let teams: number[];

beforeAll(async () => {
  db = await createTestDatabase();
  const rows = await db.query<{ id: number }>(`INSERT INTO teams (slug) VALUES ('one'), ('two') RETURNING id::int AS id`);
  teams = rows.map((r) => r.id);
  pool = createPool(db.url, pino({ level: 'silent' }), 6);
});

afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function event(id: string): NormalizedEvent {
  return { id, source: '/test', type: 'test.happened', time: new Date().toISOString(), json: JSON.stringify({ specversion: '1.0', id, source: '/test', type: 'test.happened' }) };
}

/** The pool, counting the append calls running at once per team (every call here has one team). */
function countingPool(): { pool: Pool; maxRunning: Map<number, number> } {
  const running = new Map<number, number>();
  const maxRunning = new Map<number, number>();
  const counting = {
    query: async (config: { values: unknown[] }) => {
      const team = Number((config.values[0] as number[])[0]);
      running.set(team, (running.get(team) ?? 0) + 1);
      maxRunning.set(team, Math.max(maxRunning.get(team) ?? 0, running.get(team)!));
      try {
        return await pool.query(config as pg.QueryConfig);
      } finally {
        running.set(team, running.get(team)! - 1);
      }
    },
  };
  return { pool: counting as unknown as Pool, maxRunning };
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('EventAppender', () => {
  it('runs one flush per team at a time while its queue is shallow; what comes meanwhile forms the next batch, in order', async () => {
    const { pool: counted, maxRunning } = countingPool();
    const sizes: number[] = [];
    const appender = new EventAppender(counted, { selfInstanceId: 'kite-a', federationSource: 'https://a.example/federation', onFlush: (size) => sizes.push(size) });
    const teamId = teams[0]!;
    const results: Promise<{ seq: number }>[] = [];
    // 45 events over 15 turns of the event loop (fewer than the 50 that make a queue deep): each
    // turn's arrive while an earlier flush runs.
    for (let turn = 0; turn < 15; turn++) {
      for (let i = 0; i < 3; i++) results.push(appender.append({ teamId, event: event(`shallow-${turn}-${i}`) }));
      await nextTick();
    }
    const seqs = (await Promise.all(results)).map((r) => r.seq);
    expect(maxRunning.get(teamId)).toBe(1);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i)); // stored in the order handed in, no gap
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(45);
    expect(sizes.length).toBeLessThan(15); // events that waited were written together
    await appender.drain();
  });

  it('lets more flushes of a team with a deep queue wait on its lock (up to maxInFlight), every event stored once', async () => {
    const { pool: counted, maxRunning } = countingPool();
    const appender = new EventAppender(counted, { selfInstanceId: 'kite-a', federationSource: 'https://a.example/federation' });
    const teamId = teams[0]!;
    const results: Promise<{ seq: number }>[] = [];
    for (let i = 0; i < 2500; i++) results.push(appender.append({ teamId, event: event(`deep-${i}`) }));
    const seqs = (await Promise.all(results)).map((r) => r.seq);
    expect(maxRunning.get(teamId)).toBe(3); // batches of 1,000, 1,000 and 500, all sent at once
    // Flushes sent together take the team's lock in whatever order they reach Postgres, so
    // separate appends may be numbered in another order than they were made (as concurrent
    // webhooks may: one request's events are never split, see below); none is lost or doubled.
    const sorted = [...seqs].sort((x, y) => x - y);
    expect(sorted).toEqual(sorted.map((_, i) => sorted[0]! + i));
    await appender.drain();
  });

  it('never splits one request (appendMany) across flushes, even past the batch size', async () => {
    const sizes: number[] = [];
    const appender = new EventAppender(pool, { selfInstanceId: 'kite-a', federationSource: 'https://a.example/federation', onFlush: (size) => sizes.push(size) });
    const teamId = teams[1]!;
    const singles = Array.from({ length: 900 }, (_, i) => appender.append({ teamId, event: event(`single-${i}`) }));
    // 300 events of one request, queued behind 900: a batch of 1,000 would cut it after 100.
    const request = appender.appendMany(Array.from({ length: 300 }, (_, i) => ({ teamId, event: event(`request-${i}`) })));
    const [, stored] = await Promise.all([Promise.all(singles), request]);
    expect(sizes[0]).toBe(1200);
    const seqs = stored.map((r) => r.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
    await appender.drain();
  });

  it('a value Postgres refuses fails only its own request (400): the other requests of the batch, of any team, are stored, a multi-event request whole', async () => {
    const sizes: { size: number; ok: boolean }[] = [];
    const appender = new EventAppender(pool, { selfInstanceId: 'kite-a', federationSource: 'https://a.example/federation', onFlush: (size, _s, ok) => sizes.push({ size, ok }) });
    const poisoned = (id: string): NormalizedEvent => ({ ...event(id), json: JSON.stringify({ specversion: '1.0', id, source: '/test', type: 'test.happened', data: { text: 'a\u0000b' } }) });
    // Past what the dedup index holds (random, so compression cannot shrink it).
    const tooLong = event(`long-${randomBytes(4500).toString('hex')}`);
    // All in one tick: one batch.
    const settled = await Promise.allSettled([
      appender.append({ teamId: teams[0]!, event: event('poison-ok-1') }),
      appender.append({ teamId: teams[1]!, event: poisoned('poison-bad') }),
      appender.appendMany([{ teamId: teams[1]!, event: event('poison-ok-2a') }, { teamId: teams[1]!, event: event('poison-ok-2b') }]),
      appender.append({ teamId: teams[0]!, event: tooLong }),
      appender.append({ teamId: teams[0]!, event: event('poison-ok-3') }),
    ]);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const { coerceError } = await import('../../src/errors.js');
    for (const failed of [settled[1], settled[3]] as PromiseRejectedResult[]) expect(coerceError(failed.reason)).toMatchObject({ status: 400, code: 'invalid_input' });
    const stored = await db.query<{ id: string }>(`SELECT id FROM events WHERE id LIKE 'poison-%' OR id LIKE 'long-%' ORDER BY team_id, seq`);
    expect(stored.map((r) => r.id)).toEqual(['poison-ok-1', 'poison-ok-3', 'poison-ok-2a', 'poison-ok-2b']);
    // The batch of six events failed, then went again in halves (by request), halved again while
    // failing: [ok-1, bad, ok-2a+2b] fails → [ok-1, bad] fails → ok-1, bad; ok-2a+2b; then
    // [tooLong, ok-3] fails → tooLong, ok-3.
    expect(sizes.map((f) => [f.size, f.ok])).toEqual([[6, false], [4, false], [2, false], [1, true], [1, false], [2, true], [2, false], [1, false], [1, true]]);
  });

  it('flushes another team while one team waits for its row lock', async () => {
    const appender = new EventAppender(pool, { selfInstanceId: 'kite-a', federationSource: 'https://a.example/federation' });
    const [locked, free] = teams as [number, number];
    const holder = await pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM teams WHERE id = $1 FOR NO KEY UPDATE', [locked]);
      let lockedDone = false;
      const waiting = appender.append({ teamId: locked, event: event('behind-lock') }).then((r) => ((lockedDone = true), r));
      await nextTick();
      // A second event of the locked team queues behind its flush; the free team's goes now.
      const queued = appender.append({ teamId: locked, event: event('behind-lock-2') });
      const other = await appender.append({ teamId: free, event: event('free-team') });
      expect(other.duplicate).toBe(false);
      expect(lockedDone).toBe(false);
      await holder.query('COMMIT');
      const [first, second] = await Promise.all([waiting, queued]);
      expect(second.seq).toBe(first.seq + 1);
    } finally {
      holder.release();
    }
    await appender.drain();
  });
});
