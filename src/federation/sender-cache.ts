/**
 * The receive route's peers, remembered for a second: every request a peer sends names its
 * sender, and looking it up cost a database round trip per request (with 1,000 busy peers, a
 * thousand queries a second on the receiving node, ahead of the signature check).
 *
 * Staleness is bounded and never lets the wrong request in for long:
 * - a change made on this node forgets the peer at once (PeerStore calls `forget` after commit),
 *   and one made on another node as soon as its `kite_config` notification arrives;
 * - entries expire after `ttlMs` whatever happens (a notification lost while reconnecting);
 * - a signature that fails against a remembered peer is checked again against a fresh read (the
 *   receive route does this), so a key rotated elsewhere is honoured on the first request;
 * - unknown senders are not remembered, so a peer just added is found at once.
 */
import type { PeerRecord } from './peer-record.js';

const DEFAULT_TTL_MS = 1000;
/** Past this many entries the cache starts over: it bounds memory, not correctness. */
const MAX_ENTRIES = 10_000;

interface Entry {
  readonly peer: PeerRecord;
  readonly expiresAt: number;
}

export class SenderCache {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly lookup: (teamId: number, instanceId: string) => Promise<PeerRecord | undefined>,
    private readonly ttlMs = DEFAULT_TTL_MS,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** The team's live peer with this instance ID; `fresh` skips (and refreshes) the cache. */
  async find(teamId: number, instanceId: string, fresh = false): Promise<{ peer: PeerRecord | undefined; cached: boolean }> {
    const key = `${teamId}:${instanceId}`;
    const entry = fresh ? undefined : this.entries.get(key);
    if (entry && entry.expiresAt > this.now()) return { peer: entry.peer, cached: true };
    const peer = await this.lookup(teamId, instanceId);
    if (peer) {
      if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
      this.entries.set(key, { peer, expiresAt: this.now() + this.ttlMs });
    } else {
      this.entries.delete(key);
    }
    return { peer, cached: false };
  }

  /** The peer changed (or was deleted): its next request reads it again. */
  forget(peerId: string): void {
    for (const [key, entry] of this.entries) if (entry.peer.id === peerId) this.entries.delete(key);
  }

  /** Notifications may have been lost (a reconnect): read every sender again. */
  clear(): void {
    this.entries.clear();
  }
}
