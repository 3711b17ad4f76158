/**
 * Timing for the `outbox` scenario: a rate (a step run back to back for a window), per-batch
 * times, the CPU other processes took meanwhile, medians over rounds, and EXPLAIN summaries.
 */
import type pg from 'pg';
import { machineBusySeconds, pidsCpuSeconds, postgresPids, selfCpuSeconds } from './machine.js';
import { median, percentile, round } from './stats.js';

export interface Rate {
  readonly items: number;
  readonly seconds: number;
  readonly perSec: number;
  /** Cores used during the window by processes other than this one and its database's Postgres. */
  readonly foreignCores: number;
}

export interface BatchTimes {
  readonly batches: number;
  readonly rowsPerBatch: number;
  readonly medianMs: number;
  readonly p90Ms: number;
  /** Rows of all batches ÷ the time they took back to back. */
  readonly rowsPerSec: number;
  readonly foreignCores: number;
}

/** Starts counting CPU; `stop(seconds)` gives the cores used meanwhile by everything else. */
async function cpuWatch(databaseUrl: string): Promise<{ stop(seconds: number): number }> {
  // Listed at the start: the connections a measurement uses are open by then (pools warmed up).
  const pgPids = await postgresPids(databaseUrl);
  const ours = () => selfCpuSeconds() + pidsCpuSeconds(pgPids);
  const ours0 = ours();
  const all0 = machineBusySeconds();
  return {
    stop: (seconds) => round(Math.max(0, machineBusySeconds() - all0 - (ours() - ours0)) / seconds, 2),
  };
}

/**
 * Runs `step` back to back for `ms` (or until `maxItems`, or a step returns 0: nothing left).
 * `step` returns how many items it handled (jobs, rows).
 */
export async function rateOf(databaseUrl: string, step: () => Promise<number>, ms: number, maxItems = Number.POSITIVE_INFINITY): Promise<Rate> {
  const cpu = await cpuWatch(databaseUrl);
  let items = 0;
  const t0 = performance.now();
  while (items < maxItems && performance.now() - t0 < ms) {
    const n = await step();
    if (n === 0) break;
    items += n;
  }
  const seconds = (performance.now() - t0) / 1000;
  return { items, seconds: round(seconds, 3), perSec: Math.round(items / seconds), foreignCores: cpu.stop(seconds) };
}

/** Runs `batch` `count` times back to back and times each. */
export async function timeBatches(databaseUrl: string, batch: () => Promise<void>, count: number, rowsPerBatch: number): Promise<BatchTimes> {
  const cpu = await cpuWatch(databaseUrl);
  const ms: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await batch();
    ms.push(performance.now() - s);
  }
  const seconds = (performance.now() - t0) / 1000;
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    batches: count, rowsPerBatch, medianMs: round(median(ms), 3), p90Ms: round(percentile(sorted, 90), 3),
    rowsPerSec: Math.round((count * rowsPerBatch) / seconds), foreignCores: cpu.stop(seconds),
  };
}

/** The median of a figure over rounds, with the lowest and highest round. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function spread(values: readonly number[], digits = 0): Spread {
  return { median: round(median(values), digits), min: round(Math.min(...values), digits), max: round(Math.max(...values), digits) };
}

interface PlanNode {
  readonly 'Node Type': string;
  readonly 'Relation Name'?: string;
  readonly 'Index Name'?: string;
  readonly 'Actual Rows'?: number;
  readonly 'Actual Loops'?: number;
  readonly 'Sort Method'?: string;
  readonly Plans?: readonly PlanNode[];
}

export interface PlanSummary {
  /** The plan's nodes depth first, e.g. `Limit (100) > Index Scan using outbox_queue (100)`. */
  readonly nodes: string;
  /** Rows the scan nodes returned (a full scan of the queue shows up here). */
  readonly rowsScanned: number;
  /** Rows that went into Sort nodes (0 when nothing was sorted). */
  readonly rowsSorted: number;
  readonly executionMs: number;
}

/** Summarizes `EXPLAIN (ANALYZE, FORMAT JSON)` output: which nodes ran, how many rows each. */
export function planSummary(explain: unknown): PlanSummary {
  const [top] = explain as [{ Plan: PlanNode; 'Execution Time': number }];
  const parts: string[] = [];
  let rowsSorted = 0;
  let rowsScanned = 0;
  // pg-boss partitions are named j<sha224 of the queue name>: long and meaningless here.
  const short = (name: string) => (name.length > 24 ? `${name.slice(0, 7)}…` : name);
  const walk = (node: PlanNode) => {
    const on = node['Index Name'] ? ` using ${short(node['Index Name'])}` : node['Relation Name'] ? ` on ${short(node['Relation Name'])}` : '';
    const method = node['Sort Method'] ? ` [${node['Sort Method']}]` : '';
    const rows = (node['Actual Rows'] ?? 0) * (node['Actual Loops'] ?? 1);
    if (node['Node Type'].includes('Scan') && node['Node Type'] !== 'CTE Scan' && node['Node Type'] !== 'Subquery Scan') rowsScanned += rows;
    parts.push(`${node['Node Type']}${on}${method} (${rows})`);
    if (node['Node Type'] === 'Sort') for (const child of node.Plans ?? []) rowsSorted += (child['Actual Rows'] ?? 0) * (child['Actual Loops'] ?? 1);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(top!.Plan);
  return { nodes: parts.join(' > '), rowsScanned, rowsSorted, executionMs: round(top!['Execution Time'], 2) };
}

/** EXPLAIN (ANALYZE) of one statement in a transaction that is rolled back. */
export async function explainRolledBack(pool: pg.Pool, sql: string, values: unknown[]): Promise<PlanSummary> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const { rows } = await client.query<{ 'QUERY PLAN': unknown }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, values);
    const plan = rows[0]!['QUERY PLAN'];
    return planSummary(typeof plan === 'string' ? JSON.parse(plan) : plan);
  } finally {
    await client.query('ROLLBACK').catch(() => {});
    client.release();
  }
}
