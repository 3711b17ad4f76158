/**
 * A minimal WebSocket client for listening: a raw `net` socket does the HTTP upgrade, then server
 * frames (unmasked) are walked header by header. Payloads are only looked at for sampled frames
 * (latency) and control frames; the rest are skipped without copying, so a thousand listeners in
 * one process cost far less than the `ws` client would.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { nowMs, type Samples } from './stats.js';

const SENT_AT = Buffer.from('"bench_sent_at":');
const EMPTY = Buffer.alloc(0);

export interface ListenerStats {
  /** Event frames received by all listeners (the `ready` frame not included). */
  frames: number;
  /** Latency samples in ms: now − `bench_sent_at` of the event. */
  readonly latency: Samples;
  /** Whether samples are being recorded (off during warm-up and drain). */
  recording: boolean;
  closedUnexpectedly: number;
}

export class WsListener {
  private header = EMPTY; // partial frame header carried over between chunks
  private remaining = 0; // payload bytes of the current frame still to come
  private collect: Buffer[] | undefined; // payload parts, when this frame's payload is wanted
  private opcode = 0;
  private seen = 0;
  private readyResolve: (() => void) | undefined;
  readonly ready: Promise<void>;
  private closing = false;

  private constructor(
    private readonly socket: net.Socket,
    private readonly stats: ListenerStats,
    private readonly sampleEvery: number,
    phase: number,
  ) {
    this.seen = phase;
    this.ready = new Promise((resolve) => (this.readyResolve = resolve));
    socket.on('close', () => {
      if (!this.closing) stats.closedUnexpectedly++;
    });
  }

  /** Connects and upgrades; resolves once the server answered 101 (the `ready` frame comes later: await `ready`). */
  static connect(port: number, path: string, stats: ListenerStats, sampleEvery: number, phase: number): Promise<WsListener> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: '127.0.0.1' });
      socket.setNoDelay(true);
      let head = EMPTY;
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const statusLine = head.toString('latin1', 0, head.indexOf('\r\n'));
        if (!statusLine.startsWith('HTTP/1.1 101')) {
          socket.destroy();
          reject(new Error(`upgrade refused: ${head.toString('utf8').slice(0, 300)}`));
          return;
        }
        const listener = new WsListener(socket, stats, sampleEvery, phase);
        socket.on('data', (c: Buffer) => listener.receive(c));
        socket.on('error', () => {});
        resolve(listener);
        if (head.length > end + 4) listener.receive(head.subarray(end + 4));
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private receive(chunk: Buffer): void {
    if (this.header.length > 0) {
      chunk = Buffer.concat([this.header, chunk]);
      this.header = EMPTY;
    }
    let i = 0;
    const len = chunk.length;
    while (i < len) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, len - i);
        this.collect?.push(chunk.subarray(i, i + take));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.finish();
        continue;
      }
      if (len - i < 2) {
        this.header = Buffer.from(chunk.subarray(i));
        return;
      }
      const b1 = chunk[i + 1]! & 127;
      const headerLength = b1 === 126 ? 4 : b1 === 127 ? 10 : 2;
      if (len - i < headerLength) {
        this.header = Buffer.from(chunk.subarray(i));
        return;
      }
      this.opcode = chunk[i]! & 15;
      this.remaining = b1 === 126 ? chunk.readUInt16BE(i + 2) : b1 === 127 ? Number(chunk.readBigUInt64BE(i + 2)) : b1;
      i += headerLength;
      this.collect = this.wants() ? [] : undefined;
      if (this.remaining === 0) this.finish();
    }
  }

  /** Whether the payload of the frame just started is needed. */
  private wants(): boolean {
    if (this.opcode >= 8) return true; // close, ping, pong
    if (this.opcode === 0) return false; // continuation (servers here never fragment)
    if (this.readyResolve) return true; // the `ready` frame
    this.stats.frames++;
    return this.stats.recording && ++this.seen % this.sampleEvery === 0;
  }

  private finish(): void {
    const parts = this.collect;
    this.collect = undefined;
    if (!parts) return;
    const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (this.opcode === 9) return void this.socket.write(maskedFrame(10, payload)); // pong
    if (this.opcode === 8) return void this.socket.end();
    if (this.readyResolve) {
      const resolve = this.readyResolve;
      this.readyResolve = undefined;
      resolve();
      return;
    }
    const at = payload.indexOf(SENT_AT);
    if (at < 0) return;
    const sentAt = parseFloat(payload.toString('latin1', at + SENT_AT.length, at + SENT_AT.length + 20));
    if (Number.isFinite(sentAt)) this.stats.latency.add(nowMs() - sentAt);
  }
}

/** A client frame (clients must mask; the mask is zero, which is allowed and keeps the payload as is). */
function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length; // control frames carry ≤ 125 bytes
  payload.copy(frame, 6);
  return frame;
}
