import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { startTestKite, type TestKite } from '../support/kite.js';
import { listen } from '../support/listener.js';
import { inParallel, sendStripe, STRIPE_SECRET } from '../support/webhooks.js';

let db: TestDatabase;
let kite: TestKite;
let acme: { adminKey: string; agentKey: string; agentKeyId: string };
let other: { adminKey: string; agentKey: string; agentKeyId: string };

beforeAll(async () => {
  db = await createTestDatabase();
  kite = await startTestKite(db.url);
  acme = await kite.api.createTeam('acme');
  other = await kite.api.createTeam('other');
  await kite.api.createSource('acme', 'stripe', 'stripe', STRIPE_SECRET);
  await kite.api.createSource('other', 'stripe', 'stripe', STRIPE_SECRET);
});

afterAll(async () => {
  await kite?.close();
  await db?.drop();
});

describe('listen', () => {
  it('listen - ready carries the head, then only events after it arrive, live', async () => {
    const before = await sendStripe(kite.url, 'acme', 'stripe');
    const listener = await listen(kite.url, 'acme', acme.agentKey);
    expect(listener.frames[0]).toEqual({ type: 'ready', head: before.seq });
    const live = await sendStripe(kite.url, 'acme', 'stripe', { type: 'charge.refunded' });
    await listener.waitForEvents(1);
    expect(listener.events[0]!.seq).toBe(live.seq);
    expect(listener.events[0]!.event).toMatchObject({ id: live.id, type: 'com.stripe.charge.refunded', specversion: '1.0' });
    listener.close();
  });

  it('listen - after=<seq> replays history then goes live with no gap and no repeat', async () => {
    const first = await sendStripe(kite.url, 'acme', 'stripe');
    for (let i = 0; i < 20; i++) await sendStripe(kite.url, 'acme', 'stripe');
    const listener = await listen(kite.url, 'acme', acme.agentKey, { after: String(first.seq - 1) });
    const more = await inParallel(20, 5, () => sendStripe(kite.url, 'acme', 'stripe'));
    const last = Math.max(...more.map((m) => m.seq));
    await listener.waitFor(() => listener.seqs.includes(last), `seq ${last}`);
    const expected = Array.from({ length: last - first.seq + 1 }, (_, i) => first.seq + i);
    expect(listener.seqs).toEqual(expected);
    listener.close();
  });

  it('listen - types patterns filter with and without the com. prefix', async () => {
    const withPrefix = await listen(kite.url, 'acme', acme.agentKey, { types: 'com.stripe.charge.*' });
    const withoutPrefix = await listen(kite.url, 'acme', acme.agentKey, { types: 'stripe.charge.*,nothing.*' });
    await sendStripe(kite.url, 'acme', 'stripe', { type: 'payment_intent.created' });
    const charge = await sendStripe(kite.url, 'acme', 'stripe', { type: 'charge.succeeded' });
    await withPrefix.waitForEvents(1);
    await withoutPrefix.waitForEvents(1);
    // The marker arrives after the filtered-out event was broadcast: it proves it was not sent.
    expect(withPrefix.seqs).toEqual([charge.seq]);
    expect(withoutPrefix.seqs).toEqual([charge.seq]);
    withPrefix.close();
    withoutPrefix.close();
  });

  it('listen - a key sees only its own team, and is refused on another team', async () => {
    const mine = await listen(kite.url, 'other', other.agentKey, { after: '0' });
    await sendStripe(kite.url, 'acme', 'stripe');
    const theirs = await sendStripe(kite.url, 'other', 'stripe');
    await mine.waitFor(() => mine.seqs.includes(theirs.seq), 'own event');
    const ids = mine.events.map((e) => e.event!['source']);
    expect(ids.every((s) => s === 'http://kite.test/hooks/other/stripe')).toBe(true);
    await expect(listen(kite.url, 'acme', other.agentKey)).rejects.toMatchObject({ status: 403 });
    await expect(listen(kite.url, 'acme', 'kite_not_a_key')).rejects.toMatchObject({ status: 401 });
    await expect(listen(kite.url, 'nope', kite.api.token!)).rejects.toMatchObject({ status: 404 });
    mine.close();
  });

  it('listen - the token may come in ?token= for clients that cannot set headers', async () => {
    const url = `${kite.url.replace('http', 'ws')}/v1/teams/acme/listen?token=${encodeURIComponent(acme.agentKey)}`;
    const { TestListener } = await import('../support/listener.js');
    const { default: WebSocket } = await import('ws');
    const listener = new TestListener(new WebSocket(url));
    await listener.opened;
    await listener.waitFor(() => listener.frames.some((f) => f.type === 'ready'), 'ready');
    listener.close();
  });

  it('listen - bad after or types are refused with 400 before the upgrade', async () => {
    await expect(listen(kite.url, 'acme', acme.agentKey, { after: '-1' })).rejects.toMatchObject({ status: 400 });
    await expect(listen(kite.url, 'acme', acme.agentKey, { types: 'a,,b' })).rejects.toMatchObject({ status: 400 });
  });

  it('listen - a listener that stops reading is closed with 1013 and never slows another', async () => {
    const slow = await listen(kite.url, 'acme', acme.agentKey);
    const fast = await listen(kite.url, 'acme', acme.agentKey);
    const socket = (slow.socket as unknown as { _socket: import('node:net').Socket })._socket;
    socket.pause();
    const blob = 'x'.repeat(60 * 1024);
    const sent = await inParallel(300, 8, () => sendStripe(kite.url, 'acme', 'stripe', { data: { object: { blob } } }));
    // 300 × 60 KiB ≈ 18 MiB: more than 8 MiB plus whatever the kernel buffers.
    const last = Math.max(...sent.map((s) => s.seq));
    await fast.waitFor(() => fast.seqs.includes(last), 'fast listener to get everything', 20_000);
    expect(fast.closeCode).toBeUndefined();
    socket.resume();
    expect(await slow.waitForClose(15_000)).toBe(1013);
    expect(slow.events.length).toBeLessThan(300);
    fast.close();
  });

  it('listen - a listener that never reads again is dropped within 5 s of being closed', async () => {
    const metric = async (name: string) => {
      const text = (await kite.api.get('/metrics')).body as string;
      return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    };
    const closedBefore = await metric('kite_slow_listeners_closed_total');
    const stalled = await listen(kite.url, 'acme', acme.agentKey);
    const openBefore = await metric('kite_listeners');
    (stalled.socket as unknown as { _socket: import('node:net').Socket })._socket.pause();
    const blob = 'y'.repeat(60 * 1024);
    await inParallel(300, 8, () => sendStripe(kite.url, 'acme', 'stripe', { data: { object: { blob } } }));
    expect(await metric('kite_slow_listeners_closed_total')).toBe(closedBefore + 1);
    const closedAt = Date.now();
    // The server drops the connection itself: its listener count falls although the client never reads.
    const deadline = closedAt + 8000;
    while ((await metric('kite_listeners')) >= openBefore) {
      if (Date.now() > deadline) throw new Error('the stalled listener was not dropped within 8 s');
      await new Promise((resolve) => setTimeout(resolve, 200)); // polling an external gauge
    }
    expect(Date.now() - closedAt).toBeLessThan(8000);
    stalled.socket.terminate();
  });
});
