/**
 * After the faults: polls (with a deadline) until every listener holds every event it should and
 * A's queue for B is empty. Records when each of those first held, so a slow recovery says which
 * part was slow: the provider's retries, a listener of A, B's listener, or A's queue for B.
 */
import type { Agent } from 'undici';
import { adminClient, TEAM, type Cluster } from './cluster.js';
import type { RecordingListener } from './recording-listener.js';

const POLL_MS = 100;

export interface Convergence {
  /** ms from `since` until all of it held at once; null when the deadline came first. */
  readonly totalMs: number | null;
  /** ms from `since` until each part first held (`listener <name>`, `queue to B empty`). */
  readonly parts: Record<string, number | null>;
}

type Expected = readonly { readonly id: string; readonly toPeer: boolean }[];

export async function awaitConvergence(
  cluster: Cluster,
  agent: Agent,
  expected: Expected,
  listeners: readonly { readonly record: RecordingListener; readonly instance: 'a' | 'b' }[],
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
    const listenersDone = listeners.map(({ record, instance }) => {
      const ids = new Set(record.received.map((r) => r.id));
      return done(`listener ${record.name}`, expected.every((w) => (instance === 'b' && !w.toPeer) || ids.has(w.id)));
    });
    const peer = await admin<{ pending: number }>(cluster.a[0]!.url, 'GET', `/v1/teams/${TEAM}/peers/${cluster.peerOnA}`).catch(() => undefined);
    const queueDone = done('queue to B empty', peer?.pending === 0);
    if (queueDone && listenersDone.every(Boolean)) return { totalMs: Date.now() - since, parts };
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  return { totalMs: null, parts };
}
