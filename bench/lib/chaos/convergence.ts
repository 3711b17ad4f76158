/**
 * After the faults: polls (with a deadline) until every listener holds every event it should and
 * every peer queue that carried the load is empty. Records when each of those first held, so a
 * slow recovery says which part was slow: the provider's retries, a listener, or a peer's queue.
 */
import type { Agent } from 'undici';
import { expectedAt } from './checker.js';
import { adminClient, type Cluster } from './cluster.js';
import type { RecordingListener } from './recording-listener.js';
import type { Instance, Webhook } from './webhook-load.js';

const POLL_MS = 100;

export interface Convergence {
  /** ms from `since` until all of it held at once; null when the deadline came first. */
  readonly totalMs: number | null;
  /** ms from `since` until each part first held (`listener <name>`, `queue to B empty`). */
  readonly parts: Record<string, number | null>;
}

export async function awaitConvergence(
  cluster: Cluster,
  agent: Agent,
  expected: readonly Webhook[],
  listeners: readonly { readonly record: RecordingListener; readonly instance: Instance; readonly team: string }[],
  since: number,
  deadline: number,
): Promise<Convergence> {
  const admin = adminClient(agent);
  const parts: Record<string, number | null> = {};
  const done = (name: string, holds: boolean) => {
    if (holds && parts[name] == null) parts[name] = Date.now() - since;
    if (!holds) parts[name] ??= null;
    return holds;
  };
  while (Date.now() < deadline) {
    const listenersDone = listeners.map((listener) => {
      const ids = new Set(listener.record.received.map((r) => r.id));
      return done(`listener ${listener.record.name}`, expected.every((w) => !expectedAt(listener, w) || ids.has(w.id)));
    });
    const queuesDone = await Promise.all(cluster.links.map(async (link) => {
      const node = (link.instance === 'a' ? cluster.a : cluster.b)[0]!;
      const peer = await admin<{ pending: number }>(node.url, 'GET', `/v1/teams/${link.team}/peers/${link.id}`).catch(() => undefined);
      return done(link.label, peer?.pending === 0);
    }));
    if (queuesDone.every(Boolean) && listenersDone.every(Boolean)) return { totalMs: Date.now() - since, parts };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return { totalMs: null, parts };
}
