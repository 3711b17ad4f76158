/**
 * `node dist/bench/run.js <scenario|all> [flags]` (also `npm run bench -- <scenario> [flags]`):
 * runs the scenarios one after another and prints one summary line per level at the end.
 * `node dist/bench/run.js profile <file.cpuprofile>` summarizes a profile taken with `--profile`.
 */
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { runCleanups } from './lib/processes.js';
import type { ScenarioOutcome } from './lib/results.js';

type Scenario = (flags: BenchFlags) => Promise<ScenarioOutcome>;

const SCENARIOS: Record<string, { summary: string; load: () => Promise<Scenario> }> = {
  ingest: {
    summary: 'signed Stripe webhooks at 1/16/64/256 connections vs a no-op uWS POST handler',
    load: async () => (await import('./ingest.js')).run,
  },
  fanout: {
    summary: '1/100/1000 WebSocket listeners at a steady ingest rate vs uWS publish and the ws library',
    load: async () => (await import('./fanout.js')).run,
  },
  ceilings: {
    summary: 'this machine: HTTPS keep-alive round trip (undici → node:https) and Postgres batched 1 KB inserts',
    load: async () => (await import('./ceilings.js')).run,
  },
  federation: {
    summary: 'A → B over TLS, 1/10/100/1000 peers: events/s and ingest-at-A → listener-at-B p50/p99',
    load: async () => (await import('./federation.js')).run,
  },
  retry: {
    summary: 'a peer down 60 s under 1,000 ev/s, then up: drain time and rate, lost/duplicates/order',
    load: async () => (await import('./retry.js')).run,
  },
  backlog: {
    summary: '1,000,000 pending deliveries drained: rate, Kite RSS, Postgres memory',
    load: async () => (await import('./backlog.js')).run,
  },
  isolation: {
    summary: '100 peers, one 5 s-slow and one dead: the others\' p99 vs an all-healthy run',
    load: async () => (await import('./isolation.js')).run,
  },
  'idle-peers': {
    summary: 'memory of 1,000 idle peer actors (RSS and V8 heap before/after)',
    load: async () => (await import('./idle-peers.js')).run,
  },
  outbox: {
    summary: 'pg-boss 10 as the per-peer outbox vs a federation_deliveries-like table: enqueue, drain at depth, order, wake-up ticket',
    load: async () => (await import('./outbox.js')).run,
  },
  chaos: {
    summary: 'kill -9s and a flaky peer under webhook load, A (2 nodes) → B: lost, duplicates, order, recovery',
    load: async () => (await import('./chaos.js')).run,
  },
};

function usage(): string {
  const rows = Object.entries(SCENARIOS).map(([name, s]) => `  ${name.padEnd(10)} ${s.summary}`);
  return [
    'Usage: node dist/bench/run.js <scenario|all> [flags]',
    '       node dist/bench/run.js profile <file.cpuprofile> [--top N]',
    '',
    'Scenarios:',
    ...rows,
    '  all        every scenario in turn',
    '',
    FLAGS_HELP,
    '',
    'Results: bench/results/<scenario>-<timestamp>.json and <scenario>-latest.json.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  if (name === 'profile') {
    const { printProfile } = await import('./profile.js');
    return printProfile(rest);
  }
  const names = name === 'all' ? Object.keys(SCENARIOS) : [name];
  const unknown = names.find((n) => !SCENARIOS[n]);
  if (unknown) {
    console.error(`unknown scenario ${JSON.stringify(unknown)}\n\n${usage()}`);
    return 2;
  }
  let flags: BenchFlags;
  try {
    flags = parseFlags(rest);
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${usage()}`);
    return 2;
  }
  if (flags.help) {
    console.log(usage());
    return 0;
  }
  const outcomes: ScenarioOutcome[] = [];
  const started = Date.now();
  for (const n of names) {
    const scenario = await SCENARIOS[n]!.load();
    outcomes.push(await scenario(flags));
  }
  console.log(`\nSummary (${Math.round((Date.now() - started) / 1000)} s):`);
  for (const outcome of outcomes) {
    for (const line of outcome.summary) console.log(`  ${line}`);
    console.log(`    → ${outcome.file}`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  async (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    await runCleanups();
    process.exitCode = 1;
  },
);
