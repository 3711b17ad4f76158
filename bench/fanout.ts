/**
 * `fanout`: L WebSocket listeners on one team while a publisher ingests signed webhooks at a steady
 * rate. Measures deliveries/s received by all listeners and ingest→listener latency (the send time
 * travels in the webhook body). Same run, same listeners and publisher: uWS `app.publish` (the
 * ceiling) and the `ws` library's server (`client.send` in a loop) as baselines.
 */
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { sleep } from './lib/http-load.js';
import { createListenerKey, ADMIN_DATABASE_URL, setupStripeSource, startKite, STRIPE_SECRET } from './lib/kite.js';
import { cpuSince, cpuSnapshot, describeMachine, machineFacts, measureQuietly, postgresPids, waitForQuiet } from './lib/machine.js';
import { runCleanups, startBaseline, type Child } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { Publisher } from './lib/publisher.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { formatCount, median, ratio, round, Samples } from './lib/stats.js';
import { WsListener, type ListenerStats } from './lib/ws-listener.js';

type Target = 'kite' | 'uws-publish' | 'ws-publish';
interface Endpoint { readonly server: Child; readonly listenPath: string; readonly hookPath: string; readonly databaseUrl?: string }

interface Stage {
  readonly target: Target;
  readonly listeners: number;
  readonly run: number;
  readonly rate: number;
  readonly publishedPerSec: number;
  readonly deliveriesPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly samples: number;
  /** After the drain: deliveries expected (200 answers × listeners) and missing. */
  readonly expected: number;
  readonly missing: number;
  readonly listenersClosed: number;
  /** Listeners closed by the server before their `ready` frame, and connected again. */
  readonly connectRetries: number;
  readonly publishStatuses: Record<number, number>;
  /** CPU µs per delivery: server (+ its Postgres), listeners and publisher process. */
  readonly cpuUsPerDelivery: { server: number; postgres: number; client: number };
  readonly foreignCores: number;
}

const progress = new Progress();

/**
 * Connects `count` listeners, 50 at a time, each up to its `ready` frame. A listener that is
 * closed before `ready` is tried again (twice at most; counted in `retries`); fails after 60 s.
 */
async function connectAll(endpoint: Endpoint, count: number, stats: ListenerStats, sampleEvery: number): Promise<{ listeners: WsListener[]; retries: number }> {
  const listeners: WsListener[] = [];
  let retries = 0;
  const connectOne = async (phase: number): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        const listener = await WsListener.connect(endpoint.server.port, endpoint.listenPath, stats, sampleEvery, phase);
        listeners.push(listener);
        await listener.ready;
        return;
      } catch (err) {
        if (attempt >= 2) throw err;
        retries++;
      }
    }
  };
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('listeners not ready after 60 s')), 60_000).unref());
  try {
    for (let i = 0; i < count; i += 50) {
      await Promise.race([Promise.all(Array.from({ length: Math.min(50, count - i) }, (_, j) => connectOne(i + j))), timeout]);
    }
  } catch (err) {
    for (const l of listeners) l.close();
    throw new Error(`${endpoint.server.name}: ${(err as Error).message}; server output:\n${endpoint.server.output()}`);
  }
  stats.closedUnexpectedly = 0; // those closed before `ready` were replaced
  return { listeners: listeners.filter((l) => l.isOpen), retries };
}

async function stage(target: Target, endpoint: Endpoint, count: number, run: number, rate: number, flags: BenchFlags): Promise<Stage> {
  const label = `fanout ${target.padEnd(11)} ${String(count).padStart(4)} listeners (run ${run + 1}/${flags.repeat})`;
  await waitForQuiet([endpoint.server.pid], 0.25, 120_000, (cores) => progress.update(label, 0, `waiting: other processes use ${cores.toFixed(2)} cores`));
  const stats: ListenerStats = { frames: 0, latency: new Samples(), recording: false, closedUnexpectedly: 0 };
  const sampleEvery = Math.max(1, Math.floor((count * rate) / 20_000)); // ~20,000 latency samples/s
  const { listeners, retries } = await connectAll(endpoint, count, stats, sampleEvery);
  const publisher = new Publisher(endpoint.server.port, endpoint.hookPath, STRIPE_SECRET);
  await publisher.open();
  publisher.start(rate);
  await sleep(flags.quick ? 1000 : 2000); // warm-up
  const pgPids = endpoint.databaseUrl ? await postgresPids(endpoint.databaseUrl) : [];
  const before = cpuSnapshot([endpoint.server.pid], pgPids);
  const frames0 = stats.frames;
  const sent0 = publisher.sent;
  const t0 = performance.now();
  stats.recording = true;
  const tick = setInterval(() => {
    const elapsed = (performance.now() - t0) / 1000;
    progress.update(label, elapsed / flags.duration, `${formatCount((stats.frames - frames0) / elapsed)} deliveries/s`);
  }, 250);
  await sleep(flags.duration * 1000);
  clearInterval(tick);
  stats.recording = false;
  const seconds = (performance.now() - t0) / 1000;
  const frames = stats.frames - frames0;
  const published = publisher.sent - sent0;
  const used = cpuSince(before, cpuSnapshot([endpoint.server.pid], pgPids));
  await publisher.close();
  // Drain: wait until every accepted webhook reached every listener, or nothing moved for 2 s.
  const expected = (publisher.statuses[200] ?? 0) * count;
  for (let last = -1, still = 0; stats.frames < expected && still < 20; still = stats.frames === last ? still + 1 : 0) {
    last = stats.frames;
    await sleep(100);
  }
  const missing = Math.max(0, expected - stats.frames);
  const closed = stats.closedUnexpectedly;
  for (const l of listeners) l.close();
  const latency = stats.latency.summary();
  const perDelivery = (s: number) => round((s * 1e6) / Math.max(1, frames), 3);
  return {
    target, listeners: count, run, rate,
    publishedPerSec: Math.round(published / seconds),
    deliveriesPerSec: Math.round(frames / seconds),
    p50Ms: latency.p50, p99Ms: latency.p99, samples: latency.count,
    expected, missing, listenersClosed: closed, connectRetries: retries,
    publishStatuses: { ...publisher.statuses },
    cpuUsPerDelivery: { server: perDelivery(used.server), postgres: perDelivery(used.postgres), client: perDelivery(used.client) },
    foreignCores: round(used.foreign / seconds, 2),
  };
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const levels = flags.listeners ?? (flags.quick ? [1000] : [1, 100, 1000]);
  const rate = flags.rate ?? 500;
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`fanout on ${describeMachine(machine)}; ${levels.join(', ')} listeners, ${rate} webhooks/s, ${flags.duration} s each, ${flags.repeat} run(s)`);
  const stages: Stage[] = [];
  const uws = await startBaseline('publish-uws');
  const ws = await startBaseline('publish-ws');
  try {
    for (let r = 0; r < flags.repeat; r++) {
      const kite = await startKite({ profile: flags.profile, label: `fanout-run${r + 1}` });
      try {
        const hookPath = await setupStripeSource(kite);
        const key = await createListenerKey(kite);
        const endpoints: Record<Target, Endpoint> = {
          'uws-publish': { server: uws, listenPath: '/listen', hookPath },
          'ws-publish': { server: ws, listenPath: '/listen', hookPath },
          kite: { server: kite, listenPath: `/v1/teams/bench/listen?token=${encodeURIComponent(key)}`, hookPath, databaseUrl: kite.databaseUrl },
        };
        for (const count of levels) {
          for (const target of ['uws-publish', 'ws-publish', 'kite'] as const) {
            const s = await measureQuietly(
              () => stage(target, endpoints[target], count, r, rate, flags),
              (busy) => progress.log(`  other processes used ${busy.foreignCores} cores during ${target} @ ${count}; measuring again`),
            );
            stages.push(s);
            const extra = [s.missing ? `${formatCount(s.missing)} missing` : '', s.listenersClosed ? `${s.listenersClosed} listeners closed` : '', s.connectRetries ? `${s.connectRetries} closed before ready, reconnected` : '', s.foreignCores > 0.2 ? `other load ${s.foreignCores} cores` : '']
              .filter(Boolean).join(', ');
            progress.log(
              `  ${String(count).padStart(4)} listeners ${target.padEnd(11)} ${formatCount(s.deliveriesPerSec)} deliveries/s p50 ${s.p50Ms} p99 ${s.p99Ms} ms, ` +
                `server ${s.cpuUsPerDelivery.server} µs CPU/delivery${extra ? ` (${extra})` : ''}`,
            );
          }
        }
      } finally {
        await kite.close();
      }
    }
  } finally {
    await Promise.all([uws.stop(), ws.stop()]);
  }
  const summary = levels.map((count) => summarizeLevel(stages, count, rate, flags.repeat));
  const file = writeResults('fanout', {
    scenario: 'fanout', at: new Date().toISOString(), machine, flags, rate,
    targets: { listeners: 1000, deliveriesPerSec: 500_000, p99Ms: 20, timesWs: 2 },
    levels: summary, stages,
  }, flags.profile).file;
  const groups = summary.map((s) => `${s.listeners} listeners`);
  writeChart(file, 'fanout', barChartSvg({
    title: `fanout: deliveries/s at ${rate} webhooks/s`, unit: 'deliveries/s', log: true, groups,
    series: [
      { name: 'Kite', values: summary.map((s) => s.kite.deliveriesPerSec) },
      { name: 'uWS publish (ceiling)', values: summary.map((s) => s.uwsPublish.deliveriesPerSec) },
      { name: 'ws library', values: summary.map((s) => s.wsPublish.deliveriesPerSec) },
    ],
    targets: [{ label: 'target 500,000/s at 1,000 listeners', value: 500_000 }],
  }), flags.profile);
  writeChart(file, 'fanout', barChartSvg({
    title: 'fanout: ingest → listener p99', unit: 'ms', log: true, groups,
    series: [
      { name: 'Kite', values: summary.map((s) => s.kite.p99Ms) },
      { name: 'uWS publish', values: summary.map((s) => s.uwsPublish.p99Ms) },
      { name: 'ws library', values: summary.map((s) => s.wsPublish.p99Ms) },
    ],
    targets: [{ label: 'target p99 20 ms', value: 20 }],
  }), flags.profile, '-latency');
  return { scenario: 'fanout', summary: summary.map((s) => s.line), file };
}

function summarizeLevel(stages: readonly Stage[], count: number, rate: number, repeat: number) {
  const pick = (target: Target) => {
    const xs = stages.filter((s) => s.target === target && s.listeners === count);
    const m = (f: (s: Stage) => number) => median(xs.map(f));
    return {
      publishedPerSec: m((s) => s.publishedPerSec), deliveriesPerSec: m((s) => s.deliveriesPerSec), p50Ms: m((s) => s.p50Ms), p99Ms: m((s) => s.p99Ms),
      serverCpuUsPerDelivery: m((s) => s.cpuUsPerDelivery.server), missing: m((s) => s.missing), listenersClosed: m((s) => s.listenersClosed),
    };
  };
  const kite = pick('kite');
  const uws = pick('uws-publish');
  const ws = pick('ws-publish');
  const level = {
    listeners: count, rate, offeredPerSec: count * rate, runs: repeat, kite, uwsPublish: uws, wsPublish: ws,
    ratioToUws: ratio(kite.deliveriesPerSec, uws.deliveriesPerSec),
    ratioToWs: ratio(kite.deliveriesPerSec, ws.deliveriesPerSec),
    cpuRatioWsToKite: ratio(ws.serverCpuUsPerDelivery, kite.serverCpuUsPerDelivery),
  };
  const line =
    `fanout ${count} listeners @ ${rate} ev/s: kite ${formatCount(kite.deliveriesPerSec)} deliveries/s p50 ${kite.p50Ms} ms p99 ${kite.p99Ms} ms = ` +
    `${level.ratioToUws}× uWS publish (${formatCount(uws.deliveriesPerSec)}/s, p99 ${uws.p99Ms} ms), ${level.ratioToWs}× ws (${formatCount(ws.deliveriesPerSec)}/s, p99 ${ws.p99Ms} ms); ` +
    `server CPU/delivery ws÷kite ${level.cpuRatioWsToKite}× (median of ${repeat})`;
  return { ...level, line };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/fanout.js [flags]\n${FLAGS_HELP}`);
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
