/**
 * A WebSocket listener over TLS (wss://) for B's listen endpoint, for federation benchmarks: a raw
 * `tls` socket does the upgrade, then frames are parsed one by one. Every event frame is looked
 * into (B sees at most ~10,000 events/s here, few listeners): its `bench_n` counts it once
 * (duplicates and order violations are counted per listener, since one peer delivers in order)
 * and, while recording, `bench_sent_at` gives the ingest-at-A → listener-at-B latency.
 */
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';
import { nowMs, Samples } from './stats.js';

const SENT_AT = Buffer.from('"bench_sent_at":');
const BENCH_N = Buffer.from('"bench_n":');
const HEAD_END = Buffer.from('\r\n\r\n');

/** Shared by a set of listeners. */
export class FederatedStats {
  frames = 0;
  duplicates = 0;
  /** Arrivals with a smaller bench_n than an earlier one on the same listener (only meaningful when A stores in bench_n order). */
  orderViolations = 0;
  recording = false;
  readonly latency = new Samples();
  /** A byte per bench_n: seen or not. */
  private seen = new Uint8Array(1 << 16);
  distinct = 0;
  closedUnexpectedly = 0;
  /** bench_n in arrival order (when `trackOrder`), to check against A's storage order. */
  arrivals = new Int32Array(1 << 16);
  arrived = 0;

  constructor(readonly trackOrder = false) {}

  private arrive(n: number): void {
    if (this.arrived === this.arrivals.length) {
      const bigger = new Int32Array(this.arrivals.length * 2);
      bigger.set(this.arrivals);
      this.arrivals = bigger;
    }
    this.arrivals[this.arrived++] = n;
  }

  /**
   * Arrivals out of A's order: `rank` maps bench_n → its position in A's seq order (-1: unknown);
   * counts arrivals ranked below an earlier one (one listener, one peer: none expected).
   */
  orderViolationsAgainst(rank: Int32Array): number {
    let max = -1;
    let violations = 0;
    for (let i = 0; i < this.arrived; i++) {
      const n = this.arrivals[i]!;
      const r = n < rank.length ? rank[n]! : -1;
      if (r < 0) continue;
      if (r < max) violations++;
      else max = r;
    }
    return violations;
  }

  mark(n: number): boolean {
    if (n >= this.seen.length) {
      let size = this.seen.length;
      while (size <= n) size *= 2;
      const bigger = new Uint8Array(size);
      bigger.set(this.seen);
      this.seen = bigger;
    }
    if (this.seen[n]) {
      this.duplicates++;
      return false;
    }
    this.seen[n] = 1;
    this.distinct++;
    if (this.trackOrder) this.arrive(n);
    return true;
  }

  has(n: number): boolean {
    return n < this.seen.length && this.seen[n] === 1;
  }

  /** Restarts latency samples (e.g. after a warm-up). */
  resetLatency(): void {
    (this as { latency: Samples }).latency = new Samples();
  }
}

export class WssListener {
  private buf: Buffer = Buffer.alloc(0);
  private upgraded = false;
  private lastN = -1;
  private closing = false;
  readonly ready: Promise<void>;
  private readyResolve!: () => void;
  private readyReject!: (err: Error) => void;
  private readonly socket: tls.TLSSocket;

  constructor(port: number, path: string, ca: string, private readonly stats: FederatedStats) {
    this.ready = new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.readyReject = reject;
    });
    this.ready.catch(() => {});
    this.socket = tls.connect({ host: '127.0.0.1', servername: 'localhost', port, ca });
    this.socket.setNoDelay(true);
    this.socket.on('secureConnect', () => {
      this.socket.write(
        `GET ${path} HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', (err) => this.readyReject(err));
    this.socket.on('close', () => {
      this.readyReject(new Error('closed before the ready frame'));
      if (!this.closing) this.stats.closedUnexpectedly++;
    });
  }

  close(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private read(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    if (!this.upgraded) {
      const at = this.buf.indexOf(HEAD_END);
      if (at < 0) return;
      if (!this.buf.toString('latin1', 0, 12).startsWith('HTTP/1.1 101')) {
        this.readyReject(new Error(`upgrade refused: ${this.buf.toString('utf8').slice(0, 300)}`));
        this.close();
        return;
      }
      this.upgraded = true;
      this.buf = this.buf.subarray(at + 4);
    }
    let i = 0;
    const buf = this.buf;
    while (buf.length - i >= 2) {
      const opcode = buf[i]! & 15;
      const b1 = buf[i + 1]! & 127;
      const headLength = b1 === 126 ? 4 : b1 === 127 ? 10 : 2;
      if (buf.length - i < headLength) break;
      const length = b1 === 126 ? buf.readUInt16BE(i + 2) : b1 === 127 ? Number(buf.readBigUInt64BE(i + 2)) : b1;
      if (buf.length - i < headLength + length) break;
      const payload = buf.subarray(i + headLength, i + headLength + length);
      i += headLength + length;
      this.frame(opcode, payload);
    }
    this.buf = i === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(i));
  }

  private frame(opcode: number, payload: Buffer): void {
    if (opcode === 9) return void this.socket.write(clientFrame(10, payload));
    if (opcode === 8) return void this.socket.end();
    if (opcode !== 1) return;
    if (payload.indexOf('{"type":"ready"') === 0) return this.readyResolve();
    const at = payload.indexOf(BENCH_N);
    if (at < 0) return;
    this.stats.frames++;
    const n = parseInt(payload.toString('latin1', at + BENCH_N.length, at + BENCH_N.length + 16), 10);
    if (n < this.lastN) this.stats.orderViolations++;
    this.lastN = Math.max(this.lastN, n);
    this.stats.mark(n);
    if (!this.stats.recording) return;
    const s = payload.indexOf(SENT_AT);
    if (s < 0) return;
    const sentAt = parseFloat(payload.toString('latin1', s + SENT_AT.length, s + SENT_AT.length + 20));
    if (Number.isFinite(sentAt)) this.stats.latency.add(nowMs() - sentAt);
  }
}

/**
 * Connects listeners to B's teams (`/v1/teams/<team>/listen`), 10 at a time, each up to its
 * `ready` frame; one closed before `ready` is tried again (twice at most).
 */
export async function connectListeners(port: number, ca: string, teams: readonly { team: string; key: string }[], stats: FederatedStats): Promise<WssListener[]> {
  const listeners: WssListener[] = [];
  const one = async (team: string, key: string) => {
    for (let attempt = 0; ; attempt++) {
      const l = new WssListener(port, `/v1/teams/${team}/listen?token=${encodeURIComponent(key)}`, ca, stats);
      try {
        await Promise.race([l.ready, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`listener on ${team} not ready after 20 s`)), 20_000).unref())]);
        listeners.push(l);
        return;
      } catch (err) {
        l.close();
        if (attempt >= 2) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  };
  try {
    for (let i = 0; i < teams.length; i += 10) await Promise.all(teams.slice(i, i + 10).map((t) => one(t.team, t.key)));
  } catch (err) {
    for (const l of listeners) l.close();
    throw err;
  }
  stats.closedUnexpectedly = 0; // those closed before `ready` were replaced
  return listeners;
}

/** A client frame: clients must mask; a zero mask is allowed and leaves the payload as is. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  payload.copy(frame, 6);
  return frame;
}
