/**
 * `outbox`: pg-boss 10 as the per-peer federation outbox (the design's choice) next to a table
 * shaped like Kite's `federation_deliveries` (what Kite does), in one run, on a throwaway
 * database of the local Postgres (dropped at the end):
 * 1. enqueue — pg-boss `send()` one at a time vs a one-row INSERT (a commit each); `insert()` of
 *    1,000 jobs vs one `INSERT … SELECT FROM unnest` of 1,000 rows; and both on the caller's
 *    transaction (pg-boss's `db` option) next to 1,000 ~1 KB event rows;
 * 2. drain from queue depths 1,000 / 10,000 / 100,000 (`--backlog` sets the deepest; `--quick`:
 *    1,000 / 10,000): `fetch(batchSize 100)` + `complete` vs the actor's read (`… ORDER BY
 *    event_seq LIMIT 100`) + `UPDATE … status = 'delivered'`, until empty or for the window; the
 *    plans of both reads (EXPLAIN ANALYZE) at the deepest level;
 * 3. order — what `fetch` returns when jobs commit out of their start order (lib/outbox-order.ts);
 * 4. the wake-up ticket — one pg-boss job per group commit next to the table (lib/outbox-ticket.ts).
 * Each rate runs for min(--duration, 3) s (`--quick`: 1 s); rounds: max(--repeat, 3) (`--quick`:
 * --repeat, default 1), alternating which side goes first; summaries quote the medians, and the
 * ratio is table ÷ pg-boss.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type PgBoss from 'pg-boss';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineFacts, waitForQuiet } from './lib/machine.js';
import { explainRolledBack, rateOf, type PlanSummary, type Rate } from './lib/outbox-measure.js';
import { orderFacts } from './lib/outbox-order.js';
import { analyzeQueue, drainStep as bossDrainStep, dropQueue, fetchPlan, freshQueue, insertJobs, notCompleted, pgBossVersion, sendOne, startBoss } from './lib/outbox-pgboss.js';
import { drainStep, inTransaction, insertBatch, insertEvents, insertOne, NEXT_ROWS_SQL, pendingRows, TABLE_SCHEMA, takeSeqs } from './lib/outbox-table.js';
import { writeOutboxReport, type Pair, type Round } from './lib/outbox-report.js';
import { measureTickets, secondTicketWaitMs } from './lib/outbox-ticket.js';
import { runCleanups } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, type ScenarioOutcome } from './lib/results.js';
import { createScratchDatabase } from './lib/scratch-database.js';
import { formatCount } from './lib/stats.js';

const BATCH = 1000;
const DRAIN_BATCH = 100;
const TICKET_ROWS = 100;
const progress = new Progress();

interface Ctx {
  readonly boss: PgBoss;
  readonly pool: pg.Pool;
  readonly url: string;
  readonly windowMs: number;
  readonly depths: readonly number[];
  readonly ticketBatches: number;
  readonly steps: number;
  step: number;
}

function tick(ctx: Ctx, label: string): void {
  progress.update(`outbox: ${label}`, ctx.step++ / ctx.steps);
}

/** Both sides; pg-boss first on even rounds, the table first on odd ones (drift hits both alike). */
async function both<T>(round: number, pgBoss: () => Promise<T>, table: () => Promise<T>): Promise<Pair<T>> {
  if (round % 2 === 0) {
    const p = await pgBoss();
    return { pgBoss: p, table: await table() };
  }
  const t = await table();
  return { pgBoss: await pgBoss(), table: t };
}

/** Empty tables for each measurement, as each pg-boss measurement gets a new queue (partition). */
async function resetTables(pool: pg.Pool): Promise<void> {
  await pool.query('TRUNCATE events, outbox');
}

/** Runs `measure` on a new pg-boss queue, deleted (its partition dropped) afterwards. */
async function onQueue<T>(ctx: Ctx, label: string, measure: (queue: string) => Promise<T>): Promise<T> {
  const queue = await freshQueue(ctx.boss, label);
  try {
    return await measure(queue);
  } finally {
    await dropQueue(ctx.boss, ctx.pool, queue);
  }
}

async function onTable<T>(pool: pg.Pool, measure: (peer: string) => Promise<T>): Promise<T> {
  await resetTables(pool);
  return measure(randomUUID());
}

async function enqueueShapes(ctx: Ctx, round: number, ms: number): Promise<Pick<Round, 'sendOne' | 'batch' | 'inTransaction'>> {
  const { boss, pool, url } = ctx;
  tick(ctx, `round ${round + 1}: send() one at a time`);
  const oneAtATime = await both(round,
    () => onQueue(ctx, 'send', (q) => rateOf(url, () => sendOne(boss, q, takeSeqs(1)[0]!), ms)),
    () => onTable(pool, (peer) => rateOf(url, () => insertOne(pool, peer, takeSeqs(1)[0]!), ms)));
  tick(ctx, `round ${round + 1}: insert() of ${BATCH}`);
  const batch = await both(round,
    () => onQueue(ctx, 'batch', (q) => rateOf(url, () => insertJobs(boss, q, takeSeqs(BATCH)), ms)),
    () => onTable(pool, (peer) => rateOf(url, () => insertBatch(pool, peer, takeSeqs(BATCH)), ms)));
  tick(ctx, `round ${round + 1}: insert() in the caller's transaction`);
  const inTx = await both(round,
    () => onQueue(ctx, 'tx', async (q) => {
      await resetTables(pool);
      return rateOf(url, () => inTransaction(pool, async (client) => {
        const seqs = takeSeqs(BATCH);
        await insertEvents(client, seqs);
        return insertJobs(boss, q, seqs, client);
      }), ms);
    }),
    () => onTable(pool, (peer) => rateOf(url, () => inTransaction(pool, async (client) => {
      const seqs = takeSeqs(BATCH);
      await insertEvents(client, seqs);
      return insertBatch(client, peer, seqs);
    }), ms)));
  return { sendOne: oneAtATime, batch, inTransaction: inTx };
}

interface DrainSide {
  readonly rate: Rate;
  readonly plan: PlanSummary | undefined;
}

async function drainPgBoss(ctx: Ctx, depth: number, explain: boolean): Promise<DrainSide> {
  const { boss, pool, url } = ctx;
  return onQueue(ctx, `drain_${depth}`, async (q) => {
    for (let done = 0; done < depth; done += BATCH) await insertJobs(boss, q, takeSeqs(Math.min(BATCH, depth - done)));
    await analyzeQueue(pool, q);
    const plan = explain ? await fetchPlan(boss, pool, q, DRAIN_BATCH) : undefined;
    const rate = await rateOf(url, () => bossDrainStep(boss, q, DRAIN_BATCH), ctx.windowMs, depth);
    // fetch() swallows its errors and returns []: check that what was counted really was done.
    const left = await notCompleted(boss, q);
    if (left !== depth - rate.items) throw new Error(`pg-boss drain from ${depth}: ${left} jobs not completed, expected ${depth - rate.items}`);
    return { rate, plan };
  });
}

async function drainTable(ctx: Ctx, depth: number, explain: boolean): Promise<DrainSide> {
  const { pool, url } = ctx;
  return onTable(pool, async (peer) => {
    for (let done = 0; done < depth; done += BATCH) await insertBatch(pool, peer, takeSeqs(Math.min(BATCH, depth - done)));
    await pool.query('ANALYZE outbox');
    const plan = explain ? await explainRolledBack(pool, NEXT_ROWS_SQL, [peer, DRAIN_BATCH]) : undefined;
    const rate = await rateOf(url, () => drainStep(pool, peer, DRAIN_BATCH), ctx.windowMs, depth);
    const left = await pendingRows(pool, peer);
    if (left !== depth - rate.items) throw new Error(`table drain from ${depth}: ${left} rows pending, expected ${depth - rate.items}`);
    return { rate, plan };
  });
}

async function measureRound(ctx: Ctx, round: number, plans: Record<string, PlanSummary>): Promise<Round> {
  const enqueue = await enqueueShapes(ctx, round, ctx.windowMs);
  const drain: (Pair<Rate> & { depth: number })[] = [];
  for (const depth of ctx.depths) {
    tick(ctx, `round ${round + 1}: drain from ${formatCount(depth)}`);
    const explain = round === 0 && depth === ctx.depths[ctx.depths.length - 1];
    const pair = await both(round, () => drainPgBoss(ctx, depth, explain), () => drainTable(ctx, depth, explain));
    if (pair.pgBoss.plan) plans[`pg-boss fetch(${DRAIN_BATCH}) at depth ${formatCount(depth)}`] = pair.pgBoss.plan;
    if (pair.table.plan) plans[`table read of ${DRAIN_BATCH} at depth ${formatCount(depth)}`] = pair.table.plan;
    drain.push({ depth, pgBoss: pair.pgBoss.rate, table: pair.table.rate });
  }
  tick(ctx, `round ${round + 1}: wake-up tickets`);
  await resetTables(ctx.pool);
  const tickets = await measureTickets(ctx.boss, ctx.pool, ctx.url, round, ctx.ticketBatches, TICKET_ROWS);
  return { ...enqueue, drain, tickets };
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  const version = pgBossVersion();
  const rounds = flags.quick ? flags.repeat : Math.max(3, flags.repeat);
  const windowMs = (flags.quick ? 1 : Math.min(flags.duration, 3)) * 1000;
  const depths = flags.quick ? [1000, 10_000] : [1000, 10_000, flags.backlog ?? 100_000];
  const ticketBatches = flags.quick ? 50 : 200;
  progress.log(`outbox on ${describeMachine(machine)}; pg-boss ${version}; ${rounds} round(s), ${windowMs / 1000} s a rate, drain depths ${depths.map(formatCount).join(' / ')}`);
  const db = await createScratchDatabase('outbox');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  // Idle clients cut by the DROP … WITH (FORCE) at the end must not crash the bench.
  pool.on('error', () => {});
  let boss: PgBoss | undefined;
  const started = Date.now();
  try {
    await pool.query(TABLE_SCHEMA);
    boss = await startBoss(db.url);
    const ctx: Ctx = { boss, pool, url: db.url, windowMs, depths, ticketBatches, steps: rounds * (4 + depths.length) + 2, step: 0 };
    // Warm-up (connections, JIT, plan caches), not recorded.
    tick(ctx, 'warm-up');
    await enqueueShapes({ ...ctx, steps: Number.POSITIVE_INFINITY }, 0, 200);
    await measureTickets(boss, pool, db.url, 0, 10, TICKET_ROWS);
    const plans: Record<string, PlanSummary> = {};
    const results: Round[] = [];
    for (let r = 0; r < rounds; r++) {
      await waitForQuiet([], 0.25, flags.quick ? 5_000 : 20_000, (c) => progress.update('outbox', ctx.step / ctx.steps, `waiting: other processes use ${c.toFixed(2)} cores`));
      results.push(await measureRound(ctx, r, plans));
    }
    tick(ctx, 'order and ticket waits');
    const order = await orderFacts(boss, pool);
    const ticketWaitMs = {
      standard: await secondTicketWaitMs(boss, pool, 'standard'),
      short: await secondTicketWaitMs(boss, pool, 'short'),
      stately: await secondTicketWaitMs(boss, pool, 'stately'),
    };
    progress.clear();
    const settings = { rounds, windowMs, depths, batch: BATCH, drainBatch: DRAIN_BATCH, ticketRows: TICKET_ROWS, ticketBatches, seconds: Math.round((Date.now() - started) / 1000) };
    const { lines, file } = writeOutboxReport({ flags, machine, pgBossVersion: version, settings, rounds: results, plans, order, ticketWaitMs });
    for (const line of lines) progress.log(`  ${line}`);
    return { scenario: 'outbox', summary: lines, file };
  } finally {
    await boss?.stop({ graceful: false }).catch(() => {});
    await pool.end().catch(() => {});
    await db.drop();
  }
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/outbox.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
