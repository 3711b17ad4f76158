/**
 * `federation`: A → B over TLS (two Kite instances on loopback, each on its own database, a
 * throwaway CA). For 1, 10, 100 and 1,000 peers of one team on A (peer i delivers to B's team
 * `fed-b<i>`; event n goes to peer n mod P):
 * - throughput: the publisher offers `--rate` (10,000) events/s to A in CloudEvents batches of 100
 *   (so A's ingest is not the limit); events/s stored on B over the window = federation throughput;
 * - latency: 1,000 events/s, each its own webhook; ingest-at-A → listener-at-B p50/p99, read by
 *   WSS listeners on B's teams of the first min(P, 50) peers.
 * For one peer, the outbound batch cap is swept (`--batch`, via the peer's rateLimit burst: a batch
 * never holds more events than the bucket has tokens). Every peer has rateLimit perSecond 100,000
 * (the default 100/s would be the figure). Ceilings (HTTPS round trip, Postgres inserts) are
 * measured in the same run.
 */
import { describeCeilings, measureCeilings, type Ceilings } from './ceilings.js';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import type pg from 'pg';
import { addPeers, dbPool, HIGH_RATE_LIMIT, listenerKey, startFederation, A_TEAM, type BenchPeer, type FederationPair } from './lib/federation-setup.js';
import { fedStage, type FedStage } from './lib/fed-stage.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineFacts } from './lib/machine.js';
import { runCleanups } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { formatCount, ratio } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { connectListeners, FederatedStats, type WssListener } from './lib/wss-listener.js';

const TARGETS = { eventsPerSecOnePeer: 8000, latencyRate: 1000, p50Ms: 20, p99Ms: 100 };
const progress = new Progress();

interface Level {
  readonly peers: number;
  readonly throughput: FedStage;
  readonly latency: FedStage;
  readonly listeners: number;
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const peerLevels = [...(flags.peers ?? (flags.quick ? [1] : [1, 10, 100, 1000]))].sort((x, y) => x - y);
  const batches = flags.batch ?? (flags.quick ? [100] : [1, 10, 100]);
  const rate = flags.rate ?? 10_000;
  const seconds = flags.duration;
  const warmup = flags.quick ? 1 : 2;
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`federation on ${describeMachine(machine)}; peers ${peerLevels.join(', ')}, throughput at ${formatCount(rate)} ev/s offered, latency at ${TARGETS.latencyRate} ev/s, ${seconds} s each`);
  const ceilings: Ceilings = await measureCeilings(flags.quick ? 1 : 3, progress);
  for (const line of describeCeilings(ceilings)) progress.log(`  ${line}`);
  const levels: Level[] = [];
  const sweep: (FedStage & { batchCap: number })[] = [];
  // Each level gets a fresh pair of instances: no backlog or idle actors left by the one before.
  const withPair = async (label: string, count: number, body: (pair: FederationPair, pools: { a: pg.Pool; b: pg.Pool }, stats: FederatedStats, peers: BenchPeer[]) => Promise<void>) => {
    const pair = await startFederation({ profile: flags.profile, label });
    const pools = { a: dbPool(pair.a), b: dbPool(pair.b) };
    const stats = new FederatedStats();
    let listeners: WssListener[] = [];
    try {
      const t0 = Date.now();
      const peers = await addPeers(pair, 0, count, { rateLimit: HIGH_RATE_LIMIT }, (done) => progress.update(`adding ${count} peers`, done / count));
      progress.log(`  ${count} peers registered on A (and ${count} teams on B) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      const teams = [];
      for (const p of peers.slice(0, Math.min(count, 50))) teams.push({ team: p.bTeam, key: await listenerKey(pair.b, p.bTeam) });
      listeners = await connectListeners(pair.b.port, pair.tls.ca, teams, stats);
      await body(pair, pools, stats, peers);
    } finally {
      for (const l of listeners) l.close();
      await pools.a.end().catch(() => {});
      await pools.b.end().catch(() => {});
      await pair.close();
    }
  };
  for (const count of peerLevels) {
    await withPair(`federation-${count}`, count, async (pair, pools, stats) => {
      const throughput = await fedStage(pair, pools, stats, { label: `federation ${count} peers throughput`, rate, ingestBatch: 100, peers: count, seconds, warmupSeconds: warmup, quietWaitS: flags.quick ? 5 : 30 }, progress);
      logStage(throughput, ceilings);
      const latency = await fedStage(pair, pools, stats, { label: `federation ${count} peers latency`, rate: TARGETS.latencyRate, ingestBatch: 1, peers: count, seconds, warmupSeconds: warmup, quietWaitS: flags.quick ? 5 : 30 }, progress);
      logStage(latency, ceilings);
      levels.push({ peers: count, throughput, latency, listeners: Math.min(count, 50) });
      if (count === 1 && batches.includes(100)) sweep.push({ ...throughput, batchCap: 100 });
    });
  }
  for (const cap of batches.filter((b) => b < 100)) {
    await withPair(`federation-batch${cap}`, 1, async (pair, pools, stats, peers) => {
      await pair.a.api('PATCH', `/v1/teams/${A_TEAM}/peers/${peers[0]!.id}`, { rateLimit: { perSecond: HIGH_RATE_LIMIT.perSecond, burst: cap } });
      // A batch cap of 1 or 10 cannot carry 10,000/s: offer what it could plausibly carry, so the
      // measured window is not a backlog.
      const offered = Math.min(rate, cap * 400);
      const s = await fedStage(pair, pools, stats, { label: `federation 1 peer, batch ≤ ${cap}`, rate: offered, ingestBatch: Math.min(100, cap * 10), peers: 1, seconds, warmupSeconds: warmup, drainLimitS: 30, quietWaitS: flags.quick ? 5 : 30 }, progress);
      logStage(s, ceilings, `batch ≤ ${cap}`);
      sweep.push({ ...s, batchCap: cap });
    });
  }
  sweep.sort((x, y) => x.batchCap - y.batchCap);
  const https1 = ceilings.https.find((h) => h.eventsPerRequest === 1)!;
  const https100 = ceilings.https.find((h) => h.eventsPerRequest === 100)!;
  const pgRows = ceilings.postgres[0]!.rowsPerSec;
  const summary = levels.map((l) => {
    const t = l.throughput;
    const lat = l.latency.latencyMs;
    return {
      peers: l.peers,
      eventsPerSec: t.deliveredPerSec,
      offeredPerSec: t.rate,
      ingestedPerSec: t.ingestedPerSec,
      storedAtAPerSec: t.storedAtAPerSec,
      backlogGrowth: t.pendingEnd - t.pendingStart,
      throughputP50Ms: t.latencyMs.p50, throughputP99Ms: t.latencyMs.p99,
      ratioToPgInsertCeiling: ratio(t.deliveredPerSec, pgRows),
      ratioToHttpsCeiling: ratio(t.deliveredPerSec, https100.eventsPerSec),
      latencyAt1000: { deliveredPerSec: l.latency.deliveredPerSec, p50Ms: lat.p50, p99Ms: lat.p99, samples: lat.count },
      p50RatioToHttpsRtt: ratio(lat.p50, https1.rttMs.p50),
      p99RatioToHttpsRtt: ratio(lat.p99, https1.rttMs.p99),
      line:
        `federation ${l.peers} peer(s): ${formatCount(t.deliveredPerSec)} ev/s A→B (offered ${formatCount(t.rate)}, A stored ${formatCount(t.storedAtAPerSec)}/s) = ` +
        `${ratio(t.deliveredPerSec, pgRows)}× PG insert ceiling (${formatCount(pgRows)}/s), ${ratio(t.deliveredPerSec, https100.eventsPerSec)}× HTTPS ceiling (${formatCount(https100.eventsPerSec)}/s); ` +
        `at ${TARGETS.latencyRate} ev/s p50 ${lat.p50} ms p99 ${lat.p99} ms (${lat.count} samples; HTTPS RTT p50 ${https1.rttMs.p50} p99 ${https1.rttMs.p99} ms)`,
    };
  });
  const sweepLines = sweep.map((s) => `federation 1 peer, outbound batch ≤ ${s.batchCap}: ${formatCount(s.deliveredPerSec)} ev/s (${ratio(s.deliveredPerSec, pgRows)}× PG ceiling), p50 ${s.latencyMs.p50} ms p99 ${s.latencyMs.p99} ms`);
  const { file } = writeResults('federation', {
    scenario: 'federation', at: new Date().toISOString(), machine, flags, targets: TARGETS,
    notes: 'Every peer has rateLimit {perSecond: 100000, burst: 1000} (default 100/s burst 200 would cap it). Throughput: CloudEvents batches of 100 at A. Latency: single-event webhooks at A.',
    ceilings, levels: summary, batchSweep: sweep, stages: levels,
  }, flags.profile);
  writeChart(file, 'federation', barChartSvg({
    title: 'federation A→B over TLS: events/s (log)', unit: 'events/s', log: true,
    groups: [...levels.map((l) => `${l.peers} peer${l.peers > 1 ? 's' : ''}`), ...sweep.filter((s) => s.batchCap !== 100).map((s) => `1 peer, batch ≤${s.batchCap}`)],
    series: [
      { name: 'Kite A→B', values: [...levels.map((l) => l.throughput.deliveredPerSec), ...sweep.filter((s) => s.batchCap !== 100).map((s) => s.deliveredPerSec)] },
      { name: 'PG insert ceiling', values: [...levels.map(() => pgRows), ...sweep.filter((s) => s.batchCap !== 100).map(() => pgRows)] },
      { name: 'HTTPS ceiling', values: [...levels.map(() => https100.eventsPerSec), ...sweep.filter((s) => s.batchCap !== 100).map(() => https100.eventsPerSec)] },
    ],
    targets: [{ label: 'target 8,000/s', value: TARGETS.eventsPerSecOnePeer }],
  }), flags.profile);
  writeChart(file, 'federation', barChartSvg({
    title: `federation latency at ${TARGETS.latencyRate} ev/s, ingest at A → listener at B`, unit: 'ms', log: true,
    groups: levels.map((l) => `${l.peers} peer${l.peers > 1 ? 's' : ''}`),
    series: [
      { name: 'p50', values: levels.map((l) => l.latency.latencyMs.p50) },
      { name: 'p99', values: levels.map((l) => l.latency.latencyMs.p99) },
    ],
    targets: [{ label: 'p50 target 20 ms', value: TARGETS.p50Ms }, { label: 'p99 target 100 ms', value: TARGETS.p99Ms }],
  }), flags.profile, '-latency');
  return { scenario: 'federation', summary: [...summary.map((s) => s.line), ...sweepLines], file };
}

function logStage(s: FedStage, c: Ceilings, extra = ''): void {
  const pg = c.postgres[0]!.rowsPerSec;
  progress.log(
    `  ${s.peers} peer(s)${extra ? `, ${extra}` : ''} @ ${formatCount(s.rate)} ev/s offered (batch ${s.ingestBatch} at A): B stored ${formatCount(s.deliveredPerSec)} ev/s ` +
      `(${ratio(s.deliveredPerSec, pg)}× PG ceiling), A answered 200 to ${formatCount(s.ingestedPerSec)}/s and stored ${formatCount(s.storedAtAPerSec)}/s, pending ${formatCount(s.pendingStart)}→${formatCount(s.pendingEnd)}, ` +
      `drained in ${s.drainSeconds} s; p50 ${s.latencyMs.p50} p99 ${s.latencyMs.p99} ms (${s.latencyMs.count}); cores A ${s.cores.a} B ${s.cores.b} PG ${s.cores.postgres} bench ${s.cores.bench} other ${s.cores.foreign}`,
  );
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/federation.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
