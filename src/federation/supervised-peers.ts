/** The supervisor's view of the peers table, read through the PeerStore. */
import type { PeerSource, SupervisedPeer } from './peer-supervisor.js';
import { outboundKeys, type PeerRecord, type PeerStore } from './peer-store.js';

export function supervisedPeers(store: PeerStore): PeerSource {
  return {
    loadEnabled: async () => (await store.listAllEnabledPeers()).map(toSupervised),
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
