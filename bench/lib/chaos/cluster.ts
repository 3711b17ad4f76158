/**
 * The system under test: instance A as two nodes sharing one database (both take webhooks and
 * listeners) and instance B as one node on its own database, every node a child process serving
 * HTTPS; teams `chaos` and `other` on both, each paired across the instances so that
 * `stripe.payment_intent.*` is forwarded: A → B through the chaos proxy for both teams, and B → A
 * (team `chaos`) straight to A's first node, which the schedule kills like any other. Retries are
 * fast and practically endless (maxAttempts 1000, 100 ms → 1 s), so a run tests delivery, not the
 * dead-letter path; a burst of 10 keeps batches small, so the network faults meet many requests
 * rather than a few large ones.
 *
 * Every node reaches its instance's Postgres through a TCP proxy of the harness (`databaseProxies`),
 * so a database outage is one call; the harness's own queries (creating and dropping the
 * databases) go to Postgres directly, and its other checks go through Kite after the faults.
 */
import { randomBytes } from 'node:crypto';
import { request, type Agent } from 'undici';
import { freePort } from '../processes.js';
import { TcpProxy } from '../tcp-proxy.js';
import { ChaosProxy } from './chaos-proxy.js';
import { KiteNode } from './kite-node.js';
import { snapshotBuild } from './paths.js';
import type { TlsFiles } from './tls-files.js';
import { STRIPE_SECRET, type Instance } from './webhook-load.js';

export const TEAM = 'chaos';
/** A second team on both instances: its events must never reach `chaos`'s listeners. */
export const OTHER_TEAM = 'other';
export const TEAMS = [TEAM, OTHER_TEAM] as const;
export const PEER_SCOPES = ['stripe.payment_intent.*'];

export function ingestPath(team: string): string {
  return `/hooks/${team}/stripe`;
}
const ADMIN_TOKEN = 'chaos-admin-token-0123456789abcdef';

export interface Database {
  readonly url: string;
  drop(): Promise<void>;
}

export interface Cluster {
  readonly a: readonly KiteNode[];
  readonly b: readonly KiteNode[];
  readonly proxy: ChaosProxy;
  /** Between each instance's nodes and its Postgres: the database outages. */
  readonly databaseProxies: { readonly a: TcpProxy; readonly b: TcpProxy };
  /** An agent key per instance and team. */
  readonly listenKeys: Readonly<Record<Instance, Readonly<Record<string, string>>>>;
  /** The peers that carry the load's events, each on the instance that sends. */
  readonly links: readonly PeerLink[];
  stop(): Promise<void>;
}

export interface PeerLink {
  /** What convergence calls its empty queue: `queue to B empty`, … */
  readonly label: string;
  readonly instance: Instance;
  readonly team: string;
  readonly id: string;
}

export async function startCluster(tls: TlsFiles, agent: Agent, createDatabase: () => Promise<Database>, aNodes = 2): Promise<Cluster> {
  const databases = { a: await createDatabase(), b: await createDatabase() };
  const databaseProxies = { a: await proxyTo(databases.a.url), b: await proxyTo(databases.b.url) };
  const build = snapshotBuild();
  const node = async (name: string, instanceId: string, databaseUrl: string) =>
    new KiteNode({ name, instanceId, publicUrl: `https://${instanceId}.chaos.test`, databaseUrl, port: await freePort(), adminToken: ADMIN_TOKEN, tls, build }, agent);
  const a = await Promise.all(Array.from({ length: aNodes }, (_, i) => node(`a${i + 1}`, 'kite-a', throughProxy(databases.a.url, databaseProxies.a))));
  const b = [await node('b1', 'kite-b', throughProxy(databases.b.url, databaseProxies.b))];
  const proxy = new ChaosProxy(b[0]!.url, tls, agent);
  const stop = async () => {
    await Promise.all([...a, ...b].map((n) => n.kill9()));
    await proxy.stop();
    await databaseProxies.a.close();
    await databaseProxies.b.close();
    await databases.a.drop();
    await databases.b.drop();
    build.remove();
  };
  try {
    // One at a time: the first node of each instance migrates a fresh (bench) database alone.
    for (const n of [...a, ...b]) await n.start();
    await proxy.start();
    const admin = adminClient(agent);
    const [a1, b1] = [a[0]!, b[0]!];
    const listenKeys: Record<Instance, Record<string, string>> = { a: {}, b: {} };
    const links: PeerLink[] = [];
    const fast = { retry: { maxAttempts: 1000, initialDelayMs: 100, maxDelayMs: 1000, timeoutMs: 2000 }, rateLimit: { perSecond: 500, burst: 10 }, inboundRateLimit: { perSecond: 5000, burst: 10000 } };
    for (const team of TEAMS) {
      for (const n of [a1, b1]) await admin(n.url, 'POST', '/v1/teams', { slug: team });
      // Webhooks come to A's teams and to B's `chaos`.
      for (const n of team === TEAM ? [a1, b1] : [a1]) await admin(n.url, 'POST', `/v1/teams/${team}/sources`, { name: 'stripe', provider: 'stripe', secret: STRIPE_SECRET });
      listenKeys.a[team] = (await admin<{ key: string }>(a1.url, 'POST', `/v1/teams/${team}/keys`, { name: 'listener', role: 'agent' })).key;
      listenKeys.b[team] = (await admin<{ key: string }>(b1.url, 'POST', `/v1/teams/${team}/keys`, { name: 'listener', role: 'agent' })).key;
      const aToB = `whsec_${randomBytes(32).toString('base64')}`;
      const bToA = `whsec_${randomBytes(32).toString('base64')}`;
      const onA = await admin<{ id: string }>(a1.url, 'POST', `/v1/teams/${team}/peers`, { instanceId: 'kite-b', url: proxy.url, scopes: PEER_SCOPES, outboundKey: aToB, inboundKey: bToA, ...fast });
      const onB = await admin<{ id: string }>(b1.url, 'POST', `/v1/teams/${team}/peers`, { instanceId: 'kite-a', url: a1.url, scopes: PEER_SCOPES, outboundKey: bToA, inboundKey: aToB, ...fast });
      links.push({ label: team === TEAM ? 'queue to B empty' : `queue to B (${team}) empty`, instance: 'a', team, id: onA.id });
      if (team === TEAM) links.push({ label: 'queue to A empty', instance: 'b', team, id: onB.id });
    }
    return { a, b, proxy, databaseProxies, listenKeys, links, stop };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

function proxyTo(databaseUrl: string): Promise<TcpProxy> {
  const url = new URL(databaseUrl);
  return TcpProxy.start(Number(url.port || 5432), url.hostname || '127.0.0.1', { downOnSignal: false });
}

function throughProxy(databaseUrl: string, proxy: TcpProxy): string {
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return url.toString();
}

/** The admin API with the admin token; throws unless 2xx. */
export function adminClient(agent: Agent) {
  return async <T = unknown>(baseUrl: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> => {
    const answer = await request(baseUrl + path, {
      method,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      dispatcher: agent,
    });
    const text = await answer.body.text();
    if (answer.statusCode < 200 || answer.statusCode > 299) throw new Error(`${method} ${baseUrl}${path} → ${answer.statusCode} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
}
