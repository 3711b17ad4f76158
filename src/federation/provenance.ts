/**
 * Federation provenance (contract §5): `kitefedorigin` (the instance that first stored the event),
 * `kitefedchain` (a string holding a JSON array of the instance IDs it passed through) and
 * `kitefedhops` (a JSON integer). Read from a stored event, and stamped on the copy sent to a peer.
 */

export interface Provenance {
  readonly origin: string | undefined;
  readonly chain: readonly string[];
  readonly hops: number;
}

function fromAttributes(event: Record<string, unknown>): Provenance {
  const origin = typeof event['kitefedorigin'] === 'string' ? event['kitefedorigin'] : undefined;
  let chain: string[] = [];
  if (typeof event['kitefedchain'] === 'string') {
    try {
      const parsed: unknown = JSON.parse(event['kitefedchain']);
      if (Array.isArray(parsed)) chain = parsed.filter((x): x is string => typeof x === 'string');
    } catch {
      chain = [];
    }
  }
  const rawHops = event['kitefedhops'];
  const hops = typeof rawHops === 'number' && Number.isInteger(rawHops) && rawHops >= 0 ? rawHops : typeof rawHops === 'string' && /^\d+$/.test(rawHops) ? Number(rawHops) : 0;
  return { origin, chain, hops };
}

/** The copy of a stored event that is sent to a peer: everything unchanged but the provenance. */
export function stampForPeer(eventJson: string, selfInstanceId: string): Record<string, unknown> {
  const event = JSON.parse(eventJson) as Record<string, unknown>;
  const { origin, chain, hops } = fromAttributes(event);
  event['kitefedorigin'] = origin ?? selfInstanceId;
  event['kitefedchain'] = JSON.stringify([...chain, selfInstanceId]);
  event['kitefedhops'] = hops + 1;
  return event;
}
