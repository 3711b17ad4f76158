/**
 * Plays a Schedule against a running cluster: kill -9 and restart nodes, switch the proxy's mode,
 * each at its time (a step runs late, never early, when a restart took longer than planned).
 * Counts what it did, and how long each restarted node took to be ready again.
 */
import type { CatchStage, ProxyMode, Release } from './chaos-proxy.js';
import type { Cluster } from './cluster.js';
import type { KillTarget, Schedule } from './fault-schedule.js';
import type { KiteNode } from './kite-node.js';

export interface FaultRecord {
  readonly kills: Record<KillTarget, number>;
  readonly network: Record<ProxyMode['kind'], number>;
  /** ms from a restart's spawn to /readyz 200, one per restarted node. */
  readonly restartMs: number[];
  /** Aimed kills whose moment never came (no delivery within the wait): plain kills of A instead. */
  readonly aimedKillsMissed: number;
}

// How long an aimed kill waits for a delivery to catch. The proxy may be in a fault mode (it only
// catches in `pass`) or A idle; then the kill happens anyway, unaimed.
const CATCH_WAIT_MS = 3_000;

const AIMED: Partial<Record<KillTarget, CatchStage>> = { 'a-all-awaiting-peer': 'request', 'a-all-after-peer-2xx': 'answer' };

export async function playSchedule(schedule: Schedule, cluster: Cluster, startedAt: number): Promise<FaultRecord> {
  const record = {
    kills: { a1: 0, a2: 0, b1: 0, 'a-all': 0, 'a-all-awaiting-peer': 0, 'a-all-after-peer-2xx': 0, 'a1-sigterm': 0, 'a2-sigterm': 0 },
    network: { pass: 0, drop: 0, delay: 0, error5xx: 0, storm429: 0, 'reset-mid-body': 0, swallow: 0 },
    restartMs: [] as number[],
    aimedKillsMissed: 0,
  };
  const nodes = (target: KillTarget): KiteNode[] => {
    if (target.startsWith('a-all')) return [...cluster.a];
    const name = target.replace(/-sigterm$/, '');
    const found = [...cluster.a, ...cluster.b].find((n) => n.name === name);
    return found ? [found] : [];
  };
  // When one track fails (a node that will not restart), the other stops too.
  const halt = new AbortController();
  const kills = (async () => {
    for (const step of schedule.kills) {
      await until(startedAt + step.at, halt.signal);
      if (halt.signal.aborted) return;
      const victims = nodes(step.target).filter((n) => n.running);
      if (victims.length === 0) continue;
      const stage = AIMED[step.target];
      let release: Release | undefined;
      if (stage) {
        release = await cluster.proxy.catchNext(stage, CATCH_WAIT_MS);
        if (!release) record.aimedKillsMissed++;
      }
      await Promise.all(victims.map((n) => (step.target.endsWith('-sigterm') ? n.terminate() : n.kill9())));
      // The held request goes on now that its sender is dead: to B (which stores what A will
      // send again), or B's 2xx to a closed connection.
      release?.();
      record.kills[step.target]++;
      await until(Date.now() + step.downMs, halt.signal);
      for (const ms of await Promise.all(victims.map((n) => n.start()))) record.restartMs.push(ms);
    }
  })();
  const network = (async () => {
    for (const step of schedule.network) {
      await until(startedAt + step.at, halt.signal);
      if (halt.signal.aborted) return;
      cluster.proxy.mode = step.mode;
      record.network[step.mode.kind]++;
    }
  })();
  await Promise.all([kills, network].map((track) => track.catch((err: unknown) => {
    halt.abort();
    throw err;
  })));
  return record;
}

/** Waits for a moment of the schedule (a timeline, not a stand-in for awaiting an event). */
function until(time: number, signal: AbortSignal): Promise<void> {
  const ms = time - Date.now();
  if (ms <= 0 || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
