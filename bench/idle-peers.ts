/**
 * `idle-peers`: memory of idle peer actors. One Kite (A, trusting the bench CA) with one team;
 * its RSS and V8 heap (from /metrics, prom-client's default metrics) are read before and after
 * 1,000 enabled peers are registered (each gets an actor and its HTTPS pool on start; none has
 * anything to send, so none connects). Each reading is the median of 5 samples over 5 s, after
 * 3 s of rest (`--quick`: 3 over 1.5 s after 2 s). Target: ≤ 50 MB for 1,000 (≤ 50 KB each).
 */
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { sleep } from './lib/http-load.js';
import { ADMIN_DATABASE_URL, startKite, type KiteServer } from './lib/kite.js';
import { describeMachine, machineFacts } from './lib/machine.js';
import { procMemory } from './lib/memory.js';
import { runCleanups } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { median, round } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { benchTls } from './lib/tls-certs.js';

const PEERS = 1000;
const TARGET_MB = 50;
const progress = new Progress();

async function reading(kite: KiteServer, label: string, quick: boolean): Promise<{ rssMb: number; heapUsedMb: number; heapTotalMb: number; externalMb: number }> {
  await sleep(quick ? 2000 : 3000);
  const rss: number[] = [];
  const used: number[] = [];
  const total: number[] = [];
  const external: number[] = [];
  const n = quick ? 3 : 5;
  for (let i = 0; i < n; i++) {
    progress.update(`idle-peers: ${label}`, i / n);
    const m = await kite.metrics();
    rss.push(procMemory(kite.pid).rssMb);
    used.push((m['kite_process_nodejs_heap_size_used_bytes'] ?? Number.NaN) / 2 ** 20);
    total.push((m['kite_process_nodejs_heap_size_total_bytes'] ?? Number.NaN) / 2 ** 20);
    external.push((m['kite_process_nodejs_external_memory_bytes'] ?? Number.NaN) / 2 ** 20);
    await sleep(quick ? 500 : 1000);
  }
  return { rssMb: round(median(rss)), heapUsedMb: round(median(used)), heapTotalMb: round(median(total)), externalMb: round(median(external)) };
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`idle-peers on ${describeMachine(machine)}; ${PEERS} enabled idle peers`);
  const tls = benchTls();
  const kite = await startKite({ instanceId: 'kite-a', federationCaFile: tls.caFile, profile: flags.profile, label: 'idle-peers' });
  let before;
  let after;
  let createSeconds;
  try {
    await kite.api('POST', '/v1/teams', { slug: 'idle' });
    // Warm the API paths first, so the "before" heap already holds their compiled code.
    await kite.api('POST', '/v1/teams/idle/peers', { instanceId: 'warm-up', url: 'https://localhost:9', scopes: ['bench.none'] });
    before = await reading(kite, 'before', flags.quick);
    const t0 = performance.now();
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < PEERS) {
        const i = next++;
        await kite.api('POST', '/v1/teams/idle/peers', { instanceId: `idle-${i}`, url: `https://localhost:9/${i}`, scopes: [`bench.idle${i}`] });
        if (i % 50 === 0) progress.update('idle-peers: adding', i / PEERS);
      }
    }));
    createSeconds = round((performance.now() - t0) / 1000, 1);
    after = await reading(kite, 'after', flags.quick);
  } finally {
    await kite.close();
  }
  const rssDelta = round(after.rssMb - before.rssMb);
  const heapDelta = round(after.heapUsedMb - before.heapUsedMb);
  const perPeerKb = round((rssDelta * 1024) / PEERS);
  const line =
    `idle-peers: ${PEERS} enabled idle peers add ${rssDelta} MB RSS (${before.rssMb} → ${after.rssMb} MB) = ${perPeerKb} KB each, ` +
    `${heapDelta} MB V8 heap used (${before.heapUsedMb} → ${after.heapUsedMb} MB) = ${round((heapDelta * 1024) / PEERS)} KB each (target ≤ ${TARGET_MB} MB total, ≤ 50 KB each); created in ${createSeconds} s`;
  progress.log(`  ${line}`);
  const { file } = writeResults('idle-peers', { scenario: 'idle-peers', at: new Date().toISOString(), machine, flags, peers: PEERS, targetMb: TARGET_MB, before, after, rssDelta, heapDelta, perPeerKb, createSeconds, line }, flags.profile);
  writeChart(file, 'idle-peers', barChartSvg({
    title: `memory of ${PEERS} idle peer actors`, unit: 'MB',
    groups: ['RSS', 'V8 heap used'],
    series: [{ name: 'before', values: [before.rssMb, before.heapUsedMb] }, { name: `after ${PEERS} peers`, values: [after.rssMb, after.heapUsedMb] }],
    targets: [{ label: `before + ${TARGET_MB} MB`, value: before.rssMb + TARGET_MB }],
  }), flags.profile);
  return { scenario: 'idle-peers', summary: [line], file };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/idle-peers.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
