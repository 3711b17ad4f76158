/**
 * The faults of a run as data, a pure function of (seed, duration, settings): two tracks laid out
 * in advance on one timeline, so a seed names a schedule and `describeSchedule` can print it.
 *
 * - Kills: one at a time, a random node of A or B, or now and then both nodes of A together (A
 *   wholly down, so webhooks must wait), each restarted `downMs` later on the same port. Two
 *   kinds aim at the windows of contract §5 a random kill rarely hits: A killed while a delivery
 *   is in flight (`a-all-awaiting-peer`), and after B stored and answered 2xx but before A could
 *   mark the delivery done (`a-all-after-peer-2xx`). Both kill every node of A, since any of
 *   them may be the sender (leases give each peer one owner, but the harness cannot see which).
 *   And now and then a graceful stop (`a1-sigterm`, `a2-sigterm`) under the same load: it must
 *   drain ingest, hand its peers over and exit 0.
 * - Network: the proxy between A and B alternates calm (`pass`) and one fault mode at a time.
 * - Database: now and then, for 1–4 s, the Postgres of A (mostly) or of B goes away: the TCP proxy
 *   every node of that instance reaches it through cuts every open connection and either refuses
 *   new ones (`refuse`) or accepts and never answers them (`blackhole`). Ingest must answer 503,
 *   actors must stop (no lease can be proven) and everything resume once it is back.
 *
 * Each track draws from its own stream of the seed, so the database track (added later) left the
 * kills and network steps of every existing seed as they were.
 */
import type { ProxyMode } from './chaos-proxy.js';
import { mulberry32 } from './prng.js';

export type KillTarget = 'a1' | 'a2' | 'b1' | 'a-all' | 'a-all-awaiting-peer' | 'a-all-after-peer-2xx' | 'a1-sigterm' | 'a2-sigterm';

export interface KillStep {
  readonly at: number;
  readonly target: KillTarget;
  readonly downMs: number;
}

export interface NetworkStep {
  readonly at: number;
  readonly mode: ProxyMode;
}

export type DatabaseInstance = 'a' | 'b';
export type OutageMode = 'refuse' | 'blackhole';
/** `a-refuse`, `b-blackhole`, …: what the fault runner counts. */
export type OutageKind = `${DatabaseInstance}-${OutageMode}`;

export interface DatabaseStep {
  readonly at: number;
  readonly instance: DatabaseInstance;
  readonly mode: OutageMode;
  readonly downMs: number;
}

export interface Schedule {
  readonly seed: number;
  readonly durationMs: number;
  readonly kills: readonly KillStep[];
  readonly network: readonly NetworkStep[];
  readonly database: readonly DatabaseStep[];
}

export interface ScheduleSettings {
  readonly durationMs: number;
  /** Mean time between the end of one kill's downtime and the next kill. */
  readonly meanKillGapMs: number;
  /** How long a killed node stays down, at most. */
  readonly maxDownMs: number;
  /** Mean time between the end of one database outage and the next (default 10 s). */
  readonly meanOutageGapMs?: number;
  /** How long a database outage lasts, at most (default 4 s; at least 1 s). */
  readonly maxOutageMs?: number;
}

const KILL_TARGETS: readonly (readonly [KillTarget, number])[] = [
  ['a1', 3], ['a2', 3], ['b1', 3], ['a-all', 1], ['a-all-awaiting-peer', 1], ['a-all-after-peer-2xx', 2], ['a1-sigterm', 1], ['a2-sigterm', 1],
];

// A's database carries ingest, the outbox and the leases: most outages are there.
const OUTAGE_KINDS: readonly (readonly [readonly [DatabaseInstance, OutageMode], number])[] = [
  [['a', 'refuse'], 3], [['a', 'blackhole'], 3], [['b', 'refuse'], 1], [['b', 'blackhole'], 1],
];

export function makeSchedule(seed: number, settings: ScheduleSettings): Schedule {
  // Separate streams, so a change to one track's rules leaves the other's timeline as it was.
  const killRandom = mulberry32(seed ^ 0x6b696c6c);
  const netRandom = mulberry32(seed ^ 0x6e657477);
  const dbRandom = mulberry32(seed ^ 0x64626173);
  const kills: KillStep[] = [];
  for (let at = killRandom.int(settings.meanKillGapMs / 2, settings.meanKillGapMs); ; ) {
    const downMs = killRandom.int(100, settings.maxDownMs);
    if (at + downMs >= settings.durationMs) break;
    kills.push({ at, target: killRandom.weighted(KILL_TARGETS), downMs });
    at += downMs + killRandom.int(settings.meanKillGapMs / 2, (settings.meanKillGapMs * 3) / 2);
  }
  const network: NetworkStep[] = [];
  for (let at = 0, calm = true; at < settings.durationMs; calm = !calm) {
    if (calm) {
      network.push({ at, mode: { kind: 'pass' } });
      at += netRandom.int(500, 2500);
      continue;
    }
    const kind = netRandom.pick(['drop', 'delay', 'error5xx', 'storm429', 'reset-mid-body'] as const);
    // Some delays outlast A's 2 s request timeout: B stores what A will send again.
    network.push({ at, mode: kind === 'delay' ? { kind, delayMs: netRandom.int(100, 3000) } : { kind } });
    at += netRandom.int(300, 2000);
  }
  // Faults end with the schedule: the network is calm for the convergence that follows.
  network.push({ at: settings.durationMs, mode: { kind: 'pass' } });
  const database: DatabaseStep[] = [];
  const gap = settings.meanOutageGapMs ?? 10_000;
  const maxOutageMs = Math.max(1_000, settings.maxOutageMs ?? 4_000);
  for (let at = dbRandom.int(gap / 2, gap); ; ) {
    const downMs = dbRandom.int(1_000, maxOutageMs);
    // Back before the end: convergence (and the harness's checks through Kite) needs it.
    if (at + downMs >= settings.durationMs) break;
    const [instance, mode] = dbRandom.weighted(OUTAGE_KINDS);
    database.push({ at, instance, mode, downMs });
    at += downMs + dbRandom.int(gap / 2, (gap * 3) / 2);
  }
  return { seed, durationMs: settings.durationMs, kills, network, database };
}

/** One line per step, for a failure message or the bench log. */
export function describeSchedule(schedule: Schedule): string {
  const kills = schedule.kills.map((k) => `  ${(k.at / 1000).toFixed(2)} s kill -9 ${k.target}, down ${k.downMs} ms`);
  const network = schedule.network.map((n) => `  ${(n.at / 1000).toFixed(2)} s proxy ${n.mode.kind}${n.mode.kind === 'delay' ? ` ${n.mode.delayMs} ms` : ''}`);
  const database = schedule.database.map((d) => `  ${(d.at / 1000).toFixed(2)} s database of ${d.instance.toUpperCase()} ${d.mode}, down ${d.downMs} ms`);
  return [`seed ${schedule.seed}, ${schedule.durationMs / 1000} s:`, ...kills, ...network, ...database].join('\n');
}
