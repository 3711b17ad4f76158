/**
 * The forwarding rule of contract §5, as a pure decision per (event, peer):
 * 1. internal events (`kite.*`) never leave the instance;
 * 2. the type must match one of the peer's scopes;
 * 3. the peer must not be the event's origin nor already in its chain;
 * 4. hops must be below the peer's maxHops — if only this fails, the event is dropped and Kite
 *    records `kite.federation.delivery_failed` with reason `hop_limit`.
 */
import { compileTypePatterns } from '../events/type-patterns.js';
import type { Provenance } from './provenance.js';

export interface ForwardingPeer {
  readonly id: string;
  readonly instanceId: string;
  readonly scopes: readonly string[];
  readonly maxHops: number;
}

export type ForwardingDecision = 'forward' | 'hop_limit' | 'skip';

const matchers = new Map<string, (type: string) => boolean>();

function scopeMatcher(scopes: readonly string[]): (type: string) => boolean {
  const key = JSON.stringify(scopes);
  let matcher = matchers.get(key);
  if (!matcher) {
    matcher = compileTypePatterns(scopes);
    if (matchers.size > 10_000) matchers.clear(); // bounded: scopes change rarely
    matchers.set(key, matcher);
  }
  return matcher;
}

export function decideForwarding(type: string, provenance: Provenance, peer: ForwardingPeer): ForwardingDecision {
  if (type.startsWith('kite.')) return 'skip';
  if (!scopeMatcher(peer.scopes)(type)) return 'skip';
  if (provenance.origin === peer.instanceId || provenance.chain.includes(peer.instanceId)) return 'skip';
  if (provenance.hops >= peer.maxHops) return 'hop_limit';
  return 'forward';
}
