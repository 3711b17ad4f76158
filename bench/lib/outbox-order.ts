/**
 * Order, for the `outbox` scenario: in what order does pg-boss's `fetch` hand out jobs that
 * committed in a given order? Its fetch sorts by `priority DESC, created_on, id`, where
 * `created_on` defaults to now() — the start of the inserting transaction — and `id` to
 * gen_random_uuid(). And the array a fetch returns comes from `UPDATE … RETURNING`, whose row
 * order is the join's, not the sort's. Four experiments, each on a fresh queue:
 * - two transactions: T1 begins and inserts its job, T2 begins later, inserts, and commits
 *   first; T1 commits second. Fetches of ONE job (so the array order plays no part): (a) after
 *   both commits; (b) one between the commits (a worker polling then), the next after T1's;
 * - the 1,000 jobs of one `insert()` call (one statement: one now()), fetched 100 at a time:
 *   does each fetch get the next 100 in insert order, and is each array in that order?
 * - the same with caller-given ids that increase (the tie-breaker after created_on);
 * - 100 `send()` calls one after another (a transaction, so a now(), each), fetched 10 at a time.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type PgBoss from 'pg-boss';
import { freshQueue, onClient, withTwoTransactions } from './outbox-pgboss.js';
import { formatCount } from './stats.js';

export interface TwoTransactions {
  /** Jobs fetched (by transaction) while T1 was still open, after T2's commit. */
  readonly fetchedBetween: readonly string[];
  /** Jobs fetched after both commits. */
  readonly fetchedAfter: readonly string[];
  /** created_on of each job (ISO, µs cut to ms by JS). */
  readonly createdOn: Record<string, string>;
}

export interface BatchOrder {
  readonly jobs: number;
  readonly fetchSize: number;
  /** Jobs that came in another fetch than their insert position's (the k-th fetch should hold #k·size …). */
  readonly inWrongFetch: number;
  /** Adjacent pairs inside one fetch's array whose insert positions are reversed. */
  readonly reversedInArray: number;
}

export interface OrderFacts {
  readonly fetchAfterBoth: TwoTransactions;
  readonly fetchBetween: TwoTransactions;
  readonly oneInsert: BatchOrder;
  readonly oneInsertIncreasingIds: BatchOrder;
  readonly sequentialSends: BatchOrder;
}

type Fetched = { data: { tx?: string; n?: number }; createdOn: Date };

/** Every job of the queue, one fetch of `batch` after another: the arrays as fetch returned them. */
async function fetchAll(boss: PgBoss, queue: string, batch: number): Promise<Fetched[][]> {
  const out: Fetched[][] = [];
  for (;;) {
    const jobs = await boss.fetch<{ tx?: string; n?: number }>(queue, { batchSize: batch, includeMetadata: true });
    if (jobs.length === 0) return out;
    out.push(jobs.map((j) => ({ data: j.data, createdOn: j.createdOn })));
  }
}

async function twoTransactions(boss: PgBoss, pool: pg.Pool, fetchInBetween: boolean): Promise<TwoTransactions> {
  const queue = await freshQueue(boss, fetchInBetween ? 'order_between' : 'order_after');
  return withTwoTransactions(pool, async (t1, t2) => {
    await boss.insert([{ name: queue, data: { tx: 'T1' } }], { db: onClient(t1) });
    await sleep(20); // T2's now() is strictly later than T1's
    await t2.query('BEGIN');
    await boss.insert([{ name: queue, data: { tx: 'T2' } }], { db: onClient(t2) });
    await t2.query('COMMIT');
    const between = fetchInBetween ? (await fetchAll(boss, queue, 1)).flat() : [];
    await t1.query('COMMIT');
    const after = (await fetchAll(boss, queue, 1)).flat();
    const createdOn: Record<string, string> = {};
    for (const j of [...between, ...after]) createdOn[j.data.tx!] = j.createdOn.toISOString();
    return { fetchedBetween: between.map((j) => j.data.tx!), fetchedAfter: after.map((j) => j.data.tx!), createdOn };
  });
}

function orderOf(fetches: readonly Fetched[][], fetchSize: number): BatchOrder {
  let jobs = 0;
  let inWrongFetch = 0;
  let reversedInArray = 0;
  fetches.forEach((array, k) => {
    const ns = array.map((j) => j.data.n!);
    jobs += ns.length;
    inWrongFetch += ns.filter((n) => Math.floor(n / fetchSize) !== k).length;
    for (let i = 1; i < ns.length; i++) if (ns[i]! < ns[i - 1]!) reversedInArray++;
  });
  return { jobs, fetchSize, inWrongFetch, reversedInArray };
}

/** A valid uuid that sorts by n (Postgres compares uuids bytewise). */
const increasingId = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

async function oneInsert(boss: PgBoss, jobs: number, withIds: boolean): Promise<BatchOrder> {
  const queue = await freshQueue(boss, withIds ? 'order_ids' : 'order_batch');
  await boss.insert(Array.from({ length: jobs }, (_, n) => ({ name: queue, data: { n }, ...(withIds ? { id: increasingId(n) } : {}) })));
  return orderOf(await fetchAll(boss, queue, 100), 100);
}

async function sequentialSends(boss: PgBoss, jobs: number): Promise<BatchOrder> {
  const queue = await freshQueue(boss, 'order_sends');
  for (let n = 0; n < jobs; n++) await boss.send(queue, { n });
  return orderOf(await fetchAll(boss, queue, 10), 10);
}

export async function orderFacts(boss: PgBoss, pool: pg.Pool): Promise<OrderFacts> {
  return {
    fetchAfterBoth: await twoTransactions(boss, pool, false),
    fetchBetween: await twoTransactions(boss, pool, true),
    oneInsert: await oneInsert(boss, 1000, false),
    oneInsertIncreasingIds: await oneInsert(boss, 1000, true),
    sequentialSends: await sequentialSends(boss, 100),
  };
}

/** The facts as sentences, for the summary and the docs. */
export function describeOrder(o: OrderFacts): string[] {
  const first = o.fetchAfterBoth.fetchedAfter[0];
  const between = o.fetchBetween;
  const batch = (b: BatchOrder) =>
    `${b.inWrongFetch} of ${formatCount(b.jobs)} came in another fetch (of ${b.fetchSize}) than their insert position's, ${b.reversedInArray} adjacent pairs reversed inside the arrays`;
  return [
    `T1 began first and committed second, T2 began later and committed first: fetching one job at a time after both commits returned ${o.fetchAfterBoth.fetchedAfter.join(' then ')} ` +
      (first === 'T1' ? "(T1's job first: created first, committed second — the queue is in transaction-start order, not commit order)" : "(T2's job first: commit order)"),
    `a fetch between the two commits returned ${between.fetchedBetween.join(', ') || 'nothing'}, the next one ${between.fetchedAfter.join(', ') || 'nothing'}: ` +
      'with the same two transactions, what a peer receives first depends on when its worker polled',
    `the 1,000 jobs of one insert(): ${batch(o.oneInsert)}; with increasing caller-given ids: ${batch(o.oneInsertIncreasingIds)}; 100 send() one after another: ${batch(o.sequentialSends)}`,
  ];
}
