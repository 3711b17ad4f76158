/**
 * `GET /v1/teams/{team}/listen` upgraded to a WebSocket (contract §4). The upgrade is refused
 * with a normal HTTP error (401/403/404/400) before any WebSocket exists; once open, the
 * connection is handed to the broadcast hub through the small ListenerSocket interface.
 */
import type { HttpResponse, TemplatedApp, WebSocket } from 'uWebSockets.js';
import { teamAccess } from '../admin/team-access.js';
import type { AppContext } from '../app-context.js';
import { KiteError } from '../errors.js';
import { compileTypePatterns, parseTypesParam } from '../events/type-patterns.js';
import { SLOW_LISTENER_BYTES, type Listener } from '../listen/broadcast-hub.js';
import type { ListenerSocket } from '../listen/listener-socket.js';
import { parseSeq } from './json-body.js';
import { readHead } from './read-request.js';
import { errorResponse, writeResponse } from './respond.js';
import { mountUpgradeFallback } from './socket-route.js';

interface ListenData {
  readonly teamId: number;
  readonly keyId: string | undefined;
  readonly after: number | undefined;
  readonly matches: (type: string) => boolean;
  listener?: Listener;
  closed: boolean;
  /** A close waiting for the send buffer to move (see adaptSocket). */
  pendingClose?: { code: number; reason: string; timer: NodeJS.Timeout };
}

const LISTEN_PATTERN = '/v1/teams/:team/listen';

export function mountListenEndpoint(app: TemplatedApp, ctx: AppContext, isDraining: () => boolean): void {
  app.ws<ListenData>(LISTEN_PATTERN, {
    // Larger than the slow-listener limit so uWS never drops a frame silently: the hub closes
    // the connection with 1013 first.
    maxBackpressure: SLOW_LISTENER_BYTES * 4,
    closeOnBackpressureLimit: 0,
    maxPayloadLength: 64 * 1024,
    idleTimeout: 120,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      let aborted = false;
      res.onAborted(() => {
        aborted = true;
      });
      const head = readHead(req, ['team']);
      const key = head.headers['sec-websocket-key'] ?? '';
      const protocol = head.headers['sec-websocket-protocol'] ?? '';
      const extensions = head.headers['sec-websocket-extensions'] ?? '';
      const request = { ...head, body: Buffer.alloc(0) };
      (async () => {
        if (isDraining()) throw new KiteError('shutting_down');
        const access = await teamAccess(ctx, request, ['admin', 'agent'], head.query);
        const matches = compileTypePatterns(parseTypesParam(head.query.get('types') ?? undefined));
        const after = parseSeq(head.query, 'after');
        const keyId = access.principal.kind === 'key' ? access.principal.keyId : undefined;
        return { teamId: access.teamId, keyId, after, matches, closed: false } satisfies ListenData;
      })().then(
        (data) => {
          if (aborted) return;
          res.cork(() => res.upgrade(data, key, protocol, extensions, context));
        },
        (err: unknown) => {
          if (aborted) return;
          res.cork(() => writeResponse(res as HttpResponse, errorResponse(err), true));
        },
      );
    },
    open: (ws) => {
      const data = ws.getUserData();
      ctx.metrics.listeners.inc();
      const socket = adaptSocket(ws, data);
      ctx.hub.subscribe(data.teamId, socket, { after: data.after, matches: data.matches, keyId: data.keyId }).then(
        (listener) => {
          if (data.closed) ctx.hub.unsubscribe(listener);
          else data.listener = listener;
        },
        (err: unknown) => {
          ctx.logger.warn({ err: (err as Error).message }, 'could not start a listener');
          if (!data.closed) ws.end(1011, 'could not read the stream');
        },
      );
    },
    drain: (ws) => {
      const data = ws.getUserData();
      if (data.pendingClose) {
        // The client reads again: the close frame can follow what is buffered.
        const { code, reason, timer } = data.pendingClose;
        clearTimeout(timer);
        data.pendingClose = undefined;
        ws.end(code, reason);
        return;
      }
      if (data.listener) ctx.hub.drained(data.listener);
    },
    close: (ws) => {
      const data = ws.getUserData();
      data.closed = true;
      if (data.pendingClose) clearTimeout(data.pendingClose.timer);
      ctx.metrics.listeners.dec();
      if (data.listener) ctx.hub.unsubscribe(data.listener);
    },
  });
}

/** Above this much unsent data, a close frame waits for the client to read (see end below). */
const CLOSE_BEHIND_BYTES = 64 * 1024;
/** Contract §4: a close that cannot be sent within 5 s drops the connection. */
const CLOSE_DEADLINE_MS = 5000;

/** A plain request to the listen path: see mountUpgradeFallback. Before the catch-all routes. */
export function mountListenFallback(app: TemplatedApp): void {
  mountUpgradeFallback(app, LISTEN_PATTERN);
}

function adaptSocket(ws: WebSocket<ListenData>, data: ListenData): ListenerSocket {
  return {
    send: (frame) => !data.closed && ws.send(frame, false) !== 2,
    bufferedAmount: () => (data.closed ? 0 : ws.getBufferedAmount()),
    cork: (fn) => {
      if (!data.closed) ws.cork(fn);
    },
    end: (code, reason) => {
      if (data.closed || data.pendingClose) return;
      if (ws.getBufferedAmount() <= CLOSE_BEHIND_BYTES) {
        ws.end(code, reason);
        return;
      }
      // The close frame would sit behind megabytes a stalled client never reads. uWS invalidates
      // the socket at end(), after which it cannot be dropped any more; so hold the close until
      // the buffer drains (then the 1013 frame follows the data), or drop after 5 s.
      const timer = setTimeout(() => {
        if (!data.closed) ws.close();
      }, CLOSE_DEADLINE_MS);
      data.pendingClose = { code, reason, timer };
    },
  };
}
