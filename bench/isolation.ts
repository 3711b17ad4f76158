/**
 * `isolation`: 100 peers of one team on A (rateLimit 100,000/s), 1,000 events/s spread over them
 * (single-event webhooks; event n to peer n mod 100). First all 100 deliver to B (the healthy
 * run); then peer 98 is pointed at a slow receiver that answers 200 only after 5 s
 * (servers/https-noop.ts with BENCH_DELAY_MS=5000) and peer 99 at a port where nothing listens
 * (connections refused), and the same load runs again. The other 98 peers' ingest-at-A →
 * listener-at-B p99 (WSS listeners on their 98 teams of B) must stay within 2× of the healthy run
 * measured in this same bench.
 */
import path from 'node:path';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { addPeers, A_TEAM, dbPool, HIGH_RATE_LIMIT, listenerKey, startFederation } from './lib/federation-setup.js';
import { fedStage, type FedStage } from './lib/fed-stage.js';
import { sleep } from './lib/http-load.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineFacts } from './lib/machine.js';
import { DIST_BENCH, freePort, runCleanups, startChild } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { formatCount, ratio } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { connectListeners, FederatedStats } from './lib/wss-listener.js';

const PEERS = 100;
const RATE = 1000;
const TARGET_P99_RATIO = 2;
const progress = new Progress();

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const seconds = flags.duration;
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`isolation on ${describeMachine(machine)}; ${PEERS} peers, ${RATE} ev/s, ${seconds} s per run`);
  const pair = await startFederation({ profile: flags.profile, label: 'isolation' });
  const pools = { a: dbPool(pair.a), b: dbPool(pair.b) };
  const slowPort = await freePort();
  const slow = await startChild({
    name: 'slow-peer', args: [path.join(DIST_BENCH, 'servers', 'https-noop.js')],
    env: { BENCH_PORT: String(slowPort), BENCH_TLS_CERT: pair.tls.certFile, BENCH_TLS_KEY: pair.tls.keyFile, BENCH_DELAY_MS: '5000' },
    port: slowPort, readyPath: '/ready', ca: pair.tls.ca, readyTimeoutMs: 30_000,
  });
  const deadPort = await freePort();
  const stats = new FederatedStats();
  let healthy: FedStage;
  let degraded: FedStage;
  let slowPeer: unknown;
  let deadPeer: unknown;
  try {
    const peers = await addPeers(pair, 0, PEERS, { rateLimit: HIGH_RATE_LIMIT }, (done) => progress.update('isolation: adding peers', done / PEERS));
    const teams = [];
    for (const p of peers.slice(0, PEERS - 2)) teams.push({ team: p.bTeam, key: await listenerKey(pair.b, p.bTeam) });
    const listeners = await connectListeners(pair.b.port, pair.tls.ca, teams, stats);
    // A longer warm-up than other stages: the first contact with 100 peers (a TLS handshake each)
    // takes ~2 s on 2 cores and would otherwise fall in the healthy run's window only, inflating
    // the baseline the ratio divides by.
    const stage = (label: string, drainLimitS: number) =>
      fedStage(pair, pools, stats, { label, rate: RATE, ingestBatch: 1, peers: PEERS, seconds, warmupSeconds: flags.quick ? 2 : 5, drainLimitS, quietWaitS: flags.quick ? 5 : 30 }, progress);
    healthy = await stage('isolation: all healthy', flags.quick ? 10 : 30);
    progress.log(`  all healthy: 98 peers' p50 ${healthy.latencyMs.p50} ms p99 ${healthy.latencyMs.p99} ms (${healthy.latencyMs.count} samples), B stored ${formatCount(healthy.deliveredPerSec)} ev/s`);
    await pair.a.api('PATCH', `/v1/teams/${A_TEAM}/peers/${peers[PEERS - 2]!.id}`, { url: `https://localhost:${slowPort}` });
    await pair.a.api('PATCH', `/v1/teams/${A_TEAM}/peers/${peers[PEERS - 1]!.id}`, { url: `https://localhost:${deadPort}` });
    await sleep(500);
    // The slow and dead peers never drain: wait a few seconds only.
    degraded = await stage('isolation: one slow, one dead', 3);
    slowPeer = await pair.a.api('GET', `/v1/teams/${A_TEAM}/peers/${peers[PEERS - 2]!.id}`);
    deadPeer = await pair.a.api('GET', `/v1/teams/${A_TEAM}/peers/${peers[PEERS - 1]!.id}`);
    progress.log(`  one slow + one dead: 98 peers' p50 ${degraded.latencyMs.p50} ms p99 ${degraded.latencyMs.p99} ms (${degraded.latencyMs.count} samples)`);
    for (const l of listeners) l.close();
  } finally {
    await slow.stop();
    await pools.a.end().catch(() => {});
    await pools.b.end().catch(() => {});
    await pair.close();
  }
  const p99Ratio = ratio(degraded.latencyMs.p99, healthy.latencyMs.p99);
  const pick = (p: unknown) => {
    const x = p as { state: string; pending: number; delivered: number; lastError: string | null };
    return { state: x.state, pending: x.pending, delivered: x.delivered, lastError: x.lastError };
  };
  const line =
    `isolation ${PEERS} peers @ ${RATE} ev/s: the 98 healthy peers' p99 ${degraded.latencyMs.p99} ms with one 5 s-slow and one dead peer vs ${healthy.latencyMs.p99} ms all healthy = ` +
    `${p99Ratio}× (target ≤ ${TARGET_P99_RATIO}×); p50 ${degraded.latencyMs.p50} vs ${healthy.latencyMs.p50} ms`;
  progress.log(`  ${line}`);
  const { file } = writeResults('isolation', {
    scenario: 'isolation', at: new Date().toISOString(), machine, flags, targets: { p99Ratio: TARGET_P99_RATIO },
    healthy, degraded, p99Ratio, slowPeer: pick(slowPeer), deadPeer: pick(deadPeer), line,
  }, flags.profile);
  writeChart(file, 'isolation', barChartSvg({
    title: '98 healthy peers: ingest at A → listener at B', unit: 'ms',
    groups: ['p50', 'p99'],
    series: [
      { name: 'all 100 healthy', values: [healthy.latencyMs.p50, healthy.latencyMs.p99] },
      { name: '1 slow (5 s) + 1 dead', values: [degraded.latencyMs.p50, degraded.latencyMs.p99] },
    ],
    targets: [{ label: '2× healthy p99', value: healthy.latencyMs.p99 * 2 }],
  }), flags.profile);
  return { scenario: 'isolation', summary: [line], file };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/isolation.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
