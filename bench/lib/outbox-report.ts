/**
 * What the `outbox` scenario reports: the medians over rounds of each figure, one summary line
 * per figure (table ÷ pg-boss of the medians), the JSON in bench/results/ and two SVG charts
 * (rates on a log axis; the wake-up ticket's ms per group commit).
 */
import type { BenchFlags } from './flags.js';
import type { MachineFacts } from './machine.js';
import { describeMachine } from './machine.js';
import type { PlanSummary, Rate, Spread } from './outbox-measure.js';
import { spread } from './outbox-measure.js';
import { describeOrder, type OrderFacts } from './outbox-order.js';
import { TICKET_VARIANTS, type TicketRun } from './outbox-ticket.js';
import { writeResults } from './results.js';
import { formatCount, median, ratio } from './stats.js';
import { barChartSvg, writeChart } from './svg-chart.js';

export interface Pair<T> {
  readonly pgBoss: T;
  readonly table: T;
}

/** One round: every figure measured once. */
export interface Round {
  readonly sendOne: Pair<Rate>;
  readonly batch: Pair<Rate>;
  readonly inTransaction: Pair<Rate>;
  readonly drain: readonly (Pair<Rate> & { readonly depth: number })[];
  readonly tickets: readonly TicketRun[];
}

export interface Measured {
  readonly flags: BenchFlags;
  readonly machine: MachineFacts;
  readonly pgBossVersion: string;
  readonly settings: {
    readonly rounds: number;
    readonly windowMs: number;
    readonly depths: readonly number[];
    readonly batch: number;
    readonly drainBatch: number;
    readonly ticketRows: number;
    readonly ticketBatches: number;
    readonly seconds: number;
  };
  readonly rounds: readonly Round[];
  readonly plans: Record<string, PlanSummary>;
  readonly order: OrderFacts;
  readonly ticketWaitMs: Record<'standard' | 'short' | 'stately', number>;
}

interface PairFigure {
  readonly pgBoss: Spread;
  readonly table: Spread;
  readonly ratio: number;
}

/** Median rates of one shape over rounds, and table ÷ pg-boss of the medians. */
function pairFigure(pairs: readonly Pair<Rate>[]): PairFigure {
  const pgBoss = spread(pairs.map((p) => p.pgBoss.perSec));
  const table = spread(pairs.map((p) => p.table.perSec));
  return { pgBoss, table, ratio: ratio(table.median, pgBoss.median) };
}

function figuresOf(m: Measured) {
  const { rounds } = m;
  return {
    sendOne: pairFigure(rounds.map((r) => r.sendOne)),
    batch: pairFigure(rounds.map((r) => r.batch)),
    inTransaction: pairFigure(rounds.map((r) => r.inTransaction)),
    drain: m.settings.depths.map((depth, i) => ({
      depth, ...pairFigure(rounds.map((r) => r.drain[i]!)), drainedPgBoss: median(rounds.map((r) => r.drain[i]!.pgBoss.items)),
    })),
    tickets: TICKET_VARIANTS.map((variant) => {
      const runs = rounds.map((r) => r.tickets.find((t) => t.variant === variant)!);
      return { variant, msPerBatch: spread(runs.map((t) => t.medianMs), 2), rowsPerSec: spread(runs.map((t) => t.rowsPerSec)), ticketsQueued: runs[0]!.ticketsQueued };
    }),
  };
}

type Figures = ReturnType<typeof figuresOf>;

const range = (s: Spread) => (s.min === s.max ? '' : ` (${formatCount(s.min)}–${formatCount(s.max)})`);
const rate = (s: Spread) => `${formatCount(s.median)}${range(s)}`;
const pairLine = (label: string, f: PairFigure, boss: string, table: string) =>
  `outbox ${label}: pg-boss ${boss} ${rate(f.pgBoss)} jobs/s · table ${table} ${rate(f.table)} rows/s · table ÷ pg-boss ${f.ratio}`;

function summaryLines(m: Measured, f: Figures): string[] {
  const { batch, drainBatch, ticketRows } = m.settings;
  const foreign = Math.max(
    ...m.rounds.flatMap((r) => [r.sendOne, r.batch, r.inTransaction, ...r.drain].flatMap((p) => [p.pgBoss.foreignCores, p.table.foreignCores])),
    ...m.rounds.flatMap((r) => r.tickets.map((t) => t.foreignCores)),
  );
  const base = f.tickets[0]!;
  const withTicket = f.tickets.slice(1);
  const ticketText = withTicket.map((t) => `${t.variant} ${t.msPerBatch.median} ms (${ratio(t.msPerBatch.median, base.msPerBatch.median)}×, ${formatCount(t.rowsPerSec.median)} rows/s)`).join(', ');
  const w = m.ticketWaitMs;
  return [
    `outbox on ${describeMachine(m.machine)}; pg-boss ${m.pgBossVersion}; medians of ${m.settings.rounds} round(s) (lowest–highest), ${m.settings.windowMs / 1000} s a rate; other processes ≤ ${foreign} cores`,
    pairLine('enqueue one at a time (a commit each)', f.sendOne, 'send()', 'one-row INSERT'),
    pairLine(`enqueue in batches of ${formatCount(batch)} (autocommit)`, f.batch, 'insert()', 'INSERT … unnest'),
    pairLine(`enqueue ${formatCount(batch)} in the caller's transaction next to ${formatCount(batch)} ~1 KB event rows`, f.inTransaction, 'insert({ db })', 'INSERT … unnest'),
    ...f.drain.map((d) => pairLine(
      `drain from depth ${formatCount(d.depth)}, batches of ${drainBatch}${d.drainedPgBoss < d.depth ? ` (pg-boss: the first ${formatCount(d.drainedPgBoss)} jobs)` : ''}`,
      d, 'fetch + complete', 'SELECT … ORDER BY event_seq LIMIT + UPDATE')),
    ...Object.entries(m.plans).map(([name, p]) => `outbox plan, ${name}: ${formatCount(p.rowsScanned)} rows scanned, ${formatCount(p.rowsSorted)} sorted, ${p.executionMs} ms: ${p.nodes}`),
    ...describeOrder(m.order).map((line) => `outbox order: ${line}`),
    `outbox wake-up ticket, group commit of ${ticketRows} events + ${ticketRows} delivery rows: one statement ${base.msPerBatch.median} ms/batch (${formatCount(base.rowsPerSec.median)} rows/s); ` +
      `BEGIN + statement + insert() of 1 ticket + COMMIT: ${ticketText}; tickets queued after ${m.settings.ticketBatches} batches: ` +
      `${withTicket.map((t) => `${t.variant} ${t.ticketsQueued}`).join(', ')}; a 2nd transaction's ticket waited ${w.standard} / ${w.short} / ${w.stately} ms (standard / short / stately) while the 1st held its own open 200 ms`,
  ];
}

function writeCharts(file: string, m: Measured, f: Figures): void {
  const rates = [f.sendOne, f.batch, f.inTransaction, ...f.drain];
  writeChart(file, 'outbox', barChartSvg({
    title: `outbox: pg-boss ${m.pgBossVersion} vs a table like federation_deliveries (median of ${m.settings.rounds})`, unit: 'jobs (rows)/s', log: true,
    groups: ['send ×1', `insert ${formatCount(m.settings.batch)}`, "in caller's tx", ...f.drain.map((d) => `drain @${formatCount(d.depth)}`)],
    series: [{ name: 'pg-boss', values: rates.map((r) => r.pgBoss.median) }, { name: 'table', values: rates.map((r) => r.table.median) }],
  }));
  writeChart(file, 'outbox', barChartSvg({
    title: `wake-up ticket: ms per group commit of ${m.settings.ticketRows} events (median of ${m.settings.rounds})`, unit: 'ms per batch',
    groups: f.tickets.map((t) => (t.variant === 'one statement' ? 'one statement' : `+ ticket (${t.variant})`)),
    series: [{ name: 'ms per batch', values: f.tickets.map((t) => t.msPerBatch.median) }],
  }), false, '-ticket');
}

/** Writes the JSON and the charts; returns the summary lines and the JSON's path. */
export function writeOutboxReport(m: Measured): { lines: string[]; file: string } {
  const figures = figuresOf(m);
  const lines = summaryLines(m, figures);
  const { file } = writeResults('outbox', {
    scenario: 'outbox', at: new Date().toISOString(), machine: m.machine, pgBoss: m.pgBossVersion, flags: m.flags, settings: m.settings,
    figures, plans: m.plans, order: m.order, ticketWaitMs: m.ticketWaitMs, rounds: m.rounds, lines,
  });
  writeCharts(file, m, figures);
  return { lines, file };
}
