/**
 * One dedicated connection per node that LISTENs to Kite's channels:
 * - `kite_events`  "<team id>:<head>" after every append commits (any node);
 * - `kite_config`  "<kind>:<detail>" when keys, sources or peers change (caches, revocations);
 * - `kite_federation` "<peer id>,…" when deliveries were queued for these peers.
 * Notifications can be missed while the connection is down, so after every reconnect the
 * `onReconnect` handlers run and re-read what they depend on from the tables.
 *
 * Modes: connecting → listening → (lost) → waiting to retry → connecting …; closed is final.
 */
import pg from 'pg';
import type { Logger } from '../observability/logger.js';

export const CHANNELS = ['kite_events', 'kite_config', 'kite_federation'] as const;
export type Channel = (typeof CHANNELS)[number];

export class NotificationListener {
  private client: pg.Client | undefined;
  private closed = false;
  private retryDelayMs = 250;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly handlers = new Map<Channel, ((payload: string) => void)[]>();
  private readonly reconnectHandlers: (() => void)[] = [];
  private connectedOnce = false;

  constructor(
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  on(channel: Channel, handler: (payload: string) => void): void {
    this.handlers.set(channel, [...(this.handlers.get(channel) ?? []), handler]);
  }

  onReconnect(handler: () => void): void {
    this.reconnectHandlers.push(handler);
  }

  get connected(): boolean {
    return this.client !== undefined;
  }

  /** Resolves once the first LISTEN is in place; rejects if that first attempt fails. */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'kite-listen', keepAlive: true, connectionTimeoutMillis: 2000 });
    client.on('notification', (message) => {
      const handlers = this.handlers.get(message.channel as Channel);
      if (!handlers) return;
      for (const handler of handlers) {
        try {
          handler(message.payload ?? '');
        } catch (err) {
          this.logger.error({ err, channel: message.channel }, 'notification handler failed');
        }
      }
    });
    client.on('error', (err) => this.lost(client, err));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      for (const channel of CHANNELS) await client.query(`LISTEN ${channel}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (this.closed) {
      await client.end().catch(() => {});
      return;
    }
    this.client = client;
    this.retryDelayMs = 250;
    if (this.connectedOnce) {
      this.logger.info('notification connection restored');
      for (const handler of this.reconnectHandlers) handler();
    }
    this.connectedOnce = true;
  }

  private lost(client: pg.Client, err: Error): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => {});
    if (this.closed) return;
    this.logger.warn({ err: err.message }, 'notification connection lost; reconnecting');
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect().catch((err: unknown) => {
        this.logger.debug({ err: (err as Error).message }, 'notification reconnect failed');
        this.retryDelayMs = Math.min(this.retryDelayMs * 2, 5000);
        this.scheduleRetry();
      });
    }, this.retryDelayMs);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
