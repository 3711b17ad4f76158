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

/**
 * The text of the copy sent to a peer. Most stored events carry no provenance yet (their text
 * names no `kitefed` member, not even through a `\u` escape, the test the append function uses
 * too): the three members are appended to the event's own text, which otherwise goes out byte for
 * byte as stored — a parse and a re-serialization were 2–10 ms of a 500-event batch's round trip.
 * An event that has been forwarded before is parsed and stamped (stampForPeer).
 */
export function stampedCopyText(eventJson: string, selfInstanceId: string): string {
  if (!eventJson.includes('kitefed') && !eventJson.includes('\\u')) {
    // A stored event is a JSON object: its last `}` closes it (only whitespace may follow).
    const end = eventJson.lastIndexOf('}');
    const head = end > 0 ? eventJson.slice(0, end).trimEnd() : '';
    if (head.trimStart().startsWith('{')) {
      const separator = head.endsWith('{') ? '' : ',';
      const chain = JSON.stringify(JSON.stringify([selfInstanceId]));
      return `${head}${separator}"kitefedorigin":${JSON.stringify(selfInstanceId)},"kitefedchain":${chain},"kitefedhops":1}`;
    }
  }
  return JSON.stringify(stampForPeer(eventJson, selfInstanceId));
}
