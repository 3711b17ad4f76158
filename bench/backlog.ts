/**
 * `backlog`: 1,000,000 pending deliveries (`--backlog`; `--quick`: 100,000) for one peer A → B
 * over TLS, then the peer is enabled and drains them. The backlog is built with SQL straight into
 * A's tables (events + federation_deliveries + the team's head, as kite_append_events would leave
 * them, in chunks of 50,000 in one transaction each) while the peer is paused (`enabled: false`):
 * ingesting a million webhooks through A would take minutes at its current ingest rate, and the
 * figure here is the drain. Measured: drain rate (target ≥ 10,000/s), Kite A's and B's RSS (peak,
 * target ≤ 500 MB), Postgres memory (private memory of the bench databases' backends + the
 * largest shared-memory footprint), lost/duplicate events at B's listener.
 */
import { describeCeilings, measureCeilings } from './ceilings.js';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { addPeers, A_TEAM, dbPool, federatedCount, HIGH_RATE_LIMIT, listenerKey, startFederation } from './lib/federation-setup.js';
import { pendingCount } from './lib/fed-stage.js';
import { sleep } from './lib/http-load.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineBusySeconds, machineFacts, pidsCpuSeconds, postgresPids, selfCpuSeconds, waitForQuiet } from './lib/machine.js';
import { sampleActivity } from './lib/pg-activity.js';
import { postgresMemory, procMemory, rssSampler } from './lib/memory.js';
import { runCleanups } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { formatCount, ratio, round } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { connectListeners, FederatedStats } from './lib/wss-listener.js';

const TARGETS = { drainPerSec: 10_000, kiteRssMb: 500 };
const CHUNK = 50_000;
const progress = new Progress();

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const total = flags.backlog ?? (flags.quick ? 100_000 : 1_000_000);
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`backlog on ${describeMachine(machine)}; ${formatCount(total)} pending deliveries`);
  const ceilings = await measureCeilings(flags.quick ? 1 : 3, progress);
  for (const line of describeCeilings(ceilings)) progress.log(`  ${line}`);
  const pair = await startFederation({ profile: flags.profile, label: 'backlog' });
  const pools = { a: dbPool(pair.a), b: dbPool(pair.b) };
  const stats = new FederatedStats();
  let result;
  try {
    const [peer] = await addPeers(pair, 0, 1, { rateLimit: HIGH_RATE_LIMIT, enabled: false });
    const listeners = await connectListeners(pair.b.port, pair.tls.ca, [{ team: peer!.bTeam, key: await listenerKey(pair.b, peer!.bTeam) }], stats);
    // Build the backlog in A's tables.
    const { rows: [team] } = await pools.a.query<{ id: string; head: string }>('SELECT id, head FROM teams WHERE slug = $1', [A_TEAM]);
    const teamId = Number(team!.id);
    let head = Number(team!.head);
    const built0 = performance.now();
    const note = 'x'.repeat(760);
    for (let done = 0; done < total; done += CHUNK) {
      const n = Math.min(CHUNK, total - done);
      const client = await pools.a.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO events (team_id, seq, source, id, type, time, event)
           SELECT $1, $2::bigint + g, '/bench/backlog', 'bl-' || ($3::bigint + g), 'bench.p0', now(),
                  ('{"specversion":"1.0","id":"bl-' || ($3::bigint + g) || '","source":"/bench/backlog","type":"bench.p0",' ||
                   '"time":"2026-11-27T00:00:00.000Z","datacontenttype":"application/json","data":{"bench_sent_at":0,"bench_n":' ||
                   ($3::bigint + g) || ',"order":"ord_' || ($3::bigint + g) || '","note":"' || $4 || '"}}')::json
           FROM generate_series(1, $5::int) AS g`,
          [teamId, head, done - 1, note, n],
        );
        await client.query(
          `INSERT INTO federation_deliveries (peer_id, team_id, event_seq, event_id, event_source, event_type)
           SELECT $1, $2, $3::bigint + g, 'bl-' || ($4::bigint + g), '/bench/backlog', 'bench.p0' FROM generate_series(1, $5::int) AS g`,
          [peer!.id, teamId, head, done - 1, n],
        );
        await client.query('UPDATE teams SET head = $2 WHERE id = $1', [teamId, head + n]);
        await client.query('COMMIT');
      } finally {
        client.release();
      }
      head += n;
      progress.update('backlog: building (SQL)', (done + n) / total, `${formatCount(done + n)} rows`);
    }
    await pools.a.query('ANALYZE federation_deliveries');
    const buildSeconds = round((performance.now() - built0) / 1000, 1);
    progress.log(`  built ${formatCount(total)} pending deliveries with SQL in ${buildSeconds} s`);
    await waitForQuiet([pair.a.pid, pair.b.pid], 0.25, flags.quick ? 5_000 : 30_000, (c) => progress.update('backlog', 0, `waiting: other processes use ${c.toFixed(2)} cores`));
    const rssBefore = { a: procMemory(pair.a.pid).rssMb, b: procMemory(pair.b.pid).rssMb };
    const pgPids = [...new Set([...(await postgresPids(pair.a.databaseUrl)), ...(await postgresPids(pair.b.databaseUrl))])];
    const cpu = () => ({ a: pidsCpuSeconds([pair.a.pid]), b: pidsCpuSeconds([pair.b.pid]), pg: pidsCpuSeconds(pgPids), self: selfCpuSeconds(), all: machineBusySeconds() });
    const samplerA = rssSampler(pair.a.pid);
    const samplerB = rssSampler(pair.b.pid);
    let pgPeak = { privateMb: 0, sharedMb: 0, totalMb: 0, sharedBuffers: '', processes: 0 };
    const c0 = cpu();
    const dbName = (url: string) => new URL(url).pathname.slice(1);
    const activity = sampleActivity({ A: dbName(pair.a.databaseUrl), B: dbName(pair.b.databaseUrl) });
    const t0 = performance.now();
    await pair.a.api('PATCH', `/v1/teams/${A_TEAM}/peers/${peer!.id}`, { enabled: true });
    // --quick stops after 30 s of drain (the rate is measured either way); a full run gives up below ~500/s.
    const limitMs = flags.quick ? 30_000 : Math.max(120_000, total * 2);
    let pending = total;
    let lastPg = 0;
    while (pending > 0 && performance.now() - t0 < limitMs) {
      await sleep(200);
      // Counting a large queue costs A's database real time (a third of the samples at 1M, 7 % at
      // 100k): B's listener tells the progress, and A's queue is counted only once it has seen all.
      pending = stats.distinct < total ? total - stats.distinct : await pendingCount(pools.a);
      const elapsed = (performance.now() - t0) / 1000;
      progress.update('backlog: draining', 1 - pending / total, `${formatCount((total - pending) / elapsed)} ev/s, A RSS ${procMemory(pair.a.pid).rssMb} MB`);
      if (performance.now() - lastPg > 3000) {
        lastPg = performance.now();
        const m = await postgresMemory(pair.a.databaseUrl);
        if (m.totalMb > pgPeak.totalMb) pgPeak = m;
      }
    }
    const seconds = (performance.now() - t0) / 1000;
    const c1 = cpu();
    const postgresActivity = await activity.stop();
    const rssA = samplerA.stop();
    const rssB = samplerB.stop();
    const delivered = total - pending;
    // Let B's listener catch up.
    const wait0 = performance.now();
    while (stats.distinct < delivered && performance.now() - wait0 < 30_000) await sleep(200);
    const bStored = await federatedCount(pools.b);
    for (const l of listeners) l.close();
    const d = (k: 'a' | 'b' | 'pg' | 'self' | 'all') => round((c1[k] - c0[k]) / seconds, 2);
    result = {
      backlog: total, built: 'SQL into events + federation_deliveries (peer paused)', buildSeconds,
      drained: pending === 0, drainSeconds: round(seconds, 1), drainPerSec: Math.round(delivered / seconds),
      bStored, listenerDistinct: stats.distinct, lost: Math.max(0, delivered - stats.distinct), duplicates: stats.duplicates,
      listenerClosed: stats.closedUnexpectedly,
      kiteRssMb: { aBefore: rssBefore.a, aPeak: rssA.peakMb, aEnd: rssA.lastMb, bBefore: rssBefore.b, bPeak: rssB.peakMb },
      postgresMemoryPeak: pgPeak,
      postgresActivity,
      cores: { a: d('a'), b: d('b'), postgres: d('pg'), bench: d('self'), foreign: round(Math.max(0, (c1.all - c0.all) - (c1.a - c0.a) - (c1.b - c0.b) - (c1.pg - c0.pg) - (c1.self - c0.self)) / seconds, 2) },
    };
  } finally {
    await pools.a.end().catch(() => {});
    await pools.b.end().catch(() => {});
    await pair.close();
  }
  const pgRows = ceilings.postgres[0]!.rowsPerSec;
  const line =
    `backlog ${formatCount(result.backlog)}: drained${result.drained ? '' : ' (NOT all)'} at ${formatCount(result.drainPerSec)} ev/s in ${result.drainSeconds} s = ${ratio(result.drainPerSec, pgRows)}× PG insert ceiling (${formatCount(pgRows)}/s; target ≥ 10,000); ` +
    `Kite A RSS peak ${result.kiteRssMb.aPeak} MB (before ${result.kiteRssMb.aBefore}), B ${result.kiteRssMb.bPeak} MB (target ≤ 500); Postgres ${result.postgresMemoryPeak.privateMb} MB private + ${result.postgresMemoryPeak.sharedMb} MB shared (shared_buffers ${result.postgresMemoryPeak.sharedBuffers}); lost ${result.lost}, duplicates ${result.duplicates}`;
  progress.log(`  ${line}`);
  progress.log('  Postgres activity during the drain (share of 5 ms samples; >1 = several backends at once):');
  for (const t of result.postgresActivity.top.slice(0, 8)) progress.log(`    ${t.share.toFixed(3)}  ${t.what}`);
  const { file } = writeResults('backlog', { scenario: 'backlog', at: new Date().toISOString(), machine, flags, targets: TARGETS, ceilings, result, line }, flags.profile);
  writeChart(file, 'backlog', barChartSvg({
    title: `backlog of ${formatCount(result.backlog)}: drain rate`, unit: 'events/s',
    groups: ['drain'],
    series: [{ name: 'Kite A→B', values: [result.drainPerSec] }, { name: 'PG insert ceiling', values: [pgRows] }],
    targets: [{ label: 'target 10,000/s', value: TARGETS.drainPerSec }],
  }), flags.profile);
  return { scenario: 'backlog', summary: [line], file };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/backlog.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
