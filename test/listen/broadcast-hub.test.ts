/**
 * The broadcast hub alone, with an in-memory stream and plain-object sockets (the hub only sees
 * the ListenerSocket interface), so each interleaving of reads and commits can be forced.
 */
import { describe, expect, it } from 'vitest';
import type { EventReader, StoredEvent } from '../../src/events/event-reader.js';
import { BroadcastHub, SLOW_LISTENER_BYTES } from '../../src/listen/broadcast-hub.js';
import type { ListenerSocket } from '../../src/listen/listener-socket.js';

const TEAM = 1;

class MemoryStream implements EventReader {
  readonly rows: StoredEvent[] = [];
  /** When set, the next readAfter waits for this gate before answering (its snapshot is taken first). */
  gate: Promise<void> | undefined;
  reads = 0;

  append(type = 'com.test.a'): StoredEvent {
    const event = { seq: this.rows.length + 1, type, json: `{"n":${this.rows.length + 1}}` };
    this.rows.push(event);
    return event;
  }
  async readAfter(_team: number, after: number, limit: number) {
    this.reads++;
    const snapshot = this.rows.filter((r) => r.seq > after).slice(0, limit);
    const gate = this.gate;
    this.gate = undefined;
    if (gate) await gate;
    return snapshot;
  }
  /** When set, the next readHead waits for this gate before answering (its snapshot is taken first). */
  headGate: Promise<void> | undefined;
  async readHead() {
    const snapshot = this.rows.length;
    const gate = this.headGate;
    this.headGate = undefined;
    if (gate) await gate;
    return snapshot;
  }
  async readHeads() {
    return new Map([[TEAM, this.rows.length]]);
  }
}

class FakeSocket implements ListenerSocket {
  readonly frames: any[] = [];
  buffered = 0;
  closed: { code: number; reason: string } | undefined;
  /** Bytes each frame adds to the simulated send buffer (nothing drains it unless a test does); 'frame': its own length. */
  bytesPerFrame: number | 'frame' = 0;
  /** The most the simulated buffer ever held. */
  maxBuffered = 0;
  send(frame: Uint8Array) {
    this.frames.push(JSON.parse(Buffer.from(frame).toString('utf8')));
    this.buffered += this.bytesPerFrame === 'frame' ? frame.length : this.bytesPerFrame;
    this.maxBuffered = Math.max(this.maxBuffered, this.buffered);
    return true;
  }
  bufferedAmount() {
    return this.buffered;
  }
  cork(fn: () => void) {
    fn();
  }
  end(code: number, reason: string) {
    this.closed = { code, reason };
  }
  get seqs() {
    return this.frames.filter((f) => f.type === 'event').map((f) => f.seq as number);
  }
}

function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setImmediate(r));
  expect(cond()).toBe(true);
};

describe('broadcast hub', () => {
  it('hub - events committed while a replay read is in flight arrive once, after the replayed ones', async () => {
    const stream = new MemoryStream();
    for (let i = 0; i < 10; i++) stream.append();
    const hub = new BroadcastHub(stream);
    const socket = new FakeSocket();
    const g = gate();
    stream.gate = g.promise; // holds the first replay read after it took its snapshot
    const subscribed = hub.subscribe(TEAM, socket, { after: 0, matches: () => true });
    await until(() => stream.reads === 1);
    // The replay read took its snapshot (1..10); now 11..15 commit and are broadcast.
    const committed = [stream.append(), stream.append(), stream.append(), stream.append(), stream.append()];
    hub.committed(committed.map((e) => ({ teamId: TEAM, seq: e.seq, type: e.type, json: e.json, committedAt: Date.now() })));
    g.open();
    await subscribed;
    await until(() => socket.seqs.length === 15);
    expect(socket.frames[0]).toEqual({ type: 'ready', head: 10 });
    expect(socket.seqs).toEqual(Array.from({ length: 15 }, (_, i) => i + 1));
  });

  it('hub - a listener without after that subscribes while events are broadcast gets every event after its ready head (no gap at the seam)', async () => {
    const stream = new MemoryStream();
    for (let i = 0; i < 10; i++) stream.append();
    const hub = new BroadcastHub(stream);
    const first = new FakeSocket();
    await hub.subscribe(TEAM, first, { matches: () => true }); // the channel is open, its head 10
    const g = gate();
    stream.headGate = g.promise; // the second listener's head read takes its snapshot (10), then waits
    const second = new FakeSocket();
    const subscribed = hub.subscribe(TEAM, second, { matches: () => true });
    await new Promise((r) => setImmediate(r));
    // 11..13 commit here and are broadcast to the first listener while that read is in flight.
    const committed = [stream.append(), stream.append(), stream.append()];
    hub.committed(committed.map((e) => ({ teamId: TEAM, seq: e.seq, type: e.type, json: e.json, committedAt: Date.now() })));
    await until(() => first.seqs.length === 3);
    g.open();
    await subscribed;
    const last = stream.append();
    hub.committed([{ teamId: TEAM, seq: last.seq, type: last.type, json: last.json, committedAt: Date.now() }]);
    await until(() => second.seqs.includes(14));
    // Contract §4: every event with seq > the ready frame's head, none missing, none repeated.
    const head = second.frames[0].head as number;
    expect(second.frames[0].type).toBe('ready');
    expect(second.seqs).toEqual(Array.from({ length: 14 - head }, (_, i) => head + 1 + i));
  });

  it('hub - an announced head from another node is filled from the table, local commits after it stay in order', async () => {
    const stream = new MemoryStream();
    const hub = new BroadcastHub(stream);
    const socket = new FakeSocket();
    await hub.subscribe(TEAM, socket, { matches: () => true });
    stream.append(); // seq 1 and 2 committed by another node
    stream.append();
    const local = stream.append(); // seq 3 committed here; its notification arrives before theirs
    hub.committed([{ teamId: TEAM, seq: local.seq, type: local.type, json: local.json, committedAt: Date.now() }]);
    await until(() => socket.seqs.length === 3);
    hub.announce(TEAM, 2); // stale: must not repeat anything
    await new Promise((r) => setImmediate(r));
    expect(socket.seqs).toEqual([1, 2, 3]);
  });

  it('hub - a listener whose buffer passes 8 MiB is closed with 1013; the others keep receiving', async () => {
    const stream = new MemoryStream();
    const hub = new BroadcastHub(stream);
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    await hub.subscribe(TEAM, slow, { matches: () => true });
    await hub.subscribe(TEAM, fast, { matches: () => true });
    slow.buffered = SLOW_LISTENER_BYTES + 1;
    const e1 = stream.append();
    hub.committed([{ teamId: TEAM, seq: e1.seq, type: e1.type, json: e1.json, committedAt: 0 }]);
    expect(slow.closed?.code).toBe(1013);
    const e2 = stream.append();
    hub.committed([{ teamId: TEAM, seq: e2.seq, type: e2.type, json: e2.json, committedAt: 0 }]);
    expect(fast.seqs).toEqual([1, 2]);
    expect(slow.seqs).toEqual([1]);
    expect(hub.listenerCount).toBe(1);
  });

  it('hub - replay stops reading above the high-water mark and resumes on drain', async () => {
    const stream = new MemoryStream();
    for (let i = 0; i < 1200; i++) stream.append();
    const hub = new BroadcastHub(stream);
    const socket = new FakeSocket();
    socket.bytesPerFrame = 4096; // 500 frames ≈ 2 MiB: above the 1 MiB replay high-water mark
    const listener = await hub.subscribe(TEAM, socket, { after: 0, matches: () => true });
    // A first short read (16, before the events' size is known), then 500 a read.
    await until(() => socket.seqs.length === 516);
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(socket.seqs.length).toBe(516); // paused, not reading on
    expect(stream.reads).toBe(2);
    socket.buffered = 0;
    hub.drained(listener);
    await until(() => socket.seqs.length === 1016);
    socket.buffered = 0;
    hub.drained(listener);
    await until(() => socket.seqs.length === 1200);
    expect(socket.seqs).toEqual(Array.from({ length: 1200 }, (_, i) => i + 1));
    expect(socket.closed).toBeUndefined();
  });

  it('hub - replaying large events never queues more than about the high-water mark, and reads fewer of them at a time', async () => {
    const stream = new MemoryStream();
    const big = 'x'.repeat(300 * 1024);
    for (let i = 1; i <= 40; i++) stream.rows.push({ seq: i, type: 'com.test.a', json: `{"n":${i},"pad":"${big}"}` });
    const hub = new BroadcastHub(stream);
    const socket = new FakeSocket();
    socket.bytesPerFrame = 'frame';
    const listener = await hub.subscribe(TEAM, socket, { after: 0, matches: () => true });
    // A client that reads only when asked: drain whenever the replay has paused.
    for (let rounds = 0; socket.seqs.length < 40 && rounds < 200; rounds++) {
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      socket.buffered = 0;
      hub.drained(listener);
    }
    expect(socket.seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    // At most the 1 MiB mark plus one event above it: far from the 8 MiB that closes a listener.
    expect(socket.maxBuffered).toBeLessThan(1024 * 1024 + 2 * big.length);
    expect(socket.closed).toBeUndefined();
    // Live once the replay is done: a new event arrives.
    const next = stream.append();
    hub.committed([{ teamId: TEAM, seq: next.seq, type: next.type, json: next.json, committedAt: Date.now() }]);
    await until(() => socket.seqs.includes(41));
  });

  it('hub - a replay reads 16 events first, then about 4 MiB of them (not 500) when they are large', async () => {
    const stream = new MemoryStream();
    const big = 'x'.repeat(20 * 1024);
    for (let i = 1; i <= 800; i++) stream.rows.push({ seq: i, type: 'com.test.a', json: `{"n":${i},"pad":"${big}"}` });
    const limits: number[] = [];
    const read = stream.readAfter.bind(stream);
    stream.readAfter = (team, after, limit) => (limits.push(limit), read(team, after, limit));
    const hub = new BroadcastHub(stream);
    const socket = new FakeSocket(); // never fills: nothing waits for a drain
    await hub.subscribe(TEAM, socket, { after: 0, matches: () => true });
    await until(() => socket.seqs.length === 800);
    expect(limits[0]).toBe(16); // before the size is known: 500 of 900 KiB were 450 MB in memory
    expect(limits[1]).toBe(Math.floor((4 * 1024 * 1024) / `{"n":100,"pad":"${big}"}`.length)); // 204
    expect(socket.seqs).toEqual(Array.from({ length: 800 }, (_, i) => i + 1));
  });

  it('hub - filters apply to replay and live alike, and closing by key closes only that key', async () => {
    const stream = new MemoryStream();
    stream.append('com.test.a');
    stream.append('com.test.b');
    const hub = new BroadcastHub(stream);
    const onlyB = new FakeSocket();
    const other = new FakeSocket();
    await hub.subscribe(TEAM, onlyB, { after: 0, matches: (t) => t.endsWith('.b'), keyId: 'k1' });
    await hub.subscribe(TEAM, other, { matches: () => true, keyId: 'k2' });
    await until(() => onlyB.seqs.length === 1);
    const e3 = stream.append('com.test.a');
    const e4 = stream.append('com.test.b');
    hub.committed([e3, e4].map((e) => ({ teamId: TEAM, seq: e.seq, type: e.type, json: e.json, committedAt: 0 })));
    expect(onlyB.seqs).toEqual([2, 4]);
    hub.closeByKey('k1');
    expect(onlyB.closed?.code).toBe(1008);
    expect(other.closed).toBeUndefined();
  });
});
