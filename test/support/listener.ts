/**
 * A WebSocket listener client for tests: collects frames and lets a test await a condition with
 * a deadline (never a fixed sleep).
 */
import WebSocket from 'ws';

export interface Frame {
  readonly type: 'ready' | 'event';
  readonly head?: number;
  readonly seq?: number;
  readonly event?: Record<string, any>;
}

export class TestListener {
  readonly frames: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private readonly waiters = new Set<() => void>();
  readonly opened: Promise<void>;

  constructor(
    readonly socket: WebSocket,
  ) {
    this.opened = new Promise((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`upgrade refused: HTTP ${res.statusCode}`), { status: res.statusCode })));
      socket.once('error', reject);
    });
    socket.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame);
      this.wake();
    });
    socket.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.wake();
    });
  }

  get events(): Frame[] {
    return this.frames.filter((f) => f.type === 'event');
  }

  get seqs(): number[] {
    return this.events.map((f) => f.seq!);
  }

  /** Resolves when predicate() holds; rejects after timeoutMs with what was seen so far. */
  waitFor(predicate: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate()) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; got ${this.events.length} events, close code ${this.closeCode}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  waitForEvents(count: number, timeoutMs?: number): Promise<void> {
    return this.waitFor(() => this.events.length >= count, `${count} events`, timeoutMs);
  }

  waitForClose(timeoutMs?: number): Promise<number> {
    return this.waitFor(() => this.closeCode !== undefined, 'close', timeoutMs).then(() => this.closeCode!);
  }

  close(): void {
    this.socket.close();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

export async function listen(baseUrl: string, team: string, token: string, query: Record<string, string> = {}, options: WebSocket.ClientOptions = {}): Promise<TestListener> {
  const url = new URL(`${baseUrl.replace(/^http/, 'ws')}/v1/teams/${team}/listen`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const listener = new TestListener(new WebSocket(url, { headers: { authorization: `Bearer ${token}` }, ...options }));
  await listener.opened;
  await listener.waitFor(() => listener.frames.some((f) => f.type === 'ready'), 'ready frame');
  return listener;
}
