/**
 * The status feed's timing, with stub snapshots and fake timers: a snapshot is built only while
 * someone watches, sent only when it changed, and a socket that never authenticates is closed.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { Principal } from '../../src/auth/principal.js';
import type { SocketConnection } from '../../src/http/socket-route.js';
import { StatusFeed, TICK_MS } from '../../src/ui/status-feed.js';
import type { StatusScope, StatusSnapshot } from '../../src/ui/status-snapshot.js';

function snapshotWith(pending: number): StatusSnapshot {
  return {
    instance: { instanceId: 'kite-a', publicUrl: 'https://a', version: '0' }, listeners: 0, teamsTruncated: false, events: [],
    teams: [{ slug: 'acme', listening: false, peers: [] }], ...{ pending } as object,
  } as StatusSnapshot;
}

class FakeConnection implements SocketConnection {
  readonly sent: any[] = [];
  ended: { code: number; reason: string } | undefined;
  send(text: string): boolean {
    this.sent.push(JSON.parse(text));
    return true;
  }
  end(code: number, reason: string): void {
    this.ended ??= { code, reason };
  }
}

let pending = 0;
let builds: StatusScope[] = [];
let feed: StatusFeed;

beforeEach(() => {
  vi.useFakeTimers();
  pending = 0;
  builds = [];
  feed = new StatusFeed({
    authenticate: async (token): Promise<Principal> => {
      if (token === 'admin') return { kind: 'admin-token' };
      if (token === 'team') return { kind: 'key', keyId: 'k1', teamId: 7, teamSlug: 'acme', name: 'ops', role: 'admin' };
      if (token === 'agent') return { kind: 'key', keyId: 'k2', teamId: 7, teamSlug: 'acme', name: 'bot', role: 'agent' };
      throw Object.assign(new Error('no'), { code: 'unauthorized' });
    },
    build: async (scope) => {
      builds.push(scope);
      return snapshotWith(pending);
    },
    revokedAmong: async () => [],
    onError: (err) => {
      throw err;
    },
  });
});

afterEach(() => {
  vi.useRealTimers();
});

const snapshots = (c: FakeConnection) => c.sent.filter((f) => f.type === 'snapshot');

describe('status feed', () => {
  it('status feed - builds nothing until someone signs in, then sends a snapshot at once and again only when it changed', async () => {
    const connection = new FakeConnection();
    const session = feed.open(connection);
    await vi.advanceTimersByTimeAsync(TICK_MS * 3);
    expect(builds).toEqual([]); // open but not signed in: no query

    session.message(JSON.stringify({ type: 'auth', token: 'admin' }));
    await vi.advanceTimersByTimeAsync(0);
    expect(connection.sent[0]).toEqual({ type: 'hello', team: null });
    expect(snapshots(connection)).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(TICK_MS * 3);
    expect(builds.length).toBeGreaterThanOrEqual(4); // it looked every second …
    expect(snapshots(connection)).toHaveLength(1); // … and sent nothing that had not changed

    pending = 1;
    await vi.advanceTimersByTimeAsync(TICK_MS);
    expect(snapshots(connection).map((s) => s.pending)).toEqual([0, 1]);
  });

  it('status feed - stops building once the last session closes, and one snapshot serves every session of a scope', async () => {
    const a = new FakeConnection();
    const b = new FakeConnection();
    const t = new FakeConnection();
    const sessions = [feed.open(a), feed.open(b), feed.open(t)];
    sessions[0]!.message('{"type":"auth","token":"admin"}');
    sessions[1]!.message('{"type":"auth","token":"admin"}');
    sessions[2]!.message('{"type":"auth","token":"team"}');
    await vi.advanceTimersByTimeAsync(0);
    builds = [];
    pending = 2;
    await vi.advanceTimersByTimeAsync(TICK_MS);
    expect(builds).toEqual([{ kind: 'instance' }, { kind: 'team', teamId: 7 }]);
    expect(t.sent[0]).toEqual({ type: 'hello', team: 'acme' });
    for (const c of [a, b, t]) expect(snapshots(c).at(-1).pending).toBe(2);

    sessions.forEach((s) => s.close());
    builds = [];
    await vi.advanceTimersByTimeAsync(TICK_MS * 5);
    expect(builds).toEqual([]);
    expect(feed.size).toBe(0);
  });

  it('status feed - a bad token, an agent key and a first message that is not the credentials are closed with 1008, and so is a socket that sends no credentials within 10 s', async () => {
    const bad = new FakeConnection();
    feed.open(bad).message('{"type":"auth","token":"nope"}');
    await vi.advanceTimersByTimeAsync(0);
    expect(bad.ended).toEqual({ code: 1008, reason: 'unauthorized' });

    const agent = new FakeConnection();
    feed.open(agent).message('{"type":"auth","token":"agent"}');
    await vi.advanceTimersByTimeAsync(0);
    expect(agent.ended).toEqual({ code: 1008, reason: 'forbidden' });

    const silent = new FakeConnection();
    feed.open(silent);
    await vi.advanceTimersByTimeAsync(9_000);
    expect(silent.ended).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(silent.ended).toEqual({ code: 1008, reason: 'no credentials' });

    // A first message that is not the credentials is closed at once.
    const wrongFirst: FakeConnection[] = [];
    for (const text of ['not json', '{"type":"refresh"}', 'null', '{"type":"auth","token":7}']) {
      const c = new FakeConnection();
      wrongFirst.push(c);
      feed.open(c).message(text);
      expect(c.ended?.code, text).toBe(1008);
    }
    expect([...bad.sent, ...agent.sent, ...silent.sent, ...wrongFirst.flatMap((c) => c.sent)]).toEqual([]);
    expect(builds).toEqual([]);
  });

  it('status feed - a token that cannot be checked (database away) closes with 1013, not 1008, so the page keeps it and retries', async () => {
    const errors: unknown[] = [];
    const c = new FakeConnection();
    new StatusFeed({
      authenticate: async () => {
        throw Object.assign(new Error('Connection terminated'), { code: 'ECONNREFUSED' });
      },
      build: async () => snapshotWith(0),
      revokedAmong: async () => [],
      onError: (err) => errors.push(err),
    }).open(c).message('{"type":"auth","token":"admin"}');
    await vi.advanceTimersByTimeAsync(0);
    expect(c.ended).toEqual({ code: 1013, reason: 'try again later' });
    expect(errors).toHaveLength(1);
  });

  it('status feed - a snapshot that cannot be read is sent as stale, and the next good one follows', async () => {
    let failing = true;
    const errors: unknown[] = [];
    const flaky = new StatusFeed({
      authenticate: async () => ({ kind: 'admin-token' }),
      build: async () => {
        if (failing) throw new Error('database unavailable');
        return snapshotWith(0);
      },
      revokedAmong: async () => [],
      onError: (err) => errors.push(err),
    });
    const c = new FakeConnection();
    flaky.open(c).message('{"type":"auth","token":"admin"}');
    await vi.advanceTimersByTimeAsync(0);
    expect(c.sent.map((f) => f.type)).toEqual(['hello', 'stale']);
    failing = false;
    await vi.advanceTimersByTimeAsync(TICK_MS);
    expect(c.sent.map((f) => f.type)).toEqual(['hello', 'stale', 'snapshot']);
    expect(errors).toHaveLength(1);
  });
});
