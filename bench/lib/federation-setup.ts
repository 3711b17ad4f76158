/**
 * Two Kite instances for federation benchmarks, each on its own database: A (`kite-a`, plain HTTP
 * for ingest, trusting the bench CA for outbound TLS) sends to B (`kite-b`, HTTPS/WSS only with a
 * certificate from that CA). N peers to one B: A's team `fed` has peers `kite-b-<i>` (distinct
 * instance IDs, all at B's URL), peer i delivering to B's team `fed-b<i>`, where A is registered
 * (paused: B never sends back) with the matching key pair. Peer i's scope is the event type
 * `bench.p<i>`, so each event goes to exactly one peer.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { startKite, type KiteServer } from './kite.js';
import { benchTls, type BenchTls } from './tls-certs.js';

export const A_TEAM = 'fed';
export const CE_SOURCE = 'ce';
export const CE_SECRET = `whsec_${Buffer.from('kite-bench-cloudevents-secret-0123456789').toString('base64')}`;

/** Throughput runs lift the per-peer outbound limit (default 100/s, burst 200), or it would be the figure. */
export const HIGH_RATE_LIMIT = { perSecond: 100_000, burst: 1_000 } as const;

export interface FederationPair {
  readonly a: KiteServer;
  readonly b: KiteServer;
  readonly tls: BenchTls;
  /** A's ingest path for signed CloudEvents (structured or batch). */
  readonly hookPath: string;
  close(): Promise<void>;
}

export async function startFederation(options: { profile?: boolean; label?: string } = {}): Promise<FederationPair> {
  const tls = benchTls();
  const b = await startKite({ instanceId: 'kite-b', serveTls: tls, profile: options.profile, label: `${options.label ?? 'fed'}-b` });
  let a: KiteServer;
  try {
    a = await startKite({ instanceId: 'kite-a', federationCaFile: tls.caFile, profile: options.profile, label: `${options.label ?? 'fed'}-a` });
  } catch (err) {
    await b.close();
    throw err;
  }
  await a.api('POST', '/v1/teams', { slug: A_TEAM });
  await a.api('POST', `/v1/teams/${A_TEAM}/sources`, { name: CE_SOURCE, provider: 'cloudevents', secret: CE_SECRET });
  return {
    a, b, tls, hookPath: `/hooks/${A_TEAM}/${CE_SOURCE}`,
    close: async () => {
      await a.close();
      await b.close();
    },
  };
}

export interface BenchPeer {
  readonly index: number;
  /** The peer's id on A. */
  readonly id: string;
  readonly bTeam: string;
  readonly type: string;
}

export interface PeerSettings {
  readonly rateLimit?: { perSecond: number; burst: number };
  readonly retry?: { maxAttempts?: number; initialDelayMs?: number; maxDelayMs?: number; timeoutMs?: number };
  readonly enabled?: boolean;
  /** Where A sends (default: B). */
  readonly url?: string;
}

function peerKey(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** Adds peers `from`..`from+count-1` (8 at a time); returns them in index order. */
export async function addPeers(pair: FederationPair, from: number, count: number, settings: PeerSettings = {}, onProgress?: (done: number) => void): Promise<BenchPeer[]> {
  const out: BenchPeer[] = new Array(count);
  let next = 0;
  let done = 0;
  const one = async (i: number) => {
    const index = from + i;
    const bTeam = `fed-b${index}`;
    const aToB = peerKey();
    const bToA = peerKey();
    await pair.b.api('POST', '/v1/teams', { slug: bTeam });
    await pair.b.api('POST', `/v1/teams/${bTeam}/peers`, {
      instanceId: 'kite-a', url: 'https://localhost:9', remoteTeam: A_TEAM, scopes: ['*'], enabled: false,
      inboundRateLimit: { perSecond: 1_000_000, burst: 1_000_000 }, outboundKey: bToA, inboundKey: aToB,
    });
    const type = `bench.p${index}`;
    const peer = await pair.a.api<{ id: string }>('POST', `/v1/teams/${A_TEAM}/peers`, {
      instanceId: `kite-b-${index}`, url: settings.url ?? pair.b.url, remoteTeam: bTeam, scopes: [type],
      ...(settings.rateLimit ? { rateLimit: settings.rateLimit } : {}),
      ...(settings.retry ? { retry: settings.retry } : {}),
      ...(settings.enabled === undefined ? {} : { enabled: settings.enabled }),
      outboundKey: aToB, inboundKey: bToA,
    });
    out[i] = { index, id: peer.id, bTeam, type };
    onProgress?.(++done);
  };
  await Promise.all(Array.from({ length: Math.min(8, count) }, async () => {
    while (next < count) await one(next++);
  }));
  return out;
}

/** A listener (agent) key for one of B's teams. */
export async function listenerKey(b: KiteServer, team: string): Promise<string> {
  const created = await b.api<{ key: string }>('POST', `/v1/teams/${team}/keys`, { name: `bench-listener-${Date.now().toString(36)}`, role: 'agent' });
  return created.key;
}

/** A small pool on a Kite database, closed at cleanup time by the caller (`end()`). */
export function dbPool(kite: KiteServer): pg.Pool {
  const pool = new pg.Pool({ connectionString: kite.databaseUrl, max: 2 });
  pool.on('error', () => {}); // an idle client cut when the database is dropped
  return pool;
}

/** Rows of A's outbox by status (one query). */
export async function outboxCounts(pool: pg.Pool): Promise<{ pending: number; delivered: number; deadLettered: number }> {
  const { rows } = await pool.query<{ status: string; n: string }>('SELECT status, count(*) AS n FROM federation_deliveries GROUP BY status');
  const get = (s: string) => Number(rows.find((r) => r.status === s)?.n ?? 0);
  return { pending: get('pending'), delivered: get('delivered'), deadLettered: get('dead_lettered') };
}

/** Events stored on B whose type is a bench type (federated in), all teams. */
export async function federatedCount(pool: pg.Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>("SELECT count(*) AS n FROM events WHERE type LIKE 'bench.%'");
  return Number(rows[0]!.n);
}

/** bench_n → rank in A's storage (seq) order, for order checks at B (-1: not stored at A). */
export async function storageRanks(a: pg.Pool, size: number): Promise<Int32Array> {
  const rank = new Int32Array(size).fill(-1);
  const { rows } = await a.query<{ n: number }>({
    text: "SELECT (event -> 'data' ->> 'bench_n')::int AS n FROM events WHERE type LIKE 'bench.%' ORDER BY team_id, seq",
    rowMode: 'array',
  } as pg.QueryConfig);
  let i = 0;
  for (const row of rows as unknown as [number][]) {
    const n = row[0];
    if (n >= 0 && n < size) rank[n] = i;
    i++;
  }
  return rank;
}
