/**
 * What the federation scenario files share: real instances over real TLS with team `acme` and a
 * Stripe source, ingesting at one side and reading the other side's stream, peers and internal
 * `kite.federation.*` events through the public API.
 *
 * Every wait is on a condition with a deadline: a listener's `waitFor` when there is an event to
 * await, else `until`, which polls the API every 50 ms (never a fixed sleep).
 */
import { readFileSync, rmSync } from 'node:fs';
import type { Agent } from 'undici';
import { ingestAt, startInstance, TEAM, type Ingested, type Instance } from '../support/federation.js';
import { expectStatus, startTestKite } from '../support/kite.js';
import { listen, type TestListener } from '../support/listener.js';
import { makeTestTls, type TestTls } from '../support/tls.js';
import { inParallel, STRIPE_SECRET } from '../support/webhooks.js';

export { TEAM } from '../support/federation.js';

/** Retries fast enough for a test, and never exhausted within one. */
export const FAST_RETRY = { initialDelayMs: 50, maxDelayMs: 500, maxAttempts: 1000 };

/** One scenario's world: its TLS material, its instances and listeners, torn down together. */
export class Scenario {
  readonly tls: TestTls = makeTestTls();
  readonly ca = readFileSync(this.tls.caFile, 'utf8');
  private readonly instances: Instance[] = [];
  private readonly listeners: TestListener[] = [];
  private readonly cleanups: (() => Promise<void>)[] = [];

  /** A new instance with team `acme` and its Stripe source. */
  async instance(id: string): Promise<Instance> {
    const instance = await startInstance(id, this.tls);
    this.instances.push(instance);
    await instance.kite.api.createTeam(TEAM);
    await instance.kite.api.createSource(TEAM, 'stripe', 'stripe', STRIPE_SECRET);
    return instance;
  }

  /**
   * Stops the instance's server, keeping its database. The harness's own client is destroyed
   * first, so that nothing reuses a pooled connection to the stopped server (`kite.close()`
   * closes the connections it accepted, idle keep-alive ones included).
   */
  async down(instance: Instance): Promise<void> {
    await (instance.kite.api as unknown as { dispatcher?: Agent }).dispatcher?.destroy();
    await instance.kite.close();
  }

  /**
   * The same instance started again after `down()`: same database, same environment, same port
   * (so its peers' URL for it still holds). Binding is retried until a deadline, polling every
   * 100 ms, in case a peer's connection to the old server has not been closed yet.
   */
  async restart(instance: Instance): Promise<Instance> {
    const env = {
      KITE_INSTANCE_ID: instance.id,
      KITE_PUBLIC_URL: `https://${instance.id}.kite.test`,
      KITE_TLS_CERT_FILE: this.tls.certFile,
      KITE_TLS_KEY_FILE: this.tls.keyFile,
      KITE_FEDERATION_CA_FILE: this.tls.caFile,
      KITE_PORT: String(instance.kite.port),
    };
    const kite = await until(
      () => startTestKite(instance.db.url, env).catch((err: Error) => {
        if (/Could not listen/.test(err.message)) return undefined;
        throw err;
      }),
      `port ${instance.kite.port} to be free again`,
    );
    const restarted: Instance = {
      id: instance.id, db: instance.db, kite, url: `https://localhost:${kite.port}`,
      async stop() {
        await kite.close();
        await instance.db.drop();
      },
    };
    this.instances[this.instances.indexOf(instance)] = restarted;
    return restarted;
  }

  onCleanup(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  async listen(instance: Instance, query: Record<string, string> = { types: 'stripe.*', after: '0' }): Promise<TestListener> {
    const listener = await listen(instance.kite.url, TEAM, instance.kite.api.token!, query, { ca: this.ca });
    this.listeners.push(listener);
    return listener;
  }

  async stop(): Promise<void> {
    for (const l of this.listeners) l.close();
    for (const cleanup of this.cleanups) await cleanup().catch(() => {});
    // A stopped instance's close() is harmless to repeat; its database still has to go.
    for (const instance of this.instances) await instance.stop().catch(() => instance.db.drop().catch(() => {}));
    rmSync(this.tls.dir, { recursive: true, force: true });
  }
}

/** `count` events, `concurrency` at a time; returned in A's stored (seq) order. */
export async function ingestMany(instance: Instance, count: number, concurrency = 1, idOf?: (i: number) => string | undefined): Promise<Ingested[]> {
  const all = await inParallel(count, concurrency, (i) => ingestAt(instance, 'payment_intent.succeeded', idOf?.(i)));
  return all.sort((x, y) => x.seq - y.seq);
}

/** Polls `probe` every 50 ms (an API poll: there is no event to await) until it returns a value. */
export async function until<T>(probe: () => Promise<T | undefined | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    last = value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function getPeer(instance: Instance, peerId: string): Promise<any> {
  return expectStatus(await instance.kite.api.get(`/v1/teams/${TEAM}/peers/${peerId}`), 200).body;
}

export async function patchPeer(instance: Instance, peerId: string, patch: Record<string, unknown>): Promise<any> {
  return expectStatus(await instance.kite.api.request('PATCH', `/v1/teams/${TEAM}/peers/${peerId}`, patch), 200).body;
}

export async function redrive(instance: Instance, peerId: string): Promise<number> {
  return expectStatus(await instance.kite.api.post(`/v1/teams/${TEAM}/peers/${peerId}/redrive`), 200).body.requeued;
}

/** Waits (polling the API) for the peer to be in `state`, and returns it. */
export function peerInState(instance: Instance, peerId: string, state: string, timeoutMs = 10_000): Promise<any> {
  return until(async () => {
    const peer = await getPeer(instance, peerId);
    return peer.state === state ? peer : undefined;
  }, `peer ${peerId} on ${instance.id} to be ${state}`, timeoutMs);
}

export async function deliveries(instance: Instance, peerId: string, status?: string): Promise<any[]> {
  const query = `peer=${peerId}&limit=1000${status ? `&status=${status}` : ''}`;
  return expectStatus(await instance.kite.api.get(`/v1/teams/${TEAM}/deliveries?${query}`), 200).body.items;
}

/** The team's stored events matching `types`, in seq order. */
export async function stream(instance: Instance, types: string): Promise<Record<string, any>[]> {
  const items: Record<string, any>[] = [];
  let after = 0;
  for (;;) {
    const page = expectStatus(await instance.kite.api.get(`/v1/teams/${TEAM}/events?types=${encodeURIComponent(types)}&after=${after}&limit=1000`), 200).body;
    items.push(...page.items.map((item: { event: Record<string, any> }) => item.event));
    if (page.items.length < 1000) return items;
    after = page.next;
  }
}

/** `data` of the instance's `kite.federation.peer_state_changed` events, oldest first. */
export async function stateChanges(instance: Instance, peerId: string): Promise<any[]> {
  return (await stream(instance, 'kite.federation.*'))
    .filter((e) => e['type'] === 'kite.federation.peer_state_changed' && e['data'].peerId === peerId)
    .map((e) => e['data']);
}

/** Waits (polling the API) for a `peer_state_changed` of this peer to `to` with `reason`. */
export function stateChange(instance: Instance, peerId: string, to: string, reason: string, timeoutMs = 10_000): Promise<any> {
  return until(async () => (await stateChanges(instance, peerId)).find((c) => c.to === to && c.reason === reason),
    `peer_state_changed → ${to} (${reason}) on ${instance.id}`, timeoutMs);
}

export async function deliveryFailures(instance: Instance): Promise<any[]> {
  return (await stream(instance, 'kite.federation.*')).filter((e) => e['type'] === 'kite.federation.delivery_failed').map((e) => e['data']);
}

/** The ids of the `stripe.*` events a listener has seen, in the order it saw them. */
export function idsSeen(listener: TestListener): string[] {
  return listener.events.map((f) => f.event!['id'] as string);
}
