/**
 * Pushes each team's events to its listeners in seq order, with no gap and no repeat — also
 * across nodes and across the replay → live seam.
 *
 * Per team with listeners, a channel keeps `head`, the highest seq broadcast, and `known`, the
 * highest seq known to be committed (from local commits and from `kite_events` notifications of
 * every node). The pump moves `head` to `known` one seq at a time: from events this node just
 * committed when they are next in line, otherwise by reading the table (`seq > head`). As appends
 * commit in seq order per team, such a read never skips an event.
 *
 * A listener is either replaying (reading the table from its cursor, ignored by the pump) or live
 * (gets every broadcast event with seq > cursor). It turns live, synchronously after a read that
 * found the table exhausted, only once its cursor has reached the channel's head, so the first
 * live event is exactly the one after its last replayed one.
 */
import type { CommittedEvent } from '../ingest/event-appender.js';
import type { EventReader, StoredEvent } from '../events/event-reader.js';
import { CLOSE_POLICY_VIOLATION, CLOSE_TRY_AGAIN_LATER, type ListenerSocket } from './listener-socket.js';

/** A listener whose send buffer holds more than this is closed with 1013 (contract §4). */
export const SLOW_LISTENER_BYTES = 8 * 1024 * 1024;
/** Replay pauses reading above this, and resumes on drain, so history never trips the limit. */
const REPLAY_HIGH_WATER_BYTES = 1024 * 1024;
/** Replay hands the socket this much at a time, checking the high-water mark in between. */
const REPLAY_CHUNK_BYTES = 256 * 1024;
/** A replay read asks for about this many bytes of events (by the size of the last read's). */
const REPLAY_READ_BYTES = 4 * 1024 * 1024;
const READ_BATCH = 500;
/**
 * A replay's first read, before it knows how large the team's events are: 500 events of 900 KiB
 * were 450 MB held per listener (10 paused ones took a node to 2 GB). Small events cost one short
 * read more.
 */
const REPLAY_FIRST_READ = 16;

export interface Listener {
  readonly id: number;
  readonly teamId: number;
  readonly keyId: string | undefined;
  readonly matches: (type: string) => boolean;
  readonly socket: ListenerSocket;
  cursor: number;
  live: boolean;
  closed: boolean;
  onDrain: (() => void) | undefined;
}

interface Channel {
  readonly teamId: number;
  head: number; // -1 until read from the database
  known: number;
  readonly listeners: Set<Listener>;
  readonly pending: Map<number, StoredEvent>;
  pumping: boolean;
  readonly ready: Promise<void>;
}

export interface BroadcastHubOptions {
  readonly onSent?: (count: number, committedAt: number | undefined) => void;
  readonly onError?: (err: unknown, teamId: number) => void;
  readonly onSlowClose?: () => void;
}

export class BroadcastHub {
  private readonly channels = new Map<number, Channel>();
  private nextId = 1;

  constructor(
    private readonly reader: EventReader,
    private readonly options: BroadcastHubOptions = {},
  ) {}

  get listenerCount(): number {
    let n = 0;
    for (const channel of this.channels.values()) n += channel.listeners.size;
    return n;
  }

  /** Registers a listener, sends `ready`, then replays from `after` (when given) in the background. */
  async subscribe(teamId: number, socket: ListenerSocket, options: { after?: number; matches: (type: string) => boolean; keyId?: string }): Promise<Listener> {
    const channel = this.channel(teamId);
    await channel.ready;
    // The table's head, not just this node's broadcast head, which may lag behind commits of
    // other nodes whose notifications are still in flight. A listener without `after` starts
    // there; events up to it that the pump broadcasts later are skipped for it (seq ≤ cursor).
    // The broadcast head is read after the table's: events broadcast while that read was in
    // flight never reach this listener, so its head must cover them (read before the await, it
    // did not, and the listener missed them: a gap after its ready frame).
    const tableHead = await this.reader.readHead(teamId);
    const head = Math.max(channel.head, tableHead);
    if (this.channels.get(teamId) !== channel) return this.subscribe(teamId, socket, options); // channel was dropped meanwhile
    this.announce(teamId, head);
    const listener: Listener = {
      id: this.nextId++, teamId, keyId: options.keyId, matches: options.matches, socket,
      cursor: options.after ?? head, live: options.after === undefined, closed: false, onDrain: undefined,
    };
    channel.listeners.add(listener);
    socket.send(Buffer.from(`{"type":"ready","head":${head}}`));
    if (!listener.live) void this.replay(listener, channel);
    return listener;
  }

  unsubscribe(listener: Listener): void {
    listener.closed = true;
    listener.onDrain?.();
    const channel = this.channels.get(listener.teamId);
    if (!channel) return;
    channel.listeners.delete(listener);
    if (channel.listeners.size === 0) this.channels.delete(listener.teamId);
  }

  /** The socket's send buffer drained. */
  drained(listener: Listener): void {
    const resume = listener.onDrain;
    listener.onDrain = undefined;
    resume?.();
  }

  /** Events this node just committed (from the appender), in seq order per team. */
  committed(events: readonly CommittedEvent[]): void {
    for (const event of events) {
      const channel = this.channels.get(event.teamId);
      if (!channel || event.seq <= channel.head) continue;
      channel.pending.set(event.seq, { seq: event.seq, type: event.type, json: event.json, committedAt: event.committedAt });
      if (event.seq > channel.known) channel.known = event.seq;
    }
    for (const teamId of new Set(events.map((e) => e.teamId))) {
      const channel = this.channels.get(teamId);
      if (channel) void this.pump(channel);
    }
  }

  /** Some node committed up to `head` in this team (a `kite_events` notification or a poll). */
  announce(teamId: number, head: number): void {
    const channel = this.channels.get(teamId);
    if (!channel) return;
    if (head > channel.known) channel.known = head;
    // Also when nothing new was announced: a pump that failed earlier is retried by the poll.
    if (channel.head < channel.known) void this.pump(channel);
  }

  /** Teams with listeners, for the safety poll that covers lost notifications. */
  activeTeams(): number[] {
    return [...this.channels.keys()];
  }

  /** Keys used by open listeners (to re-check for revocations missed while notifications were down). */
  listenerKeyIds(): string[] {
    const ids = new Set<string>();
    for (const channel of this.channels.values()) for (const l of channel.listeners) if (l.keyId) ids.add(l.keyId);
    return [...ids];
  }

  /** Closes every listener authenticated with this key (it was revoked). */
  closeByKey(keyId: string): void {
    for (const channel of [...this.channels.values()]) {
      for (const listener of [...channel.listeners]) {
        if (listener.keyId === keyId) this.close(listener, CLOSE_POLICY_VIOLATION, 'key revoked');
      }
    }
  }

  closeAll(code: number, reason: string): void {
    for (const channel of [...this.channels.values()]) {
      for (const listener of [...channel.listeners]) this.close(listener, code, reason);
    }
  }

  private channel(teamId: number): Channel {
    const existing = this.channels.get(teamId);
    if (existing) return existing;
    const channel: Channel = {
      teamId, head: -1, known: 0, listeners: new Set(), pending: new Map(), pumping: false,
      ready: this.reader.readHead(teamId).then(
        (head) => {
          channel.head = head;
          if (head > channel.known) channel.known = head;
          for (const seq of channel.pending.keys()) if (seq <= head) channel.pending.delete(seq);
          void this.pump(channel);
        },
        (err: unknown) => {
          if (this.channels.get(teamId) === channel) this.channels.delete(teamId);
          throw err;
        },
      ),
    };
    this.channels.set(teamId, channel);
    return channel;
  }

  private async pump(channel: Channel): Promise<void> {
    if (channel.pumping || channel.head < 0) return;
    channel.pumping = true;
    try {
      while (channel.head < channel.known && this.channels.get(channel.teamId) === channel) {
        const run: StoredEvent[] = [];
        for (let next = channel.pending.get(channel.head + 1); next; next = channel.pending.get(next.seq + 1)) {
          run.push(next);
          channel.pending.delete(next.seq);
        }
        const events = run.length > 0 ? run : await this.reader.readAfter(channel.teamId, channel.head, Math.min(READ_BATCH, channel.known - channel.head));
        if (events.length === 0) break; // not visible yet; the safety poll will announce again
        const fresh = events.filter((e) => e.seq > channel.head);
        if (fresh.length > 0) {
          this.broadcast(channel, fresh);
          channel.head = fresh[fresh.length - 1]!.seq;
        }
        for (const seq of channel.pending.keys()) if (seq <= channel.head) channel.pending.delete(seq);
      }
    } catch (err) {
      this.options.onError?.(err, channel.teamId);
    } finally {
      channel.pumping = false;
    }
  }

  private broadcast(channel: Channel, events: readonly StoredEvent[]): void {
    const frames = events.map(frameOf);
    let sent = 0;
    for (const listener of channel.listeners) {
      if (!listener.live) continue;
      sent += this.sendTo(listener, events, frames);
    }
    const committedAt = events[events.length - 1]!.committedAt;
    this.options.onSent?.(sent, committedAt);
  }

  private sendTo(listener: Listener, events: readonly StoredEvent[], frames: readonly Uint8Array[]): number {
    let sent = 0;
    let dropped = false;
    listener.socket.cork(() => {
      for (let i = 0; i < events.length; i++) {
        const event = events[i]!;
        if (event.seq <= listener.cursor || !listener.matches(event.type)) continue;
        listener.cursor = event.seq;
        if (!listener.socket.send(frames[i]!)) dropped = true;
        sent++;
      }
    });
    if (dropped || listener.socket.bufferedAmount() > SLOW_LISTENER_BYTES) {
      this.options.onSlowClose?.();
      this.close(listener, CLOSE_TRY_AGAIN_LATER, 'listener too slow; resume with after');
    }
    return sent;
  }

  /**
   * Sends the table from the listener's cursor, a read at a time, then turns it live. The socket
   * gets a chunk at a time and the replay waits for it to drain above the high-water mark, so
   * large events cannot pile up past the 8 MiB limit (a read of 40 events of 900 KiB queued 33 MB
   * at once); reads shrink to about REPLAY_READ_BYTES when events are large.
   *
   * Turning live happens in the same tick as the check that nothing is left: the cursor has
   * reached the channel's head (everything broadcast so far) and the last read found the table's
   * end. Whatever the pump broadcast while this replay waited (for a read or a drain) moved the
   * head past the cursor, so it is read again rather than skipped.
   */
  private async replay(listener: Listener, channel: Channel): Promise<void> {
    let limit = REPLAY_FIRST_READ;
    try {
      while (!listener.closed) {
        if (await this.waitForDrain(listener)) continue;
        const events = await this.reader.readAfter(channel.teamId, listener.cursor, limit);
        if (listener.closed) return;
        for (let start = 0; start < events.length; ) {
          if (await this.waitForDrain(listener)) {
            if (listener.closed) return;
            continue;
          }
          let end = start;
          for (let bytes = 0; end < events.length && (end === start || bytes < REPLAY_CHUNK_BYTES); end++) bytes += events[end]!.json.length;
          const chunk = events.slice(start, end);
          this.sendTo(listener, chunk, chunk.map(frameOf));
          if (listener.closed) return;
          listener.cursor = Math.max(listener.cursor, chunk[chunk.length - 1]!.seq);
          start = end;
        }
        if (events.length < limit && listener.cursor >= channel.head) {
          listener.live = true; // same tick as the check: nothing can slip in between
          return;
        }
        limit = readLimitAfter(events);
      }
    } catch (err) {
      this.options.onError?.(err, channel.teamId);
      this.close(listener, CLOSE_TRY_AGAIN_LATER, 'could not read the stream; resume with after');
    }
  }

  /** Waits for the socket to drain when it holds more than the replay's high-water mark; true if it waited. */
  private async waitForDrain(listener: Listener): Promise<boolean> {
    if (listener.socket.bufferedAmount() <= REPLAY_HIGH_WATER_BYTES) return false;
    await new Promise<void>((resolve) => (listener.onDrain = resolve));
    return true;
  }

  private close(listener: Listener, code: number, reason: string): void {
    if (listener.closed) return;
    this.unsubscribe(listener);
    listener.socket.end(code, reason);
  }
}

/** The next replay read's row limit: about REPLAY_READ_BYTES of events the size of the last read's. */
function readLimitAfter(events: readonly StoredEvent[]): number {
  if (events.length === 0) return READ_BATCH;
  let bytes = 0;
  for (const event of events) bytes += event.json.length;
  return Math.max(1, Math.min(READ_BATCH, Math.floor(REPLAY_READ_BYTES / (bytes / events.length))));
}

/** Encoded once per event: sending the same bytes to every listener avoids one UTF-8 encoding per send. */
function frameOf(event: StoredEvent): Uint8Array {
  return Buffer.from(`{"type":"event","seq":${event.seq},"event":${event.json}}`);
}
