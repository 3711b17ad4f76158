/**
 * A peer's signing keys (contract §6): Standard Webhooks secrets, `whsec_` + base64. A peer has a
 * current outbound and inbound key, and for 24 hours after a rotation also the key it replaced,
 * so the two instances need not change their keys at the same moment. Only one previous key is
 * kept: a second rotation within the 24 hours forgets the oldest.
 */
import { randomBytes } from 'node:crypto';
import { isStandardSecret } from '../providers/standard-signature.js';
import type { PeerRecord } from './peer-record.js';

/** How long the key replaced by a rotation still signs (outbound) and verifies (inbound). */
export const KEY_GRACE_MS = 24 * 60 * 60 * 1000;

/** A fresh key: `whsec_` + base64 of 32 random bytes. */
export function generatePeerKey(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/** A usable key, or the reason it is not. */
export function peerKeyProblem(key: string): string | null {
  if (isStandardSecret(key)) return null;
  return 'must be a Standard Webhooks secret: "whsec_" followed by base64';
}

export interface KeySlot {
  readonly current: string;
  readonly previous: string | null;
  readonly rotatedAt: Date | null;
}

/** The keys in force at `now`: the current one first, then the previous one within its grace. */
export function keysInForce(slot: KeySlot, now: Date): string[] {
  const keys = [slot.current];
  if (slot.previous !== null && slot.rotatedAt !== null && now.getTime() - slot.rotatedAt.getTime() < KEY_GRACE_MS) {
    keys.push(slot.previous);
  }
  return keys;
}

/** Keys that verify a peer's requests to us at `now`: current, then previous within 24 h. */
export function inboundKeys(peer: PeerRecord, now: Date): string[] {
  return keysInForce({ current: peer.inboundKey, previous: peer.inboundKeyPrevious, rotatedAt: peer.inboundKeyRotatedAt }, now);
}

/** Keys to sign our requests to a peer with at `now` (all of them, one signature entry each). */
export function outboundKeys(peer: PeerRecord, now: Date): string[] {
  return keysInForce({ current: peer.outboundKey, previous: peer.outboundKeyPrevious, rotatedAt: peer.outboundKeyRotatedAt }, now);
}
