/**
 * The live status page (issue 6): `GET /ui` serves the page, `/ui/status.js` and
 * `/ui/status.css` its script and style, and the WebSocket `/ui/live` pushes status snapshots to
 * it (see status-feed.ts). The page and its files hold no data and need no credentials; the
 * socket and the Peers API calls behind its buttons do.
 */
import type { AppContext } from '../app-context.js';
import type { SocketRoute } from '../http/socket-route.js';
import type { Route } from '../http/types.js';
import { StatusFeed } from './status-feed.js';
import { buildStatusSnapshot, snapshotSources } from './status-snapshot.js';
import { loadUiAssets } from './ui-assets.js';

// The page loads nothing from elsewhere, runs no inline script and may not be framed.
const HEADERS = {
  'cache-control': 'no-cache',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export function uiRoutes(ctx: AppContext): (Route | SocketRoute)[] {
  const assets = loadUiAssets();
  const sources = snapshotSources(ctx);
  const feed = new StatusFeed({
    authenticate: (token) => ctx.auth.authenticate({ authorization: `Bearer ${token}` }),
    build: (scope) => buildStatusSnapshot(sources, scope),
    revokedAmong: (keyIds) => ctx.keys.revokedAmong(keyIds),
    onError: (err) => ctx.logger.warn({ err: (err as Error).message }, 'status page snapshot failed'),
  });
  const serve = (pattern: string, name: string): Route => {
    const asset = assets.get(name)!;
    return { method: 'get', pattern, handler: () => ({ status: 200, body: asset.body, headers: { ...HEADERS, 'content-type': asset.contentType } }) };
  };
  return [
    serve('/ui', 'status.html'),
    serve('/ui/', 'status.html'),
    serve('/ui/status.js', 'status.js'),
    serve('/ui/status.css', 'status.css'),
    { method: 'ws', pattern: '/ui/live', maxPayloadBytes: 4096, open: (connection) => feed.open(connection) },
  ];
}
