/**
 * `node dist/bench/run.js chaos` (or `node dist/bench/chaos.js`): the CI fault-injection run
 * (test/chaos/chaos.test.ts), longer. Instance A (two `kite serve` nodes on one database) and B
 * (one node), real TLS, a seeded schedule of kill -9s, flaky-peer faults and database outages under
 * a steady webhook load; then the checker. Writes the figures — events, faults of each kind, lost, duplicates,
 * order violations, time to recover — to bench/results/chaos-<time>.json.
 *
 * Flags: `--duration <s>` seconds of faults (default 180; `--quick`: 30; the shared default of 10
 * s per level is far too short to mean anything here), `--rate <n>` webhooks per second
 * (default 40), `--repeat <n>` runs with seeds seed, seed+1, …; the seed is KITE_CHAOS_SEED when
 * set, so a failure's seed reruns it.
 */
import { rmSync } from 'node:fs';
import { makeTestTls } from '../test/support/tls.js';
import { chooseSeed } from './lib/chaos/prng.js';
import { failureText, isPass, reportLine } from './lib/chaos/report-line.js';
import { runChaos, type ChaosReport } from './lib/chaos/run-chaos.js';
import type { Database } from './lib/chaos/cluster.js';
import { parseFlags, type BenchFlags } from './lib/flags.js';
import { ADMIN_DATABASE_URL, adminQuery } from './lib/kite.js';
import { machineFacts, describeMachine } from './lib/machine.js';
import { onCleanup, runCleanups } from './lib/processes.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';

const DEFAULT_SECONDS = 180;
const QUICK_SECONDS = 30;
const DEFAULT_RATE = 40;

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const seconds = durationGiven() ? flags.duration : flags.quick ? QUICK_SECONDS : DEFAULT_SECONDS;
  const rate = flags.rate ?? DEFAULT_RATE;
  const firstSeed = chooseSeed(process.env['KITE_CHAOS_SEED']);
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  console.log(`chaos on ${describeMachine(machine)}; ${seconds} s of faults at ${rate} webhooks/s, ${flags.repeat} run(s) from seed ${firstSeed}`);
  const tls = makeTestTls();
  const removeTls = () => rmSync(tls.dir, { recursive: true, force: true });
  const unregister = onCleanup(removeTls); // on Ctrl-C
  const runs: ChaosReport[] = [];
  try {
    for (let i = 0; i < flags.repeat; i++) {
      const seed = (firstSeed + i) >>> 0;
      const report = await runChaos({
        seed, durationMs: seconds * 1000, rate, meanKillGapMs: 4_000, maxDownMs: 3_000, convergeTimeoutMs: 120_000,
        tls, createDatabase: benchDatabase, log: (line) => console.log(line),
      });
      runs.push(report);
      console.log(isPass(report) ? reportLine(report) : failureText(report, `node dist/bench/run.js chaos --duration ${seconds} --rate ${rate}`));
    }
  } finally {
    unregister();
    removeTls();
  }
  const file = writeResults('chaos', {
    scenario: 'chaos', at: new Date().toISOString(), machine, flags: { ...flags, duration: seconds, rate },
    runs: runs.map(({ schedule, ...figures }) => ({ ...figures, schedule: { kills: schedule.kills.length, networkSteps: schedule.network.length, databaseOutages: schedule.database.length } })),
  });
  writeChart(file.file, 'chaos', barChartSvg({
    title: 'chaos: webhooks answered 200 and what became of them', unit: 'count', log: true,
    groups: runs.map((r) => `seed ${r.seed}`),
    series: [
      { name: 'answered 200', values: runs.map((r) => r.verdict.answered) },
      { name: 'B re-sends deduplicated', values: runs.map((r) => r.redeliveriesDeduplicatedByB) },
      { name: 'lost', values: runs.map((r) => r.verdict.lost) },
      { name: 'duplicates', values: runs.map((r) => r.verdict.duplicates) },
      { name: 'order violations', values: runs.map((r) => r.verdict.peerOrderViolations + r.verdict.listenerOrderViolations) },
    ],
  }), flags.profile);
  return { scenario: 'chaos', summary: runs.map(reportLine), file: file.file };
}

/** `--duration` on the command line, not flags.ts's default (10 s is a per-level default elsewhere). */
function durationGiven(): boolean {
  return process.argv.some((arg) => arg === '--duration' || arg.startsWith('--duration='));
}

/** A fresh, empty database per instance (Kite migrates it at start), dropped at the end or on Ctrl-C. */
async function benchDatabase(): Promise<Database> {
  const name = `kite_chaos_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const drop = () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  const unregister = onCleanup(drop);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      unregister();
      await drop();
    },
  };
}

if (isMain(import.meta.url)) {
  run(parseFlags(process.argv.slice(2))).then(
    (outcome) => console.log([...outcome.summary, `results: ${outcome.file}`].join('\n')),
    async (err: unknown) => {
      console.error(err instanceof Error ? (err.stack ?? err.message) : err);
      await runCleanups();
      process.exitCode = 1;
    },
  );
}
