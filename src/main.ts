/**
 * The composition root: builds every part of a Kite node from its config, wires them together,
 * and owns the order of start and shutdown.
 *
 * Shutdown (SIGTERM): stop accepting connections → refuse new requests with 503 → let in-flight
 * requests and group commits finish → close listeners with 1001 → close every connection left
 * (idle keep-alive ones) → close the database.
 */
import type { AppContext } from './app-context.js';
import { teamRoutes } from './admin/team-routes.js';
import { keyRoutes } from './admin/key-routes.js';
import { sourceRoutes } from './admin/source-routes.js';
import { loadAdminToken } from './auth/admin-token.js';
import { KeyStore } from './auth/key-store.js';
import { Authenticator } from './auth/principal.js';
import type { Config } from './config.js';
import { openDatabase } from './db/database.js';
import { databaseUrlError } from './db/database-url-error.js';
import { isMigrated, migrate } from './db/migrate.js';
import { NotificationListener } from './db/notifications.js';
import { createPool } from './db/pool.js';
import { PostgresEventReader } from './events/event-reader.js';
import { eventRoutes } from './events/event-routes.js';
import { createFederation } from './federation/federation.js';
import { PostgresInboundBuckets } from './federation/inbound-buckets.js';
import { InboundRateLimiter } from './federation/inbound-rate-limit.js';
import { federationSource, peerStateChangedEvent } from './federation/internal-events.js';
import { readPeerQueueStats } from './federation/peer-queue-stats.js';
import { PeerStore } from './federation/peer-store.js';
import { peerRoutes } from './federation/peer-routes.js';
import { receiveRoutes } from './federation/receive-route.js';
import { startHttpServer } from './http/server.js';
import { appendOn, EventAppender } from './ingest/event-appender.js';
import { ingestRoutes, withDeadline } from './ingest/ingest-route.js';
import { BroadcastHub } from './listen/broadcast-hub.js';
import { CLOSE_GOING_AWAY } from './listen/listener-socket.js';
import { peerDeliveryObserver, registerClusterGauge, registerPeerGauges } from './observability/federation-metrics.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createMetrics } from './observability/metrics.js';
import { opsRoutes } from './ops/ops-routes.js';
import { ensureDemo, quickstartBanner } from './ops/quickstart.js';
import { SourceRegistry } from './sources/source-registry.js';
import { TeamDirectory } from './teams/team-directory.js';
import { uiRoutes } from './ui/ui-routes.js';
import { VERSION } from './version.js';

export interface RunningKite {
  readonly url: string;
  readonly port: number;
  /** Set on the start that generated the admin token. */
  readonly adminToken: string | undefined;
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger?: Logger;
  /** Print the quickstart banner (the CLI's `serve` does; tests do not). */
  readonly banner?: boolean;
}

// Notifications can be lost while the LISTEN connection reconnects: poll heads this often too.
const HEAD_POLL_MS = 1000;

export async function startKite(config: Config, options: StartOptions = {}): Promise<RunningKite> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const database = await openDatabase(config, logger);
  const cleanups: (() => Promise<void>)[] = [() => database.stop()];
  // Set once this start has made the admin token: if the start then fails (a port in use, a TLS
  // file), the token is still shown once, or nobody would ever see it (contract §2).
  let createdToken: { token: string; file: string } | undefined;
  try {
    await migrate(database.url, logger).catch((err: unknown) => {
      throw config.databaseUrl ? databaseUrlError(err, config.databaseUrl) : err;
    });
    const pool = createPool(database.url, logger);
    cleanups.unshift(() => pool.end());
    // Group commit gets connections of its own: with many peer actors querying at once, waiting
    // for one of the shared pool's would make webhooks miss their deadline.
    const appendPool = createPool(database.url, logger, 6);
    cleanups.unshift(() => appendPool.end());
    const adminToken = await loadAdminToken(pool, config.adminToken, config.dataDir);
    createdToken = adminToken.created;
    const metrics = createMetrics();
    // Per-peer state and queues, read from the shared tables at scrape time (right on any node).
    registerPeerGauges(metrics.registry, () => readPeerQueueStats(pool));
    const reader = new PostgresEventReader(pool);
    const hub = new BroadcastHub(reader, {
      onSent: (count, committedAt) => {
        metrics.deliveriesTotal.inc(count);
        if (committedAt !== undefined && count > 0) metrics.broadcastLagSeconds.observe((Date.now() - committedAt) / 1000);
      },
      onSlowClose: () => metrics.slowListenersClosedTotal.inc(),
      onError: (err, teamId) => logger.warn({ err: (err as Error).message, teamId }, 'broadcast read failed; will retry'),
    });
    const appender = new EventAppender(appendPool, {
      selfInstanceId: config.instanceId,
      federationSource: federationSource(config.publicUrl),
      onCommitted: (events) => {
        metrics.eventsStoredTotal.inc(events.length);
        hub.committed(events);
      },
      onFlush: (size, seconds, ok) => {
        metrics.groupCommitSize.observe(size);
        metrics.groupCommitSeconds.observe({ outcome: ok ? 'ok' : 'error' }, seconds);
      },
    });
    // Peer actors store their internal events (state changes, rejections) in the transaction that
    // records what they report, through the same append function as any other event.
    const internalSource = federationSource(config.publicUrl);
    const peers = new PeerStore(pool, (err) => logger.error({ err }, 'peer change listener failed'), (client, teamId, change) =>
      appendOn(client, [{ teamId, event: peerStateChangedEvent(config.publicUrl, { ...change, to: 'healthy', reason: 'redrive' }) }], config.instanceId, internalSource));
    const federation = createFederation({
      config, pool, logger, peers, observer: peerDeliveryObserver(metrics),
      appendInternal: (client, teamId, event) => appendOn(client, [{ teamId, event }], config.instanceId, internalSource),
    });
    registerClusterGauge(metrics.registry, () => federation.liveNodes());
    // A peer's inbound limit is shared with the instance's other nodes, when there are any.
    const inboundLimiter = new InboundRateLimiter(new PostgresInboundBuckets(pool), { shareWhen: () => federation.liveNodes() > 1 });
    const teams = new TeamDirectory(pool);
    const sources = new SourceRegistry(pool);
    const notifications = new NotificationListener(database.url, logger);
    const keys = new KeyStore(pool);
    // The safety net under LISTEN/NOTIFY, which can lose notifications while it reconnects:
    // re-read the heads of teams with listeners, and close listeners whose key was revoked.
    const pollHeads = () => {
      const active = hub.activeTeams();
      if (active.length === 0) return;
      reader.readHeads(active).then(
        (heads) => heads.forEach((head, teamId) => hub.announce(teamId, head)),
        (err: unknown) => logger.debug({ err: (err as Error).message }, 'head poll failed'),
      );
      const keyIds = hub.listenerKeyIds();
      if (keyIds.length === 0) return;
      keys.revokedAmong(keyIds).then(
        (revoked) => revoked.forEach((id) => hub.closeByKey(id)),
        (err: unknown) => logger.debug({ err: (err as Error).message }, 'revocation poll failed'),
      );
    };
    notifications.on('kite_events', (payload) => {
      const [teamId, head] = payload.split(':').map(Number);
      if (teamId !== undefined && head !== undefined) hub.announce(teamId, head);
    });
    notifications.on('kite_config', (payload) => {
      const [kind, a, b] = payload.split(':');
      if (kind === 'key_revoked' && a) hub.closeByKey(a);
      if (kind === 'source' && a && b) sources.invalidate(Number(a), b);
      if (kind === 'peer' && b) {
        peers.changedElsewhere(b);
        federation.peerChanged(b);
      }
      if (kind === 'leases') federation.leasesReleased();
      if (kind === 'probe' && a) federation.probeNow(a);
    });
    notifications.on('kite_federation', (payload) => federation.wake(payload.split(',')));
    notifications.onReconnect(() => {
      sources.invalidateAll();
      peers.notificationsMissed();
      federation.notificationsMissed();
      pollHeads();
    });
    await notifications.start();
    cleanups.unshift(() => notifications.close());
    const poller = setInterval(pollHeads, HEAD_POLL_MS);
    poller.unref();
    cleanups.unshift(async () => clearInterval(poller));
    await federation.start();
    cleanups.unshift(() => federation.stop());

    let migrated = false;
    const ctx: AppContext = {
      config, version: VERSION, pool, logger, metrics, teams, sources, appender, reader, hub,
      auth: new Authenticator(pool, () => adminToken.hash),
      keys,
      isReady: async () => {
        try {
          // The migration check is remembered once true; the database is asked every time.
          if (migrated) await withDeadline(pool.query('SELECT 1'), 900);
          else migrated = await withDeadline(isMigrated(pool), 900);
          return migrated;
        } catch {
          return false;
        }
      },
    };
    const server = await startHttpServer(ctx, [
      ...opsRoutes(ctx), ...teamRoutes(ctx), ...keyRoutes(ctx), ...sourceRoutes(ctx), ...eventRoutes(ctx),
      ...peerRoutes(ctx, peers), ...receiveRoutes(ctx, peers, inboundLimiter), ...ingestRoutes(ctx),
      ...uiRoutes(ctx),
    ]);
    const scheme = config.tls ? 'https' : 'http';
    const localUrl = `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${server.port}`;
    logger.info({ instanceId: config.instanceId, url: localUrl, publicUrl: config.publicUrl, version: VERSION }, 'kite listening');
    if (options.banner) {
      const demo = config.databaseUrl ? undefined : await ensureDemo(pool, teams, sources);
      process.stderr.write(quickstartBanner(config, localUrl, adminToken.created, demo) + '\n');
    }

    let closing: Promise<void> | undefined;
    return {
      url: localUrl,
      port: server.port,
      adminToken: adminToken.created?.token,
      close: () =>
        (closing ??= (async () => {
          logger.info('shutting down');
          server.stopListening();
          server.startDraining();
          await appender.drain();
          await server.idle();
          hub.closeAll(CLOSE_GOING_AWAY, 'server shutting down');
          // Nothing is in flight any more: what is still connected is idle (keep-alive) or closing.
          server.closeConnections();
          for (const cleanup of cleanups) await cleanup().catch((err: unknown) => logger.warn({ err }, 'cleanup failed'));
          logger.info('stopped');
        })()),
    };
  } catch (err) {
    for (const cleanup of cleanups) await cleanup().catch(() => {});
    if (options.banner && createdToken) {
      process.stderr.write(`Admin token (made by this start, which failed; shown once, also saved in ${createdToken.file}):\n  ${createdToken.token}\n`);
    }
    throw err;
  }
}
