/**
 * `ceilings`: what this machine allows, measured with the same tools as the federation scenarios,
 * so every federation figure is printed with its ratio to a ceiling taken in the same run.
 * - HTTPS keep-alive round trip on loopback: an undici Pool (one connection, one request at a time,
 *   as one peer's actor sends) to a trivial node:https server (servers/https-noop.ts) that reads the
 *   body and answers 200; bodies of 1 and 100 events (~1.1 KB each, as Kite's federation batches).
 *   Events/s ceiling of one peer = events per request ÷ round trip.
 * - Postgres batched inserts of 1 KB rows into a table with the same columns and indexes as Kite's
 *   `events` (primary key (team_id, seq), unique (team_id, source, id)), `INSERT … SELECT FROM
 *   unnest(…)` in batches of 100, one connection, autocommit (fsync on).
 */
import path from 'node:path';
import pg from 'pg';
import { Pool } from 'undici';
import { FLAGS_HELP, parseFlags, type BenchFlags } from './lib/flags.js';
import { ADMIN_DATABASE_URL } from './lib/kite.js';
import { describeMachine, machineFacts } from './lib/machine.js';
import { DIST_BENCH, freePort, onCleanup, runCleanups, startChild } from './lib/processes.js';
import { Progress } from './lib/progress.js';
import { isMain, writeResults, type ScenarioOutcome } from './lib/results.js';
import { formatCount, Samples, type LatencySummary } from './lib/stats.js';
import { barChartSvg, writeChart } from './lib/svg-chart.js';
import { benchTls } from './lib/tls-certs.js';

const FILLER = 'x'.repeat(760);

export interface HttpsCeiling {
  readonly eventsPerRequest: number;
  readonly bodyBytes: number;
  readonly requestsPerSec: number;
  readonly eventsPerSec: number;
  readonly rttMs: LatencySummary;
}

export interface PgCeiling {
  readonly batch: number;
  readonly rowBytes: number;
  readonly connections: number;
  readonly rowsPerSec: number;
  readonly commitMs: LatencySummary;
}

export interface Ceilings {
  readonly https: HttpsCeiling[];
  readonly postgres: PgCeiling[];
}

function fakeEvent(n: number): string {
  return (
    `{"specversion":"1.0","id":"ce-ceiling-${n}","source":"/bench/publisher","type":"bench.p0","datacontenttype":"application/json",` +
    `"kitefedorigin":"kite-a","kitefedchain":"[\\"kite-a\\"]","kitefedhops":1,"time":"2026-11-27T00:00:00.000Z",` +
    `"data":{"bench_sent_at":1.0,"bench_n":${n},"order":"ord_${n}","note":"${FILLER}"}}`
  );
}

/** One keep-alive HTTPS connection, one request at a time, for `ms` per body size. */
export async function measureHttpsCeiling(ms: number, sizes: readonly number[] = [1, 100], progress?: Progress): Promise<HttpsCeiling[]> {
  const tls = benchTls();
  const port = await freePort();
  const server = await startChild({
    name: 'https-noop',
    args: [path.join(DIST_BENCH, 'servers', 'https-noop.js')],
    env: { BENCH_PORT: String(port), BENCH_TLS_CERT: tls.certFile, BENCH_TLS_KEY: tls.keyFile },
    port,
    readyPath: '/ready',
    ca: tls.ca,
  });
  const pool = new Pool(`https://localhost:${port}`, { connections: 1, keepAliveTimeout: 30_000, connect: { ca: tls.ca } });
  const out: HttpsCeiling[] = [];
  try {
    for (const size of sizes) {
      const events = Array.from({ length: size }, (_, i) => fakeEvent(i));
      const body = size === 1 ? events[0]! : `[${events.join(',')}]`;
      const post = async () => {
        const res = await pool.request({ method: 'POST', path: '/hooks/t/kite', headers: { 'content-type': 'application/cloudevents-batch+json', 'webhook-id': 'x' }, body });
        await res.body.text();
      };
      for (let i = 0; i < 50; i++) await post(); // warm-up (handshake, JIT)
      const rtt = new Samples();
      const t0 = performance.now();
      while (performance.now() - t0 < ms) {
        const s = performance.now();
        await post();
        rtt.add(performance.now() - s);
        if (rtt.count % 200 === 0) progress?.update(`ceiling https ${size}-event body`, Math.min(1, (performance.now() - t0) / ms));
      }
      const seconds = (performance.now() - t0) / 1000;
      out.push({
        eventsPerRequest: size, bodyBytes: Buffer.byteLength(body), requestsPerSec: Math.round(rtt.count / seconds),
        eventsPerSec: Math.round((rtt.count * size) / seconds), rttMs: rtt.summary(),
      });
    }
  } finally {
    await pool.close().catch(() => {});
    await server.stop();
  }
  return out;
}

/** Batched inserts of 1 KB rows into an events-like table in a fresh database, for `ms`. */
export async function measurePgCeiling(ms: number, batch = 100, connections = 1, progress?: Progress): Promise<PgCeiling> {
  const name = `kite_bench_ceiling_${process.pid}_${Date.now().toString(36)}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const drop = () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  const unregister = onCleanup(drop);
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: connections });
  // An idle client cut by the DROP … WITH (FORCE) at the end (or by anyone's cleanup) must not crash the bench.
  pool.on('error', () => {});
  try {
    await pool.query(`CREATE TABLE events (
      team_id bigint NOT NULL, seq bigint NOT NULL, source text NOT NULL, id text NOT NULL, type text NOT NULL,
      time timestamptz NOT NULL, stored_at timestamptz NOT NULL DEFAULT now(), event json NOT NULL,
      PRIMARY KEY (team_id, seq), CONSTRAINT events_dedup UNIQUE (team_id, source, id))`);
    let seq = 0;
    const commit = new Samples();
    const insertBatch = async () => {
      const seqs: number[] = [];
      const ids: string[] = [];
      const bodies: string[] = [];
      for (let i = 0; i < batch; i++) {
        const n = seq++;
        seqs.push(n);
        ids.push(`ce-ceiling-${n}`);
        bodies.push(fakeEvent(n));
      }
      const s = performance.now();
      await pool.query(
        `INSERT INTO events (team_id, seq, source, id, type, time, event)
         SELECT 1, s, '/bench/publisher', i, 'bench.p0', now(), e FROM unnest($1::bigint[], $2::text[], $3::json[]) AS u(s, i, e)`,
        [seqs, ids, bodies],
      );
      commit.add(performance.now() - s);
    };
    for (let i = 0; i < 10; i++) await insertBatch();
    const rows0 = seq;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: connections }, async () => {
      while (performance.now() - t0 < ms) {
        await insertBatch();
        progress?.update(`ceiling postgres ${batch}-row inserts`, Math.min(1, (performance.now() - t0) / ms));
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    return { batch, rowBytes: Buffer.byteLength(fakeEvent(1)), connections, rowsPerSec: Math.round((seq - rows0) / seconds), commitMs: commit.summary() };
  } finally {
    await pool.end().catch(() => {});
    unregister();
    await drop();
  }
}

/** Both ceilings, ~`seconds` each. */
export async function measureCeilings(seconds: number, progress?: Progress): Promise<Ceilings> {
  const https = await measureHttpsCeiling(seconds * 500, [1, 100], progress);
  const postgres = [await measurePgCeiling(seconds * 1000, 100, 1, progress)];
  progress?.clear();
  return { https, postgres };
}

export function describeCeilings(c: Ceilings): string[] {
  return [
    ...c.https.map((h) => `ceiling HTTPS keep-alive (${h.eventsPerRequest}-event body, ${formatCount(h.bodyBytes)} B): ${formatCount(h.requestsPerSec)} req/s = ${formatCount(h.eventsPerSec)} events/s, RTT p50 ${h.rttMs.p50} ms p99 ${h.rttMs.p99} ms`),
    ...c.postgres.map((p) => `ceiling Postgres inserts (${p.batch} × ${p.rowBytes} B rows, events indexes, ${p.connections} conn): ${formatCount(p.rowsPerSec)} rows/s, commit p50 ${p.commitMs.p50} ms`),
  ];
}

export async function run(flags: BenchFlags): Promise<ScenarioOutcome> {
  const progress = new Progress();
  const machine = await machineFacts(ADMIN_DATABASE_URL);
  progress.log(`ceilings on ${describeMachine(machine)}`);
  const seconds = flags.quick ? 2 : Math.min(flags.duration, 10);
  const https = await measureHttpsCeiling(seconds * 1000, [1, 10, 100], progress);
  const postgres = [await measurePgCeiling(seconds * 1000, 100, 1, progress), await measurePgCeiling(seconds * 1000, 100, 4, progress)];
  const ceilings = { https, postgres };
  const lines = describeCeilings(ceilings);
  for (const l of lines) progress.log(`  ${l}`);
  const file = writeResults('ceilings', { scenario: 'ceilings', at: new Date().toISOString(), machine, flags, ceilings }).file;
  writeChart(file, 'ceilings', barChartSvg({
    title: 'this machine\'s ceilings', unit: 'events (rows)/s', log: true,
    groups: [...https.map((h) => `HTTPS ${h.eventsPerRequest}-event body`), ...postgres.map((p) => `PG ${p.batch}-row batches, ${p.connections} conn`)],
    series: [{ name: 'ceiling', values: [...https.map((h) => h.eventsPerSec), ...postgres.map((p) => p.rowsPerSec)] }],
  }));
  return { scenario: 'ceilings', summary: lines, file };
}

if (isMain(import.meta.url)) {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) console.log(`node dist/bench/ceilings.js [flags]\n${FLAGS_HELP}`);
  else run(flags).then((o) => console.log([...o.summary, `results: ${o.file}`].join('\n')), async (err: unknown) => {
    console.error(err);
    await runCleanups();
    process.exitCode = 1;
  });
}
