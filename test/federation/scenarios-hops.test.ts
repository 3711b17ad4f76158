/**
 * The hop limit of contract §5 "Forwarding rule", rule 4, along a chain of four real instances
 * A→B→C→D over TLS: an event from A reaches C with kitefedhops 2; C's peer D has maxHops 2, so C
 * stops it there and records `kite.federation.delivery_failed` with reason `hop_limit`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ingestAt, pair, type Instance } from '../support/federation.js';
import { deliveries, deliveryFailures, idsSeen, Scenario, stream, TEAM, until } from './scenario-kit.js';

let s: Scenario;
let a: Instance;
let b: Instance;
let c: Instance;
let d: Instance;
let dPeerOnC: string;

beforeAll(async () => {
  s = new Scenario();
  [a, b, c, d] = await Promise.all([s.instance('kite-a'), s.instance('kite-b'), s.instance('kite-c'), s.instance('kite-d')]);
  await pair(a, b, TEAM);
  await pair(b, c, TEAM, { maxHops: 2 });
  ({ aPeerId: dPeerOnC } = await pair(c, d, TEAM, { maxHops: 2 }));
});

afterAll(async () => {
  await s?.stop();
});

describe('federation - hop limit along A→B→C→D', () => {
  it('federation - an event from A stops at C (hops 2 = D\'s maxHops): C records hop_limit, D never gets it', async () => {
    const atC = await s.listen(c);
    const atD = await s.listen(d);
    const sent = await ingestAt(a, 'charge.succeeded');

    await atC.waitFor(() => idsSeen(atC).includes(sent.id), 'the event at C', 15_000);
    const atCEvent = atC.events.find((f) => f.event!['id'] === sent.id)!.event!;
    expect(atCEvent).toMatchObject({ kitefedorigin: 'kite-a', kitefedchain: JSON.stringify(['kite-a', 'kite-b']), kitefedhops: 2 });

    const failures = await until(async () => {
      const f = await deliveryFailures(c);
      return f.length > 0 ? f : undefined;
    }, 'a delivery_failed at C');
    expect(failures).toEqual([{
      peerId: dPeerOnC, instanceId: 'kite-d', eventId: sent.id, eventSource: 'https://kite-a.kite.test/hooks/acme/stripe',
      eventType: 'com.stripe.charge.succeeded', reason: 'hop_limit', statusCode: null, attempts: 0,
    }]);
    // No delivery was recorded for it (rule 4: "no delivery is recorded").
    expect((await deliveries(c, dPeerOnC)).filter((x) => x.eventId === sent.id)).toEqual([]);

    // D is reachable from C: an event stored at C afterwards arrives. The stopped one was never
    // queued, so with C's queue for D in order, its absence now is final.
    const marker = await ingestAt(c, 'charge.marker');
    await atD.waitFor(() => idsSeen(atD).includes(marker.id), 'the marker at D', 15_000);
    expect(idsSeen(atD)).toEqual([marker.id]);
    expect((await stream(d, 'stripe.*')).map((e) => e['id'])).toEqual([marker.id]);
    // Neither A nor B hit the limit on their way.
    expect(await deliveryFailures(a)).toEqual([]);
    expect(await deliveryFailures(b)).toEqual([]);
  });
});
