/**
 * The "wake-up ticket" alternative, for the `outbox` scenario: the table stays the ordered
 * source of deliveries, and each group commit also inserts one pg-boss job per (append batch,
 * peer) — a durable mailbox telling the peer's worker "read your rows". Measured: what the ticket
 * adds to a group commit of 100 events (and their 100 delivery rows), per batch:
 * - baseline: one autocommitted statement writing both, as kite_append_events does;
 * - BEGIN; the same statement; `boss.insert([ticket], { db })`; COMMIT, on a queue of policy
 *   `standard` (every ticket stored), `short` (at most one *queued* job: unique index job_i1 on
 *   (name, coalesce(singleton_key, '')) WHERE state = 'created' AND policy = 'short') or
 *   `stately` (at most one queued and one active, job_i3). insert()'s ON CONFLICT DO NOTHING drops
 *   a refused ticket silently. Nobody consumes tickets here, so after the first one `short` and
 *   `stately` refuse every ticket: the steady state of a busy peer.
 * And whether a second transaction's ticket waits for the first's commit (the unique index makes
 * an insert wait for an in-progress conflicting row).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';
import type PgBoss from 'pg-boss';
import { timeBatches, type BatchTimes } from './outbox-measure.js';
import { dropQueue, freshQueue, onClient, withTwoTransactions } from './outbox-pgboss.js';
import { appendWithOutbox, inTransaction, takeSeqs } from './outbox-table.js';

export const TICKET_VARIANTS = ['one statement', 'standard', 'short', 'stately'] as const;
export type TicketVariant = (typeof TICKET_VARIANTS)[number];

export interface TicketRun extends BatchTimes {
  readonly variant: TicketVariant;
  /** Tickets in the queue after the run (one per batch for `standard`). */
  readonly ticketsQueued: number;
}

async function runVariant(boss: PgBoss, pool: pg.Pool, databaseUrl: string, variant: TicketVariant, batches: number, rows: number): Promise<TicketRun> {
  const peer = randomUUID();
  if (variant === 'one statement') {
    const times = await timeBatches(databaseUrl, () => appendWithOutbox(pool, peer, takeSeqs(rows)), batches, rows);
    return { variant, ...times, ticketsQueued: 0 };
  }
  const queue = await freshQueue(boss, `ticket_${variant}`, variant);
  const times = await timeBatches(databaseUrl, () => inTransaction(pool, async (client) => {
    const seqs = takeSeqs(rows);
    await appendWithOutbox(client, peer, seqs);
    await boss.insert([{ name: queue, data: { peer, upToSeq: seqs[seqs.length - 1] } }], { db: onClient(client) });
  }), batches, rows);
  const ticketsQueued = await boss.getQueueSize(queue);
  await dropQueue(boss, pool, queue);
  return { variant, ...times, ticketsQueued };
}

/** Every variant once; the order rotates with `round`, so no variant always runs first. */
export async function measureTickets(boss: PgBoss, pool: pg.Pool, databaseUrl: string, round: number, batches: number, rows = 100): Promise<TicketRun[]> {
  const order = TICKET_VARIANTS.map((_, i) => TICKET_VARIANTS[(i + round) % TICKET_VARIANTS.length]!);
  const runs: TicketRun[] = [];
  for (const variant of order) runs.push(await runVariant(boss, pool, databaseUrl, variant, batches, rows));
  return TICKET_VARIANTS.map((v) => runs.find((r) => r.variant === v)!);
}

/**
 * T1 inserts a ticket and holds its transaction open `holdMs`; T2 inserts one meanwhile. Returns
 * how long T2's insert took: ~0 when it did not wait, ~holdMs when it waited for T1's commit.
 */
export async function secondTicketWaitMs(boss: PgBoss, pool: pg.Pool, policy: PgBoss.QueuePolicy, holdMs = 200): Promise<number> {
  const queue = await freshQueue(boss, `wait_${policy}`, policy);
  try {
    return await withTwoTransactions(pool, async (t1, t2) => {
      await boss.insert([{ name: queue, data: { tx: 'T1' } }], { db: onClient(t1) });
      await t2.query('BEGIN');
      const started = performance.now();
      const second = boss.insert([{ name: queue, data: { tx: 'T2' } }], { db: onClient(t2) }).then(() => performance.now() - started);
      await sleep(holdMs);
      await t1.query('COMMIT');
      const waited = await second;
      await t2.query('COMMIT');
      return Math.round(waited);
    });
  } finally {
    await dropQueue(boss, pool, queue).catch(() => {});
  }
}
