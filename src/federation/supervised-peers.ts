/** The supervisor's view of the peers table, read through the PeerStore. */
import type { PeerState, RetryPolicy } from '../../machines/peer-types.js';
import { outboundKeys } from './peer-keys.js';
import type { PeerRecord } from './peer-record.js';
import type { PeerStore } from './peer-store.js';

export interface SupervisedPeer {
  readonly id: string;
  readonly teamId: number;
  readonly instanceId: string;
  readonly url: string;
  readonly remoteTeam: string;
  readonly enabled: boolean;
  readonly deleted: boolean;
  readonly state: PeerState;
  readonly attempts: number;
  readonly retry: RetryPolicy;
  readonly rateLimit: { readonly perSecond: number; readonly burst: number };
  /** The current keys: a change of either (a rotation) is worth a probe when dead-lettered. */
  readonly outboundKey: string;
  readonly inboundKey: string;
  /** Keys to sign with now: the current one, plus the previous one during a rotation's 24 hours. */
  signingKeys(): string[];
}

export interface PeerSource {
  load(id: string): Promise<SupervisedPeer | undefined>;
}

export function supervisedPeers(store: PeerStore): PeerSource {
  return {
    load: async (id) => {
      const record = await store.findPeer(id);
      return record ? toSupervised(record) : undefined;
    },
  };
}

function toSupervised(record: PeerRecord): SupervisedPeer {
  return {
    id: record.id,
    teamId: record.teamId,
    instanceId: record.instanceId,
    url: record.url,
    remoteTeam: record.remoteTeam,
    enabled: record.enabled,
    deleted: record.deletedAt !== null,
    state: record.state,
    attempts: record.attempts,
    retry: { ...record.retry },
    rateLimit: record.rateLimit,
    outboundKey: record.outboundKey,
    inboundKey: record.inboundKey,
    signingKeys: () => outboundKeys(record, new Date()),
  };
}
