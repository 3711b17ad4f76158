/**
 * pg-boss 10 as a per-peer outbox, for the `outbox` scenario: one queue per peer, one job per
 * delivery, carrying what a row of the outbox table carries (team, seq, event id, source, type).
 * The API as read in node_modules/pg-boss/src (manager.js, plans.js), not as remembered:
 * - `send(name, data)`: one `INSERT … RETURNING id`, its own transaction on the boss's pool;
 * - `insert(jobs, { db })`: one `INSERT … SELECT FROM json_to_recordset($1)`, on `db.executeSql`
 *   when given (the caller's transaction); ON CONFLICT DO NOTHING and no RETURNING, so it resolves
 *   to null whether or not a job was stored;
 * - `fetch(name, { batchSize })`: UPDATE … SET state = 'active' of the first `batchSize` jobs
 *   `ORDER BY priority DESC, created_on, id … FOR UPDATE SKIP LOCKED`; it swallows errors and
 *   returns [] (hence the checks after each drain);
 * - `complete(name, ids)`: another UPDATE; `createQueue(name)` makes a partition of pgboss.job.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import PgBoss from 'pg-boss';
import { explainRolledBack, type PlanSummary } from './outbox-measure.js';
import { eventId, SOURCE, TYPE } from './outbox-table.js';
import { ROOT } from './results.js';

/** The installed pg-boss's version (the one measured). */
export function pgBossVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'pg-boss', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export async function startBoss(url: string): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: url,
    max: 3,
    application_name: 'bench-pgboss',
    // Nothing runs that is not measured: no maintenance loop (expire, archive), no cron and
    // clock-skew timers; the state monitor is off unless monitorStateInterval* is set.
    supervise: false,
    schedule: false,
    // Creates the pgboss schema, in the throwaway database only.
    migrate: true,
  });
  boss.on('error', (err: Error) => process.stderr.write(`pg-boss error: ${err.message}\n`));
  await boss.start();
  return boss;
}

let queues = 0;

/** A new queue (a new partition), so no measurement inherits another's dead rows. */
export async function freshQueue(boss: PgBoss, label: string, policy: PgBoss.QueuePolicy = 'standard'): Promise<string> {
  const name = `${label}_${++queues}`;
  await boss.createQueue(name, { name, policy });
  return name;
}

async function partitionOf(pool: pg.Pool, queue: string): Promise<string> {
  const { rows } = await pool.query<{ partition_name: string }>('SELECT partition_name FROM pgboss.queue WHERE name = $1', [queue]);
  return `pgboss.${pg.escapeIdentifier(rows[0]!.partition_name)}`;
}

/**
 * Deletes a queue and its partition. `deleteQueue()` alone refuses a queue that still holds any
 * job, completed ones included (the partition's foreign key to pgboss.queue is ON DELETE
 * RESTRICT), and without maintenance completed jobs stay: empty the partition first.
 */
export async function dropQueue(boss: PgBoss, pool: pg.Pool, queue: string): Promise<void> {
  await pool.query(`TRUNCATE ${await partitionOf(pool, queue)}`);
  await boss.deleteQueue(queue);
}

const jobData = (seq: number) => ({ teamId: 1, seq, eventId: eventId(seq), source: SOURCE, type: TYPE });

export function jobsFor(queue: string, seqs: readonly number[]): PgBoss.JobInsert[] {
  return seqs.map((seq) => ({ name: queue, data: jobData(seq) }));
}

/** pg-boss's `db` option: its SQL runs on this client, i.e. inside the client's transaction. */
export function onClient(client: pg.PoolClient): PgBoss.Db {
  return { executeSql: (text: string, values: unknown[]) => client.query(text, values) };
}

export async function sendOne(boss: PgBoss, queue: string, seq: number): Promise<number> {
  const id = await boss.send(queue, jobData(seq));
  if (!id) throw new Error(`pg-boss send() to ${queue} stored nothing`);
  return 1;
}

export async function insertJobs(boss: PgBoss, queue: string, seqs: readonly number[], client?: pg.PoolClient): Promise<number> {
  await boss.insert(jobsFor(queue, seqs), client ? { db: onClient(client) } : {});
  return seqs.length;
}

/** One drain step: fetch a batch (marks it active) and complete it. */
export async function drainStep(boss: PgBoss, queue: string, batch: number): Promise<number> {
  const jobs = await boss.fetch(queue, { batchSize: batch });
  if (jobs.length === 0) return 0;
  await boss.complete(queue, jobs.map((j) => j.id));
  return jobs.length;
}

/** Jobs not completed yet (created, retry or active): what a drain left, fetched or not. */
export function notCompleted(boss: PgBoss, queue: string): Promise<number> {
  return boss.getQueueSize(queue, { before: 'completed' });
}

/** ANALYZE the queue's partition, as autovacuum would after a bulk load (so the plan is not a guess). */
export async function analyzeQueue(pool: pg.Pool, queue: string): Promise<void> {
  await pool.query(`ANALYZE ${await partitionOf(pool, queue)}`);
}

/**
 * The plan of pg-boss's own fetch statement on this queue, run with EXPLAIN ANALYZE and rolled
 * back. The SQL is captured by handing `fetch` a `db` that records it instead of running it.
 */
export async function fetchPlan(boss: PgBoss, pool: pg.Pool, queue: string, batch: number): Promise<PlanSummary> {
  let sql = '';
  await boss.fetch(queue, {
    batchSize: batch,
    db: { executeSql: async (text: string) => ((sql = text), { rows: [] }) },
  });
  return explainRolledBack(pool, sql, [queue, batch]);
}

/**
 * Two connections, each in its own transaction, for `body` to interleave (the order and ticket
 * experiments); both are rolled back if `body` throws before committing them, and released.
 */
export async function withTwoTransactions<T>(pool: pg.Pool, body: (t1: pg.PoolClient, t2: pg.PoolClient) => Promise<T>): Promise<T> {
  const t1 = await pool.connect();
  const t2 = await pool.connect();
  let ok = false;
  try {
    await t1.query('BEGIN');
    const result = await body(t1, t2);
    ok = true;
    return result;
  } finally {
    if (!ok) {
      await t1.query('ROLLBACK').catch(() => {});
      await t2.query('ROLLBACK').catch(() => {});
    }
    t1.release(!ok);
    t2.release(!ok);
  }
}
