/**
 * The uWebSockets.js server: HTTP routes, the listen WebSocket and other socket routes (closed when
 * it stops listening) on one port, plain or TLS
 * (KITE_TLS_CERT_FILE/KEY_FILE: then HTTPS and WSS only). The only module that creates a uWS app.
 */
import uWS from 'uWebSockets.js';
import type { AppContext } from '../app-context.js';
import { mountListenEndpoint, mountListenFallback } from './listen-endpoint.js';
import { mountRoutes } from './routes.js';
import { mountSocketRoute, type SocketRoute } from './socket-route.js';
import type { Route } from './types.js';

export interface HttpServer {
  readonly port: number;
  /** Stop accepting connections (in-flight requests go on). */
  stopListening(): void;
  /** While draining, new requests get 503 and new listeners are refused. */
  startDraining(): void;
  /** Resolves when no HTTP request is being handled. */
  idle(): Promise<void>;
  /**
   * Closes every connection still open, idle keep-alive ones included (uWS would otherwise hold
   * them until its own idle timeout, and a client would send its next request into a stopped
   * server). Abrupt for whatever is still on a connection, the unsent rest of an answer too big
   * for the socket buffers included: call it once idle() has resolved and WebSocket clients have
   * been sent their close frames.
   */
  closeConnections(): void;
}

export async function startHttpServer(ctx: AppContext, routes: readonly (Route | SocketRoute)[]): Promise<HttpServer> {
  const { config } = ctx;
  const app = config.tls ? uWS.SSLApp({ cert_file_name: config.tls.certFile, key_file_name: config.tls.keyFile }) : uWS.App();
  let draining = false;
  let inFlight = 0;
  const idleWaiters: (() => void)[] = [];
  const tracker = {
    begin: () => void inFlight++,
    end: () => {
      inFlight--;
      if (inFlight === 0) idleWaiters.splice(0).forEach((resolve) => resolve());
    },
  };
  const isDraining = () => draining;
  mountListenEndpoint(app, ctx, isDraining);
  mountListenFallback(app);
  const closeSockets = routes.flatMap((r) => (r.method === 'ws' ? [mountSocketRoute(app, r, isDraining)] : []));
  mountRoutes(app, routes.filter((r): r is Route => r.method !== 'ws'), {
    maxBodyBytes: config.maxBodyBytes,
    logger: ctx.logger,
    isDraining,
    inFlight: tracker,
    onFinished: (route, status) => ctx.metrics.httpRequestsTotal.inc({ route: route.pattern, status: String(status) }),
  });
  const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
    // Exclusive: without it uWS binds with SO_REUSEPORT and a second Kite would silently share the port.
    listenWithOptions(app)(config.host, config.port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`Could not listen on ${config.host}:${config.port}: the port is in use or KITE_HOST is not an address of this machine (check KITE_HOST and KITE_PORT)`));
    });
  });
  let listening = true;
  return {
    port: uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket),
    stopListening() {
      if (!listening) return;
      listening = false;
      uWS.us_listen_socket_close(listenSocket);
      closeSockets.forEach((close) => close(1001, 'server shutting down'));
    },
    startDraining() {
      draining = true;
    },
    idle() {
      return inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve));
    },
    closeConnections() {
      (app as unknown as ClosableApp).close();
    },
  };
}

/** uWS's `app.close()` (since v20.30: closes the listen sockets and every socket of the app); missing from the typings. */
type ClosableApp = { close(): void };

/** uWS's `ListenOptions.LIBUS_LISTEN_EXCLUSIVE_PORT` (the enum is in its typings, not in its binary). */
const LIBUS_LISTEN_EXCLUSIVE_PORT = 1;

type ListenWithOptions = (host: string, port: number, options: number, cb: (socket: uWS.us_listen_socket | false) => void) => void;

/** The binary has listen(host, port, options, cb); the typings only declare it without host. */
function listenWithOptions(app: uWS.TemplatedApp): ListenWithOptions {
  return (app.listen as unknown as ListenWithOptions).bind(app);
}
