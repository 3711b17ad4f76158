/**
 * The verdict of a chaos run, from what the providers were told (webhooks answered 200) and what
 * every listener received. Pure: no I/O, so its own tests can feed it a loss, a repeat or a
 * reordering and see it caught.
 *
 * Webhooks go to both instances (A's two nodes, B's one) and to two teams. A listener listens to
 * one team on one node; it should get every webhook of its team sent to its own instance, and
 * those sent to the other instance that the team's peer forwards (`toPeer`).
 *
 * - lost: a webhook answered 200 that a listener that should have it never received;
 * - duplicates: an event (source, id) a listener received more than once — at-least-once between
 *   nodes and instances is allowed, a listener seeing a repeat is not;
 * - seqMismatches: a 200 whose `seq` is not the seq its own instance's listeners got the event
 *   with (a repeat of a stored event must answer the stored seq);
 * - listenerOrderViolations: a listener's seqs not strictly increasing (across reconnections);
 * - peerOrderViolations: a forwarded event arriving after one its origin stored later (contract
 *   §5: per peer, delivered in the order stored), in either direction;
 * - outOfScope: an event outside the peer's scopes that reached the other instance;
 * - crossTeam: an event of another team at a listener (a team sees only its own events).
 */
import type { Received } from './recording-listener.js';
import type { Instance, Webhook } from './webhook-load.js';

export interface ListenerRecord {
  readonly name: string;
  readonly instance: Instance;
  readonly team: string;
  readonly received: readonly Received[];
}

export interface Verdict {
  readonly sent: number;
  readonly answered: number;
  /** Answered `duplicate: true`: stored on an earlier try whose answer was lost. */
  readonly answeredAsDuplicate: number;
  readonly unanswered: number;
  /** Received by its own instance's listeners although never answered 200: stored, its answer lost for good. */
  readonly storedUnanswered: number;
  readonly lost: number;
  readonly duplicates: number;
  readonly seqMismatches: number;
  readonly listenerOrderViolations: number;
  readonly peerOrderViolations: number;
  readonly outOfScope: number;
  readonly crossTeam: number;
  /** Distinct events that reached the other instance, by direction: the run really federated both ways. */
  readonly forwarded: { readonly aToB: number; readonly bToA: number };
  /** The first few problems, one line each. */
  readonly problems: readonly string[];
  readonly ok: boolean;
}

const MAX_PROBLEM_LINES = 20;

/** Whether a listener should receive a webhook (when answered). */
export function expectedAt(listener: { readonly instance: Instance; readonly team: string }, webhook: Webhook): boolean {
  return webhook.team === listener.team && (webhook.instance === listener.instance || webhook.toPeer);
}

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
  let outOfScope = 0;
  let crossTeam = 0;
  // Each event's seq at the instance that took it, as that instance's listeners saw it: the
  // reference order for the peer check.
  const seqAtOrigin = new Map<string, number>();
  const forwarded = { a: new Set<string>(), b: new Set<string>() };

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
      const webhook = byId.get(event.id);
      if (!webhook) continue;
      if (webhook.team !== listener.team) {
        crossTeam++;
        note(`${listener.name}: ${event.id} of team ${webhook.team} reached a listener of team ${listener.team}`);
      } else if (webhook.instance === listener.instance) {
        if (!seqAtOrigin.has(event.id)) seqAtOrigin.set(event.id, event.seq);
      } else if (!webhook.toPeer) {
        outOfScope++;
        note(`${listener.name}: ${event.id} (${event.type}) is outside the peer's scopes`);
      } else {
        forwarded[webhook.instance].add(event.id);
      }
    }
    for (const [id, count] of counts) {
      if (count < 2) continue;
      duplicates += count - 1;
      note(`${listener.name}: ${id} received ${count} times`);
    }
    for (const webhook of answered) {
      if (!expectedAt(listener, webhook) || counts.has(webhook.id)) continue;
      lost++;
      note(`${listener.name}: ${webhook.id} answered 200 (seq ${webhook.answered!.seq} by ${webhook.answered!.node}) never arrived`);
    }
  }

  for (const webhook of answered) {
    const seen = seqAtOrigin.get(webhook.id);
    if (seen === undefined || seen === webhook.answered!.seq) continue;
    seqMismatches++;
    note(`${webhook.id}: answered seq ${webhook.answered!.seq} (duplicate: ${webhook.answered!.duplicate}) but listeners got seq ${seen}`);
  }

  let peerOrderViolations = 0;
  for (const listener of listeners) {
    let highest = 0;
    let highestId = '';
    for (const event of listener.received) {
      const webhook = byId.get(event.id);
      const atOrigin = seqAtOrigin.get(event.id);
      if (!webhook || webhook.instance === listener.instance || webhook.team !== listener.team || atOrigin === undefined) continue;
      const origin = webhook.instance.toUpperCase();
      if (atOrigin < highest) {
        peerOrderViolations++;
        note(`${listener.name}: ${event.id} (${origin} seq ${atOrigin}) arrived after ${highestId} (${origin} seq ${highest})`);
      } else {
        highest = atOrigin;
        highestId = event.id;
      }
    }
  }

  const storedUnanswered = webhooks.filter((w) => !w.answered && seqAtOrigin.has(w.id)).length;
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
    outOfScope,
    crossTeam,
    forwarded: { aToB: forwarded.a.size, bToA: forwarded.b.size },
    problems,
    ok: lost + duplicates + seqMismatches + listenerOrderViolations + peerOrderViolations + outOfScope + crossTeam === 0,
  };
}
