/**
 * `ingest`: signed Stripe webhooks over N keep-alive connections (closed loop), against Kite and,
 * in the same run with the same generator, a no-op uWS POST handler (the machine's HTTP ceiling).
 * Reports events/s, p50/p99, CPU per event, Kite as a ratio of the ceiling, and checks that every
 * 200 answer is a stored row (durable ingest, not just answers).
 */
import { cpuSince, cpuSnapshot, describeMachine, machineFacts, measureQuietly, postgresPids, waitForQuiet, type CpuSnapshot, type CpuUse } from './lib/machine.js';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { runClosedLoop, type LoadResult } from './lib/http-load.js';
import { ADMIN_DATABASE_URL, groupCommits, scrapeMetrics, setupStripeSource, startKite, STRIPE_SECRET } from './lib/kite.js';
import { runCleanups, startBaseline, type Child } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { formatCount, median, ratio, round } from './lib/stats.js';
import { SignedSupply, signedRequest, stripeEventBody, nextEventId } from './lib/stripe.js';

interface Stage {
  readonly target: 'kite' | 'uws-noop';
  readonly connections: number;
  readonly run: number;
  readonly eventsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly statuses: Record<number, number>;
  readonly duplicates: number;
  readonly errors: number;
  /** CPU ms per answered request in the measured window: server process, all Postgres processes, generator. */
  readonly cpuMsPerEvent: { server: number; postgres: number; generator: number };
  /** Cores used by processes outside the benchmark during the window (another workload on the machine). */
  readonly foreignCores: number;
  /** Kite only: group commits in the window (from its /metrics). */
  readonly groupCommit?: { flushes: number; meanBatch: number; meanMs: number };
  readonly signedLate?: number;
  /** Kite only: rows in `events` after the stage vs 200 answers so far. */
  readonly stored?: number;
  readonly answered200?: number;
}

const progress = new Progress();

async function stage(target: Stage['target'], server: Child, connections: number, run: number, flags: BenchFlags, next: () => Buffer, databaseUrl?: string): Promise<Stage> {
  let before: CpuSnapshot | undefined;
  let used: CpuUse | undefined;
  let pgPids: number[] = [];
  let metricsBefore: Record<string, number> = {};
  let groupCommit: Stage['groupCommit'];
  const label = `ingest ${target.padEnd(8)} ${String(connections).padStart(3)} conns (run ${run + 1}/${flags.repeat})`;
  await waitForQuiet([server.pid], 0.25, 120_000, (cores) => progress.update(label, 0, `waiting: other processes use ${cores.toFixed(2)} cores`));
  const result: LoadResult = await runClosedLoop({
    port: server.port,
    connections,
    warmupMs: flags.quick ? 1000 : 2000,
    durationMs: flags.duration * 1000,
    nextRequest: next,
    onTick: (fraction, rate) => progress.update(label, fraction, `${formatCount(rate)} ev/s`),
    onWindow: async (edge) => {
      if (edge === 'start') {
        pgPids = databaseUrl ? await postgresPids(databaseUrl) : []; // after warm-up: the pool is open
        if (target === 'kite') metricsBefore = await scrapeMetrics(server.url);
        before = cpuSnapshot([server.pid], pgPids);
      } else {
        used = cpuSince(before!, cpuSnapshot([server.pid], pgPids));
        if (target === 'kite') groupCommit = groupCommits(metricsBefore, await scrapeMetrics(server.url));
      }
    },
  });
  const perEvent = (seconds: number) => round((seconds * 1000) / Math.max(1, result.measured), 4);
  const latency = result.latency.summary();
  return {
    target, connections, run,
    eventsPerSec: Math.round(result.perSecond),
    p50Ms: latency.p50,
    p99Ms: latency.p99,
    statuses: result.statuses,
    duplicates: result.duplicates,
    errors: result.errors,
    cpuMsPerEvent: { server: perEvent(used!.server), postgres: perEvent(used!.postgres), generator: perEvent(used!.client) },
    foreignCores: round(used!.foreign / result.seconds, 2),
    ...(groupCommit ? { groupCommit } : {}),
  };
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const levels = flags.connections ?? (flags.quick ? [64] : [1, 16, 64, 256]);
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`ingest on ${describeMachine(machine)}; levels ${levels.join(', ')} connections, ${flags.duration} s each, ${flags.repeat} run(s)`);
  const stages: Stage[] = [];
  const baseline = await startBaseline('noop-uws');
  // The no-op server does not dedup: a fixed set of signed requests, cycled, is the same work for it.
  const fixed = Array.from({ length: 2000 }, () => signedRequest('/hooks/bench/stripe', stripeEventBody(nextEventId()), STRIPE_SECRET));
  let cursor = 0;
  const cycled = () => fixed[cursor++ % fixed.length]!;
  let bestKite = 10_000; // sizes the pre-signed supply: twice the best Kite rate so far, at most the ceiling
  try {
    for (let r = 0; r < flags.repeat; r++) {
      const kite = await startKite({ profile: flags.profile, label: `ingest-run${r + 1}` });
      try {
        const hookPath = await setupStripeSource(kite);
        const supply = new SignedSupply(hookPath, STRIPE_SECRET);
        let answered200 = 0;
        for (const connections of levels) {
          const again = (busy: Stage) => progress.log(`  other processes used ${busy.foreignCores} cores during ${busy.target} @ ${connections}; measuring again`);
          const ceiling = await measureQuietly(() => stage('uws-noop', baseline, connections, r, flags, cycled), again);
          stages.push(ceiling);
          const measureKite = async (): Promise<Stage> => {
            const count = Math.ceil(Math.min(ceiling.eventsPerSec * 1.2, 2 * bestKite) * (flags.duration + (flags.quick ? 1 : 2)));
            progress.log(`signing ${formatCount(count)} webhooks ahead of the run…`);
            supply.fill(count);
            supply.signedLate = 0;
            const kiteStage = await stage('kite', kite, connections, r, flags, () => supply.next(), kite.databaseUrl);
            supply.clear(); // their timestamps would go stale (Stripe allows 300 s)
            answered200 += kiteStage.statuses[200] ?? 0;
            const stored = await kite.countEvents();
            bestKite = Math.max(bestKite, kiteStage.eventsPerSec);
            return { ...kiteStage, signedLate: supply.signedLate, stored, answered200 };
          };
          stages.push(await measureQuietly(measureKite, again));
          progress.log(line(stages, connections, r));
        }
      } finally {
        await kite.close();
      }
    }
  } finally {
    await baseline.stop();
  }
  const summary = levels.map((c) => summarizeLevel(stages, c, flags.repeat));
  const file = writeResults('ingest', {
    scenario: 'ingest', at: new Date().toISOString(), machine, flags,
    targets: { connections: 64, eventsPerSec: 20_000, p99Ms: 20 },
    levels: summary, stages,
  }, flags.profile).file;
  writeChart(file, 'ingest', barChartSvg({
    title: 'ingest: signed Stripe webhooks, stored before the 200', unit: 'events/s', log: true,
    groups: summary.map((s) => `${s.connections} conns`),
    series: [
      { name: 'Kite', values: summary.map((s) => s.kite.eventsPerSec) },
      { name: 'uWS no-op POST (ceiling)', values: summary.map((s) => s.uwsNoop.eventsPerSec) },
    ],
    targets: [{ label: 'target 20,000/s at 64 conns', value: 20_000 }],
  }), flags.profile);
  return { scenario: 'ingest', summary: summary.map((s) => s.line), file };
}

function line(stages: readonly Stage[], connections: number, r: number): string {
  const k = stages.find((s) => s.target === 'kite' && s.connections === connections && s.run === r)!;
  const b = stages.find((s) => s.target === 'uws-noop' && s.connections === connections && s.run === r)!;
  const durable = k.stored === k.answered200 ? 'stored = 200s' : `STORED ${k.stored} ≠ 200s ${k.answered200}`;
  const other = Object.entries(k.statuses).filter(([s]) => s !== '200').map(([s, n]) => `${n}×${s}`).join(' ');
  return (
    `  ${String(connections).padStart(3)} conns: kite ${formatCount(k.eventsPerSec)}/s p50 ${k.p50Ms} p99 ${k.p99Ms} ms ` +
    `(${k.cpuMsPerEvent.server} ms CPU/ev, pg ${k.cpuMsPerEvent.postgres}; commits of ${k.groupCommit?.meanBatch} in ${k.groupCommit?.meanMs} ms) | uws no-op ${formatCount(b.eventsPerSec)}/s p99 ${b.p99Ms} ms ` +
    `| ${durable}${other ? ` | ${other}` : ''}${k.foreignCores > 0.2 ? ` | other load ${k.foreignCores} cores` : ''}${k.signedLate ? ` | ${k.signedLate} signed late` : ''}`
  );
}

function summarizeLevel(stages: readonly Stage[], connections: number, repeat: number) {
  const of = (target: Stage['target']) => stages.filter((s) => s.target === target && s.connections === connections);
  const kite = of('kite');
  const base = of('uws-noop');
  const m = (xs: readonly Stage[], f: (s: Stage) => number) => median(xs.map(f));
  const kiteRate = m(kite, (s) => s.eventsPerSec);
  const baseRate = m(base, (s) => s.eventsPerSec);
  const durable = kite.every((s) => s.stored === s.answered200);
  const level = {
    connections, runs: repeat, durable,
    kite: { eventsPerSec: kiteRate, p50Ms: m(kite, (s) => s.p50Ms), p99Ms: m(kite, (s) => s.p99Ms), cpuMsPerEvent: m(kite, (s) => s.cpuMsPerEvent.server), postgresCpuMsPerEvent: m(kite, (s) => s.cpuMsPerEvent.postgres) },
    uwsNoop: { eventsPerSec: baseRate, p50Ms: m(base, (s) => s.p50Ms), p99Ms: m(base, (s) => s.p99Ms), cpuMsPerEvent: m(base, (s) => s.cpuMsPerEvent.server) },
    ratio: ratio(kiteRate, baseRate),
  };
  const line =
    `ingest ${connections} conns: kite ${formatCount(kiteRate)} ev/s p50 ${level.kite.p50Ms} ms p99 ${level.kite.p99Ms} ms, ` +
    `${level.kite.cpuMsPerEvent} ms CPU/ev = ${level.ratio}× uWS no-op (${formatCount(baseRate)}/s); ` +
    `${durable ? 'every 200 stored' : 'NOT DURABLE: stored ≠ 200 answers'} (median of ${repeat})`;
  return { ...level, line };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/ingest.js [flags]\n${FLAGS_HELP}`);
  else {
    run(flags).then(
      (outcome) => console.log([...outcome.summary, `results: ${outcome.file}`].join('\n')),
      async (err: unknown) => {
        console.error(err);
        await runCleanups();
        process.exitCode = 1;
      },
    );
  }
}
