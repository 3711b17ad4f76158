/**
 * A listener (contract §4) that records every event frame it is sent, across reconnections: when
 * its node is killed it connects again with `after=<last seq seen>`, as `kite listen` does, so
 * the checker sees exactly what a resuming client would — including any repeat or gap at the
 * replay → live seam.
 *
 * States: connecting → open → (node gone) → connecting … → closed (close()).
 */
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import type { TlsFiles } from './tls-files.js';

export interface Received {
  readonly seq: number;
  readonly id: string;
  readonly source: string;
  readonly type: string;
  readonly origin: string | undefined;
}

const RECONNECT_EVERY_MS = 100;

export class RecordingListener {
  readonly received: Received[] = [];
  /** Connections made, the first included. */
  connections = 0;
  private socket: WebSocket | undefined;
  private closed = false;
  private readonly ca: string;

  constructor(
    /** `a1`, `b1`: the node it listens on. */
    readonly name: string,
    private readonly nodeUrl: string,
    private readonly team: string,
    private readonly token: string,
    private readonly types: string,
    tls: TlsFiles,
  ) {
    this.ca = readFileSync(tls.caFile, 'utf8');
  }

  get lastSeq(): number {
    return this.received.at(-1)?.seq ?? 0;
  }

  /** Resolves once the first subscription is in place (its `ready` frame). */
  start(): Promise<void> {
    return new Promise((resolve, reject) => this.connect(resolve, reject));
  }

  close(): void {
    this.closed = true;
    this.socket?.close();
  }

  private connect(onReady?: () => void, onFirstFailure?: (err: Error) => void): void {
    if (this.closed) return;
    const url = new URL(`${this.nodeUrl.replace(/^https/, 'wss')}/v1/teams/${this.team}/listen`);
    url.searchParams.set('types', this.types);
    url.searchParams.set('after', String(this.lastSeq));
    const socket = new WebSocket(url, { headers: { authorization: `Bearer ${this.token}` }, ca: this.ca });
    this.socket = socket;
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type: string; seq?: number; event?: Record<string, unknown> };
      if (frame.type === 'ready') {
        this.connections++;
        onReady?.();
        onReady = undefined;
        onFirstFailure = undefined;
        return;
      }
      if (frame.type !== 'event' || !frame.event) return;
      const event = frame.event;
      this.received.push({
        seq: frame.seq!,
        id: String(event['id']),
        source: String(event['source']),
        type: String(event['type']),
        origin: typeof event['kitefedorigin'] === 'string' ? event['kitefedorigin'] : undefined,
      });
    });
    // Refused, reset or closed: the node is down or restarting. Try again shortly; a live node
    // answers the next attempt. (The first attempt must work: the harness starts listeners on
    // running nodes only.)
    socket.on('error', (err) => {
      if (onFirstFailure) {
        onFirstFailure(err);
        onFirstFailure = undefined;
        this.closed = true;
      }
    });
    socket.on('close', () => {
      if (this.socket !== socket || this.closed) return;
      setTimeout(() => this.connect(), RECONNECT_EVERY_MS);
    });
  }
}
