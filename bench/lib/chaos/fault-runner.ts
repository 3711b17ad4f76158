/**
 * Plays a Schedule against a running cluster: kill -9 and restart nodes, switch the proxy's mode,
 * take an instance's database away and back, each at its time (a step runs late, never early,
 * when a restart took longer than planned). Counts what it did, and how long each restarted node
 * took to be ready again.
 *
 * A node cannot start without its database (it migrates first and exits when it cannot), as in
 * production where its supervisor would restart it until it can: so a restart waits for an outage
 * to end, and an outage waits for a restart in progress to finish. A node that is running when its
 * database goes away must ride it out.
 */
import type { CatchStage, ProxyMode, Release } from './chaos-proxy.js';
import type { Cluster } from './cluster.js';
import type { KillTarget, OutageKind, Schedule } from './fault-schedule.js';
import type { KiteNode } from './kite-node.js';

export interface FaultRecord {
  readonly kills: Record<KillTarget, number>;
  readonly network: Record<ProxyMode['kind'], number>;
  /** Database outages by instance and mode. */
  readonly database: Record<OutageKind, number>;
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
    database: { 'a-refuse': 0, 'a-blackhole': 0, 'b-refuse': 0, 'b-blackhole': 0 },
    restartMs: [] as number[],
    aimedKillsMissed: 0,
  };
  // Set synchronously by the track that begins one, so the other sees it before it acts.
  let outage: Promise<void> | undefined;
  let restarting: Promise<void> | undefined;
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
      while (outage) await outage;
      const restart = Promise.all(victims.map((n) => n.start())).then((times) => {
        record.restartMs.push(...times);
      });
      restarting = restart;
      await restart.finally(() => {
        restarting = undefined;
      });
    }
  })();
  const database = (async () => {
    for (const step of schedule.database) {
      await until(startedAt + step.at, halt.signal);
      if (halt.signal.aborted) return;
      while (restarting) await restarting.catch(() => {});
      const proxy = cluster.databaseProxies[step.instance];
      const run = (async () => {
        await (step.mode === 'refuse' ? proxy.down() : proxy.blackhole());
        record.database[`${step.instance}-${step.mode}`]++;
        await until(Date.now() + step.downMs, halt.signal);
        await proxy.up();
      })();
      outage = run;
      await run.finally(() => {
        outage = undefined;
      });
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
  await Promise.all([kills, network, database].map((track) => track.catch((err: unknown) => {
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
