/**
 * One measured federation stage: the CloudEvents publisher offers `rate` events/s to A (in
 * ingest batches of `ingestBatch`), B's listeners record ingest-at-A → listener-at-B latency, and
 * B's stored bench events over the window give the delivered rate. After the window the publisher
 * stops and the stage waits (≤ drainLimitS) for A's outbox to empty, so the next stage starts clean.
 */
import type pg from 'pg';
import { CePublisher } from './ce-publisher.js';
import { CE_SECRET, federatedCount, type FederationPair } from './federation-setup.js';
import { sleep } from './http-load.js';
import { machineBusySeconds, pidsCpuSeconds, postgresPids, selfCpuSeconds, waitForQuiet } from './machine.js';
import { sampleActivity, type ActivityReport } from './pg-activity.js';
import type { Progress } from './progress.js';
import { formatCount, round, type LatencySummary } from './stats.js';
import type { FederatedStats } from './wss-listener.js';

export interface FedStageOptions {
  readonly label: string;
  readonly rate: number;
  readonly ingestBatch: number;
  readonly peers: number;
  readonly seconds: number;
  readonly warmupSeconds: number;
  readonly drainLimitS?: number;
  /** Longest wait for other processes to calm down before the stage (30 s; `--quick` runs pass 5). */
  readonly quietWaitS?: number;
}

export interface FedStage {
  readonly label: string;
  readonly rate: number;
  readonly ingestBatch: number;
  readonly peers: number;
  /** Events A answered 200 per second in the window. */
  readonly ingestedPerSec: number;
  /** Bench events stored on A per second in the window (a 503 past the commit deadline may still store). */
  readonly storedAtAPerSec: number;
  /** Bench events stored on B per second in the window: the federation throughput. */
  readonly deliveredPerSec: number;
  /** A's pending deliveries at the window's start and end (growing: not keeping up). */
  readonly pendingStart: number;
  readonly pendingEnd: number;
  /** Seconds from the window's end (the publisher then stops) until A's outbox was empty (NaN: not within the limit). */
  readonly drainSeconds: number;
  readonly latencyMs: LatencySummary;
  readonly statuses: Record<number, number>;
  /** Cores used over the window: Kite A, Kite B, Postgres (both databases + shared), bench process. */
  readonly cores: { a: number; b: number; postgres: number; bench: number; foreign: number };
  /** What the bench databases' backends were doing in the window (pg_stat_activity every 20 ms). */
  readonly postgresActivity: ActivityReport;
}

export async function pendingCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM federation_deliveries WHERE status = 'pending'");
  return Number(rows[0]!.n);
}

export async function fedStage(pair: FederationPair, pools: { a: pg.Pool; b: pg.Pool }, stats: FederatedStats, o: FedStageOptions, progress: Progress): Promise<FedStage> {
  await waitForQuiet([pair.a.pid, pair.b.pid], 0.25, (o.quietWaitS ?? 30) * 1000, (c) => progress.update(o.label, 0, `waiting: other processes use ${c.toFixed(2)} cores`));
  const bothPgPids = async () => new Set([...(await postgresPids(pair.a.databaseUrl)), ...(await postgresPids(pair.b.databaseUrl))]);
  const publisher = new CePublisher(pair.a.port, pair.hookPath, CE_SECRET, { batch: o.ingestBatch, peers: o.peers });
  await publisher.open(4);
  publisher.start(o.rate);
  await sleep(o.warmupSeconds * 1000);
  // Taken after the warm-up: the pools open connections as load grows, and a backend started
  // before the window but left out here would count as a foreign process (about a core had).
  const pgPids = [...(await bothPgPids())];
  const cpu = () => ({ a: pidsCpuSeconds([pair.a.pid]), b: pidsCpuSeconds([pair.b.pid]), pg: pidsCpuSeconds(pgPids), self: selfCpuSeconds(), all: machineBusySeconds() });
  const [b0, p0, a0] = await Promise.all([federatedCount(pools.b), pendingCount(pools.a), federatedCount(pools.a)]);
  const acc0 = publisher.accepted;
  const c0 = cpu();
  stats.resetLatency();
  stats.recording = true;
  const dbName = (url: string) => new URL(url).pathname.slice(1);
  const activity = sampleActivity({ A: dbName(pair.a.databaseUrl), B: dbName(pair.b.databaseUrl) }, 20);
  const t0 = performance.now();
  const tick = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    progress.update(o.label, Math.min(1, elapsed / o.seconds), `${formatCount(stats.frames)} frames at B's listeners`);
  }, 250);
  await sleep(o.seconds * 1000);
  clearInterval(tick);
  stats.recording = false;
  const c1 = cpu();
  const seconds = (performance.now() - t0) / 1000;
  // Backends started during the window: all their CPU is the window's.
  const known = new Set(pgPids);
  const bornPgSeconds = pidsCpuSeconds([...(await bothPgPids())].filter((pid) => !known.has(pid)));
  const postgresActivity = await activity.stop();
  const acc1 = publisher.accepted;
  const [b1, p1, a1] = await Promise.all([federatedCount(pools.b), pendingCount(pools.a), federatedCount(pools.a)]);
  // From the window's end: closing the publisher waits for its requests still in flight (seconds,
  // when A is behind), and A's outbox drains meanwhile.
  const drainStart = performance.now();
  await publisher.close();
  const limit = (o.drainLimitS ?? 60) * 1000;
  let pending = p1;
  while (pending > 0 && performance.now() - drainStart < limit) {
    progress.update(`${o.label} draining`, Math.max(0, 1 - pending / Math.max(1, p1)), `${formatCount(pending)} pending`);
    await sleep(200);
    pending = await pendingCount(pools.a);
  }
  const drainSeconds = pending === 0 ? round((performance.now() - drainStart) / 1000, 1) : Number.NaN;
  const d = (k: 'a' | 'b' | 'pg' | 'self' | 'all') => c1[k] - c0[k] + (k === 'pg' ? bornPgSeconds : 0);
  const perS = (v: number) => round(v / seconds, 2);
  return {
    label: o.label, rate: o.rate, ingestBatch: o.ingestBatch, peers: o.peers,
    ingestedPerSec: Math.round((acc1 - acc0) / seconds),
    storedAtAPerSec: Math.round((a1 - a0) / seconds),
    deliveredPerSec: Math.round((b1 - b0) / seconds),
    pendingStart: p0, pendingEnd: p1, drainSeconds,
    latencyMs: stats.latency.summary(),
    statuses: { ...publisher.statuses },
    postgresActivity,
    cores: { a: perS(d('a')), b: perS(d('b')), postgres: perS(d('pg')), bench: perS(d('self')), foreign: perS(Math.max(0, d('all') - d('a') - d('b') - d('pg') - d('self'))) },
  };
}
