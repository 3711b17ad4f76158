/**
 * Mounts framework-free routes on a uWS app: reads the request, runs the handler, writes the
 * answer corked, and never touches a response whose client went away (uWS forbids it).
 */
import type { HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { KiteError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { readBody, readHead, toKiteRequest } from './read-request.js';
import { errorResponse, writeResponse } from './respond.js';
import type { KiteResponse, Route } from './types.js';

export interface MountOptions {
  readonly maxBodyBytes: number;
  readonly logger: Logger;
  /** Called with every finished request, for metrics. */
  readonly onFinished?: (route: Route, status: number, seconds: number) => void;
  /** While true, new requests are refused with 503 (graceful shutdown). */
  readonly isDraining: () => boolean;
  /** Counts requests being handled, so shutdown can wait for them. */
  readonly inFlight: { begin(): void; end(): void };
}

export function mountRoutes(app: TemplatedApp, routes: readonly Route[], options: MountOptions): void {
  const patterns = new Set<string>();
  for (const route of routes) {
    patterns.add(route.pattern);
    const paramNames = [...route.pattern.matchAll(/:([A-Za-z]+)/g)].map((m) => m[1]!);
    app[route.method](route.pattern, (res, req) => {
      const started = performance.now();
      let aborted = false;
      // The client went away: a body still being read will never end, and the request would
      // count as in flight for ever (a graceful shutdown waited on it endlessly).
      const body: { cancel?: () => void } = {};
      res.onAborted(() => {
        aborted = true;
        body.cancel?.();
      });
      const head = readHead(req, paramNames);
      options.inFlight.begin();
      const finish = (response: KiteResponse, close = false) => {
        options.inFlight.end();
        if (aborted) return;
        // Once shutdown has begun, every answer says `connection: close`, so no client reuses a
        // connection the server is about to close.
        res.cork(() => writeResponse(res, response, close || options.isDraining()));
        options.onFinished?.(route, response.status, (performance.now() - started) / 1000);
      };
      if (options.isDraining()) {
        finish(errorResponse(new KiteError('shutting_down')), true);
        return;
      }
      readBody(res, head, route.maxBodyBytes ?? options.maxBodyBytes, body)
        .then((body) => route.handler(toKiteRequest(head, body)))
        .then(
          (response) => finish(response),
          (err: unknown) => {
            const response = errorResponse(err);
            // Every 500, also one a route already turned into a KiteError (ingest does, for its
            // metrics): with what caused it, which the client never sees.
            if (response.status === 500) {
              const cause = err instanceof KiteError ? (err.cause ?? err) : err;
              options.logger.error({ err: cause, path: head.path, method: head.method }, 'request failed');
            }
            // After a 413 the rest of the body is still on the wire: close instead of reading it.
            finish(response, response.status === 413);
          },
        );
    });
  }
  // A known path with another method answers 405; anything else 404.
  for (const pattern of patterns) {
    app.any(pattern, (res) => notFoundOr405(res, 'method_not_allowed'));
  }
  app.any('/*', (res) => notFoundOr405(res, 'not_found'));
}

function notFoundOr405(res: HttpResponse, code: 'not_found' | 'method_not_allowed'): void {
  writeResponse(res, errorResponse(new KiteError(code)), false);
}
