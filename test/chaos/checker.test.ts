/**
 * The chaos checker must catch each kind of failure it claims to: a chaos run that passes is only
 * worth something if a loss, a repeat, a reordering or a leak between teams would have made it fail.
 */
import { describe, expect, it } from 'vitest';
import { check, type ListenerRecord } from '../../bench/lib/chaos/checker.js';
import type { Received } from '../../bench/lib/chaos/recording-listener.js';
import type { Instance, Webhook } from '../../bench/lib/chaos/webhook-load.js';

interface Made {
  toPeer?: boolean;
  answered?: { seq: number; duplicate?: boolean } | null;
  instance?: Instance;
  team?: string;
}

function webhook(n: number, { toPeer = true, answered = { seq: n }, instance = 'a', team = 'chaos' }: Made = {}): Webhook {
  return {
    id: `evt_${n}`, instance, team, type: toPeer ? 'payment_intent.succeeded' : 'charge.refunded', toPeer, attempts: 1,
    ...(answered ? { answered: { seq: answered.seq, duplicate: answered.duplicate ?? false, node: `${instance}1` } } : {}),
  };
}

function got(w: Webhook, seq: number): Received {
  const type = w.toPeer ? 'com.stripe.payment_intent.succeeded' : 'com.stripe.charge.refunded';
  return { id: w.id, seq, source: `https://kite-${w.instance}.chaos.test/hooks/${w.team}/stripe`, type, origin: undefined };
}

/**
 * Listeners of `chaos` on a1, a2 and b1 that received exactly what they should: their own
 * instance's webhooks with the seq answered, then each forwarded one numbered after them.
 */
function clean(webhooks: Webhook[]): ListenerRecord[] {
  const at = (instance: Instance): Received[] => {
    const own = webhooks.filter((w) => w.answered && w.instance === instance && w.team === 'chaos');
    const forwarded = webhooks.filter((w) => w.answered && w.instance !== instance && w.team === 'chaos' && w.toPeer);
    const last = Math.max(0, ...own.map((w) => w.answered!.seq));
    return [...own.map((w) => got(w, w.answered!.seq)), ...forwarded.map((w, i) => got(w, last + i + 1))];
  };
  return [
    { name: 'a1', instance: 'a', team: 'chaos', received: at('a') },
    { name: 'a2', instance: 'a', team: 'chaos', received: at('a') },
    { name: 'b1', instance: 'b', team: 'chaos', received: at('b') },
  ];
}

const WEBHOOKS = [webhook(1), webhook(2, { toPeer: false }), webhook(3), webhook(4), webhook(5, { answered: { seq: 5, duplicate: true } })];

describe('chaos checker', () => {
  it('chaos checker - a run where every listener got its events once, in order, passes', () => {
    const verdict = check(WEBHOOKS, clean(WEBHOOKS));
    expect(verdict).toMatchObject({ ok: true, sent: 5, answered: 5, answeredAsDuplicate: 1, lost: 0, duplicates: 0, problems: [], forwarded: { aToB: 4, bToA: 0 } });
  });

  it('chaos checker - an answered webhook missing at one A listener, or an in-scope one missing at B, is lost', () => {
    const listeners = clean(WEBHOOKS);
    const a2 = { ...listeners[1]!, received: listeners[1]!.received.filter((r) => r.id !== 'evt_3') };
    const b1 = { ...listeners[2]!, received: listeners[2]!.received.filter((r) => r.id !== 'evt_4') };
    const verdict = check(WEBHOOKS, [listeners[0]!, a2, b1]);
    expect(verdict).toMatchObject({ ok: false, lost: 2 });
    expect(verdict.problems.join('\n')).toMatch(/a2: evt_3 answered 200 .* never arrived/);
  });

  it('chaos checker - an out-of-scope webhook is not expected at B, and is flagged if it arrives', () => {
    const listeners = clean(WEBHOOKS);
    expect(check(WEBHOOKS, listeners).lost).toBe(0); // evt_2 is absent from b1 and that is right
    const b1 = { ...listeners[2]!, received: [...listeners[2]!.received, got(WEBHOOKS[1]!, 99)] };
    expect(check(WEBHOOKS, [listeners[0]!, listeners[1]!, b1])).toMatchObject({ ok: false, outOfScope: 1 });
  });

  it('chaos checker - an event a listener receives twice is a duplicate, even one never answered 200', () => {
    const unanswered = webhook(6, { answered: null });
    const all = [...WEBHOOKS, unanswered];
    const listeners = clean(all);
    const a1 = { ...listeners[0]!, received: [...listeners[0]!.received, got(unanswered, 6), got(unanswered, 7)] };
    const verdict = check(all, [a1, listeners[1]!, listeners[2]!]);
    expect(verdict).toMatchObject({ ok: false, duplicates: 1, unanswered: 1, storedUnanswered: 1 });
  });

  it('chaos checker - a 200 whose seq differs from the stored event\'s is a mismatch', () => {
    const wrong = [...WEBHOOKS.slice(0, 4), webhook(5, { answered: { seq: 9, duplicate: true } })];
    expect(check(wrong, clean(WEBHOOKS))).toMatchObject({ ok: false, seqMismatches: 1 });
  });

  it('chaos checker - a listener whose seqs go back, and B receiving A\'s events out of A\'s order, are violations', () => {
    const listeners = clean(WEBHOOKS);
    const a1 = { ...listeners[0]!, received: [...listeners[0]!.received].reverse() };
    expect(check(WEBHOOKS, [a1, listeners[1]!, listeners[2]!]).listenerOrderViolations).toBeGreaterThan(0);
    // B stored evt_4 before evt_3 (its own seqs still increase): A's order was not kept.
    const b = listeners[2]!.received;
    const swapped = [b[0]!, { ...b[2]!, seq: 2 }, { ...b[1]!, seq: 3 }, b[3]!];
    const verdict = check(WEBHOOKS, [listeners[0]!, listeners[1]!, { ...listeners[2]!, received: swapped }]);
    expect(verdict).toMatchObject({ ok: false, peerOrderViolations: 1, listenerOrderViolations: 0 });
    expect(verdict.problems[0]).toMatch(/b1: evt_3 \(A seq 3\) arrived after evt_4 \(A seq 4\)/);
  });

  it('chaos checker - webhooks sent to B are expected at A\'s listeners, in B\'s order; B\'s own listener must have them too', () => {
    const fromB = [webhook(11, { instance: 'b', answered: { seq: 1 } }), webhook(12, { instance: 'b', answered: { seq: 2 } }), webhook(13, { instance: 'b', toPeer: false, answered: { seq: 3 } })];
    const all = [...WEBHOOKS, ...fromB];
    const listeners = clean(all);
    expect(check(all, listeners)).toMatchObject({ ok: true, forwarded: { aToB: 4, bToA: 2 } });
    // evt_13 is out of the scope B forwards: A must not get it, and needs not.
    expect(listeners[0]!.received.map((r) => r.id)).not.toContain('evt_13');
    const a2 = { ...listeners[1]!, received: listeners[1]!.received.filter((r) => r.id !== 'evt_12') };
    expect(check(all, [listeners[0]!, a2, listeners[2]!])).toMatchObject({ ok: false, lost: 1 });
    const b1 = { ...listeners[2]!, received: listeners[2]!.received.filter((r) => r.id !== 'evt_13') };
    expect(check(all, [listeners[0]!, listeners[1]!, b1])).toMatchObject({ ok: false, lost: 1 });
    // A stored B's evt_12 before evt_11: B's order was not kept.
    const a = listeners[0]!.received;
    const i11 = a.findIndex((r) => r.id === 'evt_11');
    const swapped = [...a.slice(0, i11), { ...a[i11 + 1]!, seq: a[i11]!.seq }, { ...a[i11]!, seq: a[i11 + 1]!.seq }, ...a.slice(i11 + 2)];
    const verdict = check(all, [{ ...listeners[0]!, received: swapped }, listeners[1]!, listeners[2]!]);
    expect(verdict).toMatchObject({ ok: false, peerOrderViolations: 1, listenerOrderViolations: 0 });
    expect(verdict.problems[0]).toMatch(/a1: evt_11 \(B seq 1\) arrived after evt_12 \(B seq 2\)/);
  });

  it('chaos checker - an event of another team at a listener is a leak; that team\'s own listener must get it', () => {
    const other = webhook(21, { team: 'other', answered: { seq: 1 } });
    const all = [...WEBHOOKS, other];
    const listeners = clean(all);
    const otherAtB: ListenerRecord = { name: 'b1/other', instance: 'b', team: 'other', received: [got(other, 1)] };
    expect(check(all, [...listeners, otherAtB])).toMatchObject({ ok: true, crossTeam: 0 });
    expect(check(all, [...listeners, { ...otherAtB, received: [] }])).toMatchObject({ ok: false, lost: 1 });
    const b1 = { ...listeners[2]!, received: [...listeners[2]!.received, got(other, 50)] };
    const verdict = check(all, [listeners[0]!, listeners[1]!, b1, otherAtB]);
    expect(verdict).toMatchObject({ ok: false, crossTeam: 1 });
    expect(verdict.problems[0]).toMatch(/b1: evt_21 of team other reached a listener of team chaos/);
  });
});
