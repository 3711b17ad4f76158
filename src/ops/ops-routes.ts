/** Unauthenticated operational routes: /healthz, /readyz, /metrics, and GET /v1/instance. */
import type { AppContext } from '../app-context.js';
import { json, type Route } from '../http/types.js';

export function opsRoutes(ctx: AppContext): Route[] {
  return [
    { method: 'get', pattern: '/healthz', handler: () => json(200, { status: 'ok' }) },
    {
      method: 'get',
      pattern: '/readyz',
      handler: async () => ((await ctx.isReady()) ? json(200, { status: 'ready' }) : json(503, { status: 'unavailable', error: { code: 'database_unavailable', message: 'The database is unreachable or not migrated.' } })),
    },
    {
      method: 'get',
      pattern: '/metrics',
      handler: async () => {
        ctx.metrics.listeners.set(ctx.hub.listenerCount);
        return { status: 200, headers: { 'content-type': ctx.metrics.registry.contentType }, body: await ctx.metrics.registry.metrics() };
      },
    },
    {
      method: 'get',
      pattern: '/v1/instance',
      handler: () => json(200, { instanceId: ctx.config.instanceId, publicUrl: ctx.config.publicUrl, version: ctx.version }),
    },
  ];
}
