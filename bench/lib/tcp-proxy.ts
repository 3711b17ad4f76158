/**
 * A TCP pass-through in front of a peer, to take it "down" and bring it back: while down the port
 * refuses connections and every open connection is cut, as when a peer's host goes away. TLS runs
 * end to end through it (bytes are only copied).
 */
import net from 'node:net';
import { onCleanup } from './processes.js';

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly unregister: () => void;

  private constructor(readonly port: number, private readonly targetPort: number) {
    this.unregister = onCleanup(() => this.down());
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve) => probe.listen(0, '127.0.0.1', () => resolve((probe.address() as net.AddressInfo).port)));
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new TcpProxy(port, targetPort);
    await proxy.up();
    return proxy;
  }

  get isUp(): boolean {
    return this.server !== undefined;
  }

  up(): Promise<void> {
    if (this.server) return Promise.resolve();
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(client).add(upstream);
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
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async close(): Promise<void> {
    this.unregister();
    await this.down();
  }
}
