/**
 * Kite's own `kite.federation.*` events, stored in the team's stream like any other (so listeners
 * and pollers see them) but never forwarded (the forwarding rule skips `kite.*`).
 */
import { randomUUID } from 'node:crypto';
import { buildEventJson, toIsoTime } from '../events/cloudevent-json.js';
import type { NormalizedEvent } from '../providers/types.js';

export type DeliveryFailedReason = 'hop_limit' | 'rejected';

export interface DeliveryFailed {
  readonly peerId: string;
  readonly instanceId: string;
  readonly eventId: string;
  readonly eventSource: string;
  readonly eventType: string;
  readonly reason: DeliveryFailedReason;
  readonly statusCode: number | null;
  readonly attempts: number;
}

export interface PeerStateChanged {
  readonly peerId: string;
  readonly instanceId: string;
  readonly from: string;
  readonly to: string;
  readonly reason: string;
  readonly held: number;
}

export function federationSource(publicUrl: string): string {
  return `${publicUrl}/federation`;
}

function internalEvent(publicUrl: string, type: string, data: object, now = new Date()): NormalizedEvent {
  const id = randomUUID();
  const source = federationSource(publicUrl);
  const time = toIsoTime(now);
  return { id, source, type, time, json: buildEventJson({ id, source, type, time, dataJson: JSON.stringify(data) }) };
}

export function deliveryFailedEvent(publicUrl: string, data: DeliveryFailed): NormalizedEvent {
  return internalEvent(publicUrl, 'kite.federation.delivery_failed', data);
}

export function peerStateChangedEvent(publicUrl: string, data: PeerStateChanged): NormalizedEvent {
  return internalEvent(publicUrl, 'kite.federation.peer_state_changed', data);
}
