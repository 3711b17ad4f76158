/**
 * `retry`: one peer A → B over TLS, with a TCP pass-through in front of B (lib/tcp-proxy.ts).
 * Under a steady 1,000 events/s (single-event webhooks at A), the proxy goes down for `--down`
 * seconds (60; `--quick`: 10): connections refused, open ones cut. Then it comes back and the load
 * goes on. Measured: the backlog when B came back, the time until B's listener had every event A
 * accepted before that moment (time to drain), the drain rate, and at the end — after the load
 * stops and the outbox empties — lost events, duplicates at B's listener and order violations.
 * The peer has rateLimit 100,000/s and retry {initialDelayMs 200, maxDelayMs 1000, maxAttempts
 * 1000}: the bench measures how fast Kite drains, not how long the default backoff (up to
 * 300 s) waits before its next try.
 */
import { describeCeilings, measureCeilings } from './ceilings.js';
import { CePublisher } from './lib/ce-publisher.js';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { addPeers, CE_SECRET, dbPool, federatedCount, HIGH_RATE_LIMIT, listenerKey, startFederation, storageRanks } from './lib/federation-setup.js';
import { pendingCount } from './lib/fed-stage.js';
import { sleep } from './lib/http-load.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineBusySeconds, machineFacts, pidsCpuSeconds, postgresPids, selfCpuSeconds, waitForQuiet } from './lib/machine.js';
import { runCleanups } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { formatCount, ratio, round } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { TcpProxy } from './lib/tcp-proxy.js';
import { connectListeners, FederatedStats } from './lib/wss-listener.js';

const TARGETS = { drainPerSec: 10_000, lost: 0, duplicates: 0, orderViolations: 0 };
const RATE = 1000;
const progress = new Progress();

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const downS = flags.down ?? (flags.quick ? 10 : 60);
  const steadyS = flags.quick ? 3 : 5;
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`retry on ${describeMachine(machine)}; ${RATE} ev/s, peer down ${downS} s`);
  const ceilings = await measureCeilings(flags.quick ? 1 : 3, progress);
  for (const line of describeCeilings(ceilings)) progress.log(`  ${line}`);
  const pair = await startFederation({ profile: flags.profile, label: 'retry' });
  const pools = { a: dbPool(pair.a), b: dbPool(pair.b) };
  const proxy = await TcpProxy.start(pair.b.port);
  const stats = new FederatedStats(true);
  let result;
  try {
    const [peer] = await addPeers(pair, 0, 1, {
      url: `https://localhost:${proxy.port}`, rateLimit: HIGH_RATE_LIMIT,
      retry: { maxAttempts: 1000, initialDelayMs: 200, maxDelayMs: 1000, timeoutMs: 5000 },
    });
    const listeners = await connectListeners(pair.b.port, pair.tls.ca, [{ team: peer!.bTeam, key: await listenerKey(pair.b, peer!.bTeam) }], stats);
    await waitForQuiet([pair.a.pid, pair.b.pid], 0.25, flags.quick ? 5_000 : 30_000, (c) => progress.update('retry', 0, `waiting: other processes use ${c.toFixed(2)} cores`));
    const publisher = new CePublisher(pair.a.port, pair.hookPath, CE_SECRET, { batch: 1, peers: 1, track: true });
    await publisher.open(4);
    publisher.start(RATE);
    stats.recording = true;
    await sleep(steadyS * 1000);
    const steadyP99 = stats.latency.summary().p99;
    // Down.
    await proxy.down();
    const downAt = performance.now();
    while (performance.now() - downAt < downS * 1000) {
      progress.update('retry: peer down', (performance.now() - downAt) / (downS * 1000), `${formatCount(publisher.accepted - stats.distinct)} not yet at B`);
      await sleep(250);
    }
    // Up: everything A accepted until now must reach B's listener.
    const backlog = await pendingCount(pools.a);
    const acceptedAtUp = publisher.acceptedRanges.length;
    const pgPids = [...new Set([...(await postgresPids(pair.a.databaseUrl)), ...(await postgresPids(pair.b.databaseUrl))])];
    const cpu = () => ({ a: pidsCpuSeconds([pair.a.pid]), b: pidsCpuSeconds([pair.b.pid]), pg: pidsCpuSeconds(pgPids), self: selfCpuSeconds(), all: machineBusySeconds() });
    const c0 = cpu();
    const b0 = await federatedCount(pools.b);
    await proxy.up();
    const upAt = performance.now();
    let checked = 0;
    const limitMs = Math.max(120_000, backlog * 2);
    while (performance.now() - upAt < limitMs) {
      while (checked < acceptedAtUp) {
        const [first, count] = publisher.acceptedRanges[checked]!;
        if (!stats.has(first + count - 1)) break;
        checked++;
      }
      if (checked >= acceptedAtUp) break;
      progress.update('retry: draining', checked / acceptedAtUp, `${formatCount(acceptedAtUp - checked)} of the backlog still to reach B`);
      await sleep(20);
    }
    const drainMs = performance.now() - upAt;
    const drained = checked >= acceptedAtUp;
    const c1 = cpu();
    const b1 = await federatedCount(pools.b);
    // Keep the load a little longer, then stop and let everything arrive.
    await sleep(2000);
    await publisher.close();
    const endWait = performance.now();
    while (performance.now() - endWait < 60_000 && ((await pendingCount(pools.a)) > 0 || stats.distinct < publisher.accepted)) await sleep(200);
    await sleep(500);
    let lost = 0;
    for (const [first, count] of publisher.acceptedRanges) for (let n = first; n < first + count; n++) if (!stats.has(n)) lost++;
    for (const l of listeners) l.close();
    // Order: B's listener must see A's events in A's storage (seq) order; concurrent webhooks make
    // that differ from the publisher's bench_n order, so A's table says what the order was.
    const orderViolations = stats.orderViolationsAgainst(await storageRanks(pools.a, publisher.sent));
    const seconds = drainMs / 1000;
    const d = (k: 'a' | 'b' | 'pg' | 'self' | 'all') => round((c1[k] - c0[k]) / seconds, 2);
    result = {
      rate: RATE, downSeconds: downS, backlogAtUp: backlog, drained,
      drainSeconds: round(seconds, 2),
      backlogDrainPerSec: Math.round(backlog / seconds),
      bStoredPerSecDuringDrain: Math.round((b1 - b0) / seconds),
      accepted: publisher.accepted, receivedDistinct: stats.distinct, lost,
      duplicates: stats.duplicates, orderViolations, benchNOrderInversions: stats.orderViolations,
      listenerClosed: stats.closedUnexpectedly, statuses: { ...publisher.statuses },
      steadyP99Ms: steadyP99, latencyOverallMs: stats.latency.summary(),
      coresDuringDrain: { a: d('a'), b: d('b'), postgres: d('pg'), bench: d('self'), foreign: round(Math.max(0, (c1.all - c0.all) - (c1.a - c0.a) - (c1.b - c0.b) - (c1.pg - c0.pg) - (c1.self - c0.self)) / seconds, 2) },
    };
  } finally {
    await proxy.close();
    await pools.a.end().catch(() => {});
    await pools.b.end().catch(() => {});
    await pair.close();
  }
  const pgRows = ceilings.postgres[0]!.rowsPerSec;
  const line =
    `retry: ${result.downSeconds} s down at ${RATE} ev/s → backlog ${formatCount(result.backlogAtUp)}, drained in ${result.drainSeconds} s${result.drained ? '' : ' (NOT drained)'} = ` +
    `${formatCount(result.backlogDrainPerSec)} ev/s (B stored ${formatCount(result.bStoredPerSecDuringDrain)}/s = ${ratio(result.bStoredPerSecDuringDrain, pgRows)}× PG insert ceiling ${formatCount(pgRows)}/s; target ≥ 10,000); ` +
    `lost ${result.lost}, duplicates ${result.duplicates}, order violations ${result.orderViolations} of ${formatCount(result.accepted)}`;
  progress.log(`  ${line}`);
  const { file } = writeResults('retry', { scenario: 'retry', at: new Date().toISOString(), machine, flags, targets: TARGETS, ceilings, result, line }, flags.profile);
  writeChart(file, 'retry', barChartSvg({
    title: `retry: drain after ${result.downSeconds} s down (backlog ${formatCount(result.backlogAtUp)})`, unit: 'events/s',
    groups: ['backlog drain', 'B stored during drain'],
    series: [
      { name: 'Kite', values: [result.backlogDrainPerSec, result.bStoredPerSecDuringDrain] },
      { name: 'PG insert ceiling', values: [pgRows, pgRows] },
    ],
    targets: [{ label: 'target 10,000/s', value: TARGETS.drainPerSec }],
  }), flags.profile);
  return { scenario: 'retry', summary: [line], file };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/retry.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
