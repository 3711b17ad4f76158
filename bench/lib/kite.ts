/**
 * Runs Kite as a child process (`node dist/src/cli/main.js serve`) on a fresh Postgres database,
 * and talks to its admin API. The database is dropped at the end, always (see processes.ts).
 */
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Agent, fetch as undiciFetch } from 'undici';
import { freePort, onCleanup, startChild, type Child } from './processes.js';
import { RESULTS_DIR, ROOT } from './results.js';

/** The Postgres the benchmarks use (trust auth on loopback). Override with BENCH_DATABASE_URL. */
export const ADMIN_DATABASE_URL = process.env['BENCH_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
export const STRIPE_SECRET = 'whsec_bench_0123456789abcdefghijklmnopqrstuv';

export interface KiteServer extends Child {
  readonly databaseUrl: string;
  /** Number of rows in the events table. */
  countEvents(): Promise<number>;
  /** Admin API call with the admin token; throws unless the status is 2xx. */
  api<T>(method: string, urlPath: string, body?: unknown, token?: string): Promise<T>;
  /** Its Prometheus metrics, summed over labels (see scrapeMetrics); works over HTTPS too. */
  metrics(): Promise<Record<string, number>>;
  /** Stops the server (SIGTERM, graceful) and drops its database. */
  close(): Promise<void>;
}

function databaseUrl(name: string): string {
  const url = new URL(ADMIN_DATABASE_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Runs one statement on the admin database (CREATE/DROP DATABASE). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export interface KiteOptions {
  readonly profile?: boolean;
  readonly label?: string;
  /** KITE_INSTANCE_ID (federation). */
  readonly instanceId?: string;
  /** Serve HTTPS/WSS with this certificate (KITE_TLS_CERT_FILE/KEY_FILE); the API client trusts its CA. */
  readonly serveTls?: { readonly certFile: string; readonly keyFile: string; readonly ca: string };
  /** Trust this CA for outbound federation (KITE_FEDERATION_CA_FILE). */
  readonly federationCaFile?: string;
  /** Extra environment, e.g. KITE_LOG_LEVEL. */
  readonly env?: Record<string, string>;
}

export async function startKite(options: KiteOptions = {}): Promise<KiteServer> {
  const name = `kite_bench_${process.pid}_${Date.now().toString(36)}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const drop = () => adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  const unregisterDrop = onCleanup(drop);
  const url = databaseUrl(name);
  const port = await freePort();
  const nodeFlags: string[] = [];
  if (options.profile) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    nodeFlags.push('--cpu-prof', `--cpu-prof-dir=${RESULTS_DIR}`, `--cpu-prof-name=kite-${options.label ?? 'server'}-${stamp}.cpuprofile`);
  }
  let child: Child;
  try {
    child = await startChild({
      name: 'kite',
      args: [...nodeFlags, path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve'],
      env: {
        DATABASE_URL: url,
        KITE_PORT: String(port),
        KITE_HOST: '127.0.0.1',
        KITE_ADMIN_TOKEN: ADMIN_TOKEN,
        KITE_LOG_LEVEL: 'warn',
        KITE_DATA_DIR: path.join(os.tmpdir(), name),
        KITE_PUBLIC_URL: options.serveTls ? `https://localhost:${port}` : `http://127.0.0.1:${port}`,
        ...(options.instanceId ? { KITE_INSTANCE_ID: options.instanceId } : {}),
        ...(options.serveTls ? { KITE_TLS_CERT_FILE: options.serveTls.certFile, KITE_TLS_KEY_FILE: options.serveTls.keyFile } : {}),
        ...(options.federationCaFile ? { KITE_FEDERATION_CA_FILE: options.federationCaFile } : {}),
        ...options.env,
      },
      port,
      readyPath: '/readyz',
      ...(options.serveTls ? { ca: options.serveTls.ca } : {}),
    });
  } catch (err) {
    unregisterDrop();
    await drop();
    throw err;
  }
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  const dispatcher = options.serveTls ? new Agent({ connect: { ca: options.serveTls.ca } }) : undefined;
  const api = async <T>(method: string, urlPath: string, body?: unknown, token = ADMIN_TOKEN): Promise<T> => {
    const init = {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    };
    const res = dispatcher ? await undiciFetch(`${child.url}${urlPath}`, { ...init, dispatcher }) : await fetch(`${child.url}${urlPath}`, init);
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${urlPath} → ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  return {
    ...child,
    databaseUrl: url,
    api,
    metrics: async () => {
      const res = dispatcher ? await undiciFetch(`${child.url}/metrics`, { dispatcher }) : await fetch(`${child.url}/metrics`);
      return parseMetrics(await res.text());
    },
    countEvents: async () => {
      const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM events');
      return Number(rows[0]!.n);
    },
    close: async () => {
      await pool.end().catch(() => {});
      await dispatcher?.close().catch(() => {});
      await child.stop();
      unregisterDrop();
      await drop();
    },
  };
}

/** Creates team `bench` with a Stripe source `stripe`; returns the ingest path. */
export async function setupStripeSource(kite: KiteServer, team = 'bench'): Promise<string> {
  await kite.api('POST', '/v1/teams', { slug: team });
  await kite.api('POST', `/v1/teams/${team}/sources`, { name: 'stripe', provider: 'stripe', secret: STRIPE_SECRET });
  return `/hooks/${team}/stripe`;
}

/** A listener key (role agent) of the team. */
export async function createListenerKey(kite: KiteServer, team = 'bench'): Promise<string> {
  const created = await kite.api<{ key: string }>('POST', `/v1/teams/${team}/keys`, { name: `listener-${Date.now()}`, role: 'agent' });
  return created.key;
}

/**
 * Kite's Prometheus metrics, each series summed over its labels (buckets left out), e.g.
 * `kite_group_commit_batch_size_sum`, `kite_group_commit_batch_size_count`.
 */
export async function scrapeMetrics(baseUrl: string): Promise<Record<string, number>> {
  return parseMetrics(await (await fetch(`${baseUrl}/metrics`)).text());
}

export function parseMetrics(text: string): Record<string, number> {
  const sums: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const name = line.slice(0, line.search(/[{ ]/));
    if (name.endsWith('_bucket')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sums[name] = (sums[name] ?? 0) + value;
  }
  return sums;
}

/** Group commits between two scrapes: how many, mean batch size, mean duration. */
export function groupCommits(before: Record<string, number>, after: Record<string, number>): { flushes: number; meanBatch: number; meanMs: number } {
  const d = (name: string) => (after[name] ?? 0) - (before[name] ?? 0);
  const flushes = d('kite_group_commit_batch_size_count');
  return {
    flushes,
    meanBatch: flushes ? Math.round((d('kite_group_commit_batch_size_sum') / flushes) * 10) / 10 : 0,
    meanMs: flushes ? Math.round((d('kite_group_commit_duration_seconds_sum') / flushes) * 1e4) / 10 : 0,
  };
}
