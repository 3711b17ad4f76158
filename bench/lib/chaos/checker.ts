/**
 * The verdict of a chaos run, from what the provider was told (webhooks answered 200) and what
 * every listener received. Pure: no I/O, so its own tests can feed it a loss, a repeat or a
 * reordering and see it caught.
 *
 * - lost: a webhook answered 200 that a listener that should have it never received (every
 *   listener of A; B's listeners for the webhooks in the peer's scopes);
 * - duplicates: an event (source, id) a listener received more than once — at-least-once between
 *   nodes and instances is allowed, a listener seeing a repeat is not;
 * - seqMismatches: a 200 whose `seq` is not the seq A's listeners got the event with (a repeat
 *   of a stored event must answer the stored seq);
 * - listenerOrderViolations: a listener's seqs not strictly increasing (across reconnections);
 * - peerOrderViolations: at B, an event of A arriving after one A stored later (contract §5: per
 *   peer, delivered in the order stored);
 * - outOfScopeAtB: an event outside the peer's scopes that reached B.
 */
import type { Received } from './recording-listener.js';
import type { Webhook } from './webhook-load.js';

export interface ListenerRecord {
  readonly name: string;
  /** `a` listeners should get every webhook, `b` ones only those for the peer. */
  readonly instance: 'a' | 'b';
  readonly received: readonly Received[];
}

export interface Verdict {
  readonly sent: number;
  readonly answered: number;
  /** Answered `duplicate: true`: stored on an earlier try whose answer was lost. */
  readonly answeredAsDuplicate: number;
  readonly unanswered: number;
  /** Received by A's listeners although never answered 200: stored, its answer lost for good. */
  readonly storedUnanswered: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly seqMismatches: number;
  readonly listenerOrderViolations: number;
  readonly peerOrderViolations: number;
  readonly outOfScopeAtB: number;
  /** The first few problems, one line each. */
  readonly problems: readonly string[];
  readonly ok: boolean;
}

const MAX_PROBLEM_LINES = 20;

export function check(webhooks: readonly Webhook[], listeners: readonly ListenerRecord[]): Verdict {
  const problems: string[] = [];
  const note = (line: string) => {
    if (problems.length < MAX_PROBLEM_LINES) problems.push(line);
  };
  const answered = webhooks.filter((w) => w.answered);
  const byId = new Map(webhooks.map((w) => [w.id, w]));
  let lost = 0;
  let duplicates = 0;
  let seqMismatches = 0;
  let listenerOrderViolations = 0;
  let outOfScopeAtB = 0;
  // A's seq of each event, as A's listeners saw it: the reference order for the peer check.
  const seqOnA = new Map<string, number>();

  for (const listener of listeners) {
    const counts = new Map<string, number>();
    let previous = 0;
    for (const event of listener.received) {
      counts.set(event.id, (counts.get(event.id) ?? 0) + 1);
      if (event.seq <= previous) {
        listenerOrderViolations++;
        note(`${listener.name}: seq ${event.seq} after ${previous}`);
      }
      previous = Math.max(previous, event.seq);
      if (listener.instance === 'a' && !seqOnA.has(event.id)) seqOnA.set(event.id, event.seq);
      if (listener.instance === 'b' && byId.get(event.id)?.toPeer === false) {
        outOfScopeAtB++;
        note(`${listener.name}: ${event.id} (${event.type}) is outside the peer's scopes`);
      }
    }
    for (const [id, count] of counts) {
      if (count < 2) continue;
      duplicates += count - 1;
      note(`${listener.name}: ${id} received ${count} times`);
    }
    for (const webhook of answered) {
      if (listener.instance === 'b' && !webhook.toPeer) continue;
      if (counts.has(webhook.id)) continue;
      lost++;
      note(`${listener.name}: ${webhook.id} answered 200 (seq ${webhook.answered!.seq} by ${webhook.answered!.node}) never arrived`);
    }
  }

  for (const webhook of answered) {
    const seen = seqOnA.get(webhook.id);
    if (seen === undefined || seen === webhook.answered!.seq) continue;
    seqMismatches++;
    note(`${webhook.id}: answered seq ${webhook.answered!.seq} (duplicate: ${webhook.answered!.duplicate}) but listeners got seq ${seen}`);
  }

  let peerOrderViolations = 0;
  for (const listener of listeners.filter((l) => l.instance === 'b')) {
    let highest = 0;
    let highestId = '';
    for (const event of listener.received) {
      const onA = seqOnA.get(event.id);
      if (onA === undefined) continue;
      if (onA < highest) {
        peerOrderViolations++;
        note(`${listener.name}: ${event.id} (A seq ${onA}) arrived after ${highestId} (A seq ${highest})`);
      } else {
        highest = onA;
        highestId = event.id;
      }
    }
  }

  const storedUnanswered = webhooks.filter((w) => !w.answered && seqOnA.has(w.id)).length;
  return {
    sent: webhooks.length,
    answered: answered.length,
    answeredAsDuplicate: answered.filter((w) => w.answered!.duplicate).length,
    unanswered: webhooks.length - answered.length,
    storedUnanswered,
    lost,
    duplicates,
    seqMismatches,
    listenerOrderViolations,
    peerOrderViolations,
    outOfScopeAtB,
    problems,
    ok: lost + duplicates + seqMismatches + listenerOrderViolations + peerOrderViolations + outOfScopeAtB === 0,
  };
}
