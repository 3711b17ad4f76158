/**
 * Framework-free WebSocket routes besides the listen endpoint (e.g. the status page's `/ui/live`).
 * A module outside `src/http/` describes one as a `SocketRoute`: it sees each connection through
 * the small `SocketConnection` interface and answers with its own message and close handlers;
 * this file is the only part that knows uWebSockets.js.
 *
 * Upgrades carry no credentials here (they would end up in URLs or logs): a route that needs
 * them reads them from the first message. While the server drains, upgrades get 503.
 */
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import { KiteError } from '../errors.js';
import { errorResponse, writeResponse } from './respond.js';

export interface SocketConnection {
  /** Queues one text frame; false when it was dropped (the connection is then being closed). */
  send(text: string): boolean;
  /** Closes with a WebSocket close code (no-op once closed). */
  end(code: number, reason: string): void;
}

export interface SocketSession {
  message(text: string): void;
  /** The connection is gone (either side closed it). */
  close(): void;
}

export interface SocketRoute {
  readonly method: 'ws';
  /** uWS pattern, e.g. `/ui/live`. */
  readonly pattern: string;
  /** Largest message accepted from a client; a larger one closes the connection. */
  readonly maxPayloadBytes: number;
  open(connection: SocketConnection): SocketSession;
}

interface SocketData {
  session?: SocketSession;
  closed: boolean;
}

/** Above this much unsent data the client is not reading: close rather than buffer more. */
const MAX_BACKPRESSURE_BYTES = 1024 * 1024;
const CLOSE_TRY_AGAIN_LATER = 1013;

/** Mounts one socket route; returns a function that closes all its open connections. */
export function mountSocketRoute(app: TemplatedApp, route: SocketRoute, isDraining: () => boolean): (code: number, reason: string) => void {
  const open = new Set<WebSocket<SocketData>>();
  app.ws<SocketData>(route.pattern, {
    maxPayloadLength: route.maxPayloadBytes,
    maxBackpressure: MAX_BACKPRESSURE_BYTES * 2,
    closeOnBackpressureLimit: 0,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      if (isDraining()) {
        writeResponse(res as HttpResponse, errorResponse(new KiteError('shutting_down')), true);
        return;
      }
      res.upgrade<SocketData>({ closed: false }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      const data = ws.getUserData();
      open.add(ws);
      data.session = route.open({
        send: (text) => {
          if (data.closed) return false;
          if (ws.getBufferedAmount() > MAX_BACKPRESSURE_BYTES) {
            data.closed = true;
            ws.end(CLOSE_TRY_AGAIN_LATER, 'too slow');
            return false;
          }
          let status = 0;
          ws.cork(() => {
            status = ws.send(text, false);
          });
          return status !== 2;
        },
        end: (code, reason) => {
          if (data.closed) return;
          data.closed = true;
          ws.cork(() => ws.end(code, reason));
        },
      });
    },
    message: (ws, message, isBinary) => {
      const data = ws.getUserData();
      if (!data.closed && !isBinary) data.session?.message(Buffer.from(message).toString('utf8'));
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.closed = true;
      open.delete(ws);
      data.session?.close();
    },
  });
  mountUpgradeFallback(app, route.pattern);
  return (code, reason) => {
    for (const ws of [...open]) {
      const data = ws.getUserData();
      if (data.closed) continue;
      data.closed = true;
      ws.end(code, reason);
    }
  };
}

/**
 * uWS routes only upgrade requests to a ws handler: a plain request to a socket's path (`pattern`)
 * gets a clear answer instead of falling through to the catch-all 404 — 426 `upgrade_required`
 * for a GET, 405 for any other method. Must be mounted before the catch-all routes.
 */
export function mountUpgradeFallback(app: TemplatedApp, pattern: string): void {
  app.any(pattern, (res, req) => {
    const error = req.getMethod() === 'get' ? new KiteError('upgrade_required') : new KiteError('method_not_allowed');
    writeResponse(res, errorResponse(error), false);
  });
}
