/** Facts about the machine a run happened on, and CPU time of processes read from /proc. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import { ROOT } from './results.js';

export interface MachineFacts {
  /** The Kite commit measured (`+dirty` when src/ or migrations/ have uncommitted changes). */
  readonly kiteCommit: string;
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly postgres: string;
}

export async function machineFacts(adminDatabaseUrl: string): Promise<MachineFacts> {
  const cpus = os.cpus();
  let postgres = 'unknown';
  const client = new pg.Client({ connectionString: adminDatabaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ server_version: string }>('SHOW server_version');
    postgres = rows[0]?.server_version ?? 'unknown';
  } catch (err) {
    postgres = `unreachable (${(err as Error).message})`;
  } finally {
    await client.end().catch(() => {});
  }
  return {
    kiteCommit: kiteCommit(),
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres,
  };
}

function kiteCommit(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return git('rev-parse', '--short', 'HEAD') + (git('status', '--porcelain', '--', 'src', 'migrations') ? '+dirty' : '');
  } catch {
    return 'unknown';
  }
}

export function describeMachine(m: MachineFacts): string {
  return `${m.cpuModel}, ${m.cores} cores, ${m.memoryGiB} GiB, Node ${m.node}, PostgreSQL ${m.postgres}; Kite ${m.kiteCommit}`;
}

// /proc/<pid>/stat times are in clock ticks; USER_HZ is 100 on every mainstream Linux.
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds a process has used so far, or NaN when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name is in parentheses and may contain spaces: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND; // utime, stime (fields 14, 15)
  } catch {
    return Number.NaN;
  }
}

/** Sum of CPU seconds of the given processes (those that exited meanwhile count 0). */
export function pidsCpuSeconds(pids: readonly number[]): number {
  let total = 0;
  for (const pid of pids) {
    const seconds = processCpuSeconds(pid);
    if (Number.isFinite(seconds)) total += seconds;
  }
  return total;
}

/**
 * Postgres processes that work for a benchmark database: its backends, plus the shared ones
 * (WAL writer, checkpointer, background writer…). Backends of other databases (e.g. tests running
 * at the same time) are left out.
 */
export async function postgresPids(databaseUrl: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: databaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE (datname = current_database() AND pid <> pg_backend_pid()) OR backend_type <> 'client backend'`,
    );
    return rows.map((r) => r.pid);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Busy CPU seconds of the whole machine (all cores), from /proc/stat. */
export function machineBusySeconds(): number {
  try {
    const first = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal …: busy = user + nice + system + steal.
    // Interrupt time is left out: on loopback it is mostly the benchmark's own network traffic.
    // Steal (the hypervisor running other guests) counts: it is capacity the benchmark did not get.
    const t = first.trim().split(/\s+/).slice(1).map(Number);
    return ((t[0] ?? 0) + (t[1] ?? 0) + (t[2] ?? 0) + (t[7] ?? 0)) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** CPU seconds of this (load generator / listener) process. */
export function selfCpuSeconds(): number {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

/** CPU counters at one moment (seconds); `cpuSince` turns two into usage. */
export interface CpuSnapshot {
  readonly server: number;
  readonly postgres: number;
  readonly client: number;
  /** Every process on the machine. */
  readonly machine: number;
}

export function cpuSnapshot(serverPids: readonly number[], pgPids: readonly number[]): CpuSnapshot {
  return { server: pidsCpuSeconds(serverPids), postgres: pidsCpuSeconds(pgPids), client: selfCpuSeconds(), machine: machineBusySeconds() };
}

export interface CpuUse extends CpuSnapshot {
  /** CPU used by processes that are not part of the benchmark (other work on the machine), in seconds. */
  readonly foreign: number;
}

export function cpuSince(before: CpuSnapshot, after: CpuSnapshot): CpuUse {
  const server = after.server - before.server;
  const postgres = after.postgres - before.postgres;
  const client = after.client - before.client;
  const machine = after.machine - before.machine;
  return { server, postgres, client, machine, foreign: Math.max(0, machine - server - postgres - client) };
}

/**
 * Waits (up to `maxMs`) until other processes use less than `maxForeignCores` for a second, so a
 * run does not start while the machine is busy with something else. Returns the last reading.
 */
export async function waitForQuiet(ourPids: readonly number[], maxForeignCores = 0.25, maxMs = 60_000, onWait?: (cores: number) => void): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const before = { ours: pidsCpuSeconds(ourPids) + selfCpuSeconds(), all: machineBusySeconds() };
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const ours = pidsCpuSeconds(ourPids) + selfCpuSeconds() - before.ours;
    const foreign = Math.max(0, machineBusySeconds() - before.all - ours);
    if (foreign <= maxForeignCores || Date.now() > deadline) return foreign;
    onWait?.(foreign);
  }
}

/** Processes outside the benchmark may use this many cores during a measured window before it is run again. */
export const MAX_FOREIGN_CORES = 0.3;

/**
 * Runs a measurement, and again (up to `attempts` times in all) while other processes on the
 * machine used more than MAX_FOREIGN_CORES during it; returns the last one (its `foreignCores` says how clean it was).
 */
export async function measureQuietly<T extends { readonly foreignCores: number }>(measure: () => Promise<T>, onRetry: (busy: T) => void, attempts = 4): Promise<T> {
  let result = await measure();
  for (let i = 1; i < attempts && result.foreignCores > MAX_FOREIGN_CORES; i++) {
    onRetry(result);
    result = await measure();
  }
  return result;
}
