/**
 * The chaos checker must catch each kind of failure it claims to: a chaos run that passes is only
 * worth something if a loss, a repeat or a reordering would have made it fail.
 */
import { describe, expect, it } from 'vitest';
import { check, type ListenerRecord } from '../../bench/lib/chaos/checker.js';
import type { Received } from '../../bench/lib/chaos/recording-listener.js';
import type { Webhook } from '../../bench/lib/chaos/webhook-load.js';

const SOURCE = 'https://kite-a.chaos.test/hooks/chaos/stripe';

function webhook(n: number, toPeer = true, answered: { seq: number; duplicate?: boolean } | null = { seq: n }): Webhook {
  return {
    id: `evt_${n}`, type: toPeer ? 'payment_intent.succeeded' : 'charge.refunded', toPeer, attempts: 1,
    ...(answered ? { answered: { seq: answered.seq, duplicate: answered.duplicate ?? false, node: 'a1' } } : {}),
  };
}

function got(id: string, seq: number, toPeer = true): Received {
  return { id, seq, source: SOURCE, type: toPeer ? 'com.stripe.payment_intent.succeeded' : 'com.stripe.charge.refunded', origin: undefined };
}

/** Listeners on a1, a2 and b1 that received exactly what they should. */
function clean(webhooks: Webhook[]): ListenerRecord[] {
  const onA = webhooks.filter((w) => w.answered).map((w) => got(w.id, w.answered!.seq, w.toPeer));
  const onB = onA.filter((r) => webhooks.find((w) => w.id === r.id)!.toPeer).map((r, i) => ({ ...r, seq: i + 1 }));
  return [
    { name: 'a1', instance: 'a', received: onA },
    { name: 'a2', instance: 'a', received: onA },
    { name: 'b1', instance: 'b', received: onB },
  ];
}

const WEBHOOKS = [webhook(1), webhook(2, false), webhook(3), webhook(4), webhook(5, true, { seq: 5, duplicate: true })];

describe('chaos checker', () => {
  it('chaos checker - a run where every listener got its events once, in order, passes', () => {
    const verdict = check(WEBHOOKS, clean(WEBHOOKS));
    expect(verdict).toMatchObject({ ok: true, sent: 5, answered: 5, answeredAsDuplicate: 1, lost: 0, duplicates: 0, problems: [] });
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
    const b1 = { ...listeners[2]!, received: [...listeners[2]!.received, got('evt_2', 99, false)] };
    expect(check(WEBHOOKS, [listeners[0]!, listeners[1]!, b1])).toMatchObject({ ok: false, outOfScopeAtB: 1 });
  });

  it('chaos checker - an event a listener receives twice is a duplicate, even one never answered 200', () => {
    const unanswered = webhook(6, true, null);
    const all = [...WEBHOOKS, unanswered];
    const listeners = clean(all);
    const a1 = { ...listeners[0]!, received: [...listeners[0]!.received, got('evt_6', 6), got('evt_6', 7)] };
    const verdict = check(all, [a1, listeners[1]!, listeners[2]!]);
    expect(verdict).toMatchObject({ ok: false, duplicates: 1, unanswered: 1, storedUnanswered: 1 });
  });

  it('chaos checker - a 200 whose seq differs from the stored event\'s is a mismatch', () => {
    const wrong = [...WEBHOOKS.slice(0, 4), webhook(5, true, { seq: 9, duplicate: true })];
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
});
