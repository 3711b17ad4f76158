/**
 * The system under test: instance A as two nodes sharing one database (both take webhooks and
 * listeners) and instance B as one node on its own database, every node a child process serving
 * HTTPS; team `chaos` on both, paired so that A forwards `stripe.payment_intent.*` to B through
 * the chaos proxy. Retries are fast and practically endless (maxAttempts 1000, 100 ms → 1 s), so
 * a run tests delivery, not the dead-letter path; a burst of 10 keeps batches small, so the
 * network faults meet many requests rather than a few large ones.
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
import { STRIPE_SECRET } from './webhook-load.js';

export const TEAM = 'chaos';
export const INGEST_PATH = `/hooks/${TEAM}/stripe`;
export const PEER_SCOPES = ['stripe.payment_intent.*'];
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
  /** An agent key of `chaos`, per instance. */
  readonly listenKeys: { readonly a: string; readonly b: string };
  /** A's peer id for B. */
  readonly peerOnA: string;
  stop(): Promise<void>;
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
    for (const n of [a1, b1]) await admin(n.url, 'POST', '/v1/teams', { slug: TEAM });
    await admin(a1.url, 'POST', `/v1/teams/${TEAM}/sources`, { name: 'stripe', provider: 'stripe', secret: STRIPE_SECRET });
    const listenKeys = {
      a: (await admin<{ key: string }>(a1.url, 'POST', `/v1/teams/${TEAM}/keys`, { name: 'listener', role: 'agent' })).key,
      b: (await admin<{ key: string }>(b1.url, 'POST', `/v1/teams/${TEAM}/keys`, { name: 'listener', role: 'agent' })).key,
    };
    const aToB = `whsec_${randomBytes(32).toString('base64')}`;
    const bToA = `whsec_${randomBytes(32).toString('base64')}`;
    const fast = { retry: { maxAttempts: 1000, initialDelayMs: 100, maxDelayMs: 1000, timeoutMs: 2000 }, rateLimit: { perSecond: 500, burst: 10 }, inboundRateLimit: { perSecond: 5000, burst: 10000 } };
    const peer = await admin<{ id: string }>(a1.url, 'POST', `/v1/teams/${TEAM}/peers`, { instanceId: 'kite-b', url: proxy.url, scopes: PEER_SCOPES, outboundKey: aToB, inboundKey: bToA, ...fast });
    await admin(b1.url, 'POST', `/v1/teams/${TEAM}/peers`, { instanceId: 'kite-a', url: a1.url, scopes: ['*'], outboundKey: bToA, inboundKey: aToB, ...fast });
    return { a, b, proxy, databaseProxies, listenKeys, peerOnA: peer.id, stop };
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
