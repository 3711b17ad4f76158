/**
 * A minimal WebSocket client for listening: a raw `net` socket does the HTTP upgrade, then server
 * frames (unmasked) are walked header by header. Reads land in one shared buffer (`onread`: no
 * allocation per read, no 'data' events); payloads are only looked at for sampled frames (latency)
 * and control frames, the rest are skipped without copying. A thousand of these in one process cost
 * far less than the `ws` client would.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { nowMs, type Samples } from './stats.js';

const SENT_AT = Buffer.from('"bench_sent_at":');
const HEAD_END = Buffer.from('\r\n\r\n');
const EMPTY = Buffer.alloc(0);
// Reads are handled synchronously, one at a time, so every socket can read into the same memory.
const SHARED = Buffer.allocUnsafe(256 * 1024);

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
  private upgraded = false;
  private head = EMPTY; // the HTTP answer while upgrading, or a partial frame header between reads
  private remaining = 0; // payload bytes of the current frame still to come
  private collect: Buffer[] | undefined; // copies of payload parts, when this frame's payload is wanted
  private opcode = 0;
  private seen: number;
  private readyResolve: (() => void) | undefined;
  private readyReject: ((err: Error) => void) | undefined;
  private upgradeResolve: (() => void) | undefined;
  private upgradeReject: ((err: Error) => void) | undefined;
  private closing = false;
  private closeReason = '';
  readonly ready: Promise<void>;
  private readonly socket: net.Socket;

  private constructor(port: number, path: string, private readonly stats: ListenerStats, private readonly sampleEvery: number, phase: number) {
    this.seen = phase;
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {}); // observed by whoever awaits it
    this.socket = net.connect({
      port, host: '127.0.0.1',
      onread: { buffer: SHARED, callback: (nread: number, buf: Uint8Array) => this.read(buf as Buffer, nread) },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (err) => {
      this.closeReason ||= ` (${err.message})`;
      this.upgradeReject?.(err);
    });
    this.socket.on('close', () => {
      this.upgradeReject?.(new Error('closed during upgrade'));
      if (this.readyResolve) this.readyReject?.(new Error(`closed before the ready frame${this.closeReason}`));
      if (!this.closing) this.stats.closedUnexpectedly++;
    });
    this.socket.write(
      `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
        `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
    );
  }

  /** Connects and upgrades; resolves on the 101 answer (await `ready` for the `ready` frame). */
  static connect(port: number, path: string, stats: ListenerStats, sampleEvery: number, phase: number): Promise<WsListener> {
    const listener = new WsListener(port, path, stats, sampleEvery, phase);
    return new Promise((resolve, reject) => {
      listener.upgradeResolve = () => resolve(listener);
      listener.upgradeReject = reject;
    });
  }

  /** False once the connection closed (either side). */
  get isOpen(): boolean {
    return !this.socket.destroyed;
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private read(buf: Buffer, end: number): boolean {
    let i = 0;
    if (!this.upgraded) {
      this.head = Buffer.concat([this.head, buf.subarray(0, end)]);
      const at = this.head.indexOf(HEAD_END);
      if (at < 0) return true;
      const answer = this.head;
      this.head = EMPTY;
      if (!answer.toString('latin1', 0, 12).startsWith('HTTP/1.1 101')) {
        this.upgradeReject?.(new Error(`upgrade refused: ${answer.toString('utf8').slice(0, 300)}`));
        this.close();
        return false;
      }
      this.upgraded = true;
      this.upgradeReject = undefined;
      this.upgradeResolve?.();
      const rest = answer.subarray(at + 4);
      if (rest.length > 0) this.frames(rest, 0, rest.length);
      return true;
    }
    if (this.head.length > 0) i = this.resumeHeader(buf, end);
    if (i >= 0) this.frames(buf, i, end);
    return true;
  }

  /** A frame header was split between reads: completes it from the new read; returns where frames go on (-1: still incomplete). */
  private resumeHeader(buf: Buffer, end: number): number {
    const had = this.head.length;
    const joined = Buffer.concat([this.head, buf.subarray(0, Math.min(end, 14))]);
    const length = headerLength(joined, 0, joined.length);
    if (length < 0) {
      this.head = joined;
      return -1;
    }
    this.head = EMPTY;
    this.startFrame(joined, 0);
    return length - had;
  }

  private frames(buf: Buffer, i: number, end: number): void {
    while (i < end) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, end - i);
        this.collect?.push(Buffer.from(buf.subarray(i, i + take)));
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.finish();
        continue;
      }
      const length = headerLength(buf, i, end);
      if (length < 0) {
        this.head = Buffer.from(buf.subarray(i, end));
        return;
      }
      this.startFrame(buf, i);
      i += length;
      if (this.remaining === 0) this.finish();
    }
  }

  private startFrame(buf: Buffer, i: number): void {
    const b1 = buf[i + 1]! & 127;
    this.opcode = buf[i]! & 15;
    this.remaining = b1 === 126 ? buf.readUInt16BE(i + 2) : b1 === 127 ? Number(buf.readBigUInt64BE(i + 2)) : b1;
    this.collect = this.wants() ? [] : undefined;
  }

  /** Whether the payload of the frame just started is needed. */
  private wants(): boolean {
    if (this.opcode >= 8) return true; // close, ping, pong
    if (this.opcode === 0) return false; // continuation (these servers never fragment)
    if (this.readyResolve) return true; // the `ready` frame
    this.stats.frames++;
    return this.stats.recording && ++this.seen % this.sampleEvery === 0;
  }

  private finish(): void {
    const parts = this.collect;
    this.collect = undefined;
    if (!parts) return;
    const payload = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    if (this.opcode === 9) return void this.socket.write(clientFrame(10, payload)); // pong
    if (this.opcode === 8) {
      this.closeReason = payload.length >= 2 ? ` (close ${payload.readUInt16BE(0)} ${payload.toString('utf8', 2)})` : '';
      return void this.socket.end();
    }
    if (this.readyResolve) {
      const resolve = this.readyResolve;
      this.readyResolve = undefined;
      return resolve();
    }
    const at = payload.indexOf(SENT_AT);
    if (at < 0) return;
    const sentAt = parseFloat(payload.toString('latin1', at + SENT_AT.length, at + SENT_AT.length + 20));
    if (Number.isFinite(sentAt)) this.stats.latency.add(nowMs() - sentAt);
  }
}

/** Length of the frame header at buf[i], or -1 when buf ends before it does. */
function headerLength(buf: Buffer, i: number, end: number): number {
  if (end - i < 2) return -1;
  const b1 = buf[i + 1]! & 127;
  const length = b1 === 126 ? 4 : b1 === 127 ? 10 : 2;
  return end - i < length ? -1 : length;
}

/** A client frame: clients must mask; a zero mask is allowed and leaves the payload as is. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length; // control frames carry ≤ 125 bytes
  payload.copy(frame, 6);
  return frame;
}
