/**
 * A TCP pass-through in front of a peer or a database, to take it "down" and bring it back. TLS
 * (or Postgres's protocol) runs end to end through it: bytes are only copied.
 *
 * Modes: up (forwarding) → down (`down()`: the port refuses connections and every open connection
 * is cut, as when the host goes away) or blackhole (`blackhole()`: open connections are cut, new
 * ones are accepted but never answered, as behind a firewall that drops packets) → up (`up()`: a
 * blackholed connection is closed then, it never reached the target).
 */
import net from 'node:net';
import { onCleanup } from './processes.js';

export class TcpProxy {
  private server: net.Server | undefined;
  private blackholing = false;
  private readonly sockets = new Set<net.Socket>();
  private readonly unregister: () => void;

  private constructor(readonly port: number, private readonly targetPort: number, private readonly targetHost: string, downOnSignal: boolean) {
    this.unregister = downOnSignal ? onCleanup(() => this.down()) : () => {};
  }

  /**
   * `downOnSignal: false` leaves Ctrl-C alone (no signal handlers installed): for a proxy living
   * inside a test process, which goes with it.
   */
  static async start(targetPort: number, targetHost = '127.0.0.1', options: { downOnSignal?: boolean } = {}): Promise<TcpProxy> {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new TcpProxy(port, targetPort, targetHost, options.downOnSignal ?? true);
    await proxy.up();
    return proxy;
  }

  /** Forwarding (neither down nor blackholing). */
  get isUp(): boolean {
    return this.server !== undefined && !this.blackholing;
  }

  async up(): Promise<void> {
    if (this.blackholing) {
      this.blackholing = false;
      this.cutAll();
    }
    if (this.server) return;
    const server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client)).on('error', () => client.destroy());
      // Held, unanswered, until up() closes it.
      if (this.blackholing) return;
      const upstream = net.connect({ host: this.targetHost, port: this.targetPort });
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(upstream);
      const done = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.pipe(upstream).on('error', done);
      upstream.pipe(client).on('error', done);
      client.on('close', done).on('error', done);
      upstream.on('close', done).on('error', done);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.blackholing = false;
    this.cutAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Cuts every open connection; new ones connect and then hear nothing until up(). */
  async blackhole(): Promise<void> {
    this.blackholing = true;
    this.cutAll();
    if (!this.server) {
      this.blackholing = false;
      await this.up();
      this.blackholing = true;
    }
  }

  async close(): Promise<void> {
    this.unregister();
    await this.down();
  }

  private cutAll(): void {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }
}
