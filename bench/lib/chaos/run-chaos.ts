/**
 * One chaos run, shared by the CI test (test/chaos/chaos.test.ts) and `bench/chaos.ts`:
 * start the cluster and a listener on every node, send webhooks at a steady rate while the
 * seeded schedule kills nodes, upsets the network and takes databases away, then — faults over, every node up —
 * wait (with a deadline) until every listener has every event it should and A has nothing left
 * to send to B, and judge what was received.
 */
import { check, type Verdict } from './checker.js';
import { ingestPath, OTHER_TEAM, startCluster, TEAM, TEAMS, type Database } from './cluster.js';
import { awaitConvergence } from './convergence.js';
import { makeSchedule, type Schedule } from './fault-schedule.js';
import { playSchedule, type FaultRecord } from './fault-runner.js';
import { mulberry32 } from './prng.js';
import { RecordingListener } from './recording-listener.js';
import { trustingAgent, type TlsFiles } from './tls-files.js';
import { WebhookLoad, type Instance } from './webhook-load.js';

export interface ChaosOptions {
  readonly seed: number;
  readonly durationMs: number;
  /** New webhooks per second. */
  readonly rate: number;
  readonly meanKillGapMs: number;
  readonly maxDownMs: number;
  /** Database outages: mean gap and longest (defaults 10 s and 4 s, see fault-schedule.ts). */
  readonly meanOutageGapMs?: number;
  readonly maxOutageMs?: number;
  /** After the faults: how long unanswered webhooks are retried, and how long convergence may take. */
  readonly convergeTimeoutMs: number;
  readonly tls: TlsFiles;
  readonly createDatabase: () => Promise<Database>;
  readonly log?: (line: string) => void;
  /** A hand-made schedule instead of the seed's (the negative control). */
  readonly schedule?: Schedule;
}

export interface ChaosReport {
  readonly seed: number;
  readonly rerun: string;
  readonly durationMs: number;
  readonly rate: number;
  readonly schedule: Schedule;
  readonly verdict: Verdict;
  readonly faults: FaultRecord & { readonly proxy: Record<string, number> };
  /** The provider's tries not answered 200, by outcome (`503 database_unavailable`, `no answer`, …). */
  readonly ingestFailures: Record<string, number>;
  /** The slowest 503 `database_unavailable` the provider got, ms (0: none). */
  readonly slowestUnavailableMs: number;
  /** Events B answered `duplicate: true` (re-sent after B had them: B's dedup held). */
  readonly redeliveriesDeduplicatedByB: number;
  /** ms from the end of the faults until every listener had everything and A's queue was empty; null if never. */
  readonly recoveryMs: number | null;
  /** ms from the end of the faults until each part was done: the provider's retries, each listener, A's queue. */
  readonly recoveryParts: Record<string, number | null>;
  readonly listeners: readonly { readonly name: string; readonly received: number; readonly connections: number }[];
  /** Nodes that exited without being killed, with their last output. */
  readonly crashes: readonly string[];
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const log = options.log ?? (() => {});
  const schedule = options.schedule ?? makeSchedule(options.seed, options);
  const agent = trustingAgent(options.tls, { connections: 64 });
  const cluster = await startCluster(options.tls, agent, options.createDatabase);
  const listeners: { record: RecordingListener; instance: Instance; team: string }[] = [];
  let load: WebhookLoad | undefined;
  try {
    // `chaos` on every node (named after the node), `other` on A's first node and on B.
    const listen = (instance: Instance, node: { name: string; url: string }, team: string) => listeners.push({
      instance, team, record: new RecordingListener(team === TEAM ? node.name : `${node.name}/${team}`, node.url, team, cluster.listenKeys[instance][team]!, 'stripe.*', options.tls),
    });
    for (const node of cluster.a) listen('a', node, TEAM);
    for (const node of cluster.b) listen('b', node, TEAM);
    for (const team of TEAMS.filter((t) => t !== TEAM)) {
      listen('a', cluster.a[0]!, team);
      listen('b', cluster.b[0]!, team);
    }
    await Promise.all(listeners.map((l) => l.record.start()));
    log(`chaos: seed ${options.seed}, ${options.durationMs / 1000} s at ${options.rate} webhooks/s, ${schedule.kills.length} kills, ${schedule.network.length} network steps, ${schedule.database.length} database outages`);

    const nodes = (instance: Instance) => (instance === 'a' ? cluster.a : cluster.b).map((n) => ({ name: n.name, url: n.url }));
    // Most of the load where the faults are richest (A's two nodes → the flaky proxy → B), the
    // rest back from B to A, and to a second team.
    const routes = [
      { instance: 'a' as const, team: TEAM, path: ingestPath(TEAM), targets: nodes('a'), share: 0.6 },
      { instance: 'b' as const, team: TEAM, path: ingestPath(TEAM), targets: nodes('b'), share: 0.2 },
      { instance: 'a' as const, team: OTHER_TEAM, path: ingestPath(OTHER_TEAM), targets: nodes('a'), share: 0.2 },
    ];
    load = new WebhookLoad(routes, mulberry32(options.seed), agent, `${options.seed.toString(36)}${Date.now().toString(36)}`);
    const startedAt = Date.now();
    load.start(options.rate);
    const faults = await playSchedule(schedule, cluster, startedAt);
    const faultsEndedAt = Date.now();
    log(`chaos: faults over after ${Math.round((faultsEndedAt - startedAt) / 1000)} s; ${load.webhooks.length} webhooks sent, waiting for convergence`);
    await load.stop(options.convergeTimeoutMs);
    const allAnsweredMs = Date.now() - faultsEndedAt;
    const convergence = await awaitConvergence(cluster, agent, load.answered, listeners, faultsEndedAt, faultsEndedAt + options.convergeTimeoutMs);
    const verdict = check(load.webhooks, listeners.map((l) => ({ name: l.record.name, instance: l.instance, team: l.team, received: l.record.received })));
    return {
      seed: options.seed,
      rerun: `KITE_CHAOS_SEED=${options.seed}`,
      durationMs: options.durationMs,
      rate: options.rate,
      schedule,
      verdict,
      faults: { ...faults, proxy: { ...cluster.proxy.counts } },
      ingestFailures: { ...load.failures },
      slowestUnavailableMs: load.slowestUnavailableMs,
      redeliveriesDeduplicatedByB: cluster.proxy.duplicatesAtB,
      recoveryMs: convergence.totalMs,
      recoveryParts: { 'webhooks answered': allAnsweredMs, ...convergence.parts },
      listeners: listeners.map((l) => ({ name: l.record.name, received: l.record.received.length, connections: l.record.connections })),
      crashes: [...cluster.a, ...cluster.b].flatMap((n) => n.crashes),
    };
  } catch (err) {
    // A node that would not restart, a proxy that would not start: still name the seed.
    throw new Error(`chaos seed ${options.seed} (rerun with KITE_CHAOS_SEED=${options.seed}): ${(err as Error).message}`, { cause: err });
  } finally {
    load?.abort();
    for (const l of listeners) l.record.close();
    await cluster.stop();
    await agent.close();
  }
}
